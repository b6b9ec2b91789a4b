/**
 * One renewal of a caller's tokens at a time, per server and identity. A refresh token is often good for one refresh
 * only (rotation): when two processes sharing a `TokenStore` refresh with the same one, the authorization server
 * refuses the second and its user must log in again. With a `RefreshLock` in context, `McpAuth` renews an expired
 * token under the lock and reads the store again once it holds it, so the renewal a holder before it made is used
 * as it is instead of being repeated.
 *
 * Optional: without one, `McpAuth` renews with no lock (one process, one `McpAuth`, already renews once per server
 * and identity). `layerMemory` serves several `McpAuth`s of one process; the replicas of a gateway share one on Redis
 * (`RedisTokenStore` in `@mcp-bridge/node`).
 *
 * Built on `Semaphore` (one permit per server and identity).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Semaphore } from "effect"

/**
 * What a lock is taken for: the tokens of one server for one caller identity (`undefined`: the anonymous caller).
 *
 * @since 0.1.0
 */
export interface LockKey {
  readonly server: string
  readonly identity: string | undefined
}

/**
 * The lock token renewals go through.
 *
 * @since 0.1.0
 */
export class RefreshLock extends Context.Service<RefreshLock, RefreshLock.Service>()("@mcp-bridge/core/RefreshLock") {}

/**
 * The type of the service, `RefreshLock.Service`.
 *
 * @since 0.1.0
 */
export declare namespace RefreshLock {
  /**
   * Runs `effect` holding the lock of `key`, waiting while another holds it. An implementation that cannot take
   * the lock (its storage unreachable, or a bounded wait over) runs `effect` anyway: a second renewal may then fail
   * at the authorization server, which is no worse than no lock, and a renewal never waits forever.
   *
   * @since 0.1.0
   */
  export interface Service {
    readonly withLock: <A, E, R>(key: LockKey, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  }
}

/**
 * A lock in memory: one semaphore per server and identity, kept as long as the service (a few per caller).
 *
 * @since 0.1.0
 */
export const makeMemory: Effect.Effect<RefreshLock.Service> = Effect.sync(() => {
  const locks = new Map<string, Semaphore.Semaphore>()
  const lockOf = (key: LockKey) => {
    const id = key.identity === undefined ? key.server : `${key.server}\u0000${key.identity}`
    let lock = locks.get(id)
    if (lock === undefined) {
      lock = Semaphore.makeUnsafe(1)
      locks.set(id, lock)
    }
    return lock
  }
  return RefreshLock.of({ withLock: (key, effect) => Effect.suspend(() => lockOf(key).withPermit(effect)) })
})

/**
 * Renewals one at a time across the `McpAuth`s of this process that share a `TokenStore`.
 *
 * @example
 * ```ts
 * const Auth = McpAuth.layer().pipe(Layer.provide([TokenStore.layerMemory, RefreshLock.layerMemory]))
 * ```
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<RefreshLock> = Layer.effect(RefreshLock, makeMemory)
