/**
 * The strategy behind each session pool (`Pool.Strategy`): a sweep that retires sessions whose transport closed,
 * that aged past `maxLifetime`, or that idled past `idleTimeToLive` above `min`, and probes idle sessions every
 * `healthCheckInterval` (a session that fails its probe is ended at once and retired).
 *
 * @internal
 */
import { Clock, Duration, Effect, Pool } from "effect"
import type { ResolvedServer } from "../../config/BridgeConfig.ts"
import type { McpSessionError } from "../../errors/McpSessionError.ts"
import type { McpSession } from "../../session/McpSession.ts"

/** @internal */
export type SessionPool = Pool.Pool<McpSession, McpSessionError>

/** @internal */
export const make = (
  server: ResolvedServer,
  probeTimeout: Duration.Duration,
  retire: (pool: SessionPool, session: McpSession) => Effect.Effect<void>
): Pool.Strategy<McpSession, McpSessionError> => {
  const lastCheck = new WeakMap<Pool.PoolItem<McpSession, McpSessionError>, number>()
  const idleMillis = Duration.toMillis(server.pool.idleTimeToLive)
  const lifetimeMillis = Duration.toMillis(server.pool.maxLifetime)
  const healthMillis = Duration.toMillis(server.pool.healthCheckInterval)
  const tick = Math.max(Math.min(idleMillis, lifetimeMillis, healthMillis) / 4, 10)

  const sweep = (pool: SessionPool) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      let active = 0
      for (const item of pool.state.items) if (!pool.state.invalidated.has(item)) active++
      const toProbe: Array<McpSession> = []
      for (const item of pool.state.items) {
        if (item.exit._tag !== "Success" || pool.state.invalidated.has(item)) continue
        const session = item.exit.value
        if (!session.isOpen() || now - session.openedAt >= lifetimeMillis) {
          active--
          yield* retire(pool, session)
        } else if (item.refCount === 0 && active > server.pool.min && now - item.idleSince >= idleMillis) {
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
              Effect.andThen(Effect.sync(() => session.kill())),
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
