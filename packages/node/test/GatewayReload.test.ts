/**
 * `mcp-bridge serve` reloads its configuration file when it changes and on SIGHUP, without dropping calls: one real
 * `serve` process over real upstreams (HTTP test servers in this process, a stdio test server as a child), real SDK
 * downstream clients. Every wait is on an event: a line of the gateway's stderr, a notification, a server's state.
 */
import { assert, describe, it } from "@effect/vitest"
import { TestServer } from "@mcp-bridge/testing"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { type ChildProcessByStdio, spawn } from "node:child_process"
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Readable } from "node:stream"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll } from "vitest"
import { isAlive } from "./helpers.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", respond: { kind: "echo" } },
  { name: "held", hold: true, respond: { kind: "echo" } }
]

const bin = fileURLToPath(new URL("../src/bin/mcp-bridge.ts", import.meta.url))
const text = (result: CallToolResult) => (result.content[0] as { text: string }).text
const names = (listed: { readonly tools: ReadonlyArray<{ readonly name: string }> }) =>
  listed.tools.map((t) => t.name).filter((n) => !n.endsWith("__stats")).sort()

// Resolves when `predicate` holds, checked at every `signal` (a line, a notification): never a sleep.
const waiter = () => {
  const waiting = new Set<() => void>()
  return {
    signal: () => waiting.forEach((check) => check()),
    until: (predicate: () => boolean, what: string, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate()) return
          waiting.delete(check)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(() => {
          waiting.delete(check)
          reject(new Error(`timed out waiting for ${what}`))
        }, timeoutMs)
        waiting.add(check)
        check()
      })
  }
}

describe("GatewayReload", () => {
  let dir: string
  let file: string
  let child: ChildProcessByStdio<null, Readable, Readable>
  let url: string
  let stderr = ""
  const lines = waiter()
  const up = { current: undefined as unknown as TestServer.HttpTestServer }
  const gone = { current: undefined as unknown as TestServer.HttpTestServer }
  const extra = { current: undefined as unknown as TestServer.HttpTestServer }
  const local = TestServer.stdioCommand({ name: "local", tools })

  // The file is replaced the way editors save: written beside it, then renamed over it.
  const write = (config: object) => {
    const next = join(dir, "mcp.json.next")
    writeFileSync(next, JSON.stringify(config))
    renameSync(next, file)
  }
  const reloads = () => stderr.split("\n").filter((l) => l.includes("mcp-bridge: reloaded")).length
  const refusals = () => stderr.split("\n").filter((l) => l.includes("reload refused")).length

  const connect = async () => {
    const client = new Client({ name: "reload-test", version: "1.0.0" })
    await client.connect(new StreamableHTTPClientTransport(new URL(url)))
    return client
  }

  beforeAll(async () => {
    up.current = await TestServer.startHttp({ name: "up", era: "legacy", tools })
    gone.current = await TestServer.startHttp({ name: "gone", era: "legacy", tools })
    extra.current = await TestServer.startHttp({ name: "extra", tools })
    dir = mkdtempSync(join(tmpdir(), "mcp-bridge-reload-"))
    file = join(dir, "mcp.json")
    write({
      mcpServers: {
        up: { url: up.current.url },
        gone: { url: gone.current.url },
        local: { command: local.command, args: [...local.args] }
      }
    })
    child = spawn(
      process.execPath,
      ["--conditions=@mcp-bridge/source", bin, "serve", "--config", file, "--port", "0", "--no-dashboard"],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
      lines.signal()
    })
    let out = ""
    url = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString()
        const found = /at (http:\/\/\S+\/mcp)\n/.exec(out)
        if (found !== null) resolve(found[1]!)
      })
      child.once("exit", (code) => reject(new Error(`serve exited (${code}): ${out}${stderr}`)))
    })
  }, 120_000)

  afterAll(async () => {
    child?.kill("SIGTERM")
    if (child !== undefined && child.exitCode === null) await new Promise((r) => child.once("exit", r))
    await Promise.all([up.current?.close(), gone.current?.close(), extra.current?.close()])
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it("a changed file adds a server: clients are told the tool list changed; no call in flight fails", async () => {
    const client = await connect()
    const notified = waiter()
    let changed = 0
    client.setNotificationHandler("notifications/tools/list_changed", () => {
      changed++
      notified.signal()
    })
    try {
      assert.deepStrictEqual(names(await client.listTools()), [
        "gone_echo",
        "gone_held",
        "local_echo",
        "local_held",
        "up_echo",
        "up_held"
      ])
      // Calls held at the upstream across the reload, and calls made one after another all through it.
      const held = Array.from({ length: 4 }, (_, i) => client.callTool({ name: "up_held", arguments: { i } }))
      await up.current.until(() => up.current.held("held") === 4)
      let stop = false
      let made = 0
      const failures: Array<string> = []
      const steady = Array.from({ length: 4 }, async (_, lane) => {
        while (!stop) {
          const result = await client.callTool({ name: "up_echo", arguments: { lane } }) as CallToolResult
          made++
          if (result.isError === true || JSON.parse(text(result)).lane !== lane) failures.push(JSON.stringify(result))
        }
      })

      const before = reloads()
      write({
        mcpServers: {
          up: { url: up.current.url },
          gone: { url: gone.current.url },
          local: { command: local.command, args: [...local.args] },
          extra: { url: extra.current.url }
        }
      })
      await lines.until(() => reloads() > before, "the reload's log line")
      assert.match(stderr, /reloaded .*: added extra; removed none; changed none; 3 unchanged/)
      await notified.until(() => changed > 0, "notifications/tools/list_changed")
      assert.includeMembers(names(await client.listTools()), ["extra_echo", "extra_held", "up_echo"])
      const viaExtra = await client.callTool({ name: "extra_echo", arguments: { x: 1 } }) as CallToolResult
      assert.deepStrictEqual(JSON.parse(text(viaExtra)), { x: 1 })

      const madeDuring = made
      up.current.release("held")
      const results = await Promise.all(held) as Array<CallToolResult>
      stop = true
      await Promise.all(steady)
      assert.deepStrictEqual(results.map((r) => JSON.parse(text(r)).i), [0, 1, 2, 3])
      assert.isAbove(madeDuring, 0)
      assert.deepStrictEqual(failures, [])
      // The unchanged upstream kept its session: the reload opened none.
      assert.strictEqual(up.current.sessionsOpened(), 1)
    } finally {
      await client.close()
    }
  })

  it("SIGHUP reloads; a removed server's call in flight finishes, new calls are refused, its stdio child ends", async () => {
    const client = await connect()
    try {
      // SIGHUP with the file as it is: a reload that changes nothing (every server keeps its sessions).
      const signalled = reloads()
      child.kill("SIGHUP")
      await lines.until(() => reloads() > signalled, "the SIGHUP reload")
      assert.match(stderr, /\(SIGHUP\): added none; removed none; changed none; 4 unchanged/)
      assert.strictEqual(up.current.sessionsOpened(), 1)

      const stats = await client.callTool({ name: "local___stats", arguments: {} }) as CallToolResult
      const pid = JSON.parse(text(stats)).pid as number
      assert.isTrue(isAlive(pid))
      const inFlight = client.callTool({ name: "gone_held", arguments: { n: 1 } })
      await gone.current.until(() => gone.current.held("held") === 1)

      const before = reloads()
      write({ mcpServers: { up: { url: up.current.url }, extra: { url: extra.current.url } } })
      await lines.until(() => reloads() > before, "the reload removing gone and local")
      assert.match(stderr, /removed gone, local; changed none; 2 unchanged/)

      const refused = await client.callTool({ name: "gone_echo", arguments: {} }).then(
        (result) => `answered ${JSON.stringify(result)}`,
        (error: Error) => error.message
      )
      assert.match(refused, /gone_echo/)
      gone.current.release("held")
      assert.deepStrictEqual(JSON.parse(text(await inFlight as CallToolResult)), { n: 1 })
      await lines.until(() => /drained gone, local/.test(stderr), "the drained line")
      // The removed stdio server's process ends with its session (it is not this process's child: poll its pid).
      const deadline = Date.now() + 10_000
      while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      assert.isFalse(isAlive(pid))
      assert.strictEqual(gone.current.openSessions(), 0)
    } finally {
      await client.close()
    }
  })

  it("an invalid file is refused, naming the field, and the previous configuration keeps serving", async () => {
    const client = await connect()
    try {
      const listed = names(await client.listTools())
      const before = refusals()
      write({ mcpServers: { up: { url: 42 }, extra: { url: extra.current.url } } })
      await lines.until(() => refusals() > before, "the refusal")
      assert.match(
        stderr,
        /reload refused, still serving the previous configuration: BridgeConfigError: .*mcpServers\.up\.url/
      )
      write({ mcpServers: { up: { url: up.current.url } }, gateway: { prefix: "sometimes" } })
      await lines.until(() => refusals() > before + 1, "the second refusal")
      assert.match(stderr, /GatewayError: gateway/)
      assert.deepStrictEqual(names(await client.listTools()), listed)
      const result = await client.callTool({ name: "up_echo", arguments: { still: true } }) as CallToolResult
      assert.deepStrictEqual(JSON.parse(text(result)), { still: true })
      assert.strictEqual(child.exitCode, null)

      // API keys cannot change under a running gateway: the reload says so and serves on without them.
      const applied = reloads()
      write({
        mcpServers: { up: { url: up.current.url }, extra: { url: extra.current.url } },
        gateway: { apiKeys: [{ principal: "ci", sha256: "ab".repeat(32) }] }
      })
      await lines.until(() => reloads() > applied && /needs a restart/.test(stderr), "the needs-restart line")
      assert.match(stderr, /gateway\.apiKeys changed: needs a restart/)
      const keyless = await client.callTool({ name: "up_echo", arguments: { k: 0 } }) as CallToolResult
      assert.deepStrictEqual(JSON.parse(text(keyless)), { k: 0 })
    } finally {
      await client.close()
    }
  })
})
