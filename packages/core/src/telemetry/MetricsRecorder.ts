/**
 * Where the pipeline records its metrics: one service that every stage (pool, cache, throttler, resilience, router,
 * telemetry) records through, provided by the `Telemetry` layer. Without it (telemetry off) a stage gets `noop`, and
 * recording costs nothing: off is off.
 *
 * Each recorder writes into a `Metric.MetricRegistry` of its own (a fresh one per bridge unless one is given), so two
 * bridges in one process never count each other's calls; `McpBridge.metrics()`, the alert rules and the exporters
 * read that registry. Built on Effect's `Metric`: each series is an attributed `Metric` made once and updated with
 * `updateUnsafe` against the recorder's context, so a record is a map lookup and an update, with no `Effect` to run.
 * Beside the metrics it keeps a small journal per server (the protocol version of its last session, its last success
 * and failure, an open circuit's end, its last rate-limit refusal) and the recent failures, for `BridgeStatus`.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Metric } from "effect"
import * as Metrics from "../internal/metrics.ts"

const Attr = Metrics.Attr
const defs = Metrics.definitions

/**
 * The metrics of calls to one tool of one server, made once and kept by the recorder.
 *
 * @since 0.1.0
 */
export interface CallSeries {
  readonly server: string
  readonly tool: string
  /** A call started (the in-flight gauge goes up). */
  readonly started: () => void
  /** A started call ended after `seconds` (at `atMillis`, the Clock's): a result, `isError` or not. */
  readonly succeeded: (seconds: number, atMillis: number, isToolError: boolean) => void
  /**
   * A started call failed after `seconds` with a failure of type `errorType` (see `Telemetry.errorType`); `error`, when
   * given, goes to the journal.
   */
  readonly failed: (seconds: number, atMillis: number, errorType: string, error?: unknown) => void
  /** A call failed before it started (the router could not route it): counted, no latency. */
  readonly refused: (errorType: string, error?: unknown) => void
}

/**
 * A failure the recorder remembers: the call (or connect) that failed, when (the Clock's epoch millis), its
 * `error.type`, and its message as the error carried it, cut to 500 characters. Read it through `BridgeStatus`, which
 * scrubs the servers' secrets from it.
 *
 * @since 0.1.0
 */
export interface Failure {
  readonly server: string
  /** The tool, or `undefined` for opening a session. */
  readonly tool: string | undefined
  readonly type: string
  readonly message: string
  readonly at: number
}

/**
 * What the recorder remembers of one server beyond its metrics (times are the Clock's epoch millis).
 *
 * @since 0.1.0
 */
export interface ServerJournal {
  readonly server: string
  /** The protocol version negotiated by the last session opened. */
  readonly protocolVersion: string | undefined
  readonly connectedAt: number | undefined
  /** The last call the server answered (an `isError` result included). */
  readonly lastSuccessAt: number | undefined
  readonly lastFailure: Failure | undefined
  /** The state of the server's circuit breaker, when it has one. */
  readonly circuit: Metrics.BreakerState | undefined
  /** When the server's circuit, open now or last, lets a call through again. */
  readonly circuitOpenUntil: number | undefined
  /** The last call the throttler refused. */
  readonly rateLimitedAt: number | undefined
}

/**
 * The recorder's journal: one entry per server it heard of, and the recent failures, newest last.
 *
 * @since 0.1.0
 */
export interface Journal {
  readonly servers: ReadonlyArray<ServerJournal>
  readonly failures: ReadonlyArray<Failure>
}

/**
 * A gauge read when metrics are collected, and the function that reads it.
 *
 * @since 0.1.0
 */
export type ObservedGauge = readonly [gauge: Metric.Gauge<number>, read: () => number]

/**
 * The service every stage records its metrics through, into the bridge's own registry. `Telemetry.layer` provides one
 * per bridge (`make`), `Telemetry.layerDisabled` provides `noop`; read it to reach the registry from an exporter
 * (`TelemetryExport.bridgeRegistry`, `NodeTelemetry.layerPrometheus`).
 *
 * @since 0.1.0
 */
export class MetricsRecorder extends Context.Service<MetricsRecorder, MetricsRecorder.Service>()(
  "@mcp-bridge/core/MetricsRecorder"
) {}

/**
 * The type of the recorder service, `MetricsRecorder.Service`.
 *
 * @since 0.1.0
 */
export declare namespace MetricsRecorder {
  /**
   * What a stage records. Every method is synchronous and cheap; on `noop` every method does nothing.
   *
   * @since 0.1.0
   */
  export interface Service {
    /** False for `noop`: a stage may skip work whose only purpose is a metric. */
    readonly enabled: boolean
    /** The registry this recorder writes. */
    readonly registry: Metric.MetricRegistry
    /** A context holding `registry`, for `Metric.snapshotUnsafe` and exporters. */
    readonly context: Context.Context<never>
    /** The series of calls to `tool` on `server` (made on first use, then kept). */
    readonly calls: (server: string, transport: Metrics.TransportKind, tool: string) => CallSeries
    readonly sessionConnected: (server: string, seconds: number, protocolVersion?: string) => void
    readonly sessionConnectFailed: (server: string, error?: unknown) => void
    readonly sessionClosed: (server: string, transport: string, protocolVersion: string, seconds: number) => void
    readonly cacheLookup: (server: string, tool: string, result: Metrics.CacheResult) => void
    readonly cacheEvicted: (server: string, reason: Metrics.EvictionReason, count: number) => void
    readonly throttleWaited: (server: string, limit: Metrics.ThrottleLimit, seconds: number) => void
    readonly throttleRejected: (server: string, limit: Metrics.ThrottleLimit) => void
    readonly retried: (server: string, tool: string, errorType: string) => void
    readonly breakerState: (server: string, state: Metrics.BreakerState) => void
    /** `retryAfterMillis`: how long an opening lasts. */
    readonly breakerTransition: (
      server: string,
      from: Metrics.BreakerState,
      to: Metrics.BreakerState,
      retryAfterMillis?: number
    ) => void
    readonly alert: (rule: string, server: string, state: "firing" | "resolved") => void
    /**
     * Registers gauges read when metrics are collected (no cost per call); the returned function removes them.
     */
    readonly observe: (gauges: ReadonlyArray<ObservedGauge>) => () => void
    /** Every series of the registry now. */
    readonly snapshot: () => ReadonlyArray<Metric.Metric.Snapshot>
    /** The journal now (see `Journal`). */
    readonly journal: () => Journal
  }
}

/**
 * Options of `MetricsRecorder.make`: the registry to write, and the window and sample count of the per-tool latency
 * summaries. `Telemetry.layer` passes its own `registry`, `window` and `maxSamples` here.
 *
 * @since 0.1.0
 */
export interface Options {
  /** The registry to write. @default a new one (the bridge's own) */
  readonly registry?: Metric.MetricRegistry | undefined
  /** Window of the per-tool latency summaries (percentiles, alert rules). @default 5 minutes */
  readonly window?: Duration.Input | undefined
  /** Most recent latencies kept per tool for percentiles. @default 1024 */
  readonly maxSamples?: number | undefined
  /**
   * The clock the calls are timed with, against which `snapshot` ages the latency samples of the sliding window (a
   * `TestClock` in tests: samples stamped on it would all look too old to the live clock). `Telemetry.layer` passes
   * the clock it is built with.
   * @default the live clock
   */
  readonly clock?: Clock.Clock | undefined
}

const family = Metrics.family

const cacheRequestsOf = family((server, tool, result) =>
  Metrics.counterOf(defs.cacheRequests, { [Attr.server]: server!, [Attr.tool]: tool!, [Attr.cacheResult]: result! })
)
const cacheEvictionsOf = family((server, reason) =>
  Metrics.counterOf(defs.cacheEvictions, { [Attr.server]: server!, [Attr.evictionReason]: reason! })
)
const throttleWaitsOf = family((server, limit) =>
  Metrics.counterOf(defs.throttleWaits, { [Attr.server]: server!, [Attr.throttleLimit]: limit! })
)
const throttleWaitDurationOf = family((server, limit) =>
  Metrics.histogramOf(defs.throttleWaitDuration, { [Attr.server]: server!, [Attr.throttleLimit]: limit! })
)
const throttleRejectionsOf = family((server, limit) =>
  Metrics.counterOf(defs.throttleRejections, { [Attr.server]: server!, [Attr.throttleLimit]: limit! })
)
const retriesOf = family((server, tool, errorType) =>
  Metrics.counterOf(defs.retries, { [Attr.server]: server!, [Attr.tool]: tool!, [Attr.errorType]: errorType! })
)
const breakerStateOf = family((server) => Metrics.gaugeOf(defs.breakerState, { [Attr.server]: server! }))
const breakerTransitionsOf = family((server, from, to) =>
  Metrics.counterOf(defs.breakerTransitions, {
    [Attr.server]: server!,
    [Attr.breakerFrom]: from!,
    [Attr.breakerTo]: to!
  })
)
const sessionConnectsOf = family((server, outcome) =>
  Metrics.counterOf(defs.sessionConnects, { [Attr.server]: server!, [Attr.outcome]: outcome! })
)
const sessionConnectDurationOf = family((server) =>
  Metrics.histogramOf(defs.sessionConnectDuration, { [Attr.server]: server! })
)
const sessionDurationOf = family((server, transport, protocolVersion) =>
  Metrics.histogramOf(defs.sessionDuration, {
    [Attr.server]: server!,
    [Attr.transport]: transport!,
    [Attr.protocolVersion]: protocolVersion!
  }, Metrics.durationBoundaries.concat([600, 1800, 3600, 7200, 86400]))
)
const alertsOf = family((rule, server, state) =>
  Metrics.counterOf(defs.alerts, {
    [Attr.alertRule]: rule!,
    [Attr.server]: server!,
    [Attr.alertState]: state!
  })
)

interface CallMetrics {
  readonly success: Metric.Counter<number>
  readonly toolError: Metric.Counter<number>
  readonly failures: Map<string, Metric.Counter<number>>
  readonly durationOk: Metric.Histogram<number>
  readonly durationToolError: Metric.Histogram<number>
  readonly durationFailures: Map<string, Metric.Histogram<number>>
  readonly window: Metric.Summary<[value: number, timestamp: number]>
  readonly serverWindow: Metric.Summary<[value: number, timestamp: number]>
  readonly active: Metric.Gauge<number>
  readonly operation: Readonly<Record<string, string>>
}

const callMetrics = (
  server: string,
  transport: Metrics.TransportKind,
  tool: string,
  window: Duration.Duration,
  maxSamples: number,
  serverWindow: Metric.Summary<[number, number]>
): CallMetrics => {
  const base = { [Attr.server]: server, [Attr.tool]: tool }
  const operation = {
    [Attr.method]: "tools/call",
    [Attr.operation]: "execute_tool",
    [Attr.tool]: tool,
    [Attr.server]: server,
    [Attr.transport]: Metrics.networkTransport(transport)
  }
  return {
    success: Metrics.counterOf(defs.calls, { ...base, [Attr.outcome]: "success" }),
    toolError: Metrics.counterOf(defs.calls, {
      ...base,
      [Attr.outcome]: "tool_error",
      [Attr.errorType]: "tool_error"
    }),
    failures: new Map(),
    durationOk: Metrics.histogramOf(defs.operationDuration, operation),
    durationToolError: Metrics.histogramOf(defs.operationDuration, { ...operation, [Attr.errorType]: "tool_error" }),
    durationFailures: new Map(),
    window: windowSummary({ ...base, unit: "seconds" }, window, maxSamples),
    serverWindow,
    active: Metrics.gaugeOf(defs.activeCalls, base),
    operation
  }
}

const windowSummary = (attributes: Record<string, string>, window: Duration.Duration, maxSamples: number) =>
  Metric.summaryWithTimestamp(Metrics.windowSummaryName, {
    description: "Latency of recent tool calls (seconds) over the sliding window, for percentiles and alert rules.",
    attributes,
    maxAge: window,
    maxSize: maxSamples,
    quantiles: [0.5, 0.95, 0.99]
  })

/**
 * A recorder writing into `options.registry` (or a registry of its own). `Telemetry.layer` makes one per bridge.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): MetricsRecorder.Service => {
  const registry: Metric.MetricRegistry = options.registry ?? new Map()
  const withRegistry = Context.make(Metric.MetricRegistry, registry) as Context.Context<never>
  const context = options.clock === undefined ? withRegistry : Context.add(withRegistry, Clock.Clock, options.clock)
  const window = Duration.fromInputUnsafe(options.window ?? "5 minutes")
  const maxSamples = options.maxSamples ?? 1024
  const series = new Map<string, CallSeries>()
  const serverWindows = new Map<string, Metric.Summary<[number, number]>>()
  const clock = Context.get(context, Clock.Clock)
  const journals = new Map<string, Mutable<ServerJournal>>()
  const failures: Array<Failure> = []
  const journalOf = (server: string) => {
    let j = journals.get(server)
    if (j === undefined) {
      journals.set(
        server,
        j = {
          server,
          protocolVersion: undefined,
          connectedAt: undefined,
          lastSuccessAt: undefined,
          lastFailure: undefined,
          circuit: undefined,
          circuitOpenUntil: undefined,
          rateLimitedAt: undefined
        }
      )
    }
    return j
  }
  const remember = (server: string, tool: string | undefined, type: string, error: unknown, at: number) => {
    // A cancelled call says nothing about the server.
    if (type === "Interrupted") return
    const failure: Failure = { server, tool, type, message: messageOf(error), at }
    journalOf(server).lastFailure = failure
    failures.push(failure)
    if (failures.length > maxFailures) failures.shift()
  }

  const serverWindowOf = (server: string) => {
    let summary = serverWindows.get(server)
    if (summary === undefined) {
      summary = windowSummary({ [Attr.server]: server, unit: "seconds" }, window, maxSamples)
      serverWindows.set(server, summary)
    }
    return summary
  }

  const makeSeries = (server: string, transport: Metrics.TransportKind, tool: string): CallSeries => {
    const m = callMetrics(server, transport, tool, window, maxSamples, serverWindowOf(server))
    const journal = journalOf(server)
    const failureCounter = (errorType: string) => {
      let counter = m.failures.get(errorType)
      if (counter === undefined) {
        counter = Metrics.counterOf(defs.calls, {
          [Attr.server]: server,
          [Attr.tool]: tool,
          [Attr.outcome]: "failure",
          [Attr.errorType]: errorType
        })
        m.failures.set(errorType, counter)
      }
      return counter
    }
    const failureHistogram = (errorType: string) => {
      let histogram = m.durationFailures.get(errorType)
      if (histogram === undefined) {
        histogram = Metrics.histogramOf(defs.operationDuration, { ...m.operation, [Attr.errorType]: errorType })
        m.durationFailures.set(errorType, histogram)
      }
      return histogram
    }
    const sample = (seconds: number, atMillis: number) => {
      m.active.modifyUnsafe(-1, context)
      const value: [number, number] = [seconds, atMillis]
      m.window.updateUnsafe(value, context)
      m.serverWindow.updateUnsafe(value, context)
    }
    return {
      server,
      tool,
      started: () => m.active.modifyUnsafe(1, context),
      succeeded: (seconds, atMillis, isToolError) => {
        sample(seconds, atMillis)
        journal.lastSuccessAt = atMillis
        if (isToolError) {
          m.toolError.updateUnsafe(1, context)
          m.durationToolError.updateUnsafe(seconds, context)
        } else {
          m.success.updateUnsafe(1, context)
          m.durationOk.updateUnsafe(seconds, context)
        }
      },
      failed: (seconds, atMillis, errorType, error) => {
        sample(seconds, atMillis)
        failureCounter(errorType).updateUnsafe(1, context)
        failureHistogram(errorType).updateUnsafe(seconds, context)
        remember(server, tool, errorType, error, atMillis)
      },
      refused: (errorType, error) => {
        failureCounter(errorType).updateUnsafe(1, context)
        remember(server, tool, errorType, error, clock.currentTimeMillisUnsafe())
      }
    }
  }

  const count = (metric: Metric.Metric<number, unknown>, n = 1) => metric.updateUnsafe(n, context)

  return {
    enabled: true,
    registry,
    context,
    calls: (server, transport, tool) => {
      const key = `${server}\u0000${tool}`
      let s = series.get(key)
      if (s === undefined) series.set(key, s = makeSeries(server, transport, tool))
      return s
    },
    sessionConnected: (server, seconds, protocolVersion) => {
      count(sessionConnectsOf(server, "success"))
      count(sessionConnectDurationOf(server), seconds)
      const j = journalOf(server)
      j.connectedAt = clock.currentTimeMillisUnsafe()
      if (protocolVersion !== undefined) j.protocolVersion = protocolVersion
    },
    sessionConnectFailed: (server, error) => {
      count(sessionConnectsOf(server, "failure"))
      remember(server, undefined, typeOfFailure(error), error, clock.currentTimeMillisUnsafe())
    },
    sessionClosed: (server, transport, protocolVersion, seconds) =>
      count(sessionDurationOf(server, transport, protocolVersion), seconds),
    cacheLookup: (server, tool, result) => count(cacheRequestsOf(server, tool, result)),
    cacheEvicted: (server, reason, n) => count(cacheEvictionsOf(server, reason), n),
    throttleWaited: (server, limit, seconds) => {
      count(throttleWaitsOf(server, limit))
      count(throttleWaitDurationOf(server, limit), seconds)
    },
    throttleRejected: (server, limit) => {
      count(throttleRejectionsOf(server, limit))
      journalOf(server).rateLimitedAt = clock.currentTimeMillisUnsafe()
    },
    retried: (server, tool, errorType) => count(retriesOf(server, tool, errorType)),
    breakerState: (server, state) => {
      count(breakerStateOf(server), Metrics.breakerStateValue(state))
      journalOf(server).circuit = state
    },
    breakerTransition: (server, from, to, retryAfterMillis) => {
      count(breakerTransitionsOf(server, from, to))
      count(breakerStateOf(server), Metrics.breakerStateValue(to))
      const j = journalOf(server)
      j.circuit = to
      if (to === "open" && retryAfterMillis !== undefined) {
        j.circuitOpenUntil = clock.currentTimeMillisUnsafe() + retryAfterMillis
      }
    },
    alert: (rule, server, state) => count(alertsOf(rule, server, state)),
    observe: (gauges) => {
      const registrations = gauges.map(([gauge, read]) =>
        Metric.registerUnsafe(gauge, context, { get: () => ({ value: read() }), update: () => {}, modify: () => {} })
      )
      return () => registrations.forEach((r) => r.remove())
    },
    snapshot: () => Metric.snapshotUnsafe(context),
    journal: () => ({
      servers: Array.from(journals.values(), (j) => ({ ...j })),
      failures: failures.slice()
    })
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const maxFailures = 50
const maxMessage = 500

// The message of a failure (a typed error's own), cut short: it is shown, never parsed.
const messageOf = (error: unknown): string => {
  const message = typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : error === undefined
    ? ""
    : String(error)
  return message.length > maxMessage ? `${message.slice(0, maxMessage)}…` : message
}

// The `error.type` of a failure outside a call (opening a session): its reason tag, as `Telemetry.errorTypeOf` says.
const typeOfFailure = (error: unknown): string => {
  const e = error as { readonly _tag?: unknown; readonly reason?: { readonly _tag?: unknown } } | undefined
  if (typeof e?.reason?._tag === "string") return e.reason._tag
  if (typeof e?._tag === "string") return e._tag
  return "_OTHER"
}

const nothing = () => {}
const noSeries = (server: string, _transport: Metrics.TransportKind, tool: string): CallSeries => ({
  server,
  tool,
  started: nothing,
  succeeded: nothing,
  failed: nothing,
  refused: nothing
})
const emptyRegistry: Metric.MetricRegistry = new Map()

/**
 * The recorder of a bridge without telemetry: records nothing, reports nothing.
 *
 * @since 0.1.0
 */
export const noop: MetricsRecorder.Service = {
  enabled: false,
  registry: emptyRegistry,
  context: Context.make(Metric.MetricRegistry, emptyRegistry) as Context.Context<never>,
  calls: noSeries,
  sessionConnected: nothing,
  sessionConnectFailed: nothing,
  sessionClosed: nothing,
  cacheLookup: nothing,
  cacheEvicted: nothing,
  throttleWaited: nothing,
  throttleRejected: nothing,
  retried: nothing,
  breakerState: nothing,
  breakerTransition: nothing,
  alert: nothing,
  observe: () => nothing,
  snapshot: () => [],
  journal: () => ({ servers: [], failures: [] })
}
