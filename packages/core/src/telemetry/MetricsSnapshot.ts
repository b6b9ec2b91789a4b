/**
 * The snapshot model of the bridge's metrics, per server and per tool: the monitoring view (calls by
 * outcome, success rate, latency mean and percentiles, cache hit rate, pool, throttle, retries, circuit state, the
 * alerts firing now), built from a `Metric` snapshot of the bridge's registry (see `MetricsRecorder`).
 *
 * A plain function over `Metric.Metric.Snapshot`s: `McpBridge.metrics()` and the alert rules read it.
 *
 * @since 0.1.0
 */
import type { Metric } from "effect"
import * as Metrics from "../internal/metrics.ts"

const Attr = Metrics.Attr
const defs = Metrics.definitions

/**
 * The pool of one server (and identity, with per-identity isolation).
 *
 * @since 0.1.0
 */
export interface PoolStats {
  readonly server: string
  /** Set for per-identity pools. */
  readonly identity: string | undefined
  readonly idle: number
  readonly inUse: number
  /** Callers waiting for a session. */
  readonly pending: number
  /** Sessions being opened now. */
  readonly connecting: number
  readonly min: number
  readonly max: number
  /** Sessions opened since start (successful connects). */
  readonly created: number
  /** Sessions closed because they died, failed a probe, idled out or aged out. */
  readonly invalidated: number
  /** Connects that failed. */
  readonly connectFailures: number
  /** Connect latency of the last session opened, and the mean over all (ms). */
  readonly lastConnectMillis: number | undefined
  readonly meanConnectMillis: number | undefined
}

/**
 * The metrics of one tool of one server. Counts are since start; percentiles are over the sliding window
 * (`Options.window`, default 5 minutes, at most `maxSamples` recent calls).
 *
 * @since 0.1.0
 */
export interface ToolMetrics {
  readonly tool: string
  readonly calls: number
  readonly success: number
  /** Calls answered with `isError: true`. */
  readonly toolErrors: number
  /** Calls that failed (timeout, pool, transport, throttle, circuit...). */
  readonly failures: number
  /** `success / calls` (tool errors and failures are not successes); `undefined` before the first call. */
  readonly successRate: number | undefined
  readonly meanMillis: number | undefined
  readonly p50Millis: number | undefined
  readonly p95Millis: number | undefined
  readonly p99Millis: number | undefined
  readonly inFlight: number
}

/**
 * The pool of one server (summed over its per-identity pools).
 *
 * @since 0.1.0
 */
export interface PoolMetrics extends
  Pick<
    PoolStats,
    "idle" | "inUse" | "pending" | "min" | "max" | "created" | "invalidated" | "connectFailures" | "meanConnectMillis"
  >
{}

/**
 * The monitoring view of one server.
 *
 * @since 0.1.0
 */
export interface ServerMetrics {
  readonly server: string
  readonly calls: number
  readonly success: number
  readonly toolErrors: number
  readonly failures: number
  readonly successRate: number | undefined
  /** Failures by `error.type` (the reason tag: `Timeout`, `PoolTimeout`, `RateLimited`...). */
  readonly failuresByReason: Readonly<Record<string, number>>
  readonly meanMillis: number | undefined
  /** Latency percentiles over all tools of the server, over the window. */
  readonly p50Millis: number | undefined
  readonly p95Millis: number | undefined
  readonly p99Millis: number | undefined
  readonly inFlight: number
  readonly tools: ReadonlyArray<ToolMetrics>
  readonly cache: {
    readonly hits: number
    readonly misses: number
    /** `hits / (hits + misses)`; `undefined` when nothing was looked up. */
    readonly hitRate: number | undefined
    readonly evictions: number
  }
  readonly pool: PoolMetrics | undefined
  readonly throttle: {
    readonly waits: number
    readonly rejections: number
    readonly meanWaitMillis: number | undefined
  }
  readonly retries: number
  readonly circuitBreaker: Metrics.BreakerState | undefined
}

/**
 * A snapshot of the whole bridge.
 *
 * @since 0.1.0
 */
export interface BridgeMetrics {
  readonly servers: ReadonlyArray<ServerMetrics>
  /** The result cache's size, when it reports one. */
  readonly cache: { readonly entries: number | undefined; readonly bytes: number | undefined }
  /** Alerts firing now (empty when no alert rules run). */
  readonly alerts: ReadonlyArray<AlertEvent>
}

/**
 * The alert rules.
 *
 * @since 0.1.0
 */
export type AlertRule = "error_rate" | "latency" | "cache_hit_rate" | "pool_saturated" | "circuit_open"

/**
 * An alert firing or resolving.
 *
 * @since 0.1.0
 */
export interface AlertEvent {
  readonly rule: AlertRule
  readonly state: "firing" | "resolved"
  readonly server: string
  /** Set for the latency rule (per tool). */
  readonly tool: string | undefined
  /** The observed value: a ratio (0..1), seconds for latency, a count for the pool, 1 for an open circuit. */
  readonly value: number
  readonly threshold: number
  /** Epoch millis (the `Clock`'s). */
  readonly at: number
  readonly message: string
}

const attr = (s: Metric.Metric.Snapshot, key: string): string | undefined => s.attributes?.[key]

const ratio = (n: number, d: number) => d > 0 ? n / d : undefined

const toMillis = (seconds: number | undefined) => seconds === undefined ? undefined : seconds * 1000

const quantile = (state: Metric.SummaryState, q: number) => state.quantiles.find(([k]) => k === q)?.[1]

const breakerStateOf = (value: number): Metrics.BreakerState =>
  value >= 2 ? "open" : value >= 1 ? "half_open" : "closed"

interface Acc {
  calls: number
  success: number
  toolErrors: number
  failures: number
  failuresByReason: Record<string, number>
  durationSum: number
  durationCount: number
  inFlight: number
}

const emptyAcc = (): Acc => ({
  calls: 0,
  success: 0,
  toolErrors: 0,
  failures: 0,
  failuresByReason: {},
  durationSum: 0,
  durationCount: 0,
  inFlight: 0
})

/**
 * Builds the per-server view from a `Metric` snapshot of the bridge's registry (`MetricsRecorder.snapshot()`), the
 * pools' stats (`ConnectionPool.stats`; without them, the pool figures come from the pool gauges in the snapshot)
 * and the alerts firing now. `servers` orders the result and lists servers that have no metrics yet; without it, the
 * servers are the ones the snapshot names.
 *
 * @since 0.1.0
 */
export const fromSnapshot = (
  servers: ReadonlyArray<string> | undefined,
  snapshot: ReadonlyArray<Metric.Metric.Snapshot>,
  poolStats: ReadonlyArray<PoolStats> = [],
  alerts: ReadonlyArray<AlertEvent> = []
): BridgeMetrics => {
  const perServer = new Map<string, Acc>()
  const perTool = new Map<string, Map<string, Acc & { window: Metric.SummaryState | undefined }>>()
  const cache = new Map<string, { hits: number; misses: number; evictions: number }>()
  const throttle = new Map<string, { waits: number; rejections: number; waitSum: number; waitCount: number }>()
  const retries = new Map<string, number>()
  const breakers = new Map<string, Metrics.BreakerState>()
  const serverWindows = new Map<string, Metric.SummaryState>()
  const poolGauges = new Map<string, { idle: number; inUse: number; pending: number; max: number }>()
  const named = new Set<string>()
  let cacheEntries: number | undefined
  let cacheBytes: number | undefined
  const gaugesOf = (server: string) => {
    let g = poolGauges.get(server)
    if (g === undefined) poolGauges.set(server, g = { idle: 0, inUse: 0, pending: 0, max: 0 })
    return g
  }
  const gaugeValue = (s: Metric.Metric.Snapshot) => Number((s.state as Metric.GaugeState<number>).value)

  const serverAcc = (server: string) => {
    let acc = perServer.get(server)
    if (acc === undefined) perServer.set(server, acc = emptyAcc())
    return acc
  }
  const toolAcc = (server: string, tool: string) => {
    let tools = perTool.get(server)
    if (tools === undefined) perTool.set(server, tools = new Map())
    let acc = tools.get(tool)
    if (acc === undefined) tools.set(tool, acc = { ...emptyAcc(), window: undefined })
    return acc
  }
  const cacheOf = (server: string) => {
    let c = cache.get(server)
    if (c === undefined) cache.set(server, c = { hits: 0, misses: 0, evictions: 0 })
    return c
  }
  const throttleOf = (server: string) => {
    let t = throttle.get(server)
    if (t === undefined) throttle.set(server, t = { waits: 0, rejections: 0, waitSum: 0, waitCount: 0 })
    return t
  }

  for (const s of snapshot) {
    const server = attr(s, Attr.server)
    if (server !== undefined) named.add(server)
    switch (s.id) {
      case defs.poolSessions.name:
        if (server !== undefined) {
          const g = gaugesOf(server)
          if (attr(s, Attr.sessionState) === "used") g.inUse += gaugeValue(s)
          else g.idle += gaugeValue(s)
        }
        break
      case defs.poolPending.name:
        if (server !== undefined) gaugesOf(server).pending += gaugeValue(s)
        break
      case defs.poolMax.name:
        if (server !== undefined) gaugesOf(server).max += gaugeValue(s)
        break
      case defs.calls.name: {
        const tool = attr(s, Attr.tool)
        if (server === undefined || tool === undefined) break
        const n = Number((s.state as Metric.CounterState<number>).count)
        const outcome = attr(s, Attr.outcome)
        for (const acc of [serverAcc(server), toolAcc(server, tool)]) {
          acc.calls += n
          if (outcome === "success") acc.success += n
          else if (outcome === "tool_error") acc.toolErrors += n
          else {
            acc.failures += n
            const reason = attr(s, Attr.errorType) ?? "_OTHER"
            acc.failuresByReason[reason] = (acc.failuresByReason[reason] ?? 0) + n
          }
        }
        break
      }
      case defs.operationDuration.name: {
        const tool = attr(s, Attr.tool)
        if (server === undefined || tool === undefined) break
        const h = s.state as Metric.HistogramState
        for (const acc of [serverAcc(server), toolAcc(server, tool)]) {
          acc.durationSum += h.sum
          acc.durationCount += h.count
        }
        break
      }
      case defs.activeCalls.name: {
        const tool = attr(s, Attr.tool)
        if (server === undefined || tool === undefined) break
        const v = Number((s.state as Metric.GaugeState<number>).value)
        serverAcc(server).inFlight += v
        toolAcc(server, tool).inFlight += v
        break
      }
      case Metrics.windowSummaryName: {
        const tool = attr(s, Attr.tool)
        if (server === undefined) break
        if (tool === undefined) serverWindows.set(server, s.state as Metric.SummaryState)
        else toolAcc(server, tool).window = s.state as Metric.SummaryState
        break
      }
      case defs.cacheRequests.name: {
        if (server === undefined) break
        const n = Number((s.state as Metric.CounterState<number>).count)
        if (attr(s, Attr.cacheResult) === "hit") cacheOf(server).hits += n
        else if (attr(s, Attr.cacheResult) === "miss") cacheOf(server).misses += n
        break
      }
      case defs.cacheEvictions.name: {
        if (server === undefined) break
        cacheOf(server).evictions += Number((s.state as Metric.CounterState<number>).count)
        break
      }
      case defs.cacheEntries.name:
        cacheEntries = Number((s.state as Metric.GaugeState<number>).value)
        break
      case defs.cacheBytes.name:
        cacheBytes = Number((s.state as Metric.GaugeState<number>).value)
        break
      case defs.throttleWaits.name:
        if (server !== undefined) throttleOf(server).waits += Number((s.state as Metric.CounterState<number>).count)
        break
      case defs.throttleWaitDuration.name: {
        if (server === undefined) break
        const h = s.state as Metric.HistogramState
        throttleOf(server).waitSum += h.sum
        throttleOf(server).waitCount += h.count
        break
      }
      case defs.throttleRejections.name:
        if (server !== undefined) {
          throttleOf(server).rejections += Number((s.state as Metric.CounterState<number>).count)
        }
        break
      case defs.retries.name:
        if (server !== undefined) {
          retries.set(server, (retries.get(server) ?? 0) + Number((s.state as Metric.CounterState<number>).count))
        }
        break
      case defs.breakerState.name:
        if (server !== undefined) {
          breakers.set(server, breakerStateOf(Number((s.state as Metric.GaugeState<number>).value)))
        }
        break
    }
  }

  const pools = new Map<string, PoolMetrics & { connectSum: number }>()
  for (const p of poolStats) {
    const prev = pools.get(p.server)
    const connectSum = (p.meanConnectMillis ?? 0) * p.created
    pools.set(p.server, {
      idle: (prev?.idle ?? 0) + p.idle,
      inUse: (prev?.inUse ?? 0) + p.inUse,
      pending: (prev?.pending ?? 0) + p.pending,
      min: (prev?.min ?? 0) + p.min,
      max: (prev?.max ?? 0) + p.max,
      created: (prev?.created ?? 0) + p.created,
      invalidated: (prev?.invalidated ?? 0) + p.invalidated,
      connectFailures: (prev?.connectFailures ?? 0) + p.connectFailures,
      connectSum: (prev?.connectSum ?? 0) + connectSum,
      meanConnectMillis: undefined
    })
  }
  for (const [server, g] of poolGauges) {
    if (!pools.has(server)) {
      pools.set(server, {
        ...g,
        min: 0,
        created: 0,
        invalidated: 0,
        connectFailures: 0,
        connectSum: 0,
        meanConnectMillis: undefined
      })
    }
  }

  return {
    servers: (servers ?? Array.from(named).sort()).map((server): ServerMetrics => {
      const acc = perServer.get(server) ?? emptyAcc()
      const tools = Array.from(perTool.get(server)?.values() ?? []).length === 0
        ? []
        : Array.from(perTool.get(server)!.entries()).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map((
          [tool, t]
        ): ToolMetrics => ({
          tool,
          calls: t.calls,
          success: t.success,
          toolErrors: t.toolErrors,
          failures: t.failures,
          successRate: ratio(t.success, t.calls),
          meanMillis: toMillis(ratio(t.durationSum, t.durationCount)),
          p50Millis: t.window ? toMillis(quantile(t.window, 0.5)) : undefined,
          p95Millis: t.window ? toMillis(quantile(t.window, 0.95)) : undefined,
          p99Millis: t.window ? toMillis(quantile(t.window, 0.99)) : undefined,
          inFlight: t.inFlight
        }))
      const c = cache.get(server) ?? { hits: 0, misses: 0, evictions: 0 }
      const t = throttle.get(server) ?? { waits: 0, rejections: 0, waitSum: 0, waitCount: 0 }
      const p = pools.get(server)
      return {
        server,
        calls: acc.calls,
        success: acc.success,
        toolErrors: acc.toolErrors,
        failures: acc.failures,
        successRate: ratio(acc.success, acc.calls),
        failuresByReason: acc.failuresByReason,
        meanMillis: toMillis(ratio(acc.durationSum, acc.durationCount)),
        p50Millis: serverWindows.has(server) ? toMillis(quantile(serverWindows.get(server)!, 0.5)) : undefined,
        p95Millis: serverWindows.has(server) ? toMillis(quantile(serverWindows.get(server)!, 0.95)) : undefined,
        p99Millis: serverWindows.has(server) ? toMillis(quantile(serverWindows.get(server)!, 0.99)) : undefined,
        inFlight: acc.inFlight,
        tools,
        cache: { hits: c.hits, misses: c.misses, hitRate: ratio(c.hits, c.hits + c.misses), evictions: c.evictions },
        pool: p === undefined ? undefined : {
          idle: p.idle,
          inUse: p.inUse,
          pending: p.pending,
          min: p.min,
          max: p.max,
          created: p.created,
          invalidated: p.invalidated,
          connectFailures: p.connectFailures,
          meanConnectMillis: ratio(p.connectSum, p.created)
        },
        throttle: { waits: t.waits, rejections: t.rejections, meanWaitMillis: toMillis(ratio(t.waitSum, t.waitCount)) },
        retries: retries.get(server) ?? 0,
        circuitBreaker: breakers.get(server)
      }
    }),
    cache: { entries: cacheEntries, bytes: cacheBytes },
    alerts
  }
}
