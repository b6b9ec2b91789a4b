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
import type {
  CallToolResult,
  CompleteResult,
  CreateMessageResult,
  ElicitResult,
  GetPromptResult,
  LoggingLevel,
  Progress,
  ReadResourceResult,
  Root
} from "@modelcontextprotocol/client"
import {
  Cause,
  type Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  ManagedRuntime,
  Queue,
  Result,
  Stream,
  type Tracer
} from "effect"
import { CallerIdentity } from "../auth/CallerIdentity.ts"
import * as McpAuth from "../auth/McpAuth.ts"
import { invalid as invalidOption } from "../errors/BridgeConfigError.ts"
import * as McpBridgeError from "../errors/McpBridgeError.ts"
import { shown } from "../internal/validate.ts"
import * as ResultCache from "../pipeline/ResultCache.ts"
import * as ConnectionPool from "../pool/ConnectionPool.ts"
import * as ClientHandlers from "../session/ClientHandlers.ts"
import * as McpTransport from "../session/McpTransport.ts"
import type { MetricsRecorder } from "../telemetry/MetricsRecorder.ts"
import type { BridgeMetrics } from "../telemetry/MetricsSnapshot.ts"
import * as McpBridge from "./McpBridge.ts"

/**
 * Options of one call of the facade. Every field is checked: a wrong one rejects the call with `InvalidCall` naming it.
 *
 * @since 0.1.0
 */
export interface CallOptions {
  /**
   * The call's deadline: every wait and every attempt end within it (see `McpBridge.CallOptions`), e.g.
   * `"5 seconds"` or milliseconds.
   * @default each attempt has the tool's `timeout` (else the server's), the call the server's `deadline`
   */
  readonly timeout?: string | number | undefined
  /** The caller's identity (tenant, user or token hash), for per-identity sessions and cached results: a string. */
  readonly identity?: string | undefined
  /** Aborts the call: it rejects with `McpBridgeError` reason `Aborted` (with the signal's reason), cancelled on the wire. */
  readonly signal?: AbortSignal | undefined
  /** Request `_meta` to send, e.g. W3C `traceparent` / `tracestate` of your own trace. */
  readonly meta?: Readonly<Record<string, unknown>> | undefined
  /**
   * Called with each progress notification the server sends for this call (`{ progress, total?, message? }`). A call
   * with `onProgress` is never served from the cache nor coalesced with another.
   */
  readonly onProgress?: ((progress: Progress) => void) | undefined
}

/**
 * A running bridge. Every method returns a promise that rejects (never throws) with a typed error; after `close()`
 * (or while it runs) calls reject with `McpBridgeError` reason `BridgeClosed`. `await using` closes it.
 *
 * @since 0.1.0
 */
export interface BridgeClient extends AsyncDisposable {
  readonly servers: ReadonlyArray<string>
  readonly callTool: (
    name: McpBridge.ToolTarget,
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
  /**
   * Replaces the roots given in `options.roots` and tells the servers that support it (`roots/list_changed`).
   */
  readonly setRoots: (roots: ReadonlyArray<Root>) => void
  /** Every resource of every server (a server that cannot be reached is left out, and logged). */
  readonly listResources: () => Promise<ReadonlyArray<McpBridge.BridgeResource>>
  /** Every resource template of every server. */
  readonly listResourceTemplates: () => Promise<ReadonlyArray<McpBridge.BridgeResourceTemplate>>
  /**
   * Reads a resource: the URI goes to the server that lists it (or whose template matches it), or to
   * `options.server`. Rejects with `McpBridgeError` reason `UnknownResource` when no server offers it.
   */
  readonly readResource: (uri: string, options?: ResourceOptions) => Promise<ReadResourceResult>
  /** Subscribes to a resource's updates: they reach `onChange` listeners as `ResourceUpdated`. */
  readonly subscribeResource: (uri: string, options?: ResourceOptions) => Promise<void>
  /** Ends one subscription made by `subscribeResource`. */
  readonly unsubscribeResource: (uri: string, options?: ResourceOptions) => Promise<void>
  /** Every prompt of every server, with qualified names (`server.prompt`). */
  readonly listPrompts: () => Promise<ReadonlyArray<McpBridge.BridgePrompt>>
  /** Gets a prompt (`"server.prompt"` or `{ server, prompt }`) with its arguments. */
  readonly getPrompt: (
    prompt: McpBridge.PromptTarget,
    args?: Readonly<Record<string, string>>,
    options?: RequestOptions
  ) => Promise<GetPromptResult>
  /** `completion/complete` for an argument of a prompt or a resource template (see `McpBridge.CompleteParams`). */
  readonly complete: (params: McpBridge.CompleteParams, options?: RequestOptions) => Promise<CompleteResult>
  /** Checks that a server answers. */
  readonly ping: (server: string, options?: RequestOptions) => Promise<void>
  /**
   * Calls `listener` with each change on the servers (`McpBridge.BridgeChange`: a list changed, a subscribed
   * resource was updated), from now on; returns the function that stops it. Listeners stop when the bridge closes.
   *
   * @example
   * ```ts
   * const stop = bridge.onChange((change) => console.log(change._tag, change.server))
   * stop()
   * ```
   */
  readonly onChange: (listener: (change: McpBridge.BridgeChange) => void) => () => void
  /** Closes every session (and ends every child process); calls still running reject with `BridgeClosed`. */
  readonly close: () => Promise<void>
}

/**
 * Options of the facade's requests other than tool calls: deadline, caller identity and an abort signal.
 *
 * @since 0.1.0
 */
export interface RequestOptions {
  /** The request's deadline, e.g. `"5 seconds"` or milliseconds. @default the server's `bridge.timeout` */
  readonly timeout?: string | number | undefined
  /** The caller's identity (for per-identity sessions and `private` lists). */
  readonly identity?: string | undefined
  /** Aborts the request: it rejects with `McpBridgeError` reason `Aborted`. */
  readonly signal?: AbortSignal | undefined
}

/**
 * Options of the facade's resource requests: the server to ask (else the URI is routed), and `RequestOptions`.
 *
 * @since 0.1.0
 */
export interface ResourceOptions extends RequestOptions {
  readonly server?: string | undefined
}

/**
 * One call of `callMany`: MCP's call shape (`{ name, arguments, _meta }`, `target` accepted as an alias of `name`),
 * with a signal and options of its own.
 *
 * @since 0.1.0
 */
export type CallManyItem =
  & ({ readonly name: McpBridge.ToolTarget } | { readonly target: McpBridge.ToolTarget })
  & {
    readonly arguments?: Readonly<Record<string, unknown>> | undefined
    readonly _meta?: Readonly<Record<string, unknown>> | undefined
    /** Aborts this call only (its outcome is an `Aborted` error). */
    readonly signal?: AbortSignal | undefined
    readonly options?: CallOptions | undefined
  }

/**
 * Options of `BridgeClient.callMany`: how many calls run at once, and a signal that aborts every call still running. A
 * wrong value rejects the whole `callMany` with `InvalidCall` naming it (e.g. `["options", "concurrency"]`).
 *
 * @since 0.1.0
 */
export interface CallManyOptions {
  /** Calls in flight at once. @default 5 */
  readonly concurrency?: number | "unbounded" | undefined
  /** Aborts every call still running (their outcomes are `Aborted` errors). */
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
 * The trace context of the code that makes a call, read by `Options.traceContext` when the call is made.
 *
 * @since 0.1.0
 */
export interface TraceContext {
  /** The parent of the call's span (e.g. the caller's OpenTelemetry span, as an external span). */
  readonly parent: Tracer.AnySpan
  /** The caller's W3C `tracestate`, sent to the server in the request `_meta` with the bridge's `traceparent`. */
  readonly tracestate?: string | undefined
}

/**
 * Options of {@link make}: the options of `McpBridge.layer`, plus those of the default transport.
 *
 * @since 0.1.0
 */
export interface Options extends McpBridge.LayerOptions, McpTransport.Options {
  /**
   * The production preset (`McpBridge.layerProduction`): production pool, cache and throttle settings under
   * the configuration's own, `MCP_BRIDGE_*` overrides, alert rules, and OTLP export of traces and metrics configured
   * from the `OTEL_*` environment (`TelemetryExport.layerOtlp`). `{ export: false }`: the preset without export.
   * @default false (`McpBridge.layer`)
   */
  readonly production?: boolean | { readonly export?: boolean | undefined } | undefined
  /**
   * A layer built over the bridge's services (it can read the bridge's `MetricsRecorder`) whose services every call
   * runs with: a tracer that receives the bridge's spans, exporters of the bridge's metrics
   * (`TelemetryExport.layerOtlp()`, `NodeOtel.layerGlobal()` of `@mcp-bridge/node`). Closed with the bridge.
   * @default none
   */
  readonly observability?: Layer.Layer<never, never, MetricsRecorder> | undefined
  /**
   * Reads the caller's trace context, synchronously, each time a call is made (`callMany`: once for its calls): the
   * call's span becomes a child of `parent`, and `tracestate` goes to the server. A call whose `meta` has a
   * `traceparent` of its own keeps it. `createBridge` of `@mcp-bridge/node` reads OpenTelemetry's active span.
   * @default none
   */
  readonly traceContext?: (() => TraceContext | undefined) | undefined
  /**
   * Asks the user to authorize an OAuth server (`auth` in its entry): show `request.url`, resolve with the code or
   * the URL the browser was redirected to. Tokens are kept in memory; pass `auth` for another store.
   */
  readonly onAuthorization?: McpAuth.AuthorizationCallback | undefined
  /** The redirect URI of `onAuthorization`'s flows. @default "http://127.0.0.1/callback" */
  readonly redirectUri?: string | undefined
  /**
   * Answers a server's question for the user (elicitation): resolve with `{ action: "accept", content }`,
   * `{ action: "decline" }` or `{ action: "cancel" }`. `origin` says which server, tool and identity asked. Without it,
   * servers are told the client cannot elicit.
   */
  readonly onElicitation?:
    | ((request: ClientHandlers.ElicitParams, origin: ClientHandlers.Origin) => ElicitResult | Promise<ElicitResult>)
    | undefined
  /** `onElicitation` answers URL-mode elicitations too (`request.mode === "url"`: the user opens `request.url`). */
  readonly elicitationUrl?: boolean | undefined
  /** Answers a server's request for a completion of the application's model (sampling). */
  readonly onSampling?:
    | ((
      request: ClientHandlers.SampleParams,
      origin: ClientHandlers.Origin
    ) => CreateMessageResult | Promise<CreateMessageResult>)
    | undefined
  /** The roots servers may work in (`file://` URIs), or a function of who asks; `setRoots` changes them. */
  readonly roots?:
    | ReadonlyArray<Root>
    | ((origin: ClientHandlers.Origin) => ReadonlyArray<Root> | Promise<ReadonlyArray<Root>>)
    | undefined
  /** Each log message of a server. @default logged through Effect's logger at the message's level */
  readonly onLog?: ((message: ClientHandlers.LogMessage, origin: ClientHandlers.Origin) => void) | undefined
  /** The least severe level servers send logs at (a server's `bridge.logLevel` wins). @default "info" with `onLog` */
  readonly logLevel?: LoggingLevel | undefined
}

const isSignal = (value: unknown): value is AbortSignal =>
  typeof AbortSignal !== "undefined" && value instanceof AbortSignal

const abortedBy = (
  signal: AbortSignal,
  target: { readonly server?: string | undefined; readonly tool?: string | undefined }
) =>
  new McpBridgeError.McpBridgeError({
    reason: new McpBridgeError.Aborted({
      ...(target.server === undefined ? {} : { server: target.server }),
      ...(target.tool === undefined ? {} : { tool: target.tool }),
      reason: signal.reason
    })
  })

// Runs `effect` under `signal`: an aborted signal fails with `Aborted` (the signal's reason) and runs nothing; a signal
// that aborts later interrupts the call's fiber in the abort event itself, so that whatever it waits for (the tool
// list, a session, a rate-limit turn, a backoff) it stops there, and a request already sent is cancelled on the wire.
const underSignal = <A, E>(
  effect: Effect.Effect<A, E>,
  signal: AbortSignal,
  target: { readonly server?: string | undefined; readonly tool?: string | undefined }
): Effect.Effect<A, E | McpBridgeError.McpBridgeError> =>
  Effect.suspend(() => {
    if (signal.aborted) return Effect.fail(abortedBy(signal, target))
    return Effect.flatMap(Effect.forkChild(effect, { startImmediately: true }), (fiber) => {
      const onAbort = () => fiber.interruptUnsafe()
      signal.addEventListener("abort", onAbort, { once: true })
      return Effect.flatMap(
        Effect.ensuring(Fiber.await(fiber), Effect.sync(() => signal.removeEventListener("abort", onAbort))),
        (exit): Effect.Effect<A, E | McpBridgeError.McpBridgeError> =>
          Exit.isFailure(exit) && signal.aborted && Cause.hasInterruptsOnly(exit.cause)
            ? Effect.fail(abortedBy(signal, target))
            : exit
      )
    })
  })

const targetOf = (name: unknown): { readonly server?: string; readonly tool?: string } => {
  if (typeof name === "string") {
    const dot = name.indexOf(".")
    return dot > 0 ? { server: name.slice(0, dot), tool: name.slice(dot + 1) } : {}
  }
  return typeof name === "object" && name !== null
    ? name as { readonly server?: string; readonly tool?: string }
    : {}
}

const rejectInvalid = (path: ReadonlyArray<string>, value: unknown, expected: string) =>
  McpBridgeError.invalidCall(path, `must be ${expected}, got ${shown(value)}`)

// The options of one facade call, checked: the bridge's `CallOptions`, the identity and the signal.
const checkOptions = (
  options: unknown,
  path: ReadonlyArray<string>
):
  | McpBridgeError.McpBridgeError
  | {
    readonly call: McpBridge.CallOptions
    readonly identity: string | undefined
    readonly signal: AbortSignal | undefined
  } =>
{
  if (options === undefined) return { call: {}, identity: undefined, signal: undefined }
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return rejectInvalid(path, options, "an object")
  }
  const o = options as CallOptions
  if (o.identity !== undefined && typeof o.identity !== "string") {
    return rejectInvalid([...path, "identity"], o.identity, "a string")
  }
  if (o.signal !== undefined && !isSignal(o.signal)) {
    return rejectInvalid([...path, "signal"], o.signal, "an AbortSignal")
  }
  return {
    call: {
      ...(o.timeout === undefined ? {} : { timeout: o.timeout as Duration.Input }),
      ...(o.meta === undefined ? {} : { meta: o.meta }),
      ...(o.onProgress === undefined ? {} : { onProgress: o.onProgress })
    },
    identity: o.identity,
    signal: o.signal
  }
}

// The options of a resource request without `server` (checked as call options).
const stripServer = (options: unknown): unknown => {
  if (typeof options !== "object" || options === null || !("server" in options)) return options
  const { server: _server, ...rest } = options as ResourceOptions
  return rest
}

const callbackNames = ["onElicitation", "onSampling", "onLog"] as const

// The client handlers of the facade's callbacks, and `setRoots`; `undefined` when none is given.
const handlersOf = (options: Options): {
  readonly handlers: ClientHandlers.Handlers
  readonly setRoots: (roots: ReadonlyArray<Root>) => void
} => {
  for (const name of callbackNames) {
    const value = options[name]
    if (value !== undefined && typeof value !== "function") {
      throw invalidOption(["options", name], `must be a function, got ${shown(value)}`)
    }
  }
  if (options.roots !== undefined && typeof options.roots !== "function" && !Array.isArray(options.roots)) {
    throw invalidOption(["options", "roots"], `must be an array of roots or a function, got ${shown(options.roots)}`)
  }
  const { onElicitation, onLog, onSampling } = options
  let roots: Options["roots"] = options.roots
  const listeners = new Set<Queue.Queue<void, unknown>>()
  const promised = <A>(f: () => A | Promise<A>) => Effect.tryPromise({ try: async () => await f(), catch: (e) => e })
  const handlers: ClientHandlers.Handlers = {
    ...(onElicitation === undefined ? {} : {
      elicit: (params, origin) => promised(() => onElicitation(params, origin)),
      elicitUrl: options.elicitationUrl === true
    }),
    ...(onSampling === undefined ? {} : { sample: (params, origin) => promised(() => onSampling(params, origin)) }),
    ...(roots === undefined ? {} : {
      roots: {
        list: (origin) => promised(() => typeof roots === "function" ? roots(origin) : roots ?? []),
        changes: Stream.callback<void>((queue) =>
          Effect.acquireRelease(
            Effect.sync(() => listeners.add(queue as Queue.Queue<void, unknown>)),
            () => Effect.sync(() => listeners.delete(queue as Queue.Queue<void, unknown>))
          )
        )
      }
    }),
    ...(onLog === undefined ? {} : { log: (message, origin) => Effect.sync(() => onLog(message, origin)) }),
    ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel })
  }
  return {
    handlers,
    setRoots: (next) => {
      roots = next
      for (const queue of listeners) Queue.offerUnsafe(queue, undefined)
    }
  }
}

// The call options with the caller's `tracestate`, unless the call carries trace context of its own.
const withTrace = (call: McpBridge.CallOptions, trace: TraceContext): McpBridge.CallOptions =>
  trace.tracestate === undefined || call.meta?.traceparent !== undefined || call.meta?.tracestate !== undefined
    ? call
    : { ...call, meta: { ...call.meta, tracestate: trace.tracestate } }

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
  const client = handlersOf(options)
  const handlers = options.handlers ?? ClientHandlers.layer(client.handlers)
  const layerOptions = { ...options, transport, auth, handlers }
  const production = options.production ?? false
  const bridgeLayer = production === false
    ? McpBridge.layer(config, layerOptions)
    : McpBridge.layerProduction(config, production === true ? layerOptions : { ...layerOptions, ...production })
  const runtime = ManagedRuntime.make(
    options.observability === undefined
      ? bridgeLayer
      : options.observability.pipe(Layer.provideMerge(bridgeLayer))
  )
  const traceContext = options.traceContext
  const bridge = await runtime.runPromise(McpBridge.McpBridge).catch(async (error) => {
    await runtime.dispose()
    throw error
  })
  const pool = await runtime.runPromise(ConnectionPool.ConnectionPool)
  const cache = await runtime.runPromise(ResultCache.ResultCache)

  // Closing: calls still running are interrupted (cancelled on the wire) through the signal every call runs with, and
  // reject with `BridgeClosed`. One listener on a shared signal per call, rather than a race of two fibers.
  const bridgeClosed = () => new McpBridgeError.McpBridgeError({ reason: new McpBridgeError.BridgeClosed({}) })
  const closing = new AbortController()
  let closed: Promise<void> | undefined

  // Runs an effect for a caller: never throws, rejects with the typed error; `BridgeClosed` once closing.
  const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => {
    if (closed !== undefined) return Promise.reject(bridgeClosed())
    return runtime.runPromise(effect, { signal: closing.signal }).catch((error: unknown) => {
      throw closed !== undefined && !(error instanceof McpBridgeError.McpBridgeError) ? bridgeClosed() : error
    })
  }
  const guarded =
    <Args extends ReadonlyArray<unknown>, A>(f: (...args: Args) => Promise<A>) => (...args: Args): Promise<A> => {
      try {
        return f(...args)
      } catch (error) {
        return Promise.reject(error)
      }
    }

  const callEffect = (
    name: unknown,
    args: unknown,
    options: unknown,
    path: ReadonlyArray<string>,
    trace: TraceContext | undefined,
    extraSignal?: AbortSignal
  ): Effect.Effect<CallToolResult, McpBridgeError.McpBridgeError | McpBridge.CallError> => {
    const checked = checkOptions(options, path)
    if (checked instanceof McpBridgeError.McpBridgeError) return Effect.fail(checked)
    let effect = bridge.callTool(
      name as McpBridge.ToolTarget,
      args as Readonly<Record<string, unknown>> | undefined,
      trace === undefined ? checked.call : withTrace(checked.call, trace)
    )
    if (trace !== undefined) effect = Effect.withParentSpan(effect, trace.parent, { captureStackTrace: false })
    if (checked.identity !== undefined) effect = Effect.provideService(effect, CallerIdentity, checked.identity)
    const target = targetOf(name)
    for (const signal of [checked.signal, extraSignal]) {
      if (signal !== undefined) effect = underSignal(effect, signal, target)
    }
    return effect
  }

  const callMany = (calls: unknown, manyOptions: unknown): Promise<Array<CallManyOutcome>> => {
    if (!Array.isArray(calls)) return Promise.reject(rejectInvalid(["calls"], calls, "an array"))
    if (manyOptions !== undefined && (typeof manyOptions !== "object" || manyOptions === null)) {
      return Promise.reject(rejectInvalid(["options"], manyOptions, "an object"))
    }
    const o = (manyOptions ?? {}) as CallManyOptions
    const concurrency = o.concurrency ?? 5
    if (concurrency !== "unbounded" && !(Number.isInteger(concurrency) && concurrency >= 1)) {
      return Promise.reject(
        rejectInvalid(["options", "concurrency"], concurrency, "a positive integer or \"unbounded\"")
      )
    }
    if (o.signal !== undefined && !isSignal(o.signal)) {
      return Promise.reject(rejectInvalid(["options", "signal"], o.signal, "an AbortSignal"))
    }
    const trace = traceContext?.()
    // The facade's own per-call options (identity, signal, trace context), checked here; the calls themselves,
    // their validation and their fan-out are the service's `callMany`.
    const items: Array<McpBridge.CallManyItem> = []
    const arounds: Array<
      (call: Effect.Effect<CallToolResult, McpBridgeError.McpBridgeError | McpBridge.CallError>) => Effect.Effect<
        CallToolResult,
        McpBridgeError.McpBridgeError | McpBridge.CallError
      >
    > = []
    for (const [i, item] of (calls as ReadonlyArray<unknown>).entries()) {
      const call = item as CallManyItem & { readonly name?: unknown; readonly target?: unknown }
      if (typeof item !== "object" || item === null || Array.isArray(item)) {
        items.push(item as McpBridge.CallManyItem)
        arounds.push((effect) => effect)
        continue
      }
      const refuse = (error: McpBridgeError.McpBridgeError) => {
        items.push({ name: "" })
        arounds.push(() => Effect.fail(error))
      }
      if (call.signal !== undefined && !isSignal(call.signal)) {
        refuse(rejectInvalid(["signal"], call.signal, "an AbortSignal"))
        continue
      }
      const checked = checkOptions(call.options, ["options"])
      if (checked instanceof McpBridgeError.McpBridgeError) {
        refuse(checked)
        continue
      }
      const name = "name" in call ? call.name : call.target
      const meta = call._meta ?? checked.call.meta
      const callOptions = meta === undefined ? checked.call : { ...checked.call, meta }
      items.push({
        name: name as McpBridge.ToolTarget,
        arguments: call.arguments,
        options: trace === undefined ? callOptions : withTrace(callOptions, trace)
      })
      const target = targetOf(name)
      arounds.push((effect) => {
        if (trace !== undefined) effect = Effect.withParentSpan(effect, trace.parent, { captureStackTrace: false })
        if (checked.identity !== undefined) effect = Effect.provideService(effect, CallerIdentity, checked.identity)
        for (const signal of [checked.signal, o.signal, call.signal]) {
          if (signal !== undefined) effect = underSignal(effect, signal, target)
        }
        return effect
      })
    }
    return run(
      Effect.map(
        bridge.callMany(items, { concurrency, around: (call, i) => arounds[i]!(call) }),
        (results) =>
          results.map((result): CallManyOutcome =>
            Result.isSuccess(result) ? { ok: true, result: result.success } : { ok: false, error: result.failure }
          )
      )
    )
  }

  // A request other than a tool call, with its identity and signal.
  const request = <A, E>(
    f: (options: { readonly timeout?: Duration.Input }) => Effect.Effect<A, E>,
    options: unknown
  ): Promise<A> => {
    const checked = checkOptions(options, ["options"])
    if (checked instanceof McpBridgeError.McpBridgeError) return Promise.reject(checked)
    let effect: Effect.Effect<A, E | McpBridgeError.McpBridgeError> = f(
      checked.call.timeout === undefined ? {} : { timeout: checked.call.timeout }
    )
    if (checked.identity !== undefined) effect = Effect.provideService(effect, CallerIdentity, checked.identity)
    if (checked.signal !== undefined) effect = underSignal(effect, checked.signal, {})
    return run(effect)
  }
  const serverOption = (options: unknown): string | undefined => {
    const server = (options as ResourceOptions | undefined)?.server
    return typeof server === "string" ? server : undefined
  }

  const listeners = new Set<Fiber.Fiber<void, unknown>>()
  const onChange = (listener: (change: McpBridge.BridgeChange) => void): () => void => {
    if (typeof listener !== "function") throw McpBridgeError.invalidCall(["listener"], "must be a function")
    if (closed !== undefined) return () => undefined
    // Runs at once up to its subscription to the bridge's changes: a change after `onChange` returns reaches it.
    const fiber = runtime.runFork(
      Stream.runForEach(bridge.changes, (change) =>
        Effect.sync(() => {
          try {
            listener(change)
          } catch {
            // A listener's error is its own.
          }
        }))
    )
    listeners.add(fiber)
    return () => {
      if (listeners.delete(fiber)) fiber.interruptUnsafe()
    }
  }

  const close = (): Promise<void> => {
    if (closed === undefined) {
      for (const fiber of listeners) fiber.interruptUnsafe()
      listeners.clear()
      closed = Promise.resolve().then(() => runtime.dispose())
      closing.abort()
    }
    return closed
  }

  return {
    servers: bridge.servers,
    callTool: guarded((name, args, callOptions) =>
      run(callEffect(name, args, callOptions, ["options"], traceContext?.()))
    ),
    callMany: guarded((calls, manyOptions) => callMany(calls, manyOptions)),
    listTools: guarded(() => run(bridge.listTools())),
    stats: guarded(() => run(pool.stats)),
    metrics: guarded(() => run(bridge.metrics())),
    cache: {
      invalidateServer: guarded((server) => run(cache.invalidateServer(server))),
      invalidateTool: guarded((server, tool) => run(cache.invalidateTool(server, tool))),
      invalidateKey: guarded((selector) => run(cache.invalidateKey(selector))),
      invalidateWhen: guarded((predicate) => run(cache.invalidateWhen(predicate))),
      invalidateAll: guarded(() => run(cache.invalidateAll)),
      stats: guarded(() => run(cache.stats))
    },
    listResources: guarded(() => run(bridge.listResources())),
    listResourceTemplates: guarded(() => run(bridge.listResourceTemplates())),
    readResource: guarded((uri, options) =>
      request((o) => bridge.readResource(uri, { ...o, server: serverOption(options) }), stripServer(options))
    ),
    subscribeResource: guarded((uri, options) =>
      request((o) => bridge.subscribeResource(uri, { ...o, server: serverOption(options) }), stripServer(options))
    ),
    unsubscribeResource: guarded((uri, options) =>
      request((o) => bridge.unsubscribeResource(uri, { ...o, server: serverOption(options) }), stripServer(options))
    ),
    listPrompts: guarded(() => run(bridge.listPrompts())),
    getPrompt: guarded((prompt, args, options) => request((o) => bridge.getPrompt(prompt, args, o), options)),
    complete: guarded((params, options) => request((o) => bridge.complete(params, o), options)),
    ping: guarded((server, options) => request((o) => bridge.ping(server, o), options)),
    onChange,
    setRoots: client.setRoots,
    close,
    [Symbol.asyncDispose]: close
  }
}
