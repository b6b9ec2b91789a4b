/**
 * The resilience stage: retries with exponential backoff and jitter (`Schedule`) for calls that are safe to repeat,
 * only on transient failures and within a retry budget, and a circuit breaker per server
 * (`effect/persistence/CircuitBreaker`) that fails fast with a typed `CircuitOpen` error.
 *
 * - Each call has its deadline (`bridge.timeout`, the tool's `timeout`, or the call's `timeout` option), enforced by
 *   the session, which cancels the request on the wire. The deadline is per attempt.
 * - A retry happens only when the tool is safe to repeat (`readOnly` or `idempotent` by the operator's policy, or by
 *   annotations on a trusted server) and the failure is transient: the transport closed, the call timed out, the
 *   session could not be opened, or the server answered HTTP 429. An `isError` result is an answer, never retried.
 *   A pool that has no free session in time (`PoolTimeout`) is not retried: it means the bridge itself is saturated.
 * - The retry budget (per server) keeps retries from multiplying load during an outage: every call that may be
 *   retried deposits `budget` (e.g. 0.2) of a retry, every retry withdraws one, and the balance is capped at
 *   `retryReserve`, so that retries add at most `budget` of those calls plus a small reserve. It is a counter over
 *   calls, not over time, which is why it is not a `RateLimiter` (whose buckets refill with time).
 * - The breaker sees every attempt: transport failures and timeouts count against the server, an `isError` result or
 *   a JSON-RPC error counts for it (the server answered), interruption and pool saturation count for nothing. While
 *   the circuit is open (and while the half-open probe runs) calls fail at once with `CircuitOpen`, which is not
 *   retried, so a dead server costs its callers nothing and the calls to other servers nothing either. With
 *   `failureRate`, the circuit opens when that share of the last `window` attempts failed, once at least
 *   `min(window, failures)` attempts are recorded. The router's `tools/list` goes through the same circuit (`guard`).
 * - Cost: `CircuitBreaker.execute` costs about 5 µs an attempt (a scope, an admission and a record in the store). With
 *   `layer` (the stage's own memory store) and a consecutive-failures policy, an attempt made while the last
 *   recorded outcome was a success skips `execute`, since a success would change nothing in the store; if it fails,
 *   the failure is recorded through `execute`, so the trip policy, transitions and metrics stay the breaker's own.
 *   With `layerStore` (a store shared with other processes) or a `failureRate` policy, every attempt goes through
 *   `execute`.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Context,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Schedule,
  Schema,
  Scope,
  Semaphore,
  Stream
} from "effect"
import { CircuitBreaker } from "effect/persistence"
import type { ResolvedServer } from "./BridgeConfig.ts"
import { Attr } from "./internal/metrics.ts"
import { McpSessionError } from "./McpSessionError.ts"
import { MetricsRecorder, noop } from "./MetricsRecorder.ts"
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
 * @since 0.1.0
 */
export class ResilienceError extends Schema.TaggedError<ResilienceError>()("ResilienceError", {
  reason: Schema.Union([CircuitOpen])
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
 * @since 0.1.0
 */
export class Resilience extends Context.Service<Resilience, Resilience.Service>()("@mcp-bridge/core/Resilience") {}

/**
 * @since 0.1.0
 */
export declare namespace Resilience {
  /**
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
  }
}

/**
 * @since 0.1.0
 */
export interface Options {
  /**
   * Retries a server may make beyond its budget's fraction of calls, so that a quiet server can still retry: its
   * budget starts with, and never holds more than, this many retries.
   * @default 10
   */
  readonly retryReserve?: number | undefined
}

const isSessionError = (error: unknown): error is McpSessionError => error instanceof McpSessionError

/**
 * Is this failure worth another attempt (for a call that is safe to repeat)?
 *
 * @since 0.1.0
 */
export const isTransient = (error: unknown): boolean => {
  if (!isSessionError(error)) return false
  switch (error.reason._tag) {
    case "Closed":
    case "Timeout":
    case "ConnectFailed":
      return true
    case "Protocol":
      return error.reason.code === 429
  }
}

// How an attempt's outcome counts for the server's circuit.
const classify = (exit: Exit.Exit<unknown, unknown>): CircuitBreaker.Outcome => {
  if (Exit.isSuccess(exit)) return CircuitBreaker.success
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "None") return CircuitBreaker.failure()
  const e = error.value
  if (!isSessionError(e)) return CircuitBreaker.ignored
  return e.reason._tag === "Protocol" && e.reason.code !== 429 ? CircuitBreaker.success : CircuitBreaker.failure()
}

const stateName = { Closed: "closed", Open: "open", HalfOpen: "half_open" } as const

interface ServerState {
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
  readonly schedule: Schedule.Schedule<unknown, unknown> | undefined
  readonly times: number
  readonly budget: number
  /** Retries the server may make now. */
  balance: number
}

/**
 * Builds the stage over the `CircuitBreakerStore` in context; breakers live as long as the enclosing scope.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}, privateStore = false) {
  const store = yield* CircuitBreaker.CircuitBreakerStore
  const scope = yield* Effect.scope
  const reserve = options.retryReserve ?? 10
  const states = new Map<string, ServerState>()
  const creating = yield* Semaphore.make(1)
  const recorder = Option.getOrElse(yield* Effect.serviceOption(MetricsRecorder), () => noop)

  const newState = (server: ResolvedServer): Effect.Effect<ServerState> =>
    Effect.gen(function*() {
      const settings = server.circuitBreaker
      const breaker = settings === false ? undefined : yield* CircuitBreaker.make({
        tripPolicy: settings.failureRate === undefined
          ? CircuitBreaker.consecutive(settings.failures)
          : CircuitBreaker.rate({
            threshold: settings.failureRate,
            size: settings.window,
            minimumCalls: Math.min(settings.window, settings.failures)
          }),
        openDuration: settings.openFor
      }).pipe(Effect.provideService(CircuitBreaker.CircuitBreakerStore, store), Scope.provide(scope))
      if (breaker !== undefined) {
        // The breaker's state and transitions, as metrics (nothing is recorded per call).
        recorder.breakerState(server.name, "closed")
        yield* breaker.transitions.pipe(
          Stream.runForEach((t) =>
            Effect.sync(() => recorder.breakerTransition(server.name, stateName[t.from], stateName[t.to]))
          ),
          Effect.forkIn(scope, { startImmediately: true })
        )
      }
      const retry = server.retry
      const state: ServerState = {
        breaker,
        guarded: (effect) => effect,
        fastPath: privateStore && settings !== false && settings.failureRate === undefined,
        clean: true,
        // Capped first, then jittered: retries at the cap stay spread out instead of running in lockstep.
        schedule: retry === false || retry.times === 0 ? undefined : Schedule.exponential(retry.base).pipe(
          Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, retry.maxDelay))),
          Schedule.jittered
        ) as Schedule.Schedule<unknown, unknown>,
        times: retry === false ? 0 : retry.times,
        budget: retry === false ? 0 : retry.budget,
        balance: reserve
      }
      if (breaker !== undefined) {
        // Tracks whether the last recorded outcome was a success (see `ServerState.clean`).
        const tracked = (exit: Exit.Exit<unknown, unknown>): CircuitBreaker.Outcome => {
          const outcome = classify(exit)
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

  const stateOf = (server: ResolvedServer): Effect.Effect<ServerState> => {
    const state = states.get(server.name)
    if (state !== undefined) return Effect.succeed(state)
    return creating.withPermit(Effect.suspend(() => {
      const existing = states.get(server.name)
      if (existing !== undefined) return Effect.succeed(existing)
      return Effect.map(newState(server), (state) => {
        states.set(server.name, state)
        return state
      })
    }))
  }

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

  const protect = <A, E, R>(
    server: ResolvedServer,
    tool: string,
    safe: boolean,
    effect: Effect.Effect<A, E, R>,
    traced: boolean
  ): Effect.Effect<A, E | ResilienceError, R> => {
    const mayRetry = safe && server.retry !== false && server.retry.times > 0
    if (server.circuitBreaker === false && !mayRetry) return effect
    const state = states.get(server.name)
    return state !== undefined
      ? protectWith(state, server.name, tool, mayRetry, effect, traced)
      : Effect.flatMap(stateOf(server), (state) => protectWith(state, server.name, tool, mayRetry, effect, traced))
  }

  // An attempt while the circuit is clean: run it, and only if it fails, have the breaker record the failure (through
  // `execute`, so that transitions, metrics and the trip policy are the breaker's own).
  const cleanAttempt = <A, E, R>(state: ServerState, effect: Effect.Effect<A, E, R>) =>
    Effect.onExit(effect, (exit) =>
      exit._tag === "Success" || classify(exit)._tag !== "Failure"
        ? Effect.void
        : Effect.ignore(state.guarded(Effect.failCause(exit.cause))))

  const protectWith = <A, E, R>(
    state: ServerState,
    server: string,
    tool: string,
    mayRetry: boolean,
    effect: Effect.Effect<A, E, R>,
    traced: boolean
  ): Effect.Effect<A, E | ResilienceError, R> => {
    const attempt: Effect.Effect<A, E | ResilienceError, R> = state.breaker === undefined
      ? effect
      : state.fastPath
      ? Effect.suspend(() => state.clean ? cleanAttempt(state, effect) : state.guarded(effect))
      : state.guarded(effect)
    const schedule = state.schedule
    if (!mayRetry || schedule === undefined) return attempt
    state.balance = Math.min(reserve, state.balance + state.budget)
    // The retry machinery is only set up once a first attempt fails with something worth retrying; its schedule
    // starts from that failure, replayed.
    return Effect.catchIf(attempt, isTransient, (first) => {
      let retries = 0
      let replay = true
      let cause = "_OTHER"
      return Effect.retry(
        Effect.suspend(() => {
          if (!replay) {
            recorder.retried(server, tool, cause)
            // The call's span (the current span below the Telemetry stage) reports how many retries it took.
            return traced ? Effect.andThen(Effect.annotateCurrentSpan(Attr.retries, retries), attempt) : attempt
          }
          replay = false
          return Effect.fail(first)
        }),
        {
          schedule,
          while: (error) => {
            if (!isTransient(error) || retries >= state.times || state.balance < 1) return false
            retries++
            state.balance -= 1
            cause = isSessionError(error) ? error.reason._tag : "_OTHER"
            return true
          }
        }
      )
    })
  }

  const wrap = <E>(next: ToolCaller<E>): ToolCaller<E | ResilienceError> => (request: CallRequest) =>
    protect(request.server, request.tool, request.policy.safe, next(request), request.traced !== undefined)

  const guard = <A, E, R>(server: ResolvedServer, effect: Effect.Effect<A, E, R>) =>
    protect(server, "tools/list", true, effect, false)

  return { wrap, guard } satisfies Resilience.Service
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
