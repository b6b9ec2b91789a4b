import { assert, describe, it } from "@effect/vitest"
import { Batcher, BridgeClient, CallerIdentity, McpBridge, McpTransport } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Clock, Effect, Fiber, Result } from "effect"
import { TestClock } from "effect/testing"
import { configOf, requestOf, text } from "./fixtures.ts"

/** An upstream that records when each call reached it. */
const recording = () =>
  Effect.gen(function*() {
    const stage = yield* Batcher.Batcher
    const reached: Array<{ readonly tool: string; readonly at: number }> = []
    const caller = stage.wrap((request) =>
      Effect.map(Clock.currentTimeMillis, (at): CallToolResult => {
        reached.push({ tool: request.tool, at })
        return { content: [{ type: "text", text: `${request.tool}@${at}` }] }
      })
    )
    return { caller, reached }
  })

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "read", latencyMs: 30, respond: { kind: "echo" } },
  { name: "write", latencyMs: 30, respond: { kind: "echo" } },
  { name: "who", latencyMs: 30, respond: { kind: "counter" } },
  { name: "fails", respond: { kind: "isError", message: "no such record" } },
  { name: "crash", respond: { kind: "crash" } },
  { name: "hang", respond: { kind: "hang" } },
  { name: "slow", latencyMs: 20, respond: { kind: "echo" } }
]

const bridgeOf = (bridge: Record<string, unknown> = {}) =>
  TestBridge.layerTest({ s: { tools } }, {
    bridge: {
      retry: false,
      cache: false,
      tools: { read: { readOnly: true }, who: { readOnly: true, shared: false }, hang: { readOnly: true } },
      ...bridge
    }
  })

describe("Batcher", () => {
  it.live("callMany: results in input order, each its own success or typed failure", () =>
    Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      const results = yield* bridge.callMany([
        { target: "s.slow", arguments: { i: 0 } },
        { target: "s.fails" },
        { target: "s.hang", options: { timeout: "50 millis" } },
        { target: "s.nope" },
        { target: "elsewhere.slow" },
        { target: "s.slow", arguments: { i: 5 } },
        { target: "s.slow", arguments: [1] as any },
        { target: { server: "s", tool: "slow" }, arguments: { i: 7 } }
      ])
      assert.strictEqual(results.length, 8)
      const tags = results.map((r) =>
        Result.isSuccess(r)
          ? r.success.isError ? "isError" : text(r.success)
          : `${r.failure._tag}:${r.failure.reason._tag}`
      )
      assert.deepStrictEqual(tags, [
        "{\"i\":0}",
        "isError",
        "McpSessionError:Timeout",
        "McpBridgeError:UnknownTool",
        "McpBridgeError:UnknownServer",
        "{\"i\":5}",
        "McpBridgeError:InvalidCall",
        "{\"i\":7}"
      ])
    }).pipe(Effect.provide(bridgeOf())))

  it.live("callMany runs 5 calls at a time by default, or as many as asked", () =>
    Effect.gen(function*() {
      const servers = yield* TestBridge.TestServers
      const bridge = yield* McpBridge.McpBridge
      const calls = Array.from({ length: 12 }, (_, i) => ({ target: "s.write", arguments: { i } }))
      yield* bridge.callMany(calls)
      assert.strictEqual(servers.s!.peakInFlight(), 5)
      yield* bridge.callMany(calls, { concurrency: 12 })
      assert.strictEqual(servers.s!.peakInFlight(), 12)
      assert.strictEqual(servers.s!.calls("write"), 24)
    }).pipe(Effect.provide(bridgeOf())))

  it.live("identical read-only calls in flight share one upstream call; identical writes each reach the server", () =>
    Effect.gen(function*() {
      const servers = yield* TestBridge.TestServers
      const bridge = yield* McpBridge.McpBridge
      const reads = yield* Effect.forEach(
        Array.from({ length: 100 }),
        () => bridge.callTool("s.read", { q: "pool", page: 1 }),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(servers.s!.calls("read"), 1)
      assert.isTrue(reads.every((r) => text(r) === "{\"q\":\"pool\",\"page\":1}"))
      const writes = yield* Effect.forEach(
        Array.from({ length: 10 }),
        () => bridge.callTool("s.write", { q: "pool" }),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(writes.length, 10)
      assert.strictEqual(servers.s!.calls("write"), 10)
    }).pipe(Effect.provide(bridgeOf())))

  it.live("a call with _meta of its own is never merged: its meta reaches the server", () =>
    Effect.gen(function*() {
      const servers = yield* TestBridge.TestServers
      const bridge = yield* McpBridge.McpBridge
      yield* Effect.all([
        bridge.callTool("s.read", { q: 1 }, { meta: { progressToken: "a" } }),
        bridge.callTool("s.read", { q: 1 }, { meta: { progressToken: "b" } })
      ], { concurrency: "unbounded" })
      assert.strictEqual(servers.s!.calls("read"), 2)
      assert.deepStrictEqual(
        servers.s!.receivedMeta("read").map((m) => m.progressToken).sort(),
        ["a", "b"]
      )
    }).pipe(Effect.provide(bridgeOf())))

  it.live("coalescing keys on canonical arguments and on the caller's identity for tools that are not shared", () =>
    Effect.gen(function*() {
      const servers = yield* TestBridge.TestServers
      const bridge = yield* McpBridge.McpBridge
      yield* Effect.all([
        bridge.callTool("s.read", { a: 1, b: [1, 2] }),
        bridge.callTool("s.read", { b: [1, 2], a: 1 }),
        bridge.callTool("s.read", { a: 2, b: [1, 2] })
      ], { concurrency: "unbounded" })
      assert.strictEqual(servers.s!.calls("read"), 2)
      yield* Effect.all([
        bridge.callTool("s.who", {}).pipe(Effect.provideService(CallerIdentity, "alice")),
        bridge.callTool("s.who", {}).pipe(Effect.provideService(CallerIdentity, "alice")),
        bridge.callTool("s.who", {}).pipe(Effect.provideService(CallerIdentity, "bob"))
      ], { concurrency: "unbounded" })
      assert.strictEqual(servers.s!.calls("who"), 2)
    }).pipe(Effect.provide(bridgeOf())))

  it.live("a call made while an identical one is in flight joins it", () =>
    Effect.gen(function*() {
      const servers = yield* TestBridge.TestServers
      const bridge = yield* McpBridge.McpBridge
      const first = yield* Effect.forkChild(bridge.callTool("s.read", { x: 1 }))
      yield* Effect.sleep("10 millis")
      const second = yield* bridge.callTool("s.read", { x: 1 })
      assert.deepStrictEqual(yield* Fiber.join(first), second)
      assert.strictEqual(servers.s!.calls("read"), 1)
      // Once it is done, the next identical call goes upstream again (coalescing is not caching).
      yield* bridge.callTool("s.read", { x: 1 })
      assert.strictEqual(servers.s!.calls("read"), 2)
    }).pipe(Effect.provide(bridgeOf())))

  it.live("a shared call's failure reaches every caller that joined it", () =>
    Effect.gen(function*() {
      const servers = yield* TestBridge.TestServers
      const bridge = yield* McpBridge.McpBridge
      const errors = yield* Effect.forEach(
        [1, 2, 3],
        () => Effect.flip(bridge.callTool("s.crash", {})),
        { concurrency: "unbounded" }
      )
      assert.isTrue(errors.every((e) => e._tag === "McpSessionError" && e.reason._tag === "Closed"))
      assert.strictEqual(servers.s!.calls("crash"), 1)
    }).pipe(Effect.provide(bridgeOf({ tools: { crash: { readOnly: true } } }))))

  it.live("the shared call is cancelled on the wire only when its last caller is interrupted", () =>
    Effect.gen(function*() {
      const servers = yield* TestBridge.TestServers
      const bridge = yield* McpBridge.McpBridge
      const a = yield* Effect.forkChild(bridge.callTool("s.hang", {}))
      const b = yield* Effect.forkChild(bridge.callTool("s.hang", {}))
      for (let i = 0; i < 100 && servers.s!.inFlight() < 1; i++) yield* Effect.sleep("2 millis")
      assert.strictEqual(servers.s!.calls("hang"), 1)
      yield* Fiber.interrupt(a)
      yield* Effect.sleep("20 millis")
      assert.strictEqual(servers.s!.cancelled(), 0)
      yield* Fiber.interrupt(b)
      for (let i = 0; i < 100 && servers.s!.cancelled() < 1; i++) yield* Effect.sleep("2 millis")
      assert.strictEqual(servers.s!.cancelled(), 1)
      assert.strictEqual(servers.s!.inFlight(), 0)
    }).pipe(Effect.provide(bridgeOf())))

  it.effect("a batch collects calls for its window, and runs at once when it reaches maxBatchSize", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { tools: { r: { readOnly: true }, w: { readOnly: false } } } })
      const { caller, reached } = yield* recording()
      const r = (x: number) => requestOf(config, "s", "r", { x })
      // Two identical calls 5 ms apart fall in one window: one upstream call at its end.
      const first = yield* Effect.forkChild(caller(r(1)))
      yield* TestClock.adjust("5 millis")
      const second = yield* Effect.forkChild(caller(r(1)))
      yield* TestClock.adjust("4 millis")
      assert.strictEqual(reached.length, 0)
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual([yield* Fiber.join(first), yield* Fiber.join(second)].map(text), ["r@10", "r@10"])
      assert.strictEqual(reached.length, 1)
      // A full batch does not wait for the window; the fourth call opens a new batch.
      const batch = yield* Effect.forkChild(
        Effect.forEach([2, 3, 4, 5], (x) => caller(r(x)), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("10 millis")
      // The full batch ran at once (at 10 ms), the fourth call at the end of its own window.
      assert.deepStrictEqual((yield* Fiber.join(batch)).map(text), ["r@10", "r@10", "r@10", "r@20"])
      assert.strictEqual(reached.length, 5)
      // Calls that are not safe to merge skip the batch.
      assert.strictEqual(text(yield* caller(requestOf(config, "s", "w"))), "w@20")
    }).pipe(Effect.provide(Batcher.layer({ window: "10 millis", maxBatchSize: 3 }))))

  it.effect("calls to different servers never share a batch or an upstream call", () =>
    Effect.gen(function*() {
      const config = yield* configOf({
        a: { tools: { r: { readOnly: true } } },
        b: { tools: { r: { readOnly: true } } }
      })
      const stage = yield* Batcher.Batcher
      const servers: Array<string> = []
      const caller = stage.wrap((request) =>
        Effect.sync((): CallToolResult => {
          servers.push(request.server.name)
          return { content: [] }
        })
      )
      const fiber = yield* Effect.forkChild(
        Effect.forEach(["a", "b", "a", "b"], (s) => caller(requestOf(config, s, "r")), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("10 millis")
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(servers.sort(), ["a", "b"])
    }).pipe(Effect.provide(Batcher.layer({ window: "10 millis" }))))

  it("callMany on the Promise facade: { ok, result } or { ok, error } per call, in order", async () => {
    const server = TestServer.make({ tools })
    const bridge = await BridgeClient.make({ mcpServers: { s: { type: "memory" } } }, {
      transport: McpTransport.layer({ memory: { s: server.connect } })
    })
    try {
      const outcomes = await bridge.callMany([
        { target: "s.slow", arguments: { i: 1 } },
        { target: "s.nope" },
        { target: "s.hang", options: { timeout: 30 } },
        { target: "s.fails" }
      ], { concurrency: 2 })
      assert.deepStrictEqual(outcomes.map((o) => o.ok ? text(o.result) : `${o.error._tag}:${o.error.reason._tag}`), [
        "{\"i\":1}",
        "McpBridgeError:UnknownTool",
        "McpSessionError:Timeout",
        "no such record"
      ])
    } finally {
      await bridge.close()
      await server.close()
    }
  })
})
