/**
 * An upstream HTTP server that forgets the gateway's session (restarted, or its sessions dropped: 404 "Session not
 * found" for the session id) while a downstream session through the gateway stays open: the next downstream call
 * succeeds on a new upstream session, never relayed as an opaque error.
 */
import { assert, describe, it } from "@effect/vitest"
import { serveGateway } from "@mcp-bridge/node"
import { FaultServer, TestServer } from "@mcp-bridge/testing"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { afterAll, beforeAll } from "vitest"

// Neither tool is safe to repeat (no trusted annotations): a 404 is resent because the server never ran the call.
const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", respond: { kind: "echo" } },
  { name: "write", annotations: { destructiveHint: true }, respond: { kind: "echo" } }
]

const text = (result: CallToolResult) => (result.content[0] as { text: string }).text

const connect = async (url: string) => {
  const client = new Client({ name: "session-loss-test", version: "1.0.0" })
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  return client
}

describe("GatewaySessionLoss", () => {
  let forgetful: TestServer.HttpTestServer
  let restarting: FaultServer.KillableHttpServer
  let gateway: Awaited<ReturnType<typeof serveGateway>>

  beforeAll(async () => {
    forgetful = await TestServer.startHttp({ name: "forgetful", era: "legacy", tools })
    restarting = await FaultServer.startKillableHttp({ name: "restarting", era: "legacy", tools })
    gateway = await serveGateway({
      mcpServers: { forgetful: { url: forgetful.url }, restarting: { url: restarting.url } }
    }, { port: 0, dashboard: false })
  }, 60_000)

  afterAll(async () => {
    await gateway?.close()
    await forgetful?.close()
    await restarting?.close()
  })

  it("re-initializes an upstream session the server no longer knows (404) and sends the call again", async () => {
    const client = await connect(gateway.url)
    try {
      const first = await client.callTool({ name: "forgetful_write", arguments: { n: 1 } }) as CallToolResult
      assert.deepStrictEqual(JSON.parse(text(first)), { n: 1 })
      const opened = forgetful.sessionsOpened()
      assert.isAtLeast(forgetful.forgetSessions(), 1)
      for (const name of ["forgetful_write", "forgetful_echo"]) {
        const again = await client.callTool({ name, arguments: { n: 2 } }) as CallToolResult
        assert.strictEqual(again.isError, undefined, JSON.stringify(again))
        assert.deepStrictEqual(JSON.parse(text(again)), { n: 2 })
      }
      // a new upstream session, and the write ran once per downstream call
      assert.isAbove(forgetful.sessionsOpened(), opened)
      assert.strictEqual(forgetful.calls("write"), 2)
    } finally {
      await client.close()
    }
  })

  it("serves the next call after the upstream process restarted", async () => {
    const client = await connect(gateway.url)
    try {
      const first = await client.callTool({ name: "restarting_write", arguments: { n: 1 } }) as CallToolResult
      assert.deepStrictEqual(JSON.parse(text(first)), { n: 1 })
      await restarting.restart()
      const again = await client.callTool({ name: "restarting_write", arguments: { n: 2 } }) as CallToolResult
      assert.strictEqual(again.isError, undefined, JSON.stringify(again))
      assert.deepStrictEqual(JSON.parse(text(again)), { n: 2 })
    } finally {
      await client.close()
    }
  })
})
