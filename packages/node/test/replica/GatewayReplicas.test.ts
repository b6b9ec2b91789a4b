import { NodeRedis } from "@effect/platform-node"
import { McpBridge } from "@mcp-bridge/core"
import { Gateway, NodeTransport } from "@mcp-bridge/node"
import { TestRedis, TestServer } from "@mcp-bridge/testing"
import {
  Client,
  isInputRequiredResult,
  ProtocolError,
  StreamableHTTPClientTransport
} from "@modelcontextprotocol/client"
import type { CallToolResult, InputRequiredResult } from "@modelcontextprotocol/client"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { randomUUID } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as GatewayReplicas from "../../src/replica/GatewayReplicas.ts"

let redis: TestRedis.RedisServer
let upstream: TestServer.HttpTestServer
beforeAll(async () => {
  redis = await TestRedis.start()
  upstream = await TestServer.startHttp({
    name: "up",
    tools: [
      { name: "echo", respond: { kind: "echo" } },
      { name: "elicit", respond: { kind: "elicit", message: "Your name?", rounds: 2 } }
    ]
  })
}, 60_000)
afterAll(async () => {
  await upstream?.close()
  await redis?.stop()
})

/** One gateway replica with its own bridge and Redis connection; `stop` closes it like a replica that went away. */
const replica = async (prefix: string) => {
  // A 2025-era upstream: what it asks a 2026-07-28 client becomes rounds of the gateway's own.
  const up = { url: upstream.url, bridge: { protocol: "legacy" as const } }
  const relay = Gateway.layerRelay()
  const live = Gateway.layer({ port: 0 }).pipe(
    Layer.provide(GatewayReplicas.layerRedis({ prefix })),
    Layer.provide(NodeRedis.layer({ url: redis.url })),
    Layer.provide(McpBridge.layer({ mcpServers: { up } }, { transport: NodeTransport.layer(), handlers: relay })),
    Layer.provide(relay)
  )
  const scope = await Effect.runPromise(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(live, scope))
  const gateway = Context.get(context, Gateway.Gateway)
  return { url: gateway.url, stop: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

/** Sends each request to whichever replica `target()` names: a balancer the test steers. */
const steered = (target: () => string): typeof fetch => (_input, init) => fetch(target(), init)

describe("GatewayReplicas", () => {
  it("a 2025-era session opened on one replica goes on on another after the first stops", async () => {
    const prefix = `test:${randomUUID()}:`
    const a = await replica(prefix)
    const b = await replica(prefix)
    let target = a.url
    const client = new Client({ name: "replicas-test", version: "1.0.0" })
    await client.connect(new StreamableHTTPClientTransport(new URL(a.url), { fetch: steered(() => target) }))
    try {
      const first = await client.callTool({ name: "echo", arguments: { n: 1 } })
      expect(first.isError).not.toBe(true)
      const session = (client.transport as StreamableHTTPClientTransport).sessionId!
      expect(session.startsWith("s1.")).toBe(true)
      await a.stop()
      target = b.url
      const second = await client.callTool({ name: "echo", arguments: { n: 2 } })
      expect(second.isError).not.toBe(true)
      expect(JSON.stringify(second.content)).toContain("2")
      expect((client.transport as StreamableHTTPClientTransport).sessionId).toBe(session)
      // An id another deployment sealed (or a forged one) is still "Session not found".
      const forged = await fetch(b.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": session.slice(0, -6) + "AAAAAA"
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
      })
      expect(forged.status).toBe(404)
    } finally {
      await client.close()
      await b.stop()
    }
  }, 60_000)

  it("a 2026-07-28 client's retry of a bridged round goes on through another replica", async () => {
    const prefix = `test:${randomUUID()}:`
    const a = await replica(prefix)
    const b = await replica(prefix)
    let target = a.url
    const client = new Client({ name: "replicas-test-2026", version: "1.0.0" }, {
      versionNegotiation: { mode: "auto" },
      capabilities: { elicitation: { form: {} } }
    })
    await client.connect(new StreamableHTTPClientTransport(new URL(a.url), { fetch: steered(() => target) }))
    const call = (params: Record<string, unknown>) =>
      client.callTool({ name: "elicit", arguments: {}, ...params } as never, { allowInputRequired: true }) as Promise<
        CallToolResult | InputRequiredResult
      >
    const answer = (round: InputRequiredResult, name: string) => ({
      inputResponses: { [Object.keys(round.inputRequests ?? {})[0]!]: { action: "accept", content: { name } } },
      requestState: round.requestState
    })
    try {
      expect(client.getNegotiatedProtocolVersion()).toBe("2026-07-28")
      const before = upstream.calls("elicit")
      const r1 = await call({}) as InputRequiredResult
      expect(isInputRequiredResult(r1), JSON.stringify(r1)).toBe(true)
      // The retry reaches B, which forwards it to A (where the upstream call waits): A's next round comes back.
      target = b.url
      const r2 = await call(answer(r1, "Ada")) as InputRequiredResult
      expect(isInputRequiredResult(r2)).toBe(true)
      // And once more through B: the call's result.
      const done = await call(answer(r2, "Ada Lovelace")) as CallToolResult
      const result = JSON.parse((done.content[0] as { text: string }).text)
      expect(result.answers.map((x: { content: { name: string } }) => x.content.name)).toEqual(["Ada", "Ada Lovelace"])
      expect(upstream.calls("elicit") - before).toBe(1)
      // A round whose replica is gone: refused with -32602 at once (its upstream call went with it).
      target = a.url
      const r3 = await call({}) as InputRequiredResult
      await a.stop()
      target = b.url
      const gone = await call(answer(r3, "Eve")).then(() => undefined, (e: unknown) => e)
      expect(gone).toBeInstanceOf(ProtocolError)
      expect((gone as ProtocolError).code).toBe(-32602)
      expect((gone as ProtocolError).message).toContain("gone")
    } finally {
      await client.close()
      await b.stop()
      await a.stop().catch(() => undefined)
    }
  }, 60_000)
})
