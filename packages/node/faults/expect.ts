/**
 * What the fault suite expects of errors and entry points, in one place:
 *
 * - `McpBridgeError` reasons `BridgeClosed`, `Aborted{server?,tool?,reason}`, `InvalidCall{server?,tool?,path,detail}`,
 *   `DeadlineExceeded{server,tool,timeoutMillis,phase}`;
 * - `McpSessionError` reason `MessageTooLarge{server,limitBytes}`;
 * - `BridgeConfigError` reason `Invalid{path,server?,detail}`;
 * - the facade `createBridge` of `@mcp-bridge/node`.
 *
 * A path is an array of strings (array indices as strings, e.g. `["calls", "0", "name"]`) and a message names it
 * dotted (`calls.0.name`; `calls[0].name` is accepted too).
 */
// PLAN: `import { createBridge } from "@mcp-bridge/node"`. Today the facade is in core; switch this one line.
import { createBridge } from "@mcp-bridge/node"

export { createBridge }

/** The facade's client, whichever package it comes from. */
export type Bridge = Awaited<ReturnType<typeof createBridge>>

/**
 * One item of the facade's `callMany`, in PLAN's shape `{ name, arguments, _meta, signal }` (today's facade takes
 * `{ target, arguments, options }`).
 */
export const manyItem = (name: unknown, args?: unknown): Record<string, unknown> => ({
  name,
  ...(args === undefined ? {} : { arguments: args })
})

interface Tagged {
  readonly _tag: string
  readonly reason?: unknown
  readonly message?: unknown
}

const tagged = (error: unknown): Tagged | undefined =>
  typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string"
    ? error as Tagged
    : undefined

/** `error` is `errorTag` with a reason tagged `reasonTag`: the reason, else `undefined`. */
export const reasonOf = (
  error: unknown,
  errorTag: string,
  reasonTag: string
): Record<string, unknown> | undefined => {
  const e = tagged(error)
  if (e === undefined || e._tag !== errorTag) return undefined
  const reason = e.reason as { readonly _tag?: unknown } | undefined
  return typeof reason === "object" && reason !== null && reason._tag === reasonTag
    ? reason as Record<string, unknown>
    : undefined
}

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error ? String(error.message) : ""

/** The message names `path`: dotted (`a.0.b`) or with brackets for indices (`a[0].b`). */
export const namesPath = (message: string, path: ReadonlyArray<string>): boolean => {
  if (path.length === 0) return true
  const dotted = path.join(".")
  const bracketed = path.map((p, i) => /^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`).join("")
  return message.includes(dotted) || message.includes(bracketed)
}

const startsWith = (actual: unknown, prefix: ReadonlyArray<string>): boolean =>
  Array.isArray(actual) && prefix.every((p, i) => String(actual[i]) === p)

// -----------------------------------------------------------------------------
// McpBridgeError
// -----------------------------------------------------------------------------

/** A call after or during `close()`: `McpBridgeError` / `BridgeClosed`. */
export const isBridgeClosed = (error: unknown): boolean =>
  reasonOf(error, "McpBridgeError", "BridgeClosed") !== undefined

/** An aborted call: `McpBridgeError` / `Aborted` carrying the signal's reason. */
export const isAborted = (error: unknown, signalReason: unknown): boolean => {
  const reason = reasonOf(error, "McpBridgeError", "Aborted")
  return reason !== undefined && (reason.reason === signalReason ||
    (signalReason instanceof Error && messageOf(reason.reason) === signalReason.message))
}

/** A malformed call: `McpBridgeError` / `InvalidCall` whose `path` starts with `path` and whose message names it. */
export const isInvalidCall = (error: unknown, path: ReadonlyArray<string>): boolean => {
  const reason = reasonOf(error, "McpBridgeError", "InvalidCall")
  return reason !== undefined && startsWith(reason.path, path) && namesPath(messageOf(error), path)
}

/** An unknown server or tool: `McpBridgeError` / `UnknownServer` | `UnknownTool` naming it. */
export const isUnknown = (error: unknown, what: "UnknownServer" | "UnknownTool", name: string): boolean => {
  const reason = reasonOf(error, "McpBridgeError", what)
  return reason !== undefined && (what === "UnknownServer" ? reason.server : reason.tool) === name
}

/**
 * The overall deadline of a call ran out: `McpBridgeError` / `DeadlineExceeded` with the phase that used the time.
 * Phases assumed: "pool" (waiting for a session), "connect" (opening one, negotiation included), "throttle" (a
 * rate-limit turn), "retry" (backoff between attempts), "call" (the request on the wire).
 */
export const isDeadline = (error: unknown, phase?: string): boolean => {
  const reason = reasonOf(error, "McpBridgeError", "DeadlineExceeded")
  return reason !== undefined && (phase === undefined || reason.phase === phase)
}

/** Any typed timeout of a call: the overall deadline, or the per-attempt `McpSessionError` / `Timeout`. */
export const isAnyTimeout = (error: unknown): boolean =>
  isDeadline(error) || reasonOf(error, "McpSessionError", "Timeout") !== undefined

/** A non-string caller identity: rejected as `InvalidCall` at `options.identity`. */
export const isIdentityRejected = (error: unknown): boolean => isInvalidCall(error, ["options", "identity"])

// -----------------------------------------------------------------------------
// McpSessionError
// -----------------------------------------------------------------------------

/** An answer over the size limit: `McpSessionError` / `MessageTooLarge` with `limitBytes`, named in the message. */
export const isMessageTooLarge = (error: unknown): boolean => {
  const reason = reasonOf(error, "McpSessionError", "MessageTooLarge")
  if (reason === undefined || typeof reason.limitBytes !== "number") return false
  const limit = reason.limitBytes
  const message = messageOf(error)
  return message.includes(String(limit)) || message.includes(`${Math.round(limit / 1024 / 1024)} MiB`) ||
    message.includes(`${Math.round(limit / 1024 / 1024)} MB`)
}

/** The transport of the call's session died: `McpSessionError` / `Closed`. */
export const isClosed = (error: unknown): boolean => reasonOf(error, "McpSessionError", "Closed") !== undefined

/** The session could not be opened: `McpSessionError` / `ConnectFailed`. */
export const isConnectFailed = (error: unknown): boolean =>
  reasonOf(error, "McpSessionError", "ConnectFailed") !== undefined

/**
 * An in-flight limit refused the call after waiting: `ThrottlerError` / `ConcurrencyLimited` with `limit` and
 * `waitedMillis` (today an in-flight refusal is a `RateLimited` with `retryAfterMillis: 0`).
 */
export const isConcurrencyLimited = (error: unknown): boolean => {
  const reason = reasonOf(error, "ThrottlerError", "ConcurrencyLimited")
  return reason !== undefined && typeof reason.waitedMillis === "number"
}

/** The breaker refused the call: `ResilienceError` / `CircuitOpen`. */
export const isCircuitOpen = (error: unknown): boolean =>
  reasonOf(error, "ResilienceError", "CircuitOpen") !== undefined

/** The pool had no session in time: `ConnectionPoolError` / `PoolTimeout`. */
export const isPoolTimeout = (error: unknown): boolean =>
  reasonOf(error, "ConnectionPoolError", "PoolTimeout") !== undefined

// -----------------------------------------------------------------------------
// BridgeConfigError
// -----------------------------------------------------------------------------

/**
 * A rejected configuration: `BridgeConfigError` / `Invalid` whose `path` starts with `path` and whose message names
 * it. An older shape (`reason: "Invalid"` with `path` on the error) is accepted too.
 */
export const isConfigInvalid = (error: unknown, path: ReadonlyArray<string>): boolean => {
  const planned = reasonOf(error, "BridgeConfigError", "Invalid")
  const e = tagged(error) as (Tagged & { readonly path?: unknown }) | undefined
  const actualPath = planned !== undefined
    ? planned.path
    : e?._tag === "BridgeConfigError" && e.reason === "Invalid"
    ? e.path
    : undefined
  return actualPath !== undefined && startsWith(actualPath, path) && namesPath(messageOf(error), path)
}
