/**
 * Section "telemetry": what observability costs on a warm call. The same in-memory echo server is called through
 * five bridges, interleaved: telemetry off; metrics and alerts only (`spans: false`); the default (`spans: "auto"`:
 * with no tracer installed, metrics and alerts only); spans forced with Effect's in-process tracer (`spans: true`:
 * spans, trace context in `_meta`); and the default with OTLP/JSON export of traces and metrics to a local receiver
 * (the exporter installs a tracer, so spans are on).
 */
import { McpBridge, McpTransport, type Telemetry, TelemetryExport } from "@mcp-bridge/core"
import { TestServer } from "@mcp-bridge/testing"
import { ConfigProvider, Layer, ManagedRuntime } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { formatMicros, formatRate, formatRatio, markdownTable, micros } from "../internal/measure.ts"
import { cellJson, errorLines, measureModes, summaryOf } from "../internal/modes.ts"
import type { Cell } from "../internal/modes.ts"
import type { Section } from "../internal/section.ts"
import { callOk, echoSpec } from "../internal/targets.ts"

type Mode = "off" | "metrics" | "on" | "spans" | "otlp"
const modes: ReadonlyArray<Mode> = ["off", "metrics", "on", "spans", "otlp"]
const modeLabel: Record<Mode, string> = {
  off: "telemetry off",
  metrics: "metrics and alerts only (`spans: false`)",
  on: "default (`spans: \"auto\"`, no tracer installed)",
  spans: "spans forced (`spans: true`, in-process tracer)",
  otlp: "default + OTLP export (spans, metrics)"
}
const concurrencies = [1, 50] as const

/** An OTLP/HTTP sink on 127.0.0.1 that accepts and drops what it is sent, counting requests. */
const startSink = () =>
  new Promise<{ readonly url: string; readonly requests: () => number; readonly close: () => Promise<void> }>(
    (resolve) => {
      let requests = 0
      const server = createServer((req, res) => {
        req.resume()
        req.on("end", () => {
          requests++
          res.writeHead(200, { "content-type": "application/json" }).end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resolve({
          url: `http://127.0.0.1:${port}`,
          requests: () => requests,
          close: () => new Promise((r) => server.close(() => r()))
        })
      })
    }
  )

const makeBridge = async (server: TestServer.TestServer, mode: Mode, otlpUrl: string) => {
  const base = McpBridge.layer({ mcpServers: { s: { type: "memory" } } }, {
    transport: McpTransport.layer({ memory: { s: server.connect } }),
    ...(mode === "off"
      ? { telemetry: false as const }
      : mode === "metrics"
      ? { telemetry: { spans: false } }
      : mode === "spans"
      ? { telemetry: { spans: true } }
      : {})
  })
  const env = ConfigProvider.fromUnknown({
    OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_SERVICE_NAME: "mcp-bridge-bench",
    OTEL_METRIC_EXPORT_INTERVAL: "1000",
    OTEL_BSP_SCHEDULE_DELAY: "1000"
  })
  const layer = mode === "otlp"
    ? TelemetryExport.layerOtlp().pipe(Layer.provide(ConfigProvider.layer(env)), Layer.provideMerge(base))
    : base
  const runtime = ManagedRuntime.make(layer)
  const bridge = await runtime.runPromise(McpBridge.McpBridge)
  await runtime.runPromise(bridge.listTools())
  return {
    call: (i: number) => runtime.runPromise(bridge.callTool("s.echo", { i })),
    close: () => runtime.dispose()
  }
}

export const telemetry: Section = async ({ log, quick, rounds }) => {
  const server = TestServer.make(echoSpec)
  const sink = await startSink()
  const bridges = {
    off: await makeBridge(server, "off", sink.url),
    metrics: await makeBridge(server, "metrics", sink.url),
    on: await makeBridge(server, "on", sink.url),
    spans: await makeBridge(server, "spans", sink.url),
    otlp: await makeBridge(server, "otlp", sink.url)
  }
  let cells: ReadonlyArray<Cell<Mode>>
  try {
    cells = await measureModes({
      modes,
      concurrencies,
      rounds,
      log,
      total: (c) => quick ? (c === 1 ? 3_000 : 10_000) : (c === 1 ? 15_000 : 50_000),
      call: (mode) => async (i) => callOk(await bridges[mode].call(i))
    })
  } finally {
    await Promise.all(modes.map((m) => bridges[m].close()))
    await sink.close()
    await server.close()
  }
  log(`  OTLP receiver got ${sink.requests()} requests`)

  const rows = cells.map((cell) => {
    const off = summaryOf(cells, "off", cell.concurrency)
    return [
      String(cell.concurrency),
      modeLabel[cell.mode],
      String(cell.summary.calls),
      micros(cell.summary.p50),
      micros(cell.summary.p95),
      formatRate(cell.summary.callsPerSecond),
      cell.mode === "off" ? "–" : formatMicros(cell.summary.p50 - off.p50),
      cell.mode === "off" ? "–" : formatRatio(cell.summary.callsPerSecond / off.callsPerSecond),
      String(cell.summary.errors)
    ]
  })
  return {
    title: "Telemetry: the cost of observability on a warm call (in-memory echo, interleaved)",
    markdown: [
      markdownTable(
        ["c", "variant", "calls", "p50 µs", "p95 µs", "calls/s", "p50 vs off", "calls/s vs off", "errors"],
        rows,
        ["right", "left", "right", "right", "right", "right", "right", "right", "right"]
      ),
      ...errorLines(cells)
    ].join("\n"),
    json: {
      otlpRequests: sink.requests(),
      cells: cells.map(cellJson)
    }
  }
}
