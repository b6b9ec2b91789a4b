import { assert, describe, it, layer } from "@effect/vitest"
import { BridgeConfig, McpBridge } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import { Duration, Effect } from "effect"

const crm: TestServer.TestServerSpec = {
  tools: [
    { name: "get_account", respond: { kind: "json", value: { id: 7, name: "Acme" } } },
    { name: "who", respond: { kind: "counter" } }
  ]
}

describe("TestBridge", () => {
  // One bridge for the group: the tests share its servers (and their counters).
  layer(TestBridge.layerTest({ crm }, { bridge: { timeout: "3 seconds" }, servers: { crm: { pool: { max: 2 } } } }))(
    "layerTest",
    (it) => {
      it.effect("gives users' tests a bridge over in-memory servers they can inspect", () =>
        Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          const result = yield* bridge.callTool("crm.get_account", { id: 7 })
          assert.deepStrictEqual(result.structuredContent, { id: 7, name: "Acme" })
          const servers = yield* TestBridge.TestServers
          assert.strictEqual(servers.crm!.calls("get_account"), 1)
        }))

      it.effect("applies the bridge section to every server and a server's own section over it", () =>
        Effect.gen(function*() {
          const s = (yield* BridgeConfig.BridgeConfig).servers.get("crm")!
          assert.strictEqual(Duration.toMillis(s.timeout), 3_000)
          assert.strictEqual(s.pool.max, 2)
        }))

      it.effect("the group's tests share the bridge: its server saw the first test's call", () =>
        Effect.gen(function*() {
          const servers = yield* TestBridge.TestServers
          assert.strictEqual(servers.crm!.calls("get_account"), 1)
        }))
    }
  )

  it.effect("takes a TestServer of the caller's, and closes its sessions with the layer", () =>
    Effect.gen(function*() {
      const server = TestServer.make(crm)
      yield* McpBridge.McpBridge.use((bridge) => bridge.callTool("crm.who")).pipe(
        Effect.provide(TestBridge.layerTest({ crm: server }))
      )
      assert.strictEqual(server.calls("who"), 1)
      yield* Effect.promise(() => server.until(() => server.openSessions() === 0))
    }))
})
