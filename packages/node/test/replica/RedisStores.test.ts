import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { RateLimitStore, ResultStore } from "@mcp-bridge/core"
import { TestRedis } from "@mcp-bridge/testing"
import { rateLimitStoreSuite, resultStoreSuite } from "@mcp-bridge/testing/StoreSuites"
import { type Duration, Effect, Layer, Option, Schedule } from "effect"
import { randomUUID } from "node:crypto"
import { afterAll, beforeAll } from "vitest"
import * as RedisRateLimitStore from "../../src/replica/RedisRateLimitStore.ts"
import * as RedisResultStore from "../../src/replica/RedisResultStore.ts"

let redis: TestRedis.RedisServer
beforeAll(async () => {
  redis = await TestRedis.start()
}, 60_000)
afterAll(() => redis?.stop())

// Redis keeps its own time: the suites' waits pass for real.
const advance = (duration: Duration.Input) =>
  Effect.promise(() =>
    new Promise<void>((resolve) => setTimeout(resolve, typeof duration === "string" ? Number.parseInt(duration) : 1001))
  )

const connection = () => Layer.orDie(Layer.unwrap(Effect.sync(() => NodeRedis.layer({ url: redis.url }))))
const prefix = () => `test:${randomUUID()}:`

describe("RedisRateLimitStore", () => {
  rateLimitStoreSuite(
    Layer.unwrap(Effect.sync(() => RedisRateLimitStore.layer({ prefix: prefix() }))).pipe(Layer.provide(connection())),
    { advance }
  )
})

describe("RedisResultStore", () => {
  resultStoreSuite(
    Layer.unwrap(Effect.sync(() => RedisResultStore.layer({ prefix: prefix() }))).pipe(Layer.provide(connection())),
    { advance }
  )

  it.live("two replicas share results, and an invalidation on one drops it for the other", () =>
    Effect.gen(function*() {
      const p = prefix()
      const a = yield* Effect.provide(RedisResultStore.make({ prefix: p }), yield* Layer.build(connection()))
      const b = yield* Effect.provide(RedisResultStore.make({ prefix: p }), yield* Layer.build(connection()))
      const key: ResultStore.Key = { server: "s", tool: "t", partition: "*", arguments: "{\"q\":1}" }
      const result = { content: [{ type: "text" as const, text: "x" }] }
      assert.isTrue(yield* a.set(key, result, { timeToLive: "1 minute", bytes: 10 }))
      assert.deepStrictEqual(yield* b.get(key), Option.some(result))
      assert.deepStrictEqual(yield* b.usage, { entries: 1, bytes: 10, servers: { s: { entries: 1, bytes: 10 } } })
      // A lease taken on a is held against b; an invalidation on b voids a's fill.
      const lease = Option.getOrThrow(yield* a.lease(key, "10 seconds"))
      assert.isTrue(Option.isNone(yield* b.lease(key, "10 seconds")))
      assert.strictEqual(yield* b.invalidateWhere((k) => k.tool === "t"), 1)
      assert.isTrue(Option.isNone(yield* a.get(key)))
      assert.isFalse(yield* a.set(key, result, { timeToLive: "1 minute", bytes: 10, lease }))
      assert.isTrue(yield* a.set(key, result, { timeToLive: "1 minute", bytes: 10 }))
      assert.strictEqual(yield* b.invalidateAll, 1)
      assert.isTrue(Option.isNone(yield* a.get(key)))
    }).pipe(Effect.scoped))
})

// Redis killed mid-test, then restarted on the same port: a server of this test's own.
describe("Redis unreachable", () => {
  const until = <A, E>(effect: Effect.Effect<A, E>) =>
    effect.pipe(Effect.retry(Schedule.spaced("50 millis")), Effect.timeout("60 seconds"))

  it.live(
    "rate limits fail closed by default, or admit a per-replica share; the cache fails open; both recover",
    () =>
      Effect.gen(function*() {
        const own = yield* Effect.acquireRelease(
          Effect.promise(() => TestRedis.start()),
          (r) => Effect.promise(() => r.stop())
        )
        const p = prefix()
        const context = yield* Layer.build(NodeRedis.layer({ url: own.url }))
        const closed = yield* Effect.provide(RedisRateLimitStore.make({ prefix: p }), context)
        const shared = yield* Effect.provide(
          RedisRateLimitStore.make({ prefix: p, onUnreachable: { share: 3 } }),
          context
        )
        const cache = yield* Effect.provide(RedisResultStore.make({ prefix: p }), context)
        const limits: ReadonlyArray<RateLimitStore.Limit> = [{ key: "s", limit: 6, window: "1 hour" }]
        const key: ResultStore.Key = { server: "s", tool: "t", partition: "*", arguments: "{}" }
        assert.strictEqual((yield* closed.admit(limits))._tag, "Admitted")

        yield* Effect.promise(() => own.kill())
        const refused = yield* Effect.flip(closed.admit(limits))
        assert.strictEqual(refused._tag, "RateLimitStoreError")
        assert.isFalse(closed.healthy())
        // The share: floor(6 / 3) = 2 admissions on this replica while Redis is away.
        assert.strictEqual((yield* shared.admit(limits))._tag, "Admitted")
        assert.strictEqual((yield* shared.admit(limits))._tag, "Admitted")
        assert.strictEqual((yield* shared.admit(limits))._tag, "Refused")
        const missed = yield* Effect.flip(cache.get(key))
        assert.strictEqual(missed._tag, "ResultStoreError")
        assert.notInclude(missed.message, own.url)

        yield* Effect.promise(() => own.restart())
        // Back: Redis answers again (an empty Redis: nothing persisted), and counts from there.
        yield* until(closed.admit(limits))
        assert.isTrue(closed.healthy())
        yield* until(cache.get(key))
        assert.isTrue(yield* cache.set(key, { content: [] }, { timeToLive: "1 minute", bytes: 1 }))
      }).pipe(Effect.scoped),
    120_000
  )
})
