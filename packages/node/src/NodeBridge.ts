/**
 * The Promise facade for Node: `createBridge(config)` is `BridgeClient.make` of `@mcp-bridge/core` over the Node
 * transport (`NodeTransport.layer`), so that one install gives stdio servers (child processes), Streamable HTTP,
 * legacy SSE and in-memory servers.
 *
 * @since 0.1.0
 */
import { BridgeClient } from "@mcp-bridge/core"
import * as NodeTransport from "./NodeTransport.ts"

/**
 * Options of {@link createBridge}: those of `McpBridge.layer` (pool, cache, batcher, throttle, resilience,
 * telemetry), plus those of the Node transport (`memory` servers, `fetch`, `stderrTailBytes`), which are ignored when
 * `transport` replaces it.
 *
 * @since 0.1.0
 */
export interface Options extends BridgeClient.Options, NodeTransport.Options {}

/**
 * Starts a bridge over every transport Node has: stdio (`command`), Streamable HTTP (`url`), legacy SSE
 * (`"type": "sse"`) and in-memory servers (`"type": "memory"`, given in `options.memory`). Rejects with a
 * `BridgeConfigError` when the configuration is invalid; calls reject with the bridge's typed errors
 * (`McpBridgeError`, `McpSessionError`, `ConnectionPoolError`, `ThrottlerError`, `ResilienceError`), whose `_tag`
 * and `reason` say what went wrong. `close()` ends every session and child process.
 *
 * @example
 * ```ts
 * import { createBridge } from "@mcp-bridge/node"
 *
 * const bridge = await createBridge({
 *   mcpServers: {
 *     files: { command: "npx", args: ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"] },
 *     docs: { url: "http://127.0.0.1:3000/mcp" }
 *   }
 * })
 * const result = await bridge.callTool("files.read_file", { path: "/tmp/notes.txt" })
 * await bridge.close()
 * ```
 *
 * @since 0.1.0
 */
export const createBridge = (config: object, options: Options = {}): Promise<BridgeClient.BridgeClient> =>
  BridgeClient.make(config, {
    ...options,
    transport: options.transport ?? NodeTransport.layer(options)
  })
