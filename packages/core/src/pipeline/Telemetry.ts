/**
 * The telemetry stage, at the top of the pipeline: metrics for every call (through the bridge's `MetricsRecorder`),
 * a client span per call named after OpenTelemetry's semantic conventions for MCP, and the alert rules running on a
 * schedule over a sliding window.
 *
 * Built on Effect's `Metric` (through `MetricsRecorder`) and tracer (`Effect.useSpan`); the alert engine is in
 * `AlertRules`, the snapshot model in `MetricsSnapshot`, export (OTLP, Prometheus names) in `TelemetryExport`. The
 * stage owns the call's span; the stages below annotate it, and the bottom of the pipeline traces the session wait
 * and the wire call and sends W3C trace context to the server (see `CallRequest.traced`).
 *
 * `Telemetry.layer` provides the stage and the bridge's `MetricsRecorder`; `layerDisabled` provides a pass-through
 * stage and no recorder, so that with telemetry off nothing is recorded anywhere.
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/client"
import {
  Cause,
  Clock,
  Config,
  Context,
  Duration,
  Effect,
  Exit,
  type Fiber,
  Layer,
  type Metric,
  Option,
  type Scope,
  Stream,
  Tracer
} from "effect"
import type { ResolvedServer } from "../config/BridgeConfig.ts"
import { transportKind } from "../config/BridgeConfig.ts"
import * as Metrics from "../internal/metrics.ts"
import * as AlertRules from "../telemetry/AlertRules.ts"
import * as MetricsRecorder from "../telemetry/MetricsRecorder.ts"
import { type AlertEvent, fromSnapshot } from "../telemetry/MetricsSnapshot.ts"
import type { CallRequest, ToolCaller } from "./ToolCaller.ts"

const Attr = Metrics.Attr

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * The telemetry stage. `McpBridge.layer` picks it up (on by default); read its alerts here and the metrics with
 * `McpBridge.metrics()`.
 *
 * @since 0.1.0
 */
export class Telemetry extends Context.Service<Telemetry, Telemetry.Service>()("@mcp-bridge/core/Telemetry") {}

/**
 * The type of the telemetry service, `Telemetry.Service`.
 *
 * @since 0.1.0
 */
export declare namespace Telemetry {
  /**
   * What the stage offers: `wrap` (metrics, and a span when spans are on, around each call) and the alerts: as a
   * stream, those firing now, and an evaluation on demand. Subscribe to `alerts` to notify someone, or run
   * `evaluateAlerts` in a test instead of waiting for the schedule.
   *
   * @since 0.1.0
   */
  export interface Service {
    readonly wrap: <E>(next: ToolCaller<E>) => ToolCaller<E>
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
 * Options of `Telemetry.layer` and `layerConfig` (the `telemetry` option of `McpBridge.layer`): the latency window and
 * samples, the metric registry, spans, and the alert rules.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Window of the latency percentiles and of the alert rules. @default 5 minutes */
  readonly window?: Duration.Input | undefined
  /** Most recent latencies kept per tool for percentiles. @default 1024 */
  readonly maxSamples?: number | undefined
  /**
   * The registry the bridge's metrics go to. Each bridge has its own by default, so that two bridges in one process
   * never count each other's calls; export them with `TelemetryExport.layerOtlp` or `NodeTelemetry.layerPrometheus`.
   * Pass a registry (e.g. the one your own exporters read) to share it.
   * @default a new registry
   */
  readonly registry?: Metric.MetricRegistry | undefined
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
  /** The alert rules (defaults: error rate 10 %, p95 1 s, cache hit rate 50 %), or `false`. @default {} */
  readonly alerts?: AlertRules.AlertOptions | false | undefined
}

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
 * Parses a W3C `traceparent` into an external span, to continue a trace that started outside Effect. `undefined`
 * for anything that is not a valid `traceparent`.
 *
 * @since 0.1.0
 */
export const parseTraceparent = (value: unknown): Tracer.ExternalSpan | undefined => {
  if (typeof value !== "string") return undefined
  const match = traceparentPattern.exec(value)
  if (match === null || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return undefined
  return Tracer.externalSpan({ traceId: match[1]!, spanId: match[2]!, sampled: (parseInt(match[3]!, 16) & 1) === 1 })
}

/**
 * The `error.type` of a failure: the reason tag of a typed bridge error (`Timeout`, `PoolTimeout`, `RateLimited`,
 * `CircuitOpen`...), else its `_tag`; `Interrupted` and `Defect` for the rest. Never a message (no secrets).
 *
 * @since 0.1.0
 */
export const errorType = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) return errorTypeOf(error.value)
  return Cause.hasInterruptsOnly(cause) ? "Interrupted" : "Defect"
}

/**
 * The `error.type` of a typed error (see `errorType`).
 *
 * @since 0.1.0
 */
export const errorTypeOf = (error: unknown): string => {
  const e = error as { readonly _tag?: unknown; readonly reason?: { readonly _tag?: unknown } } | undefined
  if (typeof e?.reason?._tag === "string") return e.reason._tag
  if (typeof e?._tag === "string") return e._tag
  return "_OTHER"
}

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

interface SpanPlan {
  readonly name: string
  readonly options: Tracer.SpanOptionsNoTrace
}

/**
 * Builds the stage over `recorder` (the bridge's; see `layer`).
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(
  options: Options,
  recorder: MetricsRecorder.MetricsRecorder.Service
): Effect.fn.Return<Telemetry.Service, never, Scope.Scope> {
  const window = Duration.fromInputUnsafe(options.window ?? "5 minutes")
  const wireSpans = options.wireSpans !== false
  const tracedMark = wireSpans ? "wire" as const : "call" as const

  // The series of a tool, kept with its policy (one per tool and tool list): no key built per call.
  const seriesByPolicy = new WeakMap<CallRequest["policy"], MetricsRecorder.CallSeries>()
  const seriesOf = (request: CallRequest): MetricsRecorder.CallSeries => {
    let series = seriesByPolicy.get(request.policy)
    if (series === undefined) {
      series = recorder.calls(request.server.name, transportKind(request.server.transport), request.tool)
      seriesByPolicy.set(request.policy, series)
    }
    return series
  }

  const spanPlans = new Map<string, SpanPlan>()
  const spanPlanOf = (server: ResolvedServer, tool: string): SpanPlan => {
    const key = `${server.name}\u0000${tool}`
    let plan = spanPlans.get(key)
    if (plan === undefined) {
      plan = {
        name: `tools/call ${tool}`,
        options: {
          kind: "client",
          attributes: {
            [Attr.method]: "tools/call",
            [Attr.operation]: "execute_tool",
            [Attr.tool]: tool,
            [Attr.server]: server.name,
            [Attr.transport]: Metrics.networkTransport(transportKind(server.transport))
          }
        }
      }
      spanPlans.set(key, plan)
    }
    return plan
  }

  const record = (
    series: MetricsRecorder.CallSeries,
    clock: Clock.Clock,
    start: bigint,
    exit: Exit.Exit<CallToolResult, unknown>,
    span: Tracer.Span | undefined
  ): Effect.Effect<void> => {
    const seconds = Number(clock.currentTimeNanosUnsafe() - start) / 1e9
    const at = clock.currentTimeMillisUnsafe()
    if (Exit.isSuccess(exit)) {
      const isToolError = exit.value.isError === true
      series.succeeded(seconds, at, isToolError)
      if (span !== undefined) {
        if (isToolError) span.attribute(Attr.errorType, "tool_error")
        span.attribute(Attr.result, isToolError ? "tool_error" : "success")
      }
    } else {
      const type = errorType(exit.cause)
      series.failed(seconds, at, type, Cause.squash(exit.cause))
      if (span !== undefined) {
        span.attribute(Attr.errorType, type)
        span.attribute(Attr.result, "failure")
      }
    }
    if (span !== undefined) {
      if (!span.attributes.has(Attr.cacheResult)) span.attribute(Attr.cacheResult, "none")
      if (!span.attributes.has(Attr.retries)) span.attribute(Attr.retries, 0)
    }
    return Effect.void
  }

  const metricsOnly = <E>(next: ToolCaller<E>): ToolCaller<E> => (request: CallRequest) =>
    Effect.withFiber((fiber) => {
      const series = seriesOf(request)
      const clock = fiber.getRef(Clock.Clock)
      const start = clock.currentTimeNanosUnsafe()
      series.started()
      return Effect.onExit(next(request), (exit) => record(series, clock, start, exit, undefined))
    })

  const traced = <E>(next: ToolCaller<E>): ToolCaller<E> => (request: CallRequest) => {
    const series = seriesOf(request)
    const plan = spanPlanOf(request.server, request.tool)
    const external = request.meta === undefined ? undefined : parseTraceparent(request.meta.traceparent)
    const marked: CallRequest = { ...request, traced: tracedMark }
    return Effect.useSpan(
      plan.name,
      external === undefined ? plan.options : { ...plan.options, parent: external },
      (span) =>
        Effect.withFiber((fiber) => {
          const clock = fiber.getRef(Clock.Clock)
          const start = clock.currentTimeNanosUnsafe()
          series.started()
          return next(marked).pipe(
            Effect.withParentSpan(span, { captureStackTrace: false }),
            Effect.onExit((exit) => record(series, clock, start, exit, span))
          )
        })
    )
  }

  // In "auto" mode a call is traced only when a tracer other than Effect's default (which exports nowhere) is installed.
  const spansMode = options.spans ?? "auto"
  const tracing = (fiber: Fiber.Fiber<unknown, unknown>) => fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer
  const wrap = <E>(next: ToolCaller<E>): ToolCaller<E> => {
    if (spansMode === false) return metricsOnly(next)
    if (spansMode === true) return traced(next)
    const withSpans = traced(next)
    const withoutSpans = metricsOnly(next)
    return (request) => Effect.withFiber((fiber) => tracing(fiber) ? withSpans(request) : withoutSpans(request))
  }

  const alerts = options.alerts === false ? undefined : yield* AlertRules.start(
    options.alerts ?? {},
    window,
    Effect.sync(() => fromSnapshot(undefined, recorder.snapshot())),
    recorder
  )

  return {
    wrap,
    alerts: alerts?.events ?? Stream.empty,
    activeAlerts: alerts?.active ?? Effect.succeed([]),
    evaluateAlerts: alerts?.evaluate ?? Effect.succeed([]),
    window
  }
})

/**
 * Metrics, spans and trace context for every call, and the alert rules: the `Telemetry` stage and the bridge's
 * `MetricsRecorder` (which the pool, cache, throttler and resilience stages record through).
 *
 * @example
 * ```ts
 * const Bridge = McpBridge.layer(config, { telemetry: { window: "1 minute", alerts: { errorRate: { threshold: 0.05 } } } })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Telemetry | MetricsRecorder.MetricsRecorder> =>
  Layer.effectContext(Effect.gen(function*() {
    const recorder = MetricsRecorder.make({
      registry: options.registry,
      window: options.window,
      maxSamples: options.maxSamples,
      clock: yield* Effect.clockWith(Effect.succeed)
    })
    const telemetry = yield* make(options, recorder)
    return Context.make(Telemetry, telemetry).pipe(Context.add(MetricsRecorder.MetricsRecorder, recorder))
  }))

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
export const optionsFromConfig = (options: Options = {}): Effect.Effect<Options, Config.ConfigError> =>
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
 * `layer` with alert thresholds from the environment over `options` (see `optionsFromConfig`): for deployments that
 * tune alerts per environment without code.
 *
 * @since 0.1.0
 */
export const layerConfig = (
  options: Options = {}
): Layer.Layer<Telemetry | MetricsRecorder.MetricsRecorder, Config.ConfigError> =>
  Layer.unwrap(Effect.map(optionsFromConfig(options), layer))

/**
 * No telemetry: a pass-through stage, no alerts, and the no-op `MetricsRecorder`, so that no stage records anything.
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<Telemetry | MetricsRecorder.MetricsRecorder> = Layer.succeedContext(
  Context.make(Telemetry, {
    wrap: (next) => next,
    alerts: Stream.empty,
    activeAlerts: Effect.succeed([]),
    evaluateAlerts: Effect.succeed([]),
    window: Duration.minutes(5)
  }).pipe(Context.add(MetricsRecorder.MetricsRecorder, MetricsRecorder.noop))
)
