/**
 * The standard alert rules (error rate, p95 latency, cache hit rate, a saturated pool, an open circuit) as
 * one engine over the metrics snapshot (`MetricsSnapshot.BridgeMetrics`).
 *
 * `check(rules, now, base)` is the engine: counts are taken as `now` minus `base` (the start of a sliding window),
 * latency percentiles come from the snapshot's windowed summaries, pool and circuit state are read as they are now.
 * `rulesFiring(metrics)` runs it over a snapshot counting from start (for reports and the demo); the `Telemetry`
 * stage runs it on a schedule (`Schedule`-driven fiber) over its window, with hysteresis (a rule fires after `for`
 * breaches in a row and resolves after `resolveAfter` clear evaluations), and publishes the events on a `PubSub`.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, PubSub, Scope, Stream } from "effect"
import * as Metrics from "../internal/metrics.ts"
import type { MetricsRecorder } from "./MetricsRecorder.ts"
import type { AlertEvent, AlertRule, BridgeMetrics, ServerMetrics } from "./MetricsSnapshot.ts"

/**
 * Thresholds of the alert rules. Each rule can be switched off with `false`.
 *
 * @since 0.1.0
 */
export interface AlertOptions {
  /** How often the rules are evaluated. @default 15 seconds */
  readonly evaluationInterval?: Duration.Input | undefined
  /** Share of failed calls (failures and tool errors) of a server over the window. */
  readonly errorRate?:
    | { readonly threshold?: number | undefined; readonly minCalls?: number | undefined }
    | false
    | undefined
  /** p95 latency of a tool over the window. */
  readonly latency?:
    | { readonly p95?: Duration.Input | undefined; readonly minCalls?: number | undefined }
    | false
    | undefined
  /** Cache hit rate of a server over the window. */
  readonly cacheHitRate?:
    | { readonly threshold?: number | undefined; readonly minLookups?: number | undefined }
    | false
    | undefined
  /** Callers waiting for a session, at `for` consecutive evaluations. */
  readonly poolSaturated?: { readonly for?: number | undefined } | false | undefined
  /** A server's circuit breaker is open. */
  readonly circuitOpen?: boolean | undefined
  /** A firing alert resolves after this many consecutive evaluations without a breach. @default 2 */
  readonly resolveAfter?: number | undefined
  /** Called for each event (after it is logged and counted); bounded to 10 seconds, failures are logged. */
  readonly onEvent?: ((event: AlertEvent) => void | Effect.Effect<void>) | undefined
}

/**
 * The alert thresholds used when none are given: error rate above 10 %, latency above 1 s (on p95),
 * a cache hit rate below 50 %, callers waiting for a session at 2 evaluations in a row, an open circuit.
 *
 * @since 0.1.0
 */
export const defaults = {
  evaluationInterval: Duration.seconds(15),
  errorRate: { threshold: 0.1, minCalls: 10 },
  latency: { p95: Duration.seconds(1), minCalls: 10 },
  cacheHitRate: { threshold: 0.5, minLookups: 20 },
  poolSaturated: { for: 2 },
  resolveAfter: 2
} as const

/**
 * `AlertOptions` with every default applied.
 *
 * @since 0.1.0
 */
export interface Rules {
  readonly evaluationInterval: Duration.Duration
  readonly errorRate: { readonly threshold: number; readonly minCalls: number } | false
  readonly latency: { readonly p95: Duration.Duration; readonly minCalls: number } | false
  readonly cacheHitRate: { readonly threshold: number; readonly minLookups: number } | false
  readonly poolSaturated: { readonly for: number } | false
  readonly circuitOpen: boolean
  readonly resolveAfter: number
}

/**
 * Applies the defaults.
 *
 * @since 0.1.0
 */
export const resolve = (o: AlertOptions = {}): Rules => ({
  evaluationInterval: Duration.fromInputUnsafe(o.evaluationInterval ?? defaults.evaluationInterval),
  errorRate: o.errorRate === false ? false : {
    threshold: o.errorRate?.threshold ?? defaults.errorRate.threshold,
    minCalls: o.errorRate?.minCalls ?? defaults.errorRate.minCalls
  },
  latency: o.latency === false ? false : {
    p95: Duration.fromInputUnsafe(o.latency?.p95 ?? defaults.latency.p95),
    minCalls: o.latency?.minCalls ?? defaults.latency.minCalls
  },
  cacheHitRate: o.cacheHitRate === false ? false : {
    threshold: o.cacheHitRate?.threshold ?? defaults.cacheHitRate.threshold,
    minLookups: o.cacheHitRate?.minLookups ?? defaults.cacheHitRate.minLookups
  },
  poolSaturated: o.poolSaturated === false ? false : { for: o.poolSaturated?.for ?? defaults.poolSaturated.for },
  circuitOpen: o.circuitOpen ?? true,
  resolveAfter: Math.max(1, o.resolveAfter ?? defaults.resolveAfter)
})

/**
 * One rule checked against one server (or tool).
 *
 * @since 0.1.0
 */
export interface Check {
  readonly rule: AlertRule
  readonly server: string
  /** Set for the latency rule (per tool). */
  readonly tool: string | undefined
  /** `undefined`: not enough data (never fires; counts towards resolving). */
  readonly value: number | undefined
  readonly threshold: number
  readonly breached: boolean
  /** Breaches in a row before the rule fires. */
  readonly for: number
}

const percent = (x: number) => `${(x * 100).toFixed(1)} %`

/**
 * The message of an event of `check`.
 *
 * @since 0.1.0
 */
export const describe = (check: Check, state: "firing" | "resolved", value: number): string => {
  const target = check.tool === undefined ? `MCP server "${check.server}"` : `${check.server}.${check.tool}`
  const verb = state === "firing" ? "" : "resolved: "
  switch (check.rule) {
    case "error_rate":
      return `${verb}error rate of ${target} is ${percent(value)} (threshold ${percent(check.threshold)})`
    case "latency":
      return `${verb}p95 latency of ${target} is ${(value * 1000).toFixed(0)} ms (threshold ${
        (check.threshold * 1000).toFixed(0)
      } ms)`
    case "cache_hit_rate":
      return `${verb}cache hit rate of ${target} is ${percent(value)} (threshold ${percent(check.threshold)})`
    case "pool_saturated":
      return `${verb}session pool of ${target} is saturated: ${value} callers waiting`
    case "circuit_open":
      return `${verb}circuit breaker of ${target} is ${state === "firing" ? "open" : "closed again"}`
  }
}

/**
 * The engine: every rule checked against every server (and, for latency, every tool) of `now`, with counts taken
 * since `base` (the start of the window; `undefined`: since start).
 *
 * @since 0.1.0
 */
export const check = (rules: Rules, now: BridgeMetrics, base: BridgeMetrics | undefined): Array<Check> => {
  const checks: Array<Check> = []
  const before = new Map<string, ServerMetrics>()
  for (const s of base?.servers ?? []) before.set(s.server, s)
  for (const s of now.servers) {
    const b = before.get(s.server)
    const calls = s.calls - (b?.calls ?? 0)
    const errors = calls - (s.success - (b?.success ?? 0))
    if (rules.errorRate !== false) {
      const value = calls >= rules.errorRate.minCalls ? errors / calls : undefined
      const threshold = rules.errorRate.threshold
      checks.push({
        rule: "error_rate",
        server: s.server,
        tool: undefined,
        value,
        threshold,
        breached: value !== undefined && value > threshold,
        for: 1
      })
    }
    if (rules.cacheHitRate !== false) {
      const hits = s.cache.hits - (b?.cache.hits ?? 0)
      const lookups = hits + s.cache.misses - (b?.cache.misses ?? 0)
      const value = lookups >= rules.cacheHitRate.minLookups ? hits / lookups : undefined
      const threshold = rules.cacheHitRate.threshold
      checks.push({
        rule: "cache_hit_rate",
        server: s.server,
        tool: undefined,
        value,
        threshold,
        breached: value !== undefined && value < threshold,
        for: 1
      })
    }
    if (rules.poolSaturated !== false && s.pool !== undefined) {
      const value = s.pool.pending
      checks.push({
        rule: "pool_saturated",
        server: s.server,
        tool: undefined,
        value,
        threshold: 0,
        // Callers waiting while no session is open yet wait for a connect, not for a busy pool.
        breached: value > 0 && s.pool.idle + s.pool.inUse > 0,
        for: rules.poolSaturated.for
      })
    }
    if (rules.circuitOpen && s.circuitBreaker !== undefined) {
      const value = s.circuitBreaker === "open" ? 1 : 0
      checks.push({
        rule: "circuit_open",
        server: s.server,
        tool: undefined,
        value,
        threshold: 1,
        breached: value === 1,
        for: 1
      })
    }
    if (rules.latency !== false) {
      const threshold = Duration.toSeconds(rules.latency.p95)
      const toolsBefore = new Map((b?.tools ?? []).map((t) => [t.tool, t.calls]))
      for (const t of s.tools) {
        const toolCalls = t.calls - (toolsBefore.get(t.tool) ?? 0)
        const value = toolCalls >= rules.latency.minCalls && t.p95Millis !== undefined ? t.p95Millis / 1000 : undefined
        checks.push({
          rule: "latency",
          server: s.server,
          tool: t.tool,
          value,
          threshold,
          breached: value !== undefined && value > threshold,
          for: 1
        })
      }
    }
  }
  return checks
}

const firing = (c: Check, at: number): AlertEvent => ({
  rule: c.rule,
  state: "firing",
  server: c.server,
  tool: c.tool,
  value: c.value!,
  threshold: c.threshold,
  at,
  message: describe(c, "firing", c.value!)
})

/**
 * Which alert rules fire on a snapshot (`McpBridge.metrics()`), with its counts since start: a plain function, for
 * reports and the demo. The `Telemetry` stage runs the same engine on a schedule over its sliding window.
 *
 * @example
 * ```ts
 * const firing = AlertRules.rulesFiring(yield* bridge.metrics(), { errorRate: { threshold: 0.05 } })
 * ```
 *
 * @since 0.1.0
 */
export const rulesFiring = (metrics: BridgeMetrics, options: AlertOptions = {}): ReadonlyArray<AlertEvent> =>
  check(resolve(options), metrics, undefined).filter((c) => c.breached).map((c) => firing(c, 0))

/**
 * A running set of rules: the events as they happen, the alerts firing now, and an evaluation on demand.
 *
 * @since 0.1.0
 */
export interface Engine {
  readonly events: Stream.Stream<AlertEvent>
  readonly active: Effect.Effect<ReadonlyArray<AlertEvent>>
  readonly evaluate: Effect.Effect<ReadonlyArray<AlertEvent>>
}

interface RuleState {
  firing: AlertEvent | undefined
  breachStreak: number
  clearStreak: number
}

/**
 * Starts the rules over `read` (the bridge's snapshot), evaluated every `evaluationInterval` over `window`, until the
 * scope closes. Each event is logged, counted (`mcp_bridge.alerts`), published, and passed to `onEvent`.
 *
 * @since 0.1.0
 */
export const start = Effect.fnUntraced(function*(
  options: AlertOptions,
  window: Duration.Duration,
  read: Effect.Effect<BridgeMetrics>,
  recorder: MetricsRecorder.Service
): Effect.fn.Return<Engine, never, Scope.Scope> {
  const rules = resolve(options)
  const pubsub = yield* PubSub.unbounded<AlertEvent>()
  yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
  const states = new Map<string, RuleState>()
  // A snapshot at each evaluation: the window's start is the newest one at least `window` old.
  const history: Array<{ readonly at: number; readonly metrics: BridgeMetrics }> = []
  const windowMillis = Duration.toMillis(window)

  const emit = (event: AlertEvent) =>
    Effect.gen(function*() {
      yield* (event.state === "firing" ? Effect.logWarning(event.message) : Effect.logInfo(event.message)).pipe(
        Effect.annotateLogs({ [Metrics.Attr.alertRule]: event.rule, [Metrics.Attr.server]: event.server })
      )
      recorder.alert(event.rule, event.server, event.state)
      yield* PubSub.publish(pubsub, event)
      const onEvent = options.onEvent
      if (onEvent !== undefined) {
        // The user's callback may throw, fail or hang: it gets 10 seconds, and what goes wrong is logged, never lets
        // the rules stop.
        yield* Effect.suspend(() => {
          const r = onEvent(event)
          return Effect.isEffect(r) ? r : Effect.void
        }).pipe(
          Effect.timeout("10 seconds"),
          Effect.catchCause((cause) => Effect.logError("alert callback onEvent failed", cause))
        )
      }
    })

  const evaluate = Effect.gen(function*() {
    const at = yield* Clock.currentTimeMillis
    const now = yield* read
    let base: BridgeMetrics | undefined
    for (const sample of history) {
      if (at - sample.at >= windowMillis) base = sample.metrics
    }
    if (base === undefined) base = history[0]?.metrics
    history.push({ at, metrics: now })
    while (history.length > 1 && at - history[1]!.at >= windowMillis) history.shift()

    const events: Array<AlertEvent> = []
    for (const c of check(rules, now, base)) {
      const k = `${c.rule}\u0000${c.server}\u0000${c.tool ?? ""}`
      let state = states.get(k)
      if (state === undefined) states.set(k, state = { firing: undefined, breachStreak: 0, clearStreak: 0 })
      if (state.firing === undefined) {
        state.breachStreak = c.breached ? state.breachStreak + 1 : 0
        if (state.breachStreak >= c.for) {
          const event = firing(c, at)
          state.firing = event
          state.breachStreak = 0
          state.clearStreak = 0
          events.push(event)
        }
      } else {
        state.clearStreak = c.breached ? 0 : state.clearStreak + 1
        if (state.clearStreak >= rules.resolveAfter) {
          const value = c.value ?? 0
          events.push({
            rule: c.rule,
            state: "resolved",
            server: c.server,
            tool: c.tool,
            value,
            threshold: c.threshold,
            at,
            message: describe(c, "resolved", value)
          })
          state.firing = undefined
          state.clearStreak = 0
        }
      }
    }
    yield* Effect.forEach(events, emit, { discard: true })
    return events as ReadonlyArray<AlertEvent>
  })

  // The first sample is the baseline of the first window.
  history.push({ at: yield* Clock.currentTimeMillis, metrics: yield* read })
  yield* evaluate.pipe(Effect.delay(rules.evaluationInterval), Effect.forever, Effect.forkScoped)

  const active = Effect.sync(() => {
    const out: Array<AlertEvent> = []
    for (const state of states.values()) if (state.firing !== undefined) out.push(state.firing)
    return out as ReadonlyArray<AlertEvent>
  })
  return { events: Stream.fromPubSub(pubsub), active, evaluate }
})
