/**
 * The telemetry stage: Effect `Metric`s and spans for every call, named after OpenTelemetry's semantic conventions
 * for MCP clients, W3C trace context passed to the server in `_meta`, a per-server snapshot (`McpBridge.metrics()`),
 * and alert rules evaluated on a schedule over a sliding window.
 *
 * Built on Effect's `Metric` (counters, gauges, histograms, and a `Metric.summary` per tool for windowed
 * percentiles) and tracer (`Effect.useSpan`); alerts run on `Schedule.spaced` and are published on a `PubSub`.
 * Export is separate: `Telemetry.layerOtlp` (OTLP/HTTP from the standard `OTEL_*` variables) here, and
 * `NodeTelemetry.layerPrometheus` (`/metrics`) in `@mcp-bridge/node`.
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/client"
import {
  Cause,
  Clock,
  Config,
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Exit,
  type Fiber,
  Layer,
  Metric,
  Option,
  PubSub,
  Stream,
  Tracer
} from "effect"
import { FetchHttpClient, type HttpClient } from "effect/http"
import { type OtlpExporter, OtlpMetrics, OtlpSerialization, OtlpTracer } from "effect/observability"
import type * as BridgeConfig from "./BridgeConfig.ts"
import type * as ConnectionPool from "./ConnectionPool.ts"
import * as Metrics from "./internal/metrics.ts"
import type { McpSession } from "./McpSession.ts"
import type { CallError, CallRequest, Stage, ToolCaller } from "./ToolCaller.ts"

const Attr = Metrics.Attr
const defs = Metrics.definitions

// -----------------------------------------------------------------------------
// Model
// -----------------------------------------------------------------------------

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
    ConnectionPool.PoolStats,
    "idle" | "inUse" | "pending" | "min" | "max" | "created" | "invalidated" | "connectFailures" | "meanConnectMillis"
  >
{}

/**
 * The seed's `get_all_metrics()` view of one server.
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

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 */
export declare namespace Telemetry {
  /**
   * @since 0.1.0
   */
  export interface Service extends Stage {
    /**
     * Instruments the bottom of the pipeline: a span for waiting for a session, a client span for the call on the
     * wire, and W3C trace context (`traceparent`, `tracestate`) in the request `_meta`. Used by `McpBridge`.
     */
    readonly instrumentBottom:
      | ((
        pool: ConnectionPool.ConnectionPool["Service"],
        onSession: (session: McpSession) => void
      ) => ToolCaller)
      | undefined
    /**
     * Counts a call that failed before it reached the pipeline: while the router fetched the server's tool list
     * (connect failure, open circuit...) or because the server has no such tool (counted under tool `_unknown`).
     * Used by `McpBridge`, so that a server that is down shows in the error rate.
     */
    readonly recordRouteFailure: (
      server: BridgeConfig.ResolvedServer,
      tool: string,
      error: { readonly _tag: string; readonly reason?: { readonly _tag: string } }
    ) => Effect.Effect<void>
    /** Alert events as they happen (firing and resolving). Empty when alert rules are off. */
    readonly alerts: Stream.Stream<AlertEvent>
    /** Alerts firing now. */
    readonly activeAlerts: Effect.Effect<ReadonlyArray<AlertEvent>>
    /** Runs one evaluation of the alert rules now (they also run on their schedule). */
    readonly evaluateAlerts: Effect.Effect<ReadonlyArray<AlertEvent>>
    /** The sliding window of percentiles and alert rules. */
    readonly window: Duration.Duration
  }
}

/**
 * @since 0.1.0
 */
export class Telemetry extends Context.Service<Telemetry, Telemetry.Service>()("@mcp-bridge/core/Telemetry") {}

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
  /** Called for each event (after it is logged and counted). */
  readonly onEvent?: ((event: AlertEvent) => void | Effect.Effect<void>) | undefined
}

/**
 * @since 0.1.0
 */
export interface Options {
  /** Window of the latency percentiles and of the alert rules. @default 5 minutes */
  readonly window?: Duration.Input | undefined
  /** Most recent latencies kept per tool for percentiles. @default 1024 */
  readonly maxSamples?: number | undefined
  /**
   * A span per call (`tools/call <tool>`).
   *
   * - `"auto"`: spans (and trace context for the server) when a tracer is installed: an OTLP exporter, an
   *   OpenTelemetry SDK, or your own `Tracer`. With Effect's default in-process tracer, which exports nowhere, the
   *   stage skips the spans and their cost (about 20 µs a call) and keeps the metrics.
   * - `true`: always, even with the default tracer.
   * - `false`: metrics and alerts only (no spans, no trace context sent).
   *
   * @default "auto"
   */
  readonly spans?: boolean | "auto" | undefined
  /** Child spans for the session wait and the wire call, and trace context in `_meta`. @default true */
  readonly wireSpans?: boolean | undefined
  /** The alert rules (seed defaults: error rate 10 %, p95 1 s, cache hit rate 50 %), or `false`. @default {} */
  readonly alerts?: AlertOptions | false | undefined
}

/**
 * The alert thresholds used when none are given: the seed's (error rate above 10 %, latency above 1 s, on p95),
 * a cache hit rate below 50 %, callers waiting for a session at 2 evaluations in a row, an open circuit.
 *
 * @since 0.1.0
 */
export const alertDefaults = {
  evaluationInterval: Duration.seconds(15),
  errorRate: { threshold: 0.1, minCalls: 10 },
  latency: { p95: Duration.seconds(1), minCalls: 10 },
  cacheHitRate: { threshold: 0.5, minLookups: 20 },
  poolSaturated: { for: 2 },
  resolveAfter: 2
} as const

// -----------------------------------------------------------------------------
// Trace context
// -----------------------------------------------------------------------------

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/**
 * The W3C `traceparent` of a span: `00-<trace id>-<span id>-<flags>`.
 *
 * @since 0.1.0
 */
export const traceparent = (span: Tracer.AnySpan): string =>
  `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

/**
 * Parses a W3C `traceparent` into an external span, to continue a trace that started outside Effect.
 *
 * @since 0.1.0
 */
export const parseTraceparent = (value: unknown): Tracer.ExternalSpan | undefined => {
  if (typeof value !== "string") return undefined
  const match = traceparentPattern.exec(value)
  if (match === null || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return undefined
  return Tracer.externalSpan({ traceId: match[1]!, spanId: match[2]!, sampled: (parseInt(match[3]!, 16) & 1) === 1 })
}

// -----------------------------------------------------------------------------
// Per-call series
// -----------------------------------------------------------------------------

interface Series {
  readonly server: string
  readonly tool: string
  readonly spanName: string
  readonly spanAttributes: Record<string, unknown>
  readonly spanOptions: Tracer.SpanOptionsNoTrace
  readonly success: Metric.Counter<number>
  readonly toolError: Metric.Counter<number>
  readonly failures: Map<string, Metric.Counter<number>>
  readonly durationOk: Metric.Histogram<number>
  readonly durationToolError: Metric.Histogram<number>
  readonly durationFailures: Map<string, Metric.Histogram<number>>
  readonly window: Metric.Summary<[value: number, timestamp: number]>
  readonly serverWindow: Metric.Summary<[value: number, timestamp: number]>
  readonly active: Metric.Gauge<number>
}

const summaryName = "mcp_bridge.calls.duration.window"

const makeSeries = (
  server: BridgeConfig.ResolvedServer,
  tool: string,
  window: Duration.Duration,
  maxSamples: number
): Series => {
  const transport = Metrics.networkTransport(
    "command" in server.transport
      ? "stdio"
      : server.transport.type === "sse"
      ? "sse"
      : server.transport.type === "memory"
      ? "memory"
      : "http"
  )
  const base = { [Attr.server]: server.name, [Attr.tool]: tool }
  const op = {
    [Attr.method]: "tools/call",
    [Attr.operation]: "execute_tool",
    [Attr.tool]: tool,
    [Attr.server]: server.name,
    [Attr.transport]: transport
  }
  return {
    server: server.name,
    tool,
    spanName: `tools/call ${tool}`,
    spanAttributes: op,
    spanOptions: { kind: "client", attributes: op },
    success: Metrics.counterOf(defs.calls, { ...base, [Attr.outcome]: "success" }),
    toolError: Metrics.counterOf(defs.calls, { ...base, [Attr.outcome]: "tool_error", [Attr.errorType]: "tool_error" }),
    failures: new Map(),
    durationOk: Metrics.histogramOf(defs.operationDuration, op),
    durationToolError: Metrics.histogramOf(defs.operationDuration, { ...op, [Attr.errorType]: "tool_error" }),
    durationFailures: new Map(),
    window: Metric.summaryWithTimestamp(summaryName, {
      description: "Latency of recent tool calls (seconds) over the sliding window, for percentiles and alert rules.",
      attributes: { ...base, unit: "seconds" },
      maxAge: window,
      maxSize: maxSamples,
      quantiles: [0.5, 0.95, 0.99]
    }),
    serverWindow: Metric.summaryWithTimestamp(summaryName, {
      description: "Latency of recent tool calls (seconds) over the sliding window, for percentiles and alert rules.",
      attributes: { [Attr.server]: server.name, unit: "seconds" },
      maxAge: window,
      maxSize: maxSamples,
      quantiles: [0.5, 0.95, 0.99]
    }),
    active: Metrics.gaugeOf(defs.activeCalls, base)
  }
}

const failureCounter = (series: Series, errorType: string) => {
  let counter = series.failures.get(errorType)
  if (counter === undefined) {
    counter = Metrics.counterOf(defs.calls, {
      [Attr.server]: series.server,
      [Attr.tool]: series.tool,
      [Attr.outcome]: "failure",
      [Attr.errorType]: errorType
    })
    series.failures.set(errorType, counter)
  }
  return counter
}

const failureHistogram = (series: Series, errorType: string) => {
  let histogram = series.durationFailures.get(errorType)
  if (histogram === undefined) {
    histogram = Metrics.histogramOf(
      defs.operationDuration,
      { ...series.spanAttributes, [Attr.errorType]: errorType } as Record<string, string>
    )
    series.durationFailures.set(errorType, histogram)
  }
  return histogram
}

/**
 * The `error.type` of a failure: the reason tag of a typed bridge error (`Timeout`, `PoolTimeout`, `RateLimited`,
 * `CircuitOpen`...), else its `_tag`; `Interrupted` and `Defect` for the rest. Never a message (no secrets).
 *
 * @since 0.1.0
 */
export const errorType = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) {
    const e = error.value as { readonly _tag?: unknown; readonly reason?: { readonly _tag?: unknown } }
    if (typeof e?.reason?._tag === "string") return e.reason._tag
    if (typeof e?._tag === "string") return e._tag
    return "_OTHER"
  }
  return Cause.hasInterruptsOnly(cause) ? "Interrupted" : "Defect"
}

// -----------------------------------------------------------------------------
// Snapshot
// -----------------------------------------------------------------------------

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
 * Builds the per-server snapshot from a `Metric.snapshot` and the pools' stats.
 *
 * @since 0.1.0
 */
export const fromSnapshot = (
  servers: ReadonlyArray<string>,
  snapshot: ReadonlyArray<Metric.Metric.Snapshot>,
  poolStats: ReadonlyArray<ConnectionPool.PoolStats>,
  alerts: ReadonlyArray<AlertEvent> = []
): BridgeMetrics => {
  const perServer = new Map<string, Acc>()
  const perTool = new Map<string, Map<string, Acc & { window: Metric.SummaryState | undefined }>>()
  const cache = new Map<string, { hits: number; misses: number; evictions: number }>()
  const throttle = new Map<string, { waits: number; rejections: number; waitSum: number; waitCount: number }>()
  const retries = new Map<string, number>()
  const breakers = new Map<string, Metrics.BreakerState>()
  const serverWindows = new Map<string, Metric.SummaryState>()
  let cacheEntries: number | undefined
  let cacheBytes: number | undefined

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
    switch (s.id) {
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
      case summaryName: {
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

  return {
    servers: servers.map((server): ServerMetrics => {
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

/**
 * The snapshot of the metrics in the current `Metric.MetricRegistry`, with the pools' stats. `McpBridge.metrics()`
 * calls it; alerts firing now are included when the `Telemetry` stage runs alert rules.
 *
 * @since 0.1.0
 */
export const snapshot = (
  servers: ReadonlyArray<string>,
  poolStats: Effect.Effect<ReadonlyArray<ConnectionPool.PoolStats>>
): Effect.Effect<BridgeMetrics> =>
  Effect.gen(function*() {
    const telemetry = yield* Effect.serviceOption(Telemetry)
    const alerts = Option.isSome(telemetry) ? yield* telemetry.value.activeAlerts : []
    return fromSnapshot(servers, yield* Metric.snapshot, yield* poolStats, alerts)
  })

// -----------------------------------------------------------------------------
// Alerts
// -----------------------------------------------------------------------------

interface RuleInput {
  /** cumulative counters by key */
  readonly counters: Map<string, number>
  readonly latencyP95: Map<string, number | undefined>
  readonly pending: Map<string, number>
  readonly breakers: Map<string, number>
  readonly servers: Set<string>
  readonly tools: Set<string>
}

const key = (...parts: ReadonlyArray<string>) => parts.join("\u0000")

const readInput = (snapshot: ReadonlyArray<Metric.Metric.Snapshot>): RuleInput => {
  const counters = new Map<string, number>()
  const latencyP95 = new Map<string, number | undefined>()
  const pending = new Map<string, number>()
  const breakers = new Map<string, number>()
  const servers = new Set<string>()
  const tools = new Set<string>()
  const add = (k: string, n: number) => counters.set(k, (counters.get(k) ?? 0) + n)
  for (const s of snapshot) {
    const server = attr(s, Attr.server)
    if (server === undefined) continue
    switch (s.id) {
      case defs.calls.name: {
        const tool = attr(s, Attr.tool)!
        const n = Number((s.state as Metric.CounterState<number>).count)
        servers.add(server)
        tools.add(key(server, tool))
        add(key("calls", server), n)
        add(key("calls", server, tool), n)
        if (attr(s, Attr.outcome) !== "success") add(key("errors", server), n)
        break
      }
      case summaryName: {
        const tool = attr(s, Attr.tool)
        if (tool === undefined) break
        latencyP95.set(key(server, tool), quantile(s.state as Metric.SummaryState, 0.95))
        break
      }
      case defs.cacheRequests.name: {
        const n = Number((s.state as Metric.CounterState<number>).count)
        servers.add(server)
        add(key("lookups", server), n)
        if (attr(s, Attr.cacheResult) === "hit") add(key("hits", server), n)
        break
      }
      case defs.poolPending.name:
        servers.add(server)
        pending.set(server, Number((s.state as Metric.GaugeState<number>).value))
        break
      case defs.breakerState.name:
        servers.add(server)
        breakers.set(server, Number((s.state as Metric.GaugeState<number>).value))
        break
    }
  }
  return { counters, latencyP95, pending, breakers, servers, tools }
}

interface RuleCheck {
  readonly rule: AlertRule
  readonly server: string
  readonly tool: string | undefined
  /** `undefined`: not enough data (never fires; counts towards resolving). */
  readonly value: number | undefined
  readonly threshold: number
  readonly breached: boolean
  readonly for: number
}

interface ResolvedAlertOptions {
  readonly evaluationInterval: Duration.Duration
  readonly errorRate: { readonly threshold: number; readonly minCalls: number } | false
  readonly latency: { readonly p95: Duration.Duration; readonly minCalls: number } | false
  readonly cacheHitRate: { readonly threshold: number; readonly minLookups: number } | false
  readonly poolSaturated: { readonly for: number } | false
  readonly circuitOpen: boolean
  readonly resolveAfter: number
}

const resolveAlertOptions = (o: AlertOptions): ResolvedAlertOptions => ({
  evaluationInterval: Duration.fromInputUnsafe(o.evaluationInterval ?? alertDefaults.evaluationInterval),
  errorRate: o.errorRate === false ? false : {
    threshold: o.errorRate?.threshold ?? alertDefaults.errorRate.threshold,
    minCalls: o.errorRate?.minCalls ?? alertDefaults.errorRate.minCalls
  },
  latency: o.latency === false ? false : {
    p95: Duration.fromInputUnsafe(o.latency?.p95 ?? alertDefaults.latency.p95),
    minCalls: o.latency?.minCalls ?? alertDefaults.latency.minCalls
  },
  cacheHitRate: o.cacheHitRate === false ? false : {
    threshold: o.cacheHitRate?.threshold ?? alertDefaults.cacheHitRate.threshold,
    minLookups: o.cacheHitRate?.minLookups ?? alertDefaults.cacheHitRate.minLookups
  },
  poolSaturated: o.poolSaturated === false ? false : { for: o.poolSaturated?.for ?? alertDefaults.poolSaturated.for },
  circuitOpen: o.circuitOpen ?? true,
  resolveAfter: Math.max(1, o.resolveAfter ?? alertDefaults.resolveAfter)
})

/** The counters of `now` minus those of `base` (the start of the window). */
const delta = (now: RuleInput, base: Map<string, number> | undefined, k: string) =>
  (now.counters.get(k) ?? 0) - (base?.get(k) ?? 0)

const checkRules = (
  rules: ResolvedAlertOptions,
  now: RuleInput,
  base: Map<string, number> | undefined
): Array<RuleCheck> => {
  const checks: Array<RuleCheck> = []
  for (const server of now.servers) {
    if (rules.errorRate !== false) {
      const calls = delta(now, base, key("calls", server))
      const value = calls >= rules.errorRate.minCalls ? delta(now, base, key("errors", server)) / calls : undefined
      checks.push({
        rule: "error_rate",
        server,
        tool: undefined,
        value,
        threshold: rules.errorRate.threshold,
        breached: value !== undefined && value > rules.errorRate.threshold,
        for: 1
      })
    }
    if (rules.cacheHitRate !== false) {
      const lookups = delta(now, base, key("lookups", server))
      const value = lookups >= rules.cacheHitRate.minLookups
        ? delta(now, base, key("hits", server)) / lookups
        : undefined
      checks.push({
        rule: "cache_hit_rate",
        server,
        tool: undefined,
        value,
        threshold: rules.cacheHitRate.threshold,
        breached: value !== undefined && value < rules.cacheHitRate.threshold,
        for: 1
      })
    }
    if (rules.poolSaturated !== false && now.pending.has(server)) {
      const value = now.pending.get(server)!
      checks.push({
        rule: "pool_saturated",
        server,
        tool: undefined,
        value,
        threshold: 0,
        breached: value > 0,
        for: rules.poolSaturated.for
      })
    }
    if (rules.circuitOpen && now.breakers.has(server)) {
      const value = now.breakers.get(server)! >= 2 ? 1 : 0
      checks.push({ rule: "circuit_open", server, tool: undefined, value, threshold: 1, breached: value === 1, for: 1 })
    }
  }
  if (rules.latency !== false) {
    const threshold = Duration.toSeconds(rules.latency.p95)
    for (const st of now.tools) {
      const [server, tool] = st.split("\u0000") as [string, string]
      const calls = delta(now, base, key("calls", server, tool))
      const p95 = now.latencyP95.get(st)
      const value = calls >= rules.latency.minCalls ? p95 : undefined
      checks.push({
        rule: "latency",
        server,
        tool,
        value,
        threshold,
        breached: value !== undefined && value > threshold,
        for: 1
      })
    }
  }
  return checks
}

const percent = (x: number) => `${(x * 100).toFixed(1)} %`

const describe = (check: RuleCheck, state: "firing" | "resolved", value: number): string => {
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
 * Which alert rules would fire on the metrics as they are now, counting from start (no window, no hysteresis).
 * The demo prints these; the `Telemetry` stage evaluates the same rules over its sliding window.
 *
 * @since 0.1.0
 */
export const wouldFire = (options: AlertOptions = {}): Effect.Effect<ReadonlyArray<AlertEvent>> =>
  Effect.gen(function*() {
    const rules = resolveAlertOptions(options)
    const now = readInput(yield* Metric.snapshot)
    const at = yield* Clock.currentTimeMillis
    return checkRules(rules, now, undefined).filter((c) => c.breached).map((c) => firingEvent(c, at))
  })

const firingEvent = (c: RuleCheck, at: number): AlertEvent => ({
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
 * Which alert rules fire on a snapshot (`McpBridge.metrics()`), with its counts since start and its windowed
 * percentiles: a plain function, for reports and the demo. The `Telemetry` stage evaluates the same rules on a
 * schedule over its sliding window, with hysteresis.
 *
 * @since 0.1.0
 */
export const rulesFiring = (metrics: BridgeMetrics, options: AlertOptions = {}): ReadonlyArray<AlertEvent> => {
  const rules = resolveAlertOptions(options)
  const checks: Array<RuleCheck> = []
  const push = (c: Omit<RuleCheck, "breached" | "for">, breached: boolean) => {
    if (breached) checks.push({ ...c, breached, for: 1 })
  }
  for (const s of metrics.servers) {
    if (rules.errorRate !== false && s.calls >= rules.errorRate.minCalls) {
      const value = (s.calls - s.success) / s.calls
      const threshold = rules.errorRate.threshold
      push({ rule: "error_rate", server: s.server, tool: undefined, value, threshold }, value > threshold)
    }
    if (rules.latency !== false) {
      const threshold = Duration.toSeconds(rules.latency.p95)
      for (const t of s.tools) {
        if (t.calls < rules.latency.minCalls || t.p95Millis === undefined) continue
        const value = t.p95Millis / 1000
        push({ rule: "latency", server: s.server, tool: t.tool, value, threshold }, value > threshold)
      }
    }
    const lookups = s.cache.hits + s.cache.misses
    if (rules.cacheHitRate !== false && lookups >= rules.cacheHitRate.minLookups) {
      const value = s.cache.hits / lookups
      const threshold = rules.cacheHitRate.threshold
      push({ rule: "cache_hit_rate", server: s.server, tool: undefined, value, threshold }, value < threshold)
    }
    if (rules.poolSaturated !== false && s.pool !== undefined) {
      const value = s.pool.pending
      push({ rule: "pool_saturated", server: s.server, tool: undefined, value, threshold: 0 }, value > 0)
    }
    if (rules.circuitOpen) {
      const open = s.circuitBreaker === "open"
      push({ rule: "circuit_open", server: s.server, tool: undefined, value: 1, threshold: 1 }, open)
    }
  }
  return checks.map((c) => firingEvent(c, 0))
}

const alertsCounter = Metrics.family((rule, server, state) =>
  Metrics.counterOf(defs.alerts, {
    "mcp_bridge.alert.rule": rule!,
    [Attr.server]: server!,
    "mcp_bridge.alert.state": state!
  })
)

interface RuleState {
  firing: AlertEvent | undefined
  breachStreak: number
  clearStreak: number
}

const makeAlerts = Effect.fnUntraced(function*(options: AlertOptions, window: Duration.Duration) {
  const rules = resolveAlertOptions(options)
  const pubsub = yield* PubSub.unbounded<AlertEvent>()
  yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
  const states = new Map<string, RuleState>()
  // Cumulative counters at each evaluation: the window's start is the newest sample at least `window` old.
  const history: Array<{ readonly at: number; readonly counters: Map<string, number> }> = []
  const windowMillis = Duration.toMillis(window)

  const emit = (event: AlertEvent) =>
    Effect.gen(function*() {
      yield* (event.state === "firing" ? Effect.logWarning(event.message) : Effect.logInfo(event.message)).pipe(
        Effect.annotateLogs({ "mcp_bridge.alert.rule": event.rule, [Attr.server]: event.server })
      )
      yield* Metric.update(alertsCounter(event.rule, event.server, event.state), 1)
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
    const now = readInput(yield* Metric.snapshot)
    let base: Map<string, number> | undefined
    for (const sample of history) {
      if (at - sample.at >= windowMillis) base = sample.counters
    }
    if (base === undefined) base = history[0]?.counters
    history.push({ at, counters: now.counters })
    while (history.length > 1 && at - history[1]!.at >= windowMillis) history.shift()

    const events: Array<AlertEvent> = []
    for (const check of checkRules(rules, now, base)) {
      const k = key(check.rule, check.server, check.tool ?? "")
      let state = states.get(k)
      if (state === undefined) states.set(k, state = { firing: undefined, breachStreak: 0, clearStreak: 0 })
      if (state.firing === undefined) {
        state.breachStreak = check.breached ? state.breachStreak + 1 : 0
        if (state.breachStreak >= check.for) {
          const event: AlertEvent = {
            rule: check.rule,
            state: "firing",
            server: check.server,
            tool: check.tool,
            value: check.value!,
            threshold: check.threshold,
            at,
            message: describe(check, "firing", check.value!)
          }
          state.firing = event
          state.breachStreak = 0
          state.clearStreak = 0
          events.push(event)
        }
      } else {
        state.clearStreak = check.breached ? 0 : state.clearStreak + 1
        if (state.clearStreak >= rules.resolveAfter) {
          const value = check.value ?? 0
          events.push({
            rule: check.rule,
            state: "resolved",
            server: check.server,
            tool: check.tool,
            value,
            threshold: check.threshold,
            at,
            message: describe(check, "resolved", value)
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
  history.push({ at: yield* Clock.currentTimeMillis, counters: readInput(yield* Metric.snapshot).counters })
  yield* evaluate.pipe(
    Effect.delay(rules.evaluationInterval),
    Effect.forever,
    Effect.forkScoped
  )

  const active = Effect.sync(() => {
    const out: Array<AlertEvent> = []
    for (const state of states.values()) if (state.firing !== undefined) out.push(state.firing)
    return out as ReadonlyArray<AlertEvent>
  })
  return { stream: Stream.fromPubSub(pubsub), active, evaluate }
})

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

const recordExit = (
  series: Series,
  span: Tracer.Span | undefined,
  start: bigint,
  exit: Exit.Exit<CallToolResult, CallError>
) =>
  Effect.withFiber((fiber) => {
    const context = fiber.context
    const clock = fiber.getRef(Clock.Clock)
    const nowNanos = clock.currentTimeNanosUnsafe()
    const seconds = Number(nowNanos - start) / 1e9
    series.active.modifyUnsafe(-1, context)
    const sample: [number, number] = [seconds, clock.currentTimeMillisUnsafe()]
    series.window.updateUnsafe(sample, context)
    series.serverWindow.updateUnsafe(sample, context)
    if (Exit.isSuccess(exit)) {
      if (exit.value.isError === true) {
        series.toolError.updateUnsafe(1, context)
        series.durationToolError.updateUnsafe(seconds, context)
        span?.attribute(Attr.errorType, "tool_error")
        span?.attribute(Attr.result, "tool_error")
      } else {
        series.success.updateUnsafe(1, context)
        series.durationOk.updateUnsafe(seconds, context)
        span?.attribute(Attr.result, "success")
      }
    } else {
      const type = errorType(exit.cause)
      failureCounter(series, type).updateUnsafe(1, context)
      failureHistogram(series, type).updateUnsafe(seconds, context)
      span?.attribute(Attr.errorType, type)
      span?.attribute(Attr.result, "failure")
    }
    if (span !== undefined) {
      if (!span.attributes.has(Attr.cacheResult)) span.attribute(Attr.cacheResult, "none")
      if (!span.attributes.has(Attr.retries)) span.attribute(Attr.retries, 0)
    }
    return Effect.void
  })

/**
 * Builds the telemetry stage.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const window = Duration.fromInputUnsafe(options.window ?? "5 minutes")
  const maxSamples = options.maxSamples ?? 1024
  const series = new Map<string, Series>()
  const seriesOf = (server: BridgeConfig.ResolvedServer, tool: string) => {
    const k = `${server.name}\u0000${tool}`
    let s = series.get(k)
    if (s === undefined) series.set(k, s = makeSeries(server, tool, window, maxSamples))
    return s
  }

  const metricsOnly = (next: ToolCaller): ToolCaller => (request: CallRequest) =>
    Effect.withFiber((fiber) => {
      const s = seriesOf(request.server, request.tool)
      const start = fiber.getRef(Clock.Clock).currentTimeNanosUnsafe()
      s.active.modifyUnsafe(1, fiber.context)
      return Effect.onExit(next(request), (exit) => recordExit(s, undefined, start, exit))
    })

  // In "auto" mode a call is traced only when a tracer other than Effect's default (which exports nowhere) is installed.
  const spansMode = options.spans ?? "auto"
  const tracing = spansMode === "auto"
    ? (fiber: Fiber.Fiber<unknown, unknown>) => fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer
    : () => true

  const traced = (next: ToolCaller): ToolCaller => (request: CallRequest) => {
    const s = seriesOf(request.server, request.tool)
    const external = request.meta === undefined ? undefined : parseTraceparent(request.meta.traceparent)
    return Effect.useSpan(
      s.spanName,
      external === undefined ? s.spanOptions : { ...s.spanOptions, parent: external },
      (span) =>
        Effect.withFiber((fiber) => {
          const start = fiber.getRef(Clock.Clock).currentTimeNanosUnsafe()
          s.active.modifyUnsafe(1, fiber.context)
          return next(request).pipe(
            Effect.withParentSpan(span, { captureStackTrace: false }),
            Effect.onExit((exit) => recordExit(s, span, start, exit))
          )
        })
    )
  }

  const wrap = spansMode === false ? metricsOnly : spansMode === true ? traced : (next: ToolCaller): ToolCaller => {
    const withSpans = traced(next)
    const withoutSpans = metricsOnly(next)
    return (request) => Effect.withFiber((fiber) => tracing(fiber) ? withSpans(request) : withoutSpans(request))
  }

  // Span options of the wire call, per session and tool (built once, not per call).
  const wireOptions = new WeakMap<McpSession, Map<string, Tracer.SpanOptionsNoTrace>>()
  const wireSpanOptions = (server: string, tool: string, session: McpSession): Tracer.SpanOptionsNoTrace => {
    let byTool = wireOptions.get(session)
    if (byTool === undefined) wireOptions.set(session, byTool = new Map())
    let o = byTool.get(tool)
    if (o === undefined) {
      o = {
        kind: "client",
        attributes: {
          [Attr.method]: "tools/call",
          [Attr.tool]: tool,
          [Attr.server]: server,
          [Attr.protocolVersion]: session.protocolVersion,
          [Attr.transport]: Metrics.networkTransport(session.transport)
        }
      }
      byTool.set(tool, o)
    }
    return o
  }
  const waitOptions = new Map<string, Tracer.SpanOptionsNoTrace>()
  const waitSpanOptions = (server: string): Tracer.SpanOptionsNoTrace => {
    let o = waitOptions.get(server)
    if (o === undefined) waitOptions.set(server, o = { kind: "internal", attributes: { [Attr.server]: server } })
    return o
  }

  const attempts = new WeakMap<Tracer.Span, number>()
  const instrumentBottom = options.wireSpans === false || options.spans === false ? undefined : (
    pool: ConnectionPool.ConnectionPool["Service"],
    onSession: (session: McpSession) => void
  ): ToolCaller =>
  (request) =>
    Effect.withFiber((fiber) => {
      if (!tracing(fiber)) {
        return pool.withSession(request.server, (session) => {
          onSession(session)
          return session.callTool(
            { name: request.tool, arguments: request.arguments, _meta: request.meta },
            request.timeout
          )
        })
      }
      const attempt = Effect.useSpan(
        "mcp_bridge.session.wait",
        waitSpanOptions(request.server.name),
        (wait) =>
          pool.withSession(request.server, (session) =>
            Effect.withFiber((fiber) => {
              wait.end(fiber.getRef(Clock.Clock).currentTimeNanosUnsafe(), Exit.void)
              onSession(session)
              return Effect.useSpan(
                "mcp_bridge.wire",
                wireSpanOptions(request.server.name, request.tool, session),
                (wire) => {
                  const meta: Record<string, unknown> = { ...request.meta, traceparent: traceparent(wire) }
                  return session.callTool(
                    { name: request.tool, arguments: request.arguments, _meta: meta },
                    request.timeout
                  )
                }
              )
            }))
      )
      // Each time a call reaches the bottom again under the same call span, it is a retry: reported on the call span.
      // (The retries metric is recorded by the stage that retries, so that it is counted with spans off too.)
      const call = fiber.cache.span
      if (call?._tag !== "Span" || !call.attributes.has(Attr.server)) return attempt
      const count = attempts.get(call)
      if (count === undefined) attempts.set(call, 1)
      else {
        call.attribute(Attr.retries, count)
        attempts.set(call, count + 1)
      }
      return attempt
    })

  const alerts = options.alerts === false
    ? undefined
    : yield* makeAlerts(options.alerts ?? {}, window)

  const recordRouteFailure: Telemetry.Service["recordRouteFailure"] = (server, tool, error) =>
    Effect.withFiber((fiber) => {
      const type = error.reason?._tag ?? error._tag
      const s = seriesOf(server, type === "UnknownTool" ? "_unknown" : tool)
      failureCounter(s, type).updateUnsafe(1, fiber.context)
      return Effect.void
    })

  return Telemetry.of({
    wrap,
    instrumentBottom,
    recordRouteFailure,
    alerts: alerts?.stream ?? Stream.empty,
    activeAlerts: alerts?.active ?? Effect.succeed([]),
    evaluateAlerts: alerts?.evaluate ?? Effect.succeed([]),
    window
  })
})

/**
 * Metrics, spans and trace context for every call, and the alert rules.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Telemetry> => Layer.effect(Telemetry, make(options))

/**
 * The environment variables that override alert thresholds (read by `layerConfig` and `McpBridge.layerProduction`).
 *
 * @since 0.1.0
 */
export const alertEnvironment = {
  errorRate: "MCP_BRIDGE_ALERT_ERROR_RATE",
  latencyP95: "MCP_BRIDGE_ALERT_LATENCY_P95",
  cacheHitRate: "MCP_BRIDGE_ALERT_CACHE_HIT_RATE",
  minCalls: "MCP_BRIDGE_ALERT_MIN_CALLS",
  evaluationInterval: "MCP_BRIDGE_ALERT_INTERVAL",
  window: "MCP_BRIDGE_TELEMETRY_WINDOW"
} as const

/**
 * `options` with the alert thresholds and window of the `MCP_BRIDGE_ALERT_*` environment variables
 * (`alertEnvironment`) over them, e.g. `MCP_BRIDGE_ALERT_ERROR_RATE=0.05`, `MCP_BRIDGE_ALERT_LATENCY_P95="2 seconds"`.
 *
 * @since 0.1.0
 */
export const optionsFromConfig = (options: Options = {}) =>
  Effect.gen(function*() {
    const env = alertEnvironment
    const v = yield* Config.all({
      errorRate: Config.option(Config.Number(env.errorRate)),
      latencyP95: Config.option(Config.Duration(env.latencyP95)),
      cacheHitRate: Config.option(Config.Number(env.cacheHitRate)),
      minCalls: Config.option(Config.Int(env.minCalls)),
      evaluationInterval: Config.option(Config.Duration(env.evaluationInterval)),
      window: Config.option(Config.Duration(env.window))
    })
    const alerts = options.alerts
    const get = <A>(o: Option.Option<A>): A | undefined => Option.getOrUndefined(o)
    const minCalls = get(v.minCalls)
    const withMin = <T extends object>(rule: T | false | undefined, extra: Partial<T>): T | false | undefined =>
      rule === false ? false : ({ ...rule, ...extra } as T)
    const pick = <K extends string, A>(key: K, value: A | undefined): { [k in K]?: A } =>
      (value === undefined ? {} : { [key]: value }) as { [k in K]?: A }
    return {
      ...options,
      ...pick("window", get(v.window)),
      alerts: alerts === false ? false : {
        ...alerts,
        ...pick("evaluationInterval", get(v.evaluationInterval)),
        errorRate: withMin(alerts?.errorRate, {
          ...pick("threshold", get(v.errorRate)),
          ...pick("minCalls", minCalls)
        }),
        latency: withMin(alerts?.latency, { ...pick("p95", get(v.latencyP95)), ...pick("minCalls", minCalls) }),
        cacheHitRate: withMin(alerts?.cacheHitRate, { ...pick("threshold", get(v.cacheHitRate)) })
      }
    } satisfies Options as Options
  })

/**
 * `layer` with alert thresholds from the environment over `options` (see `optionsFromConfig`).
 *
 * @since 0.1.0
 */
export const layerConfig = (options: Options = {}): Layer.Layer<Telemetry, Config.ConfigError> =>
  Layer.unwrap(Effect.map(optionsFromConfig(options), layer))

/**
 * A pass-through stage: no metrics, no spans, no alerts.
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<Telemetry> = Layer.succeed(
  Telemetry,
  Telemetry.of({
    wrap: (next) => next,
    instrumentBottom: undefined,
    recordRouteFailure: () => Effect.void,
    alerts: Stream.empty,
    activeAlerts: Effect.succeed([]),
    evaluateAlerts: Effect.succeed([]),
    window: Duration.minutes(5)
  })
)

// -----------------------------------------------------------------------------
// Export
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 */
export interface OtlpOptions {
  /** `service.name` etc. (else from `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`). */
  readonly resource?: {
    readonly serviceName?: string | undefined
    readonly serviceVersion?: string | undefined
    readonly attributes?: Record<string, unknown>
  } | undefined
  /** The HTTP client of the exporters. @default FetchHttpClient.layer */
  readonly httpClient?: Layer.Layer<HttpClient.HttpClient> | undefined
}

/**
 * Exports traces and metrics over OTLP/HTTP with the exporters of `effect/observability`, configured from the
 * standard OpenTelemetry environment variables:
 *
 * - `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`): nothing is
 *   exported without one;
 * - `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (default) or `http/json`;
 * - `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER`: `otlp` (default here, as in the OpenTelemetry SDKs) or `none`;
 * - `OTEL_SDK_DISABLED`, `OTEL_EXPORTER_OTLP_HEADERS`, `..._COMPRESSION`, `..._TIMEOUT`, `OTEL_METRIC_EXPORT_INTERVAL`,
 *   `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`, `OTEL_SERVICE_NAME`,
 *   `OTEL_RESOURCE_ATTRIBUTES`.
 *
 * Provide it to the program that uses the bridge (the tracer applies to the fibers it is provided to); pending data is
 * flushed when the layer closes.
 *
 * @example
 * ```ts
 * // OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
 * const Otlp = Telemetry.layerOtlp({ resource: { serviceName: "agent" } })
 * const Live = McpBridge.layer(config).pipe(Layer.provideMerge(Otlp))
 * ```
 *
 * @since 0.1.0
 */
export const layerOtlp = (options: OtlpOptions = {}): Layer.Layer<OtlpExporter.Flusher> =>
  Layer.unwrap(
    Effect.gen(function*() {
      const protocol = yield* Config.String("OTEL_EXPORTER_OTLP_PROTOCOL").pipe(Config.withDefault("http/protobuf"))
      const serialization = protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf
      const exporters = Layer.mergeAll(
        OtlpTracer.layerFromConfig({ resource: options.resource }),
        OtlpMetrics.layerFromConfig({ resource: options.resource })
      )
      return exporters.pipe(
        Layer.provide(serialization),
        Layer.provide(options.httpClient ?? FetchHttpClient.layer),
        // OpenTelemetry's default exporter is `otlp`; Effect's layers only export when it is named.
        Layer.provide(
          ConfigProvider.layerAdd(
            ConfigProvider.fromUnknown({ OTEL_TRACES_EXPORTER: "otlp", OTEL_METRICS_EXPORTER: "otlp" })
          )
        )
      )
    }).pipe(Effect.orDie)
  )

const prometheusNames = new Map<string, string>()

/**
 * The Prometheus name of a bridge metric, following OpenTelemetry's Prometheus compatibility rules: dots become
 * underscores, the unit is a suffix (`_seconds`, `_bytes`), counters end in `_total`
 * (`mcp.client.operation.duration` → `mcp_client_operation_duration_seconds`, `mcp_bridge.calls` →
 * `mcp_bridge_calls_total`). Other names are left as they are.
 *
 * @since 0.1.0
 */
export const prometheusName = (name: string): string => {
  let mapped = prometheusNames.get(name)
  if (mapped === undefined) {
    const def = Object.values(defs).find((d) => d.name === name)
    const unit = name === summaryName || def?.unit === "seconds" ? "_seconds" : def?.unit === "bytes" ? "_bytes" : ""
    const total = def?.kind === "counter" ? "_total" : ""
    mapped = def === undefined && name !== summaryName ? name : `${name.replace(/\./g, "_")}${unit}${total}`
    prometheusNames.set(name, mapped)
  }
  return mapped
}

/**
 * The metric definitions of the bridge (name, kind, unit, description, attributes), for dashboards and docs.
 *
 * @since 0.1.0
 */
export const metricDefinitions: ReadonlyArray<Metrics.Definition> = Object.values(defs)

/**
 * The attribute keys of the bridge's metrics and spans.
 *
 * @since 0.1.0
 */
export const Attributes = Attr
