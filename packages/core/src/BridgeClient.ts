/**
 * The Promise facade, for programs that do not use Effect: `BridgeClient.make(config, options)` returns `callTool`,
 * `listTools`, `callMany` and `close`, running the same layers as `McpBridge.layer` on a `ManagedRuntime`.
 *
 * This builder is runtime-neutral: its wire is `McpTransport.layer()` (Streamable HTTP, SSE, in-memory) unless
 * `options.transport` says otherwise. Node programs use `createBridge` from `@mcp-bridge/node`, which is this builder
 * with the Node transport (stdio child processes as well).
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/client"
import { type Duration, Effect, ManagedRuntime } from "effect"
import { CallerIdentity } from "./CallerIdentity.ts"
import * as ConnectionPool from "./ConnectionPool.ts"
import * as McpAuth from "./McpAuth.ts"
import * as McpBridge from "./McpBridge.ts"
import type * as McpBridgeError from "./McpBridgeError.ts"
import * as McpTransport from "./McpTransport.ts"
import type { BridgeMetrics } from "./MetricsSnapshot.ts"
import * as ResultCache from "./ResultCache.ts"

/**
 * @since 0.1.0
 */
export interface CallOptions {
  /**
   * Deadline of this call on the wire, per attempt, e.g. `"5 seconds"` or milliseconds (see `McpBridge.CallOptions`).
   * @default the tool's `timeout`, else the server's `bridge.timeout`
   */
  readonly timeout?: string | number | undefined
  /** The caller's identity (tenant, user or token hash), for per-identity session isolation. */
  readonly identity?: string | undefined
  /** Aborts the call (the request is cancelled on the wire). */
  readonly signal?: AbortSignal | undefined
  /** Request `_meta` to send, e.g. W3C `traceparent` / `tracestate` of your own trace. */
  readonly meta?: Readonly<Record<string, unknown>> | undefined
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
  /**
   * Makes several calls, `concurrency` at a time (default 5). Never rejects because of one call: each call gets its own
   * `{ ok: true, result }` or `{ ok: false, error }`, in input order (`error` is the bridge's typed error).
   */
  readonly callMany: (
    calls: ReadonlyArray<CallManyItem>,
    options?: CallManyOptions
  ) => Promise<Array<CallManyOutcome>>
  readonly listTools: () => Promise<ReadonlyArray<McpBridge.BridgeTool>>
  readonly stats: () => Promise<ReadonlyArray<ConnectionPool.PoolStats>>
  /** A snapshot of the metrics per server (`McpBridge.metrics()`): success rate, latency percentiles, cache, pool. */
  readonly metrics: () => Promise<BridgeMetrics>
  /** The result cache: invalidation and stats (see `ResultCache`). */
  readonly cache: CacheControl
  /** Closes every session (and ends every child process). */
  readonly close: () => Promise<void>
}

/**
 * One call of `callMany`. `options.signal` is ignored: pass one signal for the whole batch in `CallManyOptions`.
 *
 * @since 0.1.0
 */
export interface CallManyItem {
  readonly target: McpBridge.ToolTarget
  readonly arguments?: Readonly<Record<string, unknown>> | undefined
  readonly options?: CallOptions | undefined
}

/**
 * @since 0.1.0
 */
export interface CallManyOptions {
  /** Calls in flight at once. @default 5 */
  readonly concurrency?: number | undefined
  /** Aborts every call still running. */
  readonly signal?: AbortSignal | undefined
}

/**
 * What one call of `callMany` ended with.
 *
 * @since 0.1.0
 */
export type CallManyOutcome =
  | { readonly ok: true; readonly result: CallToolResult }
  | { readonly ok: false; readonly error: McpBridgeError.McpBridgeError | McpBridge.CallError }

/**
 * The result cache of a `BridgeClient`. Each `invalidate*` resolves to the number of results dropped.
 *
 * @example
 * ```ts
 * await bridge.cache.invalidateTool("crm", "get_account")
 * const { hitRate, servers } = await bridge.cache.stats()
 * ```
 *
 * @since 0.1.0
 */
export interface CacheControl {
  readonly invalidateServer: (server: string) => Promise<number>
  readonly invalidateTool: (server: string, tool: string) => Promise<number>
  readonly invalidateKey: (selector: ResultCache.CallSelector) => Promise<number>
  readonly invalidateWhen: (predicate: (call: ResultCache.CachedCall) => boolean) => Promise<number>
  readonly invalidateAll: () => Promise<number>
  readonly stats: () => Promise<ResultCache.Stats>
}

/**
 * Options of {@link make}: the options of `McpBridge.layer`, plus those of the default transport.
 *
 * @since 0.1.0
 */
export interface Options extends McpBridge.LayerOptions, McpTransport.Options {
  /**
   * Asks the user to authorize an OAuth server (`auth` in its entry): show `request.url`, resolve with the code or
   * the URL the browser was redirected to. Tokens are kept in memory; pass `auth` for another store.
   */
  readonly onAuthorization?: McpAuth.AuthorizationCallback | undefined
  /** The redirect URI of `onAuthorization`'s flows. @default "http://127.0.0.1/callback" */
  readonly redirectUri?: string | undefined
}

// A facade call: its options passed on (the bridge checks them), its identity provided.
const facadeCall = (
  bridge: McpBridge.McpBridge["Service"],
  target: McpBridge.ToolTarget,
  args: Readonly<Record<string, unknown>> | undefined,
  options: CallOptions
): Effect.Effect<CallToolResult, McpBridgeError.McpBridgeError | McpBridge.CallError> => {
  const effect = bridge.callTool(target, args, {
    ...(options.timeout === undefined ? {} : { timeout: options.timeout as Duration.Input }),
    ...(options.meta === undefined ? {} : { meta: options.meta })
  })
  return options.identity === undefined ? effect : Effect.provideService(effect, CallerIdentity, options.identity)
}

/**
 * Starts a bridge over `options.transport`, by default `McpTransport.layer({ memory, fetch })`: Streamable HTTP, SSE
 * and in-memory servers, no stdio. Rejects with a `BridgeConfigError` when the configuration is invalid. Errors of
 * calls reject with the bridge's typed errors (`McpBridgeError`, `McpSessionError`, `ConnectionPoolError`,
 * `ThrottlerError`, `ResilienceError`), whose `_tag` and `reason` say what went wrong.
 *
 * On Node, use `createBridge` from `@mcp-bridge/node` instead: the same client, with stdio servers too.
 *
 * @example
 * ```ts
 * import { BridgeClient } from "@mcp-bridge/core"
 * const bridge = await BridgeClient.make({ mcpServers: { docs: { url: "http://127.0.0.1:3000/mcp" } } })
 * const result = await bridge.callTool("docs.search", { q: "pool" })
 * await bridge.close()
 * ```
 *
 * @since 0.1.0
 */
export const make = async (config: object, options: Options = {}): Promise<BridgeClient> => {
  const transport = options.transport ?? McpTransport.layer(options)
  const interaction = options.onAuthorization === undefined
    ? undefined
    : McpAuth.interactionFromCallback(options.onAuthorization, { redirectUri: options.redirectUri })
  const auth = options.auth ?? (interaction === undefined ? undefined : McpAuth.layerMemory({ interaction }))
  const runtime = ManagedRuntime.make(McpBridge.layer(config, { ...options, transport, auth }))
  const bridge = await runtime.runPromise(McpBridge.McpBridge).catch(async (error) => {
    await runtime.dispose()
    throw error
  })
  const pool = await runtime.runPromise(ConnectionPool.ConnectionPool)
  const cache = await runtime.runPromise(ResultCache.ResultCache)
  return {
    servers: bridge.servers,
    callTool: (target, args, callOptions = {}) =>
      runtime.runPromise(
        facadeCall(bridge, target, args, callOptions),
        callOptions.signal ? { signal: callOptions.signal } : undefined
      ),
    callMany: (calls, manyOptions = {}) =>
      runtime.runPromise(
        Effect.forEach(calls, (call) =>
          facadeCall(bridge, call.target, call.arguments, call.options ?? {}).pipe(
            Effect.match({
              onSuccess: (result): CallManyOutcome => ({ ok: true, result }),
              onFailure: (error): CallManyOutcome => ({ ok: false, error })
            })
          ), { concurrency: manyOptions.concurrency ?? 5 }),
        manyOptions.signal ? { signal: manyOptions.signal } : undefined
      ),
    listTools: () => runtime.runPromise(bridge.listTools()),
    stats: () => runtime.runPromise(pool.stats),
    metrics: () => runtime.runPromise(bridge.metrics()),
    cache: {
      invalidateServer: (server) => runtime.runPromise(cache.invalidateServer(server)),
      invalidateTool: (server, tool) => runtime.runPromise(cache.invalidateTool(server, tool)),
      invalidateKey: (selector) => runtime.runPromise(cache.invalidateKey(selector)),
      invalidateWhen: (predicate) => runtime.runPromise(cache.invalidateWhen(predicate)),
      invalidateAll: () => runtime.runPromise(cache.invalidateAll),
      stats: () => runtime.runPromise(cache.stats)
    },
    close: () => runtime.dispose()
  }
}
