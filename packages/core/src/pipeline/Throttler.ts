/**
 * The throttler stage: per-server (and per-tool) rate limits and in-flight limits. Over a limit a call waits for its
 * turn (up to `maxWait` and its deadline) or, with `onLimit: "fail"`, fails at once with a typed error that says
 * when to retry.
 *
 * - What a rate limit guarantees: `perSecond: N` means at most N calls admitted in any sliding second (`perMinute`
 *   likewise), bursts included, with no call refused while it may still wait, and that holds at the server, whatever
 *   its own queueing: the limits are sliding logs of the last N calls of each limit (in a ring), where a call holds
 *   its place while it runs and counts from the time its answer came back. A call is admitted when the N-th last call
 *   ended at least a window ago (plus a small margin, `windowMargin`): the server handled that call before it
 *   answered, and handles this one after it is sent, so no window of the limit's length at the server holds N + 1.
 *   The price, under a saturated limit: calls are spaced by the window plus the calls' latency. Admission to one set of limits (a server's, a tool's) is one at a time, in order, through a
 *   `Semaphore(1)` turnstile, so that callers are served first come first served, nobody overtakes a waiter, and a
 *   call is recorded at the time it is really let through. A tool's own limits are passed first (holding its
 *   turnstile), then its server's, and the call is recorded in both when it passes the last. The turnstiles are held
 *   until the call is admitted, never while it runs; a call with room in every window and nobody queued or being
 *   admitted is admitted at once, without taking them.
 * - Why not Effect's `RateLimiter`: its "fixed-window" counter lets a burst right after spread-out traffic put up to
 *   2N − 1 calls in one sliding window, its "token-bucket" gives N + N in a window after an idle one, and consuming
 *   several limits (server and tool) is not atomic, so a call delayed by one limit bunches up under another. A log of
 *   admission times is the exact rule, and the same algorithm works in a store shared by replicas (a sorted set per
 *   limit and one script admitting against all of a call's limits, e.g. in Redis).
 * - Each server has its own turnstiles and in-flight semaphores, so a busy server's waiters never hold up another
 *   server's calls. A call first takes its in-flight slots (FIFO among the waiters of that server), then its rate
 *   turn; holding the slot while it waits keeps queued calls from bunching up once slots free.
 * - The stage sits below `Resilience`: every attempt, retries included, is admitted here.
 * - Servers with no limits (none in their config and no layer `defaults`) skip the stage.
 *
 * @since 0.1.0
 */
import { Clock, Context, Deferred, Duration, Effect, Exit, Layer, Option, Schema, Semaphore } from "effect"
import type { ResolvedServer } from "../config/BridgeConfig.ts"
import type { ThrottleSettings } from "../config/BridgeConfigSchema.ts"
import type { ToolPolicy } from "../config/ToolPolicy.ts"
import { deadlineExceeded, type McpBridgeError } from "../errors/McpBridgeError.ts"
import type * as Metrics from "../internal/metrics.ts"
import * as RateLimitStore from "../stores/RateLimitStore.ts"
import { MetricsRecorder, noop } from "../telemetry/MetricsRecorder.ts"
import type { CallRequest, ToolCaller } from "./ToolCaller.ts"

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
 * A call was refused because its rate limits could not be checked: the shared `RateLimitStore` (e.g. Redis) did not
 * answer, and its policy for that case is to refuse (fail closed). `detail` is the store's own message. A retry may
 * pass once the store answers again.
 *
 * @since 0.1.0
 */
export class LimitStoreUnavailable extends Schema.TaggedClass<LimitStoreUnavailable>()("LimitStoreUnavailable", {
  server: Schema.String,
  /** Set when the first limit of the call is the tool's own. */
  tool: Schema.optionalKey(Schema.String),
  detail: Schema.String
}) {}

/**
 * `RateLimited`, `ConcurrencyLimited` or `LimitStoreUnavailable`.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([RateLimited, ConcurrencyLimited, LimitStoreUnavailable])

/**
 * The type of a `ThrottlerError`'s `reason`: `RateLimited`, `ConcurrencyLimited` or `LimitStoreUnavailable`. Match
 * on `error.reason._tag`.
 *
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
      : r._tag === "LimitStoreUnavailable"
      ? `rate limits of ${target} cannot be checked, so the call is refused (fail closed): ${r.detail}`
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
 * The type of the throttler service, `Throttler.Service`.
 *
 * @since 0.1.0
 */
export declare namespace Throttler {
  /**
   * What the stage offers: `wrap` admits each call under its server's and tool's limits before the next caller runs it,
   * and fails it with `ThrottlerError`, or `McpBridgeError` (`DeadlineExceeded`) when the call's deadline passes first.
   * `layer` and `layerDisabled` provide it.
   *
   * @since 0.1.0
   */
  export interface Service {
    readonly wrap: <E>(next: ToolCaller<E>) => ToolCaller<E | ThrottlerError | McpBridgeError>
    /**
     * Forgets `server`'s limits (a reconfiguration removed or replaced it): its next call is admitted under the limits
     * then in force. Calls admitted or waiting keep the gates they started with.
     */
    readonly forget?: ((server: string) => Effect.Effect<void>) | undefined
  }
}

/**
 * Options of `Throttler.layer` (the `throttle` option of `McpBridge.layer`): limits for the fields servers do not set,
 * the default `maxWait`, and the window margin. A server's own limits are in its `bridge.throttle`, a tool's in
 * `bridge.tools.<tool>.throttle`.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Limits of servers whose configuration sets none; fields a server's `bridge.throttle` leaves out also come from
   * here. The production preset is `{ perSecond: 50, perMinute: 1000, concurrency: 20 }`.
   * @default undefined (servers without `bridge.throttle` are not throttled)
   */
  readonly defaults?: ThrottleSettings | undefined
  /** How long a call waits for its turn when neither its tool, its server nor `defaults` say. @default 30 seconds */
  readonly maxWait?: Duration.Input | undefined
  /**
   * Added to each window when deciding an admission, for the jitter between the bridge letting a call through and the
   * call reaching the server, so that the server too never sees more than the limit in a window. @default 20 millis
   */
  readonly windowMargin?: Duration.Input | undefined
}

/** One rate limit: a sliding log of the admission times of its last `limit` calls. */
interface RateLimit {
  readonly limit: number
  readonly windowName: "second" | "minute"
  /** The window plus the margin (ms). */
  readonly spanMillis: number
  readonly kind: Metrics.ThrottleLimit
  /** Set for a tool's own limit. */
  readonly tool: string | undefined
  /** Per logged call: when its answer came back (`Infinity` while it runs). */
  readonly log: Float64Array
  /** Per logged call: its sequence number, so that a call ending late never overwrites a newer call's slot. */
  readonly ids: Float64Array
  /** Calls logged (up to `limit`), and where the oldest is. */
  count: number
  head: number
}

/** The rate limits of one scope (a server, or a tool), admitted one call at a time. */
interface RateGate {
  /** The gate's key (a server, or a server and a tool), under which a shared store keeps its windows. */
  readonly key: string
  readonly limits: ReadonlyArray<RateLimit>
  readonly turnstile: Semaphore.Semaphore
  waiting: number
  /** 1 while a caller holds the turnstile (its admission under way). */
  busy: number
  /** Completed when a logged call of the gate ends: the caller at the turnstile waits for it. */
  ended: Deferred.Deferred<void> | undefined
}

/** An in-flight limit: its semaphore, and how many callers wait for it (a newcomer never overtakes them). */
interface Slot {
  readonly semaphore: Semaphore.Semaphore
  readonly limit: number
  readonly tool: string | undefined
  waiting: number
}

/** What the stage does with calls to one tool of one server (cached per server and tool). */
interface Plan {
  readonly server: string
  /** Tool gate first, then server gate. */
  readonly gates: ReadonlyArray<RateGate>
  /** Tool slot first, then server slot. */
  readonly slots: ReadonlyArray<Slot>
  readonly maxWaitMillis: number
  readonly failFast: boolean
}

/** One call on its way through: when it started waiting, until when it may, and the limit it last waited for. */
interface Ticket {
  readonly plan: Plan
  readonly call: CallRequest
  /** -1 until the call first waits. */
  start: number
  /** Clock millis until which it may wait: `maxWait` from its first wait, and its deadline. */
  until: number
  /** True when `until` is the call's deadline (not `maxWait`). */
  untilDeadline: boolean
  waitedFor: Metrics.ThrottleLimit | undefined
  /** Where the call is logged once admitted (stamped with its end, whatever the way it ends). */
  readonly logged: Array<Logged>
}

// The rate limits a `ThrottleSettings` can set.
const rates = [
  { field: "perSecond", windowMillis: 1_000, windowName: "second", kind: "per_second" },
  { field: "perMinute", windowMillis: 60_000, windowName: "minute", kind: "per_minute" }
] as const

// The earliest time (ms) at which every limit of `gate` admits one more call.
const admitAt = (gate: RateGate): number => {
  let at = 0
  for (const l of gate.limits) if (l.count >= l.limit) at = Math.max(at, l.log[l.head]! + l.spanMillis)
  return at
}

/** Where a running call is logged, to stamp its end. */
interface Logged {
  readonly gate: RateGate
  readonly id: number
  readonly slots: ReadonlyArray<number>
}

// Logs an admitted call in every limit of `gate`, as running (`Infinity`: it holds its place until it ends).
const record = (gate: RateGate, id: number): Logged => {
  const slots: Array<number> = []
  for (const l of gate.limits) {
    let slot: number
    if (l.count < l.limit) {
      slot = (l.head + l.count) % l.limit
      l.count++
    } else {
      slot = l.head
      l.head = (l.head + 1) % l.limit
    }
    l.log[slot] = Infinity
    l.ids[slot] = id
    slots.push(slot)
  }
  return { gate, id, slots }
}

// The call ended at `now`: its slots count from then, and the caller waiting at the gate's turnstile looks again.
const ended = (logged: Logged, now: number): void => {
  const { gate, id, slots } = logged
  for (let i = 0; i < gate.limits.length; i++) {
    const l = gate.limits[i]!
    if (l.ids[slots[i]!] === id) l.log[slots[i]!] = now
  }
  const waiting = gate.ended
  if (waiting !== undefined) {
    gate.ended = undefined
    Deferred.doneUnsafe(waiting, Exit.void)
  }
}

/**
 * Builds the stage. It records through the `MetricsRecorder` in context, if any.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const recorder = Option.getOrElse(yield* Effect.serviceOption(MetricsRecorder), () => noop)
  const defaultMaxWait = Duration.toMillis(Duration.fromInputUnsafe(options.maxWait ?? "30 seconds"))
  const margin = Duration.toMillis(Duration.fromInputUnsafe(options.windowMargin ?? "20 millis"))
  const rateGates = new Map<string, RateGate>()
  const shared = Option.getOrUndefined(yield* Effect.serviceOption(RateLimitStore.RateLimitStore))
  let nextId = 0
  const slots = new Map<string, Slot>()
  const plans = new WeakMap<ResolvedServer, Map<string, Plan | null>>()

  const gateFor = (key: string, settings: ThrottleSettings, tool: string | undefined): RateGate | undefined => {
    let gate = rateGates.get(key)
    if (gate !== undefined) return gate
    const limits: Array<RateLimit> = []
    for (const rate of rates) {
      const limit = settings[rate.field]
      if (limit === undefined) continue
      limits.push({
        limit,
        windowName: rate.windowName,
        spanMillis: rate.windowMillis + margin,
        kind: rate.kind,
        tool,
        log: new Float64Array(limit),
        ids: new Float64Array(limit),
        count: 0,
        head: 0
      })
    }
    if (limits.length === 0) return undefined
    gate = { key, limits, turnstile: Semaphore.makeUnsafe(1), waiting: 0, busy: 0, ended: undefined }
    rateGates.set(key, gate)
    return gate
  }

  const slotFor = (key: string, permits: number, tool: string | undefined): Slot => {
    let slot = slots.get(key)
    if (slot === undefined) {
      slots.set(key, slot = { semaphore: Semaphore.makeUnsafe(permits), limit: permits, tool, waiting: 0 })
    }
    return slot
  }

  const planFor = (server: ResolvedServer, tool: string, policy: ToolPolicy): Plan | undefined => {
    let byTool = plans.get(server)
    if (byTool === undefined) plans.set(server, byTool = new Map())
    const cached = byTool.get(tool)
    if (cached !== undefined) return cached ?? undefined
    const serverSettings = server.throttle === undefined
      ? options.defaults
      : options.defaults === undefined
      ? server.throttle
      : { ...options.defaults, ...server.throttle }
    const toolSettings = policy.throttle
    const toolKey = `${server.name}\u0000${tool}`
    const gates: Array<RateGate> = []
    const planSlots: Array<Slot> = []
    const toolGate = toolSettings === undefined ? undefined : gateFor(toolKey, toolSettings, tool)
    const serverGate = serverSettings === undefined ? undefined : gateFor(server.name, serverSettings, undefined)
    if (toolGate !== undefined) gates.push(toolGate)
    if (serverGate !== undefined) gates.push(serverGate)
    if (toolSettings?.concurrency !== undefined) planSlots.push(slotFor(toolKey, toolSettings.concurrency, tool))
    if (serverSettings?.concurrency !== undefined) {
      planSlots.push(slotFor(server.name, serverSettings.concurrency, undefined))
    }
    if (gates.length === 0 && planSlots.length === 0) {
      byTool.set(tool, null)
      return undefined
    }
    const maxWait = toolSettings?.maxWait ?? serverSettings?.maxWait
    const plan: Plan = {
      server: server.name,
      gates,
      slots: planSlots,
      maxWaitMillis: maxWait === undefined ? defaultMaxWait : Duration.toMillis(maxWait),
      failFast: (toolSettings?.onLimit ?? serverSettings?.onLimit) === "fail"
    }
    byTool.set(tool, plan)
    return plan
  }

  // Starts the ticket's wait (and its bound) the first time the call has to wait.
  const startWait = (ticket: Ticket, now: number): void => {
    if (ticket.start >= 0) return
    ticket.start = now
    const byWait = now + ticket.plan.maxWaitMillis
    ticket.untilDeadline = ticket.call.deadlineAt < byWait
    ticket.until = ticket.untilDeadline ? ticket.call.deadlineAt : byWait
  }

  const deadlinePassed = (ticket: Ticket, phase: "rate-limit" | "concurrency") =>
    Effect.fail(deadlineExceeded(ticket.plan.server, ticket.call.tool, ticket.call.deadlineMillis, phase))

  const rateRefused = (ticket: Ticket, gate: RateGate, retryAfterMillis: number) =>
    Effect.suspend(() => {
      const limit = gate.limits.find((l) => l.count >= l.limit) ?? gate.limits[0]!
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

  const slotRefused = (ticket: Ticket, slot: Slot, now: number) =>
    Effect.suspend(() => {
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

  // Takes a permit of `semaphore` within `millis`. `true`: the caller holds a permit and must release it; `false` or
  // interrupted: it holds none (a permit granted after the bound is handed back).
  const takeWithin = (semaphore: Semaphore.Semaphore, millis: number): Effect.Effect<boolean> => {
    if (millis <= 0) return Effect.succeed(false)
    let acquired = false
    let abandoned = false
    const take = Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(semaphore.take(1)), () => {
        if (abandoned) return Effect.asVoid(semaphore.release(1))
        acquired = true
        return Effect.void
      })
    )
    return Effect.timeoutOption(take, Duration.millis(millis)).pipe(
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
  }

  // Admits the call through the rate gates from `index` on, holding each gate's turnstile from its turn until the call
  // is through the last one; the call is recorded in every gate when it passes the last. The turnstiles are released
  // as soon as the call is admitted: they order admissions, never the calls themselves.
  const throughGates = (
    ticket: Ticket,
    index: number,
    passed: Array<RateGate>
  ): Effect.Effect<void, ThrottlerError | McpBridgeError> => {
    const plan = ticket.plan
    if (index === plan.gates.length) {
      return Effect.clockWith((clock) => {
        const at = clock.currentTimeMillisUnsafe()
        for (const gate of passed) ticket.logged.push(record(gate, ++nextId))
        if (ticket.waitedFor !== undefined) {
          recorder.throttleWaited(ticket.plan.server, ticket.waitedFor, (at - ticket.start) / 1000)
        }
        return Effect.void
      })
    }
    const gate = plan.gates[index]!
    return Effect.uninterruptibleMask((restore) =>
      Effect.clockWith((clock) => {
        const now = clock.currentTimeMillisUnsafe()
        const held = (after: Effect.Effect<void, ThrottlerError | McpBridgeError>) => {
          gate.busy++
          return Effect.ensuring(
            restore(after),
            Effect.suspend(() => {
              gate.busy--
              return gate.turnstile.release(1)
            })
          )
        }
        const pass = (): Effect.Effect<void, ThrottlerError | McpBridgeError> => {
          const at = Math.max(admitAt(gate), ...passed.map(admitAt))
          const current = clock.currentTimeMillisUnsafe()
          if (at <= current) return throughGates(ticket, index + 1, [...passed, gate])
          startWait(ticket, current)
          // The call N places back still runs: its place frees a window after it ends, so wait for it to end.
          if (at === Infinity && !plan.failFast && current < ticket.until) {
            ticket.waitedFor = gate.limits[0]!.kind
            const running = [gate, ...passed].find((g) => admitAt(g) === Infinity)!
            const end = running.ended ??= Deferred.makeUnsafe<void>()
            return Effect.andThen(
              Effect.raceFirst(Deferred.await(end), Effect.sleep(Duration.millis(ticket.until - current))),
              Effect.suspend(pass)
            )
          }
          if (plan.failFast || at > ticket.until) {
            if (!plan.failFast && ticket.untilDeadline) return deadlinePassed(ticket, "rate-limit")
            return rateRefused(ticket, gate, at === Infinity ? gate.limits[0]!.spanMillis : at - current)
          }
          ticket.waitedFor = gate.limits[0]!.kind
          return Effect.andThen(
            Effect.sleep(Duration.millis(at - current)),
            Effect.suspend(() => throughGates(ticket, index + 1, [...passed, gate]))
          )
        }
        // Free turnstile and nobody waiting: no queue to join.
        if (gate.waiting === 0) {
          return Effect.flatMap(gate.turnstile.takeIfAvailable(1), (taken) => {
            if (taken) return held(Effect.suspend(pass))
            return waitTurn()
          })
        }
        return waitTurn()

        function waitTurn(): Effect.Effect<void, ThrottlerError | McpBridgeError> {
          startWait(ticket, now)
          if (plan.failFast) {
            return rateRefused(ticket, gate, Math.max(0, admitAt(gate) - now))
          }
          ticket.waitedFor = gate.limits[0]!.kind
          gate.waiting++
          const take = takeWithin(gate.turnstile, ticket.until - now).pipe(
            Effect.ensuring(Effect.sync(() => gate.waiting--))
          )
          return Effect.flatMap(restore(take), (ok) => {
            if (ok) return held(Effect.suspend(pass))
            return ticket.untilDeadline
              ? deadlinePassed(ticket, "rate-limit")
              : rateRefused(ticket, gate, Math.max(0, admitAt(gate) - clock.currentTimeMillisUnsafe()))
          })
        }
      })
    )
  }

  const withSlots = <A, E>(
    ticket: Ticket,
    index: number,
    inner: Effect.Effect<A, E>
  ): Effect.Effect<A, E | ThrottlerError | McpBridgeError> => {
    const plan = ticket.plan
    if (index === plan.slots.length) return inner
    const slot = plan.slots[index]!
    const semaphore = slot.semaphore
    return Effect.uninterruptibleMask((restore) =>
      // A free permit is taken at once only when nobody waits for one (`takeIfAvailable` would overtake them; the
      // semaphore's own `take` queues in order).
      Effect.flatMap(slot.waiting === 0 ? semaphore.takeIfAvailable(1) : Effect.succeed(false), (taken) => {
        if (taken) return Effect.ensuring(restore(withSlots(ticket, index + 1, inner)), semaphore.release(1))
        return Effect.clockWith((clock) => {
          const now = clock.currentTimeMillisUnsafe()
          if (plan.failFast) return slotRefused(ticket, slot, now)
          startWait(ticket, now)
          ticket.waitedFor = "concurrency"
          slot.waiting++
          const take = takeWithin(semaphore, ticket.until - now).pipe(
            Effect.ensuring(Effect.sync(() => slot.waiting--))
          )
          return Effect.flatMap(restore(take), (ok) =>
            ok
              ? Effect.ensuring(restore(withSlots(ticket, index + 1, inner)), semaphore.release(1))
              : ticket.untilDeadline
              ? deadlinePassed(ticket, "concurrency")
              : slotRefused(ticket, slot, clock.currentTimeMillisUnsafe()))
        })
      })
    )
  }

  // With a shared store: the call's limits (tool's first, then server's) admitted in one operation of the store, in
  // turn behind this replica's turnstiles so that its callers are served first come first served.
  const sharedAdmission = (store: RateLimitStore.RateLimitStore.Service, ticket: Ticket) => {
    const plan = ticket.plan
    const limits: Array<RateLimitStore.Limit & { readonly source: RateLimit }> = []
    for (const gate of plan.gates) {
      for (const l of gate.limits) {
        limits.push({
          key: `${gate.key}\u0000${l.windowName}`,
          limit: l.limit,
          window: Duration.millis(l.spanMillis),
          source: l
        })
      }
    }
    const refuse = (l: RateLimit, retryAfterMillis: number) =>
      Effect.suspend(() => {
        recorder.throttleRejected(plan.server, l.kind)
        return Effect.fail(
          new ThrottlerError({
            reason: new RateLimited({
              server: plan.server,
              ...(l.tool === undefined ? {} : { tool: l.tool }),
              limit: l.limit,
              window: l.windowName,
              retryAfterMillis: Math.max(0, Math.ceil(retryAfterMillis))
            })
          })
        )
      })
    const attempt: Effect.Effect<void, ThrottlerError | McpBridgeError> = Effect.flatMap(
      store.admit(limits).pipe(
        // A store that cannot answer refuses at once (its own policy decides first, see its layer): fail closed.
        Effect.catch((error) =>
          Effect.suspend(() => {
            const first = limits[0]!.source
            recorder.throttleRejected(plan.server, first.kind)
            return Effect.fail(
              new ThrottlerError({
                reason: new LimitStoreUnavailable({
                  server: plan.server,
                  ...(first.tool === undefined ? {} : { tool: first.tool }),
                  detail: error.message
                })
              })
            )
          })
        )
      ),
      (admission) =>
        Effect.clockWith((clock) => {
          const now = clock.currentTimeMillisUnsafe()
          if (admission._tag === "Admitted") {
            if (ticket.waitedFor !== undefined) {
              recorder.throttleWaited(plan.server, ticket.waitedFor, (now - ticket.start) / 1000)
            }
            return Effect.void
          }
          const l = limits[admission.index]!.source
          startWait(ticket, now)
          if (plan.failFast) {
            return refuse(l, admission.retryAfterMillis)
          }
          if (now + admission.retryAfterMillis > ticket.until) {
            return ticket.untilDeadline ? deadlinePassed(ticket, "rate-limit") : refuse(l, admission.retryAfterMillis)
          }
          ticket.waitedFor = l.kind
          return Effect.andThen(Effect.sleep(Duration.millis(Math.max(1, admission.retryAfterMillis))), attempt)
        })
    )
    // Behind each gate's turnstile, in order, held until the call is admitted.
    const through = (index: number): Effect.Effect<void, ThrottlerError | McpBridgeError> => {
      if (index === plan.gates.length) return attempt
      const gate = plan.gates[index]!
      return Effect.uninterruptibleMask((restore) =>
        Effect.clockWith((clock) => {
          const now = clock.currentTimeMillisUnsafe()
          const held = Effect.ensuring(restore(through(index + 1)), gate.turnstile.release(1))
          if (gate.waiting === 0) {
            return Effect.flatMap(gate.turnstile.takeIfAvailable(1), (taken) => taken ? held : queue())
          }
          return queue()
          function queue(): Effect.Effect<void, ThrottlerError | McpBridgeError> {
            startWait(ticket, now)
            if (plan.failFast) return refuse(gate.limits[0]!, 0)
            gate.waiting++
            const take = takeWithin(gate.turnstile, ticket.until - now).pipe(
              Effect.ensuring(Effect.sync(() => gate.waiting--))
            )
            return Effect.flatMap(restore(take), (ok) =>
              ok ? held : ticket.untilDeadline ? deadlinePassed(ticket, "rate-limit") : refuse(gate.limits[0]!, 0))
          }
        })
      )
    }
    return through(0)
  }

  const wrap = <E>(next: ToolCaller<E>): ToolCaller<E | ThrottlerError | McpBridgeError> => (request: CallRequest) => {
    const plan = planFor(request.server, request.tool, request.policy)
    if (plan === undefined) return next(request)
    const ticket: Ticket = {
      plan,
      call: request,
      start: -1,
      until: 0,
      untilDeadline: false,
      waitedFor: undefined,
      logged: []
    }
    if (plan.gates.length === 0) return withSlots(ticket, 0, Effect.suspend(() => next(request)))
    if (shared !== undefined) {
      return withSlots(ticket, 0, Effect.andThen(sharedAdmission(shared, ticket), Effect.suspend(() => next(request))))
    }
    // A logged call holds its places until it ends, however it ends: stamped by a finalizer set up before admission.
    const stamp = Effect.clockWith((clock) =>
      Effect.sync(() => {
        const now = clock.currentTimeMillisUnsafe()
        for (const logged of ticket.logged) ended(logged, now)
      })
    )
    const admitted = Effect.clockWith((clock) => {
      // Room in every gate and nobody queued or being admitted: admitted at once, no turnstile taken.
      const now = clock.currentTimeMillisUnsafe()
      if (plan.gates.every((gate) => gate.waiting === 0 && gate.busy === 0 && admitAt(gate) <= now)) {
        for (const gate of plan.gates) ticket.logged.push(record(gate, ++nextId))
        return next(request)
      }
      return Effect.andThen(throughGates(ticket, 0, []), Effect.suspend(() => next(request)))
    })
    return withSlots(ticket, 0, Effect.ensuring(admitted, stamp))
  }

  const forget = (server: string): Effect.Effect<void> =>
    Effect.sync(() => {
      const ofServer = (key: string) => key === server || key.startsWith(`${server}\u0000`)
      for (const key of Array.from(rateGates.keys())) if (ofServer(key)) rateGates.delete(key)
      for (const key of Array.from(slots.keys())) if (ofServer(key)) slots.delete(key)
    })

  return { wrap, forget } satisfies Throttler.Service
})

/**
 * The throttler, with the limits each server's `bridge.throttle` (and each tool's) sets, over `options.defaults`.
 *
 * @example
 * ```ts
 * // the production preset for servers that configure no limits of their own
 * Throttler.layer({ defaults: { perSecond: 50, perMinute: 1000, concurrency: 20 }, maxWait: "10 seconds" })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Throttler> => Layer.effect(Throttler, make(options))

/**
 * No limits: calls pass straight through.
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<Throttler> = Layer.succeed(Throttler, { wrap: (next) => next })
