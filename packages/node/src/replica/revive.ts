/**
 * Rebuilds a 2025-era session on a replica that does not hold it: a fresh transport whose id generator returns the
 * client's session id, connected to a fresh server, is handed the client's own `initialize` (from the sealed id)
 * and `notifications/initialized`, in process. The server ends up negotiated exactly as on the first replica
 * (same protocol version, client capabilities and info), through the SDK's public `handleRequest` only.
 *
 * @internal
 */
import type { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/server"

const headers = (extra: Record<string, string> = {}) => ({
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  ...extra
})

/**
 * Replays `initialize` into `transport` (already connected to its server, its generator returning `sessionId`);
 * resolves `true` when the server answered it with a result.
 *
 * @internal
 */
export const replayInitialize = async (
  transport: WebStandardStreamableHTTPServerTransport,
  sessionId: string,
  initialize: { readonly protocolVersion: string }
): Promise<boolean> => {
  const request = { jsonrpc: "2.0", id: "mcp-bridge/revive", method: "initialize", params: initialize }
  const response = await transport.handleRequest(
    new Request("http://replica.invalid/mcp", { method: "POST", headers: headers(), body: JSON.stringify(request) }),
    { parsedBody: request }
  )
  // The answer is one SSE event (or JSON): read it to the end, which also ends the in-process stream.
  const text = await response.text()
  if (!response.ok || !text.includes("\"result\"") || transport.sessionId !== sessionId) return false
  const initialized = { jsonrpc: "2.0", method: "notifications/initialized" }
  const ack = await transport.handleRequest(
    new Request("http://replica.invalid/mcp", {
      method: "POST",
      headers: headers({ "mcp-session-id": sessionId }),
      body: JSON.stringify(initialized)
    }),
    { parsedBody: initialized }
  )
  return ack.status === 202
}
