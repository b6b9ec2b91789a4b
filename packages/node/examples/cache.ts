// The result cache: the operator says which tools may be cached (here `get-sum`, for an hour); repeat calls are
// answered from memory, per caller identity, and can be invalidated.
// Run it: node --conditions=@mcp-bridge/source packages/core/examples/cache.ts
import { createBridge } from "@mcp-bridge/node"
import { createRequire } from "node:module"

const everything = createRequire(import.meta.url).resolve("@modelcontextprotocol/server-everything/dist/index.js")

export const main = async () => {
  const bridge = await createBridge(
    {
      mcpServers: {
        calc: {
          command: process.execPath,
          args: [everything],
          // get-sum's results may be cached for the "static" class (1 hour); nothing else from this server is.
          bridge: { tools: { "get-sum": { cache: "static" } } }
        }
      }
    },
    { cache: { capacity: 5_000, maxBytes: 64 * 1024 * 1024, defaultTimeToLive: "30 minutes" } }
  )
  try {
    await bridge.callTool("calc.get-sum", { a: 2, b: 3 }) // miss: one upstream call
    await bridge.callTool("calc.get-sum", { b: 3, a: 2 }) // hit: same canonical arguments
    await bridge.callTool("calc.get-sum", { a: 2, b: 3 }, { identity: "tenant-42" }) // miss: another caller
    const before = await bridge.cache.stats()
    const dropped = await bridge.cache.invalidateTool("calc", "get-sum")
    const after = await bridge.cache.stats()
    console.log(
      `hits ${before.hits}, misses ${before.misses}, hit rate ${before.hitRate.toFixed(2)}, ` +
        `${before.size} results (${before.bytes} bytes); dropped ${dropped}; now ${after.size}`
    )
    return { before, dropped, after }
  } finally {
    await bridge.close()
  }
}

if (import.meta.main) await main()
