/**
 * What the replicas of a gateway share, read back for the dashboard: the result cache's entries and its hits and
 * misses summed over every replica, and each rate limit's use of its window, as Redis sees them.
 *
 * Nothing is sent per call, and nothing at all while no page is open: a page that wants the shared view `ask`s (one
 * `PUBLISH` on `<prefix>stats:ask`), every replica that `serve`s answers by storing its running counts (per server)
 * in one hash, `<prefix>stats`, stamped with Redis's clock (one script), and the page `read`s them (one script): the
 * live replicas' counts (those silent for longer than `staleAfter` dropped), the result cache's live entries under
 * `<prefix>rc:` (the layout of `RedisResultStore`) and each limit's admissions in its last window under `<prefix>rl:`
 * (the layout of `RedisRateLimitStore`). A read shows the answers to earlier asks: figures lag by one ask.
 *
 * Built on Effect's `Redis` service (`Redis.script`, `EVALSHA`, `subscribe`). The cache's keys are read outside the
 * script's declared keys, as `RedisResultStore.usage` does: a single Redis node, not Redis Cluster.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Queue, Schema, type Scope } from "effect"
import { Redis } from "effect/persistence"
import * as RedisGuard from "./internal/redisGuard.ts"

/**
 * One replica's running counts, as it publishes them: its calls, and its cache's hits and misses, per server.
 *
 * @since 0.1.0
 */
export interface Figures {
  /** The replica's name, shown beside its id. */
  readonly name?: string | undefined
  readonly servers: Readonly<Record<string, { readonly calls: number; readonly hits: number; readonly misses: number }>>
}

/**
 * A rate limit to read: its key in the rate-limit store (without the store's prefix) and its window.
 *
 * @since 0.1.0
 */
export interface LimitKey {
  readonly key: string
  readonly window: Duration.Input
}

/**
 * One replica seen in Redis: its id, name, published counts and how long ago it published them.
 *
 * @since 0.1.0
 */
export interface ReplicaSeen extends Figures {
  readonly id: string
  readonly ageMillis: number
}

/**
 * What the replicas share, as read from Redis at `at` (Redis's clock).
 *
 * @since 0.1.0
 */
export interface Shared {
  readonly at: number
  /** Every replica that published within `staleAfter`. */
  readonly replicas: ReadonlyArray<ReplicaSeen>
  /** The shared result cache's live entries and their bytes, per server. */
  readonly cache: Readonly<Record<string, { readonly entries: number; readonly bytes: number }>>
  /** Admissions in each limit's last window, in the order asked. */
  readonly limits: ReadonlyArray<number>
}

/**
 * Redis did not answer (down, or slower than `commandTimeout`).
 *
 * @since 0.1.0
 */
export class Unreachable extends Schema.TaggedClass<Unreachable>()("Unreachable", {
  detail: Schema.String
}) {}

/**
 * Redis answered something this module cannot read.
 *
 * @since 0.1.0
 */
export class UnexpectedReply extends Schema.TaggedClass<UnexpectedReply>()("UnexpectedReply", {
  detail: Schema.String
}) {}

/**
 * Why the shared figures could not be published or read.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([Unreachable, UnexpectedReply])

/**
 * The type of a `RedisStatsError`'s `reason`.
 *
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * The shared figures could not be published or read. Never carries the Redis URL.
 *
 * @since 0.1.0
 */
export class RedisStatsError extends Schema.TaggedError<RedisStatsError>()("RedisStatsError", {
  reason: Reason
}) {
  override get message(): string {
    return this.reason._tag === "Unreachable"
      ? `shared figures: Redis unreachable (${this.reason.detail})`
      : `shared figures: unexpected reply from Redis (${this.reason.detail})`
  }
}

/**
 * Publishes this replica's counts and reads what every replica shares.
 *
 * @since 0.1.0
 */
export class RedisStats extends Context.Service<RedisStats, RedisStats.Service>()("@mcp-bridge/node/RedisStats") {}

/**
 * @since 0.1.0
 */
export declare namespace RedisStats {
  /**
   * @since 0.1.0
   */
  export interface Service {
    /**
     * Answers every `ask` of any replica, for as long as the scope lasts, by publishing `figures` under `replica`
     * (over a subscriber connection of its own; while Redis is away it answers nothing).
     */
    readonly serve: (replica: string, figures: Effect.Effect<Figures>) => Effect.Effect<void, never, Scope.Scope>
    /** Asks every replica that serves to publish its counts (one `PUBLISH`). */
    readonly ask: Effect.Effect<void, RedisStatsError>
    /** Stores this replica's running counts under its id (one command). */
    readonly publish: (replica: string, figures: Figures) => Effect.Effect<void, RedisStatsError>
    /** Reads the live replicas' counts, the shared cache's size and these limits' use (one script). */
    readonly read: (limits: ReadonlyArray<LimitKey>) => Effect.Effect<Shared, RedisStatsError>
  }
}

/**
 * Options of `make`.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Prefix of every key: the same as the shared stores' (`RedisStores.layer`).
   * @default "mcpgw:"
   */
  readonly prefix?: string | undefined
  /**
   * How long one command may wait for Redis.
   * @default "500 millis"
   */
  readonly commandTimeout?: Duration.Input | undefined
  /**
   * A replica that has not published for this long is left out of the sums (and its counts dropped).
   * @default "15 seconds"
   */
  readonly staleAfter?: Duration.Input | undefined
}

// KEYS: the stats hash. ARGV: replica id, figures (JSON), the hash's TTL (ms).
const publishScript = Redis.script(
  (key: string, id: string, json: string, ttl: string) => [key, id, json, ttl],
  {
    numberOfKeys: 1,
    lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], now .. '|' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`
  }
).withReturnType<number>()

// KEYS: the stats hash, the result cache's set of servers, then one sorted set per limit. ARGV: stale after (ms), the
// result cache's prefix, then (from ARGV[3]) each limit's window (ms), index for index with KEYS.
// Returns {now, {id, age, figures, ...}, {server, entries, bytes, ...}, {count per limit}}.
const readScript = Redis.script(
  (keys: ReadonlyArray<string>, args: ReadonlyArray<string>) => [...keys, ...args],
  {
    numberOfKeys: (keys) => keys.length,
    lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = tonumber(ARGV[1])
local replicas = {}
local f = redis.call('HGETALL', KEYS[1])
for i = 1, #f, 2 do
  local bar = string.find(f[i + 1], '|', 1, true)
  local at = bar and tonumber(string.sub(f[i + 1], 1, bar - 1))
  if at == nil or now - at > stale then
    redis.call('HDEL', KEYS[1], f[i])
  else
    replicas[#replicas + 1] = f[i]
    replicas[#replicas + 1] = tostring(now - at)
    replicas[#replicas + 1] = string.sub(f[i + 1], bar + 1)
  end
end
local cache = {}
for _, server in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local index = redis.call('HGETALL', ARGV[2] .. 'i:' .. server)
  local entries = 0
  local bytes = 0
  for i = 1, #index, 2 do
    if redis.call('EXISTS', ARGV[2] .. 'e:' .. index[i]) == 1 then
      entries = entries + 1
      bytes = bytes + (tonumber(index[i + 1]) or 0)
    end
  end
  cache[#cache + 1] = server
  cache[#cache + 1] = entries
  cache[#cache + 1] = bytes
end
local limits = {}
for i = 3, #KEYS do
  limits[#limits + 1] = redis.call('ZCOUNT', KEYS[i], '(' .. (now - tonumber(ARGV[i])), '+inf')
end
return {now, replicas, cache, limits}
`
  }
).withReturnType<ReadonlyArray<unknown>>()

const asFigures = (json: string): Figures | undefined => {
  try {
    const parsed = JSON.parse(json) as Figures
    return typeof parsed === "object" && parsed !== null && typeof parsed.servers === "object" ? parsed : undefined
  } catch {
    return undefined
  }
}

/**
 * Builds the service over the `Redis` service in context.
 *
 * @example
 * ```ts
 * const stats = yield* RedisStats.make({ prefix: "mcpgw:" })
 * yield* stats.serve("eu-1", Effect.succeed({ servers: { docs: { calls: 10, hits: 4, misses: 6 } } }))
 * yield* stats.ask
 * const shared = yield* stats.read([{ key: "docs\u0000minute", window: "1 minute" }])
 * ```
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const redis = yield* Redis.Redis
  const prefix = options.prefix ?? "mcpgw:"
  const staleMillis = Duration.toMillis(Duration.fromInputUnsafe(options.staleAfter ?? "15 seconds"))
  const guard = RedisGuard.make("shared figures", {
    commandTimeout: options.commandTimeout ?? "500 millis",
    pause: "1 second"
  })
  const statsKey = `${prefix}stats`
  const askChannel = `${prefix}stats:ask`
  const evalPublish = redis.eval(publishScript)
  const evalRead = redis.eval(readScript)
  const run = <A, E>(effect: Effect.Effect<A, E>) =>
    guard.run(effect).pipe(
      Effect.mapError((failure) => new RedisStatsError({ reason: new Unreachable({ detail: failure.message }) }))
    )
  const unexpected = (detail: string) => new RedisStatsError({ reason: new UnexpectedReply({ detail }) })

  const publish = (replica: string, figures: Figures) =>
    run(evalPublish(statsKey, replica, JSON.stringify(figures), String(Math.max(1000, staleMillis * 2)))).pipe(
      Effect.asVoid
    )

  const service: RedisStats.Service = {
    serve: (replica, figures) =>
      Effect.gen(function*() {
        const asks = yield* redis.subscribe(askChannel)
        yield* Queue.take(asks).pipe(
          Effect.matchEffect({
            // The subscriber is gone for good: stop answering rather than spin.
            onFailure: () => Effect.interrupt,
            onSuccess: () => Effect.ignore(Effect.flatMap(figures, (f) => publish(replica, f)))
          }),
          Effect.forever,
          Effect.forkScoped
        )
      }),
    ask: run(redis.send("PUBLISH", askChannel, "1")).pipe(Effect.asVoid),
    publish,
    read: (limits) =>
      Effect.flatMap(
        run(evalRead(
          [statsKey, `${prefix}rc:servers`, ...limits.map((l) => `${prefix}rl:${l.key}`)],
          [
            String(staleMillis),
            `${prefix}rc:`,
            ...limits.map((l) => String(Math.max(1, Duration.toMillis(Duration.fromInputUnsafe(l.window)))))
          ]
        )),
        (reply) => {
          const [now, replicas, cache, counts] = reply
          if (!Array.isArray(replicas) || !Array.isArray(cache) || !Array.isArray(counts)) {
            return Effect.fail(unexpected(`a reply of ${typeof reply}`))
          }
          const seen: Array<ReplicaSeen> = []
          for (let i = 0; i + 2 < replicas.length; i += 3) {
            const figures = asFigures(String(replicas[i + 2]))
            if (figures === undefined) continue
            seen.push({ ...figures, id: String(replicas[i]), ageMillis: Number(replicas[i + 1]) })
          }
          seen.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
          const sizes: Record<string, { entries: number; bytes: number }> = {}
          for (let i = 0; i + 2 < cache.length; i += 3) {
            const entries = Number(cache[i + 1])
            if (entries > 0) sizes[String(cache[i])] = { entries, bytes: Number(cache[i + 2]) }
          }
          return Effect.succeed<Shared>({
            at: Number(now),
            replicas: seen,
            cache: sizes,
            limits: counts.map(Number)
          })
        }
      )
  }
  return service
})

/**
 * The service over the `Redis` service in context (`RedisStores.layerReplicas` provides it).
 *
 * @example
 * ```ts
 * const Stats = RedisStats.layer().pipe(Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379" })))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<RedisStats, never, Redis.Redis> =>
  Layer.effect(RedisStats, make(options))
