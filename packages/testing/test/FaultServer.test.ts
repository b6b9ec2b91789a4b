import { assert, describe, it } from "@effect/vitest"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { FaultServer } from "../src/index.ts"

const scratch = mkdtempSync(join(tmpdir(), "fault-server-test-"))

const connect = async (spec: FaultServer.FaultServerSpec, env: Record<string, string> = {}) => {
  const { args, command } = FaultServer.stdioCommand(spec)
  const transport = new StdioClientTransport({ command, args: [...args], env, stderr: "pipe" })
  let stderr = ""
  transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
  const client = new Client({ name: "fault-server-test", version: "1.0.0" })
  return { client, transport, stderr: () => stderr }
}

const structured = (result: unknown) => (result as { structuredContent: Record<string, unknown> }).structuredContent

describe("FaultServer", () => {
  it("stdio: per-call faults, crash once several calls are in flight, pid log", async () => {
    const pidLog = join(scratch, "pids")
    const { client, transport } = await connect({
      pidLog,
      tools: [{ name: "echo" }, { name: "work", fault: { kind: "crash", whenInFlight: 3, exitCode: 7 } }]
    })
    await client.connect(transport)
    const first = structured(await client.callTool({ name: "echo", arguments: { a: 1 } }))
    assert.deepStrictEqual(first.arguments, { a: 1 })
    assert.strictEqual(first.call, 1)
    // a wrong id: that call is never answered, the next one is
    const wrong = await client.callTool({ name: "echo", arguments: { __fault: { kind: "wrongId" } } }, { timeout: 300 })
      .then(() => "answered", () => "timed out")
    assert.strictEqual(wrong, "timed out")
    // a garbage line before the answer is skipped by the SDK
    const garbage = structured(await client.callTool({ name: "echo", arguments: { __fault: { kind: "garbage" } } }))
    assert.strictEqual(garbage.pid, first.pid)
    const stats = structured(await client.callTool({ name: "__stats", arguments: {} }))
    assert.strictEqual((stats.calls as Record<string, number>).echo, 3)
    const crashed = await Promise.allSettled([1, 2, 3].map((i) => client.callTool({ name: "work", arguments: { i } })))
    assert.isTrue(crashed.every((r) => r.status === "rejected"))
    await client.close()
    const log = FaultServer.readPidLog(pidLog)
    assert.deepStrictEqual(log.started, [first.pid as number])
    assert.strictEqual(log.exited.get(first.pid as number), 7)
  })

  it("stdio: never answers the handshake; echoes env values to stderr at start-up", async () => {
    const mute = await connect({ handshake: "never", tools: [] })
    const outcome = await mute.client.connect(mute.transport, { timeout: 300 }).then(
      () => "connected",
      () => "timed out"
    )
    assert.strictEqual(outcome, "timed out")
    await mute.client.close()

    const echo = await connect({ tools: [], startup: { env: ["KEY"], padBytes: 10, exitCode: 1 } }, { KEY: "s3cret" })
    await echo.client.connect(echo.transport).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 100))
    assert.strictEqual(echo.stderr(), `KEY=s3cret${".".repeat(10)}\n`)
    await echo.client.close()
  })

  it("killable HTTP: killed and restarted on the same port", async () => {
    const server = await FaultServer.startKillableHttp({
      era: "legacy",
      tools: [{ name: "echo", respond: { kind: "echo" } }]
    })
    const call = async () => {
      const client = new Client({ name: "fault-server-test", version: "1.0.0" })
      await client.connect(new StreamableHTTPClientTransport(new URL(server.url)))
      const result = await client.callTool({ name: "echo", arguments: { x: 1 } })
      await client.close()
      return result
    }
    try {
      assert.deepStrictEqual((await call()).content, [{ type: "text", text: "{\"x\":1}" }])
      const port = server.port
      await server.kill()
      assert.isUndefined(server.pid())
      const down = await call().then(() => "answered", () => "refused")
      assert.strictEqual(down, "refused")
      await server.restart()
      assert.strictEqual(server.port, port)
      assert.deepStrictEqual((await call()).content, [{ type: "text", text: "{\"x\":1}" }])
    } finally {
      await server.close()
    }
  })

  it("401 server: echoes the request headers in its error body", async () => {
    const server = await FaultServer.startUnauthorized()
    try {
      const response = await fetch(server.url, {
        method: "POST",
        headers: { authorization: "Bearer t0ken" },
        body: "{}"
      })
      assert.strictEqual(response.status, 401)
      assert.include(await response.text(), "Bearer t0ken")
      assert.strictEqual(server.requests(), 1)
    } finally {
      await server.close()
    }
  })
})
