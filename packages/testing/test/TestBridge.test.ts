import { assert, describe, it } from "@effect/vitest"
import { McpBridge } from "@mcp-bridge/core"
import { TestBridge } from "@mcp-bridge/testing"
import { Effect } from "effect"

describe("TestBridge", () => {
  it.effect("gives users' tests a bridge over in-memory servers they can inspect", () =>
    Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      const result = yield* bridge.callTool("crm.get_account", { id: 7 })
      assert.deepStrictEqual(result.structuredContent, { id: 7, name: "Acme" })
      const servers = yield* TestBridge.TestServers
      assert.strictEqual(servers.crm.calls("get_account"), 1)
    }).pipe(Effect.provide(TestBridge.layerTest({
      crm: { tools: [{ name: "get_account", respond: { kind: "json", value: { id: 7, name: "Acme" } } }] }
    }))))
})
