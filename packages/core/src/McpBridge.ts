/**
 * The bridge: one service to list and call the tools of many MCP servers by qualified name (`server.tool`).
 *
 * A call is routed through the tool index (the `tools/list` of every server, cached per server and refreshed when a
 * server announces `tools/list_changed`), then travels down the pipeline of stages that are in the layer's context
 * (see `ToolCaller`) to the `ConnectionPool`.
 *
 * @since 0.1.0
 */
import type { CallToolResult, Tool } from "@modelcontextprotocol/client"
import { Cache, Context, Duration, Effect, Exit, Layer, Predicate, Schema } from "effect"
import * as Batcher from "./Batcher.ts"
import * as BridgeConfig from "./BridgeConfig.ts"
import { CallerIdentity } from "./CallerIdentity.ts"
import * as ConnectionPool from "./ConnectionPool.ts"
import type { McpSession } from "./McpSession.ts"
import * as McpTransport from "./McpTransport.ts"
import * as Resilience from "./Resilience.ts"
import * as ResultCache from "./ResultCache.ts"
import * as Telemetry from "./Telemetry.ts"
import * as Throttler from "./Throttler.ts"
import type { CallError, CallRequest, Stage, ToolCaller } from "./ToolCaller.ts"

// -----------------------------------------------------------------------------
// Model
// -----------------------------------------------------------------------------

/**
 * A tool of one server, with its qualified name.
 *
 * @since 0.1.0
 */
export interface BridgeTool {
  /** `server.tool` */
  readonly qualifiedName: string
  readonly server: string
  readonly name: string
  readonly description: string | undefined
  readonly inputSchema: Tool["inputSchema"]
  readonly annotations: Tool["annotations"]
  /** The definition as the server sent it. */
  readonly definition: Tool
}

/**
 * Which tool to call: `"server.tool"` (split at the first dot) or an object.
 *
 * @since 0.1.0
 */
export type ToolTarget = string | { readonly server: string; readonly tool: string }

/**
 * @since 0.1.0
 */
export interface CallOptions {
  /** Deadline of this call. @default the server's `bridge.timeout` */
  readonly timeout?: Duration.Input | undefined
  /** Request `_meta` to send with the call. */
  readonly meta?: Readonly<Record<string, unknown>> | undefined
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

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
 * The target or the arguments are malformed.
 *
 * @since 0.1.0
 */
export class InvalidCall extends Schema.TaggedClass<InvalidCall>()("InvalidCall", {
  detail: Schema.String
}) {}

/**
 * @since 0.1.0
 */
export class McpBridgeError extends Schema.TaggedError<McpBridgeError>()("McpBridgeError", {
  reason: Schema.Union([UnknownServer, UnknownTool, InvalidCall])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "UnknownServer":
        return `unknown MCP server "${r.server}"; configured servers: ${r.available.join(", ") || "(none)"}`
      case "UnknownTool":
        return `MCP server "${r.server}" has no tool "${r.tool}"; its tools: ${r.available.join(", ") || "(none)"}`
      case "InvalidCall":
        return `invalid tool call: ${r.detail}`
    }
  }
}

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 */
export class McpBridge extends Context.Service<McpBridge, {
  /** The configured server names. */
  readonly servers: ReadonlyArray<string>
  /**
   * Every tool of every server. A server that cannot be reached is left out (and logged); use `listServerTools` to
   * get its error.
   */
  readonly listTools: () => Effect.Effect<ReadonlyArray<BridgeTool>>
  /** The tools of one server. */
  readonly listServerTools: (server: string) => Effect.Effect<ReadonlyArray<BridgeTool>, McpBridgeError | CallError>
  /**
   * Calls a tool. A result with `isError: true` is a success (the tool ran and reported an error); failures of the
   * bridge, the transport or the pool are typed errors.
   */
  readonly callTool: (
    target: ToolTarget,
    args?: Readonly<Record<string, unknown>>,
    options?: CallOptions
  ) => Effect.Effect<CallToolResult, McpBridgeError | CallError>
}>()("@mcp-bridge/core/McpBridge") {}

/**
 * @since 0.1.0
 */
export interface Options {
  /** How long a server's tool list is trusted when the server sends no cache hint. @default 5 minutes */
  readonly toolListTimeToLive?: Duration.Input | undefined
}

const splitTarget = (target: ToolTarget): { server: string; tool: string } | undefined => {
  if (typeof target !== "string") return target
  const dot = target.indexOf(".")
  return dot <= 0 || dot === target.length - 1
    ? undefined
    : { server: target.slice(0, dot), tool: target.slice(dot + 1) }
}

const toBridgeTool = (server: string, definition: Tool): BridgeTool => ({
  qualifiedName: `${server}.${definition.name}`,
  server,
  name: definition.name,
  description: definition.description,
  inputSchema: definition.inputSchema,
  annotations: definition.annotations,
  definition
})

/**
 * Builds the bridge over the `ConnectionPool` and configuration in context.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const config = yield* BridgeConfig.BridgeConfig
  const pool = yield* ConnectionPool.ConnectionPool
  const servers = Array.from(config.servers.keys())
  const defaultListTtl = Duration.fromInputUnsafe(options.toolListTimeToLive ?? "5 minutes")

  const serverOf = (name: string) => {
    const server = config.servers.get(name)
    return server === undefined
      ? Effect.fail(new McpBridgeError({ reason: new UnknownServer({ server: name, available: servers }) }))
      : Effect.succeed(server)
  }

  // Sessions announce list changes; the first time the bridge sees a session it subscribes to them.
  const watched = new WeakSet<McpSession>()
  const watch = (session: McpSession) => {
    if (watched.has(session)) return
    watched.add(session)
    session.onToolsChanged(() => {
      Effect.runFork(Cache.invalidate(toolLists, session.server))
    })
  }

  interface IndexedList {
    readonly tools: ReadonlyArray<BridgeTool>
    readonly byName: ReadonlyMap<string, Tool>
    readonly policies: ReadonlyMap<string, BridgeConfig.ResolvedToolPolicy>
    readonly ttl: Duration.Duration
  }
  const toolLists = yield* Cache.makeWith(
    (name: string) =>
      Effect.gen(function*() {
        const server = config.servers.get(name)!
        const list = yield* pool.withSession(server, (session) => {
          watch(session)
          return session.listTools(server.timeout)
        })
        const byName = new Map(list.tools.map((tool) => [tool.name, tool]))
        return {
          tools: list.tools.map((tool) => toBridgeTool(name, tool)),
          byName,
          policies: new Map(list.tools.map((tool) => [tool.name, BridgeConfig.toolPolicy(server, tool.name, tool)])),
          ttl: list.ttlMs !== undefined && list.ttlMs > 0 ? Duration.millis(list.ttlMs) : defaultListTtl
        } satisfies IndexedList
      }),
    {
      capacity: Math.max(servers.length, 1),
      timeToLive: (exit) => Exit.isSuccess(exit) ? exit.value.ttl : Duration.zero
    }
  )

  const listServerTools = (name: string) =>
    serverOf(name).pipe(Effect.andThen(Cache.get(toolLists, name)), Effect.map((list) => list.tools))

  const listTools = () =>
    Effect.forEach(servers, (name) =>
      listServerTools(name).pipe(
        Effect.catch((error) =>
          Effect.logWarning(`MCP server "${name}" left out of the tool list: ${error.message}`).pipe(
            Effect.as([] as ReadonlyArray<BridgeTool>)
          )
        )
      ), { concurrency: "unbounded" }).pipe(Effect.map((lists) => lists.flat()))

  // The bottom of the pipeline: a leased session's `tools/call`.
  const bottom: ToolCaller = (request: CallRequest) =>
    pool.withSession(request.server, (session) => {
      watch(session)
      return session.callTool(
        { name: request.tool, arguments: request.arguments, _meta: request.meta },
        request.timeout
      )
    })
  // The stages in context, top to bottom; a stage that is not provided is skipped.
  const stages: Array<Stage> = []
  for (const key of [Telemetry.Telemetry, ResultCache.ResultCache, Batcher.Batcher, Throttler.Throttler, Resilience.Resilience]) {
    const stage = yield* Effect.serviceOption(key as Context.Key<unknown, Stage>)
    if (stage._tag === "Some") stages.push(stage.value)
  }
  const caller: ToolCaller = stages.reduceRight((next: ToolCaller, stage) => stage.wrap(next), bottom)

  const resolveTool = Effect.fnUntraced(function*(server: BridgeConfig.ResolvedServer, tool: string) {
    const list = yield* Cache.get(toolLists, server.name)
    const known = list.byName.get(tool)
    if (known !== undefined) return { definition: known, policy: list.policies.get(tool)! }
    // A tool the index does not know may have just been added: look again once before giving up.
    yield* Cache.invalidate(toolLists, server.name)
    const fresh = yield* Cache.get(toolLists, server.name)
    const definition = fresh.byName.get(tool)
    if (definition === undefined) {
      return yield* new McpBridgeError({
        reason: new UnknownTool({ server: server.name, tool, available: Array.from(fresh.byName.keys()) })
      })
    }
    return { definition, policy: fresh.policies.get(tool)! }
  })

  const callTool = (
    target: ToolTarget,
    args: Readonly<Record<string, unknown>> = {},
    options: CallOptions = {}
  ): Effect.Effect<CallToolResult, McpBridgeError | CallError> =>
    Effect.gen(function*() {
      const parsed = splitTarget(target)
      if (parsed === undefined) {
        return yield* new McpBridgeError({
          reason: new InvalidCall({ detail: `expected "server.tool", got ${JSON.stringify(target)}` })
        })
      }
      if (!Predicate.isObject(args) || Array.isArray(args)) {
        return yield* new McpBridgeError({
          reason: new InvalidCall({ detail: `arguments of ${parsed.server}.${parsed.tool} must be an object` })
        })
      }
      const server = yield* serverOf(parsed.server)
      const { definition, policy } = yield* resolveTool(server, parsed.tool)
      return yield* caller({
        server,
        tool: parsed.tool,
        arguments: args,
        definition,
        policy,
        identity: yield* CallerIdentity,
        timeout: options.timeout === undefined
          ? policy.timeout ?? server.timeout
          : Duration.fromInputUnsafe(options.timeout),
        meta: options.meta
      })
    })

  return McpBridge.of({ servers, listTools, listServerTools, callTool })
})

/**
 * The bridge over the `ConnectionPool` and `BridgeConfig` in context. Use it to compose your own stack.
 *
 * @since 0.1.0
 */
export const layerServices = (
  options: Options = {}
): Layer.Layer<McpBridge, never, ConnectionPool.ConnectionPool | BridgeConfig.BridgeConfig> =>
  Layer.effect(McpBridge, make(options))

/**
 * @since 0.1.0
 */
export interface LayerOptions extends Options {
  /** The wire. @default McpTransport.layer() (HTTP, SSE; stdio needs `NodeTransport.layer()` from @mcp-bridge/node) */
  readonly transport?: Layer.Layer<McpTransport.McpTransport> | undefined
  /** Pool options, or `false` for a new session per call. @default {} */
  readonly pool?: ConnectionPool.Options | false | undefined
  /** Result cache options, or `false` to cache nothing. @default {} */
  readonly cache?: ResultCache.Options | false | undefined
  /** Batcher options, or `false` for no coalescing. @default {} */
  readonly batcher?: Batcher.Options | false | undefined
  /** Throttler options, or `false` for no limits (even those in the config). @default {} */
  readonly throttle?: Throttler.Options | false | undefined
  /** Resilience options, or `false` for no retries and no circuit breakers. @default {} */
  readonly resilience?: Resilience.Options | false | undefined
  /** Telemetry options, or `false` for no metrics and no spans. @default {} */
  readonly telemetry?: Telemetry.Options | false | undefined
}

/**
 * Every service `McpBridge.layer` provides.
 *
 * @since 0.1.0
 */
export type Services =
  | McpBridge
  | ConnectionPool.ConnectionPool
  | BridgeConfig.BridgeConfig
  | ResultCache.ResultCache
  | Batcher.Batcher
  | Throttler.Throttler
  | Resilience.Resilience
  | Telemetry.Telemetry

/**
 * The pipeline stages chosen by `options` (each on by default).
 *
 * @since 0.1.0
 */
export const layerStages = (options: LayerOptions = {}) =>
  Layer.mergeAll(
    options.telemetry === false ? Telemetry.layerDisabled : Telemetry.layer(options.telemetry ?? {}),
    options.cache === false ? ResultCache.layerDisabled : ResultCache.layer(options.cache ?? {}),
    options.batcher === false ? Batcher.layerDisabled : Batcher.layer(options.batcher ?? {}),
    options.throttle === false ? Throttler.layerDisabled : Throttler.layer(options.throttle ?? {}),
    options.resilience === false ? Resilience.layerDisabled : Resilience.layer(options.resilience ?? {})
  )

/**
 * The whole bridge from a configuration object: config, transport, pool, the pipeline stages and the bridge.
 *
 * @example
 * ```ts
 * const Bridge = McpBridge.layer({ mcpServers: { docs: { url: "http://127.0.0.1:3000/mcp" } } })
 * const program = McpBridge.use((bridge) => bridge.callTool("docs.search", { q: "pool" }))
 * Effect.runPromise(program.pipe(Effect.provide(Bridge)))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (
  config: object,
  options: LayerOptions = {}
): Layer.Layer<Services, BridgeConfig.BridgeConfigError> => {
  const configLayer = BridgeConfig.layer(config)
  const transport = options.transport ?? McpTransport.layer()
  const poolLayer = options.pool === false ? ConnectionPool.layerDisabled : ConnectionPool.layer(options.pool ?? {})
  return layerServices(options).pipe(
    Layer.provideMerge(layerStages(options)),
    Layer.provideMerge(poolLayer),
    Layer.provideMerge(configLayer),
    Layer.provide(transport)
  )
}
