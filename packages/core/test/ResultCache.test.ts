import { assert, describe, it } from "@effect/vitest"
import { BridgeClient, CallerIdentity, McpBridge, McpTransport, ResultCache } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Effect, Exit, Fiber, type Metric } from "effect"
import { TestClock } from "effect/testing"
import { callKey } from "../src/internal/canonical.ts"
import { counterValue, recorded, text, until } from "./fixtures.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "get", respond: { kind: "echo" } },
  { name: "other", respond: { kind: "echo" } },
  { name: "slow", hold: true, respond: { kind: "echo" } },
  { name: "count", respond: { kind: "counter" } },
  { name: "shared_count", respond: { kind: "counter" } },
  { name: "fails", respond: { kind: "isError", message: "no such record" } },
  { name: "hang", respond: { kind: "hang" } },
  { name: "big", respond: { kind: "payload", bytes: 2_000 } },
  { name: "write", respond: { kind: "text", text: "written" } },
  { name: "plain", respond: { kind: "echo" } }
]

// Every read tool is cacheable by the operator's policy; `write` and `plain` are not (no policy, untrusted server).
const policy = {
  tools: {
    get: { cache: "10 minutes" },
    other: { cache: "10 minutes" },
    slow: { cache: "10 minutes" },
    count: { cache: "10 minutes" },
    shared_count: { cache: "10 minutes", shared: true },
    fails: { cache: "10 minutes" },
    hang: { cache: "10 minutes", timeout: "1 second" },
    big: { cache: "10 minutes" }
  }
}

// The cache alone in the pipeline, so that what is measured is the cache (not the coalescing's coalescing).
const layerOf = (
  servers: Record<string, TestServer.TestServer>,
  options: {
    cache?: ResultCache.Options | false
    bridge?: Record<string, unknown>
    servers?: Record<string, any>
    telemetry?: boolean
  } = {}
) =>
  TestBridge.layerTest(servers, {
    bridge: { ...policy, ...options.bridge },
    servers: options.servers ?? {},
    cache: options.cache ?? {},
    coalescing: false,
    throttle: false,
    resilience: false,
    telemetry: options.telemetry === true ? {} : false
  })

const call = (target: string, args: Record<string, unknown> = {}) =>
  McpBridge.McpBridge.use((bridge) => bridge.callTool(target, args))

const stats = ResultCache.ResultCache.use((cache) => cache.stats)

describe("ResultCache", () => {
  it.effect("a call with onProgress goes upstream: never answered from the cache, never stored", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        yield* call("alpha.get", { id: 1 })
        yield* bridge.callTool("alpha.get", { id: 1 }, { onProgress: () => undefined })
        assert.strictEqual(alpha.calls("get"), 2)
        yield* bridge.callTool("alpha.get", { id: 2 }, { onProgress: () => undefined })
        yield* call("alpha.get", { id: 2 })
        assert.strictEqual(alpha.calls("get"), 4)
        const s = yield* stats
        assert.deepStrictEqual([s.hits, s.misses, s.size], [0, 2, 2])
      }).pipe(Effect.provide(layerOf({ alpha })))
    }))

  it.effect("answers a repeated call from the cache and counts hits and misses per server", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const first = yield* call("alpha.get", { id: 1 })
        const second = yield* call("alpha.get", { id: 1 })
        assert.deepStrictEqual(second, first)
        assert.strictEqual(alpha.calls("get"), 1)
        const other = yield* call("alpha.get", { id: 2 })
        assert.strictEqual(alpha.calls("get"), 2)
        const s = yield* stats
        assert.strictEqual(s.hits, 1)
        assert.strictEqual(s.misses, 2)
        assert.closeTo(s.hitRate, 1 / 3, 1e-9)
        assert.strictEqual(s.size, 2)
        // Each entry counts its result's JSON and its key.
        const bytes = (result: CallToolResult, id: number) =>
          JSON.stringify(result).length + callKey("alpha", "get", "", { id }).length
        assert.strictEqual(s.bytes, bytes(first, 1) + bytes(other, 2))
        assert.deepStrictEqual(s.servers.alpha, {
          hits: 1,
          misses: 2,
          hitRate: 1 / 3,
          size: 2,
          bytes: s.bytes,
          evictions: 0
        })
      }).pipe(Effect.provide(layerOf({ alpha })))
    }))

  it.effect("a stored result is frozen: one caller cannot change what the next one gets", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const first = yield* call("alpha.get", { id: 1 })
        assert.throws(() => {
          ;(first.content as Array<unknown>).push({ type: "text", text: "tampered" })
        })
        const second = yield* call("alpha.get", { id: 1 })
        assert.strictEqual(second.content.length, 1)
        assert.strictEqual(alpha.calls("get"), 1)
      }).pipe(Effect.provide(layerOf({ alpha })))
    }))

  it.effect("a result expires after the tool's TTL, and the layer's default TTL applies when the policy names none", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        yield* call("alpha.get")
        yield* call("alpha.other")
        yield* TestClock.adjust("59 seconds")
        yield* call("alpha.get")
        yield* call("alpha.other")
        assert.strictEqual(alpha.calls(), 2)
        yield* TestClock.adjust("1 second")
        // `other` has the default TTL (1 minute here), `get` its own (90 seconds)
        yield* call("alpha.get")
        yield* call("alpha.other")
        assert.strictEqual(alpha.calls("get"), 1)
        assert.strictEqual(alpha.calls("other"), 2)
        yield* TestClock.adjust("30 seconds")
        assert.strictEqual((yield* stats).size, 1)
        yield* call("alpha.get")
        assert.strictEqual(alpha.calls("get"), 2)
      }).pipe(Effect.provide(layerOf({ alpha }, {
        cache: { defaultTimeToLive: "1 minute" },
        bridge: { tools: { get: { cache: "90 seconds" }, other: { readOnly: true } } }
      })))
    }))

  it.effect("keys on canonical arguments: key order, whitespace and number spelling in the JSON do not matter", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        // The same call written four ways, as a caller holding JSON text would send it.
        const spellings = [
          "{\"a\":1,\"b\":{\"c\":[1,2],\"d\":\"x\"}}",
          "{\"b\":{\"d\":\"x\",\"c\":[1.0,2e0]},\"a\":1.0}",
          "{ \"b\" : { \"c\" : [ 1 , 2 ] , \"d\" : \"x\" } , \"a\" : 1.00 }",
          "{\"a\":10e-1,\"b\":{\"c\":[100e-2,0.2e1],\"d\":\"\\u0078\"}}"
        ]
        assert.strictEqual(new Set(spellings).size, 4)
        for (const json of spellings) yield* call("alpha.get", JSON.parse(json))
        // Values that differ as JavaScript values but not as JSON: -0 and 0, a property set to undefined.
        yield* call("alpha.get", { a: 1, b: { c: [1, 2], d: "x" }, e: undefined })
        yield* call("alpha.get", { a: -0 })
        yield* call("alpha.get", { a: 0 })
        assert.strictEqual(alpha.calls("get"), 2)
        // Values that differ: an array order, a string for a number.
        yield* call("alpha.get", { a: 1, b: { c: [2, 1], d: "x" } })
        yield* call("alpha.get", { a: "1", b: { c: [1, 2], d: "x" } })
        assert.strictEqual(alpha.calls("get"), 4)
        assert.deepStrictEqual([(yield* stats).hits, (yield* stats).misses], [5, 4])
      }).pipe(Effect.provide(layerOf({ alpha })))
    }))

  it.effect("never stores failures, isError results or results over the size limit", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const first = yield* call("alpha.fails")
        assert.isTrue(first.isError)
        yield* call("alpha.fails")
        assert.strictEqual(alpha.calls("fails"), 2)

        for (let i = 1; i <= 2; i++) {
          const fiber = yield* call("alpha.hang").pipe(Effect.forkChild)
          yield* until(alpha, () => alpha.inFlight() === 1)
          yield* TestClock.adjust("1 second")
          const exit = yield* Fiber.await(fiber)
          assert.isTrue(Exit.isFailure(exit))
          assert.strictEqual(alpha.calls("hang"), i)
        }

        yield* call("alpha.big")
        yield* call("alpha.big")
        assert.strictEqual(alpha.calls("big"), 2)
        assert.strictEqual((yield* stats).size, 0)
      }).pipe(Effect.provide(layerOf({ alpha }, { cache: { maxResultBytes: 1_000 } })))
    }))

  it.effect("a server's maxResultBytes overrides the layer's", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        yield* call("alpha.big")
        yield* call("alpha.big")
        assert.strictEqual(alpha.calls("big"), 1)
      }).pipe(Effect.provide(layerOf({ alpha }, {
        cache: { maxResultBytes: 1_000 },
        servers: { alpha: { cache: { maxResultBytes: 10_000 } } }
      })))
    }))

  it.effect("single flight: 100 concurrent identical calls make one upstream call", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        yield* call("alpha.get") // routes once, so that the calls below reach the cache as soon as they start
        const all = yield* Effect.forkChild(Effect.forEach(
          Array.from({ length: 100 }, () => ({ q: "same" })),
          (args) => call("alpha.slow", args),
          { concurrency: "unbounded" }
        ))
        yield* until(alpha, () => alpha.held("slow") === 1)
        alpha.release("slow")
        const results = yield* Fiber.join(all)
        assert.strictEqual(alpha.calls("slow"), 1)
        assert.strictEqual(new Set(results.map(text)).size, 1)
        const s = yield* stats
        assert.strictEqual(s.misses, 2)
        assert.strictEqual(s.hits, 99)
      }).pipe(Effect.provide(layerOf({ alpha })))
    }))

  it.effect("one caller never gets another caller's result, unless the tool is shared", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const as = (identity: string | undefined, tool: string) =>
          call(`alpha.${tool}`).pipe(Effect.map(text), Effect.provideService(CallerIdentity, identity))
        assert.strictEqual(yield* as("alice", "count"), "1")
        assert.strictEqual(yield* as("bob", "count"), "2")
        assert.strictEqual(yield* as("alice", "count"), "1")
        assert.strictEqual(yield* as("bob", "count"), "2")
        assert.strictEqual(yield* as(undefined, "count"), "3")
        assert.strictEqual(alpha.calls("count"), 3)

        assert.strictEqual(yield* as("alice", "shared_count"), "4")
        assert.strictEqual(yield* as("bob", "shared_count"), "4")
        assert.strictEqual(alpha.calls("shared_count"), 1)
      }).pipe(Effect.provide(layerOf({ alpha })))
    }))

  it.effect("evicts the least recently used results beyond the capacity", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        for (const id of [1, 2, 3]) yield* call("alpha.get", { id })
        yield* call("alpha.get", { id: 1 }) // 1 is now the most recently used
        yield* call("alpha.get", { id: 4 }) // evicts 2
        assert.strictEqual(alpha.calls("get"), 4)
        const s = yield* stats
        assert.strictEqual(s.size, 3)
        assert.strictEqual(s.evictions, 1)
        assert.strictEqual(s.servers.alpha?.evictions, 1)
        yield* call("alpha.get", { id: 1 })
        yield* call("alpha.get", { id: 3 })
        assert.strictEqual(alpha.calls("get"), 4)
        yield* call("alpha.get", { id: 2 })
        assert.strictEqual(alpha.calls("get"), 5)
      }).pipe(Effect.provide(layerOf({ alpha }, { cache: { capacity: 3 } })))
    }))

  it.effect("evicts the least recently used results beyond the total bytes", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        // each result is a little over 2,000 bytes: two fit in 5,000
        const results: Array<CallToolResult> = []
        for (const id of [1, 2, 3]) results.push(yield* call("alpha.big", { id }))
        const s = yield* stats
        assert.strictEqual(s.size, 2)
        // An entry's size is its result's JSON and its key: the two kept are the results of ids 2 and 3.
        const entryBytes = (id: number) =>
          JSON.stringify(results[id - 1]).length + callKey("alpha", "big", "", { id }).length
        assert.strictEqual(s.bytes, entryBytes(2) + entryBytes(3))
        assert.isAbove(entryBytes(1) * 3, 5_000)
        assert.strictEqual(s.evictions, 1)
        yield* call("alpha.big", { id: 3 })
        yield* call("alpha.big", { id: 2 })
        assert.strictEqual(alpha.calls("big"), 3)
        yield* call("alpha.big", { id: 1 })
        assert.strictEqual(alpha.calls("big"), 4)
      }).pipe(Effect.provide(layerOf({ alpha }, { cache: { maxBytes: 5_000 } })))
    }))

  it.effect("invalidates by server, by tool, by key, by predicate, and everything", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      const beta = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const cache = yield* ResultCache.ResultCache
        const fill = Effect.forEach(["alpha", "beta"], (server) =>
          Effect.forEach([1, 2], (id) =>
            Effect.all([
              call(`${server}.get`, { id }),
              call(`${server}.other`, { id }),
              call(`${server}.get`, { id }).pipe(Effect.provideService(CallerIdentity, "alice"))
            ])), { discard: true })
        yield* fill
        assert.strictEqual((yield* stats).size, 12)

        assert.strictEqual(yield* cache.invalidateServer("alpha"), 6)
        assert.deepStrictEqual([(yield* stats).servers.alpha?.size, (yield* stats).servers.beta?.size], [0, 6])
        yield* fill
        assert.strictEqual(alpha.calls(), 12)
        assert.strictEqual(beta.calls(), 6)

        assert.strictEqual(yield* cache.invalidateTool("beta", "other"), 2)
        assert.strictEqual(yield* cache.invalidateKey({ server: "beta", tool: "get", arguments: { id: 1 } }), 2)
        assert.strictEqual(
          yield* cache.invalidateKey({ server: "beta", tool: "get", arguments: { id: 2 }, identity: "alice" }),
          1
        )
        yield* fill
        // other ×2, get id 1 ×2 (alice and anonymous), get id 2 alice
        assert.strictEqual(beta.calls(), 11)

        const seen: Array<ResultCache.CachedCall> = []
        const dropped = yield* cache.invalidateWhen((entry) => {
          seen.push(entry)
          return entry.server === "alpha" && (entry.arguments as { id: number }).id === 2
        })
        assert.strictEqual(dropped, 3)
        const aliceEntry = seen.find((e) =>
          e.server === "alpha" && e.identity === "alice" && (e.arguments as { id: number }).id === 1
        )!
        assert.deepStrictEqual(aliceEntry.arguments, { id: 1 })
        assert.isFalse(aliceEntry.shared)
        assert.strictEqual(aliceEntry.tool, "get")
        const aliceResult = yield* call("alpha.get", { id: 1 }).pipe(Effect.provideService(CallerIdentity, "alice"))
        assert.strictEqual(
          aliceEntry.bytes,
          JSON.stringify(aliceResult).length + callKey("alpha", "get", "id:alice", { id: 1 }).length
        )

        assert.strictEqual(yield* cache.invalidateAll, 9)
        assert.strictEqual((yield* stats).size, 0)
        assert.strictEqual((yield* stats).bytes, 0)
      }).pipe(Effect.provide(layerOf({ alpha, beta })))
    }))

  it.effect("a call to a tool that is not read-only drops its server's results (invalidateOnWrite)", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      const beta = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        yield* call("alpha.get", { id: 1 })
        yield* call("beta.get", { id: 1 })
        yield* call("alpha.write")
        yield* call("alpha.get", { id: 1 })
        yield* call("beta.get", { id: 1 })
        assert.strictEqual(alpha.calls("get"), 2)
        assert.strictEqual(beta.calls("get"), 1)

        yield* call("beta.write")
        yield* call("beta.get", { id: 1 })
        assert.strictEqual(beta.calls("get"), 1)
      }).pipe(Effect.provide(layerOf({ alpha, beta }, { servers: { beta: { cache: { invalidateOnWrite: false } } } })))
    }))

  it.effect("a read in flight when a write ends is not stored", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const read = yield* call("alpha.slow", { id: 1 }).pipe(Effect.forkChild)
        yield* until(alpha, () => alpha.held("slow") === 1)
        yield* call("alpha.write")
        alpha.release("slow")
        yield* Fiber.join(read)
        const again = yield* call("alpha.slow", { id: 1 }).pipe(Effect.forkChild)
        // Not stored: the same call goes to the server again.
        yield* until(alpha, () => alpha.held("slow") === 1)
        alpha.release("slow")
        yield* Fiber.join(again)
        assert.strictEqual(alpha.calls("slow"), 2)
      }).pipe(Effect.provide(layerOf({ alpha })))
    }))

  it.effect("caches a trusted server's readOnlyHint tools, never a tool that is not read-only", () =>
    Effect.gen(function*() {
      const annotated = TestServer.make({
        tools: [
          { name: "read", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
          { name: "mutate", annotations: { readOnlyHint: false }, respond: { kind: "echo" } }
        ]
      })
      const untrusted = TestServer.make({
        tools: [{ name: "read", annotations: { readOnlyHint: true }, respond: { kind: "echo" } }]
      })
      yield* Effect.gen(function*() {
        for (let i = 0; i < 2; i++) {
          yield* call("trusted.read")
          yield* call("trusted.mutate")
          yield* call("untrusted.read")
        }
        assert.strictEqual(annotated.calls("read"), 1)
        assert.strictEqual(annotated.calls("mutate"), 2)
        assert.strictEqual(untrusted.calls("read"), 2)
      }).pipe(Effect.provide(layerOf({ trusted: annotated, untrusted }, {
        bridge: { tools: {} },
        servers: { trusted: { trustAnnotations: true, cache: { invalidateOnWrite: false } } }
      })))
    }))

  it.effect("records hits, misses, evictions and size in the bridge's metrics", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        for (const id of [1, 1, 2, 3, 1]) yield* call("alpha.get", { id })
        const full = (yield* recorded).find((m) => m.id === "mcp_bridge.cache.entries")
        assert.strictEqual(Number((full?.state as Metric.GaugeState<number>).value), 2)
        yield* ResultCache.ResultCache.use((cache) => cache.invalidateTool("alpha", "get"))
        const snapshot = yield* recorded
        const sum = (id: string, attributes: Record<string, string>) => counterValue(snapshot, id, attributes)
        assert.strictEqual(sum("mcp_bridge.cache.requests", { "mcp_bridge.cache.result": "hit" }), 1)
        assert.strictEqual(sum("mcp_bridge.cache.requests", { "mcp_bridge.cache.result": "miss" }), 4)
        assert.strictEqual(sum("mcp_bridge.cache.evictions", { "mcp_bridge.cache.eviction.reason": "capacity" }), 2)
        assert.strictEqual(sum("mcp_bridge.cache.evictions", { "mcp_bridge.cache.eviction.reason": "invalidated" }), 2)
        const entries = snapshot.find((m) => m.id === "mcp_bridge.cache.entries")
        assert.strictEqual(Number((entries?.state as Metric.GaugeState<number>).value), 0)
        const bytes = snapshot.find((m) => m.id === "mcp_bridge.cache.size")
        assert.strictEqual(Number((bytes?.state as Metric.GaugeState<number>).value), 0)
      }).pipe(Effect.provide(layerOf({ alpha }, { cache: { capacity: 2 }, telemetry: true })))
    }))

  it.live("the Promise facade exposes invalidation and stats", () =>
    Effect.promise(async () => {
      const server = TestServer.make({ tools })
      const bridge = await BridgeClient.make(
        { mcpServers: { s: { type: "memory", bridge: policy } } },
        { transport: McpTransport.layer({ memory: { s: server.connect } }) }
      )
      try {
        await bridge.callTool("s.get", { id: 1 })
        await bridge.callTool("s.get", { id: 1 })
        const stats = await bridge.cache.stats()
        assert.deepStrictEqual([stats.hits, stats.misses, stats.size], [1, 1, 1])
        assert.strictEqual(stats.servers.s?.hitRate, 0.5)
        assert.strictEqual(await bridge.cache.invalidateKey({ server: "s", tool: "get", arguments: { id: 1 } }), 1)
        await bridge.callTool("s.get", { id: 1 })
        assert.strictEqual(server.calls("get"), 2)
        assert.strictEqual(await bridge.cache.invalidateAll(), 1)
      } finally {
        await bridge.close()
        await server.close()
      }
    }))

  it.effect("layerDisabled passes every call through", () =>
    Effect.gen(function*() {
      const alpha = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        yield* call("alpha.get")
        yield* call("alpha.get")
        assert.strictEqual(alpha.calls("get"), 2)
        assert.strictEqual((yield* stats).hits, 0)
      }).pipe(Effect.provide(layerOf({ alpha }, { cache: false })))
    }))
})
