/**
 * The `RateLimitStore` shared by replicas: one sorted set per limit key in Redis, holding the admissions of the
 * last window, behind one Lua script that admits a call under all of its limits at once. The script reads the time
 * from Redis (`TIME`), so replicas' clocks never matter, and a limit holds summed over every replica in any sliding
 * window.
 *
 * Redis unreachable (down, paused, or slower than `commandTimeout`): by default the store fails closed, with
 * `RateLimitStoreError`, and the `Throttler` refuses the call (`RateLimited`). With `onUnreachable: { share: n }`
 * each replica admits instead against a memory store holding its share of every limit (`floor(limit / n)`, at least
 * one), so n replicas together stay within the limit while Redis is away. Either way the first failure and the
 * recovery are logged once, and after a failure Redis is left alone for a second rather than queued behind. An
 * admission sent but not answered in time may still run in Redis later (a paused Redis answers its backlog): it is
 * withdrawn (`ZREM`, sent after it on the same connection), so a refused call never counts against the limit.
 *
 * Built on Effect's `Redis` service (`Redis.script`, `EVALSHA`).
 *
 * @since 0.1.0
 */
import { RateLimitStore } from "@mcp-bridge/core"
import { Duration, Effect, Layer, Queue, Schedule } from "effect"
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
   * @default "mcpgw:rl:"
   */
  readonly prefix?: string | undefined
  /**
   * How long one admission may wait for Redis before it counts as unreachable.
   * @default "1 second"
   */
  readonly commandTimeout?: Duration.Input | undefined
  /**
   * What an admission does while Redis is unreachable: `"refuse"` (fail closed), or admit against this replica's
   * share of each limit, `floor(limit / share)` (at least one), counted in memory.
   * @default "refuse"
   */
  readonly onUnreachable?: "refuse" | { readonly share: number } | undefined
}

// KEYS: one sorted set per limit. ARGV: limit and window (ms) per key, then the admission's member id.
// Returns {1} when admitted (logged in every key), {0, index, retryAfterMillis} when refused.
const admitScript = Redis.script(
  (keys: ReadonlyArray<string>, args: ReadonlyArray<string>) => [...keys, ...args],
  {
    numberOfKeys: (keys) => keys.length,
    lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local refused = -1
local wait = 0
for i = 1, n do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local at = tonumber(oldest[2]) + window - now
    if refused < 0 or at > wait then
      refused = i - 1
      wait = at
    end
  end
end
if refused >= 0 then
  if wait < 0 then wait = 0 end
  return {0, refused, wait}
end
local id = ARGV[2 * n + 1]
for i = 1, n do
  redis.call('ZADD', KEYS[i], now, id)
  redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
end
return {1}
`
  }
).withReturnType<ReadonlyArray<number>>()

/**
 * Builds the store over the `Redis` service in context.
 *
 * @example
 * ```ts
 * const store = yield* RedisRateLimitStore.make({ onUnreachable: { share: 3 } })
 * yield* store.admit([{ key: "docs", limit: 100, window: "1 minute" }])
 * ```
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const redis = yield* Redis.Redis
  const prefix = options.prefix ?? "mcpgw:rl:"
  const guard = yield* RedisGuard.tracked("rate_limits", "rate limits", {
    commandTimeout: options.commandTimeout ?? "1 second",
    pause: "1 second"
  })
  const evalAdmit = redis.eval(admitScript)
  // Admissions that were sent but not answered may still run once Redis answers (a paused Redis, or node-redis's
  // offline queue): each is withdrawn (`ZREM` of its id, sent after it on the same connection), so that a call
  // refused here never counts against the limit.
  const withdrawals = new Map<string, ReadonlyArray<string>>()
  const wake = yield* Queue.sliding<void>(1)
  const withdraw = Effect.gen(function*() {
    for (const [id, keys] of [...withdrawals]) {
      for (const key of keys) {
        yield* redis.send("ZREM", key, id).pipe(Effect.timeout(options.commandTimeout ?? "1 second"))
      }
      withdrawals.delete(id)
    }
  })
  yield* Queue.take(wake).pipe(
    Effect.andThen(
      withdraw.pipe(
        Effect.retry(Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("1 second")])),
        Effect.ignore
      )
    ),
    Effect.forever,
    Effect.forkScoped
  )
  const policy = options.onUnreachable ?? "refuse"
  const local = policy === "refuse" ? undefined : yield* RateLimitStore.makeMemory
  const share = policy === "refuse" ? 1 : Math.max(1, Math.floor(policy.share))

  const viaRedis = (limits: ReadonlyArray<RateLimitStore.Limit>) => {
    const keys = limits.map((l) => prefix + l.key)
    const args: Array<string> = []
    for (const l of limits) {
      args.push(String(l.limit), String(Math.max(1, Duration.toMillis(Duration.fromInputUnsafe(l.window)))))
    }
    const id = randomUUID()
    args.push(id)
    return guard.run(evalAdmit(keys, args)).pipe(
      Effect.tapError((failure) =>
        Effect.sync(() => {
          if (failure.sent !== true) return
          withdrawals.set(id, keys)
          Queue.offerUnsafe(wake, undefined)
        })
      ),
      Effect.flatMap((reply): Effect.Effect<RateLimitStore.Admission, RedisGuard.GuardFailure> =>
        reply[0] === 1
          ? Effect.succeed(RateLimitStore.admitted)
          : reply[0] === 0 && typeof reply[1] === "number" && typeof reply[2] === "number"
          ? Effect.succeed({ _tag: "Refused", index: reply[1], retryAfterMillis: reply[2] })
          : Effect.fail({ message: `rate limits: unexpected reply from Redis: ${JSON.stringify(reply)}` })
      )
    )
  }

  const store: RateLimitStore.RateLimitStore.Service & { readonly healthy: () => boolean } = {
    healthy: guard.healthy,
    admit: (limits) =>
      viaRedis(limits).pipe(
        Effect.catch((failure) =>
          local === undefined
            ? Effect.fail(
              new RateLimitStore.RateLimitStoreError({
                message: `${failure.message} (redis.onUnreachable: "refuse")`,
                cause: failure.cause
              })
            )
            : local.admit(limits.map((l) => ({ ...l, limit: Math.max(1, Math.floor(l.limit / share)) })))
        )
      )
  }
  return store
})

/**
 * The shared `RateLimitStore` over the `Redis` service in context.
 *
 * @example
 * ```ts
 * const Stores = RedisRateLimitStore.layer().pipe(Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379" })))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<RateLimitStore.RateLimitStore, never, Redis.Redis> =>
  Layer.effect(RateLimitStore.RateLimitStore, make(options))
