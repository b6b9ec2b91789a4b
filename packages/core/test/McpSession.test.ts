import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig, McpSession, McpTransport } from "@mcp-bridge/core"
import { TestServer } from "@mcp-bridge/testing"
import { Duration, Effect } from "effect"

const settle = (ms = 50) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

describe("McpSession", () => {
  const server = TestServer.make({
    tools: [{ name: "add", respond: { kind: "addTool", name: "extra" } }, { name: "echo", respond: { kind: "echo" } }]
  })

  it.effect("a session opened from a prior 2026-07-28 verdict is ready and hears tools/list_changed", () =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.decode({ mcpServers: { s: { type: "memory" } } })
      const resolved = config.servers.get("s")!
      const first = yield* McpSession.make(resolved)
      assert.strictEqual(first.era, "modern")
      assert.strictEqual(first.prior.kind, "modern")
      const second = yield* McpSession.make(resolved, { prior: first.prior })
      assert.strictEqual(second.protocolVersion, "2026-07-28")
      let heard = 0
      second.onToolsChanged(() => heard++)
      yield* first.callTool({ name: "add", arguments: {} }, Duration.seconds(5))
      yield* settle()
      assert.strictEqual(heard, 1)
      const list = yield* second.listTools(Duration.seconds(5))
      assert.include(list.tools.map((t) => t.name), "extra")
      yield* second.probe(Duration.seconds(5))
    }).pipe(Effect.scoped, Effect.provide(McpTransport.layer({ memory: { s: server.connect } }))))
})
