/**
 * 2026-07-28 multi round-trip requests (`input_required`) through the gateway. A 2026-07-28 downstream request has no
 * server→client channel: what a 2026-07-28 upstream asks goes back to the downstream client as the upstream's
 * `input_required` result, unchanged (`inputRequests`, `requestState` as received), and the client's retry goes to
 * the same upstream server with its `inputResponses` and `requestState` as the client sent them. The upstream sees the
 * downstream request's client capabilities as the request's own, so it asks only for what the client declared (and
 * the SDK server refuses, with -32021, an `input_required` asking for more). A 2025-era upstream's requests become
 * rounds of the gateway's own (see `bridging.ts`).
 *
 * An upstream's JSON-RPC error that belongs to the downstream client (a capability it did not declare, a header that
 * does not match, a retry's state the upstream refused) is relayed to it as that error rather than as a tool error
 * result.
 *
 * @internal
 */
import { McpSession, McpSessionError } from "@mcp-bridge/core"
import type { ClientCapabilities, InputResponses, ServerContext } from "@modelcontextprotocol/server"
import { CLIENT_CAPABILITIES_META_KEY, PROTOCOL_VERSION_META_KEY, ProtocolError } from "@modelcontextprotocol/server"

/** True for a request that came with the 2026-07-28 envelope (no server→client channel). @internal */
export const isModern = (ctx: ServerContext): boolean =>
  (ctx.mcpReq.envelope as Record<string, unknown> | undefined)?.[PROTOCOL_VERSION_META_KEY] !== undefined

/** The client capabilities a 2026-07-28 request declares in its envelope (none: `{}`). @internal */
export const declaredOf = (ctx: ServerContext): ClientCapabilities => {
  const declared = (ctx.mcpReq.envelope as Record<string, unknown> | undefined)?.[CLIENT_CAPABILITIES_META_KEY]
  return (typeof declared === "object" && declared !== null ? declared : {}) as ClientCapabilities
}

/**
 * The downstream client's own rounds of a 2026-07-28 request (`tools/call`, `prompts/get`, `resources/read`); none for
 * a 2025-era request, whose client the relay asks instead. @internal
 */
export const roundsOf = (ctx: ServerContext): McpSession.ClientRounds | undefined => {
  if (!isModern(ctx)) return undefined
  const requestState = ctx.mcpReq.requestState()
  return {
    clientCapabilities: declaredOf(ctx),
    // The answers as the client sent them (the SDK has set aside entries that are not answers at all).
    inputResponses: ctx.mcpReq.inputResponses as InputResponses | undefined,
    requestState: typeof requestState === "string" ? requestState : undefined
  }
}

// The upstream's errors that are the downstream client's: MissingRequiredClientCapability, HeaderMismatch.
const clientErrors = new Set([-32021, -32020])
const invalidParams = -32602

/**
 * The upstream's JSON-RPC error to relay to the downstream client as a protocol error, if `error` is one: -32021 and
 * -32020 always, -32602 (e.g. a `requestState` that failed the upstream's check) on a retry. @internal
 */
export const relayedError = (error: unknown, retry: boolean): ProtocolError | undefined => {
  if (!McpSessionError.isMcpSessionError(error) || error.reason._tag !== "Protocol") return undefined
  const { code, data, message } = error.reason
  if (!clientErrors.has(code) && !(retry && code === invalidParams)) return undefined
  return new ProtocolError(code, message, data)
}

/** Whether a downstream request is the retry of an earlier `input_required`. @internal */
export const isRetry = McpSession.isRetry
