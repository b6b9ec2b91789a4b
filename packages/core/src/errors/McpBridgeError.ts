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
 * No server offers a resource at that URI (neither in its `resources/list` nor matching one of its resource
 * templates), or the server it was addressed to answered that it has none. `server` is the server asked, when one was.
 *
 * @since 0.1.0
 */
export class UnknownResource extends Schema.TaggedClass<UnknownResource>()("UnknownResource", {
  uri: Schema.String,
  server: Schema.optionalKey(Schema.String)
}) {}

/**
 * The server has no prompt by that name. `available` lists its prompts.
 *
 * @since 0.1.0
 */
export class UnknownPrompt extends Schema.TaggedClass<UnknownPrompt>()("UnknownPrompt", {
  server: Schema.String,
  prompt: Schema.String,
  available: Schema.Array(Schema.String)
}) {}

/**
 * The server does not offer what was asked: `capability` names what it lacks (`resources`, `resources.subscribe`,
 * `prompts`, `completions`).
 *
 * @since 0.1.0
 */
export class Unsupported extends Schema.TaggedClass<Unsupported>()("Unsupported", {
  server: Schema.String,
  capability: Schema.String
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
 * A stage of the pipeline refused the call (an access rule, a quota: see `Pipeline.Insertion`); `stage` names it and
 * `detail` says why.
 *
 * @since 0.1.0
 */
export class Rejected extends Schema.TaggedClass<Rejected>()("Rejected", {
  server: Schema.String,
  tool: Schema.String,
  stage: Schema.String,
  detail: Schema.String
}) {}

/**
 * What a call was waiting for when its deadline passed.
 *
 * - `route`: the server's tool list, to route the call (the server connecting or answering `tools/list`);
 * - `queue`: a free session (all sessions busy);
 * - `connect`: a session being opened (process start, handshake, negotiation);
 * - `rate-limit`: its turn under a rate limit; `concurrency`: a slot under an in-flight limit;
 * - `backoff`: the delay before a retry;
 * - `call`: the server's answer.
 *
 * @since 0.1.0
 */
export const Phase = Schema.Literals(["route", "queue", "connect", "rate-limit", "concurrency", "backoff", "call"])

/**
 * The type of `Phase`, as `DeadlineExceeded.phase` holds it.
 *
 * @since 0.1.0
 */
export type Phase = typeof Phase.Type

/**
 * The call's overall deadline passed (see `McpBridge.CallOptions.timeout`); `phase` says what used the time.
 *
 * @since 0.1.0
 */
export class DeadlineExceeded extends Schema.TaggedClass<DeadlineExceeded>()("DeadlineExceeded", {
  server: Schema.String,
  tool: Schema.String,
  /** The call's overall deadline. */
  timeoutMillis: Schema.Finite,
  phase: Phase
}) {}

const phaseText: Record<Phase, string> = {
  route: "waiting for the server's tool list",
  queue: "waiting for a free session",
  connect: "waiting for a session to open",
  "rate-limit": "waiting for its turn under a rate limit",
  concurrency: "waiting for a slot under an in-flight limit",
  backoff: "waiting to retry",
  call: "waiting for the server's answer"
}

/**
 * Why the bridge refused or ended a call before it reached a server, or ended it at its deadline.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([
  UnknownServer,
  UnknownTool,
  InvalidCall,
  BridgeClosed,
  Aborted,
  DeadlineExceeded,
  Rejected,
  UnknownResource,
  UnknownPrompt,
  Unsupported
])

/**
 * The type of a `McpBridgeError`'s `reason`: `UnknownServer`, `UnknownTool`, `InvalidCall`, `BridgeClosed`, `Aborted`,
 * `DeadlineExceeded`, `Rejected`, `UnknownResource`, `UnknownPrompt` or `Unsupported`. Match on
 * `error.reason._tag`.
 *
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * A call the bridge itself refused or ended: unknown server or tool, a malformed call, a closed bridge, an aborted
 * call, a call past its deadline.
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
      case "DeadlineExceeded":
        return `the call to ${r.server}.${r.tool} did not end within its deadline of ${r.timeoutMillis} ms (${
          phaseText[r.phase]
        })`
      case "Rejected":
        return `the call to ${r.server}.${r.tool} was refused by the pipeline stage "${r.stage}": ${r.detail}`
      case "UnknownResource":
        return r.server === undefined
          ? `no MCP server offers the resource "${r.uri}"`
          : `MCP server "${r.server}" has no resource "${r.uri}"`
      case "UnknownPrompt":
        return `MCP server "${r.server}" has no prompt "${r.prompt}"; its prompts: ${
          r.available.join(", ") || "(none)"
        }`
      case "Unsupported":
        return `MCP server "${r.server}" does not support ${r.capability}`
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
 * A `McpBridgeError` with reason `DeadlineExceeded`.
 *
 * @since 0.1.0
 */
export const deadlineExceeded = (
  server: string,
  tool: string,
  timeoutMillis: number,
  phase: Phase
): McpBridgeError =>
  new McpBridgeError({
    reason: new DeadlineExceeded({ server, tool, timeoutMillis: Math.round(timeoutMillis), phase })
  })

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
