import { McpBridge } from "@mcp-bridge/core"
import { NodeTransport } from "@mcp-bridge/node"
import { FaultServer } from "@mcp-bridge/testing"
import { Effect } from "effect"
const cmd = FaultServer.stdioCommand({ tools: [{ name: "echo" }], pidLog: "/tmp/fs-pids.log" })
const layer = McpBridge.layer({ mcpServers: { s: { command: cmd.command, args: [...cmd.args] } } }, {
  transport: NodeTransport.layer()
})
const t0 = Date.now()
const r = await Effect.runPromise(
  Effect.gen(function*() {
    const b = yield* McpBridge.McpBridge
    const x = yield* b.callTool("s.echo", { a: 1 })
    console.log("first call", Date.now() - t0)
    return x
  }).pipe(Effect.provide(layer))
)
console.log(JSON.stringify(r.structuredContent), Date.now() - t0)
console.log(FaultServer.readPidLog("/tmp/fs-pids.log"))
