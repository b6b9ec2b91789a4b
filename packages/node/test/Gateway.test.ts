import { assert, describe, it } from "@effect/vitest"
import { Gateway, serveGateway } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio"
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport as StdioTransportV1 } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport as HttpTransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll } from "vitest"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "fail", respond: { kind: "isError", message: "boom" } },
  { name: "progress", respond: { kind: "progress", steps: 3 } },
  { name: "hang", respond: { kind: "hang" } },
  { name: "add", respond: { kind: "addTool", name: "added_echo" } }
]

// The test servers' own `__stats` tool is left out of the comparisons.
const names = (tools: ReadonlyArray<{ readonly name: string }>) =>
  tools.map((t) => t.name).filter((n) => !n.endsWith("__stats")).sort()

// A request with headers `fetch` does not let one set (Host).
const rawHttp = (url: string, headers: Record<string, string>) =>
  new Promise<number>((resolve, reject) => {
    const req = request(url, { method: "POST", headers }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on("error", reject)
    req.end("{}")
  })

const text = (result: CallToolResult) => (result.content[0] as { text: string }).text

const v2 = async (url: string, mode: "legacy" | "auto", headers: Record<string, string> = {}) => {
  const client = new Client(
    { name: "gateway-test", version: "1.0.0" },
    mode === "auto" ? { versionNegotiation: { mode: "auto" } } : {}
  )
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }))
  return client
}

// A downstream client that only speaks 2024-11-05: raw JSON-RPC over Streamable HTTP, JSON or SSE answers.
const rawPost = async (url: string, body: unknown, session?: string) => {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(session === undefined ? {} : { "mcp-session-id": session, "mcp-protocol-version": "2024-11-05" })
    },
    body: JSON.stringify(body)
  })
  const type = response.headers.get("content-type") ?? ""
  const raw = await response.text()
  const json = type.includes("text/event-stream")
    ? JSON.parse(raw.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).at(-1)!)
    : raw.length > 0
    ? JSON.parse(raw)
    : undefined
  return { status: response.status, session: response.headers.get("mcp-session-id") ?? undefined, json }
}

describe("Gateway", () => {
  let upstream: TestServer.HttpTestServer
  let one: Awaited<ReturnType<typeof serveGateway>>
  let two: Awaited<ReturnType<typeof serveGateway>>

  beforeAll(async () => {
    upstream = await TestServer.startHttp({ name: "up", tools })
    const stdio = TestServer.stdioCommand({ name: "local", tools })
    one = await serveGateway({ mcpServers: { up: { url: upstream.url } } }, { port: 0 })
    two = await serveGateway({
      mcpServers: { up: { url: upstream.url }, local: { command: stdio.command, args: [...stdio.args] } },
      gateway: {
        servers: { local: { exclude: ["hang"], tools: { echo: { name: "local_say", description: "Says it back" } } } },
        virtualServers: { safe: { tools: ["*echo", "local_fail", "local_progress", "local_say"] } }
      }
    }, { port: 0 })
  }, 60_000)

  afterAll(async () => {
    await two?.close()
    await one?.close()
    await upstream?.close()
  })

  it("serves a 2026-07-28 client (stateless) and a 2025-11-25 client (session), through the bridge", async () => {
    for (const mode of ["auto", "legacy"] as const) {
      const client = await v2(one.url, mode)
      assert.strictEqual(client.getNegotiatedProtocolVersion(), mode === "auto" ? "2026-07-28" : "2025-11-25")
      const listed = await client.listTools()
      assert.deepStrictEqual(names(listed.tools), ["add", "echo", "fail", "hang", "progress"])
      const result = await client.callTool({ name: "echo", arguments: { a: 1 } }) as CallToolResult
      assert.deepStrictEqual(JSON.parse(text(result)), { a: 1 })
      const failed = await client.callTool({ name: "fail", arguments: {} }) as CallToolResult
      assert.strictEqual(failed.isError, true)
      await client.close()
    }
  })

  it("continues the downstream client's trace to the upstream (W3C traceparent in _meta), for both eras", async () => {
    for (const mode of ["auto", "legacy"] as const) {
      const client = await v2(one.url, mode)
      const traceId = mode === "auto" ? "4bf92f3577b34da6a3ce929d0e0e4736" : "0af7651916cd43dd8448eb211c80319c"
      const traceparent = `00-${traceId}-00f067aa0ba902b7-01`
      await client.callTool({ name: "echo", arguments: { traced: mode }, _meta: { traceparent, tracestate: "k=v" } })
      const meta = upstream.receivedMeta("echo").at(-1)!
      const sent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(meta.traceparent))
      assert.isNotNull(sent, `a valid traceparent upstream, got ${String(meta.traceparent)}`)
      assert.strictEqual(sent![1], traceId, "the same trace")
      assert.strictEqual(meta.tracestate, "k=v")
      await client.close()
    }
  })

  it("forwards progress with the downstream token, and a cancelled call cancels upstream", async () => {
    for (const mode of ["auto", "legacy"] as const) {
      const client = await v2(one.url, mode)
      const seen: Array<number> = []
      const result = await client.callTool({ name: "progress", arguments: {} }, {
        onprogress: (p) => seen.push(p.progress)
      }) as CallToolResult
      assert.deepStrictEqual(seen, [1, 2, 3])
      assert.strictEqual(result.isError, undefined)
      const before = upstream.cancelled()
      const abort = new AbortController()
      const pending = client.callTool({ name: "hang", arguments: {} }, { signal: abort.signal })
      await upstream.until(() => upstream.inFlight() === 1)
      abort.abort()
      await pending.then(() => assert.fail("resolved"), () => undefined)
      await upstream.until(() => upstream.cancelled() === before + 1 && upstream.inFlight() === 0)
      await client.close()
    }
  })

  it("answers a 2025-11-25 call as JSON when nothing precedes its answer, and makes its streams resumable: a priming event, a retry field, a replay after Last-Event-ID", async () => {
    const post = (body: unknown, session?: string) =>
      fetch(one.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...(session === undefined ? {} : { "mcp-session-id": session, "mcp-protocol-version": "2025-11-25" })
        },
        body: JSON.stringify(body)
      })
    const init = await post({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1.0.0" } }
    })
    const session = init.headers.get("mcp-session-id")!
    await init.text()
    await (await post({ jsonrpc: "2.0", method: "notifications/initialized" }, session)).text()
    // A call whose answer is the first thing sent about it is answered as JSON, in one piece.
    const quick = await post(
      { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "echo", arguments: {} } },
      session
    )
    assert.strictEqual(quick.headers.get("content-type"), "application/json")
    assert.strictEqual(quick.headers.get("mcp-session-id"), session)
    assert.strictEqual(((await quick.json()) as { id: number }).id, 2)
    // A call that reports progress before its answer gets the stream.
    const streamed = await post({
      jsonrpc: "2.0",
      id: 3,
      method: "tools/call",
      params: { name: "progress", arguments: {}, _meta: { progressToken: "p-3" } }
    }, session)
    assert.strictEqual(streamed.headers.get("content-type"), "text/event-stream")
    const call = await streamed.text()
    assert.include(call, "notifications/progress")
    // The stream opens with an event that carries an id, a retry field and no data.
    const priming = /^id: (\S+)\nretry: (\d+)\ndata: *\n/m.exec(call)
    assert.isNotNull(priming, call)
    assert.strictEqual(priming![2], "1000")
    // A client that lost the stream after the priming event is replayed the answer.
    const replay = await fetch(one.url, {
      headers: {
        accept: "text/event-stream",
        "mcp-session-id": session,
        "mcp-protocol-version": "2025-11-25",
        "last-event-id": priming![1]!
      }
    })
    assert.strictEqual(replay.status, 200)
    const reader = replay.body!.getReader()
    let seen = ""
    while (!seen.includes("\"id\":3")) {
      const { done, value } = await reader.read()
      if (done) break
      seen += new TextDecoder().decode(value)
    }
    await reader.cancel()
    const answer = JSON.parse(seen.split("\n").filter((l) => l.startsWith("data: {")).at(-1)!.slice(6))
    assert.strictEqual(answer.id, 3)
    assert.isArray(answer.result.content)
    await fetch(one.url, {
      method: "DELETE",
      headers: { "mcp-session-id": session, "mcp-protocol-version": "2025-11-25" }
    })
  })

  it("serves SDK v1 clients and a client that only speaks 2024-11-05", async () => {
    const v1 = new ClientV1({ name: "v1", version: "1.0.0" })
    await v1.connect(new HttpTransportV1(new URL(one.url)))
    const listed = await v1.listTools()
    assert.isTrue(listed.tools.some((t) => t.name === "echo"))
    const result = await v1.callTool({ name: "echo", arguments: { v: 1 } })
    assert.deepStrictEqual(JSON.parse((result.content as Array<{ text: string }>)[0]!.text), { v: 1 })
    await v1.close()

    const init = await rawPost(one.url, {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2024-11-05", capabilities: {}, clientInfo: { name: "old", version: "0" } }
    })
    assert.strictEqual(init.json.result.protocolVersion, "2024-11-05")
    assert.isString(init.session)
    await rawPost(one.url, { jsonrpc: "2.0", method: "notifications/initialized" }, init.session)
    const call = await rawPost(one.url, {
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "echo", arguments: { old: true } }
    }, init.session)
    assert.deepStrictEqual(JSON.parse(call.json.result.content[0].text), { old: true })
    const unknown = await rawPost(one.url, { jsonrpc: "2.0", id: 3, method: "tools/list" }, "no-such-session")
    assert.strictEqual(unknown.status, 404)
  })

  it("names tools of several servers with a prefix, renames, excludes, and serves virtual servers", async () => {
    const client = await v2(two.url, "auto")
    const listed = await client.listTools()
    assert.deepStrictEqual(names(listed.tools), [
      "local_add",
      "local_fail",
      "local_progress",
      "local_say",
      "up_add",
      "up_echo",
      "up_fail",
      "up_hang",
      "up_progress"
    ])
    assert.strictEqual(listed.tools.find((t) => t.name === "local_say")?.description, "Says it back")
    const result = await client.callTool({ name: "local_say", arguments: { x: 2 } }) as CallToolResult
    assert.deepStrictEqual(JSON.parse(text(result)), { x: 2 })
    await client.close()

    const safe = await v2(two.url.replace(/\/mcp$/, "/mcp/safe"), "legacy")
    assert.deepStrictEqual(names((await safe.listTools()).tools), [
      "local_fail",
      "local_progress",
      "local_say",
      "up_echo"
    ])
    const refused = await safe.callTool({ name: "up_fail", arguments: {} }).then(() => "served", () => "refused")
    assert.strictEqual(refused, "refused")
    await safe.close()
  })

  it("answers /healthz, /readyz and /metrics, and refuses a foreign Host", async () => {
    const base = one.url.replace(/\/mcp$/, "")
    assert.strictEqual((await fetch(`${base}/healthz`)).status, 200)
    const ready = await fetch(`${base}/readyz`)
    assert.strictEqual(ready.status, 200)
    assert.deepStrictEqual(await ready.json(), { ok: true, servers: { up: "ok" } })
    const metrics = await (await fetch(`${base}/metrics`)).text()
    assert.include(metrics, "mcp_bridge_calls_total")
    // With no API keys, the dashboard is open at `/` (on a loopback address).
    const page = await fetch(`${base}/`)
    assert.strictEqual(page.status, 200)
    assert.include(page.headers.get("content-type") ?? "", "text/html")
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" }
    assert.strictEqual(await rawHttp(one.url, { ...headers, host: "evil.example" }), 403)
    assert.strictEqual(await rawHttp(one.url, { ...headers, origin: "http://evil.example" }), 403)
  })

  it("refuses a start where two servers serve one name in prefix mode never", async () => {
    const error = await serveGateway({
      mcpServers: { a: { url: upstream.url }, b: { url: upstream.url } },
      gateway: { prefix: "never" }
    }, { port: 0 }).then(() => undefined, (e) => e)
    assert.instanceOf(error, Gateway.GatewayError)
    assert.strictEqual(error.reason._tag, "DuplicateNames")
    assert.include(error.message, "\"echo\" (a.echo, b.echo)")
  })

  it("asks for an API key when keys are configured", async () => {
    const key = "k-123456"
    const adminKey = "k-admin-654321"
    const digest = (k: string) => createHash("sha256").update(k).digest("hex")
    const gateway = await serveGateway({
      mcpServers: { up: { url: upstream.url } },
      gateway: {
        apiKeys: [
          { principal: "alice", sha256: digest(key) },
          { principal: "ops", sha256: digest(adminKey), admin: true }
        ]
      }
    }, { port: 0 })
    try {
      const denied = await v2(gateway.url, "auto").then(() => "connected", () => "denied")
      const plain = await fetch(gateway.url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
      })
      assert.strictEqual(plain.status, 401)
      assert.include(plain.headers.get("www-authenticate") ?? "", "Bearer")
      void denied
      const client = await v2(gateway.url, "auto", { authorization: `Bearer ${key}` })
      const result = await client.callTool({ name: "echo", arguments: { k: 1 } }) as CallToolResult
      assert.deepStrictEqual(JSON.parse(text(result)), { k: 1 })
      await client.close()
      // The dashboard at `/` opens to admin keys only: a key that may call tools is not enough.
      const page = gateway.url.replace(/\/mcp$/, "/")
      assert.strictEqual((await fetch(page)).status, 401)
      assert.strictEqual((await fetch(page, { headers: { authorization: `Bearer ${key}` } })).status, 401)
      const shown = await fetch(page, { headers: { authorization: `Bearer ${adminKey}` } })
      assert.strictEqual(shown.status, 200)
      assert.include(await shown.text(), "<html")
    } finally {
      await gateway.close()
    }
  })

  // Last: it adds a tool to the shared upstream.
  it("tells a 2025-era downstream session when an upstream's tool list changes", async () => {
    const client = await v2(one.url, "legacy")
    let changed = 0
    client.setNotificationHandler("notifications/tools/list_changed", () => {
      changed++
    })
    await client.callTool({ name: "add", arguments: {} })
    const deadline = performance.now() + 10_000
    while (changed === 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    assert.isAbove(changed, 0)
    assert.include(names((await client.listTools()).tools), "added_echo")
    await client.close()
  })
})

describe("mcp-bridge serve --no-dashboard", () => {
  const bin = fileURLToPath(new URL("../src/bin/mcp-bridge.ts", import.meta.url))
  it("serves /mcp and no page at /", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-bridge-gateway-"))
    const file = join(dir, "mcp.json")
    const stdio = TestServer.stdioCommand({ name: "local", tools })
    writeFileSync(file, JSON.stringify({ mcpServers: { local: { command: stdio.command, args: [...stdio.args] } } }))
    const child = spawn(
      process.execPath,
      ["--conditions=@mcp-bridge/source", bin, "serve", "--config", file, "--port", "0", "--no-dashboard"],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    let out = ""
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString()
          const found = /at (http:\/\/\S+\/mcp)\n/.exec(out)
          if (found !== null) resolve(found[1]!)
        })
        child.once("exit", (code) => reject(new Error(`serve exited (${code}): ${out}`)))
      })
      assert.notInclude(out, "dashboard")
      assert.strictEqual((await fetch(url.replace(/\/mcp$/, "/"))).status, 404)
      const client = await v2(url, "auto")
      const result = await client.callTool({ name: "echo", arguments: { d: 0 } }) as CallToolResult
      assert.deepStrictEqual(JSON.parse(text(result)), { d: 0 })
      await client.close()
    } finally {
      child.kill("SIGTERM")
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})

describe("mcp-bridge serve --stdio", () => {
  const bin = fileURLToPath(new URL("../src/bin/mcp-bridge.ts", import.meta.url))
  it("serves SDK v2 (both eras) and v1 clients over stdio, through the bridge", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-bridge-gateway-"))
    const stdio = TestServer.stdioCommand({ name: "local", tools })
    const file = join(dir, "mcp.json")
    writeFileSync(file, JSON.stringify({ mcpServers: { local: { command: stdio.command, args: [...stdio.args] } } }))
    const args = ["--conditions=@mcp-bridge/source", bin, "serve", "--config", file, "--stdio"]
    try {
      for (const mode of ["auto", "legacy"] as const) {
        const client = new Client(
          { name: "stdio-test", version: "1.0.0" },
          mode === "auto" ? { versionNegotiation: { mode: "auto" } } : {}
        )
        await client.connect(new StdioClientTransport({ command: process.execPath, args }))
        assert.strictEqual(client.getNegotiatedProtocolVersion(), mode === "auto" ? "2026-07-28" : "2025-11-25")
        const result = await client.callTool({ name: "echo", arguments: { s: mode } }) as CallToolResult
        assert.deepStrictEqual(JSON.parse(text(result)), { s: mode })
        await client.close()
      }
      const v1 = new ClientV1({ name: "v1", version: "1.0.0" })
      await v1.connect(new StdioTransportV1({ command: process.execPath, args }))
      const result = await v1.callTool({ name: "echo", arguments: { v: 1 } })
      assert.deepStrictEqual(JSON.parse((result.content as Array<{ text: string }>)[0]!.text), { v: 1 })
      await v1.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})

describe("mcp-bridge serve --stdio: upstream changes", () => {
  const bin = fileURLToPath(new URL("../src/bin/mcp-bridge.ts", import.meta.url))
  it("tells a stdio client of either era when an upstream's tool list changes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-bridge-gateway-"))
    // A stdio upstream per gateway process: each run starts from the same tools.
    const stdio = TestServer.stdioCommand({ name: "local", tools })
    const file = join(dir, "mcp.json")
    writeFileSync(file, JSON.stringify({ mcpServers: { local: { command: stdio.command, args: [...stdio.args] } } }))
    const args = ["--conditions=@mcp-bridge/source", bin, "serve", "--config", file, "--stdio"]
    try {
      for (const mode of ["auto", "legacy"] as const) {
        const client = new Client(
          { name: "stdio-test", version: "1.0.0" },
          mode === "auto" ? { versionNegotiation: { mode: "auto" } } : {}
        )
        let changed = 0
        client.setNotificationHandler("notifications/tools/list_changed", () => {
          changed++
        })
        await client.connect(new StdioClientTransport({ command: process.execPath, args }))
        assert.strictEqual(client.getNegotiatedProtocolVersion(), mode === "auto" ? "2026-07-28" : "2025-11-25")
        // A 2026-07-28 client hears list changes on a `subscriptions/listen` stream; a 2025-era one unsolicited.
        const subscription = mode === "auto"
          ? await client.listen({ toolsListChanged: true })
          : undefined
        assert.notInclude(names((await client.listTools()).tools), "added_echo")
        await client.callTool({ name: "add", arguments: {} })
        const deadline = performance.now() + 30_000
        while (changed === 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20))
        assert.isAbove(changed, 0, mode)
        assert.include(names((await client.listTools()).tools), "added_echo")
        await subscription?.close()
        await client.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})

describe("Gateway: resources, prompts and completion", () => {
  let upstream: TestServer.HttpTestServer
  let gateway: Awaited<ReturnType<typeof serveGateway>>

  beforeAll(async () => {
    upstream = await TestServer.startHttp({
      name: "docs",
      tools: [
        { name: "touch", respond: { kind: "updateResource", uri: "mem://readme" } },
        { name: "addPrompt", respond: { kind: "addPrompt", name: "later" } },
        { name: "addResource", respond: { kind: "addResource", uri: "mem://new", name: "new" } }
      ],
      resources: [{ uri: "mem://readme", name: "readme", text: "read me" }],
      resourceTemplates: [{ uriTemplate: "file:///{path}", name: "files", complete: { path: ["a.txt", "b.txt"] } }],
      prompts: [{
        name: "greet",
        arguments: [{ name: "who", required: true, complete: ["Ada", "Alan", "Grace"] }],
        text: "Hello {who}"
      }]
    })
    gateway = await serveGateway({
      mcpServers: { docs: { url: upstream.url } },
      gateway: { prefix: "always", separator: "__" }
    }, { port: 0 })
  }, 60_000)

  afterAll(async () => {
    await gateway?.close()
    await upstream?.close()
  })

  it("serves resources, templates, prompts (named like tools) and completion to 2026-07-28 and 2025-era clients", async () => {
    for (const mode of ["auto", "legacy"] as const) {
      const client = await v2(gateway.url, mode)
      assert.strictEqual(client.getNegotiatedProtocolVersion(), mode === "auto" ? "2026-07-28" : "2025-11-25")
      const capabilities = client.getServerCapabilities()
      assert.isDefined(capabilities?.resources)
      assert.isDefined(capabilities?.prompts)
      assert.isDefined(capabilities?.completions)
      assert.deepStrictEqual((await client.listResources()).resources.map((r) => r.uri), ["mem://readme"])
      assert.deepStrictEqual(
        (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate),
        ["file:///{path}"]
      )
      const readme = await client.readResource({ uri: "mem://readme" })
      assert.strictEqual((readme.contents[0] as { text: string }).text, "read me")
      const file = await client.readResource({ uri: "file:///a.txt" })
      assert.deepStrictEqual(JSON.parse((file.contents[0] as { text: string }).text), { path: "a.txt" })
      const missing = await client.readResource({ uri: "mem://missing" }).then(
        () => assert.fail("read"),
        (error: { code?: number; data?: { uri?: string } }) => error
      )
      assert.strictEqual(missing.code, -32602)
      assert.strictEqual(missing.data?.uri, "mem://missing")
      assert.deepStrictEqual((await client.listPrompts()).prompts.map((p) => p.name), ["docs__greet"])
      const prompt = await client.getPrompt({ name: "docs__greet", arguments: { who: "Ada" } })
      assert.strictEqual((prompt.messages[0]!.content as { text: string }).text, "Hello Ada")
      const unknown = await client.getPrompt({ name: "greet" }).then(() => "served", () => "refused")
      assert.strictEqual(unknown, "refused")
      const who = await client.complete({
        ref: { type: "ref/prompt", name: "docs__greet" },
        argument: { name: "who", value: "A" }
      })
      assert.deepStrictEqual(who.completion.values, ["Ada", "Alan"])
      const paths = await client.complete({
        ref: { type: "ref/resource", uri: "file:///{path}" },
        argument: { name: "path", value: "b" }
      })
      assert.deepStrictEqual(paths.completion.values, ["b.txt"])
      await client.close()
    }
  })

  // Last: it adds a prompt and a resource to the upstream.
  it("forwards resources/updated to a subscribed 2025-era session, and resource and prompt list changes", async () => {
    const client = await v2(gateway.url, "legacy")
    const seen: Array<string> = []
    client.setNotificationHandler("notifications/resources/updated", (n) => {
      seen.push(`updated ${n.params.uri}`)
    })
    client.setNotificationHandler("notifications/prompts/list_changed", () => {
      seen.push("prompts")
    })
    client.setNotificationHandler("notifications/resources/list_changed", () => {
      seen.push("resources")
    })
    const until = async (what: string) => {
      const deadline = performance.now() + 15_000
      while (!seen.includes(what) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      assert.include(seen, what)
    }
    await client.subscribeResource({ uri: "mem://readme" })
    // Touched until the update arrives: whichever era the bridge speaks upstream, its subscription is then open.
    const deadline = performance.now() + 15_000
    while (!seen.includes("updated mem://readme") && performance.now() < deadline) {
      await client.callTool({ name: "docs__touch", arguments: {} })
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.include(seen, "updated mem://readme")
    await client.callTool({ name: "docs__addPrompt", arguments: {} })
    await until("prompts")
    assert.include((await client.listPrompts()).prompts.map((p) => p.name), "docs__later")
    await client.callTool({ name: "docs__addResource", arguments: {} })
    await until("resources")
    assert.include((await client.listResources()).resources.map((r) => r.uri), "mem://new")
    await client.unsubscribeResource({ uri: "mem://readme" })
    await client.close()
  })
})
