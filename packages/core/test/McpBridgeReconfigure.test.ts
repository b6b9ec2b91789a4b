import { assert, describe, it } from "@effect/vitest"
import { ConnectionPool, McpBridge, McpTransport } from "@mcp-bridge/core"
import { TestServer } from "@mcp-bridge/testing"
import { Effect, Fiber, Stream } from "effect"
import { text, until } from "./fixtures.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", respond: { kind: "echo" } },
  { name: "held", hold: true, respond: { kind: "echo" } }
]

const memory = (servers: Record<string, TestServer.TestServer>) =>
  Object.fromEntries(Object.entries(servers).map(([name, s]) => [name, s.connect]))

const configOf = (servers: Record<string, Record<string, unknown>>) => ({
  mcpServers: Object.fromEntries(Object.entries(servers).map(([name, bridge]) => [name, { type: "memory", bridge }]))
})

describe("McpBridge.reconfigure", () => {
  it.effect("adds, removes, replaces and keeps servers; calls in flight on the old ones finish", () =>
    Effect.gen(function*() {
      const servers = {
        keep: TestServer.make({ tools }),
        gone: TestServer.make({ tools }),
        alter: TestServer.make({ tools }),
        fresh: TestServer.make({ tools })
      }
      const layer = McpBridge.layer(configOf({ keep: {}, gone: {}, alter: { timeout: "30 seconds" } }), {
        transport: McpTransport.layer({ memory: memory(servers) })
      })
      yield* Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        const pool = yield* ConnectionPool.ConnectionPool
        for (const name of ["keep", "gone", "alter"]) {
          assert.deepStrictEqual(JSON.parse(text(yield* bridge.callTool(`${name}.echo`, { n: 1 }))), { n: 1 })
        }
        // A call held at each server that goes away, in flight across the reconfiguration.
        const onGone = yield* Effect.forkChild(bridge.callTool("gone.held", { n: 2 }))
        const onAlter = yield* Effect.forkChild(bridge.callTool("alter.held", { n: 3 }))
        yield* until(servers.gone, () => servers.gone.held("held") === 1)
        yield* until(servers.alter, () => servers.alter.held("held") === 1)
        const changes = yield* Effect.forkChild(Stream.runCollect(Stream.take(bridge.changes, 3)))
        yield* Effect.yieldNow

        const applied = yield* bridge.reconfigure(
          configOf({ keep: {}, alter: { timeout: "20 seconds" }, fresh: {} })
        )
        assert.deepStrictEqual(
          [applied.added, applied.removed, applied.changed, applied.unchanged],
          [["fresh"], ["gone"], ["alter"], ["keep"]]
        )
        assert.deepStrictEqual([...bridge.servers].sort(), ["alter", "fresh", "keep"])
        const told = yield* Fiber.join(changes)
        assert.deepStrictEqual(
          told.map((c) => c._tag === "ListChanged" ? `${c.server} ${c.list}` : c._tag).sort(),
          ["alter tools", "fresh tools", "gone tools"]
        )

        // New calls: the removed server is unknown, the added one answers, the changed one runs on a new session.
        const unknown = yield* Effect.flip(bridge.callTool("gone.echo", {}))
        assert.isTrue(unknown._tag === "McpBridgeError" && unknown.reason._tag === "UnknownServer")
        assert.deepStrictEqual(JSON.parse(text(yield* bridge.callTool("fresh.echo", { n: 4 }))), { n: 4 })
        assert.deepStrictEqual(JSON.parse(text(yield* bridge.callTool("alter.echo", { n: 5 }))), { n: 5 })
        assert.strictEqual(servers.alter.openSessions(), 2)
        // The unchanged server kept its one session.
        assert.deepStrictEqual(JSON.parse(text(yield* bridge.callTool("keep.echo", { n: 6 }))), { n: 6 })
        assert.strictEqual(servers.keep.openSessions(), 1)

        // The held calls finish on the old sessions, then those close.
        servers.gone.release("held")
        servers.alter.release("held")
        assert.deepStrictEqual(JSON.parse(text(yield* Fiber.join(onGone))), { n: 2 })
        assert.deepStrictEqual(JSON.parse(text(yield* Fiber.join(onAlter))), { n: 3 })
        yield* applied.drained
        assert.strictEqual(servers.gone.openSessions(), 0)
        assert.strictEqual(servers.alter.openSessions(), 1)
        assert.strictEqual(servers.keep.openSessions(), 1)
        const stats = yield* pool.stats
        assert.deepStrictEqual(stats.map((s) => s.server).sort(), ["alter", "fresh", "keep"])
      }).pipe(
        // a failed assertion must not leave the held calls (and the drain) waiting
        Effect.ensuring(Effect.sync(() => Object.values(servers).forEach((s) => s.release()))),
        Effect.provide(layer)
      )
    }))

  it.effect("tells of the resource and prompt lists a reconfiguration changes, and of those only", () =>
    Effect.gen(function*() {
      const servers = {
        plain: TestServer.make({ tools }),
        docs: TestServer.make({ tools, resources: [{ uri: "docs://a", name: "a", text: "A" }] }),
        talk: TestServer.make({ tools, prompts: [{ name: "hello", text: "Hello" }] })
      }
      const layer = McpBridge.layer(configOf({ plain: {}, docs: {} }), {
        transport: McpTransport.layer({ memory: memory(servers) })
      })
      yield* Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        assert.deepStrictEqual((yield* bridge.listResources()).map((r) => r.uri), ["docs://a"])
        const changes = yield* Effect.forkChild(Stream.runCollect(Stream.take(bridge.changes, 4)))
        yield* Effect.yieldNow
        // docs (with resources) goes, talk (with prompts) comes, plain stays
        const applied = yield* bridge.reconfigure(configOf({ plain: {}, talk: {} }))
        const told = yield* Fiber.join(changes)
        assert.deepStrictEqual(
          told.map((c) => c._tag === "ListChanged" ? `${c.server} ${c.list}` : c._tag).sort(),
          ["docs resources", "docs tools", "talk prompts", "talk tools"]
        )
        assert.deepStrictEqual((yield* bridge.listPrompts()).map((p) => p.qualifiedName), ["talk.hello"])
        assert.deepStrictEqual(yield* bridge.listResources(), [])
        yield* applied.drained
        assert.strictEqual(servers.docs.openSessions(), 0)
      }).pipe(Effect.provide(layer))
    }))

  it.effect("refuses an invalid configuration, naming the field, and keeps the one in force", () =>
    Effect.gen(function*() {
      const servers = { keep: TestServer.make({ tools }) }
      const layer = McpBridge.layer(configOf({ keep: {} }), {
        transport: McpTransport.layer({ memory: memory(servers) })
      })
      yield* Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        const error = yield* Effect.flip(bridge.reconfigure(configOf({ keep: { timeout: "soon" }, other: {} })))
        assert.strictEqual(error._tag, "BridgeConfigError")
        assert.include(error.message, "mcpServers.keep.bridge.timeout")
        assert.deepStrictEqual(bridge.servers, ["keep"])
        assert.deepStrictEqual(JSON.parse(text(yield* bridge.callTool("keep.echo", { n: 1 }))), { n: 1 })
      }).pipe(Effect.provide(layer))
    }))
})
