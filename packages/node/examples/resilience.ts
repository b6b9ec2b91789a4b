// callMany, limits, retries and a circuit breaker: the reference "everything" server over stdio next to a server that
// is down (nothing listens on 127.0.0.1:9).
// Run it: node --conditions=@mcp-bridge/source packages/core/examples/resilience.ts
import { createBridge } from "@mcp-bridge/node"
import { createRequire } from "node:module"

const everything = createRequire(import.meta.url).resolve("@modelcontextprotocol/server-everything/dist/index.js")

export const main = async () => {
  const bridge = await createBridge({
    mcpServers: {
      reference: {
        command: process.execPath,
        args: [everything],
        bridge: {
          // the seed's production preset; over the limit a call waits its turn, up to 5 seconds
          throttle: { perSecond: 50, perMinute: 1000, concurrency: 20, maxWait: "5 seconds" },
          // get-sum has no side effects: its calls may be merged and retried
          tools: { "get-sum": { readOnly: true } }
        }
      },
      down: { url: "http://127.0.0.1:9/mcp" }
    },
    bridge: {
      timeout: "10 seconds",
      retry: { times: 2, base: "50 millis" },
      circuitBreaker: { failures: 3, openFor: "30 seconds" }
    }
  })
  try {
    // Ten calls, five at a time; each gets its own result, in order.
    const sums = await bridge.callMany(
      Array.from({ length: 10 }, (_, i) => ({ target: "reference.get-sum", arguments: { a: i, b: 1 } }))
    )
    console.log(sums.map((r) => r.ok ? (r.result.content[0] as { text: string }).text : r.error.message))

    // The server that is down: connection refused (retried), until its circuit opens and calls fail at once.
    const down: Array<string> = []
    for (let i = 0; i < 4; i++) {
      const [outcome] = await bridge.callMany([{ target: "down.anything" }])
      down.push(outcome!.ok ? "ok" : outcome!.error.reason._tag)
    }
    // The first call tried three times (the tool list, retried twice): three failures open the circuit.
    console.log(down) // [ "ConnectFailed", "CircuitOpen", "CircuitOpen", "CircuitOpen" ]
    return { sums, down }
  } finally {
    await bridge.close()
  }
}

if (import.meta.main) console.log(await main())
