/**
 * The throttler stage: per-server (and per-tool) rate limits and in-flight limits, built on Effect's `RateLimiter`
 * (`effect/persistence`, fixed-window counters in a pluggable store) and `Semaphore`. Over the limit a call waits for
 * its turn (up to `maxWait`) or fails with a typed `RateLimited` error that says when to retry.
 *
 * - Each server has its own counters and its own semaphore, so a busy server's waiters never hold up another
 *   server's calls. A tool's own limits (`bridge.tools.<tool>.throttle`) apply on top of its server's.
 * - A call first takes an in-flight slot (FIFO among the waiters of that server), then a rate token. Holding the slot
 *   while it waits for a token keeps queued calls from bunching up once slots free.
 * - A rate token is taken with `onExceeded: "fail"`, so that a call that is refused never takes quota: the store only
 *   counts a token when the call is admitted. When one of several limits refuses, the tokens already taken from the
 *   others are handed back at once. A waiting call sleeps until the counter that refused it resets, then tries again;
 *   if that reset is past its `maxWait`, it fails at once.
 * - Servers with no limits (none in their config and no layer `defaults`) skip the stage.
 * - What a limit guarantees: `RateLimiter`'s "fixed-window" counter admits at most `limit` calls back to back, and
 *   its window moves on by `window / limit` per admitted call, so a steady caller gets `limit` calls per `window`.
 *   A burst is never larger than `limit`; but after calls spread over a window, a burst right behind them can make
 *   any one sliding window of that length see up to `2 × limit − 1` calls. A server that must never see more than N
 *   in any sliding second should get a `perSecond` of N / 2.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Option, Schema, Semaphore } from "effect"
import { RateLimiter } from "effect/persistence"
import type { ResolvedServer } from "./BridgeConfig.ts"
import type { ThrottleSettings } from "./BridgeConfigSchema.ts"
import type * as Metrics from "./internal/metrics.ts"
import { MetricsRecorder, noop } from "./MetricsRecorder.ts"
import type { CallRequest, ToolCaller } from "./ToolCaller.ts"
import type { ToolPolicy } from "./ToolPolicy.ts"

/**
 * A call was refused by a rate limit (`perSecond`, `perMinute`): with `onLimit: "fail"`, or because its turn would
 * come after `maxWait`. `retryAfterMillis` says when a retry may be admitted.
 *
 * @since 0.1.0
 */
export class RateLimited extends Schema.TaggedClass<RateLimited>()("RateLimited", {
  server: Schema.String,
  /** Set when the limit that refused the call is the tool's own. */
  tool: Schema.optionalKey(Schema.String),
  /** Calls admitted per `window`. */
  limit: Schema.Finite,
  window: Schema.Literals(["second", "minute"]),
  retryAfterMillis: Schema.Finite
}) {
  /** `retryAfterMillis` as a `Duration`. */
  get retryAfter(): Duration.Duration {
    return Duration.millis(this.retryAfterMillis)
  }
}

/**
 * A call was refused by an in-flight limit (`concurrency`): with `onLimit: "fail"`, or because no slot freed within
 * `maxWait`. A slot frees as soon as a call in flight ends.
 *
 * @since 0.1.0
 */
export class ConcurrencyLimited extends Schema.TaggedClass<ConcurrencyLimited>()("ConcurrencyLimited", {
  server: Schema.String,
  /** Set when the limit that refused the call is the tool's own. */
  tool: Schema.optionalKey(Schema.String),
  /** Calls in flight at most. */
  limit: Schema.Finite,
  /** How long the call waited for a slot (0 with `onLimit: "fail"`). */
  waitedMillis: Schema.Finite
}) {}

/**
 * `RateLimited` or `ConcurrencyLimited`.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([RateLimited, ConcurrencyLimited])

/**
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * A call was refused by a limit of its server or tool.
 *
 * @example
 * ```ts
 * effect.pipe(Effect.catchReason("ThrottlerError", "RateLimited", (r) => Effect.sleep(r.retryAfter)))
 * ```
 *
 * @since 0.1.0
 */
export class ThrottlerError extends Schema.TaggedError<ThrottlerError>()("ThrottlerError", {
  reason: Reason
}) {
  override get message(): string {
    const r = this.reason
    const target = `MCP server "${r.server}"${r.tool === undefined ? "" : ` tool "${r.tool}"`}`
    return r._tag === "RateLimited"
      ? `rate limit of ${target} reached (${r.limit} per ${r.window}); retry after ${r.retryAfterMillis} ms`
      : `in-flight limit of ${target} reached (${r.limit} at once)${
        r.waitedMillis > 0 ? `; no slot freed within ${r.waitedMillis} ms` : ""
      }`
  }

  /**
   * The server whose limit refused the call.
   */
  get server(): string {
    return this.reason.server
  }
}

/**
 * The throttler stage. `McpBridge.layer` picks it up (on by default); servers without limits skip it.
 *
 * @since 0.1.0
 */
export class Throttler extends Context.Service<Throttler, Throttler.Service>()("@mcp-bridge/core/Throttler") {}

/**
 * @since 0.1.0
 */
export declare namespace Throttler {
  /**
   * @since 0.1.0
   */
  export interface Service {
    readonly wrap: <E>(next: ToolCaller<E>) => ToolCaller<E | ThrottlerError>
  }
}

/**
 * @since 0.1.0
 */
export interface Options {
  /**
   * Limits of servers whose configuration sets none; fields a server's `bridge.throttle` leaves out also come from
   * here. The seed's production preset is `{ perSecond: 50, perMinute: 1000, concurrency: 20 }`.
   * @default undefined (servers without `bridge.throttle` are not throttled)
   */
  readonly defaults?: ThrottleSettings | undefined
  /** How long a call waits for its turn when neither its tool, its server nor `defaults` say. @default 30 seconds */
  readonly maxWait?: Duration.Input | undefined
}

/**
 * A limit a call must pass, in the order they are checked.
 */
interface Limit {
  readonly key: string
  readonly limit: number
  readonly window: Duration.Duration
  readonly windowName: "second" | "minute"
  readonly kind: Metrics.ThrottleLimit
  /** Set for a tool's own limit. */
  readonly tool: string | undefined
}

interface Slot {
  readonly gate: Gate
  readonly limit: number
  readonly tool: string | undefined
}

/** An in-flight limit: its semaphore, and how many callers wait for it (a newcomer never overtakes them). */
interface Gate {
  readonly semaphore: Semaphore.Semaphore
  waiting: number
}

/**
 * What the stage does with calls to one tool of one server (cached per server and tool).
 */
interface Plan {
  readonly server: string
  readonly limits: ReadonlyArray<Limit>
  /** Tool slot first, then server slot. */
  readonly slots: ReadonlyArray<Slot>
  readonly maxWaitMillis: number
  readonly failFast: boolean
  /** Takes a token of every limit, or none (built once per plan, run per call). */
  readonly tokens: Effect.Effect<Refusal | undefined>
}

/** Which limit refused a call, and when it resets. */
type Refusal = readonly [index: number, retryAfterMillis: number]

/**
 * One call that had to wait: when it started waiting, until when it may, and the limit it last waited for.
 */
interface Ticket {
  readonly plan: Plan
  /** -1 until the call first waits. */
  start: number
  deadline: number
  waitedFor: Metrics.ThrottleLimit | undefined
}

// The rate limits a `ThrottleSettings` can set, in the order they are taken.
const rates = [
  { field: "perSecond", window: Duration.seconds(1), keySuffix: "s", windowName: "second", kind: "per_second" },
  { field: "perMinute", window: Duration.minutes(1), keySuffix: "m", windowName: "minute", kind: "per_minute" }
] as const

/**
 * Builds the stage over the `RateLimiter` in context.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const limiter = yield* RateLimiter.RateLimiter
  const recorder = Option.getOrElse(yield* Effect.serviceOption(MetricsRecorder), () => noop)
  const defaultMaxWait = Duration.toMillis(Duration.fromInputUnsafe(options.maxWait ?? "30 seconds"))
  const gates = new Map<string, Gate>()
  const plans = new WeakMap<ResolvedServer, Map<string, Plan | null>>()

  const gateFor = (key: string, permits: number): Gate => {
    let gate = gates.get(key)
    if (gate === undefined) {
      gate = { semaphore: Semaphore.makeUnsafe(permits), waiting: 0 }
      gates.set(key, gate)
    }
    return gate
  }

  const planFor = (server: ResolvedServer, tool: string, policy: ToolPolicy): Plan | undefined => {
    let byTool = plans.get(server)
    if (byTool === undefined) {
      byTool = new Map()
      plans.set(server, byTool)
    }
    const cached = byTool.get(tool)
    if (cached !== undefined) return cached ?? undefined
    const serverSettings = server.throttle === undefined
      ? options.defaults
      : options.defaults === undefined
      ? server.throttle
      : { ...options.defaults, ...server.throttle }
    const toolSettings = policy.throttle
    const limits: Array<Limit> = []
    const slots: Array<Slot> = []
    const addRates = (settings: ThrottleSettings | undefined, key: string, forTool: string | undefined) => {
      if (settings === undefined) return
      for (const rate of rates) {
        const limit = settings[rate.field]
        if (limit === undefined) continue
        limits.push({
          key: `${key}\u0000${rate.keySuffix}`,
          limit,
          window: rate.window,
          windowName: rate.windowName,
          kind: rate.kind,
          tool: forTool
        })
      }
    }
    const serverKey = server.name
    const toolKey = `${server.name}\u0000${tool}`
    addRates(serverSettings, serverKey, undefined)
    addRates(toolSettings, toolKey, tool)
    if (toolSettings?.concurrency !== undefined) {
      slots.push({
        gate: gateFor(toolKey, toolSettings.concurrency),
        limit: toolSettings.concurrency,
        tool
      })
    }
    if (serverSettings?.concurrency !== undefined) {
      slots.push({
        gate: gateFor(serverKey, serverSettings.concurrency),
        limit: serverSettings.concurrency,
        tool: undefined
      })
    }
    if (limits.length === 0 && slots.length === 0) {
      byTool.set(tool, null)
      return undefined
    }
    const maxWait = toolSettings?.maxWait ?? serverSettings?.maxWait
    const plan: Plan = {
      server: server.name,
      limits,
      slots,
      maxWaitMillis: maxWait === undefined ? defaultMaxWait : Duration.toMillis(maxWait),
      failFast: (toolSettings?.onLimit ?? serverSettings?.onLimit) === "fail",
      tokens: tryTokens(limits)
    }
    byTool.set(tool, plan)
    return plan
  }

  const rateRefused = (ticket: Ticket, limit: Limit, retryAfterMillis: number) =>
    Effect.suspend(() => {
      recorder.throttleRejected(ticket.plan.server, limit.kind)
      return Effect.fail(
        new ThrottlerError({
          reason: new RateLimited({
            server: ticket.plan.server,
            ...(limit.tool === undefined ? {} : { tool: limit.tool }),
            limit: limit.limit,
            window: limit.windowName,
            retryAfterMillis: Math.max(0, Math.ceil(retryAfterMillis))
          })
        })
      )
    })

  const slotRefused = (ticket: Ticket, slot: Slot) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      recorder.throttleRejected(ticket.plan.server, "concurrency")
      return Effect.fail(
        new ThrottlerError({
          reason: new ConcurrencyLimited({
            server: ticket.plan.server,
            ...(slot.tool === undefined ? {} : { tool: slot.tool }),
            limit: slot.limit,
            waitedMillis: ticket.start < 0 ? 0 : Math.max(0, now - ticket.start)
          })
        })
      )
    })

  // Takes one token of every limit, or none: `undefined` when admitted, else which limit refused and its reset. When
  // a later limit refuses, the tokens taken from the earlier ones are handed back.
  const tryTokens = (limits: ReadonlyArray<Limit>): Effect.Effect<Refusal | undefined> => {
    let chain: Effect.Effect<Refusal | undefined> = Effect.succeed(undefined)
    for (let i = limits.length - 1; i >= 0; i--) {
      const l = limits[i]!
      const rest = chain
      const refund = Effect.forEach(
        limits.slice(0, i),
        (r) => Effect.ignore(limiter.consume({ key: r.key, limit: r.limit, window: r.window, tokens: -1 })),
        { discard: true }
      )
      chain = limiter.consume({ key: l.key, limit: l.limit, window: l.window, onExceeded: "fail" }).pipe(
        Effect.matchEffect({
          onSuccess: () => rest,
          onFailure: (error) =>
            error.reason._tag === "RateLimitExceeded"
              ? Effect.as(refund, [i, Duration.toMillis(error.reason.retryAfter)] as const)
              // The store is unreachable: let the call through rather than fail it for the limiter's sake.
              : rest
        })
      )
    }
    return chain
  }

  // Starts the ticket's wait (and its deadline) the first time the call has to wait.
  const started = (ticket: Ticket): Effect.Effect<number> =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      if (ticket.start < 0) {
        ticket.start = now
        ticket.deadline = now + ticket.plan.maxWaitMillis
      }
      return now
    })

  // Records how long an admitted call waited, if it did.
  const admitted = (ticket: Ticket) =>
    ticket.waitedFor === undefined ? Effect.void : Effect.flatMap(
      Clock.currentTimeMillis,
      (now) =>
        Effect.sync(() => recorder.throttleWaited(ticket.plan.server, ticket.waitedFor!, (now - ticket.start) / 1000))
    )

  // Takes a token of every limit, waiting for them until the ticket's deadline.
  const admit = (ticket: Ticket): Effect.Effect<void, ThrottlerError> =>
    Effect.flatMap(ticket.plan.tokens, (refusal) => {
      if (refusal === undefined) return admitted(ticket)
      const [index, retryAfter] = refusal
      const limit = ticket.plan.limits[index]!
      return Effect.flatMap(started(ticket), (now) => {
        if (ticket.plan.failFast || now + retryAfter > ticket.deadline) {
          return rateRefused(ticket, limit, retryAfter)
        }
        ticket.waitedFor = limit.kind
        return Effect.andThen(Effect.sleep(Duration.millis(retryAfter)), admit(ticket))
      })
    })

  // Takes a permit of `semaphore` before `deadline`. `true`: the caller holds a permit and must release it; `false`
  // or interrupted: it holds none (a permit granted after the deadline is handed back).
  const takeBefore = (semaphore: Semaphore.Semaphore, deadline: number): Effect.Effect<boolean> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (now >= deadline) return Effect.succeed(false)
      let acquired = false
      let abandoned = false
      const take = Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(restore(semaphore.take(1)), () => {
          if (abandoned) return Effect.asVoid(semaphore.release(1))
          acquired = true
          return Effect.void
        })
      )
      return Effect.timeoutOption(take, Duration.millis(deadline - now)).pipe(
        Effect.map(() => {
          abandoned = true
          return acquired
        }),
        Effect.onInterrupt(() =>
          Effect.suspend(() => {
            abandoned = true
            return acquired ? Effect.asVoid(semaphore.release(1)) : Effect.void
          })
        )
      )
    })

  const withSlots = <A, E>(
    ticket: Ticket,
    index: number,
    inner: Effect.Effect<A, E>
  ): Effect.Effect<A, E | ThrottlerError> => {
    const plan = ticket.plan
    if (index === plan.slots.length) return inner
    const slot = plan.slots[index]!
    const gate = slot.gate
    const semaphore = gate.semaphore
    return Effect.uninterruptibleMask((restore) =>
      // A free permit is taken at once only when nobody waits for one (`takeIfAvailable` would overtake them; the
      // semaphore's own `take` queues in order).
      Effect.flatMap(gate.waiting === 0 ? semaphore.takeIfAvailable(1) : Effect.succeed(false), (taken) => {
        if (taken) return Effect.ensuring(restore(withSlots(ticket, index + 1, inner)), semaphore.release(1))
        if (plan.failFast) return slotRefused(ticket, slot)
        ticket.waitedFor = "concurrency"
        gate.waiting++
        const take = Effect.flatMap(started(ticket), () => takeBefore(semaphore, ticket.deadline)).pipe(
          Effect.ensuring(Effect.sync(() => gate.waiting--))
        )
        return Effect.flatMap(restore(take), (ok) =>
          ok
            ? Effect.ensuring(restore(withSlots(ticket, index + 1, inner)), semaphore.release(1))
            : slotRefused(ticket, slot))
      })
    )
  }

  const wrap = <E>(next: ToolCaller<E>): ToolCaller<E | ThrottlerError> => (request: CallRequest) => {
    const plan = planFor(request.server, request.tool, request.policy)
    if (plan === undefined) return next(request)
    const ticket: Ticket = { plan, start: -1, deadline: 0, waitedFor: undefined }
    const call = next(request)
    const inner = plan.limits.length === 0
      ? Effect.suspend(() => Effect.andThen(admitted(ticket), call))
      : Effect.andThen(admit(ticket), call)
    return withSlots(ticket, 0, inner)
  }

  return { wrap } satisfies Throttler.Service
})

/**
 * The throttler over any `RateLimiterStore` (e.g. `RateLimiter.layerStoreRedis` to share limits between processes).
 *
 * Note: with a store shared by several processes, a call refused by its second limit hands back its first token
 * with a separate store operation, so another process may briefly see one token fewer.
 *
 * @since 0.1.0
 */
export const layerStore = (options: Options = {}): Layer.Layer<Throttler, never, RateLimiter.RateLimiterStore> =>
  Layer.effect(Throttler, make(options)).pipe(Layer.provide(RateLimiter.layer))

/**
 * The throttler with its counters in memory (one process).
 *
 * @example
 * ```ts
 * // the seed's production preset for servers that configure no limits of their own
 * Throttler.layer({ defaults: { perSecond: 50, perMinute: 1000, concurrency: 20 }, maxWait: "10 seconds" })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Throttler> =>
  layerStore(options).pipe(Layer.provide(RateLimiter.layerStoreMemory))

/**
 * No limits: calls pass straight through.
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<Throttler> = Layer.succeed(Throttler, { wrap: (next) => next })
