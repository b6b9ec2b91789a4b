/**
 * The bridge: one service to list and call the tools of many MCP servers by qualified name (`server.tool`).
 *
 * A call is routed through the tool index (the `tools/list` of every server, cached per server, or per caller identity
 * when a 2026-07-28 server marks it `private`, and dropped when a server announces a list change; a list past its
 * time is refreshed in the background, so a call does not wait for a `tools/list` while a known list is in use), then
 * travels down the pipeline of stages that are in the layer's context (see `ToolCaller`) to the `ConnectionPool`.
 *
 * @since 0.1.0
 */
import type { CallToolResult, Tool } from "@modelcontextprotocol/client"
import { Clock, Config, Context, Duration, Effect, Layer, Option, Predicate, type Result, Schema } from "effect"
import * as Batcher from "./Batcher.ts"
import * as BridgeConfig from "./BridgeConfig.ts"
import { CallerIdentity } from "./CallerIdentity.ts"
import * as ConnectionPool from "./ConnectionPool.ts"
import * as ToolIndex from "./internal/toolIndex.ts"
import * as McpAuth from "./McpAuth.ts"
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
 * One call of {@link McpBridge}'s `callMany`.
 *
 * @since 0.1.0
 */
export interface CallManyItem {
  readonly target: ToolTarget
  readonly arguments?: Readonly<Record<string, unknown>> | undefined
  readonly options?: CallOptions | undefined
}

/**
 * @since 0.1.0
 */
export interface CallManyOptions {
  /** Calls in flight at once. @default 5 */
  readonly concurrency?: number | "unbounded" | undefined
}

/**
 * @since 0.1.0
 */
export interface CallOptions {
  /**
   * Deadline of this call on the wire, per attempt (a retry gets a new one). Waiting for a rate-limit turn
   * (`throttle.maxWait`) or a pooled session (`pool.acquireTimeout`) has its own bound.
   * @default the tool's `timeout`, else the server's `bridge.timeout`
   */
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
  /**
   * A snapshot of the bridge's metrics per server (the seed's `get_all_metrics()`): calls by outcome, success rate,
   * latency mean and p50/p95/p99 per tool, cache hit rate, pool, throttle, retries, circuit state, and the alerts
   * firing now. Reads the current `Metric.MetricRegistry`.
   */
  readonly metrics: () => Effect.Effect<Telemetry.BridgeMetrics>
  /**
   * Makes several calls, `concurrency` at a time (default 5), and returns one `Result` per call in input order: a
   * failed call loses nothing of the others. Calls that are safe to merge and identical share one upstream call (see
   * `Batcher`).
   */
  readonly callMany: (
    calls: Iterable<CallManyItem>,
    options?: CallManyOptions
  ) => Effect.Effect<Array<Result.Result<CallToolResult, McpBridgeError | CallError>>>
}>()("@mcp-bridge/core/McpBridge") {}

/**
 * @since 0.1.0
 */
export interface Options {
  /**
   * How long the router uses a server's tool list when the server sends no positive `ttlMs` (2026-07-28 cache hint);
   * past it, the list is refreshed in the background while calls keep being routed with it. `listTools()` honours
   * `ttlMs` 0 (asks the server each time); a list-changed notification drops the list at once. @default 5 minutes
   */
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

  const unknownServer = (name: string) =>
    new McpBridgeError({ reason: new UnknownServer({ server: name, available: servers }) })

  const serverOf = (name: string) => {
    const server = config.servers.get(name)
    return server === undefined ? Effect.fail(unknownServer(name)) : Effect.succeed(server)
  }

  // The tool index: every server's tools/list, cached per server (per identity for `private` lists), refreshed on
  // list-changed notifications and in the background, so that routing a call costs no tools/list round trip.
  // Its tools/list goes through the server's circuit breaker (and retries), so that a dead server fails fast here too.
  const resilience = yield* Effect.serviceOption(Resilience.Resilience)
  const listPool: ConnectionPool.ConnectionPool["Service"] = resilience._tag === "None" ? pool : {
    ...pool,
    // The guard adds `ResilienceError` to the pool's errors (part of `CallError`, which the bridge's methods declare).
    withSession: ((server, f) => resilience.value.guard(server, pool.withSession(server, f))) as typeof pool.withSession
  }
  const index = yield* ToolIndex.make({
    servers: config.servers,
    pool: listPool,
    timeToLive: defaultListTtl,
    present: toBridgeTool
  })
  const watch = index.watch

  const listServerTools = (name: string) =>
    Effect.gen(function*() {
      const server = yield* serverOf(name)
      return (yield* index.list(server, yield* CallerIdentity)).tools
    })

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
  // With telemetry, the bottom also traces the session wait and the wire call, and sends W3C trace context.
  const telemetry = yield* Effect.serviceOption(Telemetry.Telemetry)
  const instrumentBottom = telemetry._tag === "Some" ? telemetry.value.instrumentBottom : undefined
  const routeFailures = telemetry._tag === "Some" ? telemetry.value.recordRouteFailure : undefined
  const bottom: ToolCaller = instrumentBottom !== undefined
    ? instrumentBottom(pool, watch)
    : (request: CallRequest) =>
      pool.withSession(request.server, (session) => {
        watch(session)
        return session.callTool(
          { name: request.tool, arguments: request.arguments, _meta: request.meta },
          request.timeout
        )
      })
  // The stages in context, top to bottom; a stage that is not provided is skipped.
  const stages: Array<Stage> = []
  for (
    const key of [
      Telemetry.Telemetry,
      ResultCache.ResultCache,
      Batcher.Batcher,
      Throttler.Throttler,
      Resilience.Resilience
    ]
  ) {
    const stage = yield* Effect.serviceOption(key as Context.Key<unknown, Stage>)
    if (stage._tag === "Some") stages.push(stage.value)
  }
  const caller: ToolCaller = stages.reduceRight((next: ToolCaller, stage) => stage.wrap(next), bottom)

  const resolveTool = Effect.fnUntraced(function*(
    server: BridgeConfig.ResolvedServer,
    tool: string,
    identity: string | undefined
  ) {
    const list = yield* index.route(server, identity)
    const known = list.byName.get(tool)
    if (known !== undefined) return { definition: known, policy: list.policies.get(tool)! }
    // A tool the index does not know may have just been added: look again once before giving up.
    const fresh = yield* index.reload(server, identity)
    const definition = fresh.byName.get(tool)
    if (definition === undefined) {
      return yield* new McpBridgeError({
        reason: new UnknownTool({ server: server.name, tool, available: Array.from(fresh.byName.keys()) })
      })
    }
    return { definition, policy: fresh.policies.get(tool)! }
  })

  const requestOf = (
    server: BridgeConfig.ResolvedServer,
    tool: string,
    args: Readonly<Record<string, unknown>>,
    definition: Tool,
    policy: BridgeConfig.ResolvedToolPolicy,
    identity: string | undefined,
    timeout: Duration.Duration | undefined,
    meta: CallOptions["meta"]
  ): CallRequest => ({
    server,
    tool,
    arguments: args,
    definition,
    policy,
    identity,
    timeout: timeout ?? policy.timeout ?? server.timeout,
    meta
  })

  const callTool = (
    target: ToolTarget,
    args: Readonly<Record<string, unknown>> = {},
    options: CallOptions = {}
  ): Effect.Effect<CallToolResult, McpBridgeError | CallError> => {
    const parsed = splitTarget(target)
    if (parsed === undefined) {
      return Effect.fail(
        new McpBridgeError({
          reason: new InvalidCall({ detail: `expected "server.tool", got ${JSON.stringify(target)}` })
        })
      )
    }
    if (!Predicate.isObject(args) || Array.isArray(args)) {
      return Effect.fail(
        new McpBridgeError({
          reason: new InvalidCall({ detail: `arguments of ${parsed.server}.${parsed.tool} must be an object` })
        })
      )
    }
    const server = config.servers.get(parsed.server)
    if (server === undefined) return Effect.fail(unknownServer(parsed.server))
    let timeout: Duration.Duration | undefined
    if (options.timeout !== undefined) {
      const decoded = Duration.fromInput(options.timeout)
      if (Option.isNone(decoded) || !Duration.isGreaterThan(decoded.value, Duration.zero)) {
        return Effect.fail(
          new McpBridgeError({
            reason: new InvalidCall({
              detail: `timeout of ${parsed.server}.${parsed.tool} must be a positive duration, got ${
                JSON.stringify(options.timeout)
              }`
            })
          })
        )
      }
      timeout = decoded.value
    }
    const meta = options.meta
    return Effect.withFiber((fiber) => {
      const identity = fiber.getRef(CallerIdentity)
      // A warm call routes from the list the index already holds, without running an effect.
      const list = index.peek(server.name, identity, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
      const definition = list?.byName.get(parsed.tool)
      if (definition !== undefined) {
        return caller(
          requestOf(server, parsed.tool, args, definition, list!.policies.get(parsed.tool)!, identity, timeout, meta)
        )
      }
      const resolved = resolveTool(server, parsed.tool, identity)
      return Effect.flatMap(
        routeFailures === undefined
          ? resolved
          : Effect.tapError(resolved, (error) => routeFailures(server, parsed.tool, error)),
        ({ definition, policy }) =>
          caller(requestOf(server, parsed.tool, args, definition, policy, identity, timeout, meta))
      )
    })
  }

  const metrics = () => Telemetry.snapshot(servers, pool.stats)

  const callMany = (calls: Iterable<CallManyItem>, manyOptions: CallManyOptions = {}) =>
    Effect.forEach(calls, (call) => Effect.result(callTool(call.target, call.arguments, call.options)), {
      concurrency: manyOptions.concurrency ?? 5
    })

  return McpBridge.of({ servers, listTools, listServerTools, callTool, metrics, callMany })
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
  /** OAuth for the servers with `auth`. @default McpAuth.layerMemory() (tokens in memory, machine grants only) */
  readonly auth?: Layer.Layer<McpAuth.McpAuth> | undefined
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
    Layer.provide(Layer.merge(transport, options.auth ?? McpAuth.layerMemory()))
  )
}

/**
 * The seed's production settings: what `layerProduction` applies under the user's own configuration.
 *
 * - pool: `min` 2 sessions kept warm, `max` 20, idle sessions above `min` closed after 5 minutes, health checks every
 *   60 seconds;
 * - result cache: 5000 entries, 30 minutes TTL for cacheable tools that name none;
 * - throttle (per server): 50 calls a second, 1000 a minute, 20 in flight;
 * - export: OTLP traces and metrics from the `OTEL_*` environment (see `Telemetry.layerOtlp`), alert rules on.
 *
 * @since 0.1.0
 */
export const productionDefaults = {
  pool: { min: 2, max: 20, idleTimeToLive: "5 minutes", healthCheckInterval: "60 seconds" },
  cache: { capacity: 5000, defaultTimeToLive: "30 minutes" },
  throttle: { perSecond: 50, perMinute: 1000, concurrency: 20 },
  export: true
} as const

/**
 * The environment variables that override `productionDefaults` (a server's own `bridge` section still wins for that
 * server).
 *
 * @since 0.1.0
 */
export const productionEnvironment = {
  "pool.min": "MCP_BRIDGE_POOL_MIN",
  "pool.max": "MCP_BRIDGE_POOL_MAX",
  "pool.idleTimeToLive": "MCP_BRIDGE_POOL_IDLE_TTL",
  "pool.healthCheckInterval": "MCP_BRIDGE_POOL_HEALTH_CHECK_INTERVAL",
  "cache.capacity": "MCP_BRIDGE_CACHE_CAPACITY",
  "cache.defaultTimeToLive": "MCP_BRIDGE_CACHE_TTL",
  "throttle.perSecond": "MCP_BRIDGE_THROTTLE_PER_SECOND",
  "throttle.perMinute": "MCP_BRIDGE_THROTTLE_PER_MINUTE",
  "throttle.concurrency": "MCP_BRIDGE_THROTTLE_CONCURRENCY",
  export: "MCP_BRIDGE_EXPORT"
} as const

const readProductionEnvironment = Effect.gen(function*() {
  const env = productionEnvironment
  const int = (name: string) => Config.option(Config.Int(name))
  // Durations are decoded here, so that a bad value names its variable; the config gets them as milliseconds.
  const duration = (name: string) =>
    Config.option(Config.Duration(name)).pipe(Config.map(Option.map((d) => Duration.toMillis(d))))
  const values = yield* Config.all({
    poolMin: int(env["pool.min"]),
    poolMax: int(env["pool.max"]),
    poolIdle: duration(env["pool.idleTimeToLive"]),
    poolHealth: duration(env["pool.healthCheckInterval"]),
    cacheCapacity: int(env["cache.capacity"]),
    cacheTtl: duration(env["cache.defaultTimeToLive"]),
    perSecond: int(env["throttle.perSecond"]),
    perMinute: int(env["throttle.perMinute"]),
    concurrency: int(env["throttle.concurrency"]),
    exportOn: Config.option(Config.Boolean(env.export))
  })
  const some = <A>(o: Option.Option<A>, key: string): Record<string, A> => Option.isSome(o) ? { [key]: o.value } : {}
  return {
    pool: {
      ...some(values.poolMin, "min"),
      ...some(values.poolMax, "max"),
      ...some(values.poolIdle, "idleTimeToLive"),
      ...some(values.poolHealth, "healthCheckInterval")
    },
    cache: { ...some(values.cacheCapacity, "capacity"), ...some(values.cacheTtl, "defaultTimeToLive") },
    throttle: {
      ...some(values.perSecond, "perSecond"),
      ...some(values.perMinute, "perMinute"),
      ...some(values.concurrency, "concurrency")
    },
    export: Option.getOrUndefined(values.exportOn)
  }
})

const environmentError = (error: { readonly message: string }) =>
  new BridgeConfig.BridgeConfigError({ reason: "Invalid", path: ["environment"], detail: error.message })

/**
 * The bridge with the seed's production settings (`productionDefaults`) under the user's configuration: the user's
 * global `bridge` section overrides them field by field, the `MCP_BRIDGE_*` environment variables
 * (`productionEnvironment`) override both, and each server's own `bridge` section still has the last word for that
 * server. Telemetry with alert rules is on, and OTLP export follows the `OTEL_*` variables (`MCP_BRIDGE_EXPORT=false`
 * or `options.export: false` switches it off).
 *
 * @example
 * ```ts
 * // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 MCP_BRIDGE_POOL_MAX=40 node agent.js
 * const Bridge = McpBridge.layerProduction(JSON.parse(fs.readFileSync("mcp.json", "utf8")))
 * ```
 *
 * @since 0.1.0
 */
export const layerProduction = (
  config: object,
  options: LayerOptions & { readonly export?: boolean | undefined } = {}
): Layer.Layer<Services, BridgeConfig.BridgeConfigError> =>
  Layer.unwrap(Effect.gen(function*() {
    const env = yield* readProductionEnvironment.pipe(Effect.mapError(environmentError))
    const user = config as { readonly bridge?: Record<string, any> }
    const bridge = {
      ...user.bridge,
      pool: { ...productionDefaults.pool, ...user.bridge?.pool, ...env.pool },
      throttle: { ...productionDefaults.throttle, ...user.bridge?.throttle, ...env.throttle }
    }
    const cache = options.cache === false
      ? false as const
      : { ...productionDefaults.cache, ...options.cache, ...env.cache } as ResultCache.Options
    // Either `MCP_BRIDGE_EXPORT=false` or `options.export: false` switches export off.
    const exportOn = env.export !== false && options.export !== false && productionDefaults.export
    const telemetry = options.telemetry === false
      ? false as const
      : yield* Telemetry.optionsFromConfig(options.telemetry).pipe(Effect.mapError(environmentError))
    const bridgeLayer = layer({ ...config, bridge }, { ...options, cache, telemetry })
    return exportOn ? bridgeLayer.pipe(Layer.provideMerge(Telemetry.layerOtlp())) : bridgeLayer
  }))
