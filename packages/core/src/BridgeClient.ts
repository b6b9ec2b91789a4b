/**
 * The Promise facade, for programs that do not use Effect: `createBridge(config)` returns `callTool`, `listTools` and
 * `close`, running the same layers on a `ManagedRuntime`.
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Duration, Effect, Layer, ManagedRuntime, Option } from "effect"
import type * as BridgeConfig from "./BridgeConfig.ts"
import * as ConnectionPool from "./ConnectionPool.ts"
import { CallerIdentity } from "./CallerIdentity.ts"
import * as McpBridge from "./McpBridge.ts"
import * as McpTransport from "./McpTransport.ts"

/**
 * @since 0.1.0
 */
export interface CallOptions {
  /** Deadline of this call, e.g. `"5 seconds"` or milliseconds. @default the server's `bridge.timeout` */
  readonly timeout?: string | number | undefined
  /** The caller's identity (tenant, user or token hash), for per-identity session isolation. */
  readonly identity?: string | undefined
  /** Aborts the call (the request is cancelled on the wire). */
  readonly signal?: AbortSignal | undefined
}

/**
 * @since 0.1.0
 */
export interface BridgeClient {
  readonly servers: ReadonlyArray<string>
  readonly callTool: (
    target: McpBridge.ToolTarget,
    args?: Readonly<Record<string, unknown>>,
    options?: CallOptions
  ) => Promise<CallToolResult>
  readonly listTools: () => Promise<ReadonlyArray<McpBridge.BridgeTool>>
  readonly stats: () => Promise<ReadonlyArray<ConnectionPool.PoolStats>>
  /** Closes every session (and ends every child process). */
  readonly close: () => Promise<void>
}

/**
 * @since 0.1.0
 */
export interface CreateOptions extends McpBridge.LayerOptions {}

const stdioTransport = async (): Promise<Layer.Layer<McpTransport.McpTransport>> => {
  // @mcp-bridge/node provides stdio; it is an optional peer so that this package stays runtime-neutral.
  const specifier = "@mcp-bridge/node"
  try {
    const mod = await import(specifier) as { NodeTransport: { layer: () => Layer.Layer<McpTransport.McpTransport> } }
    return mod.NodeTransport.layer()
  } catch {
    return McpTransport.layer()
  }
}

const parseTimeout = (
  input: string | number | undefined
): Effect.Effect<Duration.Duration | undefined, McpBridge.McpBridgeError> => {
  if (input === undefined) return Effect.succeed(undefined)
  const duration = Duration.fromInput(input as Duration.Input)
  return Option.isSome(duration) && Duration.isGreaterThan(duration.value, Duration.zero)
    ? Effect.succeed(duration.value)
    : Effect.fail(
      new McpBridge.McpBridgeError({
        reason: new McpBridge.InvalidCall({ detail: `timeout must be a positive duration, got ${JSON.stringify(input)}` })
      })
    )
}

const needsStdio = (config: object) => {
  const servers = (config as Partial<BridgeConfig.ConfigFileEncoded>).mcpServers
  return servers !== undefined && typeof servers === "object" &&
    Object.values(servers).some((s) => s !== null && typeof s === "object" && "command" in s)
}

/**
 * Starts a bridge. Rejects with a `BridgeConfigError` when the configuration is invalid. Errors of calls reject with
 * the bridge's typed errors (`McpBridgeError`, `McpSessionError`, `ConnectionPoolError`), whose `_tag` and `reason`
 * say what went wrong.
 *
 * @example
 * ```ts
 * import { createBridge } from "@mcp-bridge/core"
 * const bridge = await createBridge({ mcpServers: { docs: { url: "http://127.0.0.1:3000/mcp" } } })
 * const result = await bridge.callTool("docs.search", { q: "pool" })
 * await bridge.close()
 * ```
 *
 * @since 0.1.0
 */
export const createBridge = async (config: object, options: CreateOptions = {}): Promise<BridgeClient> => {
  const transport = options.transport ?? (needsStdio(config) ? await stdioTransport() : McpTransport.layer())
  const runtime = ManagedRuntime.make(McpBridge.layer(config, { ...options, transport }))
  const bridge = await runtime.runPromise(McpBridge.McpBridge).catch(async (error) => {
    await runtime.dispose()
    throw error
  })
  const pool = await runtime.runPromise(ConnectionPool.ConnectionPool)
  return {
    servers: bridge.servers,
    callTool: (target, args, callOptions = {}) =>
      runtime.runPromise(
        parseTimeout(callOptions.timeout).pipe(
          Effect.flatMap((timeout) => bridge.callTool(target, args, timeout === undefined ? {} : { timeout })),
          Effect.provideService(CallerIdentity, callOptions.identity)
        ),
        callOptions.signal ? { signal: callOptions.signal } : undefined
      ),
    listTools: () => runtime.runPromise(bridge.listTools()),
    stats: () => runtime.runPromise(pool.stats),
    close: () => runtime.dispose()
  }
}
