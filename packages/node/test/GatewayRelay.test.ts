import { assert, describe, it } from "@effect/vitest"
import { serveGateway } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import type { CallToolResult, ClientCapabilities, LoggingMessageNotification } from "@modelcontextprotocol/client"
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio"
import { createHash } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll } from "vitest"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "elicit", respond: { kind: "elicit", message: "Your name?" } },
  { name: "elicit_url", respond: { kind: "elicitUrl", url: "https://example.com/login" } },
  { name: "sample", respond: { kind: "sample", prompt: "Say hi" } },
  { name: "roots", respond: { kind: "roots" } },
  { name: "log", respond: { kind: "log", levels: ["debug", "info", "error"], logger: "up" } }
]

const text = (result: CallToolResult) => (result.content[0] as { text: string }).text

interface Asked {
  readonly elicit: Array<string>
  readonly sample: Array<unknown>
  readonly roots: Array<true>
  readonly logs: Array<LoggingMessageNotification["params"]>
}

// A 2025-11-25 downstream client (sessions: the era with server→client requests) answering what it declares.
const downstream = async (
  url: string,
  capabilities: ClientCapabilities,
  options: { readonly key?: string; readonly name?: string; readonly before?: () => Promise<void> } = {}
) => {
  const asked: Asked = { elicit: [], sample: [], roots: [], logs: [] }
  const client = new Client({ name: "relay-test", version: "1.0.0" }, { capabilities })
  if (capabilities.elicitation !== undefined) {
    client.setRequestHandler("elicitation/create", async (request) => {
      asked.elicit.push(request.params.message)
      await options.before?.()
      return request.params.mode === "url"
        ? { action: "decline" as const }
        : { action: "accept" as const, content: { name: options.name ?? "Ada" } }
    })
  }
  if (capabilities.sampling !== undefined) {
    client.setRequestHandler("sampling/createMessage", (request) => {
      asked.sample.push(request.params.messages[0]?.content)
      return Promise.resolve({
        model: "test-model",
        role: "assistant" as const,
        content: { type: "text" as const, text: "hi!" }
      })
    })
  }
  if (capabilities.roots !== undefined) {
    client.setRequestHandler("roots/list", () => {
      asked.roots.push(true)
      return Promise.resolve({ roots: [{ uri: "file:///work", name: "work" }] })
    })
  }
  client.setNotificationHandler("notifications/message", (notification) => {
    asked.logs.push(notification.params)
  })
  const headers: Record<string, string> = options.key === undefined ? {} : { authorization: `Bearer ${options.key}` }
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }))
  return { client, asked }
}

const full: ClientCapabilities = { elicitation: { form: {} }, sampling: {}, roots: {} }

// A 2026-07-28 downstream client (no sessions, no server→client requests: it is asked through `input_required`),
// answering elicitations as Ada.
const modernClient = async (url: string) => {
  const client = new Client({ name: "relay-test", version: "1.0.0" }, {
    versionNegotiation: { mode: "auto" },
    capabilities: full
  })
  const asked: Array<string> = []
  client.setRequestHandler("elicitation/create", (request) => {
    asked.push(request.params.message)
    return Promise.resolve({ action: "accept" as const, content: { name: "Ada" } })
  })
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  assert.strictEqual(client.getNegotiatedProtocolVersion(), "2026-07-28")
  return { client, asked }
}

// The upstream in both eras: 2026-07-28 (`input_required`, fulfilled by the session) and 2025-11-25 (requests).
describe.each(["2026-07-28", "legacy"] as const)("GatewayRelay (upstream %s)", (protocol) => {
  let upstream: TestServer.HttpTestServer
  let gateway: Awaited<ReturnType<typeof serveGateway>>

  beforeAll(async () => {
    upstream = await TestServer.startHttp({
      name: "up",
      tools,
      prompts: [{ name: "greet", text: "Hello", ask: "Greet whom?" }],
      resources: [{ uri: "note://asked", name: "asked", text: "Note", ask: "Which note?" }]
    })
    gateway = await serveGateway(
      { mcpServers: { up: { url: upstream.url, bridge: { protocol } } } },
      { port: 0, dashboard: false }
    )
  }, 60_000)

  afterAll(async () => {
    await gateway?.close()
    await upstream?.close()
  })

  it("relays an elicitation to the downstream client that made the call, and its answer back", async () => {
    const { asked, client } = await downstream(gateway.url, full)
    const result = await client.callTool({ name: "elicit", arguments: {} }) as CallToolResult
    assert.deepStrictEqual(asked.elicit, ["Your name? (1 of 1)"])
    const answer = JSON.parse(text(result))
    assert.strictEqual(answer.action, "accept")
    assert.strictEqual(answer.content.name, "Ada")
    // The schema's defaults are applied to what the client left out (SEP-1034).
    assert.strictEqual(answer.content.confirm, true)
    await client.close()
  })

  // The test server asks only on 2025-era sessions; a 2026-07-28 upstream's prompt answers without asking.
  it.runIf(protocol === "legacy")(
    "relays what an upstream asks during prompts/get and resources/read to the client that made the request, in both eras",
    async () => {
      // The upstream's prompt and resource end their text with what the client answered.
      const answeredAs = async (client: Client, name: string) => {
        const prompt = await client.getPrompt({ name: "greet" })
        assert.strictEqual((prompt.messages[0]!.content as { text: string }).text, `Hello (accept: {"name":"${name}"})`)
        const read = await client.readResource({ uri: "note://asked" })
        assert.strictEqual((read.contents[0] as { text: string }).text, `Note (accept: {"name":"${name}"})`)
      }
      const { asked, client } = await downstream(gateway.url, full, { name: "Grace" })
      await answeredAs(client, "Grace")
      assert.deepStrictEqual(asked.elicit, ["Greet whom?", "Which note?"])
      // A client that did not declare elicitation is never asked: the upstream hears why.
      const { asked: none, client: bare } = await downstream(gateway.url, {})
      const refused = await bare.getPrompt({ name: "greet" })
      assert.match((refused.messages[0]!.content as { text: string }).text, /^Hello \(.*did not declare/)
      assert.deepStrictEqual(none.elicit, [])
      await bare.close()
      await client.close()
      // A 2026-07-28 client is asked the same through `input_required` rounds of the gateway's own.
      const { asked: modernAsked, client: modern } = await modernClient(gateway.url)
      await answeredAs(modern, "Ada")
      assert.deepStrictEqual(modernAsked, ["Greet whom?", "Which note?"])
      await modern.close()
    }
  )

  it("relays sampling and roots", async () => {
    const { asked, client } = await downstream(gateway.url, full)
    const sampled = JSON.parse(text(await client.callTool({ name: "sample", arguments: {} }) as CallToolResult))
    assert.strictEqual(sampled.text, "hi!")
    assert.strictEqual(sampled.model, "test-model")
    assert.deepStrictEqual(asked.sample, [{ type: "text", text: "Say hi" }])
    const roots = JSON.parse(text(await client.callTool({ name: "roots", arguments: {} }) as CallToolResult))
    assert.deepStrictEqual(roots.roots, [{ uri: "file:///work", name: "work" }])
    assert.strictEqual(asked.roots.length, 1)
    await client.close()
  })

  it("never asks a client what it did not declare: the upstream is refused", async () => {
    const { asked, client } = await downstream(gateway.url, { elicitation: { form: {} } })
    const url = await client.callTool({ name: "elicit_url", arguments: {} }) as CallToolResult
    const sampled = await client.callTool({ name: "sample", arguments: {} }) as CallToolResult
    const roots = await client.callTool({ name: "roots", arguments: {} }) as CallToolResult
    for (const result of [url, sampled, roots]) {
      assert.strictEqual(result.isError, true, text(result))
      assert.match(text(result), /did not declare/)
    }
    assert.deepStrictEqual(asked, { elicit: [], sample: [], roots: [], logs: [] })
    await client.close()
  })

  it("asks a 2026-07-28 downstream request only through input_required (it has no server→client channel)", async () => {
    const { asked, client } = await modernClient(gateway.url)
    const result = await client.callTool({ name: "elicit", arguments: {} }) as CallToolResult
    // The upstream's `input_required` (2026-07-28), or its request as a round of the gateway's own (2025 era), reached
    // the client, whose SDK answered it and retried.
    assert.strictEqual(JSON.parse(text(result)).content.name, "Ada")
    assert.deepStrictEqual(asked, ["Your name? (1 of 1)"])
    await client.close()
  })

  it("relays the upstream's log messages during a call, at the level the downstream client set", async () => {
    const { asked, client } = await downstream(gateway.url, full)
    await client.setLoggingLevel("info")
    const result = await client.callTool({ name: "log", arguments: {} }) as CallToolResult
    assert.strictEqual(result.isError, undefined)
    assert.deepStrictEqual(asked.logs.map((l) => [l.level, l.data, l.logger]), [
      ["info", "info message", "up"],
      ["error", "error message", "up"]
    ])
    await client.close()
  })
})

describe.each(["2026-07-28", "legacy"] as const)("GatewayRelay: two callers (upstream %s)", (protocol) => {
  let upstream: TestServer.HttpTestServer
  let gateway: Awaited<ReturnType<typeof serveGateway>>
  const digest = (key: string) => createHash("sha256").update(key).digest("hex")

  beforeAll(async () => {
    upstream = await TestServer.startHttp({ name: "up", tools })
    gateway = await serveGateway({
      mcpServers: { up: { url: upstream.url, bridge: { protocol } } },
      gateway: {
        apiKeys: [{ principal: "alice", sha256: digest("k-alice-1") }, { principal: "bob", sha256: digest("k-bob-22") }]
      }
    }, { port: 0, dashboard: false })
  }, 60_000)

  afterAll(async () => {
    await gateway?.close()
    await upstream?.close()
  })

  it("asks each caller's own client, while both calls run, and never the other's", async () => {
    // Alice answers only once Bob's call ended, and Bob calls once Alice was asked: both calls run at once.
    let aliceAsked!: () => void
    let bobDone!: () => void
    const aliceWasAsked = new Promise<void>((resolve) => (aliceAsked = resolve))
    const bobEnded = new Promise<void>((resolve) => (bobDone = resolve))
    const alice = await downstream(gateway.url, full, {
      key: "k-alice-1",
      name: "Alice",
      before: () => (aliceAsked(), bobEnded)
    })
    const bob = await downstream(gateway.url, full, { key: "k-bob-22", name: "Bob" })
    const [a, b] = await Promise.all([
      alice.client.callTool({ name: "elicit", arguments: {} }) as Promise<CallToolResult>,
      aliceWasAsked.then(() => bob.client.callTool({ name: "elicit", arguments: {} }) as Promise<CallToolResult>)
        .finally(bobDone)
    ])
    assert.strictEqual(JSON.parse(text(a)).content.name, "Alice")
    assert.strictEqual(alice.asked.elicit.length, 1)
    if (protocol === "2026-07-28") {
      // A 2026-07-28 upstream names the call each request belongs to.
      assert.strictEqual(JSON.parse(text(b)).content.name, "Bob")
    } else {
      // Two callers' calls on one 2025-era upstream session: the request names neither, so it is refused.
      assert.strictEqual(b.isError, true, text(b))
      assert.match(text(b), /no downstream call in flight matches it/)
      assert.strictEqual(bob.asked.elicit.length, 0)
    }
    await alice.client.close()
    await bob.client.close()
  })
})

describe("GatewayRelay: mcp-bridge serve --stdio", () => {
  const bin = fileURLToPath(new URL("../src/bin/mcp-bridge.ts", import.meta.url))
  it("relays an upstream's elicitation and sampling to a 2025-era stdio client", async () => {
    const upstream = await TestServer.startHttp({ name: "up", tools })
    const dir = mkdtempSync(join(tmpdir(), "mcp-bridge-relay-"))
    const file = join(dir, "mcp.json")
    writeFileSync(file, JSON.stringify({ mcpServers: { up: { url: upstream.url } } }))
    const client = new Client({ name: "stdio-relay", version: "1.0.0" }, { capabilities: full })
    const asked: Array<string> = []
    client.setRequestHandler("elicitation/create", (request) => {
      asked.push(request.params.message)
      return Promise.resolve({ action: "accept" as const, content: { name: "Grace" } })
    })
    client.setRequestHandler(
      "sampling/createMessage",
      () => Promise.resolve({ model: "m", role: "assistant" as const, content: { type: "text" as const, text: "yo" } })
    )
    try {
      await client.connect(
        new StdioClientTransport({
          command: process.execPath,
          args: ["--conditions=@mcp-bridge/source", bin, "serve", "--config", file, "--stdio"]
        })
      )
      const elicited = JSON.parse(text(await client.callTool({ name: "elicit", arguments: {} }) as CallToolResult))
      assert.strictEqual(elicited.content.name, "Grace")
      assert.deepStrictEqual(asked, ["Your name? (1 of 1)"])
      const sampled = JSON.parse(text(await client.callTool({ name: "sample", arguments: {} }) as CallToolResult))
      assert.strictEqual(sampled.text, "yo")
    } finally {
      await client.close()
      await upstream.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
