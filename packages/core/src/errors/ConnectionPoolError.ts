/**
 * The error of the connection pool: no session became free in time (`PoolTimeout`, which says whether the sessions
 * were busy or still being opened). One `Schema.TaggedError` with a tagged `reason`, `server` inside it. Failures to
 * open a session are `McpSessionError`s; a call's overall deadline passing while it waits is `McpBridgeError`
 * `DeadlineExceeded`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * No session became free within `acquireTimeout`: `open` sessions were all busy (each serving `concurrency`
 * requests), or `connecting` sessions were still being opened.
 *
 * @since 0.1.0
 */
export class PoolTimeout extends Schema.TaggedClass<PoolTimeout>()("PoolTimeout", {
  server: Schema.String,
  max: Schema.Finite,
  concurrency: Schema.Finite,
  waitedMillis: Schema.Finite,
  /** Sessions open when the wait ended. */
  open: Schema.Finite,
  /** Sessions being opened when the wait ended. */
  connecting: Schema.Finite,
  /** With per-identity pools: the server's cap over all identities, reached when the wait ended. */
  maxTotal: Schema.optional(Schema.Finite),
  /** With per-identity pools: sessions queued for a slot under `maxTotal` when the wait ended. */
  queued: Schema.optional(Schema.Finite)
}) {}

/**
 * Why the pool could not lease a session: `PoolTimeout`.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([PoolTimeout])

/**
 * The type of a `ConnectionPoolError`'s `reason`: `PoolTimeout`. Match on `error.reason._tag`.
 *
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * The pool could not lease a session in time. Failures to open a session are `McpSessionError`s.
 *
 * @since 0.1.0
 */
export class ConnectionPoolError extends Schema.TaggedError<ConnectionPoolError>()("ConnectionPoolError", {
  reason: Reason
}) {
  override get message(): string {
    const r = this.reason
    const state = r.maxTotal !== undefined && r.open === 0 && r.connecting === 0
      ? `all ${r.maxTotal} sessions it may have over all identities (maxTotal) are busy, ${
        r.queued ?? 0
      } queued for one, none idle`
      : r.open === 0 && r.connecting > 0
      ? `${r.connecting === 1 ? "its first session is" : `${r.connecting} sessions are`} still being opened`
      : r.connecting > 0
      ? `${r.open} sessions × ${r.concurrency} requests each are busy and ${r.connecting} more are being opened`
      : `${r.open} of at most ${r.max} sessions × ${r.concurrency} requests each, all busy`
    return `no session of MCP server "${r.server}" became free within ${r.waitedMillis} ms: ${state}`
  }

  /**
   * The server whose pool is saturated.
   */
  get server(): string {
    return this.reason.server
  }
}
