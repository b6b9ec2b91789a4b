// The smallest working program: the official "everything" reference server over stdio, called through the bridge.
// Run it: node --conditions=@mcp-bridge/source packages/core/examples/quickstart.ts
import { createBridge } from "@mcp-bridge/node"
import { createRequire } from "node:module"

const everything = createRequire(import.meta.url).resolve("@modelcontextprotocol/server-everything/dist/index.js")

export const main = async () => {
  const bridge = await createBridge({
    mcpServers: { everything: { command: process.execPath, args: [everything] } },
    bridge: { timeout: "10 seconds" }
  })
  try {
    const tools = await bridge.listTools()
    const sum = await bridge.callTool("everything.get-sum", { a: 2, b: 3 })
    return { tools: tools.length, sum: sum.content }
  } finally {
    await bridge.close()
  }
}

if (import.meta.main) console.log(await main())
