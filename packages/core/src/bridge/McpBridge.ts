/**
 * The bridge: one service to list and call the tools of many MCP servers by qualified name (`server.tool`).
 *
 * A call is routed through the tool index (the `tools/list` of every server, kept per server, or per caller identity
 * when a 2026-07-28 server marks it `private`, and dropped when a server announces a list change; a list past its
 * time is refreshed in the background, so a call does not wait for a `tools/list` while a known list is in use), then
 * travels down the pipeline of stages in the layer's context, top to bottom (`Telemetry`, `ResultCache`, `Coalescing`,
 * `Resilience`, `Throttler`; see `ToolCaller`), to the `ConnectionPool` and a session's `tools/call`. Resilience is
 * above the throttler so that each attempt, retries included, takes its own rate-limit token.
 *
 * Built on `Layer` composition: `layer(config, options)` assembles config, transport, telemetry, pool, stages and
 * the router; each piece is a service that can be swapped (e.g. in-memory servers in tests).
 *
 * @since 0.1.0
 */
import type {
  CallToolResult,
  CompleteResult,
  GetPromptResult,
  Progress,
  ReadResourceResult,
  Tool
} from "@modelcontextprotocol/client"
import { Clock, Context, Duration, Effect, Fiber, Layer, Option, Result, Semaphore, type Stream } from "effect"
import { CallerIdentity } from "../auth/CallerIdentity.ts"
import * as McpAuth from "../auth/McpAuth.ts"
import * as BridgeConfig from "../config/BridgeConfig.ts"
import type { ToolPolicy } from "../config/ToolPolicy.ts"
import type { BridgeConfigError } from "../errors/BridgeConfigError.ts"
import { deadlineExceeded, invalidCall, McpBridgeError, UnknownServer, UnknownTool } from "../errors/McpBridgeError.ts"
import type { McpSessionError } from "../errors/McpSessionError.ts"
import { checkCall, isRecord, shown } from "../internal/validate.ts"
import * as Coalescing from "../pipeline/Coalescing.ts"
import * as Pipeline from "../pipeline/Pipeline.ts"
import * as Resilience from "../pipeline/Resilience.ts"
import * as ResultCache from "../pipeline/ResultCache.ts"
import * as Telemetry from "../pipeline/Telemetry.ts"
import * as Throttler from "../pipeline/Throttler.ts"
import type { CallRequest, ToolCaller } from "../pipeline/ToolCaller.ts"
import * as ConnectionPool from "../pool/ConnectionPool.ts"
import * as ClientHandlers from "../session/ClientHandlers.ts"
import type { ClientRounds, McpSession } from "../session/McpSession.ts"
import * as McpTransport from "../session/McpTransport.ts"
import * as MetricsRecorder from "../telemetry/MetricsRecorder.ts"
import { type BridgeMetrics, fromSnapshot } from "../telemetry/MetricsSnapshot.ts"
import * as TelemetryExport from "../telemetry/TelemetryExport.ts"
import * as Production from "./internal/production.ts"
import * as Reconfigure from "./internal/reconfigure.ts"
import * as Surface from "./internal/surface.ts"
import * as ToolIndex from "./internal/toolIndex.ts"

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
 * A resource of one server (`resources/list`), with the server's name.
 *
 * @since 0.1.0
 */
export type BridgeResource = Surface.BridgeResource

/**
 * A resource template of one server (`resources/templates/list`), with the server's name.
 *
 * @since 0.1.0
 */
export type BridgeResourceTemplate = Surface.BridgeResourceTemplate

/**
 * A prompt of one server (`prompts/list`), with its qualified name `server.prompt`.
 *
 * @since 0.1.0
 */
export type BridgePrompt = Surface.BridgePrompt

/**
 * Which prompt to get: `"server.prompt"` (split at the first dot) or an object.
 *
 * @since 0.1.0
 */
export type PromptTarget = Surface.PromptTarget

/**
 * Options of a request other than a tool call: its deadline, and for `prompts/get` and `resources/read` the rounds of a
 * caller that answers a 2026-07-28 server's `input_required` itself (see `CallOptions.rounds`).
 *
 * @since 0.1.0
 */
export interface RequestOptions extends Surface.RequestOptions {}

/**
 * Options of the resource requests: which server to ask (else the URI is routed to the server that lists it, or whose
 * template matches it), and the deadline.
 *
 * @since 0.1.0
 */
export interface ResourceOptions extends Surface.ResourceOptions {}

/**
 * A `completion/complete` request: `ref` names a prompt (`"server.prompt"`, or its own name with `server`) or a
 * resource template (its `uriTemplate`, routed to the server that lists it unless `server` is given).
 *
 * @since 0.1.0
 */
export interface CompleteParams extends Surface.CompleteParams {}

/**
 * What changed on a server: one of its lists (`tools`, `resources`, `prompts`: the server announced it, or a refresh
 * of the list found a difference), or a resource it was subscribed to (`ResourceUpdated`).
 *
 * @since 0.1.0
 */
export type BridgeChange = Surface.Change

/**
 * Which tool to call: `"server.tool"` (split at the first dot) or an object.
 *
 * @since 0.1.0
 */
export type ToolTarget = string | { readonly server: string; readonly tool: string }

/**
 * One call of `callMany`: MCP's own call shape (`CallToolRequest.params`) with a qualified `name` (`target` is
 * accepted as an alias of `name`).
 *
 * @since 0.1.0
 */
export type CallManyItem =
  & ({ readonly name: ToolTarget } | { readonly target: ToolTarget })
  & {
    readonly arguments?: Readonly<Record<string, unknown>> | undefined
    /** Request `_meta` to send with the call. */
    readonly _meta?: Readonly<Record<string, unknown>> | undefined
    readonly options?: CallOptions | undefined
  }

/**
 * The tool a `callMany` item names (`name`, or its alias `target`).
 *
 * @since 0.1.0
 */
export const itemTarget = (item: CallManyItem): ToolTarget => "name" in item ? item.name : item.target

/**
 * Options of `McpBridge.callMany`: how many calls run at once. An invalid `concurrency` does not fail the effect: it
 * makes no call and returns one failed `Result` (`InvalidCall` at `["options", "concurrency"]`).
 *
 * @since 0.1.0
 */
export interface CallManyOptions {
  /** Calls in flight at once. @default 5 */
  readonly concurrency?: number | "unbounded" | undefined
  /**
   * Runs around each call, with its index: to give a call its own identity, signal or span (the Promise facade's
   * per-call options). Its `InvalidCall` failures are placed under `calls.<index>` like the call's own.
   * @default the call as it is
   */
  readonly around?:
    | ((
      call: Effect.Effect<CallToolResult, McpBridgeError | CallError>,
      index: number
    ) => Effect.Effect<CallToolResult, McpBridgeError | CallError>)
    | undefined
}

/**
 * Options of one `callTool` (and of a `callMany` item): its deadline, request `_meta`, and a progress callback. The
 * caller's identity is not an option here: it is the `CallerIdentity` of the calling fiber.
 *
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
  /** Called with each progress notification the server sends for the call (the call is then never coalesced). */
  readonly onProgress?: ((progress: Progress) => void) | undefined
  /**
   * The caller answers a 2026-07-28 server's `input_required` itself (a gateway in front of a 2026-07-28 client, see
   * `McpSession.ClientRounds`): the call then resolves with such a result as the server sent it (check with the SDK's
   * `isInputRequiredResult`), and its retry passes the client's `inputResponses` and `requestState` here.
   */
  readonly rounds?: ClientRounds | undefined
}

/**
 * Every failure a call can end with below the router: the session's, the pool's, the throttler's and resilience's.
 *
 * @since 0.1.0
 */
export type CallError =
  | McpSessionError
  | ConnectionPool.ConnectionPoolError
  | Throttler.ThrottlerError
  | Resilience.ResilienceError
  | McpBridgeError

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * The bridge. `layer(config)` provides it with every stage on.
 *
 * @example
 * ```ts
 * const result = yield* McpBridge.McpBridge.use((bridge) => bridge.callTool("docs.search", { q: "pool" }))
 * ```
 *
 * @since 0.1.0
 */
export class McpBridge extends Context.Service<McpBridge, McpBridge.Service>()("@mcp-bridge/core/McpBridge") {}

/**
 * The type of the bridge service, `McpBridge.Service`.
 *
 * @since 0.1.0
 */
export declare namespace McpBridge {
  /**
   * What the bridge offers: the configured servers, their tools, calls by qualified name (one or many), and a metrics
   * snapshot. `layer`, `layerProduction` and `layerServices` provide it; `BridgeClient.make` and `createBridge` wrap it
   * in promises.
   *
   * @since 0.1.0
   */
  export interface Service {
    /** The configured server names. */
    readonly servers: ReadonlyArray<string>
    /**
     * Every tool of every server. A server that cannot be reached is left out (and logged); use `listServerTools`
     * to get its error.
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
     * A snapshot of the bridge's metrics per server (a `get_all_metrics()` view): calls by outcome, success
     * rate, latency mean and p50/p95/p99 per tool, cache hit rate, pool, throttle, retries, circuit state, and the
     * alerts firing now. Read from the bridge's own registry (see `MetricsRecorder`).
     */
    readonly metrics: () => Effect.Effect<BridgeMetrics>
    /**
     * Makes several calls, `concurrency` at a time (default 5), and returns one `Result` per call in input order: a
     * failed call loses nothing of the others. Calls that are safe to merge and identical share one upstream call
     * (see `Coalescing`).
     */
    readonly callMany: (
      calls: Iterable<CallManyItem>,
      options?: CallManyOptions
    ) => Effect.Effect<Array<Result.Result<CallToolResult, McpBridgeError | CallError>>>
    /** Every resource of every server (a server that cannot be reached is left out, and logged). */
    readonly listResources: () => Effect.Effect<ReadonlyArray<BridgeResource>>
    /** The resources of one server (none when it has no `resources` capability). */
    readonly listServerResources: (
      server: string
    ) => Effect.Effect<ReadonlyArray<BridgeResource>, McpBridgeError | CallError>
    /** Every resource template of every server (a server that cannot be reached is left out, and logged). */
    readonly listResourceTemplates: () => Effect.Effect<ReadonlyArray<BridgeResourceTemplate>>
    /** The resource templates of one server. */
    readonly listServerResourceTemplates: (
      server: string
    ) => Effect.Effect<ReadonlyArray<BridgeResourceTemplate>, McpBridgeError | CallError>
    /**
     * Reads a resource. The URI goes to the server that lists it (else the first whose template matches it), or to
     * `options.server`. `UnknownResource` when no server offers it, `Unsupported` when the server has no resources.
     */
    readonly readResource: (
      uri: string,
      options?: ResourceOptions
    ) => Effect.Effect<ReadResourceResult, McpBridgeError | CallError>
    /**
     * Subscribes to a resource's updates (`ResourceUpdated` on `changes`): `resources/subscribe` on 2025-era servers,
     * a `subscriptions/listen` stream on 2026-07-28 ones. Counted: each subscribe needs its unsubscribe.
     * `Unsupported` (`resources.subscribe`) when the server does not offer subscriptions.
     */
    readonly subscribeResource: (
      uri: string,
      options?: ResourceOptions
    ) => Effect.Effect<void, McpBridgeError | CallError>
    /** Ends one subscription made by `subscribeResource` (the last one ends it on the server). */
    readonly unsubscribeResource: (
      uri: string,
      options?: ResourceOptions
    ) => Effect.Effect<void, McpBridgeError | CallError>
    /** Every prompt of every server (a server that cannot be reached is left out, and logged). */
    readonly listPrompts: () => Effect.Effect<ReadonlyArray<BridgePrompt>>
    /** The prompts of one server (none when it has no `prompts` capability). */
    readonly listServerPrompts: (
      server: string
    ) => Effect.Effect<ReadonlyArray<BridgePrompt>, McpBridgeError | CallError>
    /**
     * Gets a prompt with its arguments. `UnknownPrompt` (listing the server's prompts) when the server has none by
     * that name, `Unsupported` when it has no prompts.
     */
    readonly getPrompt: (
      prompt: PromptTarget,
      args?: Readonly<Record<string, string>>,
      options?: RequestOptions
    ) => Effect.Effect<GetPromptResult, McpBridgeError | CallError>
    /** `completion/complete` for an argument of a prompt or a resource template. */
    readonly complete: (
      params: CompleteParams,
      options?: RequestOptions
    ) => Effect.Effect<CompleteResult, McpBridgeError | CallError>
    /** Checks that a server answers: `ping` (2025 era) or `server/discover` (2026-07-28). */
    readonly ping: (server: string, options?: RequestOptions) => Effect.Effect<void, McpBridgeError | CallError>
    /**
     * What changed on the servers, as it happens: list changes per server (announced by the server, or found by a
     * refresh of a list) and `resources/updated` of subscribed resources. Each run of the stream sees the changes
     * from the moment it starts; it ends when the bridge closes.
     */
    readonly changes: Stream.Stream<BridgeChange>
    /**
     * Applies a new configuration (`{ mcpServers, bridge? }`, as `layer` takes) without dropping calls: added servers
     * are routed to at once; removed ones drain (calls already on them finish; new calls get `UnknownServer`) and
     * close (a stdio server's process ends); changed ones are replaced (new calls go to the new settings while the
     * old sessions drain); unchanged ones keep their sessions, pools, cached results, breakers and limits. `changes`
     * tells of the tool lists this changes (and of the resource and prompt lists, once the new servers answer).
     * An invalid configuration fails with `BridgeConfigError` (naming the field) and changes nothing. Reconfigurations
     * run one at a time. Settings of the layer itself (`LayerOptions`: the pool's, the stages') stay as built.
     */
    readonly reconfigure: (config: object) => Effect.Effect<Reconfigured, BridgeConfigError>
    /**
     * Drops every server's tool list (or `server`'s), so that the next list or call asks the server again: for a
     * change learned elsewhere, e.g. from another replica of a gateway whose own session did not hear it.
     */
    readonly dropToolLists: (server?: string) => Effect.Effect<void>
  }
}

/**
 * What `reconfigure` changed, by server name. `drained` completes once every removed or replaced server's calls have
 * ended and its sessions are closed.
 *
 * @since 0.1.0
 */
export interface Reconfigured {
  readonly added: ReadonlyArray<string>
  readonly removed: ReadonlyArray<string>
  readonly changed: ReadonlyArray<string>
  readonly unchanged: ReadonlyArray<string>
  readonly drained: Effect.Effect<void>
}

/**
 * Options of the router itself, for `make` and `layerServices` (and `layer`, through `LayerOptions`): how long a
 * server's tool list is used before it is refreshed.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * How long the router uses a server's tool list when the server sends no positive `ttlMs` (2026-07-28 cache hint);
   * past it, the list is refreshed in the background while calls keep being routed with it. `listTools()` honours
   * `ttlMs` 0 (asks the server each time); a list-changed notification drops the list at once. @default 5 minutes
   */
  readonly toolListTimeToLive?: Duration.Input | undefined
  /**
   * Stages of your own (access control, quotas, audit), each placed before or after a named stage (see
   * `Pipeline.Insertion`). @default []
   */
  readonly stages?: ReadonlyArray<Pipeline.Insertion> | undefined
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
 * Builds the bridge over the `ConnectionPool`, the configuration and the stages in context.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const config = yield* BridgeConfig.BridgeConfig
  const pool = yield* ConnectionPool.ConnectionPool
  const recorder = Option.getOrElse(
    yield* Effect.serviceOption(MetricsRecorder.MetricsRecorder),
    () => MetricsRecorder.noop
  )
  const telemetry = yield* Telemetry.Telemetry
  // The servers in force: the configuration's own map, which `reconfigure` changes in place, so that the pool and
  // every reader of `BridgeConfig` see the same servers as the router.
  const live = config.servers as Map<string, BridgeConfig.ResolvedServer>
  const serverNames = () => Array.from(live.keys())
  const defaultListTtl = Duration.fromInputUnsafe(options.toolListTimeToLive ?? "5 minutes")

  const unknownServer = (name: string) =>
    new McpBridgeError({ reason: new UnknownServer({ server: name, available: serverNames() }) })

  const serverOf = (name: string) => {
    const server = config.servers.get(name)
    return server === undefined ? Effect.fail(unknownServer(name)) : Effect.succeed(server)
  }

  // The tool index: every server's tools/list, kept per server (per identity for `private` lists), refreshed on
  // list-changed notifications and in the background, so that routing a call costs no tools/list round trip.
  // Its tools/list goes through the server's circuit breaker (and retries), so that a dead server fails fast here too.
  const resilience = yield* Resilience.Resilience
  const guard = <A, E>(server: BridgeConfig.ResolvedServer, effect: Effect.Effect<A, E>) =>
    resilience.guard(server, effect)
  const surface = yield* Surface.make<CallError>({
    servers: config.servers,
    withSession: (server, f) => pool.withSession(server, f),
    guard,
    timeToLive: defaultListTtl
  })
  const index = yield* ToolIndex.make<BridgeTool, CallError>({
    servers: config.servers,
    listTools: (server, onSession) =>
      guard(
        server,
        pool.withSession(server, (session) => {
          onSession(session)
          surface.watch(session)
          return Effect.map(session.listTools(server.timeout), (list) => ({ era: session.era, list }))
        })
      ),
    timeToLive: defaultListTtl,
    present: toBridgeTool,
    onFetched: surface.toolsFetched
  })

  const listServerTools = (name: string) =>
    Effect.gen(function*() {
      const server = yield* serverOf(name)
      return (yield* index.list(server, yield* CallerIdentity)).tools
    })

  const listTools = () =>
    Effect.forEach(serverNames(), (name) =>
      listServerTools(name).pipe(
        Effect.catch((error) =>
          Effect.logWarning(`MCP server "${name}" left out of the tool list: ${error.message}`).pipe(
            Effect.as([] as ReadonlyArray<BridgeTool>)
          )
        )
      ), { concurrency: "unbounded" }).pipe(Effect.map((lists) => lists.flat()))

  // Every session a call runs on is watched for list changes and resource updates.
  const watch = (session: McpSession) => {
    index.watch(session)
    surface.watch(session)
  }

  // The pipeline: the built-in stages in context (each a pass-through when switched off), the user's stages in their
  // places, over the bottom of the pipeline (a leased session's tools/call).
  const cache = yield* ResultCache.ResultCache
  const throttler = yield* Throttler.Throttler
  const builtIn: ReadonlyArray<Pipeline.NamedStage<any>> = [
    { name: "telemetry", stage: telemetry },
    { name: "cache", stage: cache },
    { name: "coalescing", stage: yield* Coalescing.Coalescing },
    { name: "resilience", stage: resilience },
    { name: "throttle", stage: throttler }
  ]
  const stages = yield* Pipeline.arrange(builtIn, options.stages ?? [])
  const caller: ToolCaller<CallError> = Pipeline.compose(stages, ConnectionPool.toolCaller(pool, watch))

  // A call that fails before it reaches the pipeline (while the router fetches the server's tool list, or for a tool
  // the server does not have) still counts in the metrics, so that a server that is down shows in the error rate.
  const routeFailed = (server: BridgeConfig.ResolvedServer, tool: string) => (error: McpBridgeError | CallError) =>
    Effect.sync(() => {
      const type = Telemetry.errorTypeOf(error)
      recorder.calls(
        server.name,
        BridgeConfig.transportKind(server.transport),
        type === "UnknownTool" ? "_unknown" : tool
      )
        .refused(type, error)
    })

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

  // The call's deadlines: with a `timeout` option, the call (every wait and attempt) ends within it; without, each
  // attempt has the tool's (or server's) timeout, and the call its server's `deadline` (twice the attempt's).
  const requestOf = (
    server: BridgeConfig.ResolvedServer,
    tool: string,
    args: Readonly<Record<string, unknown>>,
    definition: Tool,
    policy: ToolPolicy,
    identity: string | undefined,
    callTimeout: Duration.Duration | undefined,
    meta: CallOptions["meta"],
    onProgress: CallOptions["onProgress"],
    nowMillis: number,
    rounds: ClientRounds | undefined
  ): CallRequest => {
    const timeout = callTimeout ?? policy.timeout ?? server.timeout
    const deadlineMillis = callTimeout !== undefined
      ? Duration.toMillis(callTimeout)
      : server.deadline !== undefined
      ? Duration.toMillis(server.deadline)
      : 2 * Duration.toMillis(timeout)
    return {
      server,
      tool,
      arguments: args,
      definition,
      policy,
      identity,
      timeout,
      deadlineAt: nowMillis + deadlineMillis,
      deadlineMillis,
      meta,
      onProgress,
      rounds
    }
  }

  const callTool = (
    target: ToolTarget,
    args: Readonly<Record<string, unknown>> = {},
    options: CallOptions = {}
  ): Effect.Effect<CallToolResult, McpBridgeError | CallError> => {
    const checked = checkCall(target, args, options)
    if (checked instanceof McpBridgeError) return Effect.fail(checked)
    const { meta, onProgress, parsed, timeout } = checked
    const rounds = options.rounds
    const server = live.get(parsed.server)
    if (server === undefined) return Effect.fail(unknownServer(parsed.server))
    return Effect.withFiber((fiber) => {
      const identity = fiber.getRef(CallerIdentity)
      // A plain-JS caller may provide anything: an identity is a string, or two tenants could share a session.
      if (identity !== undefined && typeof identity !== "string") {
        return Effect.fail(
          invalidCall(["identity"], `must be a string, got ${shown(identity)}`, parsed.server, parsed.tool)
        )
      }
      const clock = fiber.getRef(Clock.Clock)
      const now = clock.currentTimeMillisUnsafe()
      // A warm call routes from the list the index already holds, without running an effect.
      const list = index.peek(server.name, identity, now)
      const definition = list?.byName.get(parsed.tool)
      if (definition !== undefined) {
        const policy = list!.policies.get(parsed.tool)!
        return caller(
          requestOf(server, parsed.tool, args, definition, policy, identity, timeout, meta, onProgress, now, rounds)
        )
      }
      // Routing waits for the server's tool list: it counts against the call's deadline like any other wait.
      const routeMillis = timeout !== undefined
        ? Duration.toMillis(timeout)
        : server.deadline !== undefined
        ? Duration.toMillis(server.deadline)
        : 2 * Duration.toMillis(server.timeout)
      const routed = resolveTool(server, parsed.tool, identity).pipe(
        Effect.timeoutOrElse({
          duration: Duration.millis(routeMillis),
          // The tool list waits on a session: when one is still being opened, that is what used the time.
          orElse: () =>
            Effect.flatMap(pool.stats, (stats) =>
              Effect.fail(deadlineExceeded(
                server.name,
                parsed.tool,
                routeMillis,
                stats.some((s) => s.server === server.name && s.connecting > 0) ? "connect" : "route"
              )))
        })
      )
      return Effect.flatMap(
        Effect.tapError(routed, routeFailed(server, parsed.tool)),
        ({ definition, policy }) =>
          caller(
            requestOf(server, parsed.tool, args, definition, policy, identity, timeout, meta, onProgress, now, rounds)
          )
      )
    })
  }

  const metrics = () =>
    Effect.gen(function*() {
      const alerts = yield* telemetry.activeAlerts
      return fromSnapshot(serverNames(), recorder.snapshot(), yield* pool.stats, alerts)
    })

  const callMany = (calls: Iterable<CallManyItem>, manyOptions: CallManyOptions = {}) => {
    const concurrency = manyOptions.concurrency ?? 5
    if (concurrency !== "unbounded" && !(Number.isInteger(concurrency) && concurrency >= 1)) {
      return Effect.succeed([
        Result.fail(
          invalidCall(
            ["options", "concurrency"],
            `must be a positive integer or "unbounded", got ${shown(concurrency)}`
          )
        )
      ])
    }
    return Effect.forEach(Array.from(calls), (call, i) => {
      if (!isRecord(call)) {
        return Effect.succeed(Result.fail(invalidCall(["calls", String(i)], `must be an object, got ${shown(call)}`)))
      }
      const item = call as CallManyItem
      const meta = item._meta ?? item.options?.meta
      const callOptions = meta === undefined ? item.options : { ...item.options, meta }
      const effect: Effect.Effect<CallToolResult, McpBridgeError | CallError> = callTool(
        itemTarget(item),
        item.arguments,
        callOptions
      )
      return Effect.result(
        Effect.mapError(
          manyOptions.around === undefined ? effect : manyOptions.around(effect, i),
          (error) =>
            error instanceof McpBridgeError && error.reason._tag === "InvalidCall"
              ? invalidCall(
                ["calls", String(i), ...error.reason.path],
                error.reason.detail,
                error.reason.server,
                error.reason.tool
              )
              : error
        )
      )
    }, { concurrency })
  }

  // Reconfiguration: the new servers are routed to at once, and the old ones drain in the background.
  const scope = yield* Effect.scope
  const lock = yield* Semaphore.make(1)
  const forget = (name: string) =>
    Effect.andThen(
      Effect.sync(() => {
        index.forget(name)
        surface.forget(name)
      }),
      Effect.all([
        Effect.ignore(cache.invalidateServer(name)),
        resilience.forget?.(name) ?? Effect.void,
        throttler.forget?.(name) ?? Effect.void
      ], { discard: true })
    )
  // The resource and prompt lists a change of servers changes: of the servers gone, those they had; of the servers
  // new, those they answer with (asked for in the background, which also opens their first sessions).
  const announce = (changes: Reconfigure.Diff, had: ReadonlyMap<string, ReadonlySet<"resources" | "prompts">>) =>
    Effect.forEach([...changes.removed, ...changes.changed, ...changes.added], (name) =>
      Effect.gen(function*() {
        const lists = new Set(had.get(name))
        if (live.has(name)) {
          const [resources, templates, prompts] = yield* Effect.all([
            Effect.orElseSucceed(surface.service.listServerResources(name), () => []),
            Effect.orElseSucceed(surface.service.listServerResourceTemplates(name), () => []),
            Effect.orElseSucceed(surface.service.listServerPrompts(name), () => [])
          ], { concurrency: "unbounded" })
          if (resources.length + templates.length > 0) lists.add("resources")
          if (prompts.length > 0) lists.add("prompts")
        }
        for (const list of lists) surface.publish({ _tag: "ListChanged", server: name, list })
      }), { concurrency: "unbounded", discard: true })

  const reconfigure = (input: object): Effect.Effect<Reconfigured, BridgeConfigError> =>
    lock.withPermit(Effect.gen(function*() {
      const next = yield* BridgeConfig.decode(input)
      const changes = Reconfigure.diff(live, next.servers)
      const gone = [...changes.removed, ...changes.changed].map((name) => live.get(name)!)
      const had = new Map(gone.map((server) => {
        const lists = new Set<"resources" | "prompts">()
        if (surface.holds(server.name, "resources")) lists.add("resources")
        if (surface.holds(server.name, "prompts")) lists.add("prompts")
        return [server.name, lists] as const
      }))
      // The switch: from here on, calls are routed by the new configuration (the map keeps its order of names).
      for (const name of changes.removed) live.delete(name)
      for (const name of [...changes.changed, ...changes.added]) live.set(name, next.servers.get(name)!)
      yield* Effect.forEach(gone, (server) => forget(server.name), { discard: true })
      for (const name of [...changes.removed, ...changes.changed, ...changes.added]) {
        surface.publish({ _tag: "ListChanged", server: name, list: "tools" })
      }
      const drained = yield* Effect.forkIn(
        Effect.andThen(
          Effect.forEach(gone, (server) => pool.drain(server), { concurrency: "unbounded", discard: true }),
          // Results cached meanwhile by the old servers' last calls are dropped too.
          Effect.forEach(gone, (server) => Effect.ignore(cache.invalidateServer(server.name)), { discard: true })
        ),
        scope,
        { startImmediately: true }
      )
      yield* Effect.forkIn(announce(changes, had), scope, { startImmediately: true })
      return { ...changes, drained: Fiber.join(drained) } satisfies Reconfigured
    }))

  return {
    get servers() {
      return serverNames()
    },
    listTools,
    listServerTools,
    callTool,
    metrics,
    callMany,
    reconfigure,
    dropToolLists: (server) =>
      Effect.sync(() => {
        for (const name of server === undefined ? serverNames() : [server]) index.invalidate(name)
      }),
    ...surface.service
  } satisfies McpBridge.Service
})

/**
 * The bridge over the `ConnectionPool`, `BridgeConfig` and the stages in context: use it to compose your own stack.
 *
 * @since 0.1.0
 */
export const layerServices = (
  options: Options = {}
): Layer.Layer<
  McpBridge,
  BridgeConfigError,
  | ConnectionPool.ConnectionPool
  | BridgeConfig.BridgeConfig
  | Telemetry.Telemetry
  | ResultCache.ResultCache
  | Coalescing.Coalescing
  | Resilience.Resilience
  | Throttler.Throttler
> => Layer.effect(McpBridge, make(options))

/**
 * Options of `layer` and `layerProduction`: the services under the bridge (transport, client handlers, OAuth) and the
 * options of the pool and of each pipeline stage, or `false` to leave a stage out (for `pool`: a new session per
 * call). Every field is optional; by default every stage is on.
 *
 * @since 0.1.0
 */
export interface LayerOptions extends Options {
  /** The wire. @default McpTransport.layer() (HTTP, SSE; stdio needs `NodeTransport.layer()` from @mcp-bridge/node) */
  readonly transport?: Layer.Layer<McpTransport.McpTransport> | undefined
  /** Answers for what servers ask (elicitation, sampling, roots) and their log messages. @default ClientHandlers.layerNone */
  readonly handlers?: Layer.Layer<ClientHandlers.ClientHandlers> | undefined
  /** OAuth for the servers with `auth`. @default McpAuth.layerMemory() (tokens in memory, machine grants only) */
  readonly auth?: Layer.Layer<McpAuth.McpAuth> | undefined
  /** Pool options, or `false` for a new session per call (`ConnectionPool.layerUnpooled`). @default {} */
  readonly pool?: ConnectionPool.Options | false | undefined
  /** Result cache options, or `false` to cache nothing. @default {} */
  readonly cache?: ResultCache.Options | false | undefined
  /** `false` for no coalescing of identical calls. @default true */
  readonly coalescing?: boolean | undefined
  /** Throttler options, or `false` for no limits (even those in the config). @default {} */
  readonly throttle?: Throttler.Options | false | undefined
  /** Resilience options, or `false` for no retries and no circuit breakers. @default {} */
  readonly resilience?: Resilience.Options | false | undefined
  /** Telemetry options, or `false` for no metrics, no spans and no alerts. @default {} */
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
  | Coalescing.Coalescing
  | Throttler.Throttler
  | Resilience.Resilience
  | Telemetry.Telemetry
  | MetricsRecorder.MetricsRecorder

/**
 * The pipeline stages below telemetry chosen by `options` (each on by default).
 *
 * @since 0.1.0
 */
export const layerStages = (
  options: LayerOptions = {}
): Layer.Layer<ResultCache.ResultCache | Coalescing.Coalescing | Throttler.Throttler | Resilience.Resilience> =>
  Layer.mergeAll(
    options.cache === false ? ResultCache.layerDisabled : ResultCache.layer(options.cache ?? {}),
    options.coalescing === false ? Coalescing.layerDisabled : Coalescing.layer,
    options.throttle === false ? Throttler.layerDisabled : Throttler.layer(options.throttle ?? {}),
    options.resilience === false ? Resilience.layerDisabled : Resilience.layer(options.resilience ?? {})
  )

/**
 * The whole bridge from a configuration object: config, transport, telemetry (and the bridge's `MetricsRecorder`),
 * pool, the pipeline stages and the bridge.
 *
 * @example
 * ```ts
 * const Bridge = McpBridge.layer({ mcpServers: { docs: { url: "http://127.0.0.1:3000/mcp" } } })
 * const program = McpBridge.McpBridge.use((bridge) => bridge.callTool("docs.search", { q: "pool" }))
 * Effect.runPromise(program.pipe(Effect.provide(Bridge)))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (config: object, options: LayerOptions = {}): Layer.Layer<Services, BridgeConfigError> => {
  const configLayer = BridgeConfig.layer(config)
  const transport = options.transport ?? McpTransport.layer()
  const telemetryLayer = options.telemetry === false
    ? Telemetry.layerDisabled
    : Telemetry.layer(options.telemetry ?? {})
  const poolLayer = options.pool === false ? ConnectionPool.layerUnpooled : ConnectionPool.layer(options.pool ?? {})
  return layerServices(options).pipe(
    Layer.provideMerge(layerStages(options)),
    Layer.provideMerge(poolLayer),
    Layer.provideMerge(telemetryLayer),
    Layer.provideMerge(configLayer),
    Layer.provide(
      Layer.mergeAll(transport, options.auth ?? McpAuth.layerMemory(), options.handlers ?? ClientHandlers.layerNone)
    )
  )
}

/**
 * The recommended production settings: what `layerProduction` applies under the user's own configuration.
 *
 * - pool: `min` 2 sessions kept warm, `max` 20, idle sessions above `min` closed after 5 minutes, health checks every
 *   60 seconds;
 * - result cache: 5000 entries, 30 minutes TTL for cacheable tools that name none;
 * - throttle (per server): 50 calls a second, 1000 a minute, 20 in flight;
 * - export: OTLP traces and metrics from the `OTEL_*` environment (see `TelemetryExport.layerOtlp`), alert rules on.
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
export const productionEnvironment = Production.environment

/**
 * The bridge with the recommended production settings (`productionDefaults`) under the user's configuration: the user's
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
): Layer.Layer<Services, BridgeConfigError> =>
  Layer.unwrap(Effect.gen(function*() {
    const env = yield* Production.read.pipe(Effect.mapError(Production.environmentError))
    // The production settings under a configuration: at start, and for each `reconfigure`.
    const withDefaults = (input: object) => {
      const user = input as { readonly bridge?: Record<string, any> }
      const bridge = {
        ...user.bridge,
        pool: { ...productionDefaults.pool, ...user.bridge?.pool, ...env.pool },
        throttle: { ...productionDefaults.throttle, ...user.bridge?.throttle, ...env.throttle }
      }
      return { ...input, bridge }
    }
    const cache = options.cache === false
      ? false as const
      : { ...productionDefaults.cache, ...options.cache, ...env.cache } as ResultCache.Options
    // Either `MCP_BRIDGE_EXPORT=false` or `options.export: false` switches export off.
    const exportOn = env.export !== false && options.export !== false && productionDefaults.export
    const telemetry = options.telemetry === false
      ? false as const
      : yield* Telemetry.optionsFromConfig(options.telemetry).pipe(Effect.mapError(Production.environmentError))
    const bridgeLayer = layer(withDefaults(config), { ...options, cache, telemetry })
    const built = exportOn ? TelemetryExport.layerOtlp().pipe(Layer.provideMerge(bridgeLayer)) : bridgeLayer
    return Layer.effectContext(Effect.map(Effect.context<Services>(), (context) => {
      const inner = Context.get(context, McpBridge)
      const bridge: McpBridge.Service = Object.assign(Object.create(inner) as McpBridge.Service, {
        reconfigure: (next: object) => inner.reconfigure(withDefaults(next))
      })
      return Context.add(context, McpBridge, bridge)
    })).pipe(Layer.provide(built))
  }))
