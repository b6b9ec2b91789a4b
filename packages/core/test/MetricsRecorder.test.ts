import { assert, describe, it } from "@effect/vitest"
import { McpBridge, MetricsRecorder, MetricsSnapshot, ResultCache, Telemetry } from "@mcp-bridge/core"
import { TestBridge, type TestServer } from "@mcp-bridge/testing"
import { Clock, Effect, Exit, Fiber, Layer, Metric } from "effect"
import { TestClock } from "effect/testing"
import { counterValue, recorded } from "./fixtures.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", respond: { kind: "echo" } },
  { name: "read", respond: { kind: "echo" } },
  { name: "crash", respond: { kind: "crash" } }
]

const callsOf = (metrics: MetricsSnapshot.BridgeMetrics, server: string) =>
  metrics.servers.find((s) => s.server === server)?.calls

describe("MetricsRecorder", () => {
  it.effect("two bridges in one process never count each other's calls", () =>
    Effect.gen(function*() {
      const run = (calls: number) =>
        Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          for (let i = 0; i < calls; i++) yield* bridge.callTool("s.echo", { i })
          return { bridge, recorder: yield* MetricsRecorder.MetricsRecorder }
        })
      // Both bridges are open at once, with a server of the same name.
      const one = yield* Layer.build(TestBridge.layerTest({ s: { tools } }))
      const two = yield* Layer.build(TestBridge.layerTest({ s: { tools } }))
      const first = yield* run(3).pipe(Effect.provide(one))
      const second = yield* run(5).pipe(Effect.provide(two))
      yield* first.bridge.callTool("s.echo", { last: true })
      assert.strictEqual(callsOf(yield* first.bridge.metrics(), "s"), 4)
      assert.strictEqual(callsOf(yield* second.bridge.metrics(), "s"), 5)
      assert.notStrictEqual(first.recorder.registry, second.recorder.registry)
      assert.strictEqual(counterValue(first.recorder.snapshot(), "mcp_bridge.calls"), 4)
      assert.strictEqual(counterValue(second.recorder.snapshot(), "mcp_bridge.calls"), 5)
      // Neither writes to the registry of the fibers that call it.
      assert.deepStrictEqual((yield* Metric.snapshot).filter((m) => m.id.startsWith("mcp")), [])
    }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("off is off: with telemetry false the recorder is the no-op one, and no stage writes to any registry", () =>
    Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      assert.strictEqual(yield* MetricsRecorder.MetricsRecorder, MetricsRecorder.noop)
      // Work every stage: a cache miss and a hit, a throttle wait, retries and an open circuit, the pool.
      yield* bridge.callTool("s.read", { q: 1 })
      yield* bridge.callTool("s.read", { q: 1 })
      const waiting = yield* Effect.forkChild(bridge.callTool("s.echo", { n: 2 }))
      yield* Effect.yieldNow
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("1020 millis") // a window and the throttler's margin
      yield* Fiber.join(waiting)
      for (let i = 0; i < 2; i++) {
        const crashed = yield* Effect.forkChild(Effect.exit(bridge.callTool("s.crash", {})))
        yield* TestClock.adjust("10 seconds")
        assert.isTrue(Exit.isFailure(yield* Fiber.join(crashed)))
      }
      const open = yield* Effect.flip(bridge.callTool("s.crash", {}))
      assert.strictEqual(open._tag, "ResilienceError")
      assert.strictEqual((yield* ResultCache.ResultCache.use((cache) => cache.stats)).hits, 1)
      // Nothing reached the fiber's registry, the no-op recorder's, or the snapshot.
      assert.deepStrictEqual(yield* Metric.snapshot, [])
      assert.strictEqual(MetricsRecorder.noop.registry.size, 0)
      assert.deepStrictEqual(MetricsRecorder.noop.snapshot(), [])
      const metrics = yield* bridge.metrics()
      assert.deepStrictEqual([callsOf(metrics, "s"), metrics.servers[0]!.cache.hits, metrics.servers[0]!.retries], [
        0,
        0,
        0
      ])
      assert.isUndefined(metrics.servers[0]!.circuitBreaker)
    }).pipe(
      Effect.provide(TestBridge.layerTest({ s: { tools } }, {
        telemetry: false,
        bridge: {
          throttle: { perSecond: 1 },
          retry: { times: 2, base: "10 millis" },
          circuitBreaker: { failures: 2, openFor: "1 minute" },
          tools: { read: { cache: "1 minute" }, crash: { idempotent: true } }
        }
      })),
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))

  it.effect("with telemetry on, the same work is recorded in the bridge's own registry only", () =>
    Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      const recorder = yield* MetricsRecorder.MetricsRecorder
      assert.isTrue(recorder.enabled)
      yield* bridge.callTool("s.read", { q: 1 })
      yield* bridge.callTool("s.read", { q: 1 })
      const snapshot = yield* recorded
      assert.strictEqual(counterValue(snapshot, "mcp_bridge.calls"), 2)
      assert.strictEqual(counterValue(snapshot, "mcp_bridge.cache.requests", { "mcp_bridge.cache.result": "hit" }), 1)
      assert.strictEqual(counterValue(snapshot, "mcp_bridge.session.connects", { "mcp_bridge.outcome": "success" }), 1)
      assert.deepStrictEqual(yield* Metric.snapshot, [])
    }).pipe(
      Effect.provide(TestBridge.layerTest({ s: { tools } }, { bridge: { tools: { read: { cache: "1 minute" } } } })),
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))

  it.effect("Telemetry's registry option shares a registry of the caller's (e.g. its own exporters')", () =>
    Effect.gen(function*() {
      const shared: Metric.MetricRegistry = new Map()
      yield* McpBridge.McpBridge.use((bridge) => bridge.callTool("s.echo", {})).pipe(
        Effect.provide(TestBridge.layerTest({ s: { tools } }, { telemetry: { registry: shared } }))
      )
      const snapshot = yield* Metric.snapshot.pipe(Effect.provideService(Metric.MetricRegistry, shared))
      assert.strictEqual(counterValue(snapshot, "mcp_bridge.calls", { "gen_ai.tool.name": "echo" }), 1)
    }))

  describe("make", () => {
    it("records into its own registry, or the one it is given", () => {
      const own = MetricsRecorder.make()
      const registry: Metric.MetricRegistry = new Map()
      const given = MetricsRecorder.make({ registry })
      own.sessionConnected("s", 0.5)
      given.sessionConnectFailed("s")
      assert.strictEqual(given.registry, registry)
      assert.strictEqual(
        counterValue(own.snapshot(), "mcp_bridge.session.connects", { "mcp_bridge.outcome": "success" }),
        1
      )
      assert.strictEqual(
        counterValue(own.snapshot(), "mcp_bridge.session.connects", { "mcp_bridge.outcome": "failure" }),
        0
      )
      assert.strictEqual(
        counterValue(given.snapshot(), "mcp_bridge.session.connects", { "mcp_bridge.outcome": "failure" }),
        1
      )
    })

    it("a call series is made once per server and tool, and its in-flight gauge goes up and down", () => {
      const recorder = MetricsRecorder.make()
      const series = recorder.calls("s", "memory", "t")
      assert.strictEqual(recorder.calls("s", "memory", "t"), series)
      series.started()
      series.started()
      const active = () =>
        recorder.snapshot().find((m) => m.id === "mcp_bridge.calls.active")?.state as { value: number } | undefined
      assert.strictEqual(active()?.value, 2)
      series.succeeded(0.1, Date.now(), false)
      series.failed(0.1, Date.now(), "Timeout")
      assert.strictEqual(active()?.value, 0)
    })

    it("observed gauges are read at snapshot time, until removed", () => {
      const recorder = MetricsRecorder.make()
      let value = 1
      const gauge = Metric.gauge("test.gauge", { attributes: { k: "v" } })
      const remove = recorder.observe([[gauge, () => value]])
      const read = () => (recorder.snapshot().find((m) => m.id === "test.gauge")?.state as { value: number })?.value
      assert.strictEqual(read(), 1)
      value = 7
      assert.strictEqual(read(), 7)
      remove()
      assert.isUndefined(recorder.snapshot().find((m) => m.id === "test.gauge"))
    })

    it.effect("the sliding window ages samples by the recorder's clock", () =>
      Effect.gen(function*() {
        const clock = yield* Clock.Clock
        const recorder = MetricsRecorder.make({ window: "1 minute", clock })
        const series = recorder.calls("s", "memory", "t")
        series.started()
        series.succeeded(0.5, yield* Clock.currentTimeMillis, false)
        const p95 = () => MetricsSnapshot.fromSnapshot(["s"], recorder.snapshot()).servers[0]!.tools[0]!.p95Millis
        assert.strictEqual(p95(), 500)
        yield* TestClock.adjust("59 seconds")
        assert.strictEqual(p95(), 500)
        yield* TestClock.adjust("2 seconds")
        assert.isUndefined(p95())
        // A recorder on the live clock sees the TestClock's samples as decades old.
        const live = MetricsRecorder.make({ window: "1 minute" })
        live.calls("s", "memory", "t").succeeded(0.5, yield* Clock.currentTimeMillis, false)
        assert.isUndefined(MetricsSnapshot.fromSnapshot(["s"], live.snapshot()).servers[0]!.tools[0]!.p95Millis)
      }))

    it("noop records nothing and reports nothing", () => {
      const noop = MetricsRecorder.noop
      assert.isFalse(noop.enabled)
      const series = noop.calls("s", "http", "t")
      series.started()
      series.succeeded(1, 0, false)
      noop.cacheLookup("s", "t", "hit")
      noop.alert("error_rate", "s", "firing")
      noop.observe([[Metric.gauge("noop.gauge"), () => 1]])()
      assert.deepStrictEqual(noop.snapshot(), [])
      assert.strictEqual(noop.registry.size, 0)
    })
  })

  it.effect("Telemetry.layerDisabled provides the no-op recorder, Telemetry.layer a recorder of its own", () =>
    Effect.gen(function*() {
      const disabled = yield* MetricsRecorder.MetricsRecorder.use(Effect.succeed).pipe(
        Effect.provide(Telemetry.layerDisabled)
      )
      assert.strictEqual(disabled, MetricsRecorder.noop)
      const [a, b] = yield* Effect.all(
        [1, 2].map(() =>
          MetricsRecorder.MetricsRecorder.use(Effect.succeed).pipe(Effect.provide(Telemetry.layer({ alerts: false })))
        )
      )
      assert.isTrue(a!.enabled && b!.enabled)
      assert.notStrictEqual(a!.registry, b!.registry)
    }))
})
