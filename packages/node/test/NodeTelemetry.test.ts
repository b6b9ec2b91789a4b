import { assert, describe, it } from "@effect/vitest"
import { McpBridge, MetricsRecorder } from "@mcp-bridge/core"
import { NodeTelemetry, NodeTransport } from "@mcp-bridge/node"
import { TestServer, TestTracer } from "@mcp-bridge/testing"
import { Effect, Layer, Logger, References, Tracer } from "effect"
import { HttpServer } from "effect/http"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "fails", respond: { kind: "isError", message: "no such record" } }
]

// Only the telemetry stage, so that the counts are exact.
const only = { cache: false, coalescing: false, throttle: false, resilience: false } as const

interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** Parses Prometheus text exposition format (0.0.4): TYPE lines and samples. */
const parsePrometheus = (text: string) => {
  const types = new Map<string, string>()
  const samples: Array<Sample> = []
  for (const line of text.split("\n")) {
    if (line === "") continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) {
      types.set(type[1]!, type[2]!)
      continue
    }
    if (line.startsWith("#")) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`not Prometheus text: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!
    samples.push({ name: m[1]!, labels, value: m[3] === "+Inf" ? Infinity : Number(m[3]) })
  }
  return { types, samples }
}

const value = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string>) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0)

const scrape = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const address = server.address as unknown as { readonly port: number }
  const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${address.port}/metrics`))
  assert.strictEqual(response.status, 200)
  assert.include(response.headers.get("content-type") ?? "", "text/plain")
  return yield* Effect.promise(() => response.text())
})

describe("NodeTelemetry", () => {
  it.live("a scrape of /metrics parses as Prometheus text with the bridge's metrics", () =>
    Effect.gen(function*() {
      const http = yield* TestServer.httpScoped({ tools })
      const text = yield* Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        yield* bridge.callTool("docs.echo", { q: 1 })
        yield* bridge.callTool("docs.echo", { q: 2 })
        yield* bridge.callTool("docs.fails", {})
        return yield* scrape
      }).pipe(
        Effect.provide(
          NodeTelemetry.layerPrometheus({ port: 0 }).pipe(
            Layer.provideMerge(McpBridge.layer({ mcpServers: { docs: { url: http.url } } }, only))
          )
        )
      )
      const { samples, types } = parsePrometheus(text)
      assert.strictEqual(types.get("mcp_bridge_calls_total"), "counter")
      assert.strictEqual(types.get("mcp_client_operation_duration_seconds"), "histogram")
      assert.strictEqual(types.get("mcp_bridge_pool_sessions"), "gauge")
      const server = { mcp_bridge_server: "docs" }
      assert.strictEqual(
        value(samples, "mcp_bridge_calls_total", {
          ...server,
          gen_ai_tool_name: "echo",
          mcp_bridge_outcome: "success"
        }),
        2
      )
      assert.strictEqual(
        value(samples, "mcp_bridge_calls_total", { ...server, gen_ai_tool_name: "fails", error_type: "tool_error" }),
        1
      )
      assert.strictEqual(
        value(samples, "mcp_client_operation_duration_seconds_count", { ...server, gen_ai_tool_name: "echo" }),
        2
      )
      assert.strictEqual(
        value(samples, "mcp_client_operation_duration_seconds_bucket", {
          ...server,
          gen_ai_tool_name: "echo",
          le: "+Inf"
        }),
        2
      )
      const echo = samples.find((s) => s.name === "mcp_client_operation_duration_seconds_count")!
      assert.strictEqual(echo.labels.mcp_method_name, "tools/call")
      assert.strictEqual(echo.labels.network_transport, "tcp")
      assert.isUndefined(echo.labels.unit)
      assert.strictEqual(value(samples, "mcp_bridge_pool_sessions", { ...server, mcp_bridge_session_state: "idle" }), 1)
      assert.strictEqual(value(samples, "mcp_bridge_pool_sessions", { ...server, mcp_bridge_session_state: "used" }), 0)
      assert.strictEqual(value(samples, "mcp_bridge_pool_pending_requests", server), 0)
      const connects = value(samples, "mcp_bridge_session_connects_total", { ...server, mcp_bridge_outcome: "success" })
      assert.strictEqual(connects, 1)
    }))

  it.live("no secret of a server's config in any span attribute, log line, metric attribute or scrape", () =>
    Effect.gen(function*() {
      const apiKey = "sk-secret-123"
      const token = "Bearer secret-token-456"
      const http = yield* TestServer.httpScoped({ tools })
      const { spans, tracer } = TestTracer.make()
      const logs: Array<string> = []
      const logger = Logger.make((o) => {
        const annotations = o.fiber.getRef(References.CurrentLogAnnotations)
        logs.push(JSON.stringify([o.logLevel, o.message, String(o.cause), annotations]))
      })
      const config = {
        mcpServers: {
          remote: { url: http.url, headers: { Authorization: token } },
          local: { ...TestServer.stdioCommand({ tools }), env: { API_KEY: apiKey } },
          down: {
            url: "http://127.0.0.1:9/mcp",
            headers: { Authorization: token },
            bridge: { connectTimeout: "1 second" }
          }
        }
      }
      const [snapshot, text] = yield* Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        yield* bridge.callTool("remote.echo", { q: 1 })
        yield* bridge.callTool("local.echo", { q: 1 })
        yield* bridge.callTool("local.fails", {})
        yield* Effect.flip(bridge.callTool("down.echo", {}))
        yield* bridge.listTools()
        yield* Effect.logInfo("metrics", yield* bridge.metrics())
        return [(yield* MetricsRecorder.MetricsRecorder).snapshot(), yield* scrape] as const
      }).pipe(
        Effect.provide(
          NodeTelemetry.layerPrometheus({ port: 0 }).pipe(
            Layer.provideMerge(McpBridge.layer(config, { ...only, transport: NodeTransport.layer() }))
          )
        ),
        Effect.provide(Logger.layer([logger])),
        Effect.provideService(Tracer.Tracer, tracer)
      )
      assert.isAbove(spans.length, 8)
      assert.isAbove(logs.length, 0)
      const attributes = JSON.stringify(spans.map((s) => [s.name, Array.from(s.attributes), String(s.status)]))
      const metricAttributes = JSON.stringify(snapshot.map((s) => [s.id, s.attributes]))
      for (const secret of [apiKey, token, "secret-token-456"]) {
        assert.notInclude(attributes, secret)
        assert.notInclude(logs.join("\n"), secret)
        assert.notInclude(metricAttributes, secret)
        assert.notInclude(text, secret)
      }
      // What was searched did cover every server, so the checks above are not vacuous: spans of the remote and local
      // calls, a log line of the failing server (its connect error, in the tool list), metric series of all three.
      assert.include(attributes, "tools/call echo")
      assert.include(attributes, "\"remote\"")
      assert.include(attributes, "\"local\"")
      assert.include(logs.join("\n"), "MCP server \\\"down\\\" left out of the tool list")
      for (const server of ["remote", "local", "down"]) {
        assert.include(metricAttributes, `"mcp_bridge.server":"${server}"`)
        assert.include(text, `mcp_bridge_server="${server}"`)
      }
    }))
})
