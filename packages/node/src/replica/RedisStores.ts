/**
 * Every store the replicas of a gateway share, over one Redis: the result cache (`RedisResultStore`), the rate
 * limits (`RedisRateLimitStore`) and the circuit state of remote servers (Effect's `CircuitBreaker.layerStoreRedis`,
 * as the `SharedCircuitStore`). Provide it under `McpBridge.layer` and the bridge's stages use it; without it they
 * keep their memory stores.
 *
 * Keys: `<prefix>rc:` results, `<prefix>rl:` rate limits, `<prefix>cb:` circuits. The circuit store's commands are
 * bounded by a timeout too, and while Redis is unreachable each replica's own memory store keeps its circuits; the
 * shared state takes over again on Redis's return.
 *
 * `layerReplicas` is what `mcp-bridge serve --redis URL` runs with: one node-redis connection (`NodeRedis`) under
 * `GatewayReplicas`, these stores and the OAuth token store (`<prefix>tok:`, `RedisTokenStore`), built once and
 * provided to both the gateway and the bridge.
 *
 * Built on `Layer` over Effect's `Redis` service.
 *
 * @since 0.1.0
 */

import { RateLimitStore, RefreshLock, ResultStore, SharedCircuitStore, TokenStore } from "@mcp-bridge/core"
import { Context, Effect, Layer, Redacted } from "effect"
import { CircuitBreaker, Redis } from "effect/persistence"
import * as GatewayReplicas from "./GatewayReplicas.ts"
import * as RedisGuard from "./internal/redisGuard.ts"
import * as RedisRateLimitStore from "./RedisRateLimitStore.ts"
import * as RedisResultStore from "./RedisResultStore.ts"
import * as RedisTokenStore from "./RedisTokenStore.ts"
import type { SessionSealError } from "./SessionSeal.ts"

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

// The circuit store of Effect, with each command bounded; while Redis is unreachable, this replica's own memory
// store answers instead (the guard logs the outage once, rather than the breaker logging every call).
const guardedCircuits = (prefix: string) =>
  Layer.effect(
    CircuitBreaker.CircuitBreakerStore,
    Effect.gen(function*() {
      const inner = yield* CircuitBreaker.CircuitBreakerStore
      const local = Context.get(
        yield* Layer.build(CircuitBreaker.layerStoreMemory()),
        CircuitBreaker.CircuitBreakerStore
      )
      const guard = yield* RedisGuard.tracked("circuits", "circuit breakers", {
        commandTimeout: "1 second",
        pause: "1 second"
      })
      const run = <A, R>(
        shared: Effect.Effect<A, CircuitBreaker.CircuitBreakerError, R>,
        own: Effect.Effect<A, CircuitBreaker.CircuitBreakerError, R>
      ) => guard.run(shared).pipe(Effect.catch(() => own))
      return CircuitBreaker.CircuitBreakerStore.of({
        admit: (key) => run(inner.admit(key), local.admit(key)),
        record: (options) => run(inner.record(options), local.record(options)),
        state: (key) => run(inner.state(key), local.state(key))
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

/**
 * Options of `layerReplicas`: where Redis is, and the options of the stores.
 *
 * @since 0.1.0
 */
export interface ReplicaOptions extends Options {
  /** The Redis URL, `redis://[:password@]host:port[/db]`; it may hold a password, so it stays `Redacted`. */
  readonly url: Redacted.Redacted<string>
}

/**
 * A Redis URL fit to print: its password (and user name) replaced.
 *
 * @since 0.1.0
 */
export const printableUrl = (url: Redacted.Redacted<string>): string => {
  const parsed = URL.parse(Redacted.value(url))
  if (parsed === null) return "<a Redis URL that does not parse>"
  if (parsed.password !== "") parsed.password = "***"
  if (parsed.username !== "") parsed.username = "***"
  return parsed.toString()
}

/**
 * Everything a gateway replica shares through Redis, over one connection built once: `GatewayReplicas` (sessions
 * any replica serves, the event bus, resumable streams), the shared stores of `layer`, and OAuth tokens sealed with
 * one renewal at a time (`RedisTokenStore`: give them to `McpAuth.layer()`). Provide it to both the
 * gateway and `McpBridge.layer`. Fails at start with `RedisError` when Redis cannot be reached, with no password in
 * it.
 *
 * @example
 * ```ts
 * const Replica = RedisStores.layerReplicas({ url: Redacted.make("redis://127.0.0.1:6379") })
 * const Live = Gateway.layer({ port: 8081 }).pipe(
 *   Layer.provideMerge(McpBridge.layer(config, { transport: NodeTransport.layer() }).pipe(Layer.provide(Replica))),
 *   Layer.provide(Replica)
 * )
 * ```
 *
 * @since 0.1.0
 */
export const layerReplicas = (
  options: ReplicaOptions
): Layer.Layer<
  | GatewayReplicas.GatewayReplicas
  | ResultStore.ResultStore
  | RateLimitStore.RateLimitStore
  | SharedCircuitStore.SharedCircuitStore
  | TokenStore.TokenStore
  | RefreshLock.RefreshLock,
  Redis.RedisError | SessionSealError
> => {
  const prefix = options.prefix ?? "mcpgw:"
  // The first connection fails fast (`RedisError` at start); once connected, reconnecting never gives up (node-redis
  // would stop on a socket timeout, and a replica would stay degraded after Redis came back). node-redis is loaded
  // when the connection is made, not by importing this package.
  let connected = false
  const connection = Layer.unwrap(
    Effect.map(
      Effect.promise(() => import("@effect/platform-node/NodeRedis")),
      (module) =>
        module.layer({
          url: Redacted.value(options.url),
          socket: {
            reconnectStrategy: (retries: number, cause: Error) =>
              connected ? Math.min(2 ** retries * 50, 2000) + Math.floor(Math.random() * 200) : cause
          }
        })
    )
  ).pipe(Layer.tap(() => Effect.sync(() => void (connected = true))))
  return Layer.mergeAll(GatewayReplicas.layerRedis({ prefix }), layer(options), RedisTokenStore.layer({ prefix })).pipe(
    Layer.provide(RedisGuard.layerHealth()),
    Layer.provide(connection)
  )
}

/**
 * What went wrong with Redis, fit to print: the URL without its password, and the cause's message with any
 * occurrence of the URL or its password replaced.
 *
 * @since 0.1.0
 */
export const describeError = (url: Redacted.Redacted<string>, error: Redis.RedisError): string => {
  const raw = Redacted.value(url)
  const parsed = URL.parse(raw)
  let text = error.cause instanceof Error ? error.cause.message : String(error.cause)
  text = text.split(raw).join(printableUrl(url))
  if (parsed !== null && parsed.password !== "") text = text.split(decodeURIComponent(parsed.password)).join("***")
  return `Redis at ${printableUrl(url)}: ${text}`
}
