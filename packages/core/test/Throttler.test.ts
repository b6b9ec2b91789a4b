import { assert, describe, it } from "@effect/vitest"
import { McpBridge, MetricsRecorder, RateLimitStore, Throttler } from "@mcp-bridge/core"
import { TestBridge } from "@mcp-bridge/testing"
import { Clock, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { configOf, counterValue, drain, ok, requestOf, until } from "./fixtures.ts"

/** The stage's layer, recording its metrics through `recorder` (a bridge's recorder of its own). */
const stageLayer = (options: Throttler.Options = {}, recorder = MetricsRecorder.make()) =>
  Throttler.layer(options).pipe(Layer.provide(Layer.succeed(MetricsRecorder.MetricsRecorder, recorder)))

/** A stage over an upstream that records when each call was admitted, and the stage's metrics recorder. */
// Without the margin by default, so that the window arithmetic below is exact (the margin has a test of its own).
const recording = (options: Throttler.Options = {}) =>
  Effect.gen(function*() {
    const recorder = MetricsRecorder.make()
    const stage = yield* Effect.provide(
      Throttler.Throttler.use(Effect.succeed),
      stageLayer({ windowMargin: 0, ...options }, recorder)
    )
    const admitted: Array<number> = []
    const caller = stage.wrap(() =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        admitted.push(now)
        return ok
      })
    )
    return { caller, admitted, recorder }
  })

/** The stage alone (no metrics). */
const plainStage = Effect.provide(Throttler.Throttler.use(Effect.succeed), Throttler.layer())

const reasonOf = (exit: Exit.Exit<unknown, unknown>) => {
  assert.isTrue(Exit.isFailure(exit))
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  const e = error?._tag === "Fail" ? error.error as Throttler.ThrottlerError : undefined
  assert.strictEqual(e?._tag, "ThrottlerError")
  return e!.reason
}

const rateLimited = (exit: Exit.Exit<unknown, unknown>): Throttler.RateLimited => {
  const reason = reasonOf(exit)
  assert.strictEqual(reason._tag, "RateLimited")
  return reason as Throttler.RateLimited
}

const concurrencyLimited = (exit: Exit.Exit<unknown, unknown>): Throttler.ConcurrencyLimited => {
  const reason = reasonOf(exit)
  assert.strictEqual(reason._tag, "ConcurrencyLimited")
  return reason as Throttler.ConcurrencyLimited
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
      // Sliding windows: the busiest second starting at an admission holds exactly the limit.
      const sorted = [...admitted].sort((a, b) => a - b)
      let busiest = 0
      for (let i = 0; i < sorted.length; i++) {
        busiest = Math.max(busiest, sorted.filter((t) => t >= sorted[i]! && t < sorted[i]! + 1000).length)
      }
      assert.strictEqual(busiest, 50)
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
      const refusal = rateLimited(first[2]!)
      assert.deepStrictEqual(
        [refusal.server, refusal.tool, refusal.limit, refusal.window, refusal.retryAfterMillis],
        ["s", "a", 2, "minute", 60_000]
      )
      // The five refused calls to `a` handed back the server's per-second tokens they took: `b` gets the other 3.
      const second = yield* Effect.forEach([1, 2, 3, 4], () => Effect.exit(caller(b)))
      assert.deepStrictEqual(second.map(Exit.isSuccess), [true, true, true, false])
      const serverRefusal = rateLimited(second[3]!)
      assert.deepStrictEqual(
        [serverRefusal.tool, serverRefusal.limit, serverRefusal.window, serverRefusal.retryAfterMillis],
        [undefined, 5, "second", 1000]
      )
      assert.strictEqual(admitted.length, 5)
      // A burst of refused calls does not push the window back: one second later there is room again.
      yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.exit(caller(b)))
      yield* TestClock.adjust("1 second")
      const third = yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => Effect.exit(caller(b)))
      assert.deepStrictEqual(third.map(Exit.isSuccess), [true, true, true, true, true, false])
    }))

  it.effect("a shared store that cannot answer refuses the call at once with LimitStoreUnavailable naming it", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { tools: { a: { throttle: { perMinute: 2 } } } } })
      const unreachable = Layer.succeed(RateLimitStore.RateLimitStore, {
        admit: () => Effect.fail(new RateLimitStore.RateLimitStoreError({ message: "Redis unreachable" }))
      })
      const stage = yield* Effect.provide(
        Throttler.Throttler.use(Effect.succeed),
        Throttler.layer().pipe(Layer.provide(unreachable))
      )
      let ran = 0
      const caller = stage.wrap(() => Effect.sync(() => (ran++, ok)))
      // A call that would wait for its turn is refused at once, not after a window.
      const exit = yield* Effect.exit(caller(requestOf(config, "s", "a")))
      const reason = reasonOf(exit)
      assert.strictEqual(reason._tag, "LimitStoreUnavailable")
      assert.deepStrictEqual(
        reason._tag === "LimitStoreUnavailable" ? [reason.server, reason.tool, reason.detail] : [],
        [
          "s",
          "a",
          "Redis unreachable"
        ]
      )
      assert.include(Exit.isFailure(exit) ? String(exit.cause) : "", "fail closed")
      assert.strictEqual(ran, 0)
    }))

  it.effect("a call waits a window plus windowMargin (20 ms by default) after the call it follows", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { throttle: { perSecond: 1 } } })
      const { admitted, caller } = yield* recording({ windowMargin: undefined })
      yield* caller(requestOf(config, "s", "t"))
      const waiting = yield* Effect.forkChild(caller(requestOf(config, "s", "t")))
      yield* TestClock.adjust("1019 millis")
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(waiting)
      assert.deepStrictEqual(admitted, [0, 1020])
    }))

  it.effect("waits for its turn up to maxWait, then fails with RateLimited saying when to retry", () =>
    Effect.gen(function*() {
      const config = yield* configOf({
        patient: { throttle: { perSecond: 1, maxWait: "1500 millis" } },
        hasty: { throttle: { perSecond: 1, maxWait: "500 millis" } }
      })
      const { admitted, caller, recorder } = yield* recording()
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
      const reason = rateLimited(yield* Effect.exit(caller(hasty)))
      assert.deepStrictEqual([reason.server, reason.limit, reason.window, reason.retryAfterMillis], [
        "hasty",
        1,
        "second",
        1000
      ])
      assert.include(new Throttler.ThrottlerError({ reason }).message, "1 per second")
      assert.strictEqual(yield* Clock.currentTimeMillis, 1000)
      // Seen by telemetry: one wait of `patient`, one rejection of `hasty`, by the limit that caused them.
      const snapshot = recorder.snapshot()
      const limit = { "mcp_bridge.throttle.limit": "per_second" }
      const server = (name: string) => ({ "mcp_bridge.server": name, ...limit })
      assert.strictEqual(counterValue(snapshot, "mcp_bridge.throttle.waits", server("patient")), 1)
      assert.strictEqual(counterValue(snapshot, "mcp_bridge.throttle.rejections", server("hasty")), 1)
      assert.strictEqual(
        counterValue(snapshot, "mcp_bridge.throttle.rejections", { "mcp_bridge.server": "patient" }),
        0
      )
      const waited = snapshot.find((m) =>
        m.id === "mcp_bridge.throttle.wait.duration" && m.attributes?.["mcp_bridge.server"] === "patient"
      )
      assert.strictEqual((waited?.state as { sum: number } | undefined)?.sum, 1)
    }))

  it.effect("a running call holds its place in the window until it ends: the server never sees N + 1 in a window", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { throttle: { perSecond: 2 } } })
      const stage = yield* Effect.provide(Throttler.Throttler.use(Effect.succeed), stageLayer({ windowMargin: 0 }))
      const gates = [yield* Deferred.make<void>(), yield* Deferred.make<void>()]
      const admitted: Array<number> = []
      let n = 0
      const caller = stage.wrap(() =>
        Effect.gen(function*() {
          const i = n++
          admitted.push(yield* Clock.currentTimeMillis)
          if (i < 2) yield* Deferred.await(gates[i]!)
          return ok
        })
      )
      const request = requestOf(config, "s", "t")
      const first = yield* Effect.forkChild(Effect.all([caller(request), caller(request)], { concurrency: 2 }))
      const third = yield* Effect.forkChild(caller(request))
      yield* TestClock.adjust("5 seconds")
      // Both calls of the window still run: the third waits, however long ago they were admitted.
      assert.deepStrictEqual(admitted, [0, 0])
      yield* Deferred.succeed(gates[0]!, undefined)
      yield* TestClock.adjust("999 millis")
      assert.deepStrictEqual(admitted, [0, 0])
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(third)
      // Admitted a window after the first call ended (at 5 s), not after it was admitted.
      assert.deepStrictEqual(admitted, [0, 0, 6_000])
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Fiber.join(first)
    }))

  it.effect("a rate limit orders admissions only: admitted calls run at once, side by side", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { throttle: { perSecond: 100 } } })
      const stage = yield* Effect.provide(Throttler.Throttler.use(Effect.succeed), stageLayer({ windowMargin: 0 }))
      const release = yield* Deferred.make<void>()
      let inFlight = 0
      let peak = 0
      const caller = stage.wrap(() =>
        Effect.gen(function*() {
          inFlight++
          peak = Math.max(peak, inFlight)
          yield* Deferred.await(release)
          inFlight--
          return ok
        })
      )
      const calls = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 5 }), () => caller(requestOf(config, "s", "t")), {
          concurrency: "unbounded"
        })
      )
      yield* Effect.yieldNow
      for (let i = 0; i < 1_000 && inFlight < 5; i++) yield* Effect.yieldNow
      assert.strictEqual(peak, 5)
      yield* Deferred.succeed(release, undefined)
      assert.strictEqual((yield* Fiber.join(calls)).length, 5)
    }))

  it.effect("bounds calls in flight per server; a waiter past maxWait gets ConcurrencyLimited and holds no slot", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { throttle: { concurrency: 1, maxWait: "1 second" } } })
      const stage = yield* plainStage
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
      assert.strictEqual(running, 1)
      const waiter = yield* Effect.forkChild(Effect.exit(caller(request)))
      yield* TestClock.adjust("1 second")
      const reason = concurrencyLimited(yield* Fiber.join(waiter))
      assert.deepStrictEqual([reason.server, reason.tool, reason.limit, reason.waitedMillis], ["s", undefined, 1, 1000])
      assert.include(new Throttler.ThrottlerError({ reason }).message, "no slot freed within 1000 ms")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(holder)
      // The slot is free again: three calls at once each get it in turn.
      yield* Effect.forEach([1, 2, 3], () => caller(request), { concurrency: "unbounded" })
      assert.strictEqual(peak, 1)
    }))

  it.effect("waiters for an in-flight slot go in order: a caller calling back to back never overtakes them", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { throttle: { concurrency: 1, maxWait: "10 seconds" } } })
      const stage = yield* plainStage
      const started: Array<string> = []
      const ended: Array<string> = []
      const caller = stage.wrap((request) =>
        Effect.sync(() => started.push(request.tool)).pipe(
          Effect.andThen(Effect.sleep("1 millis")),
          Effect.map(() => {
            ended.push(request.tool)
            return ok
          })
        )
      )
      // A hog calls back to back: each of its calls wants the slot the moment its previous one frees it.
      const hog = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 50 }), () => caller(requestOf(config, "s", "hog")), { discard: true })
      )
      yield* TestClock.adjust("2 millis")
      const hogCallsBefore = started.length
      assert.isAbove(hogCallsBefore, 0)
      const waiter = yield* Effect.forkChild(caller(requestOf(config, "s", "waiter")))
      for (let i = 0; i < 10; i++) yield* TestClock.adjust("1 millis")
      yield* Fiber.join(waiter)
      // The waiter got the slot right after the hog's call that held it when it arrived: the hog's later calls,
      // each one wanting the slot as soon as it freed, all came after it.
      assert.strictEqual(ended.indexOf("waiter"), hogCallsBefore)
      assert.strictEqual(started.indexOf("waiter"), hogCallsBefore)
      yield* Fiber.interrupt(hog)
    }))

  it.effect("onLimit fail refuses at once when every slot is taken", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { throttle: { concurrency: 2, onLimit: "fail" } } })
      const stage = yield* plainStage
      let running = 0
      const caller = stage.wrap(() => Effect.andThen(Effect.sync(() => running++), Effect.never))
      const request = requestOf(config, "s", "t")
      yield* Effect.forkChild(caller(request))
      yield* Effect.forkChild(caller(request))
      yield* Effect.yieldNow
      assert.strictEqual(running, 2)
      const reason = concurrencyLimited(yield* Effect.exit(caller(request)))
      assert.deepStrictEqual([reason.limit, reason.waitedMillis], [2, 0])
      assert.strictEqual(running, 2)
    }))

  it.effect("a tool's own in-flight limit applies on top of its server's, and names the tool", () =>
    Effect.gen(function*() {
      const config = yield* configOf({
        s: { throttle: { concurrency: 5, onLimit: "fail" }, tools: { heavy: { throttle: { concurrency: 1 } } } }
      })
      const stage = yield* plainStage
      let running = 0
      const caller = stage.wrap(() => Effect.andThen(Effect.sync(() => running++), Effect.never))
      yield* Effect.forkChild(caller(requestOf(config, "s", "heavy")))
      yield* Effect.yieldNow
      const reason = concurrencyLimited(yield* Effect.exit(caller(requestOf(config, "s", "heavy"))))
      assert.deepStrictEqual([reason.server, reason.tool, reason.limit], ["s", "heavy", 1])
      // Other tools of the server get the server's four other slots, then the server's own limit refuses.
      yield* Effect.forEach([1, 2, 3, 4], () => Effect.forkChild(caller(requestOf(config, "s", "light"))))
      yield* Effect.yieldNow
      assert.strictEqual(running, 5)
      const sixth = concurrencyLimited(yield* Effect.exit(caller(requestOf(config, "s", "light"))))
      assert.deepStrictEqual([sixth.tool, sixth.limit], [undefined, 5])
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
      const { admitted, caller, recorder } = yield* recording()
      yield* Effect.forEach(Array.from({ length: 1000 }), () => caller(requestOf(config, "s", "t")), {
        concurrency: "unbounded"
      })
      assert.strictEqual(admitted.length, 1000)
      assert.deepStrictEqual(recorder.snapshot().filter((m) => m.id.startsWith("mcp_bridge.throttle")), [])
    }))

  it.live("bounds calls in flight on a real in-memory server", () =>
    Effect.gen(function*() {
      const servers = yield* TestBridge.TestServers
      const bridge = yield* McpBridge.McpBridge
      const s = servers.s!
      const all = yield* Effect.forkChild(bridge.callMany(
        Array.from({ length: 12 }, (_, i) => ({ name: "s.slow", arguments: { i } })),
        { concurrency: "unbounded" }
      ))
      // Three calls reach the server and are held there; the other nine wait in the throttler.
      yield* until(s, () => s.held("slow") === 3)
      assert.strictEqual(s.calls("slow"), 3)
      yield* drain(s, "slow", 12)
      const results = yield* Fiber.join(all)
      assert.isTrue(results.every((r) => r._tag === "Success"))
      assert.strictEqual(s.calls("slow"), 12)
      assert.strictEqual(s.peakInFlight(), 3)
    }).pipe(
      Effect.provide(
        TestBridge.layerTest(
          { s: { tools: [{ name: "slow", hold: true, respond: { kind: "echo" } }] } },
          { bridge: { throttle: { concurrency: 3 }, tools: { slow: { readOnly: false } } } }
        )
      )
    ))
})
