/**
 * Why a configuration was refused: a tagged `reason` that names the file, the server and the field, so that the
 * message reads like `mcpServers.github.bridge.timeout: Expected a duration such as "30 seconds" ..., got "soon"`.
 * Values under `env` and `headers` (secrets) are never echoed.
 *
 * Built on `Schema.TaggedError`; the decoding that produces it is in `BridgeConfig`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A field (or the whole input) does not decode. `path` is the path of the first offending field, e.g.
 * `["mcpServers", "github", "url"]`; `detail` lists every problem found, each after its own path.
 *
 * @since 0.1.0
 */
export class Invalid extends Schema.TaggedClass<Invalid>()("Invalid", {
  path: Schema.Array(Schema.String),
  /** The server the first problem is in, when it is in one. */
  server: Schema.optionalKey(Schema.String),
  detail: Schema.String
}) {}

/**
 * A configuration file could not be read or is not JSON.
 *
 * @since 0.1.0
 */
export class Unreadable extends Schema.TaggedClass<Unreadable>()("Unreadable", {
  file: Schema.String,
  detail: Schema.String
}) {}

/**
 * `Invalid` or `Unreadable`.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([Invalid, Unreadable])

/**
 * The type of a `BridgeConfigError`'s `reason`: `Invalid` or `Unreadable`. Match on `error.reason._tag`, or use
 * `Effect.catchReason("BridgeConfigError", ...)`.
 *
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * The configuration could not be read or decoded. `BridgeConfig.decode`, `McpBridge.layer` and `createBridge` fail
 * with it; match on `reason._tag`.
 *
 * @example
 * ```ts
 * BridgeConfig.decode(input).pipe(
 *   Effect.catchReason("BridgeConfigError", "Invalid", (r) => Effect.logError(r.path.join("."), r.detail))
 * )
 * ```
 *
 * @since 0.1.0
 */
export class BridgeConfigError extends Schema.TaggedError<BridgeConfigError>()("BridgeConfigError", {
  reason: Reason
}) {
  override get message(): string {
    const r = this.reason
    return r._tag === "Unreadable"
      ? `${r.file}: ${r.detail}`
      : `${r.path.length > 0 ? `${r.path.join(".")}: ` : ""}${r.detail}`
  }

  /**
   * The server the problem is in, when it is in one.
   */
  get server(): string | undefined {
    return this.reason._tag === "Invalid" ? this.reason.server : undefined
  }
}

/**
 * A `BridgeConfigError` with reason `Invalid`.
 *
 * @since 0.1.0
 */
export const invalid = (path: ReadonlyArray<string>, detail: string): BridgeConfigError =>
  new BridgeConfigError({
    reason: new Invalid({
      path: [...path],
      ...(path[0] === "mcpServers" && path[1] !== undefined ? { server: path[1] } : {}),
      detail
    })
  })
