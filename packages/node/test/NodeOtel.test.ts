import { assert, describe, it } from "@effect/vitest"
import { McpBridge, McpTransport } from "@mcp-bridge/core"
import { createBridge, NodeOtel } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { context, createTraceState, metrics, propagation, type Span, trace, TraceFlags } from "@opentelemetry/api"
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor
} from "@opentelemetry/sdk-trace-base"
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import { createServer, type IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import { afterEach } from "vitest"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } }
]
const config = { mcpServers: { docs: { type: "memory" } } }

/** The OpenTelemetry JS SDK as an app registers it: a Node tracer provider and a meter provider, globally. */
const registerSdk = () => {
  const spans = new InMemorySpanExporter()
  const tracerProvider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
  tracerProvider.register() // global tracer provider, AsyncLocalStorage context manager, W3C propagator
  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 3_600_000
  })
  const meterProvider = new MeterProvider({ readers: [reader] })
  metrics.setGlobalMeterProvider(meterProvider)
  shutdowns.push(() => tracerProvider.shutdown(), () => meterProvider.shutdown())
  return { spans, reader, tracer: trace.getTracer("app") }
}

const shutdowns: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const shutdown of shutdowns.splice(0)) await shutdown()
  trace.disable()
  metrics.disable()
  context.disable()
  propagation.disable()
})

// An app span whose own parent came from upstream with a `tracestate`, so that the app span carries one.
const upstream = () =>
  trace.setSpanContext(context.active(), {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: createTraceState("vendor=abc")
  })

const inSpan = <A>(tracer: ReturnType<typeof trace.getTracer>, name: string, f: (span: Span) => Promise<A>) =>
  tracer.startActiveSpan(name, {}, upstream(), (span) => f(span).finally(() => span.end()))

const named = (spans: ReadonlyArray<ReadableSpan>, name: string) => {
  const found = spans.filter((s) => s.name === name)
  assert.isAbove(found.length, 0, `no span named ${name} in ${spans.map((s) => s.name).join(", ")}`)
  return found
}

const metricsOf = (collected: CollectionResult) =>
  collected.resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics)

const total = (collected: CollectionResult, name: string, attributes: Record<string, string> = {}) =>
  metricsOf(collected).filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints as Array<any>)
    .filter((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v))
    .reduce((n, p) => n + (typeof p.value === "number" ? p.value : p.value.count), 0)

describe("NodeOtel", () => {
  it("createBridge in an app with the OpenTelemetry SDK: spans under the app's active span, trace context to the server, metrics in the app's meter provider", async () => {
    const sdk = registerSdk()
    assert.deepStrictEqual(NodeOtel.registered(), { tracerProvider: true, meterProvider: true })
    const server = TestServer.make({ tools })
    const bridge = await createBridge(config, { memory: { docs: server.connect } })
    const { app, result } = await inSpan(sdk.tracer, "app.request", async (app) => ({
      app,
      result: await bridge.callTool("docs.echo", { q: 1 })
    }))
    // callMany reads the active span once, for all its calls.
    const many = await inSpan(sdk.tracer, "app.batch", async (batch) => ({
      batch,
      outcomes: await bridge.callMany([{ name: "docs.echo", arguments: { q: 2 } }, {
        name: "docs.echo",
        arguments: { q: 3 }
      }])
    }))

    const spans = sdk.spans.getFinishedSpans()
    const call = named(spans, "tools/call echo").find((s) => s.parentSpanContext?.spanId === app.spanContext().spanId)!
    assert.isDefined(call, "the call span is a child of the app's active span")
    const wire = named(spans, "mcp_bridge.wire").find((s) => s.parentSpanContext?.spanId === call.spanContext().spanId)!
    assert.isDefined(wire, "the wire span is a child of the call span")
    const traceId = app.spanContext().traceId
    assert.strictEqual(call.spanContext().traceId, traceId)
    assert.strictEqual(wire.spanContext().traceId, traceId)
    assert.strictEqual(call.kind, 2) // SpanKind.CLIENT
    assert.strictEqual(call.attributes["mcp.method.name"], "tools/call")
    assert.strictEqual(call.instrumentationScope.name, "@mcp-bridge/node")
    assert.strictEqual(call.spanContext().traceState?.get("vendor"), "abc")

    // The server received that trace: the wire span's traceparent, and the app's tracestate.
    const meta = (result.structuredContent as { meta: Record<string, unknown> }).meta
    assert.strictEqual(meta.traceparent, `00-${traceId}-${wire.spanContext().spanId}-01`)
    assert.strictEqual(meta.tracestate, "vendor=abc")

    const batchCalls = named(spans, "tools/call echo").filter((s) =>
      s.parentSpanContext?.spanId === many.batch.spanContext().spanId
    )
    assert.strictEqual(batchCalls.length, 2)
    assert.isTrue(many.outcomes.every((o) => o.ok))

    // The bridge's metrics in the app's meter provider (its reader's collection).
    const collected = await sdk.reader.collect()
    assert.strictEqual(total(collected, "mcp.client.operation.duration", { "mcp_bridge.server": "docs" }), 3)
    const duration = metricsOf(collected).find((m) => m.descriptor.name === "mcp.client.operation.duration")!
    assert.strictEqual(duration.descriptor.unit, "s")
    assert.strictEqual(duration.dataPointType, DataPointType.HISTOGRAM)
    assert.strictEqual(total(collected, "mcp_bridge.calls", { "mcp_bridge.outcome": "success" }), 3)

    // Closed, the bridge leaves the app's reader.
    await bridge.close()
    assert.strictEqual(total(await sdk.reader.collect(), "mcp_bridge.calls"), 0)
  })

  it("a call outside any span is a root trace, and a call's own traceparent wins", async () => {
    const sdk = registerSdk()
    const server = TestServer.make({ tools })
    await using bridge = await createBridge(config, { memory: { docs: server.connect } })
    await bridge.callTool("docs.echo", {})
    const own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await inSpan(sdk.tracer, "app", () => bridge.callTool("docs.echo", {}, { meta: { traceparent: own } }))
    const [root, continued] = named(sdk.spans.getFinishedSpans(), "tools/call echo")
    assert.isUndefined(root!.parentSpanContext)
    assert.strictEqual(continued!.parentSpanContext?.spanId, "b7ad6b7169203331")
    assert.strictEqual(continued!.spanContext().traceId, "0af7651916cd43dd8448eb211c80319c")
    assert.isUndefined(server.receivedMeta()[1]!.tracestate, "no tracestate of another trace")
  })

  it("NodeOtel.layerGlobal: an Effect program's bridge spans under the app's active span, metrics in its meter provider", async () => {
    const sdk = registerSdk()
    const server = TestServer.make({ tools })
    const Live = NodeOtel.layerGlobal().pipe(
      Layer.provideMerge(
        McpBridge.layer(config, { transport: McpTransport.layer({ memory: { docs: server.connect } }) })
      )
    )
    const program = Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      yield* bridge.callTool("docs.echo", { q: 1 }).pipe(Effect.withSpan("app.step"))
      return yield* Effect.promise(() => sdk.reader.collect())
    })
    const { app, collected } = await inSpan(sdk.tracer, "app.job", async (app) => ({
      app,
      collected: await Effect.runPromise(program.pipe(Effect.provide(Live)))
    }))
    const spans = sdk.spans.getFinishedSpans()
    const [step] = named(spans, "app.step")
    const [call] = named(spans, "tools/call echo")
    const [wire] = named(spans, "mcp_bridge.wire")
    assert.strictEqual(step!.parentSpanContext?.spanId, app.spanContext().spanId)
    assert.strictEqual(call!.parentSpanContext?.spanId, step!.spanContext().spanId)
    assert.strictEqual(wire!.parentSpanContext?.spanId, call!.spanContext().spanId)
    assert.isTrue([step, call, wire].every((s) => s!.spanContext().traceId === app.spanContext().traceId))
    assert.strictEqual(
      server.receivedMeta()[0]!.traceparent,
      `00-${app.spanContext().traceId}-${wire!.spanContext().spanId}-01`
    )
    assert.strictEqual(total(collected, "mcp.client.operation.duration"), 1)
    assert.strictEqual(total(collected, "mcp_bridge.calls", { "mcp_bridge.outcome": "success" }), 1)
    // The layer closed: the bridge left the reader.
    assert.strictEqual(total(await sdk.reader.collect(), "mcp_bridge.calls"), 0)
  })

  it("without OpenTelemetry registered: no spans, no trace context sent, nothing installed", async () => {
    assert.deepStrictEqual(NodeOtel.registered(), { tracerProvider: false, meterProvider: false })
    // A provider the app made but never registered sees nothing.
    const spans = new InMemorySpanExporter()
    const unregistered = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
    shutdowns.push(() => unregistered.shutdown())
    const server = TestServer.make({ tools })
    await using bridge = await createBridge(config, { memory: { docs: server.connect } })
    await unregistered.getTracer("app").startActiveSpan("app", async (span) => {
      await bridge.callTool("docs.echo", {})
      span.end()
    })
    assert.deepStrictEqual(server.receivedMeta(), [{}])
    assert.deepStrictEqual(spans.getFinishedSpans().map((s) => s.name), ["app"])
  })

  it("NodeOtel.layerGlobal with no provider registered leaves the tracer alone: no invalid traceparent", async () => {
    const server = TestServer.make({ tools })
    const Live = NodeOtel.layerGlobal().pipe(
      Layer.provideMerge(
        McpBridge.layer(config, { transport: McpTransport.layer({ memory: { docs: server.connect } }) })
      )
    )
    await Effect.runPromise(
      McpBridge.McpBridge.use((bridge) => bridge.callTool("docs.echo", {})).pipe(Effect.provide(Live))
    )
    assert.deepStrictEqual(server.receivedMeta(), [{}])
  })

  it("without OpenTelemetry installed: createBridge runs with no OpenTelemetry package but the API", async () => {
    const fixture = fileURLToPath(new URL("./fixtures/noOtelSdk.ts", import.meta.url))
    const output = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ["--conditions=@mcp-bridge/source", fixture],
        (error, stdout, stderr) => error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)
      )
    )
    const report = JSON.parse(output.trim().split("\n").pop()!)
    assert.deepStrictEqual(report.meta, {})
    assert.deepStrictEqual(report.blocked, [])
    assert.isTrue(report.loaded.includes("@opentelemetry/api"))
  })

  it("production: true exports traces and metrics over OTLP from OTEL_*, and leaves export to an app's SDK", async () => {
    const otlp = await receiver()
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "agent"
    }
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
    Object.assign(process.env, env)
    try {
      const server = TestServer.make({ tools })
      const bridge = await createBridge(config, { memory: { docs: server.connect }, production: true })
      await bridge.callTool("docs.echo", { q: 1 })
      await bridge.close() // flushes the exporters
      const spanNames = otlp.received.filter((r) => r.path === "/v1/traces").flatMap((r) =>
        r.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans.map((s: any) => s.name)))
      )
      assert.includeMembers(spanNames, ["tools/call echo", "mcp_bridge.wire"])
      const metricNames = otlp.received.filter((r) => r.path === "/v1/metrics").flatMap((r) =>
        r.body.resourceMetrics.flatMap((rm: any) =>
          rm.scopeMetrics.flatMap((sm: any) => sm.metrics.map((m: any) => m.name))
        )
      )
      assert.includeMembers(metricNames, ["mcp.client.operation.duration", "mcp_bridge.calls"])

      // With the app's SDK registered, the app's SDK exports: the spans are in its exporter, nothing goes to OTLP.
      otlp.received.length = 0
      const sdk = registerSdk()
      const second = await createBridge(config, { memory: { docs: server.connect }, production: true })
      await inSpan(sdk.tracer, "app", () => second.callTool("docs.echo", { q: 2 }))
      await second.close()
      assert.strictEqual(named(sdk.spans.getFinishedSpans(), "tools/call echo").length, 1)
      assert.deepStrictEqual(otlp.received.map((r) => r.path), [])
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
      await otlp.close()
    }
  })
})

/** An OTLP/HTTP receiver on 127.0.0.1 that decodes the OTLP/JSON it is sent. */
const receiver = () =>
  new Promise<{
    readonly url: string
    readonly received: Array<{ readonly path: string; readonly body: any }>
    readonly close: () => Promise<void>
  }>((resolve) => {
    const received: Array<{ readonly path: string; readonly body: any }> = []
    const server = createServer((req: IncomingMessage, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        received.push({ path: req.url ?? "", body: JSON.parse(Buffer.concat(chunks).toString("utf8")) })
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({ url: `http://127.0.0.1:${port}`, received, close: () => new Promise((r) => server.close(() => r())) })
    })
  })
