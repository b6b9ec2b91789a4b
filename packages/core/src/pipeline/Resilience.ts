/**
 * The resilience stage: retries of safe calls and a circuit breaker per server.
 *
 * A safe call (`readOnly` or `idempotent`) that lost its session is sent again at once on a fresh one; other
 * transient failures of a safe call (a timeout, a failed connect, 429, 502-504) are retried with exponential backoff
 * and jitter (`Schedule`) within a per-server retry budget and the call's deadline. A breaker per server
 * (`effect/persistence/CircuitBreaker`, over a swappable `CircuitBreakerStore`) opens when the server is unhealthy
 * and fails fast with `CircuitOpen`; its open period backs off from 250 ms with half-open probes.
 *
 * The stage sits above the throttler, so every attempt takes its own rate-limit token. What counts against the
 * breaker and why the budget is a counter: docs/design.md, "Resilience".
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Duration, Effect, Exit, Layer, Option, Schedule, Schema, Scope, Stream } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { type ResolvedServer, transportKind } from "../config/BridgeConfig.ts"
import { McpSessionError } from "../errors/McpSessionError.ts"
import { Attr } from "../internal/metrics.ts"
import { SharedCircuitStore } from "../stores/SharedCircuitStore.ts"
import { MetricsRecorder, noop } from "../telemetry/MetricsRecorder.ts"
import type { CallRequest, ToolCaller } from "./ToolCaller.ts"

/**
 * The server's circuit is open after repeated failures: the call was not attempted. Retry after `retryAfterMillis`.
 * `halfOpen` is set when the circuit is letting one probe call through and this call was not it.
 *
 * @since 0.1.0
 */
export class CircuitOpen extends Schema.TaggedClass<CircuitOpen>()("CircuitOpen", {
  server: Schema.String,
  retryAfterMillis: Schema.Number,
  halfOpen: Schema.optionalKey(Schema.Boolean)
}) {
  /** `retryAfterMillis` as a `Duration`. */
  get retryAfter(): Duration.Duration {
    return Duration.millis(this.retryAfterMillis)
  }
}

/**
 * Why resilience refused a call: `CircuitOpen`.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([CircuitOpen])

/**
 * The type of a `ResilienceError`'s `reason`: `CircuitOpen`. Match on `error.reason._tag`.
 *
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * The call was refused by its server's circuit breaker.
 *
 * @since 0.1.0
 */
export class ResilienceError extends Schema.TaggedError<ResilienceError>()("ResilienceError", {
  reason: Reason
}) {
  override get message(): string {
    const r = this.reason
    return r.halfOpen === true
      ? `circuit of MCP server "${r.server}" is half-open and its probe call is running; retry shortly`
      : `circuit of MCP server "${r.server}" is open; retry after ${r.retryAfterMillis} ms`
  }

  /**
   * The server whose circuit is open.
   */
  get server(): string {
    return this.reason.server
  }
}

/**
 * The resilience stage. `McpBridge.layer` picks it up (on by default); servers configure it with `bridge.retry` and
 * `bridge.circuitBreaker`.
 *
 * @since 0.1.0
 */
export class Resilience extends Context.Service<Resilience, Resilience.Service>()("@mcp-bridge/core/Resilience") {}

/**
 * The type of the resilience service, `Resilience.Service`.
 *
 * @since 0.1.0
 */
export declare namespace Resilience {
  /**
   * What the stage offers: `wrap` puts retries and the server's circuit breaker around the next caller of the pipeline,
   * and `guard` does the same for another request to a server. `layer`, `layerStore` and `layerDisabled` provide it.
   *
   * @since 0.1.0
   */
  export interface Service {
    readonly wrap: <E>(next: ToolCaller<E>) => ToolCaller<E | ResilienceError>
    /**
     * Runs another request to `server` (e.g. the router's `tools/list`) under the server's circuit breaker, retried
     * like a call that is safe to repeat: a dead server's tool list fails fast too.
     */
    readonly guard: <A, E, R>(
      server: ResolvedServer,
      effect: Effect.Effect<A, E, R>
    ) => Effect.Effect<A, E | ResilienceError, R>
    /**
     * Forgets `server`'s breaker and retry budget (a reconfiguration removed or replaced it): its next call starts
     * from a closed circuit with the settings then in force. Calls in flight keep the state they started with.
     */
    readonly forget?: ((server: string) => Effect.Effect<void>) | undefined
  }
}

/**
 * Options of `layer` and `layerStore` (the `resilience` option of `McpBridge.layer`) that apply to every server: the
 * retry reserve and the first open period of a circuit. Retries and breakers per server are set in its `bridge.retry`
 * and `bridge.circuitBreaker`.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Retries a server may make beyond its budget's fraction of calls, so that a quiet server can still retry: its
   * budget starts with, and never holds more than, this many retries.
   * @default 10
   */
  readonly retryReserve?: number | undefined
  /** The first opening of a circuit lasts this long; each next one twice as long, up to `openFor`. @default 250 millis */
  readonly firstOpenFor?: Duration.Input | undefined
}

const isSessionError = (error: unknown): error is McpSessionError => error instanceof McpSessionError

/** The session died under the call (and was open when it started): the call may be sent again at once. */
const isSessionDeath = (error: unknown): boolean =>
  isSessionError(error) && error.reason._tag === "Closed" && error.reason.session !== undefined

const transientStatus = new Set([429, 502, 503, 504])

/**
 * Is this failure worth another attempt with backoff (for a call that is safe to repeat)? A session that died is
 * handled apart (sent again at once, once).
 *
 * @since 0.1.0
 */
export const isTransient = (error: unknown): boolean => {
  if (!isSessionError(error)) return false
  switch (error.reason._tag) {
    case "Closed":
      return error.reason.session === undefined
    case "Timeout":
    case "ConnectFailed":
      return true
    case "Protocol":
      return transientStatus.has(error.reason.code)
    case "MessageTooLarge":
    case "Unauthorized":
    case "HandlerFailed":
      return false
  }
}

const retryAfterOf = (error: unknown): number | undefined =>
  isSessionError(error) && error.reason._tag === "Protocol" ? error.reason.retryAfterMillis : undefined

const stateName = { Closed: "closed", Open: "open", HalfOpen: "half_open" } as const

interface ServerState {
  /** Where the breaker and its transitions' fiber live: closed when the server is forgotten. */
  readonly scope: Scope.Closeable
  readonly breaker: CircuitBreaker.CircuitBreaker | undefined
  /** Runs one attempt through the breaker (built once per server, right after the state it updates). */
  guarded: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ResilienceError, R>
  /** The breaker trips on consecutive failures and its store is this stage's own memory: see `clean`. */
  readonly fastPath: boolean
  /**
   * The last outcome the breaker recorded was a success, so it is closed with no failure counted: a success changes
   * nothing in its store, and an attempt may skip `execute` (about 5 µs) and only report a failure if one happens.
   */
  clean: boolean
  /** Sessions whose death (or freeze) the breaker has counted already: their other calls count for nothing. */
  readonly counted: Set<number>
  readonly schedule: Schedule.Schedule<Duration.Duration, unknown> | undefined
  readonly times: number
  readonly budget: number
  /** Retries the server may make now. */
  balance: number
}

/**
 * Builds the stage over the `CircuitBreakerStore` in context; breakers live as long as the enclosing scope. It
 * records through the `MetricsRecorder` in context, if any.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}, privateStore = false) {
  const store = yield* CircuitBreaker.CircuitBreakerStore
  // Remote servers' circuits in the store shared by replicas, if any; stdio children are each replica's own.
  const sharedStore = Option.getOrUndefined(yield* Effect.serviceOption(SharedCircuitStore))
  const storeOf = (server: ResolvedServer) => {
    const kind = transportKind(server.transport)
    return sharedStore !== undefined && (kind === "http" || kind === "sse") ? sharedStore : undefined
  }
  const scope = yield* Effect.scope
  const recorder = Option.getOrElse(yield* Effect.serviceOption(MetricsRecorder), () => noop)
  const reserve = options.retryReserve ?? 10
  const firstOpenFor = Duration.fromInputUnsafe(options.firstOpenFor ?? "250 millis")
  const states = new Map<string, ServerState>()

  // How an attempt's outcome counts for the server's circuit (see the module).
  const classify = (state: ServerState) => (exit: Exit.Exit<unknown, unknown>): CircuitBreaker.Outcome => {
    if (Exit.isSuccess(exit)) return CircuitBreaker.success
    const error = Cause.findErrorOption(exit.cause)
    if (error._tag === "None") {
      return Cause.hasInterruptsOnly(exit.cause)
        ? CircuitBreaker.ignored
        : CircuitBreaker.failure()
    }
    const e = error.value
    if (!isSessionError(e)) return CircuitBreaker.ignored
    const r = e.reason
    switch (r._tag) {
      case "Closed":
      case "Timeout": {
        if (r.session === undefined) return CircuitBreaker.failure()
        if (state.counted.has(r.session)) return CircuitBreaker.ignored
        state.counted.add(r.session)
        if (state.counted.size > 64) state.counted.delete(state.counted.values().next().value!)
        return CircuitBreaker.failure()
      }
      case "ConnectFailed":
        return CircuitBreaker.failure()
      case "Protocol":
        return transientStatus.has(r.code) || r.code >= 500
          ? CircuitBreaker.failure(r.retryAfterMillis === undefined ? undefined : { retryAfter: r.retryAfterMillis })
          : CircuitBreaker.success
      case "MessageTooLarge":
      case "Unauthorized":
      case "HandlerFailed":
        return CircuitBreaker.success
    }
  }

  const newState = (server: ResolvedServer): Effect.Effect<ServerState> =>
    Effect.gen(function*() {
      const own = yield* Scope.fork(scope)
      const settings = server.circuitBreaker
      const breaker = settings === false ? undefined : yield* CircuitBreaker.make({
        tripPolicy: settings.failureRate === undefined
          ? CircuitBreaker.consecutive(settings.failures)
          : CircuitBreaker.rate({
            threshold: settings.failureRate,
            size: settings.window,
            minimumCalls: Math.min(settings.window, settings.failures)
          }),
        // Short first, doubling up to `openFor`: a server that restarts is tried again soon.
        openDuration: Schedule.exponential(Duration.min(firstOpenFor, settings.openFor)).pipe(
          Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, settings.openFor)))
        )
      }).pipe(
        Effect.provideService(CircuitBreaker.CircuitBreakerStore, storeOf(server) ?? store),
        Scope.provide(own)
      )
      if (breaker !== undefined) {
        // The breaker's state and transitions, as metrics (nothing is recorded per call).
        recorder.breakerState(server.name, "closed")
        yield* breaker.transitions.pipe(
          Stream.runForEach((t) =>
            Effect.sync(() =>
              recorder.breakerTransition(
                server.name,
                stateName[t.from],
                stateName[t.to],
                t.to === "Open" ? Duration.toMillis(t.retryAfter) : undefined
              )
            )
          ),
          Effect.forkIn(own, { startImmediately: true })
        )
      }
      const retry = server.retry
      const state: ServerState = {
        scope: own,
        breaker,
        guarded: (effect) => effect,
        fastPath: privateStore && storeOf(server) === undefined && settings !== false &&
          settings.failureRate === undefined,
        clean: true,
        counted: new Set(),
        // Capped first, then jittered: retries at the cap stay spread out instead of running in lockstep.
        schedule: retry === false || retry.times === 0 ? undefined : Schedule.exponential(retry.base).pipe(
          Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, retry.maxDelay))),
          Schedule.jittered
        ),
        times: retry === false ? 0 : retry.times,
        budget: retry === false ? 0 : retry.budget,
        balance: reserve
      }
      if (breaker !== undefined) {
        const classifyState = classify(state)
        // Tracks whether the last recorded outcome was a success (see `ServerState.clean`).
        const tracked = (exit: Exit.Exit<unknown, unknown>): CircuitBreaker.Outcome => {
          const outcome = classifyState(exit)
          if (outcome._tag === "Success") state.clean = true
          else if (outcome._tag === "Failure") state.clean = false
          return outcome
        }
        const executeOptions = { key: server.name, classify: tracked }
        state.guarded = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
          Effect.catchIf(
            breaker.execute<A, E, R, never>(effect, executeOptions),
            (error): error is CircuitBreaker.CircuitBreakerError => error instanceof CircuitBreaker.CircuitBreakerError,
            (error) => toCircuitOpen(server.name, error)
          )
      }
      return state
    })

  // States are made once per server, on its first call (a `Map` set synchronously after the effect, so concurrent
  // first calls may both build one: the first stored wins and the other is dropped with its scope's finalizers).
  const stateOf = (server: ResolvedServer): Effect.Effect<ServerState> =>
    Effect.suspend(() => {
      const state = states.get(server.name)
      if (state !== undefined) return Effect.succeed(state)
      return Effect.flatMap(newState(server), (made) => {
        const existing = states.get(server.name)
        if (existing !== undefined) return Effect.as(Scope.close(made.scope, Exit.void), existing)
        states.set(server.name, made)
        return Effect.succeed(made)
      })
    })

  const toCircuitOpen = (
    server: string,
    error: CircuitBreaker.CircuitBreakerError
  ): Effect.Effect<never, ResilienceError> => {
    const reason = error.reason
    switch (reason._tag) {
      case "CircuitOpen":
        return Effect.fail(
          new ResilienceError({
            reason: new CircuitOpen({ server, retryAfterMillis: Math.ceil(Duration.toMillis(reason.retryAfter)) })
          })
        )
      case "CircuitHalfOpen":
        return Effect.fail(
          new ResilienceError({ reason: new CircuitOpen({ server, retryAfterMillis: 0, halfOpen: true }) })
        )
      case "CircuitBreakerStoreError":
        // Only with `onStoreError: "fail"`, which this stage does not use.
        return Effect.die(error)
    }
  }

  // An attempt while the circuit is clean: run it, and only if it fails, have the breaker record the failure (through
  // `execute`, so that transitions, metrics and the trip policy are the breaker's own).
  const cleanAttempt = <A, E, R>(state: ServerState, effect: Effect.Effect<A, E, R>) =>
    Effect.onExit(effect, (exit) =>
      exit._tag === "Success"
        ? Effect.void
        : Effect.ignore(state.guarded(Effect.failCause(exit.cause))))

  const attemptOf = <A, E, R>(state: ServerState, effect: Effect.Effect<A, E, R>) =>
    state.breaker === undefined
      ? effect
      : state.fastPath
      ? Effect.suspend(() => state.clean ? cleanAttempt(state, effect) : state.guarded(effect))
      : state.guarded(effect)

  const protect = <A, E, R>(
    server: ResolvedServer,
    tool: string,
    safe: boolean,
    effect: Effect.Effect<A, E, R>,
    call: CallRequest | undefined
  ): Effect.Effect<A, E | ResilienceError, R> => {
    const mayRetry = safe && server.retry !== false && server.retry.times > 0
    if (server.circuitBreaker === false && !safe) return effect
    const state = states.get(server.name)
    return state !== undefined
      ? protectWith(state, server.name, tool, safe, mayRetry, effect, call)
      : Effect.flatMap(stateOf(server), (state) => protectWith(state, server.name, tool, safe, mayRetry, effect, call))
  }

  const protectWith = <A, E, R>(
    state: ServerState,
    server: string,
    tool: string,
    safe: boolean,
    mayRetry: boolean,
    effect: Effect.Effect<A, E, R>,
    call: CallRequest | undefined
  ): Effect.Effect<A, E | ResilienceError, R> => {
    const attempt = attemptOf(state, effect)
    // A safe call that lost its session goes again at once, once, on a fresh session.
    const resent: Effect.Effect<A, E | ResilienceError, R> = safe
      ? Effect.catchIf(attempt, isSessionDeath, () => attempt)
      : attempt
    const schedule = state.schedule
    if (!mayRetry || schedule === undefined) return resent
    state.balance = Math.min(reserve, state.balance + state.budget)
    const traced = call?.traced !== undefined
    // The retry machinery is only set up once an attempt fails with something worth retrying.
    return Effect.catchIf(resent, isTransient, (first) =>
      Effect.gen(function*() {
        const step = yield* Schedule.toStep(schedule)
        let error: unknown = first
        for (let retries = 1; retries <= state.times; retries++) {
          if (!isTransient(error) || state.balance < 1) break
          const hinted = retryAfterOf(error)
          const now = yield* Clock.currentTimeMillis
          // The schedule is infinite (exponential, capped): its step never ends.
          const delay = hinted !== undefined
            ? Duration.millis(hinted)
            : yield* step(now, error).pipe(
              Effect.map(([, duration]) => duration),
              Effect.catch(() => Effect.succeed(Duration.zero))
            )
          // No retry whose delay outlasts the call's deadline: the call ends with its own error.
          if (call !== undefined && now + Duration.toMillis(delay) >= call.deadlineAt) break
          state.balance -= 1
          yield* Effect.sleep(delay)
          recorder.retried(server, tool, isSessionError(error) ? error.reason._tag : "_OTHER")
          // The call's span (the current span below the Telemetry stage) reports how many retries it took.
          if (traced) yield* Effect.annotateCurrentSpan(Attr.retries, retries)
          const exit = yield* Effect.exit(attempt)
          if (Exit.isSuccess(exit)) return exit.value
          const next = Cause.findErrorOption(exit.cause)
          if (next._tag === "None") return yield* exit
          error = next.value
        }
        return yield* Effect.fail(error as E | ResilienceError)
      }))
  }

  const wrap = <E>(next: ToolCaller<E>): ToolCaller<E | ResilienceError> => (request: CallRequest) =>
    protect(request.server, request.tool, request.policy.safe, next(request), request)

  const guard = <A, E, R>(server: ResolvedServer, effect: Effect.Effect<A, E, R>) =>
    protect(server, "tools/list", true, effect, undefined)

  const forget = (server: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      const state = states.get(server)
      if (state === undefined) return Effect.void
      states.delete(server)
      return Scope.close(state.scope, Exit.void)
    })

  return { wrap, guard, forget } satisfies Resilience.Service
})

/**
 * Retries and breakers over any `CircuitBreakerStore` (e.g. `CircuitBreaker.layerStoreRedis` to share circuits
 * between processes).
 *
 * @since 0.1.0
 */
export const layerStore = (
  options: Options = {}
): Layer.Layer<Resilience, never, CircuitBreaker.CircuitBreakerStore> => Layer.effect(Resilience, make(options))

/**
 * Retries and circuit breakers as each server's `bridge.retry` and `bridge.circuitBreaker` say, with circuits kept in
 * memory.
 *
 * @example
 * ```ts
 * const Bridge = McpBridge.layer({
 *   mcpServers: {
 *     crm: { url: "http://127.0.0.1:3000/mcp", bridge: { retry: { times: 3 }, circuitBreaker: { failures: 5 } } }
 *   }
 * }, { resilience: { retryReserve: 20 } })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Resilience> =>
  Layer.effect(Resilience, make(options, true)).pipe(Layer.provide(CircuitBreaker.layerStoreMemory()))

/**
 * No retries and no circuit breaker (each call still has its deadline).
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<Resilience> = Layer.succeed(
  Resilience,
  { wrap: (next) => next, guard: (_server, effect) => effect }
)
