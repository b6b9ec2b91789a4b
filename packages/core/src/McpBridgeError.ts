/**
 * The failures of the bridge itself: a call it refused or ended before it reached a server (unknown server or tool, a
 * malformed call, a closed bridge, an aborted call). One `Schema.TaggedError` with a `reason` union, in a module of
 * its own so that the facade and the stages can import it without an import cycle.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * No server by that name. `available` lists the configured servers.
 *
 * @since 0.1.0
 */
export class UnknownServer extends Schema.TaggedClass<UnknownServer>()("UnknownServer", {
  server: Schema.String,
  available: Schema.Array(Schema.String)
}) {}

/**
 * The server has no tool by that name. `available` lists its tools.
 *
 * @since 0.1.0
 */
export class UnknownTool extends Schema.TaggedClass<UnknownTool>()("UnknownTool", {
  server: Schema.String,
  tool: Schema.String,
  available: Schema.Array(Schema.String)
}) {}

/**
 * The target, the arguments or an option of the call are malformed. `path` names what is wrong, e.g.
 * `["arguments", "query"]` or `["options", "timeout"]`.
 *
 * @since 0.1.0
 */
export class InvalidCall extends Schema.TaggedClass<InvalidCall>()("InvalidCall", {
  server: Schema.optionalKey(Schema.String),
  tool: Schema.optionalKey(Schema.String),
  path: Schema.Array(Schema.String),
  detail: Schema.String
}) {}

/**
 * The bridge is closed (or closing): the call was not made.
 *
 * @since 0.1.0
 */
export class BridgeClosed extends Schema.TaggedClass<BridgeClosed>()("BridgeClosed", {}) {}

/**
 * The caller aborted the call (its `AbortSignal`); `reason` is the signal's reason.
 *
 * @since 0.1.0
 */
export class Aborted extends Schema.TaggedClass<Aborted>()("Aborted", {
  server: Schema.optionalKey(Schema.String),
  tool: Schema.optionalKey(Schema.String),
  reason: Schema.Defect()
}) {}

/**
 * Why the bridge refused or ended a call before it reached a server.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([UnknownServer, UnknownTool, InvalidCall, BridgeClosed, Aborted])

/**
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * A call the bridge itself refused: unknown server or tool, a malformed call, a closed bridge, an aborted call.
 *
 * @since 0.1.0
 */
export class McpBridgeError extends Schema.TaggedError<McpBridgeError>()("McpBridgeError", {
  reason: Reason
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "UnknownServer":
        return `unknown MCP server "${r.server}"; configured servers: ${r.available.join(", ") || "(none)"}`
      case "UnknownTool":
        return `MCP server "${r.server}" has no tool "${r.tool}"; its tools: ${r.available.join(", ") || "(none)"}`
      case "InvalidCall":
        return `invalid tool call${r.server === undefined ? "" : ` to ${r.server}.${r.tool ?? ""}`}: ${
          r.path.length > 0 ? `${r.path.join(".")}: ` : ""
        }${r.detail}`
      case "BridgeClosed":
        return "the bridge is closed"
      case "Aborted":
        return `the call${r.server === undefined ? "" : ` to ${r.server}.${r.tool ?? ""}`} was aborted${
          r.reason instanceof Error ? `: ${r.reason.message}` : typeof r.reason === "string" ? `: ${r.reason}` : ""
        }`
    }
  }

  /**
   * The server the call was for, when known.
   */
  get server(): string | undefined {
    return "server" in this.reason ? this.reason.server : undefined
  }
}

/**
 * A `McpBridgeError` with reason `InvalidCall`: `path` names what is wrong (e.g. `["arguments", "q"]`).
 *
 * @since 0.1.0
 */
export const invalidCall = (
  path: ReadonlyArray<string>,
  detail: string,
  server?: string,
  tool?: string
): McpBridgeError =>
  new McpBridgeError({
    reason: new InvalidCall({
      ...(server === undefined ? {} : { server }),
      ...(tool === undefined ? {} : { tool }),
      path: [...path],
      detail
    })
  })
