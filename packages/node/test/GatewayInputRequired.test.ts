import { assert, describe, it } from "@effect/vitest"
import { serveGateway } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import {
  Client,
  isInputRequiredResult,
  ProtocolError,
  StreamableHTTPClientTransport
} from "@modelcontextprotocol/client"
import type { CallToolResult, ClientCapabilities, InputRequiredResult } from "@modelcontextprotocol/client"
import { afterAll, beforeAll } from "vitest"

// A 2026-07-28 upstream whose tools ask the client (`input_required`), behind the gateway, and 2026-07-28 SDK v2
// clients in front of it. `elicit` is cacheable and read-only by policy: its rounds must still each reach the upstream.
const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "elicit", respond: { kind: "elicit", message: "Your name?", rounds: 2 } },
  { name: "sample", respond: { kind: "sample", prompt: "Say hi" } },
  { name: "capabilities", respond: { kind: "capabilities" } },
  {
    name: "regional",
    respond: { kind: "echo" },
    inputSchema: { type: "object", properties: { region: { type: "string", "x-mcp-header": "Region" } } }
  }
]

const text = (result: CallToolResult) => (result.content[0] as { text: string }).text

const full: ClientCapabilities = { elicitation: { form: {} }, sampling: {}, roots: {} }

describe("GatewayInputRequired", () => {
  let upstream: TestServer.HttpTestServer
  let gateway: Awaited<ReturnType<typeof serveGateway>>
  const clients: Array<Client> = []

  const connect = async (capabilities: ClientCapabilities) => {
    const client = new Client({ name: "rounds-test", version: "1.0.0" }, {
      versionNegotiation: { mode: "auto" },
      capabilities
    })
    if (capabilities.sampling !== undefined) {
      client.setRequestHandler("sampling/createMessage", () =>
        Promise.resolve({
          model: "test-model",
          role: "assistant" as const,
          content: { type: "text" as const, text: "hi!" }
        }))
    }
    await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url)))
    assert.strictEqual(client.getNegotiatedProtocolVersion(), "2026-07-28")
    clients.push(client)
    return client
  }

  beforeAll(async () => {
    upstream = await TestServer.startHttp({ name: "up", tools })
    gateway = await serveGateway(
      {
        mcpServers: {
          up: { url: upstream.url, bridge: { protocol: "2026-07-28", tools: { elicit: { cache: "1 minute" } } } }
        }
      },
      { port: 0, dashboard: false }
    )
  }, 60_000)

  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined)
    await gateway?.close()
    await upstream?.close()
  })

  // One manual round: the client sees the upstream's `input_required` itself.
  const call = (client: Client, params: Record<string, unknown>) =>
    client.callTool({ name: "elicit", arguments: {}, ...params } as never, { allowInputRequired: true }) as Promise<
      CallToolResult | InputRequiredResult
    >

  it("passes the upstream's input_required rounds through, requestState and inputResponses as sent", async () => {
    const client = await connect(full)
    const before = upstream.calls("elicit")
    for (const name of ["Ada", "Grace"]) {
      const first = await call(client, {})
      assert.isTrue(isInputRequiredResult(first))
      const r1 = first as InputRequiredResult
      assert.strictEqual(r1.inputRequests?.["form"]?.method, "elicitation/create")
      assert.match((r1.inputRequests?.["form"]?.params as { message: string }).message, /\(1 of 2\)$/)
      // The upstream's state, with its quotes, backslashes, tabs and non-ASCII, as the upstream minted it.
      assert.match(JSON.parse(r1.requestState ?? "[]")[0], /"quotes", \\backslash, ünïcödé ✓, tabs\tand/)
      const second = await call(client, {
        inputResponses: { form: { action: "accept", content: { name } } },
        requestState: r1.requestState
      })
      assert.isTrue(isInputRequiredResult(second))
      const r2 = second as InputRequiredResult
      assert.notStrictEqual(r2.requestState, r1.requestState)
      const done = await call(client, {
        inputResponses: { form: { action: "accept", content: { name: `${name}!` } } },
        requestState: r2.requestState
      })
      assert.isFalse(isInputRequiredResult(done))
      const answer = JSON.parse(text(done as CallToolResult))
      assert.strictEqual(answer.era, "modern")
      // The upstream got back, byte for byte, the state it sent in the second round.
      assert.strictEqual(answer.requestState, r2.requestState)
      assert.isTrue(answer.intact)
      assert.deepStrictEqual(answer.answers.map((a: { content: { name: string } }) => a.content.name), [
        name,
        `${name}!`
      ])
    }
    // Every round of both exchanges reached the upstream: none was cached, nor answered from another.
    assert.strictEqual(upstream.calls("elicit") - before, 6)
  })

  it("lets an SDK v2 client fulfil the rounds itself", async () => {
    const client = await connect(full)
    const result = await client.callTool({ name: "sample", arguments: {} }) as CallToolResult
    const answer = JSON.parse(text(result))
    assert.strictEqual(answer.text, "hi!")
    assert.strictEqual(answer.model, "test-model")
  })

  it("shows the upstream the downstream request's capabilities, and never asks for one the client lacks", async () => {
    const client = await connect({ sampling: {} })
    const seen = JSON.parse(text(await client.callTool({ name: "capabilities", arguments: {} }) as CallToolResult))
    assert.deepStrictEqual(seen.capabilities, { sampling: {} })
    // The upstream asks for a form anyway: the client, which declared no elicitation, gets -32021 instead.
    const error = await call(client, {}).then(
      () => assert.fail("the client was asked for an elicitation it did not declare"),
      (e: unknown) => e
    )
    assert.instanceOf(error, ProtocolError)
    assert.strictEqual((error as ProtocolError).code, -32021)
  })

  // SEP-2243: the gateway checks a 2026-07-28 call's `Mcp-Param-*` headers against the tool it serves.
  const post = (region: string | undefined, header: string | undefined) =>
    fetch(gateway.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "regional",
        ...(header === undefined ? {} : { "mcp-param-region": header })
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: {
          name: "regional",
          arguments: region === undefined ? {} : { region },
          _meta: {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}
          }
        }
      })
    })

  it("refuses a tools/call whose Mcp-Param headers disagree with its arguments (400, -32020)", async () => {
    const client = await connect({})
    // The SDK client mirrors the argument into the header itself.
    const echoed = await client.callTool({ name: "regional", arguments: { region: "eu-west" } }) as CallToolResult
    assert.isUndefined(echoed.isError)
    for (const [region, header] of [["eu-west", undefined], ["eu-west", "us-east"], ["Hello", "=?base64?SGVsbG8?="]]) {
      const response = await post(region, header)
      assert.strictEqual(response.status, 400, `${region} / ${header}`)
      const body = await response.json() as { id: number; error: { code: number } }
      assert.strictEqual(body.error.code, -32020)
      assert.strictEqual(body.id, 7)
    }
    for (const [region, header] of [["Hello", "=?base64?SGVsbG8=?="], ["eu-west", "eu-west"], [undefined, undefined]]) {
      const response = await post(region, header)
      assert.strictEqual(response.status, 200, `${region} / ${header}`)
      await response.body?.cancel()
    }
  })
})

// A 2025-era upstream asks with requests of its own: the gateway turns them into rounds of its own for a 2026-07-28
// client, its `requestState` sealed.
describe("GatewayInputRequired: a 2025-era upstream", () => {
  let upstream: TestServer.HttpTestServer
  let gateway: Awaited<ReturnType<typeof serveGateway>>
  const clients: Array<Client> = []

  beforeAll(async () => {
    upstream = await TestServer.startHttp({ name: "up", tools })
    gateway = await serveGateway(
      { mcpServers: { up: { url: upstream.url, bridge: { protocol: "legacy" } } } },
      { port: 0, dashboard: false }
    )
  }, 60_000)

  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined)
    await gateway?.close()
    await upstream?.close()
  })

  const connect = async (capabilities: ClientCapabilities) => {
    const client = new Client({ name: "bridged-test", version: "1.0.0" }, {
      versionNegotiation: { mode: "auto" },
      capabilities
    })
    if (capabilities.sampling !== undefined) {
      client.setRequestHandler(
        "sampling/createMessage",
        () =>
          Promise.resolve({ model: "m", role: "assistant" as const, content: { type: "text" as const, text: "yo" } })
      )
    }
    await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url)))
    clients.push(client)
    return client
  }
  const call = (client: Client, params: Record<string, unknown>) =>
    client.callTool({ name: "elicit", arguments: {}, ...params } as never, { allowInputRequired: true }) as Promise<
      CallToolResult | InputRequiredResult
    >

  it("answers the upstream's requests with rounds of the gateway's own, one upstream call for all of them", async () => {
    const client = await connect(full)
    const before = upstream.calls("elicit")
    const r1 = await call(client, {}) as InputRequiredResult
    assert.isTrue(isInputRequiredResult(r1))
    const [key1, ask1] = Object.entries(r1.inputRequests ?? {})[0]!
    assert.strictEqual(ask1.method, "elicitation/create")
    assert.match((ask1.params as { message: string }).message, /\(1 of 2\)$/)
    // A changed state, or one replayed by another caller's tool, is refused.
    const tampered = await call(client, {
      inputResponses: { [key1]: { action: "accept", content: { name: "Eve" } } },
      requestState: `${r1.requestState!.slice(0, -4)}AAAA`
    }).then(() => undefined, (e: unknown) => e)
    assert.instanceOf(tampered, ProtocolError)
    assert.strictEqual((tampered as ProtocolError).code, -32602)
    const r2 = await call(client, {
      inputResponses: { [key1]: { action: "accept", content: { name: "Ada" } } },
      requestState: r1.requestState
    }) as InputRequiredResult
    assert.isTrue(isInputRequiredResult(r2))
    const [key2, ask2] = Object.entries(r2.inputRequests ?? {})[0]!
    assert.match((ask2.params as { message: string }).message, /\(2 of 2\)$/)
    const done = await call(client, {
      inputResponses: { [key2]: { action: "accept", content: { name: "Ada Lovelace" } } },
      requestState: r2.requestState
    }) as CallToolResult
    const answer = JSON.parse(text(done))
    assert.strictEqual(answer.era, "legacy")
    assert.deepStrictEqual(answer.answers.map((a: { content: { name: string } }) => a.content.name), [
      "Ada",
      "Ada Lovelace"
    ])
    // One upstream call asked twice and answered once.
    assert.strictEqual(upstream.calls("elicit") - before, 1)
    // Its call is over: the state opens no more.
    const replayed = await call(client, {
      inputResponses: { [key2]: { action: "accept", content: { name: "Ada" } } },
      requestState: r2.requestState
    }).then(() => undefined, (e: unknown) => e)
    assert.strictEqual((replayed as ProtocolError).code, -32602)
  })

  it("lets an SDK v2 client answer the rounds itself, and never asks what it did not declare", async () => {
    const client = await connect({ sampling: {} })
    const sampled = JSON.parse(text(await client.callTool({ name: "sample", arguments: {} }) as CallToolResult))
    assert.strictEqual(sampled.text, "yo")
    // No elicitation declared: the upstream's request is refused, the client is asked nothing.
    const refused = await call(client, {}) as CallToolResult
    assert.strictEqual(refused.isError, true)
    assert.match(text(refused), /did not declare/)
  })
})

describe("GatewayInputRequired: shutdown", () => {
  it("ends a parked call when the gateway stops", async () => {
    const upstream = await TestServer.startHttp({ name: "up", tools })
    const gateway = await serveGateway(
      { mcpServers: { up: { url: upstream.url, bridge: { protocol: "legacy" } } } },
      { port: 0, dashboard: false }
    )
    const client = new Client({ name: "shutdown-test", version: "1.0.0" }, {
      versionNegotiation: { mode: "auto" },
      capabilities: full
    })
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url)))
      const first = await client.callTool({ name: "elicit", arguments: {} }, { allowInputRequired: true })
      assert.isTrue(isInputRequiredResult(first))
      // The upstream call is parked on the gateway, waiting for the client's answer.
      assert.strictEqual(upstream.inFlight(), 1)
      await gateway.close()
      // The gateway's close ended the parked call: the upstream's request was answered, its call is over.
      await upstream.until(() => upstream.inFlight() === 0)
    } finally {
      await client.close().catch(() => undefined)
      await gateway.close()
      await upstream.close()
    }
  })
})
