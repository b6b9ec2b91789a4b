/**
 * What an open dashboard page costs a call: p50 of a call over the stdio test server with the dashboard mounted and
 * no page open, then with two pages' event streams connected, alternating in rounds in one run.
 * Run: node --conditions=@mcp-bridge/source packages/bench/src/dashboard.ts
 */
import { McpBridge } from "@mcp-bridge/core"
import { Dashboard, NodeTransport } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { Effect, Exit, Layer, Scope } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

const cmd = TestServer.stdioCommand({ tools: [{ name: "echo", respond: { kind: "echo" } }] })
const layer = McpBridge.layer({ mcpServers: { s: { command: cmd.command, args: [...cmd.args] } } }, {
  transport: NodeTransport.layer(),
  cache: false
})
const scope = Effect.runSync(Scope.make())
const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
const handler = await Effect.runPromise(Dashboard.make().pipe(Effect.provideContext(context), Scope.provide(scope)))
const http = createServer((req, res) => void (handler(req, res) || res.writeHead(404).end()))
await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()))
const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
const call = Effect.runPromiseWith(context)
const once = (i: number) => call(McpBridge.McpBridge.use((b) => b.callTool("s.echo", { i })))
for (let i = 0; i < 300; i++) await once(i)

const round = async (n: number) => {
  const times: Array<number> = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await once(i)
    times.push(performance.now() - t)
  }
  return times
}
const p50 = (xs: Array<number>) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const without: Array<number> = []
const withPage: Array<number> = []
for (let r = 0; r < 6; r++) {
  without.push(...await round(500))
  const pages = [new AbortController(), new AbortController()]
  const streams = await Promise.all(pages.map((c) => fetch(`${url}/dashboard/events`, { signal: c.signal })))
  let bytes = 0
  for (const s of streams) {
    const reader = s.body!.getReader()
    const pump = (): Promise<void> =>
      reader.read().then(({ done, value }) => {
        if (done) return
        bytes += value.length
        return pump()
      }, () => undefined)
    void pump()
  }
  withPage.push(...await round(500))
  pages.forEach((c) => c.abort())
  if (r === 0) console.log(`(event stream bytes in one round: ${bytes})`)
}
console.log(
  `p50 without a page: ${p50(without).toFixed(3)} ms; with two pages open: ${p50(withPage).toFixed(3)} ms; ` +
    `ratio ${(p50(withPage) / p50(without)).toFixed(3)} (${without.length} calls each)`
)
await Effect.runPromise(Scope.close(scope, Exit.void))
http.close()
