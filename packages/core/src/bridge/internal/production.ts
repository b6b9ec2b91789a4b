/**
 * The environment of `McpBridge.layerProduction`: the `MCP_BRIDGE_*` variables that override the recommended production
 * settings, decoded with `Config` so that a bad value names its variable.
 *
 * @internal
 */
import { Config, Duration, Effect, Option } from "effect"
import { BridgeConfigError, Invalid } from "../../errors/BridgeConfigError.ts"

/** @internal */
export const environment = {
  "pool.min": "MCP_BRIDGE_POOL_MIN",
  "pool.max": "MCP_BRIDGE_POOL_MAX",
  "pool.idleTimeToLive": "MCP_BRIDGE_POOL_IDLE_TTL",
  "pool.healthCheckInterval": "MCP_BRIDGE_POOL_HEALTH_CHECK_INTERVAL",
  "cache.capacity": "MCP_BRIDGE_CACHE_CAPACITY",
  "cache.defaultTimeToLive": "MCP_BRIDGE_CACHE_TTL",
  "throttle.perSecond": "MCP_BRIDGE_THROTTLE_PER_SECOND",
  "throttle.perMinute": "MCP_BRIDGE_THROTTLE_PER_MINUTE",
  "throttle.concurrency": "MCP_BRIDGE_THROTTLE_CONCURRENCY",
  export: "MCP_BRIDGE_EXPORT"
} as const

/** @internal */
export const read = Effect.gen(function*() {
  const env = environment
  const int = (name: string) => Config.option(Config.Int(name))
  // Durations are decoded here, so that a bad value names its variable; the config gets them as milliseconds.
  const duration = (name: string) =>
    Config.option(Config.Duration(name)).pipe(Config.map(Option.map((d) => Duration.toMillis(d))))
  const values = yield* Config.all({
    poolMin: int(env["pool.min"]),
    poolMax: int(env["pool.max"]),
    poolIdle: duration(env["pool.idleTimeToLive"]),
    poolHealth: duration(env["pool.healthCheckInterval"]),
    cacheCapacity: int(env["cache.capacity"]),
    cacheTtl: duration(env["cache.defaultTimeToLive"]),
    perSecond: int(env["throttle.perSecond"]),
    perMinute: int(env["throttle.perMinute"]),
    concurrency: int(env["throttle.concurrency"]),
    exportOn: Config.option(Config.Boolean(env.export))
  })
  const some = <A>(o: Option.Option<A>, key: string): Record<string, A> => Option.isSome(o) ? { [key]: o.value } : {}
  return {
    pool: {
      ...some(values.poolMin, "min"),
      ...some(values.poolMax, "max"),
      ...some(values.poolIdle, "idleTimeToLive"),
      ...some(values.poolHealth, "healthCheckInterval")
    },
    cache: { ...some(values.cacheCapacity, "capacity"), ...some(values.cacheTtl, "defaultTimeToLive") },
    throttle: {
      ...some(values.perSecond, "perSecond"),
      ...some(values.perMinute, "perMinute"),
      ...some(values.concurrency, "concurrency")
    },
    export: Option.getOrUndefined(values.exportOn)
  }
})

/** @internal */
export const environmentError = (error: { readonly message: string }) =>
  new BridgeConfigError({ reason: new Invalid({ path: ["environment"], detail: error.message }) })
