/**
 * Every store the replicas of a gateway share, over one Redis: the result cache (`RedisResultStore`), the rate
 * limits (`RedisRateLimitStore`) and the circuit state of remote servers (Effect's `CircuitBreaker.layerStoreRedis`,
 * as the `SharedCircuitStore`). Provide it under `McpBridge.layer` and the bridge's stages use it; without it they
 * keep their memory stores.
 *
 * Keys: `<prefix>rc:` results, `<prefix>rl:` rate limits, `<prefix>cb:` circuits. The circuit store's commands are
 * bounded by a timeout too, and while Redis is unreachable they fail at once: the `Resilience` stage then lets calls
 * through (Effect's `onStoreError: "allow"`), and each replica's own breaker state takes over on its return.
 *
 * Built on `Layer` over Effect's `Redis` service.
 *
 * @since 0.1.0
 */
import { RateLimitStore, ResultStore, SharedCircuitStore } from "@mcp-bridge/core"
import { Effect, Layer } from "effect"
import { CircuitBreaker, Redis } from "effect/persistence"
import * as RedisGuard from "./internal/redisGuard.ts"
import * as RedisRateLimitStore from "./RedisRateLimitStore.ts"
import * as RedisResultStore from "./RedisResultStore.ts"

/**
 * Options of `layer`.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Prefix of every key.
   * @default "mcpgw:"
   */
  readonly prefix?: string | undefined
  /**
   * What rate limits do while Redis is unreachable (see `RedisRateLimitStore.Options.onUnreachable`).
   * @default "refuse"
   */
  readonly onUnreachable?: RedisRateLimitStore.Options["onUnreachable"]
}

// The circuit store of Effect, with each command bounded and failing at once while Redis is unreachable.
const guardedCircuits = (prefix: string) =>
  Layer.effect(
    CircuitBreaker.CircuitBreakerStore,
    Effect.gen(function*() {
      const inner = yield* CircuitBreaker.CircuitBreakerStore
      const guard = RedisGuard.make("circuit breakers", { commandTimeout: "1 second", pause: "1 second" })
      const run = <A, R>(effect: Effect.Effect<A, CircuitBreaker.CircuitBreakerError, R>) =>
        guard.run(effect).pipe(
          Effect.mapError((failure) =>
            failure.cause instanceof CircuitBreaker.CircuitBreakerError
              ? failure.cause
              : new CircuitBreaker.CircuitBreakerError({
                reason: new CircuitBreaker.CircuitBreakerStoreError({ message: failure.message })
              })
          )
        )
      return CircuitBreaker.CircuitBreakerStore.of({
        admit: (key) => run(inner.admit(key)),
        record: (options) => run(inner.record(options)),
        state: (key) => run(inner.state(key))
      })
    })
  ).pipe(Layer.provide(CircuitBreaker.layerStoreRedis({ prefix: `${prefix}cb:` })))

/**
 * The shared result, rate-limit and circuit stores over the `Redis` service in context.
 *
 * @example
 * ```ts
 * const Bridge = McpBridge.layer(config, { transport: NodeTransport.layer() }).pipe(
 *   Layer.provide(RedisStores.layer({ onUnreachable: { share: 3 } })),
 *   Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options = {}
): Layer.Layer<
  ResultStore.ResultStore | RateLimitStore.RateLimitStore | SharedCircuitStore.SharedCircuitStore,
  never,
  Redis.Redis
> => {
  const prefix = options.prefix ?? "mcpgw:"
  return Layer.mergeAll(
    RedisResultStore.layer({ prefix: `${prefix}rc:` }),
    RedisRateLimitStore.layer({ prefix: `${prefix}rl:`, onUnreachable: options.onUnreachable }),
    SharedCircuitStore.fromStore(guardedCircuits(prefix))
  )
}
