import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig, CallerIdentity, ConnectionPool, McpBridge, McpTransport, Telemetry } from "@mcp-bridge/core"
import { TestServer } from "@mcp-bridge/testing"
import type { Transport } from "@modelcontextprotocol/client"
import { Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { drain, text, until } from "./fixtures.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "hang", respond: { kind: "hang" } },
  { name: "counter", respond: { kind: "counter" } },
  { name: "held", hold: true, respond: { kind: "echo" } },
  { name: "crash", respond: { kind: "crash" } }
]

// No health probes unless a test asks for them: a probe is real I/O, which a TestClock step does not wait for.
const quiet = { healthCheckInterval: "1 day" }

/** A server, and a `connect` that counts the sessions opened to it. */
const counted = (spec: TestServer.TestServerSpec = { tools }) => {
  const server = TestServer.make(spec)
  let connects = 0
  return {
    server,
    connects: () => connects,
    connect: (): Promise<Transport> => {
      connects++
      return server.connect()
    }
  }
}

const layer = (
  server: TestServer.TestServer,
  pool: object,
  connect: () => Promise<Transport> = server.connect,
  options: ConnectionPool.Options = {}
) =>
  McpBridge.layer(
    { mcpServers: { s: { type: "memory", bridge: { pool: { ...quiet, ...pool }, timeout: "1 minute" } } } },
    { transport: McpTransport.layer({ memory: { s: connect } }), pool: options }
  )

const stats = Effect.flatMap(ConnectionPool.ConnectionPool, (pool) => pool.stats)
const statsOf = Effect.map(stats, (all) => {
  assert.strictEqual(all.length, 1)
  return all[0]!
})
const call = (tool: string, args: Record<string, unknown> = {}) =>
  Effect.flatMap(McpBridge.McpBridge, (bridge) => bridge.callTool(`s.${tool}`, args))
const as = (identity: string) => Effect.provideService(CallerIdentity, identity)

// Once a lease has ended, a saturated pool grows only after the measured growth delay (a millisecond on this clock):
// steps the clock a millisecond at a time, letting the in-memory I/O run between steps, until `predicate` holds.
const whileGrowing = (predicate: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000 && !predicate(); i++) {
      yield* TestClock.adjust("1 millis")
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    }
    assert.isTrue(predicate(), "the pool never grew")
  })

describe("ConnectionPool", () => {
  it.effect("keeps `min` sessions warm from start-up, and closing the layer closes every session", () =>
    Effect.gen(function*() {
      const { connect, connects, server } = counted()
      yield* Effect.gen(function*() {
        yield* until(server, () => server.openSessions() === 2)
        // Two callers at once are served by the two warm sessions: no third session is opened.
        const both = yield* Effect.forkChild(
          Effect.all([call("held", { n: 1 }), call("held", { n: 2 })], { concurrency: "unbounded" })
        )
        yield* until(server, () => server.held("held") === 2)
        const s = yield* statsOf
        assert.deepStrictEqual([s.created, s.inUse, s.idle, s.min], [2, 2, 0, 2])
        server.release("held")
        yield* Fiber.join(both)
        assert.strictEqual(connects(), 2)
      }).pipe(Effect.provide(layer(server, { min: 2, max: 5, concurrency: 1 }, connect)))
      yield* until(server, () => server.openSessions() === 0)
    }))

  it.effect("grows by measurement: a saturation that ends within a lease's time opens no session, one that lasts does", () =>
    Effect.gen(function*() {
      const { connect, connects, server } = counted()
      yield* Effect.gen(function*() {
        yield* call("echo")
        assert.strictEqual(connects(), 1)
        // The only session is busy (concurrency 1); a second caller waits for it instead of opening another...
        const first = yield* Effect.forkChild(call("held", { n: 1 }))
        yield* until(server, () => server.held("held") === 1)
        const second = yield* Effect.forkChild(call("echo", { n: 2 }))
        yield* Effect.yieldNow
        server.release("held")
        yield* Fiber.join(first)
        assert.deepStrictEqual(text(yield* Fiber.join(second)), "{\"n\":2}")
        assert.strictEqual(connects(), 1)
        // ...but when the session stays busy past the growth delay (a millisecond here: leases and the connect are
        // instant on this clock), the pool opens a second one.
        const holding = yield* Effect.forkChild(call("held", { n: 3 }))
        yield* until(server, () => server.held("held") === 1)
        const third = yield* Effect.forkChild(call("echo", { n: 4 }))
        yield* Effect.yieldNow
        assert.strictEqual(connects(), 1)
        yield* TestClock.adjust("1 millis")
        assert.deepStrictEqual(text(yield* Fiber.join(third)), "{\"n\":4}")
        assert.deepStrictEqual([connects(), (yield* statsOf).created], [2, 2])
        server.release("held")
        yield* Fiber.join(holding)
      }).pipe(Effect.provide(layer(server, { max: 3, concurrency: 1 }, connect)))
    }))

  it.effect("reuses one session for sequential calls", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        for (let i = 0; i < 20; i++) yield* call("echo", { i })
        const s = yield* statsOf
        assert.strictEqual(s.created, 1)
        assert.strictEqual(server.openSessions(), 1)
      }).pipe(Effect.provide(layer(server, {})))
    }))

  it.effect("retires idle sessions above `min` after the idle time-to-live", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const three = yield* Effect.forkChild(
          Effect.forEach([1, 2, 3], (i) => call("held", { i }), { concurrency: "unbounded" })
        )
        yield* whileGrowing(() => server.held("held") === 3)
        server.release("held")
        yield* Fiber.join(three)
        assert.strictEqual(server.openSessions(), 3)
        yield* TestClock.adjust("4 minutes")
        assert.deepStrictEqual([(yield* statsOf).invalidated, (yield* statsOf).idle], [0, 3])
        // The sweep runs every 75 s (a quarter of the idle time-to-live): by 7 minutes it has seen 5 minutes of idling.
        yield* TestClock.adjust("3 minutes")
        const s = yield* statsOf
        assert.deepStrictEqual([s.invalidated, s.idle], [2, 1])
        yield* until(server, () => server.openSessions() === 1)
      }).pipe(Effect.provide(layer(server, { min: 1, max: 5, concurrency: 1, idleTimeToLive: "5 minutes" })))
    }))

  it.effect("replaces sessions past their maximum lifetime", () =>
    Effect.gen(function*() {
      const { connect, connects, server } = counted()
      yield* Effect.gen(function*() {
        assert.strictEqual(text(yield* call("echo", { before: 1 })), "{\"before\":1}")
        assert.strictEqual((yield* statsOf).created, 1)
        yield* TestClock.adjust("29 minutes")
        assert.strictEqual((yield* statsOf).invalidated, 0)
        yield* TestClock.adjust("2 minutes")
        assert.strictEqual((yield* statsOf).invalidated, 1)
        // The pool keeps `min`: a new session replaces the old one.
        yield* until(server, () => connects() === 2 && server.openSessions() === 1)
        assert.strictEqual(text(yield* call("echo", { ok: 1 })), "{\"ok\":1}")
        assert.strictEqual((yield* statsOf).created, 2)
      }).pipe(Effect.provide(layer(server, { min: 1, maxLifetime: "30 minutes" }, connect)))
    }))

  describe("health probes", () => {
    // A wedged server: the transport stays open but nothing comes back while `frozen`.
    const wedged = () => {
      const { connect, connects, server } = counted()
      const frozen = { value: false }
      const freezable = async (): Promise<Transport> => {
        const inner = await connect()
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
      return { server, connects, frozen, connect: freezable }
    }

    it.effect("a session that stops answering fails its health check (probeTimeout 5 s by default) and is replaced", () =>
      Effect.gen(function*() {
        const { connect, connects, frozen, server } = wedged()
        yield* Effect.gen(function*() {
          yield* call("echo")
          frozen.value = true
          // The sweep probes the idle session at 60 s; the probe gets no answer.
          yield* TestClock.adjust("61 seconds")
          frozen.value = false
          yield* TestClock.adjust("3999 millis")
          assert.strictEqual((yield* statsOf).invalidated, 0)
          yield* TestClock.adjust("1 millis")
          assert.strictEqual((yield* statsOf).invalidated, 1)
          yield* until(server, () => connects() === 2)
          assert.strictEqual(text(yield* call("echo", { healthy: true })), "{\"healthy\":true}")
          assert.strictEqual((yield* statsOf).created, 2)
        }).pipe(Effect.provide(layer(server, { min: 1, healthCheckInterval: "60 seconds" }, connect)))
      }))

    it.effect("probeTimeout bounds the probe", () =>
      Effect.gen(function*() {
        const { connect, frozen, server } = wedged()
        yield* Effect.gen(function*() {
          yield* call("echo")
          frozen.value = true
          yield* TestClock.adjust("60 seconds")
          yield* TestClock.adjust("1999 millis")
          assert.strictEqual((yield* statsOf).invalidated, 0)
          yield* TestClock.adjust("1 millis")
          assert.strictEqual((yield* statsOf).invalidated, 1)
          frozen.value = false
        }).pipe(
          Effect.provide(layer(server, { min: 1, healthCheckInterval: "60 seconds" }, connect, {
            probeTimeout: "2 seconds"
          }))
        )
      }))

    it.effect("a healthy session passes its probes and stays", () =>
      Effect.gen(function*() {
        const { connect, connects, server } = counted()
        yield* Effect.gen(function*() {
          yield* call("echo")
          for (let minute = 0; minute < 3; minute++) {
            const before = server.calls("__stats") // probes are pings, never tool calls
            yield* TestClock.adjust("1 minute")
            assert.strictEqual(server.calls("__stats"), before)
          }
          assert.strictEqual(text(yield* call("echo", { still: 1 })), "{\"still\":1}")
          const s = yield* statsOf
          assert.deepStrictEqual([s.created, s.invalidated, connects()], [1, 0, 1])
        }).pipe(Effect.provide(layer(server, { min: 1, healthCheckInterval: "60 seconds" }, connect)))
      }))
  })

  it.effect("an exhausted pool makes callers wait, then fails with PoolTimeout", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const busy = yield* call("hang").pipe(Effect.forkChild)
        yield* until(server, () => server.inFlight() === 1)
        const waiting = yield* call("echo").pipe(Effect.forkChild)
        yield* Effect.yieldNow
        assert.strictEqual((yield* statsOf).pending, 1)
        yield* TestClock.adjust("4 seconds")
        assert.isUndefined(waiting.pollUnsafe())
        yield* TestClock.adjust("1 second")
        const error = yield* Effect.flip(Fiber.join(waiting))
        assert.isTrue(error._tag === "ConnectionPoolError")
        if (error._tag !== "ConnectionPoolError") return
        assert.deepStrictEqual(
          error.reason,
          new ConnectionPool.PoolTimeout({
            server: "s",
            max: 1,
            concurrency: 1,
            waitedMillis: 5000,
            open: 1,
            connecting: 0
          })
        )
        assert.strictEqual(error.server, "s")
        assert.include(error.message, "no session of MCP server \"s\" became free within 5000 ms")
        assert.strictEqual(server.calls("echo"), 0)
        yield* Fiber.interrupt(busy)
      }).pipe(Effect.provide(layer(server, { max: 1, concurrency: 1, acquireTimeout: "5 seconds" })))
    }))

  it.effect("a waiting caller gets the session when it is released", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const calls = yield* Effect.forkChild(
          Effect.forEach([1, 2, 3], (i) => call("held", { i }), { concurrency: "unbounded" })
        )
        for (let served = 1; served <= 3; served++) {
          yield* until(server, () => server.held("held") === 1)
          assert.strictEqual(server.calls("held"), served)
          assert.strictEqual((yield* statsOf).pending, 3 - served)
          server.release("held")
        }
        assert.deepStrictEqual((yield* Fiber.join(calls)).map(text), ["{\"i\":1}", "{\"i\":2}", "{\"i\":3}"])
        assert.strictEqual((yield* statsOf).created, 1)
      }).pipe(Effect.provide(layer(server, { max: 1, concurrency: 1 })))
    }))

  it.effect("calls above max × per-session concurrency queue and all complete", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const calls = yield* Effect.forkChild(Effect.forEach(
          Array.from({ length: 24 }, (_, i) => i),
          (i) => call("held", { i }),
          { concurrency: "unbounded" }
        ))
        // Two sessions of two requests each: four calls at the server, twenty waiting for a session.
        yield* whileGrowing(() => server.held("held") === 4)
        assert.strictEqual((yield* statsOf).pending, 20)
        yield* drain(server, "held", 24)
        const results = yield* Fiber.join(calls)
        assert.deepStrictEqual(results.map(text), Array.from({ length: 24 }, (_, i) => `{"i":${i}}`))
        assert.strictEqual(server.peakInFlight(), 4)
        assert.strictEqual((yield* statsOf).created, 2)
      }).pipe(Effect.provide(layer(server, { max: 2, concurrency: 2 })))
    }))

  it.effect("a session whose transport dies is replaced; the call that hit it fails with Closed", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        assert.strictEqual(text(yield* call("echo", { n: 1 })), "{\"n\":1}")
        const error = yield* Effect.flip(call("crash"))
        assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "Closed")
        assert.strictEqual(text(yield* call("echo", { n: 2 })), "{\"n\":2}")
        const s = yield* statsOf
        // Invalidated once: by the failed call or by the transport's close, whichever came first.
        assert.deepStrictEqual([s.created, s.invalidated], [2, 1])
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

  describe("the total cap over identities (maxTotal)", () => {
    const capped = (server: TestServer.TestServer) =>
      layer(server, {
        max: 1,
        maxTotal: 1,
        isolation: "per-identity",
        acquireTimeout: "5 seconds"
      })
    // `connectTimeout` short, so that a wait for a first session is bounded by `acquireTimeout` (5 s).
    const cappedLayer = (server: TestServer.TestServer) =>
      McpBridge.layer(
        {
          mcpServers: {
            s: {
              type: "memory",
              bridge: {
                pool: { ...quiet, max: 1, maxTotal: 1, isolation: "per-identity", acquireTimeout: "5 seconds" },
                timeout: "1 minute",
                connectTimeout: "1 second"
              }
            }
          }
        },
        { transport: McpTransport.layer({ memory: { s: server.connect } }) }
      )

    it.effect("identities queue first come first served, and an idle session of another makes room at once", () =>
      Effect.gen(function*() {
        const server = TestServer.make({ tools })
        yield* Effect.gen(function*() {
          const busy = yield* Effect.forkChild(call("held", { who: "alice" }).pipe(as("alice")))
          yield* until(server, () => server.held("held") === 1)
          const served: Array<string> = []
          const queued: Array<Fiber.Fiber<unknown, unknown>> = []
          for (const who of ["bob", "carol", "dave"]) {
            queued.push(
              yield* Effect.forkChild(
                Effect.tap(call("echo", { who }).pipe(as(who)), () => Effect.sync(() => served.push(who)))
              )
            )
            yield* Effect.yieldNow
          }
          yield* TestClock.adjust("4 seconds")
          assert.deepStrictEqual(served, [])
          // alice's call ends: her idle session is evicted for bob once idle for 250 ms (the least grace: opening one
          // takes no time here; it might have served her next call), bob's for carol, carol's for dave
          server.release("held")
          yield* Fiber.join(busy)
          for (let step = 1; step <= 3; step++) {
            yield* TestClock.adjust("249 millis")
            assert.strictEqual(server.calls("echo"), step - 1, "a session idle for less than 250 ms is spared")
            yield* TestClock.adjust("1 millis")
            yield* until(server, () => server.calls("echo") === step && server.inFlight() === 0)
          }
          for (const fiber of queued) yield* Fiber.join(fiber)
          assert.deepStrictEqual(served, ["bob", "carol", "dave"])
          const created = (yield* stats).map((s) => [s.identity, s.created, s.invalidated])
          assert.sameDeepMembers(created, [["alice", 1, 1], ["bob", 1, 1], ["carol", 1, 1], ["dave", 1, 0]])
        }).pipe(Effect.provide(capped(server)))
      }))

    it.effect("a queued caller waits while the queue moves, and fails with PoolTimeout after acquireTimeout without progress", () =>
      Effect.gen(function*() {
        const server = TestServer.make({ tools })
        yield* Effect.gen(function*() {
          const alice = yield* Effect.forkChild(call("held", { who: "alice" }).pipe(as("alice")))
          yield* until(server, () => server.held("held") === 1)
          const bob = yield* Effect.forkChild(call("held", { who: "bob" }).pipe(as("bob")))
          yield* Effect.yieldNow
          const carol = yield* Effect.forkChild(call("echo").pipe(as("carol")))
          yield* Effect.yieldNow
          // 4 s later alice's call ends, and 250 ms after (see above) bob takes the slot: the queue moved, carol's 5 s
          // count from then
          yield* TestClock.adjust("4 seconds")
          server.release("held")
          yield* Fiber.join(alice)
          yield* TestClock.adjust("250 millis")
          yield* until(server, () => server.held("held") === 1)
          yield* TestClock.adjust("4 seconds")
          assert.isUndefined(carol.pollUnsafe(), "8 s after arriving, 4 s after the queue last moved, carol waits")
          yield* TestClock.adjust("1 second")
          const error = yield* Effect.flip(Fiber.join(carol))
          assert.isTrue(error._tag === "ConnectionPoolError")
          if (error._tag !== "ConnectionPoolError") return
          assert.strictEqual(error.reason.waitedMillis, 9_250)
          assert.deepStrictEqual([error.reason.maxTotal, error.reason.queued], [1, 1])
          assert.include(error.message, "all 1 sessions it may have over all identities (maxTotal) are busy")
          server.release("held")
          yield* Fiber.join(bob)
        }).pipe(Effect.provide(cappedLayer(server)))
      }))
  })

  it.effect("shared isolation lets identities share a session (what per-identity prevents)", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* Effect.gen(function*() {
        const a1 = yield* call("counter").pipe(as("alice"))
        const b1 = yield* call("counter").pipe(as("bob"))
        assert.deepStrictEqual([a1, b1].map(text), ["1", "2"])
      }).pipe(Effect.provide(layer(server, { max: 1 })))
    }))

  it.effect("unusedPoolTimeToLive: a pool nobody called for that long is closed with its sessions", () =>
    Effect.gen(function*() {
      const { connect, connects, server } = counted()
      yield* Effect.gen(function*() {
        yield* call("echo")
        yield* TestClock.adjust("59 seconds")
        assert.strictEqual((yield* stats).length, 1)
        yield* call("echo") // a call starts the idle time again
        yield* TestClock.adjust("59 seconds")
        assert.strictEqual((yield* stats).length, 1)
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(yield* stats, [])
        yield* until(server, () => server.openSessions() === 0)
        // The next call opens a pool (and a session) again.
        assert.strictEqual(text(yield* call("echo", { back: 1 })), "{\"back\":1}")
        assert.deepStrictEqual([connects(), server.openSessions(), (yield* stats).length], [2, 1, 1])
      }).pipe(Effect.provide(layer(server, {}, connect, { unusedPoolTimeToLive: "1 minute" })))
    }))

  it.effect("without unusedPoolTimeToLive a pool stays open however long it is unused", () =>
    Effect.gen(function*() {
      const { connect, connects, server } = counted()
      yield* Effect.gen(function*() {
        yield* call("echo")
        yield* TestClock.adjust("1 day")
        assert.strictEqual((yield* stats).length, 1)
        yield* call("echo")
        assert.strictEqual(connects(), 1)
      }).pipe(Effect.provide(layer(server, { idleTimeToLive: "2 days", maxLifetime: "2 days" }, connect)))
    }))

  it.effect("layerUnpooled opens and closes a session per call", () =>
    Effect.gen(function*() {
      const { connect, connects, server } = counted()
      const config = yield* BridgeConfig.decode({ mcpServers: { s: { type: "memory" } } })
      const bridge = McpBridge.layerServices().pipe(
        Layer.provide(McpBridge.layerStages({ cache: false, coalescing: false, throttle: false, resilience: false })),
        Layer.provide(Telemetry.layerDisabled),
        Layer.provideMerge(ConnectionPool.layerUnpooled),
        Layer.provide(BridgeConfig.layerResolved(config)),
        Layer.provide(McpTransport.layer({ memory: { s: connect } }))
      )
      yield* Effect.gen(function*() {
        yield* call("echo")
        yield* call("echo")
        yield* until(server, () => server.openSessions() === 0)
        // One session for the tool list, one per call.
        assert.deepStrictEqual([connects(), server.calls("echo")], [3, 2])
        assert.deepStrictEqual(yield* stats, [])
      }).pipe(Effect.provide(bridge))
    }))
})
