/**
 * The `ResultStore` shared by replicas: a result cached through one replica is a hit through every other, and an
 * invalidation on any replica drops it for all (there is no per-replica copy in front).
 *
 * Layout under `prefix`: `e:<key>` holds one result (JSON) with its TTL (`PX`); `i:<server>` is a hash of that
 * server's keys and sizes (for invalidation by tool, call or predicate, and for usage), expiring with its longest
 * entry; `g:<server>` is the server's generation, moved on by every invalidation; `l:<key>` is a fill lease
 * (`SET NX PX`). A `set` under a lease is one script that stores nothing when the server's generation moved since
 * the lease was taken, so a result invalidated while in flight is never stored, whichever replica filled it.
 *
 * Fail-open: every command is bounded by `commandTimeout`, and while Redis is unreachable every operation fails at
 * once with `ResultStoreError`, which the `ResultCache` turns into a miss (the call goes upstream, nothing is
 * stored). The first failure and the recovery are logged once.
 *
 * Built on Effect's `Redis` service (`send`, `Redis.script`). Keys outside a script's declared keys are touched by
 * `usage` only: a single Redis node, not Redis Cluster.
 *
 * @since 0.1.0
 */
import { ResultStore } from "@mcp-bridge/core"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Duration, Effect, Layer, Option } from "effect"
import { Redis } from "effect/persistence"
import { randomUUID } from "node:crypto"
import * as RedisGuard from "./internal/redisGuard.ts"

/**
 * Options of `make`.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Prefix of every key.
   * @default "mcpgw:rc:"
   */
  readonly prefix?: string | undefined
  /**
   * How long one command may wait for Redis before the store counts it unreachable (the call then goes upstream).
   * @default "500 millis"
   */
  readonly commandTimeout?: Duration.Input | undefined
}

// KEYS: entry, index, generation, lease, servers. ARGV: field, json, ttl ms, bytes, lease token, lease generation,
// server.
const setScript = Redis.script(
  (keys: ReadonlyArray<string>, args: ReadonlyArray<string>) => [...keys, ...args],
  {
    numberOfKeys: 5,
    lua: `
if ARGV[5] ~= '' then
  if redis.call('GET', KEYS[4]) == ARGV[5] then redis.call('DEL', KEYS[4]) end
  local g = redis.call('GET', KEYS[3]) or '0'
  if g ~= ARGV[6] then return 0 end
end
local ttl = tonumber(ARGV[3])
if ttl <= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
local p = redis.call('PTTL', KEYS[2])
if p == -1 or (p >= 0 and p < ttl) then redis.call('PEXPIRE', KEYS[2], ttl) end
redis.call('SADD', KEYS[5], ARGV[7])
return 1
`
  }
).withReturnType<number>()

// KEYS: lease, generation. ARGV: token, ms. The generation when taken, or nil when another holds the lease.
const leaseScript = Redis.script(
  (keys: ReadonlyArray<string>, args: ReadonlyArray<string>) => [...keys, ...args],
  {
    numberOfKeys: 2,
    lua: `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('GET', KEYS[2]) or '0'
end
return false
`
  }
).withReturnType<string | null>()

// KEYS: lease. ARGV: token.
const releaseScript = Redis.script(
  (key: string, token: string) => [key, token],
  {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 1`
  }
).withReturnType<number>()

// KEYS: index. ARGV: entry key prefix. Prunes the index of expired entries, and counts the rest.
const usageScript = Redis.script(
  (index: string, entryPrefix: string) => [index, entryPrefix],
  {
    numberOfKeys: 1,
    lua: `
local f = redis.call('HGETALL', KEYS[1])
local entries = 0
local bytes = 0
for i = 1, #f, 2 do
  if redis.call('EXISTS', ARGV[1] .. f[i]) == 1 then
    entries = entries + 1
    bytes = bytes + tonumber(f[i + 1])
  else
    redis.call('HDEL', KEYS[1], f[i])
  end
end
return {entries, bytes}
`
  }
).withReturnType<ReadonlyArray<number>>()

const parseKey = (field: string): ResultStore.Key | undefined => {
  const parts = field.split("\u0000")
  if (parts.length !== 4) return undefined
  return { server: parts[0]!, tool: parts[1]!, partition: parts[2]!, arguments: parts[3]! }
}

const pairs = (reply: unknown): ReadonlyArray<readonly [string, string]> => {
  if (Array.isArray(reply)) {
    const out: Array<readonly [string, string]> = []
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([String(reply[i]), String(reply[i + 1])])
    return out
  }
  if (typeof reply === "object" && reply !== null) {
    return Object.entries(reply as Record<string, unknown>).map(([k, v]) => [k, String(v)] as const)
  }
  return []
}

/**
 * Builds the store over the `Redis` service in context.
 *
 * @example
 * ```ts
 * const store = yield* RedisResultStore.make({ prefix: "mcpgw:rc:" })
 * const hit = yield* store.get({ server: "docs", tool: "search", partition: "*", arguments: "{}" })
 * ```
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const redis = yield* Redis.Redis
  const prefix = options.prefix ?? "mcpgw:rc:"
  const guard = yield* RedisGuard.tracked("results", "result cache", {
    commandTimeout: options.commandTimeout ?? "500 millis",
    pause: "1 second"
  })
  const evalSet = redis.eval(setScript)
  const evalLease = redis.eval(leaseScript)
  const evalRelease = redis.eval(releaseScript)
  const evalUsage = redis.eval(usageScript)
  const serversKey = `${prefix}servers`
  const entryPrefix = `${prefix}e:`
  const indexKey = (server: string) => `${prefix}i:${server}`
  const generationKey = (server: string) => `${prefix}g:${server}`
  const leaseKey = (id: string) => `${prefix}l:${id}`

  const run = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, ResultStore.ResultStoreError> =>
    guard.run(effect).pipe(
      Effect.mapError((failure) =>
        new ResultStore.ResultStoreError(
          failure.cause === undefined
            ? { message: failure.message }
            : { message: failure.message, cause: failure.cause }
        )
      )
    )

  // Drops the selected entries of `server` (its generation moved on first, so no lease taken before stores).
  const dropIn = (server: string, matches: (key: ResultStore.Key, bytes: number) => boolean) =>
    Effect.gen(function*() {
      yield* redis.send("INCR", generationKey(server))
      const fields = pairs(yield* redis.send("HGETALL", indexKey(server)))
      const chosen: Array<string> = []
      for (const [field, bytes] of fields) {
        const key = parseKey(field)
        if (key !== undefined && matches(key, Number(bytes))) chosen.push(field)
      }
      if (chosen.length === 0) return 0
      const dropped = yield* redis.send<number>("DEL", ...chosen.map((field) => entryPrefix + field))
      yield* redis.send("HDEL", indexKey(server), ...chosen)
      return Number(dropped)
    })

  const servers = redis.send<ReadonlyArray<string>>("SMEMBERS", serversKey)

  const dropEverywhere = (matches: (key: ResultStore.Key, bytes: number) => boolean, touchAll: boolean) =>
    Effect.gen(function*() {
      let n = 0
      for (const server of yield* servers) {
        if (touchAll) {
          n += yield* dropIn(server, matches)
        } else {
          // Moves a server's generation on only when something of it was dropped.
          const fields = pairs(yield* redis.send("HGETALL", indexKey(server)))
          if (
            fields.some(([field, bytes]) => {
              const key = parseKey(field)
              return key !== undefined && matches(key, Number(bytes))
            })
          ) n += yield* dropIn(server, matches)
        }
      }
      return n
    })

  const service: ResultStore.ResultStore.Service = {
    get: (key) =>
      run(redis.send<string | null>("GET", entryPrefix + ResultStore.keyString(key))).pipe(
        Effect.map((raw) => {
          if (raw === null || raw === undefined) return Option.none()
          try {
            return Option.some(JSON.parse(raw) as CallToolResult)
          } catch {
            return Option.none()
          }
        })
      ),
    set: (key, result, setOptions) => {
      const field = ResultStore.keyString(key)
      const ttl = Math.floor(Duration.toMillis(Duration.fromInputUnsafe(setOptions.timeToLive)))
      return run(evalSet(
        [entryPrefix + field, indexKey(key.server), generationKey(key.server), leaseKey(field), serversKey],
        [
          field,
          JSON.stringify(result),
          String(ttl),
          String(setOptions.bytes),
          setOptions.lease?.token ?? "",
          setOptions.lease?.generation ?? "",
          key.server
        ]
      )).pipe(Effect.map((stored) => Number(stored) === 1))
    },
    lease: (key, duration) => {
      const token = randomUUID()
      const ms = Math.max(1, Math.floor(Duration.toMillis(Duration.fromInputUnsafe(duration))))
      return run(evalLease([leaseKey(ResultStore.keyString(key)), generationKey(key.server)], [token, String(ms)]))
        .pipe(
          Effect.map((generation) =>
            generation === null || generation === undefined
              ? Option.none()
              : Option.some<ResultStore.Lease>({ token, generation: String(generation) })
          )
        )
    },
    release: (key, lease) => run(evalRelease(leaseKey(ResultStore.keyString(key)), lease.token)).pipe(Effect.asVoid),
    invalidate: (selector) => run(dropIn(selector.server, (key) => ResultStore.selects(selector, key))),
    invalidateWhere: (predicate) => run(dropEverywhere(predicate, false)),
    invalidateAll: run(dropEverywhere(() => true, true)),
    usage: run(Effect.gen(function*() {
      const perServer: Record<string, { entries: number; bytes: number }> = {}
      let entries = 0
      let bytes = 0
      for (const server of yield* servers) {
        const [e = 0, b = 0] = yield* evalUsage(indexKey(server), `${entryPrefix}`)
        if (e === 0) continue
        perServer[server] = { entries: Number(e), bytes: Number(b) }
        entries += Number(e)
        bytes += Number(b)
      }
      return { entries, bytes, servers: perServer }
    }))
  }
  return service
})

/**
 * The shared `ResultStore` over the `Redis` service in context.
 *
 * @example
 * ```ts
 * const Stores = RedisResultStore.layer().pipe(Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379" })))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<ResultStore.ResultStore, never, Redis.Redis> =>
  Layer.effect(ResultStore.ResultStore, make(options))
