/**
 * The bridge's `tools/call` at the SDK's request level (internal/toolCall.ts) keeps what `Client.callTool` checks: a
 * tool's `outputSchema` validates its `structuredContent` (with the SDK's errors), a result of the wrong shape is a
 * typed failure, and a bad `outputSchema` fails the call before it is sent. Against a low-level SDK `Server` that
 * answers whatever the test says (an `McpServer` would refuse to send what does not match).
 */
import { assert, describe, it } from "@effect/vitest"
import { McpBridge, McpSessionError, McpTransport } from "@mcp-bridge/core"
import { InMemoryTransport, Server } from "@modelcontextprotocol/server"
import type { Transport } from "@modelcontextprotocol/server"
import { Effect } from "effect"

const outputSchema = {
  type: "object",
  properties: { total: { type: "number" } },
  required: ["total"]
}

/** Answers `tools/call` of tool `name` with `answers[name]`; lists the tools with their output schemas. */
const scripted = (answers: Record<string, unknown>, schemas: Record<string, unknown> = {}) => {
  let calls = 0
  const connect = async (): Promise<Transport> => {
    const [client, serverSide] = InMemoryTransport.createLinkedPair()
    const server = new Server({ name: "scripted", version: "1.0.0" }, { capabilities: { tools: {} } })
    server.setRequestHandler("tools/list", () => ({
      tools: Object.keys(answers).map((name) => ({
        name,
        inputSchema: { type: "object" as const },
        ...(name in schemas ? { outputSchema: schemas[name] as typeof outputSchema & { type: "object" } } : {})
      }))
    }))
    server.setRequestHandler("tools/call", (request) => {
      calls++
      return answers[request.params.name] as never
    })
    await server.connect(serverSide)
    return client
  }
  return { connect, calls: () => calls }
}

const call = (tool: string) => McpBridge.McpBridge.use((bridge) => Effect.flip(bridge.callTool(`s.${tool}`, {})))

const protocolOf = (error: unknown) =>
  error instanceof McpSessionError.McpSessionError && error.reason._tag === "Protocol"
    ? { code: error.reason.code, message: error.reason.message }
    : error

describe("toolCall", () => {
  const server = scripted({
    matches: { content: [{ type: "text", text: "7" }], structuredContent: { total: 7 } },
    mismatches: { content: [{ type: "text", text: "seven" }], structuredContent: { total: "seven" } },
    missing: { content: [{ type: "text", text: "7" }] },
    failedTool: { content: [{ type: "text", text: "no total" }], isError: true },
    badShape: { content: "not an array" },
    badSchema: { content: [] },
    plain: { content: [{ type: "text", text: "no schema" }] }
  }, {
    matches: outputSchema,
    mismatches: outputSchema,
    missing: outputSchema,
    failedTool: outputSchema,
    badSchema: { type: "object", properties: { total: { type: "no-such-type" } } }
  })
  const layer = McpBridge.layer(
    { mcpServers: { s: { type: "memory", bridge: { retry: false, protocol: "legacy" } } } },
    { transport: McpTransport.layer({ memory: { s: server.connect } }), cache: false, coalescing: false }
  )

  it.live("structuredContent is checked against the tool's outputSchema, as Client.callTool does", () =>
    Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      const ok = yield* bridge.callTool("s.matches", {})
      assert.deepStrictEqual(ok.structuredContent, { total: 7 })
      const mismatch = protocolOf(yield* call("mismatches"))
      assert.strictEqual((mismatch as { code: number }).code, -32602)
      assert.include((mismatch as { message: string }).message, "does not match the tool's output schema")
      assert.deepStrictEqual(protocolOf(yield* call("missing")), {
        code: -32600,
        message: "Tool missing has an output schema but did not return structured content"
      })
      // A tool that reports an error is not held to its output schema.
      assert.isTrue((yield* bridge.callTool("s.failedTool", {})).isError)
      assert.deepStrictEqual((yield* bridge.callTool("s.plain", {})).content, [{ type: "text", text: "no schema" }])
    }).pipe(Effect.provide(layer)))

  it.live("a result of the wrong shape is a typed Protocol failure; a bad outputSchema fails before the call", () =>
    Effect.gen(function*() {
      const shape = yield* call("badShape")
      assert.isTrue(shape instanceof McpSessionError.McpSessionError && shape.reason._tag === "Protocol")
      assert.include((protocolOf(shape) as { message: string }).message, "Invalid tools/call result")
      const before = server.calls()
      const schema = protocolOf(yield* call("badSchema"))
      assert.strictEqual((schema as { code: number }).code, -32602)
      assert.include((schema as { message: string }).message, "Tool 'badSchema' has an invalid outputSchema")
      assert.strictEqual(server.calls(), before)
    }).pipe(Effect.provide(layer)))
})
