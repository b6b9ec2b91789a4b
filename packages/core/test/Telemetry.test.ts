import { assert, describe, it } from "@effect/vitest"
import {
  type AlertRules,
  BridgeConfig,
  ConnectionPool,
  McpBridge,
  type McpSession,
  McpSessionError,
  McpTransport,
  MetricsRecorder,
  MetricsSnapshot,
  Resilience,
  Telemetry,
  ToolPolicy
} from "@mcp-bridge/core"
import { TestBridge, TestServer, TestTracer } from "@mcp-bridge/testing"
import { ConfigProvider, Context, Duration, Effect, Fiber, Layer, Metric, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { counterValue, recorded, until, workload } from "./fixtures.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "fails", respond: { kind: "isError", message: "no such record" } },
  { name: "hang", respond: { kind: "hang" } },
  { name: "held", hold: true, respond: { kind: "echo" } }
]

// Only the telemetry stage: exact counts must not depend on caching, coalescing or retries.
const onlyTelemetry = { cache: false, coalescing: false, throttle: false, resilience: false } as const

/** Runs `effect` with a recording tracer. */
const isolated = <A, E, R>(effect: (spans: ReadonlyArray<Tracer.NativeSpan>) => Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const { spans, tracer } = TestTracer.make()
    return effect(spans).pipe(Effect.provideService(Tracer.Tracer, tracer))
  })

const counter = counterValue

describe("Telemetry", () => {
  it.effect("metric values after a scripted workload", () =>
    isolated(() => {
      const server = TestServer.make({ tools })
      return Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        const timeout = yield* workload(bridge)
        assert.strictEqual(timeout._tag, "McpBridgeError")
        const snapshot = yield* recorded
        const calls = "mcp_bridge.calls"
        assert.strictEqual(counter(snapshot, calls, { "gen_ai.tool.name": "echo", "mcp_bridge.outcome": "success" }), 3)
        const fails = { "gen_ai.tool.name": "fails", "mcp_bridge.outcome": "tool_error" }
        assert.strictEqual(counter(snapshot, calls, fails), 2)
        assert.strictEqual(
          counter(snapshot, calls, {
            "gen_ai.tool.name": "hang",
            "mcp_bridge.outcome": "failure",
            "error.type": "DeadlineExceeded"
          }),
          1
        )
        assert.strictEqual(counter(snapshot, calls, { "mcp_bridge.server": "alpha" }), 6)

        const durations = snapshot.filter((s) => s.id === "mcp.client.operation.duration")
        const total = durations.reduce((n, s) => n + (s.state as Metric.HistogramState).count, 0)
        assert.strictEqual(total, 6)
        const echo = durations.find((s) => s.attributes?.["gen_ai.tool.name"] === "echo")!
        assert.strictEqual(echo.attributes?.["mcp.method.name"], "tools/call")
        assert.strictEqual(echo.attributes?.["gen_ai.operation.name"], "execute_tool")
        assert.strictEqual(echo.attributes?.["network.transport"], "inproc")
        assert.strictEqual(echo.attributes?.unit, "seconds")
        assert.isUndefined(echo.attributes?.["error.type"])
        const hang = durations.find((s) => s.attributes?.["gen_ai.tool.name"] === "hang")!
        assert.strictEqual(hang.attributes?.["error.type"], "DeadlineExceeded")
        assert.strictEqual((hang.state as Metric.HistogramState).sum, 2)

        const active = snapshot.filter((s) => s.id === "mcp_bridge.calls.active")
        assert.isTrue(active.every((s) => (s.state as Metric.GaugeState<number>).value === 0))
        // One session served the whole workload: the hung call's timeout cancelled it on the wire, and the session,
        // which still answered the probe, stayed in service.
        assert.strictEqual(counter(snapshot, "mcp_bridge.session.connects", { "mcp_bridge.outcome": "success" }), 1)
        assert.strictEqual(server.calls(), 6)
      }).pipe(Effect.provide(TestBridge.layerTest({ alpha: server }, onlyTelemetry)))
    }))

  it.effect("one span per call with a child span for the wire call, and one for the wait when there was one", () =>
    isolated((spans) =>
      Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        const alpha = (yield* TestBridge.TestServers).alpha!
        yield* bridge.callTool("alpha.echo", { n: 1 })
        yield* bridge.callTool("alpha.fails", {})
        const calls = spans.filter((s) => s.name.startsWith("tools/call "))
        assert.deepStrictEqual(calls.map((s) => s.name), ["tools/call echo", "tools/call fails"])
        const [echo, fails] = calls as [Tracer.NativeSpan, Tracer.NativeSpan]
        assert.strictEqual(echo.kind, "client")
        assert.strictEqual(echo.attributes.get("mcp.method.name"), "tools/call")
        assert.strictEqual(echo.attributes.get("gen_ai.tool.name"), "echo")
        assert.strictEqual(echo.attributes.get("mcp_bridge.server"), "alpha")
        assert.strictEqual(echo.attributes.get("mcp_bridge.result"), "success")
        assert.strictEqual(echo.attributes.get("mcp_bridge.cache.result"), "none")
        assert.strictEqual(echo.attributes.get("mcp_bridge.retries"), 0)
        assert.isFalse(echo.attributes.has("error.type"))
        assert.strictEqual(echo.status._tag, "Ended")
        assert.strictEqual(fails.attributes.get("mcp_bridge.result"), "tool_error")
        assert.strictEqual(fails.attributes.get("error.type"), "tool_error")

        const childrenOf = (parent: Tracer.NativeSpan) =>
          spans.filter((s) => s.parent._tag === "Some" && s.parent.value === parent)
        // A free session was leased at once: no wait to trace.
        const children = childrenOf(echo)
        assert.deepStrictEqual(children.map((s) => s.name), ["mcp_bridge.wire"])
        const wire = children[0]!
        assert.strictEqual(wire.kind, "client")
        assert.strictEqual(wire.traceId, echo.traceId)
        assert.strictEqual(wire.attributes.get("mcp.protocol.version"), "2026-07-28")
        assert.strictEqual(wire.attributes.get("network.transport"), "inproc")
        // A call that has to wait for the one session gets a span for the wait, before the wire call.
        const holder = yield* Effect.forkChild(bridge.callTool("alpha.held", { n: 1 }))
        yield* until(alpha, () => alpha.held("held") === 1)
        const waiter = yield* Effect.forkChild(bridge.callTool("alpha.echo", { n: 2 }))
        yield* Effect.yieldNow
        assert.strictEqual((yield* ConnectionPool.ConnectionPool.use((pool) => pool.stats))[0]?.pending, 1)
        alpha.release("held")
        yield* Fiber.join(holder)
        yield* Fiber.join(waiter)
        const waited = spans.filter((s) => s.name === "tools/call echo")[1]!
        const waitedChildren = childrenOf(waited)
        assert.deepStrictEqual(waitedChildren.map((s) => s.name), ["mcp_bridge.session.wait", "mcp_bridge.wire"])
        assert.strictEqual(waitedChildren[0]!.kind, "internal")
        assert.strictEqual(waitedChildren[0]!.attributes.get("mcp_bridge.server"), "alpha")
        const heldCall = spans.find((s) => s.name === "tools/call held")!
        assert.deepStrictEqual(childrenOf(heldCall).map((s) => s.name), ["mcp_bridge.wire"])
        // The router's one tools/list of the server has a client span of its own.
        const lists = spans.filter((s) => s.name === "tools/list")
        assert.strictEqual(lists.length, 1)
        assert.strictEqual(lists[0]!.kind, "client")
        assert.strictEqual(lists[0]!.attributes.get("mcp_bridge.server"), "alpha")
        assert.isTrue(spans.every((s) => s.status._tag === "Ended"))
      }).pipe(Effect.provide(TestBridge.layerTest({ alpha: TestServer.make({ tools }) }, {
        ...onlyTelemetry,
        bridge: { pool: { max: 1, concurrency: 1 } }
      })))
    ))

  it.effect("W3C trace context reaches the server in _meta, continuing the caller's trace", () =>
    isolated((spans) =>
      Effect.gen(function*() {
        const server = TestServer.make({ tools })
        yield* Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          yield* bridge.callTool("alpha.echo", {}).pipe(Effect.withSpan("user request"))
          yield* bridge.callTool("alpha.echo", {}, {
            meta: {
              traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
              tracestate: "rojo=00f067aa0ba902b7"
            }
          })
        }).pipe(Effect.provide(TestBridge.layerTest({ alpha: server }, onlyTelemetry)))
        const [first, second] = server.receivedMeta("echo")
        const user = spans.find((s) => s.name === "user request")!
        const wires = spans.filter((s) => s.name === "mcp_bridge.wire")
        assert.strictEqual(first?.traceparent, `00-${user.traceId}-${wires[0]!.spanId}-01`)
        // A traceparent in the caller's meta is the parent of the bridge's spans; tracestate passes through.
        assert.strictEqual(second?.traceparent, `00-4bf92f3577b34da6a3ce929d0e0e4736-${wires[1]!.spanId}-01`)
        assert.strictEqual(second?.tracestate, "rojo=00f067aa0ba902b7")
        const call = spans.filter((s) => s.name === "tools/call echo")[1]!
        assert.strictEqual(call.parent._tag === "Some" && call.parent.value.spanId, "00f067aa0ba902b7")
      })
    ))

  it.effect("telemetry off: no bridge spans, and the caller's meta goes through untouched", () =>
    isolated((spans) =>
      Effect.gen(function*() {
        const server = TestServer.make({ tools })
        yield* McpBridge.McpBridge.use((bridge) => bridge.callTool("alpha.echo", {}, { meta: { k: "v" } })).pipe(
          Effect.provide(TestBridge.layerTest({ alpha: server }, { ...onlyTelemetry, telemetry: false }))
        )
        assert.deepStrictEqual(server.receivedMeta("echo"), [{ k: "v" }])
        assert.isFalse(spans.some((s) => s.name.startsWith("tools/call") || s.name.startsWith("mcp_bridge.")))
      })
    ))

  const retried = (telemetry: Telemetry.Options) =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.decode({
        mcpServers: {
          alpha: {
            type: "memory",
            bridge: {
              retry: { times: 3, base: "10 millis" },
              circuitBreaker: false,
              tools: { echo: { readOnly: true } }
            }
          }
        }
      })
      const server = config.servers.get("alpha")!
      let n = 0
      const session = {
        server: "alpha",
        protocolVersion: "2025-11-25",
        transport: "memory",
        callTool: () =>
          ++n < 3
            ? Effect.fail(
              new McpSessionError.McpSessionError({
                reason: new McpSessionError.Timeout({ server: "alpha", operation: "tools/call", timeoutMillis: 5 })
              })
            )
            : Effect.succeed({ content: [] })
      } as unknown as McpSession.McpSession
      const pool = {
        withSession: (_: unknown, f: (s: McpSession.McpSession) => any) => Effect.suspend(() => f(session))
      } as unknown as ConnectionPool.ConnectionPool.Service
      // One recorder for the bridge, as `McpBridge.layer` gives every stage.
      const recorder = MetricsRecorder.make()
      const stage = yield* Telemetry.make({ ...telemetry, alerts: false }, recorder)
      const resilience = Context.get(
        yield* Layer.build(
          Resilience.layer().pipe(Layer.provide(Layer.succeed(MetricsRecorder.MetricsRecorder, recorder)))
        ),
        Resilience.Resilience
      )
      const call = stage.wrap(resilience.wrap(ConnectionPool.toolCaller(pool, () => {})))
      const fiber = yield* Effect.forkChild(call({
        server,
        tool: "echo",
        arguments: {},
        definition: undefined,
        policy: ToolPolicy.resolve(server, "echo"),
        identity: undefined,
        timeout: server.timeout,
        deadlineAt: Number.MAX_SAFE_INTEGER,
        deadlineMillis: Number.MAX_SAFE_INTEGER,
        meta: undefined
      }))
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(fiber)
      const metrics = MetricsSnapshot.fromSnapshot(["alpha"], recorder.snapshot(), [])
      assert.strictEqual(metrics.servers[0]!.retries, 2)
      assert.strictEqual(metrics.servers[0]!.success, 1)
      const retries = recorder.snapshot().filter((s) => s.id === "mcp_bridge.retries")
      assert.deepStrictEqual(retries.map((s) => s.attributes?.["error.type"]), ["Timeout"])
      assert.strictEqual(counter(retries, "mcp_bridge.retries"), 2)
    }).pipe(Effect.scoped)

  it.effect("each retry is counted once, with the error.type that caused it, and reported on the call span", () =>
    isolated((spans) =>
      Effect.gen(function*() {
        yield* retried({ spans: true })
        const span = spans.find((s) => s.name === "tools/call echo")!
        assert.strictEqual(span.attributes.get("mcp_bridge.retries"), 2)
        assert.strictEqual(spans.filter((s) => s.name === "mcp_bridge.wire").length, 3)
      })
    ))

  it.effect("retries are counted with spans off too", () => isolated(() => retried({ spans: false })))

  it.effect("with the result cache: the span reports hit or miss and the snapshot the hit rate", () =>
    isolated((spans) =>
      Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        yield* bridge.callTool("alpha.echo", { q: 1 })
        yield* bridge.callTool("alpha.echo", { q: 1 })
        yield* bridge.callTool("alpha.fails", {})
        const results = spans.filter((s) => s.name.startsWith("tools/call ")).map((s) =>
          s.attributes.get("mcp_bridge.cache.result")
        )
        assert.deepStrictEqual(results, ["miss", "hit", "none"])
        // A hit never reaches the wire.
        assert.strictEqual(spans.filter((s) => s.name === "mcp_bridge.wire").length, 2)
        const alpha = (yield* bridge.metrics()).servers[0]!
        assert.deepStrictEqual([alpha.cache.hits, alpha.cache.misses, alpha.cache.hitRate], [1, 1, 0.5])
        assert.strictEqual(alpha.calls, 3)
      }).pipe(Effect.provide(TestBridge.layerTest({ alpha: TestServer.make({ tools }) }, {
        coalescing: false,
        throttle: false,
        resilience: false,
        bridge: { tools: { echo: { cache: "1 minute" } } }
      })))
    ))

  it.effect("spans: false keeps the metrics and sends no trace context", () =>
    isolated((spans) => {
      const server = TestServer.make({ tools })
      return Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        yield* bridge.callTool("alpha.echo", {})
        yield* bridge.callTool("alpha.fails", {})
        const alpha = (yield* bridge.metrics()).servers[0]!
        assert.deepStrictEqual([alpha.calls, alpha.success, alpha.toolErrors], [2, 1, 1])
        const ours = spans.map((s) => s.name).filter((n) => n.startsWith("tools/call") || n.startsWith("mcp_bridge"))
        assert.deepStrictEqual(ours, [])
        assert.deepStrictEqual(server.receivedMeta("echo"), [{}])
      }).pipe(
        Effect.provide(TestBridge.layerTest({ alpha: server }, { ...onlyTelemetry, telemetry: { spans: false } }))
      )
    }))

  it.effect("spans: \"auto\" traces only when a tracer is installed; spans: true traces with the default tracer", () =>
    Effect.gen(function*() {
      const quiet = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        yield* bridge.callTool("alpha.echo", {}).pipe(Effect.withSpan("user request"))
        assert.strictEqual((yield* bridge.metrics()).servers[0]!.calls, 1)
      }).pipe(Effect.provide(TestBridge.layerTest({ alpha: quiet }, onlyTelemetry)))
      // Effect's default tracer exports nowhere: no bridge spans, no trace context, metrics still counted.
      assert.deepStrictEqual(quiet.receivedMeta("echo"), [{}])

      const forced = TestServer.make({ tools })
      yield* McpBridge.McpBridge.use((bridge) => bridge.callTool("alpha.echo", {})).pipe(
        Effect.provide(TestBridge.layerTest({ alpha: forced }, { ...onlyTelemetry, telemetry: { spans: true } }))
      )
      assert.match(String(forced.receivedMeta("echo")[0]?.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
    }))

  it.effect("calls that fail while the router fetches a server's tool list count as failures", () =>
    Effect.gen(function*() {
      const up = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        for (let i = 0; i < 3; i++) {
          const error = yield* Effect.flip(bridge.callTool("down.echo", {}))
          assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "ConnectFailed")
        }
        yield* Effect.flip(bridge.callTool("up.nope", {}))
        const metrics = yield* bridge.metrics()
        const down = metrics.servers.find((s) => s.server === "down")!
        assert.deepStrictEqual([down.calls, down.failures, down.successRate], [3, 3, 0])
        assert.deepStrictEqual(down.failuresByReason, { ConnectFailed: 3 })
        const unknown = (yield* recorded).filter((m) =>
          m.id === "mcp_bridge.calls" && m.attributes?.["gen_ai.tool.name"] === "_unknown"
        )
        assert.deepStrictEqual(unknown.map((m) => m.attributes?.["error.type"]), ["UnknownTool"])
        assert.strictEqual(counter(unknown, "mcp_bridge.calls"), 1)
      }).pipe(Effect.provide(McpBridge.layer(
        { mcpServers: { up: { type: "memory" }, down: { type: "memory", bridge: { retry: false } } } },
        { ...onlyTelemetry, transport: McpTransport.layer({ memory: { up: up.connect } }) }
      )))
    }))

  it.effect("wireSpans: false keeps the call span but traces neither the session wait nor the wire, and sends no trace context", () =>
    isolated((spans) => {
      const server = TestServer.make({ tools })
      return Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        yield* bridge.callTool("alpha.echo", { n: 1 }, { meta: { k: "v" } })
        const call = spans.find((s) => s.name === "tools/call echo")
        assert.strictEqual(call?.attributes.get("mcp_bridge.result"), "success")
        assert.deepStrictEqual(
          spans.filter((s) => s.name === "mcp_bridge.wire" || s.name === "mcp_bridge.session.wait"),
          []
        )
        // The caller's meta goes through as it is: no traceparent is added.
        assert.deepStrictEqual(server.receivedMeta("echo"), [{ k: "v" }])
        assert.strictEqual((yield* bridge.metrics()).servers[0]!.calls, 1)
      }).pipe(
        Effect.provide(TestBridge.layerTest({ alpha: server }, { ...onlyTelemetry, telemetry: { wireSpans: false } }))
      )
    }))

  describe("options from the environment", () => {
    const env = (values: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromUnknown(values))

    it.effect("optionsFromConfig: alert thresholds come from the options, then from MCP_BRIDGE_ALERT_* variables", () =>
      Effect.gen(function*() {
        const given = { alerts: { errorRate: { threshold: 0.2 }, cacheHitRate: false as const } }
        const options = yield* Telemetry.optionsFromConfig(given).pipe(
          Effect.provide(env({
            MCP_BRIDGE_ALERT_LATENCY_P95: "2 seconds",
            MCP_BRIDGE_ALERT_MIN_CALLS: "50",
            MCP_BRIDGE_TELEMETRY_WINDOW: "10 minutes"
          }))
        )
        const alerts = options.alerts as AlertRules.AlertOptions
        assert.deepStrictEqual(alerts.errorRate, { threshold: 0.2, minCalls: 50 })
        assert.isFalse(alerts.cacheHitRate)
        const latency = alerts.latency as { p95: Duration.Duration; minCalls: number }
        assert.isTrue(Duration.equals(latency.p95, Duration.seconds(2)))
        assert.strictEqual(latency.minCalls, 50)
        assert.isTrue(Duration.equals(options.window as Duration.Duration, Duration.minutes(10)))
      }))

    it.effect("optionsFromConfig: a value that does not parse is a ConfigError naming the variable", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Telemetry.optionsFromConfig().pipe(Effect.provide(env({ MCP_BRIDGE_ALERT_ERROR_RATE: "often" })))
        )
        assert.include(String(error), "MCP_BRIDGE_ALERT_ERROR_RATE")
      }))

    it.effect("layerConfig: the stage runs with the environment's window and thresholds", () =>
      Effect.gen(function*() {
        const telemetry = yield* Telemetry.Telemetry
        const recorder = yield* MetricsRecorder.MetricsRecorder
        assert.isTrue(Duration.equals(telemetry.window, Duration.minutes(2)))
        assert.isTrue(recorder.enabled)
        // An error rate of 1 in 3 fires with the environment's threshold (0.3) and minimum (3 calls), not the
        // defaults (10 %, 10 calls).
        const config = yield* BridgeConfig.decode({ mcpServers: { s: { type: "memory" } } })
        const server = config.servers.get("s")!
        const request = {
          server,
          tool: "t",
          arguments: {},
          definition: undefined,
          policy: ToolPolicy.resolve(server, "t"),
          identity: undefined,
          timeout: server.timeout,
          deadlineAt: Number.MAX_SAFE_INTEGER,
          deadlineMillis: Number.MAX_SAFE_INTEGER,
          meta: undefined
        }
        const caller = telemetry.wrap((r) =>
          r.arguments.fail === true
            ? Effect.fail("boom")
            : Effect.succeed({ content: [] })
        )
        yield* Effect.exit(caller({ ...request, arguments: { fail: true } }))
        yield* caller(request)
        yield* caller(request)
        const fired = yield* telemetry.evaluateAlerts
        assert.deepStrictEqual(fired.map((e) => [e.rule, e.state, e.threshold]), [["error_rate", "firing", 0.3]])
      }).pipe(
        Effect.provide(Telemetry.layerConfig({ alerts: { latency: false, cacheHitRate: false } })),
        Effect.provide(env({
          MCP_BRIDGE_TELEMETRY_WINDOW: "2 minutes",
          MCP_BRIDGE_ALERT_ERROR_RATE: "0.3",
          MCP_BRIDGE_ALERT_MIN_CALLS: "3"
        }))
      ))

    it.effect("layerConfig fails with the ConfigError of a bad variable", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Layer.build(Telemetry.layerConfig()).pipe(
            Effect.provide(env({ MCP_BRIDGE_ALERT_INTERVAL: "every now and then" }))
          )
        )
        assert.include(String(error), "MCP_BRIDGE_ALERT_INTERVAL")
      }))
  })
})
