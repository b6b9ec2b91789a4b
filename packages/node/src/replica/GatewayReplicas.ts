/**
 * What makes several gateway replicas behind one load balancer behave as one: the service the gateway finds in its
 * context when it runs with Redis (`mcp-bridge serve --redis URL`).
 *
 * - 2025-era sessions any replica can serve: session ids are sealed (`SessionSeal`) with the client's `initialize`
 *   parameters, so a replica that does not hold a session rebuilds it from the id alone (no Redis read).
 * - List changes and `resources/updated` on every replica: one `RedisEventBus`, given to `createMcpHandler` (2026
 *   `subscriptions/listen`) and fanned out to this replica's 2025 sessions.
 * - Resumable streams after a reconnect to another replica: `RedisEventStore`, one `EventStore` per session.
 * - A 2026-07-28 client's retry of a round the gateway bridged, on any replica: its state is sealed with a key derived
 *   from the session keys and names the replica that holds the call, and `RedisRounds` forwards it there.
 *
 * Session keys: `keys`, else `MCP_BRIDGE_SESSION_KEYS` (comma-separated base64url, newest first), else one key
 * the first replica stores in Redis (`SET NX`) and every other replica reads, so replicas agree without setup.
 *
 * Built on `Context.Service` and `Layer`, over Effect's `Redis` service and `NodeRedis`.
 *
 * @since 0.1.0
 */
import type * as NodeRedis from "@effect/platform-node/NodeRedis"
import type { MetricsRecorder } from "@mcp-bridge/core"
import { Context, Duration, Effect, Exit, Layer, Metric, Option, Redacted } from "effect"
import { Redis } from "effect/persistence"
import { hkdfSync } from "node:crypto"
import * as RedisGuard from "./internal/redisGuard.ts"
import * as SessionKeys from "./internal/sessionKeys.ts"
import * as RedisEventBus from "./RedisEventBus.ts"
import * as RedisEventStore from "./RedisEventStore.ts"
import * as RedisRounds from "./RedisRounds.ts"
import * as SessionSeal from "./SessionSeal.ts"

/**
 * The replica services of a gateway.
 *
 * @since 0.1.0
 */
export class GatewayReplicas extends Context.Service<GatewayReplicas, GatewayReplicas.Service>()(
  "@mcp-bridge/node/GatewayReplicas"
) {}

/**
 * The type of the service, `GatewayReplicas.Service`.
 *
 * @since 0.1.0
 */
export declare namespace GatewayReplicas {
  /**
   * What the gateway's HTTP face uses. Plain functions: the SDK's session id generator is synchronous.
   *
   * @since 0.1.0
   */
  export interface Service {
    /** The bus every replica's listeners hear: pass to `createMcpHandler({ bus })`, publish changes on it. */
    readonly bus: RedisEventBus.RedisEventBus
    /** Event stores for resumable streams, one per session. */
    readonly events: RedisEventStore.RedisEventStore
    /** Bridged rounds: retries forwarded to the replica that holds their call. */
    readonly rounds: RedisRounds.RedisRounds
    /** The keys the replicas seal bridged rounds' states with (derived from the session keys), newest first. */
    readonly roundKeys: ReadonlyArray<Uint8Array>
    /** A new session id holding `initialize` and bound to `binding` (the view and principal it serves). */
    readonly sealSessionId: (initialize: SessionSeal.SessionState["initialize"], binding: string) => string
    /**
     * The `initialize` parameters sealed in `id`, when it opens under a current key, is not expired and was bound to
     * `binding`; `undefined` otherwise (the client is told "Session not found" and initializes again).
     */
    readonly openSessionId: (id: string, binding: string) => SessionSeal.SessionState["initialize"] | undefined
    /** `"ok"`, or `"degraded"` while Redis is unreachable or events are owed to the other replicas. */
    readonly status: () => "ok" | "degraded"
    /**
     * Each part shared through Redis (`results`, `rate_limits`, `circuits`, `tokens`, `events`) and whether Redis
     * answers it now: what the `mcp_bridge_redis_up` gauge shows.
     */
    readonly health: () => ReadonlyArray<{ readonly store: string; readonly up: boolean }>
    /** Asks Redis once, bounded (for `/readyz`): the parts go up or down with its answer. */
    readonly check: () => Promise<void>
  }
}

/**
 * Options of `layerRedis`.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Session keys, newest first (see `SessionSeal.Options.keys`).
   * @default `MCP_BRIDGE_SESSION_KEYS`, else a key shared through Redis
   */
  readonly keys?: ReadonlyArray<Redacted.Redacted<string | Uint8Array>> | undefined
  /**
   * Prefix of every Redis key and of the pub/sub channel.
   * @default "mcpgw:"
   */
  readonly prefix?: string | undefined
  /**
   * How long a session id opens after the session began.
   * @default "7 days"
   */
  readonly sessionMaxAge?: Duration.Input | undefined
}

/**
 * The replica services over the `Redis` and `NodeRedis` services of the context. Fails with `SessionSealError`
 * (`InvalidKey`) for an unusable key, or `RedisError` when the shared key cannot be read at start.
 *
 * @example
 * ```ts
 * const Live = Gateway.layer({ port: 8081 }).pipe(
 *   Layer.provide(GatewayReplicas.layerRedis()),
 *   Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
export const layerRedis = (
  options: Options = {}
): Layer.Layer<GatewayReplicas, SessionSeal.SessionSealError | Redis.RedisError, Redis.Redis | NodeRedis.NodeRedis> =>
  Layer.effect(
    GatewayReplicas,
    Effect.gen(function*() {
      const redis = yield* Redis.Redis
      const prefix = options.prefix ?? "mcpgw:"
      const keys = yield* SessionKeys.resolve(redis, prefix, options.keys)
      const seal = yield* SessionSeal.make({ keys, maxAge: options.sessionMaxAge })
      const bus = yield* RedisEventBus.make({ channel: `${prefix}events` })
      const events = yield* RedisEventStore.make({ prefix })
      const rounds = yield* RedisRounds.make({ prefix })
      const roundKeys = keys.map((key) => {
        const raw = Redacted.value(key)
        return new Uint8Array(
          hkdfSync("sha256", typeof raw === "string" ? Buffer.from(raw) : raw, "", "mcp-bridge rounds", 32)
        )
      })
      const runSync = Effect.runSyncExitWith(yield* Effect.context<never>())
      const run = Effect.runPromiseWith(yield* Effect.context<never>())
      const stores = yield* Effect.serviceOption(RedisGuard.RedisHealth)
      // A key shared through Redis is stored again when Redis returns (a restart without persistence lost it), so
      // a replica started afterwards reads the same key rather than making its own.
      if (Option.isSome(stores) && options.keys === undefined && SessionKeys.keysFromEnv() === undefined) {
        const shared = keys[0]!
        stores.value.onRecovered(
          redis.send("SET", `${prefix}session-key`, String(Redacted.value(shared)), "NX").pipe(
            Effect.timeout("1 second")
          )
        )
      }
      const health = () => [
        ...(Option.isSome(stores) ? stores.value.stores() : []),
        { store: "events", up: bus.healthy() }
      ]
      return {
        bus,
        events,
        rounds,
        roundKeys,
        sealSessionId: (initialize, binding) => {
          const exit = runSync(seal.seal({ initialize, principal: binding }))
          if (Exit.isSuccess(exit)) return exit.value
          throw new Error("cannot seal a session id")
        },
        openSessionId: (id, binding) => {
          const exit = runSync(seal.open(id))
          return Exit.isSuccess(exit) && exit.value.principal === binding ? exit.value.initialize : undefined
        },
        status: () => health().every((part) => part.up) ? "ok" : "degraded",
        health,
        check: () => Option.isSome(stores) ? run(Effect.asVoid(stores.value.check)) : Promise.resolve()
      } satisfies GatewayReplicas.Service
    })
  )

/**
 * The `mcp_bridge_redis_up` gauges of a replica, one per part shared through Redis (`store` label): 1 while Redis
 * answers it, 0 while that part runs degraded (cache misses, rate limits per `onUnreachable`, local circuits).
 * Register them with `MetricsRecorder.observe`; the gateway does when it runs with replicas.
 *
 * @since 0.1.0
 */
export const redisGauges = (replicas: GatewayReplicas.Service): ReadonlyArray<MetricsRecorder.ObservedGauge> =>
  replicas.health().map(({ store }) =>
    [
      Metric.gauge("mcp_bridge_redis_up", {
        description: "Whether Redis answers this replica's shared store (1) or the store runs degraded (0).",
        attributes: { store }
      }),
      () => replicas.health().find((part) => part.store === store)?.up === false ? 0 : 1
    ] as const
  )
