import { assert, describe, it, layer } from "@effect/vitest"
import { CallerIdentity, Coalescing, McpBridge } from "@mcp-bridge/core"
import type { ToolCaller } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Deferred, Duration, Effect, Exit, Fiber } from "effect"
import { configOf, requestOf, text, until } from "./fixtures.ts"

/**
 * An upstream whose calls wait until the test lets them finish: each call gets a `Deferred` to complete, and the
 * upstream records which calls ran and which were interrupted.
 */
const gated = Effect.gen(function*() {
  const stage = yield* Coalescing.Coalescing
  const runs: Array<{ readonly tool: string; readonly args: unknown; readonly done: Deferred.Deferred<void> }> = []
  let interrupted = 0
  const next: ToolCaller.ToolCaller<string> = (request) =>
    Effect.gen(function*() {
      const done = yield* Deferred.make<void>()
      const n = runs.push({ tool: request.tool, args: request.arguments, done })
      yield* Deferred.await(done)
      if (request.tool === "fails") return yield* Effect.fail(`failed ${n}`)
      return { content: [{ type: "text", text: `${request.tool} run ${n}` }] } satisfies CallToolResult
    }).pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted++)))
  return {
    caller: stage.wrap(next),
    runs,
    interrupted: () => interrupted,
    inFlight: stage.inFlight,
    finish: (i: number) => Deferred.succeed(runs[i]!.done, undefined)
  }
})

const safe = { tools: { r: { readOnly: true }, fails: { readOnly: true }, i: { idempotent: true }, w: {} } }

describe("Coalescing", () => {
  layer(Coalescing.layer)("the stage over an upstream the test controls", (it) => {
    it.effect("identical safe calls in flight share one upstream call and its result", () =>
      Effect.gen(function*() {
        const config = yield* configOf({ s: safe })
        const { caller, finish, inFlight, runs } = yield* gated
        const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(caller(requestOf(config, "s", "r"))))
        yield* Effect.yieldNow
        assert.strictEqual(runs.length, 1)
        assert.strictEqual(yield* inFlight, 1)
        yield* finish(0)
        const results = yield* Effect.forEach(fibers, Fiber.join)
        assert.deepStrictEqual(results.map(text), ["r run 1", "r run 1", "r run 1"])
        assert.strictEqual(yield* inFlight, 0)
      }))

    it.effect("coalescing is not caching: once the call ended, the next identical call makes its own", () =>
      Effect.gen(function*() {
        const config = yield* configOf({ s: safe })
        const { caller, finish, runs } = yield* gated
        const first = yield* Effect.forkChild(caller(requestOf(config, "s", "i", { q: 1 })))
        yield* Effect.yieldNow
        yield* finish(0)
        assert.strictEqual(text(yield* Fiber.join(first)), "i run 1")
        const second = yield* Effect.forkChild(caller(requestOf(config, "s", "i", { q: 1 })))
        yield* Effect.yieldNow
        assert.strictEqual(runs.length, 2)
        yield* finish(1)
        assert.strictEqual(text(yield* Fiber.join(second)), "i run 2")
      }))

    it.effect("a shared failure reaches every caller that joined it", () =>
      Effect.gen(function*() {
        const config = yield* configOf({ s: safe })
        const { caller, finish, runs } = yield* gated
        const fibers = yield* Effect.forEach([1, 2], () => Effect.forkChild(caller(requestOf(config, "s", "fails"))))
        yield* Effect.yieldNow
        yield* finish(0)
        const exits = yield* Effect.forEach(fibers, Fiber.await)
        assert.deepStrictEqual(exits, [Exit.fail("failed 1"), Exit.fail("failed 1")])
        assert.strictEqual(runs.length, 1)
      }))

    it.effect("calls that are not safe to repeat, and calls with _meta of their own, are never coalesced", () =>
      Effect.gen(function*() {
        const config = yield* configOf({ s: safe })
        const { caller, finish, inFlight, runs } = yield* gated
        const write = requestOf(config, "s", "w", { q: 1 })
        const withMeta = { ...requestOf(config, "s", "r", { q: 1 }), meta: { progressToken: "a" } }
        const fibers = yield* Effect.forEach(
          [write, write, withMeta, withMeta],
          (request) => Effect.forkChild(caller(request))
        )
        yield* Effect.yieldNow
        assert.deepStrictEqual(runs.map((r) => r.tool), ["w", "w", "r", "r"])
        // They skip the stage: none of them is a flight others could join.
        assert.strictEqual(yield* inFlight, 0)
        yield* Effect.forEach([0, 1, 2, 3], finish)
        yield* Effect.forEach(fibers, Fiber.join)
      }))

    it.effect("the key is server, tool, canonical arguments, partition and deadline", () =>
      Effect.gen(function*() {
        const config = yield* configOf({ a: safe, b: safe })
        const { caller, finish, runs } = yield* gated
        const r = (server: string, args: Record<string, unknown>) => requestOf(config, server, "r", args)
        const requests: ReadonlyArray<ToolCaller.CallRequest> = [
          r("a", { x: 1, y: [1, 2] }),
          r("a", { y: [1, 2], x: 1 }), // same call, keys in another order: joins the first
          r("a", { x: 1, y: [2, 1] }),
          r("b", { x: 1, y: [1, 2] }), // another server
          { ...r("a", { x: 1, y: [1, 2] }), timeout: Duration.seconds(1) }, // another deadline
          { ...r("a", { x: 1, y: [1, 2] }), identity: "alice" }, // another caller (the tool is not shared)
          { ...r("a", { x: 1, y: [1, 2] }), identity: "alice" } // the same caller again: joins
        ]
        const fibers = yield* Effect.forEach(requests, (request) => Effect.forkChild(caller(request)))
        yield* Effect.yieldNow
        assert.deepStrictEqual(runs.map((run) => run.args), [
          { x: 1, y: [1, 2] },
          { x: 1, y: [2, 1] },
          { x: 1, y: [1, 2] },
          { x: 1, y: [1, 2] },
          { x: 1, y: [1, 2] }
        ])
        yield* Effect.forEach(runs.map((_, i) => i), finish)
        const results = (yield* Effect.forEach(fibers, Fiber.join)).map(text)
        assert.deepStrictEqual(results, ["r run 1", "r run 1", "r run 2", "r run 3", "r run 4", "r run 5", "r run 5"])
      }))

    it.effect("a waiter that is interrupted leaves; the call goes on for the others", () =>
      Effect.gen(function*() {
        const config = yield* configOf({ s: safe })
        const { caller, finish, interrupted, runs } = yield* gated
        const first = yield* Effect.forkChild(caller(requestOf(config, "s", "r")))
        const waiter = yield* Effect.forkChild(caller(requestOf(config, "s", "r")))
        yield* Effect.yieldNow
        yield* Fiber.interrupt(waiter)
        assert.strictEqual(interrupted(), 0)
        yield* finish(0)
        assert.strictEqual(text(yield* Fiber.join(first)), "r run 1")
        assert.strictEqual(runs.length, 1)
      }))

    it.effect("the caller that started the call leaves: the call goes on for the others, and ends when all have left", () =>
      Effect.gen(function*() {
        const config = yield* configOf({ s: safe })
        const { caller, finish, interrupted, runs } = yield* gated
        const first = yield* Effect.forkChild(caller(requestOf(config, "s", "r")))
        const waiters = yield* Effect.forEach([1, 2], () => Effect.forkChild(caller(requestOf(config, "s", "r"))))
        yield* Effect.yieldNow
        assert.strictEqual(runs.length, 1)
        yield* Fiber.interrupt(first)
        // The call is not interrupted: two callers still wait on it.
        assert.strictEqual(interrupted(), 0)
        yield* Effect.yieldNow
        assert.strictEqual(runs.length, 1)
        yield* finish(0)
        const results = yield* Effect.forEach(waiters, Fiber.join)
        assert.deepStrictEqual(results.map(text), ["r run 1", "r run 1"])
        assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(first)))
        // Every caller leaves: the call is interrupted.
        const again = yield* Effect.forEach([1, 2], () => Effect.forkChild(caller(requestOf(config, "s", "r"))))
        yield* Effect.yieldNow
        assert.strictEqual(runs.length, 2)
        yield* Fiber.interrupt(again[0]!)
        assert.strictEqual(interrupted(), 0)
        yield* Fiber.interrupt(again[1]!)
        assert.strictEqual(interrupted(), 1)
      }))
  })

  it.effect("layerDisabled: every call reaches the upstream on its own", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: safe })
      const { caller, finish, inFlight, runs } = yield* gated
      const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(caller(requestOf(config, "s", "r"))))
      yield* Effect.yieldNow
      assert.strictEqual(runs.length, 3)
      assert.strictEqual(yield* inFlight, 0)
      yield* Effect.forEach([0, 1, 2], finish)
      yield* Effect.forEach(fibers, Fiber.join)
    }).pipe(Effect.provide(Coalescing.layerDisabled)))

  describe("in the bridge, over an in-memory server", () => {
    const tools: ReadonlyArray<TestServer.TestTool> = [
      { name: "read", hold: true, respond: { kind: "echo" } },
      { name: "write", hold: true, respond: { kind: "echo" } },
      { name: "who", hold: true, respond: { kind: "counter" } },
      { name: "crash", respond: { kind: "crash" } },
      { name: "hang", respond: { kind: "hang" } }
    ]
    const bridgeOf = () =>
      TestBridge.layerTest({ s: { tools } }, {
        cache: false,
        bridge: {
          retry: false,
          tools: {
            read: { readOnly: true },
            who: { readOnly: true },
            crash: { readOnly: true },
            hang: { readOnly: true }
          }
        }
      })
    const serverOf = Effect.map(TestBridge.TestServers.use(Effect.succeed), (servers) => servers.s!)
    const call = (target: string, args: Record<string, unknown> = {}) =>
      McpBridge.McpBridge.use((bridge) => bridge.callTool(target, args))

    it.effect("identical read-only calls in flight share one upstream call; identical writes each reach the server", () =>
      Effect.gen(function*() {
        const s = yield* serverOf
        const coalescing = yield* Coalescing.Coalescing
        // Route once, so that the calls below reach the coalescing as soon as they start.
        yield* call("s.__stats")
        const reads = yield* Effect.forkChild(
          Effect.forEach(Array.from({ length: 100 }), () => call("s.read", { q: "pool", page: 1 }), {
            concurrency: "unbounded"
          })
        )
        yield* until(s, () => s.held("read") === 1)
        assert.strictEqual(yield* coalescing.inFlight, 1)
        s.release("read")
        const results = yield* Fiber.join(reads)
        assert.strictEqual(s.calls("read"), 1)
        assert.isTrue(results.every((r) => text(r) === "{\"q\":\"pool\",\"page\":1}"))

        const writes = yield* Effect.forkChild(
          Effect.forEach(Array.from({ length: 10 }), () => call("s.write", { q: "pool" }), { concurrency: "unbounded" })
        )
        // All ten are at the server at once: none waited for another to share its result.
        yield* until(s, () => s.held("write") === 10)
        s.release("write")
        assert.strictEqual((yield* Fiber.join(writes)).length, 10)
        assert.strictEqual(s.calls("write"), 10)
      }).pipe(Effect.provide(bridgeOf())))

    it.effect("a call with _meta of its own is never merged: its meta reaches the server", () =>
      Effect.gen(function*() {
        const s = yield* serverOf
        const bridge = yield* McpBridge.McpBridge
        const both = yield* Effect.forkChild(Effect.all([
          bridge.callTool("s.read", { q: 1 }, { meta: { progressToken: "a" } }),
          bridge.callTool("s.read", { q: 1 }, { meta: { progressToken: "b" } })
        ], { concurrency: "unbounded" }))
        yield* until(s, () => s.held("read") === 2)
        s.release("read")
        yield* Fiber.join(both)
        assert.deepStrictEqual(s.receivedMeta("read").map((m) => m.progressToken).sort(), ["a", "b"])
      }).pipe(Effect.provide(bridgeOf())))

    it.effect("coalescing keys on canonical arguments and on the caller's identity for tools that are not shared", () =>
      Effect.gen(function*() {
        const s = yield* serverOf
        yield* call("s.__stats")
        const reads = yield* Effect.forkChild(Effect.all([
          call("s.read", { a: 1, b: [1, 2] }),
          call("s.read", { b: [1, 2], a: 1 }),
          call("s.read", { a: 2, b: [1, 2] })
        ], { concurrency: "unbounded" }))
        yield* until(s, () => s.held("read") === 2)
        s.release("read")
        assert.deepStrictEqual((yield* Fiber.join(reads)).map(text), [
          "{\"a\":1,\"b\":[1,2]}",
          "{\"a\":1,\"b\":[1,2]}",
          "{\"a\":2,\"b\":[1,2]}"
        ])
        assert.strictEqual(s.calls("read"), 2)
        const who = yield* Effect.forkChild(Effect.all([
          call("s.who").pipe(Effect.provideService(CallerIdentity, "alice")),
          call("s.who").pipe(Effect.provideService(CallerIdentity, "alice")),
          call("s.who").pipe(Effect.provideService(CallerIdentity, "bob"))
        ], { concurrency: "unbounded" }))
        yield* until(s, () => s.held("who") === 2)
        s.release("who")
        const [alice1, alice2, bob] = (yield* Fiber.join(who)).map(text)
        assert.strictEqual(alice1, alice2)
        assert.notStrictEqual(alice1, bob)
        assert.strictEqual(s.calls("who"), 2)
      }).pipe(Effect.provide(bridgeOf())))

    it.effect("a shared call's failure reaches every caller that joined it", () =>
      Effect.gen(function*() {
        const s = yield* serverOf
        yield* call("s.__stats")
        const errors = yield* Effect.forEach([1, 2, 3], () => Effect.flip(call("s.crash")), {
          concurrency: "unbounded"
        })
        assert.isTrue(errors.every((e) => e._tag === "McpSessionError" && e.reason._tag === "Closed"))
        // One shared call, and the one resend of a read-only call whose session died (resilience, below the coalescing).
        assert.strictEqual(s.calls("crash"), 2)
      }).pipe(Effect.provide(bridgeOf())))

    it.effect("a caller that leaves leaves the call on the wire for the others; the last one to leave cancels it", () =>
      Effect.gen(function*() {
        const s = yield* serverOf
        yield* call("s.__stats")
        const maker = yield* Effect.forkChild(call("s.hang"))
        yield* until(s, () => s.inFlight() === 1)
        const [waiter, leaver] = yield* Effect.forEach([1, 2], () => Effect.forkChild(call("s.hang")))
        yield* Effect.yieldNow
        yield* Fiber.interrupt(leaver!)
        yield* Fiber.interrupt(maker)
        assert.deepStrictEqual([s.calls("hang"), s.cancelled(), s.inFlight()], [1, 0, 1])
        yield* Fiber.interrupt(waiter!)
        yield* until(s, () => s.cancelled() === 1 && s.inFlight() === 0)
        assert.strictEqual(s.calls("hang"), 1)
      }).pipe(Effect.provide(bridgeOf())))
  })
})
