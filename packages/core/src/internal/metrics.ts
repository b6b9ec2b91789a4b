/**
 * The bridge's metric definitions: one place for every `Metric` the stages record, with OpenTelemetry-style names,
 * units and attributes, and the builders of their attributed series.
 *
 * Names follow OpenTelemetry's semantic conventions where they cover MCP clients (`mcp.client.operation.duration`,
 * `mcp.client.session.duration`, attributes `mcp.method.name`, `gen_ai.tool.name`, `gen_ai.operation.name`,
 * `error.type`, `network.transport`, `mcp.protocol.version`); everything the conventions do not cover is under
 * `mcp_bridge.*`. The unit of each metric is its constant `unit` attribute (`seconds` and `bytes` become UCUM `s` and
 * `By` in OTLP; Prometheus drops the label and the exporter layer adds the unit suffix to the name).
 *
 * The stages do not use these directly: they record through the `MetricsRecorder` service, which caches one
 * attributed `Metric` per series and writes into its bridge's own registry.
 *
 * @internal
 */
import { Metric } from "effect"

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
  result: "mcp_bridge.result",
  /** The alert rule of an alert event. */
  alertRule: "mcp_bridge.alert.rule",
  /** `firing` | `resolved`. */
  alertState: "mcp_bridge.alert.state"
} as const

/** The kind of transport of a server. */
export type TransportKind = "stdio" | "http" | "sse" | "memory"

/** The name of the per-tool and per-server latency summaries over the sliding window. */
export const windowSummaryName = "mcp_bridge.calls.duration.window"

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
    attributes: [Attr.alertRule, Attr.server, Attr.alertState],
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

/** `network.transport` of a transport kind. */
export const networkTransport = (kind: TransportKind): string =>
  kind === "stdio" ? "pipe" : kind === "memory" ? "inproc" : "tcp"
