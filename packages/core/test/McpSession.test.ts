import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig, McpSession, McpTransport } from "@mcp-bridge/core"
import { TestServer } from "@mcp-bridge/testing"
import { Duration, Effect, Fiber } from "effect"

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

  describe("on the live clock (one callback holds the request and its deadline)", () => {
    const hanging = TestServer.make({
      tools: [{ name: "hang", respond: { kind: "hang" } }, { name: "echo", respond: { kind: "echo" } }]
    })
    const session = Effect.gen(function*() {
      const config = yield* BridgeConfig.decode({ mcpServers: { s: { type: "memory" } } })
      return yield* McpSession.make(config.servers.get("s")!)
    })
    const waitFor = (f: () => boolean) =>
      Effect.promise(async () => {
        const until = performance.now() + 5_000
        while (!f() && performance.now() < until) await new Promise((r) => setTimeout(r, 5))
      })

    it.live("a call past its deadline fails with Timeout and is cancelled on the wire; the session goes on", () =>
      Effect.gen(function*() {
        const s = yield* session
        const before = hanging.cancelled()
        const error = yield* Effect.flip(s.callTool({ name: "hang", arguments: {} }, Duration.millis(100)))
        assert.isTrue(error.reason._tag === "Timeout" && error.reason.timeoutMillis === 100)
        yield* waitFor(() => hanging.cancelled() === before + 1)
        assert.strictEqual(hanging.cancelled(), before + 1)
        const echoed = yield* s.callTool({ name: "echo", arguments: { n: 1 } }, Duration.seconds(5))
        assert.notStrictEqual(echoed.isError, true)
      }).pipe(Effect.scoped, Effect.provide(McpTransport.layer({ memory: { s: hanging.connect } }))))

    it.live("interrupting a call cancels it on the wire", () =>
      Effect.gen(function*() {
        const s = yield* session
        const before = hanging.cancelled()
        const fiber = yield* Effect.forkChild(s.callTool({ name: "hang", arguments: {} }, Duration.seconds(30)))
        yield* waitFor(() => hanging.inFlight() === 1)
        yield* Fiber.interrupt(fiber)
        yield* waitFor(() => hanging.cancelled() === before + 1)
        assert.strictEqual(hanging.cancelled(), before + 1)
        assert.strictEqual(hanging.inFlight(), 0)
      }).pipe(Effect.scoped, Effect.provide(McpTransport.layer({ memory: { s: hanging.connect } }))))
  })
})
