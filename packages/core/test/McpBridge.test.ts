import { assert, describe, it } from "@effect/vitest"
import { BridgeClient, BridgeConfig, ConnectionPool, McpBridge, McpTransport } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", description: "Echoes", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "fails", respond: { kind: "isError", message: "no such record" } },
  { name: "hang", respond: { kind: "hang" } },
  { name: "crash", respond: { kind: "crash" } },
  { name: "slow", latencyMs: 50, respond: { kind: "text", text: "done" } }
]

const bridgeLayer = (servers: Record<string, TestServer.TestServer>, bridge: Record<string, unknown> = {}) =>
  TestBridge.layerTest(servers, { bridge })

const withBridge = <A, E>(
  servers: Record<string, TestServer.TestServer>,
  f: (bridge: McpBridge.McpBridge["Service"]) => Effect.Effect<A, E, any>,
  bridge: Record<string, unknown> = {}
) => Effect.flatMap(McpBridge.McpBridge, f).pipe(Effect.provide(bridgeLayer(servers, bridge)))

describe("McpBridge", () => {
  it.effect("lists the tools of every server with qualified names", () =>
    Effect.gen(function*() {
      const a = TestServer.make({ tools })
      const b = TestServer.make({ tools: [{ name: "get", respond: { kind: "echo" } }], era: "legacy" })
      const listed = yield* withBridge({ alpha: a, beta: b }, (bridge) => bridge.listTools())
      const names = listed.map((t) => t.qualifiedName).sort()
      assert.includeMembers(names, ["alpha.echo", "alpha.fails", "beta.get", "beta.__stats"])
      const echo = listed.find((t) => t.qualifiedName === "alpha.echo")!
      assert.strictEqual(echo.server, "alpha")
      assert.strictEqual(echo.name, "echo")
      assert.strictEqual(echo.description, "Echoes")
      assert.deepStrictEqual(echo.annotations, { readOnlyHint: true })
      assert.strictEqual(echo.inputSchema.type, "object")
    }))

  it.effect("calls a tool by qualified name or by parts", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      const [byName, byParts] = yield* withBridge({ alpha: server }, (bridge) =>
        Effect.all([
          bridge.callTool("alpha.echo", { x: 1 }),
          bridge.callTool({ server: "alpha", tool: "echo" }, { y: [2] })
        ]))
      assert.deepStrictEqual(byName.content, [{ type: "text", text: "{\"x\":1}" }])
      assert.deepStrictEqual(byParts.content, [{ type: "text", text: "{\"y\":[2]}" }])
      assert.strictEqual(server.calls("echo"), 2)
    }))

  it.effect("an isError result is a successful call", () =>
    Effect.gen(function*() {
      const result = yield* withBridge({ alpha: TestServer.make({ tools }) }, (bridge) =>
        bridge.callTool("alpha.fails", {}))
      assert.isTrue(result.isError)
      assert.deepStrictEqual(result.content, [{ type: "text", text: "no such record" }])
    }))

  it.effect("an unknown server or tool is a typed error listing what exists", () =>
    Effect.gen(function*() {
      const [noServer, noTool, badTarget, badArgs] = yield* withBridge(
        { alpha: TestServer.make({ tools }), beta: TestServer.make({ tools }) },
        (bridge) =>
          Effect.all([
            Effect.flip(bridge.callTool("gamma.echo", {})),
            Effect.flip(bridge.callTool("alpha.ehco", {})),
            Effect.flip(bridge.callTool("echo", {})),
            Effect.flip(bridge.callTool("alpha.echo", [1, 2] as any))
          ])
      )
      assert.strictEqual(noServer._tag, "McpBridgeError")
      assert.isTrue(noServer._tag === "McpBridgeError" && noServer.reason._tag === "UnknownServer")
      assert.include(noServer.message, "alpha, beta")
      assert.isTrue(noTool._tag === "McpBridgeError" && noTool.reason._tag === "UnknownTool")
      assert.include(noTool.message, "echo, fails, hang")
      assert.isTrue(badTarget._tag === "McpBridgeError" && badTarget.reason._tag === "InvalidCall")
      assert.isTrue(badArgs._tag === "McpBridgeError" && badArgs.reason._tag === "InvalidCall")
    }))

  it.effect("a server that never answers fails at the deadline with a Timeout", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      const fiber = yield* withBridge({ alpha: server }, (bridge) =>
        bridge.callTool("alpha.hang", {}, { timeout: "2 seconds" })).pipe(Effect.forkChild)
      yield* Effect.promise(() =>
        new Promise((r) => setTimeout(r, 50))
      )
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "Timeout")
      assert.include(error.message, "2000 ms")
    }))

  it.effect("the server's configured timeout applies when the call gives none", () =>
    Effect.gen(function*() {
      const fiber = yield* withBridge({ alpha: TestServer.make({ tools }) }, (bridge) =>
        bridge.callTool("alpha.hang", {}), { timeout: "7 seconds" }).pipe(Effect.forkChild)
      yield* Effect.promise(() =>
        new Promise((r) =>
          setTimeout(r, 50)
        )
      )
      yield* TestClock.adjust("6 seconds")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "Timeout")
    }))

  it.effect("interrupting a call cancels the request on the wire", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* withBridge({ alpha: server }, (bridge) =>
        Effect.gen(function*() {
          const fiber = yield* bridge.callTool("alpha.hang", {}).pipe(Effect.forkChild)
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 50)))
          assert.strictEqual(server.inFlight(), 1)
          yield* Fiber.interrupt(fiber)
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 50)))
          assert.strictEqual(server.inFlight(), 0)
          assert.strictEqual(server.cancelled(), 1)
          // The session is still usable after the cancellation.
          const result = yield* bridge.callTool("alpha.echo", { after: true })
          assert.deepStrictEqual(result.content, [{ type: "text", text: "{\"after\":true}" }])
        }))
    }))

  it.effect("negotiates 2026-07-28 with dual-era servers and a legacy version with legacy servers", () =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.BridgeConfig
      const pool = yield* ConnectionPool.ConnectionPool
      const versions = yield* Effect.forEach(
        ["modern", "legacy"],
        (name) =>
          pool.withSession(
            config.servers.get(name)!,
            (session) => Effect.succeed([session.protocolVersion, session.era])
          )
      )
      assert.deepStrictEqual(versions, [["2026-07-28", "modern"], ["2025-11-25", "legacy"]])
    }).pipe(Effect.provide(bridgeLayer({
      modern: TestServer.make({ tools }),
      legacy: TestServer.make({ tools, era: "legacy" })
    }))))

  it.live("the Promise facade passes meta, identity and timeout, and rejects a bad timeout with InvalidCall", () =>
    Effect.promise(async () => {
      const server = TestServer.make({ tools })
      const bridge = await BridgeClient.make({ mcpServers: { s: { type: "memory" } } }, {
        transport: McpTransport.layer({ memory: { s: server.connect } })
      })
      try {
        await bridge.callTool("s.echo", { n: 1 }, { meta: { k: "v" }, identity: "tenant-1", timeout: "5 seconds" })
        assert.deepStrictEqual(server.receivedMeta("echo"), [{ k: "v" }])
        const error = await bridge.callTool("s.echo", {}, { timeout: "soon" }).then(() => undefined, (e) => e)
        assert.strictEqual(error?._tag, "McpBridgeError")
        assert.strictEqual(error?.reason._tag, "InvalidCall")
        const many = await bridge.callMany([
          { target: "s.echo", arguments: { n: 2 }, options: { meta: { k: "w" } } },
          { target: "s.nope" }
        ])
        assert.deepStrictEqual(many.map((o) => o.ok), [true, false])
        assert.deepStrictEqual(server.receivedMeta("echo").at(-1), { k: "w" })
      } finally {
        await bridge.close()
        await server.close()
      }
    }))

  it.effect("a bad timeout option is a typed InvalidCall, and in callMany it loses nothing else", () =>
    withBridge({ s: TestServer.make({ tools }) }, (bridge) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(bridge.callTool("s.echo", {}, { timeout: "soon" as "1 second" }))
        assert.isTrue(error._tag === "McpBridgeError" && error.reason._tag === "InvalidCall")
        assert.include(error.message, "timeout of s.echo")
        const results = yield* bridge.callMany([
          { target: "s.echo", arguments: { n: 1 } },
          { target: "s.echo", arguments: { n: 2 }, options: { timeout: -1 } },
          { target: "s.echo", arguments: { n: 3 } }
        ])
        assert.deepStrictEqual(results.map((r) => r._tag), ["Success", "Failure", "Success"])
      })))
})
