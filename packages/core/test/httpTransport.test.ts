// The Streamable HTTP transport of a session (`session/internal/httpTransport.ts`) against a bare HTTP server that
// answers each request on an event stream: an answered stream ends quietly, an unanswered one fails its request.
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/client"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { BridgeHttpTransport, streamEndedCode } from "../src/session/internal/httpTransport.ts"

describe("httpTransport", () => {
  it("ends an answered response stream quietly, and fails a request whose stream ends without its answer", async () => {
    const server = createServer((req, res) => {
      let body = ""
      req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")))
      req.on("end", () => {
        if (req.method !== "POST") return void res.writeHead(405).end()
        const message = JSON.parse(body) as { id?: number; method: string; params?: { name?: string } }
        if (message.id === undefined) return void res.writeHead(202).end()
        res.writeHead(200, { "content-type": "text/event-stream", "mcp-session-id": "s-1" })
        const answer = (result: unknown) =>
          res.end(`data: ${JSON.stringify({ jsonrpc: "2.0", id: message.id, result })}\n\n`)
        if (message.method === "initialize") {
          return answer({
            protocolVersion: "2025-11-25",
            capabilities: { tools: {} },
            serverInfo: { name: "bare", version: "1" }
          })
        }
        if (message.params?.name === "cut") return void res.end()
        answer({ content: [{ type: "text", text: "ok" }] })
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`)
    const client = new Client({ name: "t", version: "1" })
    const errors: Array<unknown> = []
    try {
      await client.connect(new BridgeHttpTransport(url))
      client.onerror = (error) => errors.push(error)
      for (let i = 0; i < 3; i++) {
        const result = await client.callTool({ name: "ok", arguments: {} })
        assert.deepStrictEqual(result.content, [{ type: "text", text: "ok" }])
      }
      const cut = await client.callTool({ name: "cut", arguments: {} }).then(() => undefined, (e: unknown) => e)
      assert.strictEqual((cut as { code?: number }).code, streamEndedCode)
      // Nothing was reported of the answered streams (their ends used to come back as answers to unknown requests).
      assert.deepStrictEqual(errors.map(String), [])
    } finally {
      await client.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})
