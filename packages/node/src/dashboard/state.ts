/**
 * The dashboard's state: one JSON document per tick built from the bridge's metrics (`McpBridge.metrics()`), its
 * servers' states (`BridgeStatus.read`), the result cache's size and the alert rules, plus a short history of calls,
 * failures and p95 per tick for the chart.
 *
 * @internal
 */
import { AlertRules, type BridgeStatus, type MetricsSnapshot } from "@mcp-bridge/core"
import { Duration } from "effect"
import type * as RedisStats from "../replica/RedisStats.ts"

/** A replica's identity, as the page shows it. @internal */
export interface Replica {
  readonly id: string
  readonly name: string | undefined
}

/** One point of the chart: calls and failures since the previous tick, and the worst server's p95 (ms). @internal */
export type Point = readonly [at: number, calls: number, failures: number, p95: number | null]

/** @internal */
export interface State {
  readonly at: number
  readonly replica: Replica | undefined
  readonly intervalMillis: number
  readonly servers: ReadonlyArray<unknown>
  readonly totals: unknown
  readonly cache: unknown
  readonly pool: unknown
  readonly alerts: unknown
  readonly errors: ReadonlyArray<unknown>
  readonly history: ReadonlyArray<Point>
  /** What the replicas share through Redis; `null` for a bridge that shares nothing. */
  readonly shared: Shared | null
}

/** A rate limit the shared view reads: where it applies, and its key in the rate-limit store. @internal */
export interface LimitRow {
  readonly server: string
  readonly tool: string | undefined
  readonly window: "second" | "minute"
  readonly limit: number
  readonly key: string
  readonly windowMillis: number
}

/** A remote server's circuit in the shared store. @internal */
export interface CircuitRow {
  readonly server: string
  readonly state: "closed" | "open" | "half_open" | null
  readonly retryAfterMillis: number | null
}

/** The shared view as the page shows it. @internal */
export interface Shared {
  readonly at: number
  readonly error: string | null
  readonly replicas: ReadonlyArray<unknown>
  readonly cache: unknown
  readonly servers: ReadonlyArray<unknown>
  readonly limits: ReadonlyArray<unknown>
  readonly circuits: ReadonlyArray<CircuitRow>
}

/** Builds the shared view from one `RedisStats.read` (or its failure) and the circuits' states. @internal */
export const sharedView = (input: {
  readonly at: number
  readonly self: string
  readonly read: RedisStats.Shared | undefined
  readonly error: string | undefined
  readonly limits: ReadonlyArray<LimitRow>
  readonly circuits: ReadonlyArray<CircuitRow>
}): Shared => {
  const read = input.read
  const perServer = new Map<string, { hits: number; misses: number; calls: number }>()
  const replicas = (read?.replicas ?? []).map((r) => {
    let calls = 0
    let hits = 0
    let misses = 0
    for (const [server, f] of Object.entries(r.servers)) {
      calls += f.calls
      hits += f.hits
      misses += f.misses
      const sum = perServer.get(server) ?? { hits: 0, misses: 0, calls: 0 }
      sum.hits += f.hits
      sum.misses += f.misses
      sum.calls += f.calls
      perServer.set(server, sum)
    }
    return {
      id: r.id,
      name: r.name ?? null,
      self: r.id === input.self,
      ageMillis: r.ageMillis,
      calls,
      hits,
      misses,
      hitRate: ratio(hits, misses)
    }
  })
  let hits = 0
  let misses = 0
  let entries = 0
  let bytes = 0
  for (const f of perServer.values()) {
    hits += f.hits
    misses += f.misses
  }
  const names = new Set([...perServer.keys(), ...Object.keys(read?.cache ?? {})])
  const servers = [...names].sort().map((server) => {
    const f = perServer.get(server) ?? { hits: 0, misses: 0, calls: 0 }
    const size = read?.cache[server] ?? { entries: 0, bytes: 0 }
    entries += size.entries
    bytes += size.bytes
    return {
      server,
      calls: f.calls,
      hits: f.hits,
      misses: f.misses,
      hitRate: ratio(f.hits, f.misses),
      entries: size.entries,
      bytes: size.bytes
    }
  })
  return {
    at: read?.at ?? input.at,
    error: input.error ?? null,
    replicas,
    cache: read === undefined ? null : { entries, bytes, hits, misses, hitRate: ratio(hits, misses) },
    servers,
    limits: input.limits.map((l, i) => ({
      server: l.server,
      tool: l.tool ?? null,
      window: l.window,
      limit: l.limit,
      used: read?.limits[i] ?? null
    })),
    circuits: input.circuits
  }
}

const ratio = (hits: number, misses: number) => hits + misses === 0 ? null : round((hits / (hits + misses)) * 100)

const rules: ReadonlyArray<{ readonly rule: MetricsSnapshot.AlertRule; readonly label: string }> = [
  { rule: "error_rate", label: "Error rate" },
  { rule: "latency", label: "p95 latency" },
  { rule: "cache_hit_rate", label: "Cache hit rate" },
  { rule: "pool_saturated", label: "Pool saturated" },
  { rule: "circuit_open", label: "Circuit open" }
]

const round = (n: number | undefined, digits = 1) => n === undefined ? null : Number(n.toFixed(digits))

/** Keeps the history and builds the state. @internal */
export const makeBuilder = (options: {
  readonly replica: Replica | undefined
  readonly intervalMillis: number
  readonly historyPoints: number
  readonly alertOptions: AlertRules.AlertOptions
}) => {
  const history: Array<Point> = []
  let previous: { calls: number; failures: number } | undefined

  const describeRules = AlertRules.resolve(options.alertOptions)
  const thresholds: Record<MetricsSnapshot.AlertRule, string | false> = {
    error_rate: describeRules.errorRate === false
      ? false
      : `> ${(describeRules.errorRate.threshold * 100).toFixed(0)} % of calls`,
    latency: describeRules.latency === false ? false : `> ${Duration.toMillis(describeRules.latency.p95)} ms`,
    cache_hit_rate: describeRules.cacheHitRate === false
      ? false
      : `< ${(describeRules.cacheHitRate.threshold * 100).toFixed(0)} % hits`,
    pool_saturated: describeRules.poolSaturated === false ? false : "callers waiting for a session",
    circuit_open: describeRules.circuitOpen ? "a server's breaker is open" : false
  }

  /** Records one tick of the chart. */
  const tick = (metrics: MetricsSnapshot.BridgeMetrics, at: number) => {
    let calls = 0
    let failures = 0
    let p95: number | undefined
    for (const s of metrics.servers) {
      calls += s.calls
      failures += s.failures + s.toolErrors
      if (s.p95Millis !== undefined && (p95 === undefined || s.p95Millis > p95)) p95 = s.p95Millis
    }
    if (previous !== undefined) {
      history.push([at, Math.max(0, calls - previous.calls), Math.max(0, failures - previous.failures), round(p95)])
      if (history.length > options.historyPoints) history.shift()
    }
    previous = { calls, failures }
  }

  const build = (
    metrics: MetricsSnapshot.BridgeMetrics,
    status: BridgeStatus.Status,
    shared: Shared | null = null
  ): State => {
    const byServer = new Map(metrics.servers.map((s) => [s.server, s]))
    let hits = 0
    let misses = 0
    let open = 0
    let inUse = 0
    let waiting = 0
    let connecting = 0
    let inFlight = 0
    let calls = 0
    let success = 0
    let p95: number | undefined
    const servers = status.servers.map((s) => {
      const m = byServer.get(s.server)
      hits += m?.cache.hits ?? 0
      misses += m?.cache.misses ?? 0
      open += s.sessions.open
      inUse += s.sessions.inUse
      waiting += s.sessions.waiting
      connecting += s.sessions.connecting
      inFlight += m?.inFlight ?? 0
      calls += m?.calls ?? 0
      success += m?.success ?? 0
      if (m?.p95Millis !== undefined && (p95 === undefined || m.p95Millis > p95)) p95 = m.p95Millis
      const tools = (m?.tools ?? []).filter((t) => t.tool !== "_unknown").map((t) => ({
        tool: t.tool,
        calls: t.calls,
        failures: t.failures + t.toolErrors,
        successRate: round(t.successRate === undefined ? undefined : t.successRate * 100),
        p50: round(t.p50Millis),
        p95: round(t.p95Millis),
        inFlight: t.inFlight
      })).sort((a, b) => b.calls - a.calls || (a.tool < b.tool ? -1 : 1))
      return {
        server: s.server,
        transport: s.transport,
        state: s.state,
        protocolVersion: s.protocolVersion ?? null,
        reason: s.reason === undefined
          ? null
          : { type: s.reason.type, message: s.reason.message, tool: s.reason.tool ?? null, at: s.reason.at },
        circuit: s.circuit === undefined
          ? null
          : { state: s.circuit.state, retryAfterMillis: s.circuit.retryAfterMillis ?? null },
        sessions: s.sessions,
        calls: m?.calls ?? 0,
        failures: (m?.failures ?? 0) + (m?.toolErrors ?? 0),
        successRate: round(m?.successRate === undefined ? undefined : m.successRate * 100),
        p50: round(m?.p50Millis),
        p95: round(m?.p95Millis),
        inFlight: m?.inFlight ?? 0,
        cache: { hits: m?.cache.hits ?? 0, misses: m?.cache.misses ?? 0, hitRate: round(pct(m?.cache.hitRate)) },
        throttle: { waits: m?.throttle.waits ?? 0, rejections: m?.throttle.rejections ?? 0 },
        retries: m?.retries ?? 0,
        tools
      }
    })
    const firing = metrics.alerts.filter((a) => a.state === "firing")
    return {
      at: status.at,
      replica: options.replica,
      intervalMillis: options.intervalMillis,
      servers,
      totals: {
        calls,
        successRate: calls === 0 ? null : round((success / calls) * 100),
        p95: round(p95),
        inFlight
      },
      cache: {
        entries: metrics.cache.entries ?? null,
        bytes: metrics.cache.bytes ?? null,
        hits,
        misses,
        hitRate: hits + misses === 0 ? null : round((hits / (hits + misses)) * 100)
      },
      pool: { sessions: open, inUse, connecting, inFlight, waiting },
      alerts: rules.map(({ label, rule }) => ({
        rule,
        label,
        condition: thresholds[rule] === false ? null : thresholds[rule],
        enabled: thresholds[rule] !== false,
        firing: firing.filter((a) => a.rule === rule).map((a) => ({ server: a.server, message: a.message, at: a.at }))
      })),
      errors: status.failures.slice(-20).reverse().map((f) => ({
        at: f.at,
        server: f.server,
        tool: f.tool ?? null,
        type: f.type,
        message: f.message
      })),
      history,
      shared
    }
  }

  return { tick, build }
}

const pct = (ratio: number | undefined) => ratio === undefined ? undefined : ratio * 100
