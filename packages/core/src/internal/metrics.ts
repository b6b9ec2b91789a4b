/**
 * The bridge's metric definitions: one place for every `Metric` the stages record, with OpenTelemetry-style names,
 * units and attributes, and cheap recorders for the hot path.
 *
 * Names follow OpenTelemetry's semantic conventions where they cover MCP clients (`mcp.client.operation.duration`,
 * `mcp.client.session.duration`, attributes `mcp.method.name`, `gen_ai.tool.name`, `gen_ai.operation.name`,
 * `error.type`, `network.transport`, `mcp.protocol.version`); everything the conventions do not cover is under
 * `mcp_bridge.*`. The unit of each metric is its constant `unit` attribute (`seconds` and `bytes` become UCUM `s` and
 * `By` in OTLP; Prometheus drops the label and the exporter layer adds the unit suffix to the name).
 *
 * Recorders cache one attributed `Metric` per series (server, tool, outcome...), so recording is a map lookup and a
 * registry update: no attribute merging or key building per call. Every recorder returns an `Effect<void>` that
 * writes into the `Metric.MetricRegistry` of the fiber that runs it (tests provide a fresh registry).
 *
 * Stage authors: call the recorders below (e.g. `yield* Metrics.cacheRequest(server, tool, "hit")`); read them back
 * with `Metric.snapshot` or `McpBridge.metrics()`.
 */
import { Context, Effect, Metric, Scope } from "effect"

// -----------------------------------------------------------------------------
// Attribute keys
// -----------------------------------------------------------------------------

/** Attribute keys used by the bridge's metrics and spans. */
export const Attr = {
  /** The configured server name (the key of `mcpServers`); the semantic conventions have no logical server name. */
  server: "mcp_bridge.server",
  /** OTel `gen_ai.tool.name`. */
  tool: "gen_ai.tool.name",
  /** OTel `mcp.method.name`: always `tools/call` for bridge calls. */
  method: "mcp.method.name",
  /** OTel `gen_ai.operation.name`: `execute_tool`. */
  operation: "gen_ai.operation.name",
  /** OTel `error.type`: `tool_error` for `isError: true` results, else the failure's reason tag (`PoolTimeout`...). */
  errorType: "error.type",
  /** OTel `network.transport`: `pipe` (stdio), `tcp` (HTTP, SSE), `inproc` (in-memory). */
  transport: "network.transport",
  /** OTel `mcp.protocol.version`. */
  protocolVersion: "mcp.protocol.version",
  /** OTel `mcp.session.id`: defined, never set (an `Mcp-Session-Id` can be replayed to take over a session). */
  sessionId: "mcp.session.id",
  /** `success` | `tool_error` | `failure`. */
  outcome: "mcp_bridge.outcome",
  /** `hit` | `miss`; on the call span also `none` (no cache lookup: not cacheable, or no cache). */
  cacheResult: "mcp_bridge.cache.result",
  /** `expired` | `capacity` | `invalidated`. */
  evictionReason: "mcp_bridge.cache.eviction.reason",
  /** `per_second` | `per_minute` | `concurrency`. */
  throttleLimit: "mcp_bridge.throttle.limit",
  /** `idle` | `used`. */
  sessionState: "mcp_bridge.session.state",
  /** `closed` | `open` | `half_open` (transitions: `from` / `to`). */
  breakerFrom: "mcp_bridge.circuit_breaker.from",
  breakerTo: "mcp_bridge.circuit_breaker.to",
  /** Number of retries a call took (span attribute). */
  retries: "mcp_bridge.retries",
  /** `success` | `tool_error` | `failure` (span attribute: `mcp_bridge.result`). */
  result: "mcp_bridge.result"
} as const

/** Outcome of one bridge call. */
export type Outcome = "success" | "tool_error" | "failure"

/** Result of a cache lookup. */
export type CacheResult = "hit" | "miss"

/** Why a cache entry left. */
export type EvictionReason = "expired" | "capacity" | "invalidated"

/** Which throttle limit made a call wait or fail. */
export type ThrottleLimit = "per_second" | "per_minute" | "concurrency"

/** State of a circuit breaker. */
export type BreakerState = "closed" | "open" | "half_open"

/** The value of `mcp_bridge.circuit_breaker.state`: 0 closed, 1 half-open, 2 open. */
export const breakerStateValue = (state: BreakerState): number => state === "closed" ? 0 : state === "half_open" ? 1 : 2

// -----------------------------------------------------------------------------
// Definitions
// -----------------------------------------------------------------------------

/** Bucket boundaries (seconds) advised by the MCP semantic conventions for operation durations. */
export const durationBoundaries: ReadonlyArray<number> = [
  0.01,
  0.02,
  0.05,
  0.1,
  0.2,
  0.5,
  1,
  2,
  5,
  10,
  30,
  60,
  120,
  300
]

/** Finer buckets (seconds) for short waits (throttle waits, session waits, connects). */
export const waitBoundaries: ReadonlyArray<number> = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30
]

/** One metric of the bridge: name, kind, unit, description, and the attributes its series carry. */
export interface Definition {
  readonly name: string
  readonly kind: "counter" | "gauge" | "histogram"
  /** `seconds`, `bytes`, or a UCUM annotation such as `{call}`. */
  readonly unit: string
  readonly description: string
  readonly attributes: ReadonlyArray<string>
  /** Which part of the bridge records it. */
  readonly recordedBy: "Telemetry" | "ConnectionPool" | "ResultCache" | "Throttler" | "Resilience"
}

const def = (d: Definition): Definition => d

/** Every metric of the bridge, by key. */
export const definitions = {
  operationDuration: def({
    name: "mcp.client.operation.duration",
    kind: "histogram",
    unit: "seconds",
    description: "Duration of a tools/call through the bridge, from the caller's request to its result.",
    attributes: [Attr.method, Attr.operation, Attr.tool, Attr.server, Attr.transport, Attr.errorType],
    recordedBy: "Telemetry"
  }),
  calls: def({
    name: "mcp_bridge.calls",
    kind: "counter",
    unit: "{call}",
    description: "Tool calls by outcome: success, tool_error (isError result), failure (error.type = reason).",
    attributes: [Attr.server, Attr.tool, Attr.outcome, Attr.errorType],
    recordedBy: "Telemetry"
  }),
  activeCalls: def({
    name: "mcp_bridge.calls.active",
    kind: "gauge",
    unit: "{call}",
    description: "Tool calls in flight.",
    attributes: [Attr.server, Attr.tool],
    recordedBy: "Telemetry"
  }),
  sessionDuration: def({
    name: "mcp.client.session.duration",
    kind: "histogram",
    unit: "seconds",
    description: "Lifetime of an MCP session, from connect to close.",
    attributes: [Attr.server, Attr.transport, Attr.protocolVersion],
    recordedBy: "ConnectionPool"
  }),
  sessionConnects: def({
    name: "mcp_bridge.session.connects",
    kind: "counter",
    unit: "{session}",
    description: "Session connects by outcome (success, failure).",
    attributes: [Attr.server, Attr.outcome],
    recordedBy: "ConnectionPool"
  }),
  sessionConnectDuration: def({
    name: "mcp_bridge.session.connect.duration",
    kind: "histogram",
    unit: "seconds",
    description: "Time to open a session (transport and handshake).",
    attributes: [Attr.server],
    recordedBy: "ConnectionPool"
  }),
  poolSessions: def({
    name: "mcp_bridge.pool.sessions",
    kind: "gauge",
    unit: "{session}",
    description: "Pooled sessions by state (idle, used), read when metrics are collected.",
    attributes: [Attr.server, Attr.sessionState],
    recordedBy: "ConnectionPool"
  }),
  poolPending: def({
    name: "mcp_bridge.pool.pending_requests",
    kind: "gauge",
    unit: "{request}",
    description: "Callers waiting for a free session, read when metrics are collected.",
    attributes: [Attr.server],
    recordedBy: "ConnectionPool"
  }),
  poolMax: def({
    name: "mcp_bridge.pool.sessions.max",
    kind: "gauge",
    unit: "{session}",
    description: "Most sessions the pool may open.",
    attributes: [Attr.server],
    recordedBy: "ConnectionPool"
  }),
  cacheRequests: def({
    name: "mcp_bridge.cache.requests",
    kind: "counter",
    unit: "{request}",
    description: "Result cache lookups by result (hit, miss).",
    attributes: [Attr.server, Attr.tool, Attr.cacheResult],
    recordedBy: "ResultCache"
  }),
  cacheEvictions: def({
    name: "mcp_bridge.cache.evictions",
    kind: "counter",
    unit: "{entry}",
    description: "Entries that left the result cache, by reason (expired, capacity, invalidated).",
    attributes: [Attr.server, Attr.evictionReason],
    recordedBy: "ResultCache"
  }),
  cacheEntries: def({
    name: "mcp_bridge.cache.entries",
    kind: "gauge",
    unit: "{entry}",
    description: "Entries in the result cache.",
    attributes: [],
    recordedBy: "ResultCache"
  }),
  cacheBytes: def({
    name: "mcp_bridge.cache.size",
    kind: "gauge",
    unit: "bytes",
    description: "Approximate size of the cached results.",
    attributes: [],
    recordedBy: "ResultCache"
  }),
  throttleWaits: def({
    name: "mcp_bridge.throttle.waits",
    kind: "counter",
    unit: "{call}",
    description: "Calls that waited for a throttle limit, by limit (per_second, per_minute, concurrency).",
    attributes: [Attr.server, Attr.throttleLimit],
    recordedBy: "Throttler"
  }),
  throttleWaitDuration: def({
    name: "mcp_bridge.throttle.wait.duration",
    kind: "histogram",
    unit: "seconds",
    description: "Time calls waited for a throttle limit.",
    attributes: [Attr.server, Attr.throttleLimit],
    recordedBy: "Throttler"
  }),
  throttleRejections: def({
    name: "mcp_bridge.throttle.rejections",
    kind: "counter",
    unit: "{call}",
    description: "Calls failed fast by a throttle limit, by limit.",
    attributes: [Attr.server, Attr.throttleLimit],
    recordedBy: "Throttler"
  }),
  retries: def({
    name: "mcp_bridge.retries",
    kind: "counter",
    unit: "{retry}",
    description: "Retries of calls, by the error.type that caused them.",
    attributes: [Attr.server, Attr.tool, Attr.errorType],
    recordedBy: "Resilience"
  }),
  breakerState: def({
    name: "mcp_bridge.circuit_breaker.state",
    kind: "gauge",
    unit: "1",
    description: "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
    attributes: [Attr.server],
    recordedBy: "Resilience"
  }),
  alerts: def({
    name: "mcp_bridge.alerts",
    kind: "counter",
    unit: "{event}",
    description: "Alert events, by rule and state (firing, resolved).",
    attributes: ["mcp_bridge.alert.rule", Attr.server, "mcp_bridge.alert.state"],
    recordedBy: "Telemetry"
  }),
  breakerTransitions: def({
    name: "mcp_bridge.circuit_breaker.transitions",
    kind: "counter",
    unit: "{transition}",
    description: "Circuit breaker state changes, by from and to state.",
    attributes: [Attr.server, Attr.breakerFrom, Attr.breakerTo],
    recordedBy: "Resilience"
  })
} as const

// -----------------------------------------------------------------------------
// Series
// -----------------------------------------------------------------------------

type Attributes = Record<string, string>

const withUnit = (d: Definition, attributes: Attributes): Attributes => ({ ...attributes, unit: d.unit })

/** A counter of the definition with these attributes (and its `unit`). */
export const counterOf = (d: Definition, attributes: Attributes): Metric.Counter<number> =>
  Metric.counter(d.name, { description: d.description, attributes: withUnit(d, attributes), incremental: true })

/** A gauge of the definition with these attributes. */
export const gaugeOf = (d: Definition, attributes: Attributes): Metric.Gauge<number> =>
  Metric.gauge(d.name, { description: d.description, attributes: withUnit(d, attributes) })

/** A histogram of the definition with these attributes. */
export const histogramOf = (
  d: Definition,
  attributes: Attributes,
  boundaries: ReadonlyArray<number> = d.unit === "seconds" && d.recordedBy === "Telemetry"
    ? durationBoundaries
    : waitBoundaries
): Metric.Histogram<number> =>
  Metric.histogram(d.name, {
    description: d.description,
    attributes: withUnit(d, attributes),
    boundaries: Metric.boundariesFromIterable(boundaries)
  })

/**
 * A cache of attributed metrics by a string key: the first use of a series builds its `Metric` once.
 */
export const family = <M>(make: (...parts: ReadonlyArray<string>) => M) => {
  const cache = new Map<string, M>()
  return (...parts: ReadonlyArray<string>): M => {
    const key = parts.join("\u0000")
    let metric = cache.get(key)
    if (metric === undefined) {
      metric = make(...parts)
      cache.set(key, metric)
    }
    return metric
  }
}

const d = definitions

const cacheRequestsOf = family((server, tool, result) =>
  counterOf(d.cacheRequests, { [Attr.server]: server!, [Attr.tool]: tool!, [Attr.cacheResult]: result! })
)
const cacheEvictionsOf = family((server, reason) =>
  counterOf(d.cacheEvictions, { [Attr.server]: server!, [Attr.evictionReason]: reason! })
)
const throttleWaitsOf = family((server, limit) =>
  counterOf(d.throttleWaits, { [Attr.server]: server!, [Attr.throttleLimit]: limit! })
)
const throttleWaitDurationOf = family((server, limit) =>
  histogramOf(d.throttleWaitDuration, { [Attr.server]: server!, [Attr.throttleLimit]: limit! })
)
const throttleRejectionsOf = family((server, limit) =>
  counterOf(d.throttleRejections, { [Attr.server]: server!, [Attr.throttleLimit]: limit! })
)
const retriesOf = family((server, tool, errorType) =>
  counterOf(d.retries, { [Attr.server]: server!, [Attr.tool]: tool!, [Attr.errorType]: errorType! })
)
const breakerStateOf = family((server) => gaugeOf(d.breakerState, { [Attr.server]: server! }))
const breakerTransitionsOf = family((server, from, to) =>
  counterOf(d.breakerTransitions, { [Attr.server]: server!, [Attr.breakerFrom]: from!, [Attr.breakerTo]: to! })
)
const sessionConnectsOf = family((server, outcome) =>
  counterOf(d.sessionConnects, { [Attr.server]: server!, [Attr.outcome]: outcome! })
)
const sessionConnectDurationOf = family((server) => histogramOf(d.sessionConnectDuration, { [Attr.server]: server! }))
const sessionDurationOf = family((server, transport, protocolVersion) =>
  histogramOf(d.sessionDuration, {
    [Attr.server]: server!,
    [Attr.transport]: transport!,
    [Attr.protocolVersion]: protocolVersion!
  }, durationBoundaries.concat([600, 1800, 3600, 7200, 86400]))
)
const cacheEntries = gaugeOf(d.cacheEntries, {})
const cacheBytes = gaugeOf(d.cacheBytes, {})

// -----------------------------------------------------------------------------
// Recorders (the shared API of the stages)
// -----------------------------------------------------------------------------

/** ResultCache: one lookup of a cacheable call, `hit` or `miss`. */
export const cacheRequest = (server: string, tool: string, result: CacheResult): Effect.Effect<void> =>
  Metric.update(cacheRequestsOf(server, tool, result), 1)

/** ResultCache: `count` entries of `server` left the cache for `reason`. */
export const cacheEviction = (server: string, reason: EvictionReason, count = 1): Effect.Effect<void> =>
  Metric.update(cacheEvictionsOf(server, reason), count)

/**
 * ResultCache: reports the cache's size from `get` whenever metrics are collected (snapshot, OTLP export, Prometheus
 * scrape), until the scope closes. Nothing is recorded per call.
 */
export const observeCacheSize = (
  get: () => { readonly entries: number; readonly bytes: number }
): Effect.Effect<void, never, Scope.Scope> =>
  observeGauges([[cacheEntries, () => get().entries], [cacheBytes, () => get().bytes]])

/** Throttler: a call of `server` waited `seconds` for `limit`. */
export const throttleWait = (server: string, limit: ThrottleLimit, seconds: number): Effect.Effect<void> =>
  Effect.andThen(
    Metric.update(throttleWaitsOf(server, limit), 1),
    Metric.update(throttleWaitDurationOf(server, limit), seconds)
  )

/** Throttler: a call of `server` was failed fast by `limit`. */
export const throttleRejection = (server: string, limit: ThrottleLimit): Effect.Effect<void> =>
  Metric.update(throttleRejectionsOf(server, limit), 1)

/**
 * A call is retried after an error of type `errorType` (the reason tag, e.g. `Timeout`). The Telemetry stage records
 * this itself (each attempt that reaches the bottom of the pipeline again under the same call span is a retry), so a
 * stage that retries must not call it too.
 */
export const retry = (server: string, tool: string, errorType: string): Effect.Effect<void> =>
  Metric.update(retriesOf(server, tool, errorType), 1)

/** Resilience: the breaker of `server` went from `from` to `to` (counts the transition and sets the state gauge). */
export const breakerTransition = (server: string, from: BreakerState, to: BreakerState): Effect.Effect<void> =>
  Effect.andThen(
    Metric.update(breakerTransitionsOf(server, from, to), 1),
    Metric.update(breakerStateOf(server), breakerStateValue(to))
  )

/** Resilience: sets the state gauge of the breaker of `server` (e.g. `closed` when it is created). */
export const breakerState = (server: string, state: BreakerState): Effect.Effect<void> =>
  Metric.update(breakerStateOf(server), breakerStateValue(state))

/** ConnectionPool: a session connect of `server` ended; `seconds` is recorded for successes. */
export const sessionConnect = (server: string, outcome: "success" | "failure", seconds: number): Effect.Effect<void> =>
  outcome === "success"
    ? Effect.andThen(
      Metric.update(sessionConnectsOf(server, outcome), 1),
      Metric.update(sessionConnectDurationOf(server), seconds)
    )
    : Metric.update(sessionConnectsOf(server, outcome), 1)

/** ConnectionPool: a session of `server` closed after `seconds`. */
export const sessionClosed = (
  server: string,
  transport: string,
  protocolVersion: string,
  seconds: number
): Effect.Effect<void> => Metric.update(sessionDurationOf(server, transport, protocolVersion), seconds)

/**
 * Registers gauges whose value is read when metrics are collected, removed when the scope closes. The registry is the
 * one of the fiber that runs this effect.
 */
export const observeGauges = (
  gauges: ReadonlyArray<readonly [Metric.Gauge<number>, () => number]>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.contextWith((context: Context.Context<never>) => {
    const registrations = gauges.map(([gauge, get]) =>
      Metric.registerUnsafe(gauge, context, { get: () => ({ value: get() }), update: () => {}, modify: () => {} })
    )
    return Effect.addFinalizer(() => Effect.sync(() => registrations.forEach((r) => r.remove())))
  })

// -----------------------------------------------------------------------------
// Span annotations (what the Telemetry stage's call span reports from the stages below it)
// -----------------------------------------------------------------------------

/**
 * Sets an attribute on the bridge call span of the current fiber (the `tools/call <tool>` span of the Telemetry
 * stage), and does nothing when there is none (Telemetry off), so that a user's own span is never touched.
 */
export const annotateCall = (key: string, value: unknown): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    const span = fiber.cache.span
    if (span?._tag === "Span" && span.attributes.has(Attr.method) && span.attributes.has(Attr.server)) {
      span.attribute(key, value)
    }
    return Effect.void
  })

/** ResultCache: the call span's `mcp_bridge.cache.result`, `hit` or `miss` (Telemetry sets `none` when not looked up). */
export const annotateCacheResult = (result: CacheResult): Effect.Effect<void> => annotateCall(Attr.cacheResult, result)

/** `network.transport` of a transport kind. */
export const networkTransport = (kind: "stdio" | "http" | "sse" | "memory"): string =>
  kind === "stdio" ? "pipe" : kind === "memory" ? "inproc" : "tcp"
