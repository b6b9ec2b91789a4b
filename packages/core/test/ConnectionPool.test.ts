import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig, CallerIdentity, ConnectionPool, McpBridge, McpTransport } from "@mcp-bridge/core"
import { TestServer } from "@mcp-bridge/testing"
import type { Transport } from "@modelcontextprotocol/client"
import { Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { text } from "./fixtures.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "hang", respond: { kind: "hang" } },
  { name: "counter", respond: { kind: "counter" } },
  { name: "slow", latencyMs: 30, respond: { kind: "echo" } },
  { name: "crash", respond: { kind: "crash" } }
]

// Real I/O (the in-memory transport) settles on the event loop, outside the TestClock.
const settle = (ms = 30) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

const layer = (
  server: TestServer.TestServer,
  pool: object,
  connect: () => Promise<Transport> = server.connect
) =>
  McpBridge.layer(
    { mcpServers: { s: { type: "memory", bridge: { pool, timeout: "1 minute" } } } },
    { transport: McpTransport.layer({ memory: { s: connect } }) }
  )

// Moves the TestClock minute by minute, letting the pool's sweep (and the I/O it starts) run at each step.
const advance = (minutes: number) =>
  Effect.forEach(Array.from({ length: minutes }), () => TestClock.adjust("1 minute").pipe(Effect.andThen(settle(5))), {
    discard: true
  })

const stats = Effect.flatMap(ConnectionPool.ConnectionPool, (pool) => pool.stats)
const call = (tool: string, args: Record<string, unknown> = {}) =>
  Effect.flatMap(McpBridge.McpBridge, (bridge) => bridge.callTool(`s.${tool}`, args))
const as = (identity: string) => Effect.provideService(CallerIdentity, identity)

describe("ConnectionPool", () => {
  it.effect("keeps `min` sessions warm from start-up", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        yield* settle()
        assert.strictEqual(server.openSessions(), 2)
        const [s] = yield* stats
        assert.strictEqual(s.created, 2)
        assert.strictEqual(s.idle, 2)
      }).pipe(Effect.provide(layer(server, { min: 2, max: 5 })))
      // Closing the layer closes every session.
      yield* settle()
      assert.strictEqual(server.openSessions(), 0)
    }))

  it.effect("reuses one session for sequential calls", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        for (let i = 0; i < 20; i++) yield* call("echo", { i })
        const [s] = yield* stats
        assert.strictEqual(s.created, 1)
        assert.strictEqual(server.openSessions(), 1)
      }).pipe(Effect.provide(layer(server, {})))
    }))

  it.effect("retires idle sessions above `min` after the idle time-to-live", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        yield* Effect.forEach([1, 2, 3], (i) => call("slow", { i }), { concurrency: "unbounded" })
        assert.strictEqual(server.openSessions(), 3)
        yield* advance(4)
        assert.strictEqual(server.openSessions(), 3)
        yield* advance(2)
        assert.strictEqual(server.openSessions(), 1)
        const [s] = yield* stats
        assert.strictEqual(s.invalidated, 2)
      }).pipe(Effect.provide(layer(server, { min: 1, max: 5, concurrency: 1, idleTimeToLive: "5 minutes" })))
    }))

  it.effect("replaces sessions past their maximum lifetime", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        yield* settle()
        assert.strictEqual((yield* stats)[0].created, 1)
        yield* advance(31)
        yield* settle()
        const [s] = yield* stats
        assert.strictEqual(s.created, 2)
        assert.strictEqual(s.invalidated, 1)
        assert.strictEqual(server.openSessions(), 1)
        assert.strictEqual(text(yield* call("echo", { ok: 1 })), "{\"ok\":1}")
      }).pipe(Effect.provide(layer(server, { min: 1, maxLifetime: "30 minutes" })))
    }))

  it.effect("a session that stops answering fails its health check and is replaced", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      const frozen = { value: false }
      // A wedged server: the transport stays open but nothing comes back.
      const connect = async (): Promise<Transport> => {
        const inner = await server.connect()
        const outer: Transport = {
          start: () => inner.start(),
          close: () => inner.close(),
          send: (message, options) => frozen.value ? Promise.resolve() : inner.send(message, options)
        }
        inner.onmessage = (message, extra) => outer.onmessage?.(message, extra)
        inner.onclose = () => outer.onclose?.()
        inner.onerror = (error) => outer.onerror?.(error)
        return outer
      }
      yield* Effect.gen(function*() {
        yield* settle()
        frozen.value = true
        yield* TestClock.adjust("61 seconds")
        yield* settle()
        frozen.value = false
        yield* TestClock.adjust("5 seconds")
        yield* settle()
        const [s] = yield* stats
        assert.strictEqual(s.invalidated, 1)
        assert.strictEqual(s.created, 2)
        assert.strictEqual(text(yield* call("echo", { healthy: true })), "{\"healthy\":true}")
      }).pipe(Effect.provide(layer(server, { min: 1, healthCheckInterval: "60 seconds" }, connect)))
    }))

  it.effect("an exhausted pool makes callers wait, then fails with PoolTimeout", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const busy = yield* call("hang").pipe(Effect.forkChild)
        yield* settle()
        const waiting = yield* call("echo").pipe(Effect.forkChild)
        yield* settle()
        assert.strictEqual((yield* stats)[0].pending, 1)
        yield* TestClock.adjust("4 seconds")
        assert.isUndefined(waiting.pollUnsafe())
        yield* TestClock.adjust("1 second")
        const error = yield* Effect.flip(Fiber.join(waiting))
        assert.strictEqual(error._tag, "ConnectionPoolError")
        assert.include(error.message, "\"s\"")
        assert.include(error.message, "5000 ms")
        assert.isTrue(error._tag === "ConnectionPoolError" && error.reason.max === 1)
        yield* Fiber.interrupt(busy)
      }).pipe(Effect.provide(layer(server, { max: 1, concurrency: 1, acquireTimeout: "5 seconds" })))
    }))

  it.effect("a waiting caller gets the session when it is released", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const results = yield* Effect.forEach([1, 2, 3], (i) => call("slow", { i }), { concurrency: "unbounded" })
        assert.deepStrictEqual(results.map(text), ["{\"i\":1}", "{\"i\":2}", "{\"i\":3}"])
        assert.strictEqual((yield* stats)[0].created, 1)
      }).pipe(Effect.provide(layer(server, { max: 1, concurrency: 1 })))
    }))

  it.effect("calls above max × per-session concurrency queue and all complete", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const results = yield* Effect.forEach(
          Array.from({ length: 24 }, (_, i) => i),
          (i) => call("slow", { i }),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(results.map(text), Array.from({ length: 24 }, (_, i) => `{"i":${i}}`))
        assert.strictEqual(server.peakInFlight(), 4)
        assert.strictEqual((yield* stats)[0].created, 2)
      }).pipe(Effect.provide(layer(server, { max: 2, concurrency: 2 })))
    }))

  it.effect("a session whose transport dies is replaced; the call that hit it fails with Closed", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        assert.strictEqual(text(yield* call("echo", { n: 1 })), "{\"n\":1}")
        const error = yield* Effect.flip(call("crash"))
        assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "Closed")
        yield* settle()
        assert.strictEqual(text(yield* call("echo", { n: 2 })), "{\"n\":2}")
        const [s] = yield* stats
        assert.strictEqual(s.created, 2)
        assert.isAtLeast(s.invalidated, 1)
      }).pipe(Effect.provide(layer(server, {})))
    }))

  it.effect("per-identity isolation: two identities never share a session", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const a1 = yield* call("counter").pipe(as("alice"))
        const a2 = yield* call("counter").pipe(as("alice"))
        const b1 = yield* call("counter").pipe(as("bob"))
        const a3 = yield* call("counter").pipe(as("alice"))
        assert.deepStrictEqual([a1, a2, b1, a3].map(text), ["1", "2", "1", "3"])
        const byIdentity = (yield* stats).map((s) => [s.identity, s.created]).sort()
        assert.deepStrictEqual(byIdentity, [["alice", 1], ["bob", 1]])
      }).pipe(Effect.provide(layer(server, { max: 1, isolation: "per-identity" })))
    }))

  it.effect("shared isolation lets identities share a session (what per-identity prevents)", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const a1 = yield* call("counter").pipe(as("alice"))
        const b1 = yield* call("counter").pipe(as("bob"))
        assert.deepStrictEqual([a1, b1].map(text), ["1", "2"])
      }).pipe(Effect.provide(layer(server, { max: 1 })))
    }))

  it.effect("layerDisabled opens and closes a session per call", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      const config = yield* BridgeConfig.decode({ mcpServers: { s: { type: "memory" } } })
      const bridge = McpBridge.layerServices().pipe(
        Layer.provideMerge(ConnectionPool.layerUnpooled),
        Layer.provide(BridgeConfig.layerResolved(config)),
        Layer.provide(McpTransport.layer({ memory: { s: server.connect } }))
      )
      yield* Effect.gen(function*() {
        yield* call("echo")
        yield* call("echo")
        yield* settle()
        assert.strictEqual(server.openSessions(), 0)
        assert.strictEqual(server.calls("echo"), 2)
      }).pipe(Effect.provide(bridge))
    }))
})
