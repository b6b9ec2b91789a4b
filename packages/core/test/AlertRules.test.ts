import { assert, describe, it } from "@effect/vitest"
import { AlertRules, McpBridge, MetricsRecorder, type MetricsSnapshot, Telemetry } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import { Effect, Fiber, Logger, type Metric, Stream } from "effect"
import { TestClock } from "effect/testing"
import { recorded, until } from "./fixtures.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "fails", respond: { kind: "isError", message: "no such record" } },
  { name: "hang", respond: { kind: "hang" } }
]

const only = { cache: false, coalescing: false, throttle: false, resilience: false } as const

// Every rule off, so that each test switches on the one it checks.
const none: AlertRules.AlertOptions = {
  evaluationInterval: "10 seconds",
  errorRate: false,
  latency: false,
  cacheHitRate: false,
  poolSaturated: false,
  circuitOpen: false
}

/**
 * Runs `body` against a bridge whose telemetry evaluates `alerts` every 10 s over a 1 minute window; returns the events
 * delivered to the callback, and the log lines.
 */
const withAlerts = <A, E>(
  alerts: AlertRules.AlertOptions,
  body: (bridge: McpBridge.McpBridge.Service, events: Array<MetricsSnapshot.AlertEvent>) => Effect.Effect<A, E, any>,
  bridgeSection: Record<string, unknown> = {}
) =>
  Effect.suspend(() => {
    const events: Array<MetricsSnapshot.AlertEvent> = []
    const logs: Array<string> = []
    const logger = Logger.make((o) => {
      logs.push(`${o.logLevel}: ${Array.isArray(o.message) ? o.message.join(" ") : String(o.message)}`)
    })
    return McpBridge.McpBridge.pipe(
      Effect.flatMap((bridge) => body(bridge, events)),
      Effect.provide(TestBridge.layerTest({ alpha: TestServer.make({ tools }) }, {
        ...only,
        bridge: bridgeSection,
        telemetry: { window: "1 minute", alerts: { ...none, ...alerts, onEvent: (e) => void events.push(e) } }
      })),
      Effect.provide(Logger.layer([logger])),
      Effect.map((a) => ({ result: a, events, logs }))
    )
  })

/** Waits until the test server runs `n` tool calls, so that their deadlines have started on the TestClock. */
const untilInFlight = (n: number) =>
  Effect.gen(function*() {
    const servers = yield* TestBridge.TestServers
    yield* until(servers.alpha!, () => servers.alpha!.inFlight() === n)
  })

const brief = (events: ReadonlyArray<MetricsSnapshot.AlertEvent>) =>
  events.map((e) => `${e.rule}:${e.state}:${e.at / 1000}`)

const alertCount = (snapshot: ReadonlyArray<Metric.Metric.Snapshot>, state: string) =>
  snapshot.filter((s) => s.id === "mcp_bridge.alerts" && s.attributes?.["mcp_bridge.alert.state"] === state)
    .reduce((n, s) => n + Number((s.state as Metric.CounterState<number>).count), 0)

describe("AlertRules", () => {
  describe("on the Telemetry stage's schedule", () => {
    it.effect("error rate fires above the threshold and resolves once the window has moved past the errors", () =>
      Effect.gen(function*() {
        const { events, logs, result } = yield* withAlerts(
          { errorRate: { threshold: 0.1, minCalls: 5 } },
          (bridge, events) =>
            Effect.gen(function*() {
              const stream = yield* (yield* Telemetry.Telemetry).alerts.pipe(Stream.take(2), Stream.runCollect)
                .pipe(Effect.forkChild)
              yield* Effect.yieldNow
              for (let i = 0; i < 4; i++) yield* bridge.callTool("alpha.echo", {})
              yield* bridge.callTool("alpha.fails", {})
              yield* TestClock.adjust("10 seconds")
              assert.deepStrictEqual(brief(events), ["error_rate:firing:10"])
              assert.deepStrictEqual((yield* bridge.metrics()).alerts.map((a) => a.rule), ["error_rate"])
              // Healthy calls from now on; the errors leave the window after one minute.
              for (let t = 0; t < 8; t++) {
                for (let i = 0; i < 5; i++) yield* bridge.callTool("alpha.echo", {})
                yield* TestClock.adjust("10 seconds")
              }
              return [yield* Fiber.join(stream), yield* recorded] as const
            })
        )
        // 1 error in 5 calls at 10 s (20 %); healthy calls dilute it to 10 % at 20 s (not above), clear again at 30 s.
        assert.deepStrictEqual(brief(events), ["error_rate:firing:10", "error_rate:resolved:30"])
        const [streamed, snapshot] = result
        assert.deepStrictEqual(brief(streamed), brief(events))
        assert.strictEqual(events[0]!.server, "alpha")
        assert.strictEqual(events[0]!.value, 0.2)
        assert.strictEqual(events[0]!.threshold, 0.1)
        assert.strictEqual(alertCount(snapshot, "firing"), 1)
        assert.strictEqual(alertCount(snapshot, "resolved"), 1)
        assert.include(logs.join("\n"), "Warn: error rate of MCP server \"alpha\" is 20.0 % (threshold 10.0 %)")
        assert.include(logs.join("\n"), "Info: resolved: error rate of MCP server \"alpha\"")
      }))

    it.effect("latency fires on p95 above the threshold and resolves when calls are fast again", () =>
      Effect.gen(function*() {
        const { events } = yield* withAlerts(
          { latency: { p95: "1 second", minCalls: 3 } },
          (bridge) =>
            Effect.gen(function*() {
              const slow = yield* Effect.forEach(
                [1, 2, 3],
                () => bridge.callTool("alpha.hang", {}, { timeout: "2 seconds" }).pipe(Effect.flip, Effect.forkChild)
              )
              yield* untilInFlight(3)
              yield* TestClock.adjust("2 seconds")
              yield* Effect.forEach(slow, Fiber.join)
              yield* TestClock.adjust("8 seconds")
              for (let t = 0; t < 8; t++) yield* TestClock.adjust("10 seconds")
            })
        )
        // Fires at 10 s (p95 = 2 s); the slow samples age out of the 1 minute window, then two clear evaluations.
        assert.deepStrictEqual(brief(events), ["latency:firing:10", "latency:resolved:80"])
        assert.strictEqual(events[0]!.tool, "hang")
        assert.strictEqual(events[0]!.value, 2)
        assert.strictEqual(events[0]!.threshold, 1)
      }))

    it.effect("cache hit rate fires below the threshold and resolves when hits come back", () =>
      Effect.gen(function*() {
        const { events } = yield* withAlerts(
          { cacheHitRate: { threshold: 0.5, minLookups: 10 } },
          () =>
            Effect.gen(function*() {
              // The lookups as the result cache records them, through the bridge's recorder.
              const recorder = yield* MetricsRecorder.MetricsRecorder
              for (let i = 0; i < 10; i++) recorder.cacheLookup("alpha", "echo", "miss")
              yield* TestClock.adjust("10 seconds")
              for (let t = 0; t < 8; t++) {
                for (let i = 0; i < 10; i++) recorder.cacheLookup("alpha", "echo", "hit")
                yield* TestClock.adjust("10 seconds")
              }
            })
        )
        // 0 % at 10 s; at 20 s the window holds 10 misses and 10 hits (50 %: not below), at 30 s 67 %.
        assert.deepStrictEqual(brief(events), ["cache_hit_rate:firing:10", "cache_hit_rate:resolved:30"])
        assert.strictEqual(events[0]!.value, 0)
      }))

    it.effect("pool saturation fires when callers wait for a session at two evaluations, resolves when they stop", () =>
      Effect.gen(function*() {
        const { events } = yield* withAlerts(
          { poolSaturated: { for: 2 } },
          (bridge) =>
            Effect.gen(function*() {
              const calls = yield* Effect.forEach(
                [1, 2],
                () => bridge.callTool("alpha.hang", {}, { timeout: "45 seconds" }).pipe(Effect.flip, Effect.forkChild)
              )
              yield* untilInFlight(1)
              for (let t = 0; t < 10; t++) yield* TestClock.adjust("10 seconds")
              yield* Effect.forEach(calls, Fiber.join)
            }),
          { pool: { max: 1, concurrency: 1, acquireTimeout: "2 minutes" } }
        )
        // Waiting at 10 s and 20 s → fires at 20 s. The first call times out at 45 s, the second holds the session
        // (nobody waits) from then on → clear at 50 s and 60 s → resolves at 60 s.
        assert.deepStrictEqual(brief(events), ["pool_saturated:firing:20", "pool_saturated:resolved:60"])
        assert.strictEqual(events[0]!.value, 1)
      }))

    it.effect("circuit open fires when a breaker opens and resolves when it closes", () =>
      Effect.gen(function*() {
        const { events } = yield* withAlerts({ circuitOpen: true }, () =>
          Effect.gen(function*() {
            // The breaker's state as the resilience stage records it, through the bridge's recorder.
            const recorder = yield* MetricsRecorder.MetricsRecorder
            recorder.breakerState("alpha", "closed")
            yield* TestClock.adjust("10 seconds")
            recorder.breakerTransition("alpha", "closed", "open")
            yield* TestClock.adjust("10 seconds")
            recorder.breakerTransition("alpha", "open", "half_open")
            recorder.breakerTransition("alpha", "half_open", "closed")
            for (let t = 0; t < 3; t++) yield* TestClock.adjust("10 seconds")
          }))
        assert.deepStrictEqual(brief(events), ["circuit_open:firing:20", "circuit_open:resolved:40"])
      }))

    it.effect("a quiet server does not flap: too few calls never fire, and a resolved alert stays resolved", () =>
      Effect.gen(function*() {
        const { events } = yield* withAlerts(
          { errorRate: { threshold: 0.1, minCalls: 5 } },
          (bridge) =>
            Effect.gen(function*() {
              // A failing call now and then, always below minCalls in the window.
              for (let t = 0; t < 12; t++) {
                if (t % 3 === 0) yield* bridge.callTool("alpha.fails", {})
                yield* TestClock.adjust("10 seconds")
              }
              // A burst of errors, then silence: one firing, one resolving, nothing after.
              for (let i = 0; i < 5; i++) yield* bridge.callTool("alpha.fails", {})
              for (let t = 0; t < 30; t++) yield* TestClock.adjust("10 seconds")
            })
        )
        assert.deepStrictEqual(events.map((e) => `${e.rule}:${e.state}`), ["error_rate:firing", "error_rate:resolved"])
      }))

    it.effect("rulesFiring checks the rules against a snapshot's counts since start", () =>
      Effect.gen(function*() {
        const { result } = yield* withAlerts({}, (bridge) =>
          Effect.gen(function*() {
            for (let i = 0; i < 10; i++) yield* bridge.callTool("alpha.fails", {})
            return AlertRules.rulesFiring(yield* bridge.metrics(), { errorRate: { minCalls: 5 }, latency: false })
          }))
        assert.deepStrictEqual(result.map((e) => e.rule), ["error_rate"])
        assert.strictEqual(result[0]!.message, "error rate of MCP server \"alpha\" is 100.0 % (threshold 10.0 %)")
        assert.deepStrictEqual([result[0]!.value, result[0]!.threshold, result[0]!.state], [1, 0.1, "firing"])
      }))

    it.effect("a callback that throws is logged and never stops the rules", () =>
      Effect.gen(function*() {
        const delivered: Array<string> = []
        const logs: Array<string> = []
        const logger = Logger.make((o) => {
          logs.push(`${o.logLevel}: ${Array.isArray(o.message) ? o.message.join(" ") : String(o.message)}`)
        })
        yield* Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          for (let i = 0; i < 5; i++) yield* bridge.callTool("alpha.fails", {})
          yield* TestClock.adjust("10 seconds")
          // Past the window the errors are gone: the rule resolves on a later run, which still happens.
          yield* TestClock.adjust("2 minutes")
        }).pipe(
          Effect.provide(TestBridge.layerTest({ alpha: TestServer.make({ tools }) }, {
            ...only,
            telemetry: {
              window: "1 minute",
              alerts: {
                ...none,
                errorRate: { threshold: 0.1, minCalls: 5 },
                onEvent: (e) => {
                  delivered.push(`${e.rule}:${e.state}`)
                  throw new Error("the pager is down")
                }
              }
            }
          })),
          Effect.provide(Logger.layer([logger]))
        )
        assert.deepStrictEqual(delivered, ["error_rate:firing", "error_rate:resolved"])
        assert.isTrue(logs.some((l) => l.includes("alert callback onEvent failed")))
      }))
  })

  describe("the engine over a snapshot", () => {
    const server = (
      s: Partial<MetricsSnapshot.ServerMetrics> & { readonly server: string }
    ): MetricsSnapshot.ServerMetrics => ({
      calls: 0,
      success: 0,
      toolErrors: 0,
      failures: 0,
      successRate: undefined,
      failuresByReason: {},
      meanMillis: undefined,
      p50Millis: undefined,
      p95Millis: undefined,
      p99Millis: undefined,
      inFlight: 0,
      tools: [],
      cache: { hits: 0, misses: 0, hitRate: undefined, evictions: 0 },
      pool: undefined,
      throttle: { waits: 0, rejections: 0, meanWaitMillis: undefined },
      retries: 0,
      circuitBreaker: undefined,
      ...s
    })
    const snapshot = (...servers: Array<MetricsSnapshot.ServerMetrics>): MetricsSnapshot.BridgeMetrics => ({
      servers,
      cache: { entries: undefined, bytes: undefined },
      alerts: []
    })
    const tool = (name: string, calls: number, p95Millis: number): MetricsSnapshot.ToolMetrics => ({
      tool: name,
      calls,
      success: calls,
      toolErrors: 0,
      failures: 0,
      successRate: 1,
      meanMillis: p95Millis,
      p50Millis: p95Millis,
      p95Millis,
      p99Millis: p95Millis,
      inFlight: 0
    })

    it("rulesFiring with the defaults: error rate above 10 %, p95 above 1 s, hit rate below 50 %, waiting callers, an open circuit", () => {
      const fired = AlertRules.rulesFiring(snapshot(
        server({ server: "errors", calls: 20, success: 17 }), // 15 %
        server({ server: "fine", calls: 20, success: 19, tools: [tool("fast", 20, 999)] }), // 5 %, p95 0.999 s
        server({ server: "slow", calls: 10, success: 10, tools: [tool("q", 10, 1500), tool("few", 9, 5000)] }),
        server({ server: "cold", cache: { hits: 9, misses: 11, hitRate: 0.45, evictions: 0 } }),
        server({
          server: "busy",
          pool: {
            idle: 0,
            inUse: 2,
            pending: 3,
            min: 0,
            max: 2,
            created: 2,
            invalidated: 0,
            connectFailures: 0,
            meanConnectMillis: 1
          }
        }),
        // Callers waiting for the first session to open: a connect under way, not a saturated pool.
        server({
          server: "connecting",
          pool: {
            idle: 0,
            inUse: 0,
            pending: 3,
            min: 0,
            max: 2,
            created: 0,
            invalidated: 0,
            connectFailures: 0,
            meanConnectMillis: undefined
          }
        }),
        server({ server: "dead", circuitBreaker: "open" })
      ))
      assert.deepStrictEqual(fired.map((e) => [e.rule, e.server, e.tool, e.value]), [
        ["error_rate", "errors", undefined, 0.15],
        ["latency", "slow", "q", 1.5],
        ["cache_hit_rate", "cold", undefined, 0.45],
        ["pool_saturated", "busy", undefined, 3],
        ["circuit_open", "dead", undefined, 1]
      ])
      assert.deepStrictEqual(fired.map((e) => e.message), [
        "error rate of MCP server \"errors\" is 15.0 % (threshold 10.0 %)",
        "p95 latency of slow.q is 1500 ms (threshold 1000 ms)",
        "cache hit rate of MCP server \"cold\" is 45.0 % (threshold 50.0 %)",
        "session pool of MCP server \"busy\" is saturated: 3 callers waiting",
        "circuit breaker of MCP server \"dead\" is open"
      ])
    })

    it("at the threshold is not above it; below the minimum counts nothing fires; a rule switched off never fires", () => {
      const edge = snapshot(
        server({ server: "edge", calls: 10, success: 9 }), // exactly 10 %
        server({ server: "few", calls: 9, success: 0 }), // 100 %, but 9 calls < minCalls 10
        server({ server: "half", cache: { hits: 10, misses: 10, hitRate: 0.5, evictions: 0 } })
      )
      assert.deepStrictEqual(AlertRules.rulesFiring(edge), [])
      const strict = AlertRules.rulesFiring(edge, { errorRate: { threshold: 0.05, minCalls: 5 } })
      assert.deepStrictEqual(strict.map((e) => e.server), ["edge", "few"])
      assert.deepStrictEqual(
        AlertRules.rulesFiring(edge, { errorRate: false, cacheHitRate: { threshold: 0.6 } }).map((e) => e.rule),
        ["cache_hit_rate"]
      )
    })

    it("check counts calls since the window's start (base), and reads pool and circuit as they are now", () => {
      const rules = AlertRules.resolve({ errorRate: { minCalls: 5 } })
      const base = snapshot(server({ server: "s", calls: 100, success: 50 }))
      const now = snapshot(server({ server: "s", calls: 110, success: 60, circuitBreaker: "closed" }))
      const checks = AlertRules.check(rules, now, base)
      const errorRate = checks.find((c) => c.rule === "error_rate")!
      assert.deepStrictEqual([errorRate.value, errorRate.breached], [0, false])
      assert.deepStrictEqual(
        AlertRules.check(rules, now, undefined).find((c) => c.rule === "error_rate")?.value,
        50 / 110
      )
      assert.deepStrictEqual(checks.find((c) => c.rule === "circuit_open")?.value, 0)
    })

    it("resolve applies the defaults", () => {
      const rules = AlertRules.resolve()
      assert.deepStrictEqual(rules.errorRate, AlertRules.defaults.errorRate)
      assert.deepStrictEqual(rules.cacheHitRate, AlertRules.defaults.cacheHitRate)
      assert.deepStrictEqual(rules.poolSaturated, AlertRules.defaults.poolSaturated)
      assert.strictEqual(rules.resolveAfter, 2)
      assert.isTrue(rules.circuitOpen)
      assert.strictEqual(AlertRules.resolve({ resolveAfter: 0 }).resolveAfter, 1)
    })
  })
})
