/**
 * Where rate-limit windows live: the sliding log of admissions per limit, behind one atomic operation, "admit this
 * call under all of these limits, or tell me when it may be admitted".
 *
 * Each limit is a key (a server's, a tool's), a count and a window. A call is admitted when every limit holds fewer
 * than `limit` admissions in the last `window`; it is then logged in all of them at once, so that a call refused by
 * one limit takes no place in another. Refused, it learns the earliest time the refusing limit frees a place.
 *
 * `layerMemory` keeps the logs in process memory, timed by Effect's `Clock` (so `TestClock` drives it); the Redis
 * implementation in `@mcp-bridge/node` keeps them in sorted sets behind one script timed by Redis's own clock, so that
 * the limit holds summed over every replica.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Schema } from "effect"

/**
 * One limit of an admission: at most `limit` admissions under `key` in any sliding `window`.
 *
 * @since 0.1.0
 */
export interface Limit {
  readonly key: string
  readonly limit: number
  readonly window: Duration.Input
}

/**
 * The answer of `admit`: admitted (logged in every limit), or refused by the limit at `index` (of the limits passed),
 * which frees a place in `retryAfterMillis`.
 *
 * @since 0.1.0
 */
export type Admission =
  | { readonly _tag: "Admitted" }
  | { readonly _tag: "Refused"; readonly index: number; readonly retryAfterMillis: number }

/**
 * The store could not be reached or answered nonsense (only shared stores fail; the memory store never does).
 *
 * @since 0.1.0
 */
export class RateLimitStoreError extends Schema.TaggedError<RateLimitStoreError>()("RateLimitStoreError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * The rate-limit windows the `Throttler` admits against.
 *
 * @since 0.1.0
 */
export class RateLimitStore extends Context.Service<RateLimitStore, RateLimitStore.Service>()(
  "@mcp-bridge/core/RateLimitStore"
) {}

/**
 * The type of the store service, `RateLimitStore.Service`.
 *
 * @since 0.1.0
 */
export declare namespace RateLimitStore {
  /**
   * One atomic operation: admit a call under all of `limits`, or say which refuses it and for how long.
   *
   * @since 0.1.0
   */
  export interface Service {
    readonly admit: (limits: ReadonlyArray<Limit>) => Effect.Effect<Admission, RateLimitStoreError>
  }
}

/**
 * The admitted answer, shared.
 *
 * @since 0.1.0
 */
export const admitted: Admission = { _tag: "Admitted" }

/**
 * Builds a memory store: one sorted log of admission times per key, timed by the `Clock`. Logs are pruned as they
 * are read, so a log never holds more than its limit.
 *
 * @since 0.1.0
 */
export const makeMemory: Effect.Effect<RateLimitStore.Service> = Effect.sync(() => {
  const logs = new Map<string, Array<number>>()
  const admitAt = (limits: ReadonlyArray<Limit>, now: number): Admission => {
    let refused = -1
    let wait = 0
    const windows: Array<number> = []
    for (let i = 0; i < limits.length; i++) {
      const { key, limit } = limits[i]!
      const window = Duration.toMillis(Duration.fromInputUnsafe(limits[i]!.window))
      windows.push(window)
      const log = logs.get(key)
      if (log === undefined) continue
      let expired = 0
      while (expired < log.length && log[expired]! <= now - window) expired++
      if (expired > 0) log.splice(0, expired)
      if (log.length === 0) logs.delete(key)
      if (log.length >= limit) {
        const at = log[log.length - limit]! + window - now
        if (refused < 0 || at > wait) {
          refused = i
          wait = at
        }
      }
    }
    if (refused >= 0) return { _tag: "Refused", index: refused, retryAfterMillis: Math.max(0, wait) }
    for (const { key } of limits) {
      let log = logs.get(key)
      if (log === undefined) logs.set(key, log = [])
      log.push(now)
    }
    return admitted
  }
  return {
    admit: (limits) =>
      Effect.clockWith((clock: Clock.Clock) => Effect.sync(() => admitAt(limits, clock.currentTimeMillisUnsafe())))
  }
})

/**
 * The memory store: the embedded default, one per bridge.
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<RateLimitStore> = Layer.effect(RateLimitStore, makeMemory)
