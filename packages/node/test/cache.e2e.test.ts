import { assert, describe, it } from "@effect/vitest"
import { McpBridge, ResultCache } from "@mcp-bridge/core"
import { NodeTransport } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { Effect } from "effect"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "add", respond: { kind: "addTool", name: "extra" } },
  { name: "read", respond: { kind: "echo" } }
]

const bridgeLayer = (spec: TestServer.TestServerSpec) => {
  const { args, command } = TestServer.stdioCommand(spec)
  return McpBridge.layer({
    mcpServers: { s: { command, args: [...args], bridge: { tools: { read: { cache: "10 minutes" } } } } }
  }, { transport: NodeTransport.layer() })
}

const names = McpBridge.McpBridge.use((bridge) => bridge.listTools()).pipe(
  Effect.map((tools) => tools.map((t) => t.name))
)

// Polls until the tool list shows `name`: only a list-changed notification can make a cached list show it.
const waitForTool = (name: string, ms = 3_000) =>
  Effect.gen(function*() {
    const until = performance.now() + ms
    while (performance.now() < until) {
      if ((yield* names).includes(name)) return true
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 20)))
    }
    return false
  })

describe("tool list cache over stdio", () => {
  for (
    const [era, spec] of [
      ["2025-11-25 (notifications/tools/list_changed)", { tools, era: "legacy" }],
      [
        "2026-07-28 (subscriptions/listen, ttlMs 10 minutes)",
        { tools, toolsListCacheHint: { ttlMs: 600_000, cacheScope: "public" } }
      ]
    ] as const
  ) {
    it.live(`a list-changed notification refreshes the cached tool list at once: ${era}`, () =>
      Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        assert.notInclude(yield* names, "extra")
        // The list is cached: without a notification it would not change for minutes.
        yield* bridge.callTool("s.add")
        assert.isTrue(yield* waitForTool("extra"))
        const result = yield* bridge.callTool("s.extra", { x: 1 })
        assert.deepStrictEqual(result.content, [{ type: "text", text: "{\"x\":1}" }])
      }).pipe(Effect.provide(bridgeLayer(spec))), 20_000)
  }

  it.live("results are cached over stdio and stats count them", () =>
    Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      const first = yield* bridge.callTool("s.read", { id: 1 })
      const second = yield* bridge.callTool("s.read", { id: 1 })
      assert.deepStrictEqual(second, first)
      const stats = yield* ResultCache.ResultCache.use((cache) => cache.stats)
      assert.deepStrictEqual([stats.hits, stats.misses, stats.size], [1, 1, 1])
      const upstream = yield* bridge.callTool("s.__stats")
      assert.strictEqual((upstream.structuredContent as { calls: Record<string, number> }).calls.read, 1)
    }).pipe(Effect.provide(bridgeLayer({ tools }))), 20_000)
})
