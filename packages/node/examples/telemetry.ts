// Telemetry: call a few tools, then read the bridge's own metrics snapshot and the alert rules that would fire.
// Run it: node --conditions=@mcp-bridge/source packages/core/examples/telemetry.ts (with OTEL_EXPORTER_OTLP_ENDPOINT
// set, spans and metrics are also exported over OTLP/HTTP; see TelemetryExport.layerOtlp).
import { AlertRules, type MetricsSnapshot } from "@mcp-bridge/core"
import { createBridge } from "@mcp-bridge/node"
import { createRequire } from "node:module"

const everything = createRequire(import.meta.url).resolve("@modelcontextprotocol/server-everything/dist/index.js")

export const main = async () => {
  const events: Array<MetricsSnapshot.AlertEvent> = []
  const bridge = await createBridge(
    { mcpServers: { reference: { command: process.execPath, args: [everything] } } },
    // Alert rules are on by default (seed thresholds); here they also call back, and run every 5 seconds.
    { telemetry: { alerts: { evaluationInterval: "5 seconds", onEvent: (event) => void events.push(event) } } }
  )
  try {
    for (let i = 0; i < 10; i++) await bridge.callTool("reference.get-sum", { a: i, b: 1 })
    await bridge.callTool("reference.echo", { message: "hello" })
    const metrics = await bridge.metrics()
    const server = metrics.servers.find((s) => s.server === "reference")!
    for (const tool of server.tools) {
      console.log(
        `${tool.tool}: ${tool.calls} calls, success ${(tool.successRate ?? 0) * 100}%, ` +
          `p50 ${tool.p50Millis?.toFixed(2)} ms, p95 ${tool.p95Millis?.toFixed(2)} ms`
      )
    }
    console.log("would fire:", AlertRules.rulesFiring(metrics).map((a) => a.message))
    return { server, events }
  } finally {
    await bridge.close()
  }
}

if (import.meta.main) await main()
