import { assert, describe, it } from "@effect/vitest"
import { McpBridge, Throttler } from "@mcp-bridge/core"
import { TestBridge } from "@mcp-bridge/testing"
import { Clock, Deferred, Effect, Exit, Fiber, Metric } from "effect"
import { TestClock } from "effect/testing"
import { configOf, ok, requestOf } from "./fixtures.ts"

/** A stage over an upstream that records when each call was admitted. */
const recording = (options: Throttler.Options = {}) =>
  Effect.gen(function*() {
    const stage = yield* Throttler.Throttler
    const admitted: Array<number> = []
    const caller = stage.wrap(() =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        admitted.push(now)
        return ok
      })
    )
    return { caller, admitted }
  }).pipe(Effect.provide(Throttler.layer(options)))

/** The value of a counter series in the current registry, 0 if it was never recorded. */
const counter = (id: string, attributes: Record<string, string>) =>
  Effect.map(Metric.snapshot, (all) => {
    const found = all.find((m) =>
      m.id === id && Object.entries(attributes).every(([k, v]) => (m.attributes as Record<string, string>)?.[k] === v)
    )
    return found === undefined ? 0 : Number((found.state as { count: number }).count)
  })

const reasonOf = (exit: Exit.Exit<unknown, unknown>) => {
  assert.isTrue(Exit.isFailure(exit))
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  const e = error?._tag === "Fail" ? error.error as Throttler.ThrottlerError : undefined
  assert.strictEqual(e?._tag, "ThrottlerError")
  return e!.reason
}

describe("Throttler", () => {
  it.effect("holds the rate under 500 concurrent callers: no window admits more than the limit", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { throttle: { perSecond: 50, maxWait: "1 minute" } } })
      const { admitted, caller } = yield* recording()
      const request = requestOf(config, "s", "t")
      const fiber = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 500 }), () => caller(request), { concurrency: "unbounded" })
      )
      for (let i = 0; i < 10; i++) yield* TestClock.adjust("1 second")
      const results = yield* Fiber.join(fiber)
      assert.strictEqual(results.length, 500)
      assert.strictEqual(admitted.length, 500)
      // Fixed windows: 50 in each second.
      const perWindow = new Map<number, number>()
      for (const t of admitted) perWindow.set(Math.floor(t / 1000), (perWindow.get(Math.floor(t / 1000)) ?? 0) + 1)
      assert.deepStrictEqual([...perWindow.values()], Array.from({ length: 10 }, () => 50))
      // Sliding windows: no second starting at an admission holds more than 50.
      const sorted = [...admitted].sort((a, b) => a - b)
      for (let i = 0; i < sorted.length; i++) {
        const inWindow = sorted.filter((t) => t >= sorted[i]! && t < sorted[i]! + 1000).length
        assert.isAtMost(inWindow, 50)
      }
    }))

  it.effect("a refused call takes no quota, even when a later limit refuses it", () =>
    Effect.gen(function*() {
      const config = yield* configOf({
        s: { throttle: { perSecond: 5, onLimit: "fail" }, tools: { a: { throttle: { perMinute: 2 } } } }
      })
      const { admitted, caller } = yield* recording()
      const a = requestOf(config, "s", "a")
      const b = requestOf(config, "s", "b")
      const first = yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7], () => Effect.exit(caller(a)))
      assert.deepStrictEqual(first.map(Exit.isSuccess), [true, true, false, false, false, false, false])
      const refusal = reasonOf(first[2]!)
      assert.strictEqual(refusal.limit, "2 per minute for tool a")
      assert.strictEqual(refusal.tool, "a")
      assert.strictEqual(refusal.retryAfterMillis, 60_000)
      // The five refused calls to `a` handed back the server's per-second tokens they took: `b` gets the other 3.
      const second = yield* Effect.forEach([1, 2, 3, 4], () => Effect.exit(caller(b)))
      assert.deepStrictEqual(second.map(Exit.isSuccess), [true, true, true, false])
      const serverRefusal = reasonOf(second[3]!)
      assert.strictEqual(serverRefusal.limit, "5 per second")
      assert.strictEqual(serverRefusal.tool, undefined)
      assert.strictEqual(serverRefusal.retryAfterMillis, 1000)
      assert.strictEqual(admitted.length, 5)
      // A burst of refused calls does not push the window back: one second later there is room again.
      yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.exit(caller(b)))
      yield* TestClock.adjust("1 second")
      const third = yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => Effect.exit(caller(b)))
      assert.deepStrictEqual(third.map(Exit.isSuccess), [true, true, true, true, true, false])
    }))

  it.effect("waits for its turn up to maxWait, then fails with RateLimited saying when to retry", () =>
    Effect.gen(function*() {
      const config = yield* configOf({
        patient: { throttle: { perSecond: 1, maxWait: "1500 millis" } },
        hasty: { throttle: { perSecond: 1, maxWait: "500 millis" } }
      })
      const { admitted, caller } = yield* recording()
      const patient = requestOf(config, "patient", "t")
      const hasty = requestOf(config, "hasty", "t")
      yield* caller(patient)
      const waiting = yield* Effect.forkChild(caller(patient))
      yield* TestClock.adjust("999 millis")
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(waiting)
      assert.deepStrictEqual(admitted, [0, 1000])
      // The next turn of `hasty` is 1 s away, past its maxWait: it fails at once.
      yield* caller(hasty)
      const refused = yield* Effect.exit(caller(hasty))
      const reason = reasonOf(refused)
      assert.strictEqual(reason.server, "hasty")
      assert.strictEqual(reason.limit, "1 per second")
      assert.strictEqual(reason.retryAfterMillis, 1000)
      assert.strictEqual(yield* Clock.currentTimeMillis, 1000)
      // Seen by telemetry: one wait of `patient`, one rejection of `hasty`, by the limit that caused them.
      const limit = { "mcp_bridge.throttle.limit": "per_second" }
      const server = (name: string) => ({ "mcp_bridge.server": name, ...limit })
      assert.strictEqual(yield* counter("mcp_bridge.throttle.waits", server("patient")), 1)
      assert.strictEqual(yield* counter("mcp_bridge.throttle.rejections", server("hasty")), 1)
      assert.strictEqual(yield* counter("mcp_bridge.throttle.rejections", { "mcp_bridge.server": "patient" }), 0)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("bounds calls in flight per server; a waiter past maxWait gets RateLimited and holds no slot", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { throttle: { concurrency: 1, maxWait: "1 second" } } })
      const stage = yield* Effect.provide(Throttler.Throttler.use(Effect.succeed), Throttler.layer())
      const gate = yield* Deferred.make<void>()
      let running = 0
      let peak = 0
      const caller = stage.wrap(() =>
        Effect.gen(function*() {
          running++
          peak = Math.max(peak, running)
          yield* Deferred.await(gate)
          running--
          return ok
        })
      )
      const request = requestOf(config, "s", "t")
      const holder = yield* Effect.forkChild(caller(request))
      yield* Effect.yieldNow
      const waiter = yield* Effect.forkChild(Effect.exit(caller(request)))
      yield* TestClock.adjust("1 second")
      const reason = reasonOf(yield* Fiber.join(waiter))
      assert.strictEqual(reason.limit, "1 in flight")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      // The slot is free again: three calls in a row each get it.
      yield* Effect.forEach([1, 2, 3], () => caller(request), { concurrency: "unbounded" })
      assert.strictEqual(peak, 1)
    }))

  it.effect("waiters for an in-flight slot go in order: a caller calling back to back never overtakes them", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { throttle: { concurrency: 1, maxWait: "10 seconds" } } })
      const stage = yield* Effect.provide(Throttler.Throttler.use(Effect.succeed), Throttler.layer())
      const order: Array<string> = []
      const caller = stage.wrap((request) =>
        Effect.as(Effect.sleep("1 millis"), undefined).pipe(Effect.map(() => {
          order.push(request.tool)
          return ok
        }))
      )
      // A hog calls back to back: each of its calls wants the slot the moment its previous one frees it.
      const hog = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 50 }), () => caller(requestOf(config, "s", "hog")), { discard: true })
      )
      yield* TestClock.adjust("2 millis")
      const waiter = yield* Effect.forkChild(caller(requestOf(config, "s", "waiter")))
      for (let i = 0; i < 10; i++) yield* TestClock.adjust("1 millis")
      yield* Fiber.join(waiter)
      // The waiter got the slot right after the call that held it when it arrived, not after the hog's 50 calls.
      assert.isBelow(order.indexOf("waiter"), 4)
      yield* Fiber.interrupt(hog)
    }))

  it.effect("onLimit fail refuses at once when every slot is taken", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { throttle: { concurrency: 2, onLimit: "fail" } } })
      const stage = yield* Effect.provide(Throttler.Throttler.use(Effect.succeed), Throttler.layer())
      const caller = stage.wrap(() => Effect.never)
      const request = requestOf(config, "s", "t")
      yield* Effect.forkChild(caller(request))
      yield* Effect.forkChild(caller(request))
      yield* Effect.yieldNow
      const reason = reasonOf(yield* Effect.exit(caller(request)))
      assert.strictEqual(reason.limit, "2 in flight")
      assert.strictEqual(reason.retryAfterMillis, 0)
    }))

  it.effect("one busy server does not hold up another", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ busy: {}, idle: {} })
      const { admitted, caller } = yield* recording({ defaults: { perSecond: 1, concurrency: 1 } })
      const busy = requestOf(config, "busy", "t")
      const idle = requestOf(config, "idle", "t")
      const queued = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 20 }), () => caller(busy), { concurrency: "unbounded" })
      )
      yield* Effect.yieldNow
      yield* caller(idle)
      assert.strictEqual(admitted.length, 2)
      yield* TestClock.adjust("20 seconds")
      yield* Fiber.join(queued)
      assert.strictEqual(admitted.length, 21)
    }))

  it.effect("servers with no limits and no defaults are not throttled", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: {} })
      const { admitted, caller } = yield* recording()
      yield* Effect.forEach(Array.from({ length: 1000 }), () => caller(requestOf(config, "s", "t")), {
        concurrency: "unbounded"
      })
      assert.strictEqual(admitted.length, 1000)
    }))

  it.live("bounds calls in flight on a real in-memory server", () =>
    Effect.gen(function*() {
      const servers = yield* TestBridge.TestServers
      const bridge = yield* McpBridge.McpBridge
      const results = yield* bridge.callMany(
        Array.from({ length: 12 }, (_, i) => ({ target: "s.slow", arguments: { i } })),
        { concurrency: "unbounded" }
      )
      assert.isTrue(results.every((r) => r._tag === "Success"))
      assert.strictEqual(servers.s!.calls("slow"), 12)
      assert.isAtMost(servers.s!.peakInFlight(), 3)
    }).pipe(
      Effect.provide(
        TestBridge.layerTest(
          { s: { tools: [{ name: "slow", latencyMs: 10, respond: { kind: "echo" } }] } },
          { bridge: { throttle: { concurrency: 3 } } }
        )
      )
    ))
})
