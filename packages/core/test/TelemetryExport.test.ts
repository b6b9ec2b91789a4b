import { assert, describe, it } from "@effect/vitest"
import { McpBridge, MetricsRecorder, TelemetryExport } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import { ConfigProvider, Effect, Layer, Metric } from "effect"
import { createServer, type IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "fails", respond: { kind: "isError", message: "no such record" } }
]

const only = { cache: false, coalescing: false, throttle: false, resilience: false } as const

const bridgeLayer = () => TestBridge.layerTest({ alpha: TestServer.make({ tools }) }, only)

interface Received {
  readonly path: string
  readonly contentType: string
  readonly body: any
}

/** An OTLP/HTTP receiver on 127.0.0.1 that decodes the OTLP/JSON it is sent. */
const receiver = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ readonly url: string; readonly received: Array<Received>; readonly close: () => Promise<void> }>(
      (resolve) => {
        const received: Array<Received> = []
        const server = createServer((req: IncomingMessage, res) => {
          const chunks: Array<Buffer> = []
          req.on("data", (c: Buffer) => chunks.push(c))
          req.on("end", () => {
            received.push({
              path: req.url ?? "",
              contentType: req.headers["content-type"] ?? "",
              body: JSON.parse(Buffer.concat(chunks).toString("utf8"))
            })
            res.writeHead(200, { "content-type": "application/json" }).end("{}")
          })
        })
        server.listen(0, "127.0.0.1", () => {
          const { port } = server.address() as AddressInfo
          resolve({
            url: `http://127.0.0.1:${port}`,
            received,
            close: () => new Promise((r) => server.close(() => r()))
          })
        })
      }
    )
  ),
  (r) => Effect.promise(() => r.close())
)

const attributes = (list: ReadonlyArray<{ key: string; value: Record<string, unknown> }>) =>
  Object.fromEntries(list.map(({ key, value }) => [key, Object.values(value)[0]]))

describe("TelemetryExport", () => {
  it.live("an OTLP/HTTP receiver gets the call spans and the metrics, configured from OTEL_* variables", () =>
    Effect.gen(function*() {
      const otlp = yield* receiver
      const env = ConfigProvider.fromUnknown({
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "bridge-under-test"
      })
      yield* Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        yield* bridge.callTool("alpha.echo", { q: 1 })
        yield* bridge.callTool("alpha.fails", {})
      }).pipe(
        // Closing the layers flushes what the exporters hold.
        Effect.provide(TelemetryExport.layerOtlp().pipe(Layer.provideMerge(bridgeLayer()))),
        Effect.provide(ConfigProvider.layer(env))
      )

      const traces = otlp.received.filter((r) => r.path === "/v1/traces")
      const metrics = otlp.received.filter((r) => r.path === "/v1/metrics")
      assert.isAbove(traces.length, 0)
      assert.isAbove(metrics.length, 0)
      assert.include(traces[0]!.contentType, "application/json")

      const resource = attributes(traces[0]!.body.resourceSpans[0].resource.attributes)
      assert.strictEqual(resource["service.name"], "bridge-under-test")
      const spans = traces.flatMap((t) =>
        t.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans))
      )
      const echo = spans.find((s: any) => s.name === "tools/call echo")
      const fails = spans.find((s: any) => s.name === "tools/call fails")
      assert.isDefined(echo)
      assert.isDefined(fails)
      assert.strictEqual(echo.kind, 3) // SPAN_KIND_CLIENT
      const echoAttributes = attributes(echo.attributes)
      assert.strictEqual(echoAttributes["mcp.method.name"], "tools/call")
      assert.strictEqual(echoAttributes["gen_ai.tool.name"], "echo")
      assert.strictEqual(echoAttributes["mcp_bridge.server"], "alpha")
      assert.strictEqual(echoAttributes["mcp_bridge.result"], "success")
      assert.strictEqual(attributes(fails.attributes)["error.type"], "tool_error")
      const children = spans.filter((s: any) => s.parentSpanId === echo.spanId).map((s: any) => s.name).sort()
      assert.deepStrictEqual(children, ["mcp_bridge.wire"])
      const sameTrace = (s: any) => s.traceId === echo.traceId
      assert.isTrue(spans.filter((s: any) => s.parentSpanId === echo.spanId).every(sameTrace))

      // The last export holds the cumulative state at shutdown.
      const last = metrics[metrics.length - 1]!.body
      const all = last.resourceMetrics.flatMap((rm: any) => rm.scopeMetrics.flatMap((sm: any) => sm.metrics))
      const duration = all.find((m: any) => m.name === "mcp.client.operation.duration")
      assert.strictEqual(duration.unit, "s")
      const points = duration.histogram.dataPoints
      assert.strictEqual(points.reduce((n: number, p: any) => n + Number(p.count), 0), 2)
      const calls = all.find((m: any) => m.name === "mcp_bridge.calls")
      assert.strictEqual(calls.unit, "{call}")
      assert.isTrue(calls.sum.isMonotonic)
      const byOutcome = Object.fromEntries(
        calls.sum.dataPoints.map((p: any) => [
          attributes(p.attributes)["mcp_bridge.outcome"],
          p.asDouble ?? Number(p.asInt)
        ])
      )
      assert.deepStrictEqual(byOutcome, { success: 1, tool_error: 1 })
    }))

  it.live("nothing is exported without an endpoint, or with OTEL_SDK_DISABLED", () =>
    Effect.gen(function*() {
      const otlp = yield* receiver
      for (
        const env of [
          {},
          {
            OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
            OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
            OTEL_SDK_DISABLED: "true"
          },
          { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_TRACES_EXPORTER: "none", OTEL_METRICS_EXPORTER: "none" }
        ]
      ) {
        const calls = yield* McpBridge.McpBridge.use((bridge) =>
          Effect.andThen(bridge.callTool("alpha.echo", {}), bridge.metrics())
        ).pipe(
          Effect.provide(TelemetryExport.layerOtlp().pipe(Layer.provideMerge(bridgeLayer()))),
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
        )
        // The bridge worked (and counted its call): there was something to export.
        assert.strictEqual(calls.servers[0]!.calls, 1)
      }
      assert.deepStrictEqual(otlp.received, [])
    }))

  it.effect("bridgeRegistry gives an exporter of one's own the bridge's registry", () =>
    Effect.gen(function*() {
      const recorder = MetricsRecorder.make()
      recorder.sessionConnected("s", 0.1)
      const snapshot = yield* Metric.snapshot.pipe(
        Effect.provide(TelemetryExport.bridgeRegistry.pipe(
          Layer.provide(Layer.succeed(MetricsRecorder.MetricsRecorder, recorder))
        ))
      )
      assert.deepStrictEqual(snapshot.map((m) => m.id).sort(), [
        "mcp_bridge.session.connect.duration",
        "mcp_bridge.session.connects"
      ])
    }))

  it("prometheusName: dots to underscores, the unit as a suffix, _total on counters; other names unchanged", () => {
    assert.strictEqual(
      TelemetryExport.prometheusName("mcp.client.operation.duration"),
      "mcp_client_operation_duration_seconds"
    )
    assert.strictEqual(TelemetryExport.prometheusName("mcp_bridge.calls"), "mcp_bridge_calls_total")
    assert.strictEqual(TelemetryExport.prometheusName("mcp_bridge.cache.size"), "mcp_bridge_cache_size_bytes")
    assert.strictEqual(TelemetryExport.prometheusName("mcp_bridge.pool.sessions"), "mcp_bridge_pool_sessions")
    assert.strictEqual(TelemetryExport.prometheusName("mcp_bridge.throttle.waits"), "mcp_bridge_throttle_waits_total")
    assert.strictEqual(
      TelemetryExport.prometheusName("mcp_bridge.calls.duration.window"),
      "mcp_bridge_calls_duration_window_seconds"
    )
    assert.strictEqual(TelemetryExport.prometheusName("my.own.metric"), "my.own.metric")
  })

  it("metricDefinitions lists every metric once, each with a unit, a description and its recorder", () => {
    const names = TelemetryExport.metricDefinitions.map((d) => d.name)
    assert.strictEqual(new Set(names).size, names.length)
    assert.includeMembers(names, ["mcp.client.operation.duration", "mcp_bridge.calls", "mcp_bridge.retries"])
    for (const d of TelemetryExport.metricDefinitions) {
      assert.isAbove(d.unit.length, 0, d.name)
      assert.isAbove(d.description.length, 0, d.name)
      assert.include(["Telemetry", "ConnectionPool", "ResultCache", "Throttler", "Resilience"], d.recordedBy)
    }
    assert.strictEqual(TelemetryExport.Attributes.server, "mcp_bridge.server")
  })
})
