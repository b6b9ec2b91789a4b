/**
 * The bridge as one more peer: the only bench code of the `peers` section and the profile drivers that knows the
 * bridge's API. It builds `McpBridge.layer(config, { transport: NodeTransport.layer(), ... })` on a `ManagedRuntime`
 * and calls through `McpBridge.McpBridge`, which is what the Promise facade (`createBridge`) does; if the public API
 * moves, this file is the one to adjust.
 */
import { ConnectionPool, McpBridge } from "@mcp-bridge/core"
import { NodeTransport } from "@mcp-bridge/node"
import type { Transport } from "@modelcontextprotocol/client"
import { ManagedRuntime } from "effect"
import type { Endpoint, PeerSession } from "./peerClients.ts"

/** A peer endpoint, or an in-memory server (for the profile drivers). */
export type BridgeEndpoint = Endpoint | { readonly kind: "memory"; readonly connect: () => Promise<Transport> }

/** Which bridge. */
export interface BridgePeerOptions {
  /** `echo` cached for an hour (calls with the same arguments are hits); otherwise never cached. */
  readonly cached?: boolean
  /** `pool.max` of the server. @default the bridge's default (20) */
  readonly maxSessions?: number
  /**
   * `"default"`: the server's configuration says nothing but where it is, so of the default stack's stages the cache,
   * coalescing and throttler step aside for `echo` (not read-only, no limits) and telemetry and resilience act.
   * `"busy"`: every stage has work on every call (as in the `stages` section): `echo` is read-only by policy but
   * never cached (cache lookup skipped, coalescing looks for an identical call in flight), the throttler has limits far
   * above the load, resilience has a retry policy and a circuit breaker. @default "default"
   */
  readonly stack?: "default" | "busy"
}

const busyPolicy = {
  tools: { echo: { readOnly: true, cache: false } },
  throttle: { perSecond: 100_000, perMinute: 1_000_000, concurrency: 10_000 },
  retry: { times: 2 },
  circuitBreaker: { failures: 5 }
}

/** The server entry of the bridge configuration for `endpoint`, named `s`. */
const serverConfig = (endpoint: BridgeEndpoint, options: BridgePeerOptions) => ({
  ...(endpoint.kind === "stdio"
    ? { command: endpoint.command, args: [...endpoint.args] }
    : endpoint.kind === "http"
    ? { url: endpoint.url }
    : { type: "memory" }),
  bridge: {
    ...(options.stack === "busy" ? busyPolicy : {}),
    ...(options.cached === true ? { tools: { echo: { cache: "1 hour" } } } : {}),
    ...(options.maxSessions === undefined ? {} : { pool: { max: options.maxSessions } })
  }
})

/** A warm bridge over `endpoint` with every stage of the default `McpBridge.layer` on, and its pool's stats. */
export const openBridge = async (
  endpoint: BridgeEndpoint,
  options: BridgePeerOptions = {}
): Promise<PeerSession & { readonly pool: () => Promise<ConnectionPool.PoolStats | undefined> }> => {
  const transport = NodeTransport.layer(endpoint.kind === "memory" ? { memory: { s: endpoint.connect } } : {})
  const runtime = ManagedRuntime.make(
    McpBridge.layer({ mcpServers: { s: serverConfig(endpoint, options) } }, { transport })
  )
  try {
    const bridge = await runtime.runPromise(McpBridge.McpBridge)
    const pool = await runtime.runPromise(ConnectionPool.ConnectionPool)
    await runtime.runPromise(bridge.listTools())
    return {
      call: async (args) => (await runtime.runPromise(bridge.callTool("s.echo", args))).isError !== true,
      protocol: undefined,
      pool: async () => (await runtime.runPromise(pool.stats))[0],
      close: () => runtime.dispose()
    }
  } catch (error) {
    await runtime.dispose()
    throw error
  }
}
