/**
 * Contract suites for the bridge's stores (`RateLimitStore`, `ResultStore`), as functions of a layer, for
 * `@effect/vitest`: every implementation (core's memory stores, the Redis stores of `@mcp-bridge/node`, your own) runs
 * the same cases unchanged. Call one inside a `describe`. A store timed by another clock than Effect's (Redis's own)
 * passes `advance`, which lets that much time pass for it (the default moves the `TestClock`).
 *
 * Import it from `@mcp-bridge/testing/StoreSuites` (it needs `@effect/vitest`).
 *
 * @since 0.1.0
 */
import { assert, it } from "@effect/vitest"
import { RateLimitStore, ResultStore } from "@mcp-bridge/core"
import { type Duration, Effect, Layer, Option } from "effect"
import { TestClock } from "effect/testing"

/**
 * Options of a suite: `advance` lets time pass for the store under test.
 *
 * @since 0.1.0
 */
export interface SuiteOptions {
  readonly advance?: ((duration: Duration.Input) => Effect.Effect<void>) | undefined
}

/**
 * The `RateLimitStore` contract: admissions up to the limit in any sliding window, a refusal that says when, limits
 * admitted or refused together.
 *
 * @since 0.1.0
 */
export const rateLimitStoreSuite = (
  layer: Layer.Layer<RateLimitStore.RateLimitStore>,
  { advance = TestClock.adjust }: SuiteOptions = {}
) => {
  it.effect("admits up to the limit in a window, then says when", () =>
    Effect.gen(function*() {
      const store = yield* RateLimitStore.RateLimitStore
      const limits: ReadonlyArray<RateLimitStore.Limit> = [{ key: "s", limit: 2, window: "1 second" }]
      assert.strictEqual((yield* store.admit(limits))._tag, "Admitted")
      assert.strictEqual((yield* store.admit(limits))._tag, "Admitted")
      const refused = yield* store.admit(limits)
      assert.strictEqual(refused._tag, "Refused")
      if (refused._tag === "Refused") assert.isAtMost(refused.retryAfterMillis, 1000)
      yield* advance("1001 millis")
      assert.strictEqual((yield* store.admit(limits))._tag, "Admitted")
    }).pipe(Effect.provide(layer)))

  it.effect("a call refused by one limit takes no place in another", () =>
    Effect.gen(function*() {
      const store = yield* RateLimitStore.RateLimitStore
      const tool: RateLimitStore.Limit = { key: "t", limit: 1, window: "1 minute" }
      const server: RateLimitStore.Limit = { key: "s2", limit: 2, window: "1 minute" }
      assert.strictEqual((yield* store.admit([tool, server]))._tag, "Admitted")
      const refused = yield* store.admit([tool, server])
      assert.deepStrictEqual(refused._tag === "Refused" ? refused.index : -1, 0)
      assert.strictEqual((yield* store.admit([server]))._tag, "Admitted")
      assert.strictEqual((yield* store.admit([server]))._tag, "Refused")
    }).pipe(Effect.provide(layer)))
}

const key = (server: string, tool: string, args = "{}"): ResultStore.Key => ({
  server,
  tool,
  partition: "",
  arguments: args
})
const result = { content: [{ type: "text" as const, text: "x" }] }

/**
 * The `ResultStore` contract: entries read back until they expire, invalidation, and the fill lease of a miss.
 *
 * @since 0.1.0
 */
export const resultStoreSuite = (
  layer: Layer.Layer<ResultStore.ResultStore>,
  { advance = TestClock.adjust }: SuiteOptions = {}
) => {
  it.effect("get after set, until the TTL passes", () =>
    Effect.gen(function*() {
      const store = yield* ResultStore.ResultStore
      assert.isTrue(Option.isNone(yield* store.get(key("a", "t"))))
      assert.isTrue(yield* store.set(key("a", "t"), result, { timeToLive: "1 second", bytes: 10 }))
      assert.deepStrictEqual(yield* store.get(key("a", "t")), Option.some(result))
      yield* advance("1001 millis")
      assert.isTrue(Option.isNone(yield* store.get(key("a", "t"))))
    }).pipe(Effect.provide(layer)))

  it.effect("invalidates by tool and by server", () =>
    Effect.gen(function*() {
      const store = yield* ResultStore.ResultStore
      const opts: ResultStore.SetOptions = { timeToLive: "1 minute", bytes: 10 }
      yield* store.set(key("a", "t"), result, opts)
      yield* store.set(key("a", "u"), result, opts)
      yield* store.set(key("b", "t"), result, opts)
      assert.strictEqual(yield* store.invalidate({ server: "a", tool: "t" }), 1)
      assert.isTrue(Option.isSome(yield* store.get(key("a", "u"))))
      assert.strictEqual(yield* store.invalidate({ server: "a" }), 1)
      assert.isTrue(Option.isSome(yield* store.get(key("b", "t"))))
    }).pipe(Effect.provide(layer)))

  it.effect("one fill lease at a time; a set under a lease taken before an invalidation stores nothing", () =>
    Effect.gen(function*() {
      const store = yield* ResultStore.ResultStore
      const lease = yield* store.lease(key("a", "t"), "5 seconds")
      assert.isTrue(Option.isSome(lease))
      assert.isTrue(Option.isNone(yield* store.lease(key("a", "t"), "5 seconds")))
      yield* store.invalidate({ server: "a" })
      const stored = yield* store.set(key("a", "t"), result, {
        timeToLive: "1 minute",
        bytes: 10,
        lease: Option.getOrUndefined(lease)
      })
      assert.isFalse(stored)
      assert.isTrue(Option.isNone(yield* store.get(key("a", "t"))))
    }).pipe(Effect.provide(layer)))
}
