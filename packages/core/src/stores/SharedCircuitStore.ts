/**
 * Where the circuit state of remote servers lives when replicas share it: an Effect `CircuitBreakerStore`
 * (`effect/persistence/CircuitBreaker`) that the `Resilience` stage uses for HTTP and SSE servers only.
 *
 * A stdio server is a child process of each replica, so one replica's crashed child must not open the circuit for
 * every replica: stdio (and in-memory) servers keep the stage's own per-replica memory store. With no
 * `SharedCircuitStore` in context, every server uses that memory store.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import { CircuitBreaker } from "effect/persistence"

/**
 * The circuit store shared by replicas, for remote servers (e.g. `CircuitBreaker.layerStoreRedis`).
 *
 * @since 0.1.0
 */
export class SharedCircuitStore
  extends Context.Service<SharedCircuitStore, CircuitBreaker.CircuitBreakerStore["Service"]>()(
    "@mcp-bridge/core/SharedCircuitStore"
  )
{}

/**
 * The shared circuit store from an Effect `CircuitBreakerStore` layer.
 *
 * @example
 * ```ts
 * SharedCircuitStore.fromStore(CircuitBreaker.layerStoreRedis({ prefix: "mcp-bridge:circuit:" }))
 * ```
 *
 * @since 0.1.0
 */
export const fromStore = <E, R>(
  store: Layer.Layer<CircuitBreaker.CircuitBreakerStore, E, R>
): Layer.Layer<SharedCircuitStore, E, R> =>
  Layer.effect(SharedCircuitStore, Effect.service(CircuitBreaker.CircuitBreakerStore)).pipe(Layer.provide(store))
