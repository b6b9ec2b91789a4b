import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig, CallerIdentity, ConnectionPool, McpBridge } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client"
import { Deferred, Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"

// The router's tool index (internal/toolIndex.ts), seen through the bridge: how long a server's tools/list is used,
// for whom, and what a list-changed notification does to it.

/**
 * A test server whose sessions count the tools/list requests the bridge sends, and can hold back the answers to them
 * (as if the server were slow to answer) until the test lets them through.
 */
const listWire = (spec: TestServer.TestServerSpec) => {
  const server = TestServer.make(spec)
  let lists = 0
  let holding = false
  const held: Array<() => void> = []
  const waiters: Array<() => void> = []
  const connect = async (): Promise<Transport> => {
    const inner = await server.connect()
    const listIds = new Set<unknown>()
    const outer: Transport = {
      start: () => inner.start(),
      close: () => inner.close(),
      send: (message, options) => {
        if ((message as { method?: string }).method === "tools/list") {
          lists++
          listIds.add((message as { id?: unknown }).id)
        }
        return inner.send(message, options)
      }
    }
    inner.onmessage = (message: JSONRPCMessage, extra) => {
      const id = (message as { id?: unknown }).id
      const deliver = () => outer.onmessage?.(message, extra)
      if (holding && "result" in message && listIds.has(id)) {
        held.push(deliver)
        waiters.splice(0).forEach((wake) => wake())
      } else {
        deliver()
      }
    }
    inner.onclose = () => outer.onclose?.()
    inner.onerror = (error) => outer.onerror?.(error)
    return outer
  }
  return {
    server,
    connect,
    lists: () => lists,
    /** From now on, answers to tools/list wait until `release`. */
    hold: () => {
      holding = true
    },
    /** Resolves once an answer to tools/list is being held back. */
    answerHeld: Effect.promise(() =>
      held.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))
    ),
    /** Delivers the answers held back, and stops holding. */
    release: () => {
      holding = false
      held.splice(0).forEach((deliver) => deliver())
    }
  }
}

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "get", respond: { kind: "echo" } },
  { name: "add", respond: { kind: "addTool", name: "extra" } }
]

const layerOf = (
  servers: Record<string, { readonly server: TestServer.TestServer; readonly connect: () => Promise<Transport> }>
) =>
  TestBridge.layerTest(
    Object.fromEntries(Object.entries(servers).map(([name, s]) => [name, { ...s.server, connect: s.connect }])),
    { toolListTimeToLive: "1 minute", coalescing: false, telemetry: false }
  )

const listNames = McpBridge.McpBridge.use((bridge) => bridge.listTools()).pipe(
  Effect.map((tools) => tools.map((t) => t.name))
)
const serverNames = (server: string) =>
  McpBridge.McpBridge.use((bridge) => bridge.listServerTools(server)).pipe(
    Effect.map((tools) => tools.map((t) => t.name))
  )
const call = (target: string, args: Record<string, unknown> = {}) =>
  McpBridge.McpBridge.use((bridge) => bridge.callTool(target, args))

describe("ToolIndex", () => {
  it.effect("a positive ttlMs is how long the list is used, for routing and listing", () =>
    Effect.gen(function*() {
      const s = listWire({ tools, toolsListCacheHint: { ttlMs: 90_000, cacheScope: "public" } })
      yield* Effect.gen(function*() {
        yield* listNames
        yield* listNames
        yield* call("s.get")
        assert.strictEqual(s.lists(), 1)
        yield* TestClock.adjust("60 seconds") // past toolListTimeToLive, within ttlMs
        yield* listNames
        yield* call("s.get")
        assert.strictEqual(s.lists(), 1)
        yield* TestClock.adjust("30 seconds")
        yield* listNames
        assert.strictEqual(s.lists(), 2)
      }).pipe(Effect.provide(layerOf({ s })))
    }))

  it.effect("ttlMs 0: listing asks the server every time, routing uses the list and refreshes it in the background", () =>
    Effect.gen(function*() {
      // the SDK's default hint on 2026-07-28 answers: ttlMs 0, cacheScope private
      const s = listWire({ tools })
      yield* Effect.gen(function*() {
        yield* listNames
        assert.strictEqual(s.lists(), 1)
        yield* listNames
        assert.strictEqual(s.lists(), 2)
        for (let i = 0; i < 5; i++) yield* call("s.get", { i })
        assert.strictEqual(s.lists(), 2)
        yield* TestClock.adjust("1 minute")
        // Past toolListTimeToLive: the calls are routed with the list the index has, while one refresh runs behind
        // them. The server is slow to answer that refresh, and the calls do not wait for it.
        s.hold()
        assert.deepStrictEqual(yield* call("s.get", { i: 0 }), yield* call("s.get", { i: 0 }))
        yield* call("s.get", { i: 1 })
        yield* s.answerHeld
        assert.strictEqual(s.lists(), 3)
        s.release()
        // The refreshed list was stored: it is used for toolListTimeToLive from the refresh...
        yield* TestClock.adjust("59 seconds")
        yield* call("s.get", { i: 2 })
        assert.strictEqual(s.lists(), 3)
        // ...and kept past it while the next refresh runs (the first list, fetched at 0 s, could not be: past 2
        // minutes a call would have to wait for a new list, and this one would never end while the answer is held).
        yield* TestClock.adjust("2 seconds")
        s.hold()
        const late = yield* Effect.forkChild(call("s.get", { i: 3 }))
        yield* s.answerHeld
        assert.deepStrictEqual((yield* Fiber.join(late)).content, [{ type: "text", text: "{\"i\":3}" }])
        assert.strictEqual(s.lists(), 4)
        s.release()
      }).pipe(Effect.provide(layerOf({ s })))
    }))

  it.effect("a legacy server's list (no hint) is kept for toolListTimeToLive", () =>
    Effect.gen(function*() {
      const s = listWire({ tools, era: "legacy" })
      yield* Effect.gen(function*() {
        yield* listNames
        yield* listNames
        yield* call("s.get")
        assert.strictEqual(s.lists(), 1)
        yield* TestClock.adjust("2 minutes")
        yield* listNames
        assert.strictEqual(s.lists(), 2)
      }).pipe(Effect.provide(layerOf({ s })))
    }))

  it.effect("cacheScope private keeps a list per identity; public shares it", () =>
    Effect.gen(function*() {
      const priv = listWire({ tools, toolsListCacheHint: { ttlMs: 60_000, cacheScope: "private" } })
      const pub = listWire({ tools, toolsListCacheHint: { ttlMs: 60_000, cacheScope: "public" } })
      yield* Effect.gen(function*() {
        for (const identity of ["alice", "bob", "alice", undefined, "bob"]) {
          yield* Effect.all([call("priv.get"), call("pub.get")]).pipe(Effect.provideService(CallerIdentity, identity))
        }
        assert.strictEqual(priv.lists(), 3)
        assert.strictEqual(pub.lists(), 1)
      }).pipe(Effect.provide(layerOf({ priv, pub })))
    }))

  it.effect("routing works with the result cache disabled", () =>
    Effect.gen(function*() {
      const s = listWire({ tools })
      yield* Effect.gen(function*() {
        for (let i = 0; i < 3; i++) yield* call("s.get", { i })
        assert.strictEqual(s.lists(), 1)
      }).pipe(Effect.provide(TestBridge.layerTest({ s: { ...s.server, connect: s.connect } }, { cache: false })))
    }))

  it.effect("a list-changed notification drops the list at once: the next call or listing asks again", () =>
    Effect.gen(function*() {
      const s = listWire({ tools, era: "legacy" })
      yield* Effect.gen(function*() {
        assert.notInclude(yield* serverNames("s"), "extra")
        yield* call("s.add")
        // The notification reaches the bridge after the call's answer: a call to the new tool finds it either way
        // (an unknown tool makes the router look again once).
        assert.deepStrictEqual((yield* call("s.extra", { x: 1 })).content, [{ type: "text", text: "{\"x\":1}" }])
        assert.include(yield* serverNames("s"), "extra")
        assert.strictEqual(s.lists(), 2)
      }).pipe(Effect.provide(layerOf({ s })))
    }))

  it.effect("a list-changed notification arriving during a fetch: the fetched list is not stored, the next call fetches again", () =>
    Effect.gen(function*() {
      const s = listWire({ tools, era: "legacy" })
      yield* Effect.gen(function*() {
        const config = yield* BridgeConfig.BridgeConfig
        const pool = yield* ConnectionPool.ConnectionPool
        const server = config.servers.get("s")!
        // The first fetch is on the wire, and its answer (the list without `extra`) is held back.
        s.hold()
        const first = yield* Effect.forkChild(serverNames("s"))
        yield* s.answerHeld
        // Meanwhile the server's tools change, and the bridge hears of it.
        const heard = yield* Deferred.make<void>()
        yield* pool.withSession(server, (session) =>
          Effect.gen(function*() {
            session.onToolsChanged(() => Deferred.doneUnsafe(heard, Effect.void))
            yield* session.callTool({ name: "add", arguments: {} }, Duration.seconds(5))
          }))
        yield* Deferred.await(heard).pipe(Effect.timeout("5 seconds"), TestClock.withLive)
        // The old answer arrives: its caller gets it, but it is not kept.
        s.release()
        assert.notInclude(yield* Fiber.join(first), "extra")
        assert.strictEqual(s.lists(), 1)
        assert.include(yield* serverNames("s"), "extra")
        assert.strictEqual(s.lists(), 2)
        // The new list is kept: within toolListTimeToLive, nothing more is fetched.
        yield* call("s.extra")
        yield* serverNames("s")
        assert.strictEqual(s.lists(), 2)
      }).pipe(Effect.provide(layerOf({ s })))
    }))

  it.effect("an unknown tool makes the router look again once before failing with UnknownTool", () =>
    Effect.gen(function*() {
      const s = listWire({ tools, era: "legacy" })
      yield* Effect.gen(function*() {
        yield* call("s.get")
        const error = yield* Effect.flip(call("s.nope"))
        assert.isTrue(error._tag === "McpBridgeError" && error.reason._tag === "UnknownTool")
        assert.strictEqual(s.lists(), 2)
      }).pipe(Effect.provide(layerOf({ s })))
    }))
})
