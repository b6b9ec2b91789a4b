/**
 * The state of each server as a person reads it: connected, connecting, failing with the typed reason, circuit open
 * with the time left, rate-limited, or idle; with its transport, the protocol version its last session negotiated, its
 * sessions, and the recent failures of the whole bridge. What a dashboard or a health report shows.
 *
 * A read-only view over what the services in context already keep (the `ConnectionPool`'s stats and the
 * `MetricsRecorder`'s journal), so it costs nothing per call. Every message is scrubbed of the servers' secrets (the
 * values of their `env` and `headers`) before it leaves, as in errors, spans and logs.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Option } from "effect"
import { BridgeConfig, transportKind } from "../config/BridgeConfig.ts"
import { scrub } from "../internal/scrub.ts"
import { secretValues } from "../internal/secrets.ts"
import { ConnectionPool } from "../pool/ConnectionPool.ts"
import { MetricsRecorder } from "../telemetry/MetricsRecorder.ts"
import type { Failure } from "../telemetry/MetricsRecorder.ts"

/**
 * What a server is doing now, in the order a person looks for trouble: `circuit_open` (calls fail fast until the time
 * left), `failing` (its last outcome was a failure of its own: connect, transport, timeout, protocol), `rate_limited`
 * (the throttler refused a call in the last 5 seconds), `connecting` (a session is being opened and none is open),
 * `connected` (a session is open, or it answered last), `idle` (nothing opened yet).
 *
 * @since 0.1.0
 */
export type State = "circuit_open" | "failing" | "rate_limited" | "connecting" | "connected" | "idle"

/**
 * The state of one server.
 *
 * @since 0.1.0
 */
export interface ServerStatus {
  readonly server: string
  readonly transport: "stdio" | "http" | "sse" | "memory"
  readonly state: State
  /** The protocol version negotiated by its last session, once one opened. */
  readonly protocolVersion: string | undefined
  /** The failure that makes it `failing` (or, with an open circuit, the last one), scrubbed. */
  readonly reason: Failure | undefined
  /** Its circuit breaker, when it has one: the state and, when open, the milliseconds left. */
  readonly circuit:
    | { readonly state: "closed" | "open" | "half_open"; readonly retryAfterMillis: number | undefined }
    | undefined
  /** Sessions open, in use and being opened, and callers waiting (summed over per-identity pools). */
  readonly sessions: {
    readonly open: number
    readonly inUse: number
    readonly connecting: number
    readonly waiting: number
  }
  readonly lastSuccessAt: number | undefined
  readonly rateLimitedAt: number | undefined
}

/**
 * Every server's state, and the recent failures (newest last, scrubbed), at `at` (the Clock's epoch millis).
 *
 * @since 0.1.0
 */
export interface Status {
  readonly at: number
  readonly servers: ReadonlyArray<ServerStatus>
  readonly failures: ReadonlyArray<Failure>
}

// Failures that say nothing of the server's health: the bridge's own refusals and the caller's mistakes.
const notTheServer = new Set([
  "RateLimited",
  "ConcurrencyLimited",
  "LimitStoreUnavailable",
  "CircuitOpen",
  "PoolTimeout",
  "InvalidCall",
  "UnknownTool",
  "UnknownServer",
  "Rejected",
  "Aborted",
  "BridgeClosed",
  "HandlerFailed",
  "Interrupted"
])

const rateLimitedFor = 5_000

/**
 * Reads every configured server's state from the services in context (without a `MetricsRecorder`, from the pool
 * alone).
 *
 * @example
 * ```ts
 * const status = yield* BridgeStatus.read
 * for (const s of status.servers) console.log(s.server, s.state, s.reason?.message)
 * ```
 *
 * @since 0.1.0
 */
export const read: Effect.Effect<Status, never, BridgeConfig | ConnectionPool> = Effect.gen(function*() {
  const config = yield* BridgeConfig
  const pool = yield* ConnectionPool
  const recorder = yield* Effect.serviceOption(MetricsRecorder)
  const now = yield* Clock.currentTimeMillis
  const stats = yield* pool.stats
  const journal = Option.isSome(recorder) ? recorder.value.journal() : { servers: [], failures: [] }
  const journals = new Map(journal.servers.map((j) => [j.server, j]))
  const cleaners = new Map<string, (f: Failure) => Failure>()
  for (const server of config.servers.values()) {
    const secrets = secretValues(server)
    cleaners.set(server.name, (f) => ({ ...f, message: scrub(f.message, secrets) }))
  }
  const clean = (f: Failure | undefined) =>
    f === undefined ? undefined : (cleaners.get(f.server) ?? ((f: Failure) => f))(f)

  const servers = Array.from(config.servers.values(), (server): ServerStatus => {
    const j = journals.get(server.name)
    const sessions = { open: 0, inUse: 0, connecting: 0, waiting: 0 }
    for (const s of stats) {
      if (s.server !== server.name) continue
      sessions.open += s.idle + s.inUse
      sessions.inUse += s.inUse
      sessions.connecting += s.connecting
      sessions.waiting += s.pending
    }
    const last = j?.lastFailure
    const answeredSince = (at: number) =>
      (j?.lastSuccessAt !== undefined && j.lastSuccessAt >= at) || (j?.connectedAt !== undefined && j.connectedAt > at)
    const failing = last !== undefined && !notTheServer.has(last.type) && !answeredSince(last.at)
    const circuit = j?.circuit === undefined ? undefined : {
      state: j.circuit,
      retryAfterMillis: j.circuit === "open" && j.circuitOpenUntil !== undefined
        ? Math.max(0, j.circuitOpenUntil - now)
        : undefined
    }
    const rateLimited = j?.rateLimitedAt !== undefined && now - j.rateLimitedAt < rateLimitedFor
    const state: State = circuit?.state === "open"
      ? "circuit_open"
      : failing
      ? "failing"
      : rateLimited
      ? "rate_limited"
      : sessions.connecting > 0 && sessions.open === 0
      ? "connecting"
      : sessions.open > 0 || j?.lastSuccessAt !== undefined
      ? "connected"
      : "idle"
    return {
      server: server.name,
      transport: transportKind(server.transport),
      state,
      protocolVersion: j?.protocolVersion,
      reason: state === "failing" || state === "circuit_open" ? clean(last) : undefined,
      circuit,
      sessions,
      lastSuccessAt: j?.lastSuccessAt,
      rateLimitedAt: j?.rateLimitedAt
    }
  })
  return { at: now, servers, failures: journal.failures.map((f) => clean(f)!) }
})
