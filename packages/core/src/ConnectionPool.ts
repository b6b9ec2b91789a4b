/**
 * Sessions reused, bounded, health-checked, and replaced when they die.
 *
 * Built on Effect's `RcMap` of `Pool`s: one `Pool<McpSession>` per server (per server and caller identity when the
 * server's `isolation` is `"per-identity"`), made with `Pool.makeWithStrategy` and a strategy that retires idle
 * sessions above `min`, replaces sessions past their lifetime, and probes idle sessions on an interval. A session
 * whose transport closes is invalidated at once and replaced. Callers wait in order for a free session up to
 * `acquireTimeout`, then fail with a typed `PoolTimeout`.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Option, Pool, RcMap, Schema, Scope } from "effect"
import { BridgeConfig, type ResolvedServer } from "./BridgeConfig.ts"
import { CallerIdentity } from "./CallerIdentity.ts"
import * as Metrics from "./internal/metrics.ts"
import * as McpAuth from "./McpAuth.ts"
import * as McpSession from "./McpSession.ts"
import { McpTransport } from "./McpTransport.ts"

// -----------------------------------------------------------------------------
// Model
// -----------------------------------------------------------------------------

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

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * No session became free within `acquireTimeout`.
 *
 * @since 0.1.0
 */
export class PoolTimeout extends Schema.TaggedClass<PoolTimeout>()("PoolTimeout", {
  max: Schema.Finite,
  concurrency: Schema.Finite,
  waitedMillis: Schema.Finite
}) {}

/**
 * @since 0.1.0
 */
export class ConnectionPoolError extends Schema.TaggedError<ConnectionPoolError>()("ConnectionPoolError", {
  server: Schema.String,
  reason: Schema.Union([PoolTimeout])
}) {
  override get message(): string {
    const r = this.reason
    return `no session of MCP server "${this.server}" became free within ${r.waitedMillis} ms ` +
      `(${r.max} sessions × ${r.concurrency} requests each, all busy)`
  }
}

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 */
export class ConnectionPool extends Context.Service<ConnectionPool, {
  /**
   * Runs `f` with a session of `server` leased for its duration, for the current `CallerIdentity`. A session that
   * fails with a transport error inside `f` is invalidated and replaced.
   */
  readonly withSession: <A, E, R>(
    server: ResolvedServer,
    f: (session: McpSession.McpSession) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | McpSession.McpSessionError | ConnectionPoolError, R>
  /** The state of every pool. */
  readonly stats: Effect.Effect<ReadonlyArray<PoolStats>>
}>()("@mcp-bridge/core/ConnectionPool") {}

/**
 * @since 0.1.0
 */
export interface Options {
  /** Deadline of a health probe. @default 5 seconds */
  readonly probeTimeout?: Duration.Input | undefined
  /** A server's pool is closed after it has had no caller for this long (its `min` sessions with it). @default infinite */
  readonly unusedPoolTimeToLive?: Duration.Input | undefined
}

interface Counters {
  created: number
  invalidated: number
  connectFailures: number
  lastConnectMillis: number | undefined
  totalConnectMillis: number
}

// Pools are keyed by a string (cheap to hash): the server name, then NUL and the identity for per-identity pools.
const poolKey = (server: string, identity: string | undefined) =>
  identity === undefined ? server : `${server}\u0000${identity}`

const parsePoolKey = (key: string): { readonly server: string; readonly identity: string | undefined } => {
  const nul = key.indexOf("\u0000")
  return nul === -1 ? { server: key, identity: undefined } : { server: key.slice(0, nul), identity: key.slice(nul + 1) }
}

// The `McpAuth` of the layer, if any, for the transports of OAuth-protected servers.
const authContext = Effect.map(
  Effect.serviceOption(McpAuth.McpAuth),
  Option.match({
    onNone: () => Context.empty(),
    onSome: (service) => Context.make(McpAuth.McpAuth, service)
  })
)

const isTransportFailure = (error: unknown): error is McpSession.McpSessionError =>
  error instanceof McpSession.McpSessionError && error.isTransportFailure

/**
 * The strategy behind each pool: a sweep that retires sessions whose transport closed, that aged past `maxLifetime`,
 * or that idled past `idleTimeToLive` above `min`, and probes idle sessions every `healthCheckInterval`.
 */
const sessionStrategy = (
  server: ResolvedServer,
  probeTimeout: Duration.Duration,
  counters: Counters
): Pool.Strategy<McpSession.McpSession, McpSession.McpSessionError> => {
  const lastCheck = new WeakMap<Pool.PoolItem<McpSession.McpSession, McpSession.McpSessionError>, number>()
  const idleMillis = Duration.toMillis(server.pool.idleTimeToLive)
  const lifetimeMillis = Duration.toMillis(server.pool.maxLifetime)
  const healthMillis = Duration.toMillis(server.pool.healthCheckInterval)
  const tick = Math.max(Math.min(idleMillis, lifetimeMillis, healthMillis) / 4, 10)

  const retire = (pool: Pool.Pool<McpSession.McpSession, McpSession.McpSessionError>, session: McpSession.McpSession) =>
    Effect.suspend(() => {
      counters.invalidated++
      return Pool.invalidate(pool, session)
    })

  const sweep = (pool: Pool.Pool<McpSession.McpSession, McpSession.McpSessionError>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      let active = 0
      for (const item of pool.state.items) if (!pool.state.invalidated.has(item)) active++
      const toProbe: Array<McpSession.McpSession> = []
      for (const item of pool.state.items) {
        if (item.exit._tag !== "Success" || pool.state.invalidated.has(item)) continue
        const session = item.exit.value
        if (!session.isOpen() || now - session.openedAt >= lifetimeMillis) {
          active--
          yield* retire(pool, session)
        } else if (item.refCount === 0 && active > pool.config.minSize && now - item.idleSince >= idleMillis) {
          active--
          yield* retire(pool, session)
        } else if (item.refCount === 0 && now - (lastCheck.get(item) ?? session.openedAt) >= healthMillis) {
          lastCheck.set(item, now)
          toProbe.push(session)
        }
      }
      yield* Effect.forEach(toProbe, (session) =>
        session.probe(probeTimeout).pipe(
          Effect.catch((error) =>
            Effect.logDebug(`health probe of a session of "${server.name}" failed: ${error.message}`).pipe(
              Effect.andThen(retire(pool, session))
            )
          )
        ), { concurrency: 4, discard: true })
    })

  return {
    run: (pool) => sweep(pool).pipe(Effect.delay(Duration.millis(tick)), Effect.forever),
    onAcquire: () => Effect.void,
    reclaim: () => Effect.undefined
  }
}

/**
 * Builds the pool service: requires the configuration and a transport.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const config = yield* BridgeConfig
  const transports = yield* McpTransport
  // Sessions are opened with the pool's identity and the `McpAuth` in context (OAuth tokens are per identity).
  const auth = yield* authContext
  const probeTimeout = Duration.fromInputUnsafe(options.probeTimeout ?? "5 seconds")
  const counters = new Map<string, Counters>()
  const priors = new Map<string, McpSession.McpSession["prior"]>()
  const pools = new Map<string, Pool.Pool<McpSession.McpSession, McpSession.McpSessionError>>()

  const countersOf = (key: string): Counters => {
    let c = counters.get(key)
    if (c === undefined) {
      c = { created: 0, invalidated: 0, connectFailures: 0, lastConnectMillis: undefined, totalConnectMillis: 0 }
      counters.set(key, c)
    }
    return c
  }

  const map = yield* RcMap.make({
    lookup: (id: string) =>
      Effect.gen(function*() {
        const server = config.servers.get(parsePoolKey(id).server)!
        const c = countersOf(id)
        let pool: Pool.Pool<McpSession.McpSession, McpSession.McpSessionError> | undefined
        const acquire = Effect.gen(function*() {
          const session = yield* McpSession.make(server, { prior: priors.get(server.name) }).pipe(
            Effect.tapError(() =>
              Effect.andThen(Effect.sync(() => c.connectFailures++), Metrics.sessionConnect(server.name, "failure", 0))
            )
          )
          priors.set(server.name, session.prior)
          c.created++
          c.lastConnectMillis = session.connectMillis
          c.totalConnectMillis += session.connectMillis
          yield* Metrics.sessionConnect(server.name, "success", session.connectMillis / 1000)
          yield* Effect.addFinalizer(() =>
            Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Metrics.sessionClosed(
                server.name,
                Metrics.networkTransport(session.transport),
                session.protocolVersion,
                (now - session.openedAt) / 1000
              ))
          )
          // A session whose transport closes is retired at once, not at the next sweep.
          const scope = yield* Scope.Scope
          yield* Effect.forkIn(
            session.closed.pipe(
              Effect.andThen(Effect.suspend(() => {
                if (pool === undefined) return Effect.void
                c.invalidated++
                return Pool.invalidate(pool, session)
              }))
            ),
            scope
          )
          return session
        }).pipe(
          Effect.provideService(McpTransport, transports),
          Effect.provideService(CallerIdentity, parsePoolKey(id).identity),
          Effect.provideContext(auth)
        )
        pool = yield* Pool.makeWithStrategy({
          acquire,
          min: server.pool.min,
          max: server.pool.max,
          concurrency: server.pool.concurrency,
          strategy: sessionStrategy(server, probeTimeout, c)
        })
        pools.set(id, pool)
        yield* Effect.addFinalizer(() => Effect.sync(() => pools.delete(id)))
        return pool
      }),
    idleTimeToLive: options.unusedPoolTimeToLive ?? Duration.infinity
  })

  // Pool gauges, read when metrics are collected (summed over a server's per-identity pools): no cost per call.
  const poolGauge =
    (server: string, read: (pool: Pool.Pool<McpSession.McpSession, McpSession.McpSessionError>) => number) => () => {
      let total = 0
      for (const [id, pool] of pools) if (parsePoolKey(id).server === server) total += read(pool)
      return total
    }
  const countItems = (pool: Pool.Pool<McpSession.McpSession, McpSession.McpSessionError>, used: boolean) => {
    let n = 0
    for (const item of pool.state.items) if (item.exit._tag === "Success" && (item.refCount > 0) === used) n++
    return n
  }
  for (const server of config.servers.values()) {
    const d = Metrics.definitions
    const attrs = { [Metrics.Attr.server]: server.name }
    yield* Metrics.observeGauges([
      [
        Metrics.gaugeOf(d.poolSessions, { ...attrs, [Metrics.Attr.sessionState]: "idle" }),
        poolGauge(server.name, (pool) => countItems(pool, false))
      ],
      [
        Metrics.gaugeOf(d.poolSessions, { ...attrs, [Metrics.Attr.sessionState]: "used" }),
        poolGauge(server.name, (pool) => countItems(pool, true))
      ],
      [Metrics.gaugeOf(d.poolPending, attrs), poolGauge(server.name, (pool) => pool.state.waiters.size)],
      [Metrics.gaugeOf(d.poolMax, attrs), () => server.pool.max]
    ])
  }

  // Warm `min` sessions of every shared pool from start-up.
  for (const server of config.servers.values()) {
    if (server.pool.min > 0 && server.pool.isolation === "shared") {
      yield* RcMap.get(map, poolKey(server.name, undefined))
    }
  }

  // Leases a session of `pool` for `f`, and retires it if `f` fails on its transport.
  const lease = <A, E, R>(
    server: ResolvedServer,
    id: string,
    pool: Pool.Pool<McpSession.McpSession, McpSession.McpSessionError>,
    f: (session: McpSession.McpSession) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | McpSession.McpSessionError | ConnectionPoolError, R | Scope.Scope> => {
    // A free session is leased at once; only a caller that has to wait gets the deadline (and its timer).
    const free = pool.state.waiters.size === 0 && pool.state.availableHead?.exit._tag === "Success"
    const get = free ? Pool.get(pool) : Pool.get(pool).pipe(
      Effect.timeoutOrElse({
        duration: server.pool.acquireTimeout,
        orElse: () =>
          Effect.fail(
            new ConnectionPoolError({
              server: server.name,
              reason: new PoolTimeout({
                max: server.pool.max,
                concurrency: server.pool.concurrency,
                waitedMillis: Duration.toMillis(server.pool.acquireTimeout)
              })
            })
          )
      })
    )
    return Effect.flatMap(get, (session) =>
      f(session).pipe(
        Effect.tapError((error) =>
          isTransportFailure(error)
            ? Effect.suspend(() => {
              countersOf(id).invalidated++
              return Pool.invalidate(pool, session)
            })
            : Effect.void
        )
      ))
  }

  // With the default `unusedPoolTimeToLive` (never), a pool lives as long as the layer once opened, so a call can
  // take it from `pools` without an `RcMap` reference of its own.
  const poolsStay = options.unusedPoolTimeToLive === undefined

  const withSession = <A, E, R>(
    server: ResolvedServer,
    f: (session: McpSession.McpSession) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | McpSession.McpSessionError | ConnectionPoolError, R> =>
    Effect.withFiber((fiber) => {
      const identity = server.pool.isolation === "per-identity" ? fiber.getRef(CallerIdentity) : undefined
      const id = poolKey(server.name, identity)
      const open = poolsStay ? pools.get(id) : undefined
      return Effect.scoped(
        open !== undefined
          ? lease(server, id, open, f)
          : Effect.flatMap(RcMap.get(map, id), (pool) => lease(server, id, pool, f))
      )
    })

  const stats = Effect.gen(function*() {
    const out: Array<PoolStats> = []
    for (const id of yield* RcMap.keys(map)) {
      const key = parsePoolKey(id)
      const pool = pools.get(id)
      if (pool === undefined) continue
      const s = yield* Pool.stats(pool)
      const c = countersOf(id)
      out.push({
        server: key.server,
        identity: key.identity,
        idle: s.idle,
        inUse: s.used,
        pending: s.pending,
        min: s.min,
        max: s.max,
        created: c.created,
        invalidated: c.invalidated,
        connectFailures: c.connectFailures,
        lastConnectMillis: c.lastConnectMillis,
        meanConnectMillis: c.created > 0 ? c.totalConnectMillis / c.created : undefined
      })
    }
    return out
  })

  return ConnectionPool.of({ withSession, stats })
})

/**
 * Pooled sessions for every server of the configuration.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<ConnectionPool, never, BridgeConfig | McpTransport> =>
  Layer.effect(ConnectionPool, make(options))

/**
 * No pooling: a new session for every call, closed after it (the naive pattern, for comparison).
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<ConnectionPool, never, McpTransport> = Layer.effect(
  ConnectionPool,
  Effect.gen(function*() {
    const transports = yield* McpTransport
    const auth = yield* authContext
    return ConnectionPool.of({
      withSession: (server, f) =>
        Effect.scoped(
          McpSession.make(server).pipe(
            Effect.provideService(McpTransport, transports),
            Effect.provideContext(auth),
            Effect.flatMap(f)
          )
        ),
      stats: Effect.succeed([])
    })
  })
)
