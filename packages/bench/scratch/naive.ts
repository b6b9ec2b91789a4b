import { Client } from "@modelcontextprotocol/client"
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio"
import { TestServer } from "@mcp-bridge/testing"
import { echoSpec } from "../src/internal/targets.ts"
const { command, args } = TestServer.stdioCommand(echoSpec)
for (const mode of ["auto", "legacy", "auto", "legacy"] as const) {
  const t0 = performance.now()
  const client = new Client({ name: "x", version: "1" }, mode === "auto" ? { versionNegotiation: { mode: "auto" } } : {})
  const tr = new StdioClientTransport({ command, args: [...args], stderr: "ignore" })
  await client.connect(tr)
  const t1 = performance.now()
  await client.callTool({ name: "echo", arguments: {} })
  const t2 = performance.now()
  await client.close()
  const t3 = performance.now()
  console.log(mode, client.getNegotiatedProtocolVersion(), "connect", (t1 - t0).toFixed(1), "call", (t2 - t1).toFixed(1), "close", (t3 - t2).toFixed(1))
}
