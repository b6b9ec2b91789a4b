/**
 * A 2026-07-28 result without `resultType` is a complete result (SEP-2322), though the SDK's codec refuses it: the
 * session's transport fills the field in (internal/resultType.ts). Against a hand-written server transport that
 * answers raw JSON-RPC, so that the wire can carry what an SDK server would never send.
 */
import { assert, describe, it } from "@effect/vitest"
import { McpBridge, McpTransport } from "@mcp-bridge/core"
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client"
import { Effect } from "effect"
import { completeByDefault } from "../src/session/internal/resultType.ts"

const envelope = "io.modelcontextprotocol/protocolVersion"

/** A 2026-07-28 server as a transport: `answer` gives each request's result. */
const rawServer = (answer: (method: string, params: Record<string, unknown>) => Record<string, unknown>) => {
  const seen: Array<{ method: string; params: Record<string, unknown> }> = []
  const connect = (): Transport => {
    const transport: Transport = {
      start: async () => {},
      close: async () => transport.onclose?.(),
      send: async (message) => {
        const request = message as { method?: string; id?: number | string; params?: Record<string, unknown> }
        if (request.method === undefined || request.id === undefined) return
        seen.push({ method: request.method, params: request.params ?? {} })
        const reply = { jsonrpc: "2.0", id: request.id, result: answer(request.method, request.params ?? {}) }
        queueMicrotask(() => transport.onmessage?.(reply as JSONRPCMessage))
      }
    }
    return transport
  }
  return { connect, seen }
}

const modern = (method: string): Record<string, unknown> => {
  switch (method) {
    case "server/discover":
      return {
        resultType: "complete",
        ttlMs: 0,
        cacheScope: "private",
        supportedVersions: ["2026-07-28"],
        capabilities: { tools: {} },
        serverInfo: { name: "raw", version: "1.0.0" }
      }
    case "tools/list":
      return {
        resultType: "complete",
        ttlMs: 0,
        cacheScope: "private",
        tools: [{ name: "plain", inputSchema: { type: "object" } }]
      }
    default:
      // No resultType: complete by default.
      return { content: [{ type: "text", text: "done" }] }
  }
}

describe("resultType", () => {
  it.live("a 2026-07-28 tools/call result without resultType is complete", () => {
    const server = rawServer(modern)
    const layer = McpBridge.layer(
      { mcpServers: { s: { type: "memory", bridge: { retry: false, protocol: "2026-07-28" } } } },
      { transport: McpTransport.layer({ memory: { s: server.connect } }), cache: false, coalescing: false }
    )
    return Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      const result = yield* bridge.callTool("s.plain", {})
      assert.deepStrictEqual(result.content, [{ type: "text", text: "done" }])
      const call = server.seen.find((request) => request.method === "tools/call")
      assert.isDefined(call)
      assert.property((call!.params._meta ?? {}) as object, envelope)
    }).pipe(Effect.provide(layer))
  })

  it("only answers to enveloped requests are filled in, each once, through the SDK's chained handlers", async () => {
    const received: Array<unknown> = []
    const sent: Array<JSONRPCMessage> = []
    const inner: Transport = {
      start: async () => {},
      close: async () => {},
      send: async (message) => void sent.push(message)
    }
    const transport = completeByDefault(inner)
    // The SDK's way: read the handler there is, and set one that calls it first.
    transport.onmessage = (message) => received.push(["first", message])
    const previous = transport.onmessage
    transport.onmessage = (message, extra) => {
      previous?.(message, extra)
      received.push(["second", message])
    }
    await transport.send({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "a", _meta: { [envelope]: "2026-07-28" } }
    })
    await transport.send({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "b" } })
    await transport.send({
      jsonrpc: "2.0",
      id: 3,
      method: "tools/call",
      params: { _meta: { [envelope]: "2026-07-28" } }
    })
    assert.strictEqual(sent.length, 3)
    const deliver = (message: unknown) => transport.onmessage?.(message as JSONRPCMessage)
    deliver({ jsonrpc: "2.0", id: 1, result: { content: [] } })
    deliver({ jsonrpc: "2.0", id: 2, result: { content: [] } })
    deliver({ jsonrpc: "2.0", id: 3, result: { resultType: "input_required", inputRequests: {} } })
    deliver({ jsonrpc: "2.0", id: 1, result: { content: [] } }) // answered already: left alone
    assert.deepStrictEqual(received, [
      ["first", { jsonrpc: "2.0", id: 1, result: { content: [], resultType: "complete" } }],
      ["second", { jsonrpc: "2.0", id: 1, result: { content: [], resultType: "complete" } }],
      ["first", { jsonrpc: "2.0", id: 2, result: { content: [] } }],
      ["second", { jsonrpc: "2.0", id: 2, result: { content: [] } }],
      ["first", { jsonrpc: "2.0", id: 3, result: { resultType: "input_required", inputRequests: {} } }],
      ["second", { jsonrpc: "2.0", id: 3, result: { resultType: "input_required", inputRequests: {} } }],
      ["first", { jsonrpc: "2.0", id: 1, result: { content: [] } }],
      ["second", { jsonrpc: "2.0", id: 1, result: { content: [] } }]
    ])
  })
})
