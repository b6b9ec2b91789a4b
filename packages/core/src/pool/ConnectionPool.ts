/**
 * Sessions reused, bounded, health-checked, and replaced when they die.
 *
 * Built on Effect's `RcMap` of `Pool`s: one `Pool<McpSession>` per server (per server and caller identity when the
 * server's `isolation` is `"per-identity"`), made with `Pool.makeWithStrategy` and a strategy that retires idle
 * sessions above `min`, replaces sessions past their lifetime and probes idle ones. Calls lease a session with
 * `Pool.use`, waiting in order within `acquireTimeout` and their call's deadline. A call that times out is cancelled
 * on the wire and its session probed: kept when it answers, replaced when it does not. The pool also provides the
 * bottom of the pipeline (`toolCaller`).
 *
 * Growth by measurement, per-identity sharing and eviction: docs/design.md, "The connection pool".
 *
 * @since 0.1.0
 */
import {
  Clock,
  Context,
  Duration,
  Effect,
  Exit,
  type Fiber,
  Layer,
  Option,
  Pool,
  RcMap,
  Scope,
  Semaphore
} from "effect"
import { CallerIdentity } from "../auth/CallerIdentity.ts"
import * as McpAuth from "../auth/McpAuth.ts"
import { BridgeConfig, type ResolvedServer } from "../config/BridgeConfig.ts"
import type { ConnectionPoolError } from "../errors/ConnectionPoolError.ts"
import { McpBridgeError, UnknownServer } from "../errors/McpBridgeError.ts"
import { McpSessionError } from "../errors/McpSessionError.ts"
import * as Metrics from "../internal/metrics.ts"
import type { CallRequest, ToolCaller } from "../pipeline/ToolCaller.ts"
import * as McpSession from "../session/McpSession.ts"
import { McpTransport } from "../session/McpTransport.ts"
import { MetricsRecorder, noop } from "../telemetry/MetricsRecorder.ts"
import type * as MetricsSnapshot from "../telemetry/MetricsSnapshot.ts"
import * as PoolWait from "./internal/poolWait.ts"
import * as SessionStrategy from "./internal/sessionStrategy.ts"
import * as Wire from "./internal/wire.ts"

type SessionPool = SessionStrategy.SessionPool

// -----------------------------------------------------------------------------
// Model
// -----------------------------------------------------------------------------

/**
 * The state of one pool: sessions idle, in use and connecting, callers waiting, and connect figures
 * (`MetricsSnapshot.PoolStats`).
 *
 * @since 0.1.0
 */
export type PoolStats = MetricsSnapshot.PoolStats

export {
  /**
   * The pool could not lease a session in time (see `ConnectionPoolError.ts`).
   *
   * @since 0.1.0
   */
  ConnectionPoolError,
  /**
   * No session became free within `acquireTimeout`.
   *
   * @since 0.1.0
   */
  PoolTimeout,
  /**
   * Why the pool could not lease a session.
   *
   * @since 0.1.0
   */
  Reason
} from "../errors/ConnectionPoolError.ts"

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
 * The type of the pool service, `ConnectionPool.Service`.
 *
 * @since 0.1.0
 */
export declare namespace ConnectionPool {
  /**
   * What the pool offers: `withSession` leases a session of a server for one piece of work (the bottom of the pipeline
   * and the router's `tools/list` use it), and `stats` reports every pool. `layer` pools sessions and `layerUnpooled`
   * opens one per call; implement it yourself only to replace session management altogether.
   *
   * @since 0.1.0
   */
  export interface Service {
    /**
     * Runs `f` with a session of `server` leased for its duration, for the current `CallerIdentity`. A session that
     * fails with a transport error inside `f` is invalidated and replaced; one on which `f` timed out is suspect
     * (see the module). With `call`, the wait is bounded by the call's deadline too, and a traced call
     * (`traced: "wire"`) gets a span for the wait, when it has to wait.
     */
    readonly withSession: <A, E, R>(
      server: ResolvedServer,
      f: (session: McpSession.McpSession) => Effect.Effect<A, E, R>,
      call?: CallRequest
    ) => Effect.Effect<A, E | McpSessionError | ConnectionPoolError | McpBridgeError, R>
    /** The state of every pool. */
    readonly stats: Effect.Effect<ReadonlyArray<PoolStats>>
    /**
     * Takes `server`'s pools out of service and closes them once the work on them has ended: calls already leasing
     * (or waiting for) one of its sessions finish on it, then its sessions close (a stdio server's process ends). From
     * the start of the drain, a lease for a newer configuration of the same name opens new pools; a late lease for
     * `server` itself goes to the newer configuration, or fails with `UnknownServer` when the name is gone. Completes
     * when the pools are closed. What `McpBridge`'s `reconfigure` uses for removed and changed servers.
     */
    readonly drain: (server: ResolvedServer) => Effect.Effect<void>
  }
}

/**
 * Options of `ConnectionPool.layer` (the `pool` option of `McpBridge.layer`) that apply to every server: the probe
 * deadline, how long unused pools live, and how many sessions of a server open at once. Sizes and timeouts per server
 * (`min`, `max`, `acquireTimeout`...) are in its `bridge.pool`.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Deadline of a health probe, and of the probe of a suspect session. @default 5 seconds */
  readonly probeTimeout?: Duration.Input | undefined
  /** A server's pool is closed after it has had no caller for this long (its `min` sessions with it). @default infinite */
  readonly unusedPoolTimeToLive?: Duration.Input | undefined
  /** With per-identity isolation, an identity's pool is closed after it has had no caller for this long. @default 1 minute */
  readonly identityPoolTimeToLive?: Duration.Input | undefined
  /** Sessions of one server being opened at once, at most. @default 8 */
  readonly connectConcurrency?: number | undefined
}

interface Counters {
  created: number
  invalidated: number
  connectFailures: number
  connecting: number
  lastConnectMillis: number | undefined
  totalConnectMillis: number
  /** How long a lease lasts (exponentially weighted), for the growth rule; `leases`: how many ended. */
  leaseMillis: number
  leases: number
  /** Callers waiting for a lease to end before the pool may grow, first come first served. */
  readonly releaseWaiters: Array<() => void>
  /** Sessions of this pool queued for a slot under the total cap or for a connect permit. */
  queued: number
  /** When the latest of this pool's sessions started opening. */
  openStartedAt: number
}

interface Gates {
  /** Sessions being opened at once. */
  readonly connect: Semaphore.Semaphore
  /** Sessions over all identities (per-identity isolation): a FIFO queue of identities for `cap` slots. */
  readonly total: Semaphore.Semaphore | undefined
  readonly cap: number
  /** Slots held, sessions queued for a slot, and evictions under way to make room for them. */
  held: number
  waiting: number
  evicting: number
  /** When the server's queues last moved (a slot or a connect permit taken): a queued caller is making progress. */
  movedAt: number
  /** How long opening a session of the server takes (exponentially weighted), for `graceOf`. */
  connectMillis: number | undefined
  /** A timer will look again for sessions to evict, once the youngest idle one has been idle for its grace. */
  retryScheduled: boolean
}

// An idle session is evicted for another identity only after it has been idle as long as opening one takes (between
// 250 ms and 5 s): an identity that calls again sooner would pay more for the eviction than the waiter saves, and the
// grace grows with the machine's own slowness, never with a fixed clock.
const graceOf = (g: { readonly connectMillis: number | undefined }) =>
  Math.min(5_000, Math.max(250, g.connectMillis ?? 0))

// Pools are keyed by a string (cheap to hash): the server name, then NUL and the identity for per-identity pools.
const poolKey = (server: string, identity: string | undefined) =>
  identity === undefined ? server : `${server}\u0000${identity}`

// The anonymous caller of a per-identity server has the key `server NUL` (identity `undefined`, as for the pool's
// sessions and their tokens).
const parsePoolKey = (key: string): { readonly server: string; readonly identity: string | undefined } => {
  const nul = key.indexOf("\u0000")
  return nul === -1 || nul === key.length - 1
    ? { server: nul === -1 ? key : key.slice(0, nul), identity: undefined }
    : { server: key.slice(0, nul), identity: key.slice(nul + 1) }
}

const isTransportFailure = (error: unknown): error is McpSessionError =>
  error instanceof McpSessionError && error.isTransportFailure

// An open session the server no longer knows (HTTP 404/410 for its id): the request never ran, and the session is
// retired by the failure; the work goes again once on another session (a new one, initialized afresh, when it was
// the only one), as the MCP transport specification asks of a client.
const isUnexecuted = (error: unknown): boolean =>
  error instanceof McpSessionError && error.reason._tag === "Closed" && error.reason.notExecuted === true &&
  error.reason.session !== undefined

// The `McpAuth` of the layer, if any, for the transports of OAuth-protected servers.
const authContext = Effect.map(
  Effect.serviceOption(McpAuth.McpAuth),
  Option.match({
    onNone: () => Context.empty(),
    onSome: (service) => Context.make(McpAuth.McpAuth, service)
  })
)

// The session did not answer in time: its own timeout, or the call's deadline cut the attempt short.
const isTimeout = (error: unknown): boolean =>
  (error instanceof McpSessionError && error.reason._tag === "Timeout") ||
  (error instanceof McpBridgeError && error.reason._tag === "DeadlineExceeded" && error.reason.phase === "call")

/**
 * Builds the pool service: requires the configuration and a transport; records through the `MetricsRecorder` in
 * context, if any.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const config = yield* BridgeConfig
  const transports = yield* McpTransport
  const recorder = Option.getOrElse(yield* Effect.serviceOption(MetricsRecorder), () => noop)
  const layerScope = yield* Effect.scope
  // Sessions are opened with the pool's identity and the `McpAuth` in context (OAuth tokens are per identity).
  const auth = yield* authContext
  const probeTimeout = Duration.fromInputUnsafe(options.probeTimeout ?? "5 seconds")
  const identityTtl = Duration.fromInputUnsafe(options.identityPoolTimeToLive ?? "1 minute")
  const unusedTtl = options.unusedPoolTimeToLive === undefined
    ? Duration.infinity
    : Duration.fromInputUnsafe(options.unusedPoolTimeToLive)
  const connectConcurrency = Math.max(1, options.connectConcurrency ?? 8)
  const counters = new Map<string, Counters>()
  const priors = new Map<string, McpSession.McpSession["prior"]>()
  // Per server: its tools known to ask the user during a call (`McpSession.Options.asking`).
  const askingOf = (server: string) => {
    let tools = asking.get(server)
    if (tools === undefined) asking.set(server, tools = new Set())
    return tools
  }
  const asking = new Map<string, Set<string>>()
  const pools = new Map<string, SessionPool>()
  const gates = new Map<string, Gates>()
  const suspects = new WeakSet<McpSession.McpSession>()
  // Pools of servers being drained (taken out of `pools` and the `RcMap`), by the server configuration they serve.
  const draining = new WeakMap<ResolvedServer, Map<string, SessionPool>>()
  const detached = new WeakSet<SessionPool>()
  const scopes = new WeakMap<SessionPool, Scope.Closeable>()
  const unknownServer = (name: string) =>
    new McpBridgeError({ reason: new UnknownServer({ server: name, available: Array.from(config.servers.keys()) }) })
  // Sessions are numbered per pool layer (for logs and errors), never per process.
  let sessionCount = 0

  const countersOf = (key: string): Counters => {
    let c = counters.get(key)
    if (c === undefined) {
      c = {
        created: 0,
        invalidated: 0,
        connectFailures: 0,
        connecting: 0,
        lastConnectMillis: undefined,
        totalConnectMillis: 0,
        leaseMillis: 0,
        leases: 0,
        releaseWaiters: [],
        queued: 0,
        openStartedAt: 0
      }
      counters.set(key, c)
    }
    return c
  }

  const gatesOf = (server: ResolvedServer): Gates => {
    let g = gates.get(server.name)
    if (g === undefined) {
      g = {
        connect: Semaphore.makeUnsafe(connectConcurrency),
        total: server.pool.isolation === "per-identity" ? Semaphore.makeUnsafe(server.pool.maxTotal) : undefined,
        cap: server.pool.maxTotal,
        held: 0,
        waiting: 0,
        evicting: 0,
        movedAt: 0,
        retryScheduled: false,
        connectMillis: undefined
      }
      gates.set(server.name, g)
    }
    return g
  }

  // A session is retired once, and counted once, whichever of its failed call, its transport's close, a timeout or
  // the sweep sees it die first.
  const retired = new WeakSet<McpSession.McpSession>()
  const retire = (id: string) => (pool: SessionPool, session: McpSession.McpSession): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (retired.has(session)) return Effect.void
      retired.add(session)
      countersOf(id).invalidated++
      return Pool.invalidate(pool, session)
    })

  // With the per-identity cap reached, identities queue for a slot first come first served, and idle sessions of
  // other identities make room for them: one eviction, longest idle first, for each queued session that the free slots
  // and the evictions under way do not cover. A session idle for less than its grace (`graceOf`) is spared (it is most
  // likely between two calls of its identity: routing's `tools/list` and the call, or an agent's next call); a timer
  // comes back for it. Run when a session queues and when a lease ends while some are queued.
  const makeRoom = (server: string, g: Gates): Effect.Effect<void> =>
    Effect.clockWith((clock) =>
      Effect.suspend(() => {
        const need = g.waiting - Math.max(0, g.cap - g.held) - g.evicting
        if (need <= 0) return Effect.void
        const now = clock.currentTimeMillisUnsafe()
        const grace = graceOf(g)
        const idle: Array<{ pool: SessionPool; key: string; session: McpSession.McpSession; since: number }> = []
        let youngest = Infinity
        for (const [key, pool] of pools) {
          // an identity with callers queued in its own pool is about to use its idle session
          if (parsePoolKey(key).server !== server || pool.state.waiters.size > 0) continue
          for (const item of pool.state.items) {
            if (item.exit._tag !== "Success" || item.refCount > 0 || pool.state.invalidated.has(item)) continue
            if (now - item.idleSince >= grace) {
              idle.push({ pool, key, session: item.exit.value, since: item.idleSince })
            } else youngest = Math.min(youngest, item.idleSince)
          }
        }
        const victims = idle.sort((a, b) => a.since - b.since).slice(0, need)
        g.evicting += victims.length
        const schedule = victims.length < need && youngest < Infinity && !g.retryScheduled
        if (schedule) g.retryScheduled = true
        const later = schedule
          ? Effect.asVoid(Effect.forkIn(
            Effect.sleep(Duration.millis(youngest + grace - now)).pipe(
              Effect.andThen(Effect.sync(() => g.retryScheduled = false)),
              Effect.andThen(Effect.suspend(() => makeRoom(server, g)))
            ),
            layerScope,
            { startImmediately: true }
          ))
          : Effect.void
        return Effect.andThen(
          later,
          Effect.forEach(
            victims,
            (v) => Effect.ensuring(retire(v.key)(v.pool, v.session), Effect.sync(() => g.evicting--)),
            { discard: true }
          )
        )
      })
    )

  // A slot under the server's total cap for one session of `c`'s pool, held for the session's life.
  const takeSlot = (server: string, g: Gates, total: Semaphore.Semaphore, c: Counters) =>
    Effect.suspend(() => {
      g.waiting++
      c.queued++
      return makeRoom(server, g).pipe(
        Effect.andThen(total.takeScoped(1)),
        Effect.ensuring(Effect.sync(() => {
          g.waiting--
          c.queued--
        })),
        Effect.andThen(Effect.acquireRelease(
          Effect.clockWith((clock) =>
            Effect.sync(() => {
              g.held++
              g.movedAt = clock.currentTimeMillisUnsafe()
            })
          ),
          () => Effect.sync(() => g.held--)
        ))
      )
    })

  const acquireOf = (server: ResolvedServer, id: string, poolRef: { current: SessionPool | undefined }) => {
    const c = countersOf(id)
    const g = gatesOf(server)
    // A session is queued (for a slot, then a connect permit) until it starts opening.
    const open = Effect.suspend(() => {
      let started = false
      c.connecting++
      c.queued++
      const start = Effect.clockWith((clock) =>
        Effect.sync(() => {
          started = true
          c.queued--
          c.openStartedAt = g.movedAt = clock.currentTimeMillisUnsafe()
        })
      )
      return Effect.andThen(
        start,
        McpSession.make(server, {
          prior: priors.get(server.name),
          id: ++sessionCount,
          asking: askingOf(server.name)
        })
      )
        .pipe(
          Effect.tapError((error) =>
            Effect.sync(() => {
              c.connectFailures++
              recorder.sessionConnectFailed(server.name, error)
            })
          ),
          g.connect.withPermit,
          Effect.ensuring(Effect.sync(() => {
            c.connecting--
            if (!started) c.queued--
          }))
        )
    })
    return Effect.gen(function*() {
      if (g.total !== undefined) yield* takeSlot(server.name, g, g.total, c)
      const session = yield* open
      priors.set(server.name, session.prior)
      c.created++
      c.lastConnectMillis = session.connectMillis
      g.connectMillis = g.connectMillis === undefined
        ? session.connectMillis
        : g.connectMillis + (session.connectMillis - g.connectMillis) / 4
      c.totalConnectMillis += session.connectMillis
      recorder.sessionConnected(server.name, session.connectMillis / 1000, session.protocolVersion)
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
      yield* Effect.forkScoped(
        session.closed.pipe(
          Effect.andThen(
            Effect.suspend(() => poolRef.current === undefined ? Effect.void : retire(id)(poolRef.current, session))
          )
        )
      )
      return session
    }).pipe(
      Effect.provideService(McpTransport, transports),
      Effect.provideService(CallerIdentity, parsePoolKey(id).identity),
      Effect.provideContext(auth)
    )
  }

  const map = yield* RcMap.make({
    lookup: (id: string) =>
      Effect.gen(function*() {
        const server = config.servers.get(parsePoolKey(id).server)
        if (server === undefined) return yield* unknownServer(parsePoolKey(id).server)
        observe(server.name)
        const ref: { current: SessionPool | undefined } = { current: undefined }
        // The pool lives in a scope of its own: a drain closes it once its work has ended, after the map let it go.
        const poolScope = yield* Scope.fork(layerScope)
        const pool = yield* Pool.makeWithStrategy({
          acquire: acquireOf(server, id, ref),
          min: server.pool.min,
          max: server.pool.max,
          concurrency: server.pool.concurrency,
          strategy: SessionStrategy.make(server, probeTimeout, retire(id))
        }).pipe(Scope.provide(poolScope))
        ref.current = pool
        pools.set(id, pool)
        scopes.set(pool, poolScope)
        yield* Effect.addFinalizer(() =>
          detached.has(pool) ? Effect.void : Effect.andThen(
            Effect.sync(() => {
              if (pools.get(id) === pool) pools.delete(id)
            }),
            Scope.close(poolScope, Exit.void)
          )
        )
        return pool
      }),
    idleTimeToLive: (id: string) => id.includes("\u0000") ? identityTtl : unusedTtl
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
  // Each server's gauges, from its first pool on (servers added by a reconfiguration included).
  const observed = new Set<string>()
  const removers: Array<() => void> = []
  yield* Effect.addFinalizer(() => Effect.sync(() => removers.forEach((remove) => remove())))
  const observe = (name: string) => {
    if (!recorder.enabled || observed.has(name)) return
    observed.add(name)
    const d = Metrics.definitions
    {
      const server = { name }
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
        [Metrics.gaugeOf(d.poolMax, attrs), () => config.servers.get(name)?.pool.max ?? 0]
      ])
      removers.push(remove)
    }
  }
  for (const server of config.servers.values()) observe(server.name)

  // Warm `min` sessions of every shared pool from start-up.
  for (const server of config.servers.values()) {
    if (server.pool.min > 0 && server.pool.isolation === "shared") {
      yield* Effect.orDie(RcMap.get(map, poolKey(server.name, undefined)))
    }
  }

  // A call timed out on `session` (it was cancelled on the wire): the session is held out of service while a probe
  // checks it (an extra lease, and no capacity left for other callers), and the pool may open another meanwhile. The
  // probe answers: the session is back in service, with whatever its server holds (a page, a transaction, a store).
  // No answer within `probeTimeout`: it is ended at once (a frozen process is killed, its calls in flight fail with
  // `Closed` instead of waiting for their deadlines) and replaced.
  const suspect = (id: string, pool: SessionPool, session: McpSession.McpSession): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (suspects.has(session) || !session.isOpen() || retired.has(session)) return Effect.void
      let item: Pool.PoolItem<McpSession.McpSession, McpSessionError> | undefined
      for (const candidate of pool.state.items) {
        if (candidate.exit._tag === "Success" && candidate.exit.value === session) item = candidate
      }
      if (item === undefined) return Effect.void
      const held = item
      suspects.add(session)
      // Called while the timed-out call still holds its lease: no other caller can take the session in between.
      held.refCount++
      pool.state.usage++
      const hold = Scope.makeUnsafe()
      const probe = session.probe(probeTimeout).pipe(
        Effect.catch(() =>
          Effect.logDebug(`a session of "${session.server}" stopped answering; it is ended and replaced`).pipe(
            Effect.andThen(Effect.sync(() => session.kill())),
            Effect.andThen(retire(id)(pool, session))
          )
        ),
        Effect.ensuring(
          Effect.suspend(() => {
            suspects.delete(session)
            return Effect.andThen(
              Effect.andThen(Scope.close(hold, Exit.void), held.release(Exit.void)),
              Effect.sync(() => countersOf(id).releaseWaiters.shift()?.())
            )
          })
        )
      )
      return Effect.andThen(
        Scope.provide(Pool.reserve(pool, session), hold),
        Effect.asVoid(Effect.forkIn(probe, layerScope, { startImmediately: true }))
      )
    })

  // `effect` on `session` with the session's remaining capacity reserved: no other call joins it until `effect` ends.
  const reserved = <A, E, R>(pool: SessionPool, session: McpSession.McpSession, effect: Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Scope.make(),
      (scope) => Effect.andThen(Scope.provide(Pool.reserve(pool, session), scope), effect),
      (scope, exit) => Scope.close(scope, exit)
    )

  const openCount = (pool: SessionPool) => {
    let n = 0
    for (const item of pool.state.items) if (item.exit._tag === "Success" && !pool.state.invalidated.has(item)) n++
    return n
  }

  // Leases a session of `pool` for `f`; a session that fails on its transport is retired, one that timed out is
  // suspect. A free session is leased at once; only a caller that has to wait gets a deadline (and its timer).
  const lease = <A, E, R>(
    server: ResolvedServer,
    id: string,
    pool: SessionPool,
    f: (session: McpSession.McpSession) => Effect.Effect<A, E, R>,
    call: CallRequest | undefined
  ): Effect.Effect<A, E | McpSessionError | ConnectionPoolError | McpBridgeError, R> => {
    const c = countersOf(id)
    const run = (session: McpSession.McpSession) =>
      Effect.withFiber((fiber) => {
        const clock = fiber.getRef(Clock.Clock)
        const start = clock.currentTimeMillisUnsafe()
        // A call of a tool known to ask the user, on a 2025-era session (where a server's request names no call):
        // no other call joins the session while it runs, so that what the server asks is tied to it.
        const alone = call !== undefined && session.era === "legacy" && asking.get(server.name)?.has(call.tool) === true
        return (alone ? reserved(pool, session, f(session)) : f(session)).pipe(
          Effect.tapError((error) =>
            isTransportFailure(error)
              ? retire(id)(pool, session)
              : isTimeout(error)
              ? suspect(id, pool, session)
              : Effect.void
          ),
          Effect.ensuring(Effect.sync(() => {
            const millis = clock.currentTimeMillisUnsafe() - start
            c.leaseMillis = c.leases++ === 0 ? millis : c.leaseMillis + (millis - c.leaseMillis) / 8
            c.releaseWaiters.shift()?.()
          }))
        )
      })
    const free = pool.state.waiters.size === 0 && pool.state.availableHead?.exit._tag === "Success"
    if (free) return Pool.use(pool, run)
    // No free session: wait for one (internal/poolWait.ts).
    const g = gatesOf(server)
    const wait = PoolWait.waitThenUse(server, pool, run, call, {
      open: () => openCount(pool),
      connecting: () => c.connecting,
      // a queue ahead of this pool's session moved, or its session started opening
      movedAt: () => Math.max(c.queued > 0 ? g.movedAt : 0, c.connecting > c.queued ? c.openStartedAt : 0),
      cap: g.total === undefined ? undefined : () => ({ cap: g.cap, held: g.held, waiting: g.waiting })
    })
    // Every open session is at its `concurrency`. A new one pays off only if that lasts: first wait for a lease to end,
    // up to twice the measured lease time and never longer than opening a session takes; then let the pool grow.
    // Before any lease has ended there is nothing to measure: the pool grows at once.
    const open = openCount(pool)
    if (open === 0 || open >= server.pool.max || c.lastConnectMillis === undefined || c.leases === 0) {
      return wait
    }
    return Effect.clockWith((clock) => {
      const left = call === undefined ? Infinity : call.deadlineAt - clock.currentTimeMillisUnsafe()
      const growAfter = Math.min(Math.max(2 * c.leaseMillis, 1), Math.max(c.lastConnectMillis!, 1), Math.max(0, left))
      return Effect.andThen(PoolWait.releaseOrAfter(c.releaseWaiters, growAfter), wait)
    })
  }

  // With the default `unusedPoolTimeToLive` (never), a shared pool lives as long as the layer once opened, so a call
  // can take it from `pools` without an `RcMap` reference of its own. Per-identity pools close when idle: a call holds
  // a reference.
  const sharedPoolsStay = options.unusedPoolTimeToLive === undefined

  const withSession = <A, E, R>(
    server: ResolvedServer,
    f: (session: McpSession.McpSession) => Effect.Effect<A, E, R>,
    call?: CallRequest
  ): Effect.Effect<A, E | McpSessionError | ConnectionPoolError | McpBridgeError, R> => {
    const once = draining.has(server) ? leaseDraining(server, f, call) : leaseOnce(server, f, call)
    return Effect.catchIf(once, isUnexecuted, () => once)
  }

  // The pool a call on `fiber` leases from: the server's shared one, or its caller's own.
  const poolIdOf = (server: ResolvedServer, perIdentity: boolean, fiber: Fiber.Fiber<unknown, unknown>) =>
    poolKey(server.name, perIdentity ? fiber.getRef(CallerIdentity) ?? "" : undefined)

  // A lease for a server being drained: on its own pools while they are open; after that, on the newer configuration
  // of its name, if there is one.
  const leaseDraining = <A, E, R>(
    server: ResolvedServer,
    f: (session: McpSession.McpSession) => Effect.Effect<A, E, R>,
    call: CallRequest | undefined
  ): Effect.Effect<A, E | McpSessionError | ConnectionPoolError | McpBridgeError, R> =>
    Effect.withFiber((fiber) => {
      const perIdentity = server.pool.isolation === "per-identity"
      const id = poolIdOf(server, perIdentity, fiber)
      const pool = draining.get(server)?.get(id)
      if (pool !== undefined && !pool.state.isShuttingDown) return lease(server, id, pool, f, call)
      const current = config.servers.get(server.name)
      return current === undefined || current === server
        ? Effect.fail(unknownServer(server.name))
        : withSession(current, f, call)
    })

  const drain = (server: ResolvedServer): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (draining.has(server)) return Effect.void
      const own = new Map<string, SessionPool>()
      for (const [id, pool] of pools) if (parsePoolKey(id).server === server.name) own.set(id, pool)
      draining.set(server, own)
      for (const [id, pool] of own) {
        detached.add(pool)
        pools.delete(id)
      }
      // The next lease of this name opens pools of the configuration in force; these end with their work.
      gates.delete(server.name)
      priors.delete(server.name)
      asking.delete(server.name)
      for (const id of own.keys()) counters.delete(id)
      return Effect.forEach(own, ([id, pool]) =>
        Effect.andThen(
          RcMap.invalidate(map, id),
          Effect.andThen(noWaiters(pool), Effect.suspend(() => Scope.close(scopes.get(pool)!, Exit.void)))
        ), { concurrency: "unbounded", discard: true })
    })

  // Callers queued for a session of a pool being drained get one before it closes (closing would interrupt them);
  // leases in progress are waited for by the pool's own shutdown.
  const noWaiters = (pool: SessionPool): Effect.Effect<void> =>
    Effect.suspend(() =>
      pool.state.waiters.size === 0
        ? Effect.void
        : Effect.andThen(Effect.sleep(Duration.millis(10)), noWaiters(pool))
    )

  const leaseOnce = <A, E, R>(
    server: ResolvedServer,
    f: (session: McpSession.McpSession) => Effect.Effect<A, E, R>,
    call: CallRequest | undefined
  ): Effect.Effect<A, E | McpSessionError | ConnectionPoolError | McpBridgeError, R> =>
    Effect.withFiber((fiber) => {
      const perIdentity = server.pool.isolation === "per-identity"
      const id = poolIdOf(server, perIdentity, fiber)
      const open = sharedPoolsStay && !perIdentity ? pools.get(id) : undefined
      if (open !== undefined) return lease(server, id, open, f, call)
      const leased = Effect.scoped(Effect.flatMap(RcMap.get(map, id), (pool) => lease(server, id, pool, f, call)))
      if (!perIdentity) return leased
      // the session this lease leaves idle may make room for identities queued under the total cap
      const g = gatesOf(server)
      return Effect.ensuring(leased, Effect.suspend(() => g.waiting > 0 ? makeRoom(server.name, g) : Effect.void))
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
        identity: key.identity === "" ? undefined : key.identity,
        idle: s.idle,
        inUse: s.used,
        pending: s.pending,
        connecting: c.connecting,
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

  return { withSession, stats, drain } satisfies ConnectionPool.Service
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
    const auth = yield* authContext
    return {
      withSession: (server, f) =>
        Effect.scoped(
          McpSession.make(server).pipe(
            Effect.provideService(McpTransport, transports),
            Effect.provideContext(auth),
            Effect.flatMap(f)
          )
        ),
      stats: Effect.succeed([]),
      // Every session ends with its call: nothing to drain.
      drain: () => Effect.void
    } satisfies ConnectionPool.Service
  })
)

/**
 * The bottom of the pipeline: a call's `tools/call` on a session leased from the pool, its attempt's timeout capped
 * by what is left of the call's deadline. `onSession` sees each session a call runs on (the router watches them for
 * list changes).
 *
 * @since 0.1.0
 */
export const toolCaller: (
  pool: ConnectionPool.Service,
  onSession: (session: McpSession.McpSession) => void
) => ToolCaller<McpSessionError | ConnectionPoolError | McpBridgeError> = Wire.bottom
