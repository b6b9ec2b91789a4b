/**
 * The failures of an MCP session: opening it, a request on it, or its transport. One `Schema.TaggedError` with a
 * `reason` union of small tagged classes, each naming its `server`.
 *
 * It lives in a module of its own so that everything below the session (the transports) and everything above it
 * (the pool, the stages, the bridge) can import it without an import cycle.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The session could not be opened: the process did not start, the URL did not answer, the handshake failed.
 * `stderr` holds the last lines the server printed (secrets of its `env` scrubbed).
 *
 * @since 0.1.0
 */
export class ConnectFailed extends Schema.TaggedClass<ConnectFailed>()("ConnectFailed", {
  server: Schema.String,
  message: Schema.String,
  stderr: Schema.optionalKey(Schema.String)
}) {}

/**
 * A request, or opening the session, took longer than its deadline. The request was cancelled on the wire.
 *
 * @since 0.1.0
 */
export class Timeout extends Schema.TaggedClass<Timeout>()("Timeout", {
  server: Schema.String,
  /** What timed out: `connect`, `tools/call <tool>`, `tools/list`, `ping`, `server/discover`. */
  operation: Schema.String,
  timeoutMillis: Schema.Finite,
  /** The session the request was on (`McpSession.id`), when it was on one. */
  session: Schema.optionalKey(Schema.Finite)
}) {}

/**
 * The transport is closed or broken: the child process exited, the connection was refused or reset, or an HTTP
 * server no longer knows the session. The session is dead; a new one is needed.
 *
 * @since 0.1.0
 */
export class Closed extends Schema.TaggedClass<Closed>()("Closed", {
  server: Schema.String,
  message: Schema.String,
  stderr: Schema.optionalKey(Schema.String),
  /**
   * The session that died (`McpSession.id`), when it was open: the failures of calls in flight on one dead session
   * are one event for the server's circuit breaker, not one each.
   */
  session: Schema.optionalKey(Schema.Finite),
  /**
   * The server refused the request unread because it no longer knows the session (HTTP 404 or 410 for its
   * `Mcp-Session-Id`: it restarted, or expired the session): the request did not run, so it may be sent again on a
   * new session whatever its side effects.
   */
  notExecuted: Schema.optionalKey(Schema.Boolean)
}) {}

/**
 * The server answered with a JSON-RPC error (unknown method, invalid params...), an HTTP status the bridge does not
 * treat as a dead session (429, 5xx, other 4xx), or an answer the SDK rejected. `code` is the JSON-RPC error code,
 * the HTTP status, or -1. `retryAfterMillis` is the server's `Retry-After`, when it sent one; `data` the error's own.
 *
 * @since 0.1.0
 */
export class Protocol extends Schema.TaggedClass<Protocol>()("Protocol", {
  server: Schema.String,
  code: Schema.Finite,
  message: Schema.String,
  retryAfterMillis: Schema.optionalKey(Schema.Finite),
  /** The JSON-RPC error's `data`, when it had one (e.g. `requiredCapabilities` of -32021). */
  data: Schema.optionalKey(Schema.Unknown)
}) {}

/**
 * The server's answer to a request was larger than `bridge.maxMessageBytes` and was dropped: the request fails, the
 * session goes on.
 *
 * @since 0.1.0
 */
export class MessageTooLarge extends Schema.TaggedClass<MessageTooLarge>()("MessageTooLarge", {
  server: Schema.String,
  operation: Schema.String,
  limitBytes: Schema.Finite
}) {}

/**
 * The server refused the request's authorization (OAuth, see `McpAuth`), and the bridge could not obtain one it
 * accepts: no interaction to ask the user, the user or the authorization server refused, a scope the server keeps
 * refusing (`status` 403, `requiredScope`). `detail` never holds a token or a secret.
 *
 * @since 0.1.0
 */
export class Unauthorized extends Schema.TaggedClass<Unauthorized>()("Unauthorized", {
  server: Schema.String,
  detail: Schema.String,
  status: Schema.optionalKey(Schema.Finite),
  requiredScope: Schema.optionalKey(Schema.String)
}) {}

/**
 * A handler of the application (`ClientHandlers`: elicitation, sampling, roots) failed while it answered what the
 * server asked during a 2026-07-28 call (`input_required`), so the call could not go on. The server is not at fault:
 * it neither trips the circuit breaker nor is retried.
 *
 * @since 0.1.0
 */
export class HandlerFailed extends Schema.TaggedClass<HandlerFailed>()("HandlerFailed", {
  server: Schema.String,
  /** What the server asked: `elicitation/create`, `sampling/createMessage` or `roots/list`. */
  request: Schema.String,
  message: Schema.String
}) {}

/**
 * Why a session failed: `ConnectFailed`, `Timeout`, `Closed`, `Protocol`, `MessageTooLarge`, `Unauthorized` or
 * `HandlerFailed`.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([
  ConnectFailed,
  Timeout,
  Closed,
  Protocol,
  MessageTooLarge,
  Unauthorized,
  HandlerFailed
])

/**
 * The type of a `McpSessionError`'s `reason`: `ConnectFailed`, `Timeout`, `Closed`, `Protocol`, `MessageTooLarge`,
 * `Unauthorized` or `HandlerFailed`. Match on `error.reason._tag`.
 *
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * A session-level failure. Match on `reason._tag`; every reason names its `server`.
 *
 * @example
 * ```ts
 * effect.pipe(Effect.catchReason("McpSessionError", "Timeout", (r) => Effect.succeed(`slow: ${r.timeoutMillis}`)))
 * ```
 *
 * @since 0.1.0
 */
export class McpSessionError extends Schema.TaggedError<McpSessionError>()("McpSessionError", {
  reason: Reason
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "ConnectFailed":
        return `cannot connect to MCP server "${r.server}": ${r.message}${r.stderr ? `\n${r.stderr}` : ""}`
      case "Timeout":
        return `MCP server "${r.server}" did not answer ${r.operation} within ${r.timeoutMillis} ms`
      case "Closed":
        return `connection to MCP server "${r.server}" is closed: ${r.message}`
      case "Protocol":
        return `MCP server "${r.server}" answered with error ${r.code}: ${r.message}`
      case "Unauthorized":
        return `MCP server "${r.server}" refused the authorization: ${r.detail}`
      case "HandlerFailed":
        return `the application's ${r.request} handler failed answering MCP server "${r.server}": ${r.message}`
      case "MessageTooLarge":
        return `the answer of MCP server "${r.server}" to ${r.operation} is larger than the limit of ${r.limitBytes} ` +
          `bytes (bridge.maxMessageBytes)`
    }
  }

  /**
   * The server the failure is about.
   */
  get server(): string {
    return this.reason.server
  }

  /**
   * True when the session that raised it is dead and must be replaced.
   */
  get isTransportFailure(): boolean {
    return this.reason._tag === "Closed" || this.reason._tag === "ConnectFailed"
  }
}

/**
 * True for a `McpSessionError`.
 *
 * @since 0.1.0
 */
export const isMcpSessionError = (u: unknown): u is McpSessionError => u instanceof McpSessionError
