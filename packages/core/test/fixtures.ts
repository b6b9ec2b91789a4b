/**
 * Shared fixtures for the stage tests: a decoded config over in-memory servers, a `CallRequest` for a tool on one of
 * them, and the canned tool results the scripted upstreams answer with.
 */
import { BridgeConfig } from "@mcp-bridge/core"
import type { ToolCaller } from "@mcp-bridge/core"
import type { CallToolResult } from "@modelcontextprotocol/client"

/** A successful tool result with the text "ok". */
export const ok: CallToolResult = { content: [{ type: "text", text: "ok" }] }

/** A tool-level error result (`isError: true`). */
export const toolError: CallToolResult = { content: [{ type: "text", text: "no such record" }], isError: true }

/** Decodes a config with one in-memory server per entry, each with the given `bridge` settings. */
export const configOf = (servers: Record<string, Record<string, unknown>>) =>
  BridgeConfig.decode({
    mcpServers: Object.fromEntries(Object.entries(servers).map(([name, bridge]) => [name, { type: "memory", bridge }]))
  })

/** The request the bridge would build for `tool` on `server` of `config`, with its resolved policy. */
export const requestOf = (
  config: BridgeConfig.BridgeConfig["Service"],
  server: string,
  tool: string,
  args: Record<string, unknown> = {}
): ToolCaller.CallRequest => {
  const resolved = config.servers.get(server)!
  return {
    server: resolved,
    tool,
    arguments: args,
    definition: undefined,
    policy: ToolPolicy.resolve(resolved, tool),
    identity: undefined,
    timeout: resolved.timeout,
    meta: undefined
  }
}

/** The text of a tool result's first content block. */
export const text = (result: { readonly content: ReadonlyArray<unknown> }) =>
  (result.content[0] as { text: string }).text
