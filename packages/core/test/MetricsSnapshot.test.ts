import { assert, describe, it } from "@effect/vitest"
import { McpBridge, MetricsRecorder, MetricsSnapshot } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import { Effect } from "effect"
import * as Metrics from "../src/internal/metrics.ts"
import { workload } from "./fixtures.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "fails", respond: { kind: "isError", message: "no such record" } },
  { name: "hang", respond: { kind: "hang" } }
]

const onlyTelemetry = { cache: false, coalescing: false, throttle: false, resilience: false } as const

describe("MetricsSnapshot", () => {
  it.effect("bridge.metrics() gives success rate, latency percentiles and counts per server and tool", () =>
    Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      yield* workload(bridge)
      const metrics = yield* bridge.metrics()
      assert.strictEqual(metrics.servers.length, 1)
      const alpha = metrics.servers[0]!
      assert.strictEqual(alpha.server, "alpha")
      assert.deepStrictEqual([alpha.calls, alpha.success, alpha.toolErrors, alpha.failures], [6, 3, 2, 1])
      assert.strictEqual(alpha.successRate, 0.5)
      assert.deepStrictEqual(alpha.failuresByReason, { DeadlineExceeded: 1 })
      assert.strictEqual(alpha.inFlight, 0)
      const hang = alpha.tools.find((t) => t.tool === "hang")!
      assert.strictEqual(hang.calls, 1)
      assert.deepStrictEqual([hang.p50Millis, hang.p95Millis, hang.p99Millis, hang.meanMillis], [
        2000,
        2000,
        2000,
        2000
      ])
      const echo = alpha.tools.find((t) => t.tool === "echo")!
      assert.strictEqual(echo.calls, 3)
      assert.strictEqual(echo.successRate, 1)
      // On the TestClock an in-memory call takes no time.
      assert.strictEqual(echo.p95Millis, 0)
      assert.deepStrictEqual(alpha.tools.map((t) => t.tool), ["echo", "fails", "hang"])
      // Over all tools of the server: five calls of 0 ms and one of 2 s.
      assert.deepStrictEqual([alpha.p50Millis, alpha.p99Millis], [0, 2000])
      assert.closeTo(alpha.meanMillis!, 2000 / 6, 1e-9)
      // The session the hung call timed out on answered its probe: kept, not replaced.
      assert.deepStrictEqual([alpha.pool?.created, alpha.pool?.invalidated], [1, 0])
      assert.strictEqual(alpha.pool?.inUse, 0)
      assert.strictEqual(alpha.cache.hitRate, undefined)
      assert.deepStrictEqual(alpha.throttle, { waits: 0, rejections: 0, meanWaitMillis: undefined })
      assert.strictEqual(alpha.retries, 0)
      assert.deepStrictEqual(metrics.alerts, [])
    }).pipe(Effect.provide(TestBridge.layerTest({ alpha: TestServer.make({ tools }) }, onlyTelemetry))))

  describe("fromSnapshot over a recorder's series", () => {
    it("counts per tool and per server, by outcome and failure reason", () => {
      const recorder = MetricsRecorder.make()
      // Samples are stamped with the clock the recorder ages them by (here the live one).
      const now = Date.now()
      const get = recorder.calls("a", "http", "get")
      const put = recorder.calls("a", "http", "put")
      for (const seconds of [0.1, 0.2, 0.3]) {
        get.started()
        get.succeeded(seconds, now, false)
      }
      put.started()
      put.succeeded(0.4, now, true)
      put.started()
      put.failed(1, now, "Timeout")
      put.refused("RateLimited")
      recorder.calls("b", "stdio", "x").started()
      const metrics = MetricsSnapshot.fromSnapshot(undefined, recorder.snapshot())
      assert.deepStrictEqual(metrics.servers.map((s) => s.server), ["a", "b"])
      const [a, b] = metrics.servers
      assert.deepStrictEqual([a!.calls, a!.success, a!.toolErrors, a!.failures], [6, 3, 1, 2])
      assert.deepStrictEqual(a!.failuresByReason, { Timeout: 1, RateLimited: 1 })
      assert.strictEqual(a!.successRate, 0.5)
      // A refused call has no latency: the mean is over the five that ran.
      assert.closeTo(a!.meanMillis!, (100 + 200 + 300 + 400 + 1000) / 5, 1e-9)
      const getMetrics = a!.tools.find((t) => t.tool === "get")!
      assert.deepStrictEqual([getMetrics.calls, getMetrics.successRate, getMetrics.p50Millis, getMetrics.p99Millis], [
        3,
        1,
        200,
        300
      ])
      assert.deepStrictEqual([b!.calls, b!.inFlight], [0, 1])
    })

    it("lists the servers it is given, in that order, those without metrics too", () => {
      const recorder = MetricsRecorder.make()
      recorder.calls("b", "http", "t").refused("UnknownTool")
      const metrics = MetricsSnapshot.fromSnapshot(["c", "b", "a"], recorder.snapshot())
      assert.deepStrictEqual(metrics.servers.map((s) => [s.server, s.calls]), [["c", 0], ["b", 1], ["a", 0]])
      assert.isUndefined(metrics.servers[0]!.successRate)
      assert.isUndefined(metrics.servers[0]!.pool)
    })

    it("reads cache, throttle, retries and circuit state", () => {
      const recorder = MetricsRecorder.make()
      recorder.cacheLookup("s", "t", "hit")
      recorder.cacheLookup("s", "t", "hit")
      recorder.cacheLookup("s", "t", "hit")
      recorder.cacheLookup("s", "t", "miss")
      recorder.cacheEvicted("s", "capacity", 2)
      recorder.cacheEvicted("s", "expired", 1)
      recorder.throttleWaited("s", "per_second", 0.25)
      recorder.throttleWaited("s", "concurrency", 0.75)
      recorder.throttleRejected("s", "per_minute")
      recorder.retried("s", "t", "Closed")
      recorder.retried("s", "u", "Timeout")
      recorder.breakerState("s", "closed")
      recorder.breakerTransition("s", "closed", "open")
      const [s] = MetricsSnapshot.fromSnapshot(["s"], recorder.snapshot()).servers
      assert.deepStrictEqual(s!.cache, { hits: 3, misses: 1, hitRate: 0.75, evictions: 3 })
      assert.deepStrictEqual(s!.throttle, { waits: 2, rejections: 1, meanWaitMillis: 500 })
      assert.strictEqual(s!.retries, 2)
      assert.strictEqual(s!.circuitBreaker, "open")
    })

    it("takes the pool figures from the pools' stats, summed over a server's pools, else from the pool gauges", () => {
      const recorder = MetricsRecorder.make()
      const stats = (identity: string, inUse: number, created: number, mean: number) => ({
        server: "s",
        identity,
        idle: 1,
        inUse,
        pending: 0,
        connecting: 0,
        min: 0,
        max: 2,
        created,
        invalidated: 0,
        connectFailures: 1,
        lastConnectMillis: mean,
        meanConnectMillis: mean
      })
      const [s] = MetricsSnapshot.fromSnapshot(["s"], recorder.snapshot(), [stats("a", 1, 1, 10), stats("b", 0, 3, 30)])
        .servers
      assert.deepStrictEqual(s!.pool, {
        idle: 2,
        inUse: 1,
        pending: 0,
        min: 0,
        max: 4,
        created: 4,
        invalidated: 0,
        connectFailures: 2,
        meanConnectMillis: 25
      })
      // Without stats (e.g. read from an exporter's registry), the pool gauges give what they can.
      const attrs = { [Metrics.Attr.server]: "s" }
      recorder.observe([
        [Metrics.gaugeOf(Metrics.definitions.poolSessions, { ...attrs, [Metrics.Attr.sessionState]: "idle" }), () => 3],
        [Metrics.gaugeOf(Metrics.definitions.poolSessions, { ...attrs, [Metrics.Attr.sessionState]: "used" }), () => 2],
        [Metrics.gaugeOf(Metrics.definitions.poolPending, attrs), () => 5],
        [Metrics.gaugeOf(Metrics.definitions.poolMax, attrs), () => 8]
      ])
      const [fromGauges] = MetricsSnapshot.fromSnapshot(["s"], recorder.snapshot()).servers
      assert.deepStrictEqual(fromGauges!.pool, {
        idle: 3,
        inUse: 2,
        pending: 5,
        min: 0,
        max: 8,
        created: 0,
        invalidated: 0,
        connectFailures: 0,
        meanConnectMillis: undefined
      })
    })
  })
})
