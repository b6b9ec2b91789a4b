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
import { Clock, Context, Duration, Effect, Exit, Layer, Option, Pool, RcMap, Schema, Scope } from "effect"
import { BridgeConfig, type ResolvedServer } from "./BridgeConfig.ts"
import { CallerIdentity } from "./CallerIdentity.ts"
import * as Metrics from "./internal/metrics.ts"
import * as McpSession from "./McpSession.ts"
import { McpSessionError } from "./McpSessionError.ts"
import { McpTransport } from "./McpTransport.ts"
import { MetricsRecorder, noop } from "./MetricsRecorder.ts"

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
  server: Schema.String,
  max: Schema.Finite,
  concurrency: Schema.Finite,
  waitedMillis: Schema.Finite
}) {}

/**
 * Why the pool could not lease a session: `PoolTimeout`.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([PoolTimeout])

/**
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * The pool could not lease a session in time. Failures to open a session are `McpSessionError`s.
 *
 * @since 0.1.0
 */
export class ConnectionPoolError extends Schema.TaggedError<ConnectionPoolError>()("ConnectionPoolError", {
  reason: Reason
}) {
  override get message(): string {
    const r = this.reason
    return `no session of MCP server "${r.server}" became free within ${r.waitedMillis} ms ` +
      `(${r.max} sessions × ${r.concurrency} requests each, all busy)`
  }

  /**
   * The server whose pool is saturated.
   */
  get server(): string {
    return this.reason.server
  }
}

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * The connection pool, at the bottom of the pipeline: every call runs on a leased session of its server.
 *
 * @since 0.1.0
 */
export class ConnectionPool extends Context.Service<ConnectionPool, ConnectionPool.Service>()(
  "@mcp-bridge/core/ConnectionPool"
) {}

/**
 * @since 0.1.0
 */
export declare namespace ConnectionPool {
  /**
   * @since 0.1.0
   */
  export interface Service {
    /**
     * Runs `f` with a session of `server` leased for its duration, for the current `CallerIdentity`. A session that
     * fails with a transport error inside `f` is invalidated and replaced. With `traceWait`, a caller that has to
     * wait for a session gets a span (`mcp_bridge.session.wait`) for the wait.
     */
    readonly withSession: <A, E, R>(
      server: ResolvedServer,
      f: (session: McpSession.McpSession) => Effect.Effect<A, E, R>,
      traceWait?: boolean
    ) => Effect.Effect<A, E | McpSessionError | ConnectionPoolError, R>
    /** The state of every pool. */
    readonly stats: Effect.Effect<ReadonlyArray<PoolStats>>
  }
}

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

const isTransportFailure = (error: unknown): error is McpSessionError =>
  error instanceof McpSessionError && error.isTransportFailure

type SessionPool = Pool.Pool<McpSession.McpSession, McpSessionError>

/**
 * The strategy behind each pool: a sweep that retires sessions whose transport closed, that aged past `maxLifetime`,
 * or that idled past `idleTimeToLive` above `min`, and probes idle sessions every `healthCheckInterval`.
 */
const sessionStrategy = (
  server: ResolvedServer,
  probeTimeout: Duration.Duration,
  retire: (pool: SessionPool, session: McpSession.McpSession) => Effect.Effect<void>
): Pool.Strategy<McpSession.McpSession, McpSessionError> => {
  const lastCheck = new WeakMap<Pool.PoolItem<McpSession.McpSession, McpSessionError>, number>()
  const idleMillis = Duration.toMillis(server.pool.idleTimeToLive)
  const lifetimeMillis = Duration.toMillis(server.pool.maxLifetime)
  const healthMillis = Duration.toMillis(server.pool.healthCheckInterval)
  const tick = Math.max(Math.min(idleMillis, lifetimeMillis, healthMillis) / 4, 10)

  const sweep = (pool: SessionPool) =>
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
  const recorder = Option.getOrElse(yield* Effect.serviceOption(MetricsRecorder), () => noop)
  const probeTimeout = Duration.fromInputUnsafe(options.probeTimeout ?? "5 seconds")
  const counters = new Map<string, Counters>()
  const priors = new Map<string, McpSession.McpSession["prior"]>()
  const pools = new Map<string, SessionPool>()

  // A session is retired once, and counted once, whichever of its failed call, its transport's close or the sweep
  // sees it die first.
  const retired = new WeakSet<McpSession.McpSession>()
  const retire = (id: string) => (pool: SessionPool, session: McpSession.McpSession): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (retired.has(session)) return Effect.void
      retired.add(session)
      countersOf(id).invalidated++
      return Pool.invalidate(pool, session)
    })

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
        let pool: SessionPool | undefined
        const acquire = Effect.gen(function*() {
          const session = yield* McpSession.make(server, { prior: priors.get(server.name) }).pipe(
            Effect.tapError(() =>
              Effect.sync(() => {
                c.connectFailures++
                recorder.sessionConnectFailed(server.name)
              })
            )
          )
          priors.set(server.name, session.prior)
          c.created++
          c.lastConnectMillis = session.connectMillis
          c.totalConnectMillis += session.connectMillis
          recorder.sessionConnected(server.name, session.connectMillis / 1000)
          yield* Effect.addFinalizer(() =>
            Effect.map(Clock.currentTimeMillis, (now) =>
              recorder.sessionClosed(
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
              Effect.andThen(Effect.suspend(() => pool === undefined ? Effect.void : retire(id)(pool, session)))
            ),
            scope
          )
          return session
        }).pipe(Effect.provideService(McpTransport, transports))
        pool = yield* Pool.makeWithStrategy({
          acquire,
          min: server.pool.min,
          max: server.pool.max,
          concurrency: server.pool.concurrency,
          strategy: sessionStrategy(server, probeTimeout, retire(id))
        })
        pools.set(id, pool)
        yield* Effect.addFinalizer(() => Effect.sync(() => pools.delete(id)))
        return pool
      }),
    idleTimeToLive: options.unusedPoolTimeToLive ?? Duration.infinity
  })

  // Pool gauges, read when metrics are collected (summed over a server's per-identity pools): no cost per call.
  const poolGauge = (server: string, read: (pool: SessionPool) => number) => () => {
    let total = 0
    for (const [id, pool] of pools) if (parsePoolKey(id).server === server) total += read(pool)
    return total
  }
  const countItems = (pool: SessionPool, used: boolean) => {
    let n = 0
    for (const item of pool.state.items) if (item.exit._tag === "Success" && (item.refCount > 0) === used) n++
    return n
  }
  if (recorder.enabled) {
    const d = Metrics.definitions
    for (const server of config.servers.values()) {
      const attrs = { [Metrics.Attr.server]: server.name }
      const remove = recorder.observe([
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
      yield* Effect.addFinalizer(() => Effect.sync(remove))
    }
  }

  // Warm `min` sessions of every shared pool from start-up.
  for (const server of config.servers.values()) {
    if (server.pool.min > 0 && server.pool.isolation === "shared") {
      yield* RcMap.get(map, poolKey(server.name, undefined))
    }
  }

  const waitSpans = new Map<string, { readonly kind: "internal"; readonly attributes: Record<string, string> }>()
  const waitSpanOptions = (server: string) => {
    let options = waitSpans.get(server)
    if (options === undefined) {
      waitSpans.set(server, options = { kind: "internal", attributes: { [Metrics.Attr.server]: server } })
    }
    return options
  }

  // No free session: wait for one (FIFO, in `Pool`), up to `acquireTimeout`. The deadline bounds the wait only, not
  // the call: once a session is leased, the timer's side never completes.
  const waitThenUse = <A, E, R>(
    server: ResolvedServer,
    pool: SessionPool,
    run: (session: McpSession.McpSession) => Effect.Effect<A, E, R>,
    traceWait: boolean
  ): Effect.Effect<A, E | McpSessionError | ConnectionPoolError, R> =>
    Effect.suspend(() => {
      let leased = false
      const timeout = Effect.sleep(server.pool.acquireTimeout).pipe(
        Effect.andThen(Effect.suspend(() =>
          leased ? Effect.never : Effect.fail(
            new ConnectionPoolError({
              reason: new PoolTimeout({
                server: server.name,
                max: server.pool.max,
                concurrency: server.pool.concurrency,
                waitedMillis: Duration.toMillis(server.pool.acquireTimeout)
              })
            })
          )
        ))
      )
      if (!traceWait) {
        return Effect.raceFirst(
          Pool.use(pool, (session) => {
            leased = true
            return run(session)
          }),
          timeout
        )
      }
      return Effect.flatMap(Effect.makeSpan("mcp_bridge.session.wait", waitSpanOptions(server.name)), (wait) =>
        Effect.withFiber((fiber) => {
          const clock = fiber.getRef(Clock.Clock)
          return Effect.raceFirst(
            Pool.use(pool, (session) => {
              leased = true
              wait.end(clock.currentTimeNanosUnsafe(), Exit.void)
              return run(session)
            }),
            timeout
          ).pipe(
            Effect.onExit((exit) =>
              Effect.sync(() => leased || wait.end(clock.currentTimeNanosUnsafe(), exit))
            )
          )
        }))
    })

  // Leases a session of `pool` for `f`, and retires it if `f` fails on its transport. A free session is leased at
  // once; only a caller that has to wait gets a deadline (and its timer).
  const lease = <A, E, R>(
    server: ResolvedServer,
    id: string,
    pool: SessionPool,
    f: (session: McpSession.McpSession) => Effect.Effect<A, E, R>,
    traceWait: boolean
  ): Effect.Effect<A, E | McpSessionError | ConnectionPoolError, R> => {
    const run = (session: McpSession.McpSession) =>
      f(session).pipe(
        Effect.tapError((error) => isTransportFailure(error) ? retire(id)(pool, session) : Effect.void)
      )
    const free = pool.state.waiters.size === 0 && pool.state.availableHead?.exit._tag === "Success"
    return free ? Pool.use(pool, run) : waitThenUse(server, pool, run, traceWait)
  }

  // With the default `unusedPoolTimeToLive` (never), a pool lives as long as the layer once opened, so a call can
  // take it from `pools` without an `RcMap` reference of its own.
  const poolsStay = options.unusedPoolTimeToLive === undefined

  const withSession = <A, E, R>(
    server: ResolvedServer,
    f: (session: McpSession.McpSession) => Effect.Effect<A, E, R>,
    traceWait = false
  ): Effect.Effect<A, E | McpSessionError | ConnectionPoolError, R> =>
    Effect.withFiber((fiber) => {
      const identity = server.pool.isolation === "per-identity" ? fiber.getRef(CallerIdentity) : undefined
      const id = poolKey(server.name, identity)
      const open = poolsStay ? pools.get(id) : undefined
      return open !== undefined
        ? lease(server, id, open, f, traceWait)
        : Effect.scoped(Effect.flatMap(RcMap.get(map, id), (pool) => lease(server, id, pool, f, traceWait)))
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

  return { withSession, stats } satisfies ConnectionPool.Service
})

/**
 * Pooled sessions for every server of the configuration: what `McpBridge.layer` uses.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<ConnectionPool, never, BridgeConfig | McpTransport> =>
  Layer.effect(ConnectionPool, make(options))

/**
 * No pooling: a new session for every call, closed after it. The naive pattern, for comparison in benchmarks and
 * for servers that cannot serve two calls on one session.
 *
 * @since 0.1.0
 */
export const layerUnpooled: Layer.Layer<ConnectionPool, never, McpTransport> = Layer.effect(
  ConnectionPool,
  Effect.gen(function*() {
    const transports = yield* McpTransport
    return {
      withSession: (server, f) =>
        Effect.scoped(
          McpSession.make(server).pipe(Effect.provideService(McpTransport, transports), Effect.flatMap(f))
        ),
      stats: Effect.succeed([])
    } satisfies ConnectionPool.Service
  })
)
