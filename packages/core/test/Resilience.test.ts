import { assert, describe, it } from "@effect/vitest"
import {
  ConnectionPool,
  McpBridge,
  McpBridgeError,
  McpSessionError,
  MetricsRecorder,
  Resilience
} from "@mcp-bridge/core"
import type { ToolCaller } from "@mcp-bridge/core"
import { TestBridge } from "@mcp-bridge/testing"
import { Cause, Clock, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { TestClock } from "effect/testing"
import { configOf, counterValue, ok, requestOf, toolError, until } from "./fixtures.ts"

type Outcome = "ok" | "isError" | "closed" | "timeout" | "connect" | "429" | "protocol" | "poolTimeout" | "gate"

const sessionError = (reason: McpSessionError.Reason) => new McpSessionError.McpSessionError({ reason })

/**
 * An upstream that answers each attempt from a script (the last outcome repeats) and records when attempts were made,
 * per server.
 */
const scripted = (scripts: Record<string, ReadonlyArray<Outcome>>, gate?: Deferred.Deferred<void>) => {
  const attempts: Record<string, Array<number>> = {}
  const next: ToolCaller.ToolCaller<McpBridge.CallError> = (request) =>
    Effect.gen(function*() {
      const server = request.server.name
      const seen = (attempts[server] ??= [])
      seen.push(yield* Clock.currentTimeMillis)
      const script = scripts[server]!
      const outcome = script[Math.min(seen.length - 1, script.length - 1)]!
      switch (outcome) {
        case "ok":
          return ok
        case "gate":
          yield* Deferred.await(gate!)
          return ok
        case "isError":
          return toolError
        case "closed":
          return yield* sessionError(new McpSessionError.Closed({ server, message: "child process exited" }))
        case "timeout":
          return yield* sessionError(
            new McpSessionError.Timeout({ server, operation: "tools/call t", timeoutMillis: 1 })
          )
        case "connect":
          return yield* sessionError(new McpSessionError.ConnectFailed({ server, message: "ECONNREFUSED" }))
        case "429":
          return yield* sessionError(new McpSessionError.Protocol({ server, code: 429, message: "Too Many Requests" }))
        case "protocol":
          return yield* sessionError(new McpSessionError.Protocol({ server, code: -32602, message: "invalid params" }))
        case "poolTimeout":
          return yield* new ConnectionPool.ConnectionPoolError({
            reason: new ConnectionPool.PoolTimeout({
              server,
              max: 1,
              concurrency: 1,
              waitedMillis: 10,
              open: 1,
              connecting: 0
            })
          })
      }
    })
  return { attempts, next }
}

/**
 * A test of the stage over a scripted upstream; the stage's layer lives as long as the test, and records its metrics
 * through `recorder`.
 */
const unit = <A, E>(
  name: string,
  body: (recorder: MetricsRecorder.MetricsRecorder.Service) => Effect.Effect<A, E, Resilience.Resilience>,
  options?: Resilience.Options
) =>
  it.effect(name, () =>
    Effect.suspend(() => {
      const recorder = MetricsRecorder.make()
      return Effect.provide(
        body(recorder),
        Resilience.layer(options).pipe(Layer.provide(Layer.succeed(MetricsRecorder.MetricsRecorder, recorder)))
      )
    }))

const errorOf = (exit: Exit.Exit<unknown, unknown>) => {
  assert.isTrue(Exit.isFailure(exit))
  const found = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
  assert.strictEqual(found?._tag, "Some")
  return (found as { value: McpBridge.CallError }).value
}

const safeTool = { tools: { t: { readOnly: true } } }

describe("Resilience", () => {
  unit("retries transient failures of a safe call with exponential backoff and jitter", () =>
    Effect.gen(function*() {
      const config = yield* configOf({
        s: { ...safeTool, retry: { times: 3, base: "100 millis", maxDelay: "250 millis" }, circuitBreaker: false }
      })
      const { attempts, next } = scripted({ s: ["closed", "timeout", "connect", "ok"] })
      const caller = (yield* Resilience.Resilience).wrap(next)
      const fiber = yield* Effect.forkChild(caller(requestOf(config, "s", "t")))
      yield* TestClock.adjust("79 millis")
      assert.strictEqual(attempts.s!.length, 1)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(fiber), ok)
      const [a0, a1, a2, a3] = attempts.s!
      assert.deepStrictEqual([a0, attempts.s!.length], [0, 4])
      // 100 ms ± 20 %, then 200 ms ± 20 %, then 400 ms capped at 250 ms, ± 20 % (capped delays stay spread out).
      assert.isTrue(a1! >= 79.999 && a1! <= 120.001, `first backoff ${a1}`)
      assert.isTrue(a2! - a1! >= 159.999 && a2! - a1! <= 240.001, `second backoff ${a2! - a1!}`)
      assert.isTrue(a3! - a2! >= 199.999 && a3! - a2! <= 300.001, `third backoff ${a3! - a2!}`)
    }))

  unit("stops after `times` retries with the last failure", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { ...safeTool, retry: { times: 2 }, circuitBreaker: false } })
      const { attempts, next } = scripted({ s: ["closed"] })
      const caller = (yield* Resilience.Resilience).wrap(next)
      const fiber = yield* Effect.forkChild(Effect.exit(caller(requestOf(config, "s", "t"))))
      yield* TestClock.adjust("10 seconds")
      const error = errorOf(yield* Fiber.join(fiber))
      assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "Closed")
      assert.strictEqual(attempts.s!.length, 3)
    }))

  unit("retries only safe calls, only transient failures, never an isError result", () =>
    Effect.gen(function*() {
      const config = yield* configOf({
        write: { retry: { times: 3 }, circuitBreaker: false },
        tool: { ...safeTool, retry: { times: 3 }, circuitBreaker: false },
        bad: { ...safeTool, retry: { times: 3 }, circuitBreaker: false },
        busy: { ...safeTool, retry: { times: 3 }, circuitBreaker: false },
        limited: { ...safeTool, retry: { times: 3 }, circuitBreaker: false },
        off: { ...safeTool, retry: false, circuitBreaker: false }
      })
      const { attempts, next } = scripted({
        write: ["closed", "ok"],
        tool: ["isError", "ok"],
        bad: ["protocol", "ok"],
        busy: ["poolTimeout", "ok"],
        limited: ["429", "ok"],
        off: ["closed", "ok"]
      })
      const caller = (yield* Resilience.Resilience).wrap(next)
      const fiber = yield* Effect.forkChild(
        Effect.forEach(
          ["write", "tool", "bad", "busy", "limited", "off"],
          (server) => Effect.exit(caller(requestOf(config, server, "t"))),
          { concurrency: "unbounded" }
        )
      )
      yield* TestClock.adjust("10 seconds")
      const [write, tool, bad, busy, limited, off] = yield* Fiber.join(fiber)
      assert.isTrue(Exit.isFailure(write!))
      assert.deepStrictEqual(tool, Exit.succeed(toolError))
      assert.isTrue(Exit.isFailure(bad!))
      assert.isTrue(Exit.isFailure(busy!))
      assert.deepStrictEqual(limited, Exit.succeed(ok))
      assert.isTrue(Exit.isFailure(off!))
      assert.deepStrictEqual(
        Object.fromEntries(Object.entries(attempts).map(([server, times]) => [server, times.length])),
        { write: 1, tool: 1, bad: 1, busy: 1, limited: 2, off: 1 }
      )
    }))

  unit("a retry budget keeps retries from multiplying load during an outage", () =>
    Effect.gen(function*() {
      const config = yield* configOf({
        s: { ...safeTool, retry: { times: 2, budget: 0.2 }, circuitBreaker: false }
      })
      const { attempts, next } = scripted({ s: ["closed"] })
      const caller = (yield* Resilience.Resilience).wrap(next)
      const fiber = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 10 }), () => Effect.exit(caller(requestOf(config, "s", "t"))))
      )
      yield* TestClock.adjust("1 minute")
      const exits = yield* Fiber.join(fiber)
      assert.isTrue(exits.every(Exit.isFailure))
      // The reserve (2) pays the first call's two retries; then each call adds 0.2 of a retry: one more by call 6.
      assert.strictEqual(attempts.s!.length, 10 + 3)
    }), { retryReserve: 2 })

  unit("the breaker opens after consecutive failures and fails fast with CircuitOpen", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { retry: false, circuitBreaker: { failures: 3, openFor: "30 seconds" } } })
      const { attempts, next } = scripted({ s: ["closed", "closed", "closed", "ok"] })
      const caller = (yield* Resilience.Resilience).wrap(next)
      const request = requestOf(config, "s", "t")
      for (let i = 0; i < 3; i++) {
        const error = errorOf(yield* Effect.exit(caller(request)))
        assert.strictEqual(error._tag, "McpSessionError")
      }
      const open = errorOf(yield* Effect.exit(caller(request)))
      assert.isTrue(open._tag === "ResilienceError" && open.reason._tag === "CircuitOpen")
      assert.strictEqual((open as Resilience.ResilienceError).reason.server, "s")
      assert.strictEqual((open as Resilience.ResilienceError).reason.retryAfterMillis, 30_000)
      assert.strictEqual(attempts.s!.length, 3)
      yield* TestClock.adjust("10 seconds")
      const later = errorOf(yield* Effect.exit(caller(request))) as Resilience.ResilienceError
      assert.strictEqual(later.reason.retryAfterMillis, 20_000)
      assert.strictEqual(attempts.s!.length, 3)
    }), { firstOpenFor: "30 seconds" })

  unit(
    "the open period backs off: 250 ms first, doubled after each failed probe, up to openFor",
    () =>
      Effect.gen(function*() {
        const config = yield* configOf({ s: { retry: false, circuitBreaker: { failures: 2, openFor: "1 second" } } })
        const { attempts, next } = scripted({ s: ["closed", "closed", "closed", "closed", "closed", "ok"] })
        const caller = (yield* Resilience.Resilience).wrap(next)
        const request = requestOf(config, "s", "t")
        const openFor = Effect.map(Effect.exit(caller(request)), (exit) => {
          const error = errorOf(exit)
          return error._tag === "ResilienceError" ? error.reason.retryAfterMillis : error._tag
        })
        yield* Effect.exit(caller(request))
        yield* Effect.exit(caller(request))
        const periods: Array<unknown> = [yield* openFor]
        // Each period ends with one probe call, which fails and opens the circuit for twice as long (at most openFor).
        for (const wait of [250, 500, 1000]) {
          yield* TestClock.adjust(wait)
          assert.strictEqual(errorOf(yield* Effect.exit(caller(request)))._tag, "McpSessionError")
          periods.push(yield* openFor)
        }
        assert.deepStrictEqual(periods, [250, 500, 1000, 1000])
        assert.strictEqual(attempts.s!.length, 5)
        // The next probe succeeds: the circuit closes.
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(yield* caller(request), ok)
        assert.deepStrictEqual(yield* caller(request), ok)
      })
  )

  unit("a success between failures resets the count of consecutive failures", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { retry: false, circuitBreaker: { failures: 3, openFor: "30 seconds" } } })
      const { attempts, next } = scripted({ s: ["closed", "closed", "ok", "closed", "closed", "ok", "closed"] })
      const caller = (yield* Resilience.Resilience).wrap(next)
      const request = requestOf(config, "s", "t")
      const tags = []
      for (let i = 0; i < 9; i++) {
        const exit = yield* Effect.exit(caller(request))
        tags.push(Exit.isSuccess(exit) ? "ok" : errorOf(exit)._tag)
      }
      // Three failures in a row only at the 7th, 8th and 9th attempts: then the circuit opens.
      assert.deepStrictEqual(tags, [
        "McpSessionError",
        "McpSessionError",
        "ok",
        "McpSessionError",
        "McpSessionError",
        "ok",
        "McpSessionError",
        "McpSessionError",
        "McpSessionError"
      ])
      assert.strictEqual(errorOf(yield* Effect.exit(caller(request)))._tag, "ResilienceError")
      assert.strictEqual(attempts.s!.length, 9)
    }))

  unit("with failureRate, the circuit opens when that share of the last window failed", () =>
    Effect.gen(function*() {
      const config = yield* configOf({
        s: { retry: false, circuitBreaker: { failureRate: 0.5, window: 4, failures: 4, openFor: "10 seconds" } }
      })
      const { attempts, next } = scripted({ s: ["ok", "closed", "ok", "closed", "ok"] })
      const caller = (yield* Resilience.Resilience).wrap(next)
      const request = requestOf(config, "s", "t")
      for (let i = 0; i < 4; i++) yield* Effect.exit(caller(request))
      const open = errorOf(yield* Effect.exit(caller(request)))
      assert.isTrue(open._tag === "ResilienceError" && open.reason._tag === "CircuitOpen")
      assert.strictEqual(attempts.s!.length, 4)
    }))

  it.effect("layerStore keeps circuits in the store it is given", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { retry: false, circuitBreaker: { failures: 2, openFor: "10 seconds" } } })
      const { attempts, next } = scripted({ s: ["closed"] })
      const caller = (yield* Resilience.Resilience).wrap(next)
      const request = requestOf(config, "s", "t")
      yield* Effect.exit(caller(request))
      yield* Effect.exit(caller(request))
      const open = errorOf(yield* Effect.exit(caller(request)))
      assert.isTrue(open._tag === "ResilienceError" && open.reason._tag === "CircuitOpen")
      assert.strictEqual(attempts.s!.length, 2)
    }).pipe(Effect.provide(Resilience.layerStore().pipe(Layer.provide(CircuitBreaker.layerStoreMemory())))))

  unit(
    "half-open: one probe goes through, others fail fast; a good probe closes the circuit",
    (recorder) =>
      Effect.gen(function*() {
        const config = yield* configOf({ s: { retry: false, circuitBreaker: { failures: 2, openFor: "5 seconds" } } })
        const gate = yield* Deferred.make<void>()
        const { attempts, next } = scripted({ s: ["closed", "closed", "gate", "ok"] }, gate)
        const caller = (yield* Resilience.Resilience).wrap(next)
        const request = requestOf(config, "s", "t")
        yield* Effect.exit(caller(request))
        yield* Effect.exit(caller(request))
        yield* TestClock.adjust("5 seconds")
        const probe = yield* Effect.forkChild(caller(request))
        yield* Effect.yieldNow
        const rejected = errorOf(yield* Effect.exit(caller(request))) as Resilience.ResilienceError
        assert.strictEqual(rejected.reason._tag, "CircuitOpen")
        assert.isTrue(rejected.reason.halfOpen)
        yield* Deferred.succeed(gate, undefined)
        assert.deepStrictEqual(yield* Fiber.join(probe), ok)
        assert.deepStrictEqual(yield* caller(request), ok)
        assert.strictEqual(attempts.s!.length, 4)
        // Telemetry sees the transitions: closed → open → half-open → closed, and the state gauge is back at 0.
        yield* Effect.yieldNow
        const series = recorder.snapshot().filter((m) => m.id.startsWith("mcp_bridge.circuit_breaker."))
        const transitions = series.filter((m) => m.id === "mcp_bridge.circuit_breaker.transitions").map((m) => {
          const a = m.attributes as Record<string, string>
          return `${a["mcp_bridge.circuit_breaker.from"]}->${a["mcp_bridge.circuit_breaker.to"]}`
        })
        assert.deepStrictEqual(transitions.sort(), ["closed->open", "half_open->closed", "open->half_open"])
        const state = series.find((m) => m.id === "mcp_bridge.circuit_breaker.state")!
        assert.strictEqual((state.state as { value: number }).value, 0)
        assert.strictEqual(counterValue(series, "mcp_bridge.circuit_breaker.transitions"), 3)
      })
  )

  unit("a failed probe opens the circuit again", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { retry: false, circuitBreaker: { failures: 1, openFor: "5 seconds" } } })
      const { attempts, next } = scripted({ s: ["timeout", "timeout", "ok"] })
      const caller = (yield* Resilience.Resilience).wrap(next)
      const request = requestOf(config, "s", "t")
      yield* Effect.exit(caller(request))
      yield* TestClock.adjust("5 seconds")
      const probe = errorOf(yield* Effect.exit(caller(request)))
      assert.strictEqual(probe._tag, "McpSessionError")
      const open = errorOf(yield* Effect.exit(caller(request))) as Resilience.ResilienceError
      assert.strictEqual(open.reason._tag, "CircuitOpen")
      assert.isUndefined(open.reason.halfOpen)
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(yield* caller(request), ok)
      assert.strictEqual(attempts.s!.length, 3)
    }))

  unit("isError results, JSON-RPC errors and interruptions do not open the circuit", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { retry: false, circuitBreaker: { failures: 1 } } })
      const gate = yield* Deferred.make<void>()
      const { next } = scripted({ s: ["isError", "protocol", "gate", "closed"] }, gate)
      const caller = (yield* Resilience.Resilience).wrap(next)
      const request = requestOf(config, "s", "t")
      assert.deepStrictEqual(yield* caller(request), toolError)
      assert.strictEqual(errorOf(yield* Effect.exit(caller(request)))._tag, "McpSessionError")
      const interrupted = yield* Effect.forkChild(caller(request))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(interrupted)
      // Still closed: this call reaches the server (and its failure opens the circuit).
      const error = errorOf(yield* Effect.exit(caller(request)))
      assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "Closed")
      assert.strictEqual(errorOf(yield* Effect.exit(caller(request)))._tag, "ResilienceError")
    }))

  unit("an open circuit stops the retries of a call at once", () =>
    Effect.gen(function*() {
      const config = yield* configOf({ s: { ...safeTool, retry: { times: 5 }, circuitBreaker: { failures: 2 } } })
      const { attempts, next } = scripted({ s: ["closed"] })
      const caller = (yield* Resilience.Resilience).wrap(next)
      const fiber = yield* Effect.forkChild(Effect.exit(caller(requestOf(config, "s", "t"))))
      yield* TestClock.adjust("1 minute")
      const error = errorOf(yield* Fiber.join(fiber))
      assert.strictEqual(error._tag, "ResilienceError")
      assert.strictEqual(attempts.s!.length, 2)
    }))

  unit("one dead server's open circuit never touches calls to another", () =>
    Effect.gen(function*() {
      const config = yield* configOf({
        dead: { retry: false, circuitBreaker: { failures: 2 } },
        healthy: { retry: false, circuitBreaker: { failures: 2 } }
      })
      const { attempts, next } = scripted({ dead: ["connect"], healthy: ["ok"] })
      const caller = (yield* Resilience.Resilience).wrap(next)
      const results = yield* Effect.forEach(
        ["dead", "healthy", "dead", "healthy", "dead", "healthy", "dead", "healthy"],
        (server) => Effect.exit(caller(requestOf(config, server, "t")))
      )
      assert.deepStrictEqual(results.filter((_, i) => i % 2 === 1), [1, 2, 3, 4].map(() => Exit.succeed(ok)))
      const deadErrors = results.filter((_, i) => i % 2 === 0).map((exit) => errorOf(exit)._tag)
      assert.deepStrictEqual(deadErrors, ["McpSessionError", "McpSessionError", "ResilienceError", "ResilienceError"])
      assert.deepStrictEqual([attempts.dead!.length, attempts.healthy!.length], [2, 4])
    }))

  it.live("per-call deadlines: server default, tool override, call option; the request is cancelled on the wire", () =>
    Effect.gen(function*() {
      const servers = yield* TestBridge.TestServers
      const bridge = yield* McpBridge.McpBridge
      // A warm bridge (tool list fetched, session open): the calls' deadlines are spent on the wire, not on start-up.
      yield* bridge.listTools()
      const [byServer, byTool, byCall] = yield* Effect.all([
        Effect.flip(bridge.callTool("s.hang", {})),
        Effect.flip(bridge.callTool("s.hangs_briefly", {})),
        Effect.flip(bridge.callTool("s.hang", {}, { timeout: "50 millis" }))
      ], { concurrency: "unbounded" })
      // Without a call option, an attempt ends at its timeout (`Timeout`); with one, the call ends at its deadline.
      const timeoutOf = (e: unknown) =>
        e instanceof McpSessionError.McpSessionError && e.reason._tag === "Timeout"
          ? ["Timeout", e.reason.timeoutMillis]
          : e instanceof McpBridgeError.McpBridgeError && e.reason._tag === "DeadlineExceeded"
          ? ["DeadlineExceeded", e.reason.timeoutMillis]
          : e
      assert.deepStrictEqual([timeoutOf(byServer), timeoutOf(byTool), timeoutOf(byCall)], [
        ["Timeout", 400],
        ["Timeout", 100],
        ["DeadlineExceeded", 50]
      ])
      // Each timed-out request is cancelled on the wire: the server sees the three cancellations.
      const s = servers.s!
      yield* until(s, () => s.cancelled() === 3 && s.inFlight() === 0)
      assert.strictEqual(s.calls(), 3)
    }).pipe(
      Effect.provide(
        TestBridge.layerTest({
          s: {
            tools: [
              { name: "hang", respond: { kind: "hang" } },
              { name: "hangs_briefly", respond: { kind: "hang" } }
            ]
          }
        }, { bridge: { timeout: "400 millis", retry: false, tools: { hangs_briefly: { timeout: "100 millis" } } } })
      )
    ))

  it.live("a crashing tool that is safe to repeat is sent once more, on a fresh session, and not again", () =>
    Effect.gen(function*() {
      const servers = yield* TestBridge.TestServers
      const bridge = yield* McpBridge.McpBridge
      const error = errorOf(yield* Effect.exit(bridge.callTool("s.crash", {})))
      assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "Closed")
      // A call that killed its session twice is likely the cause: it is not sent a third time (whatever `retry`).
      assert.strictEqual(servers.s!.calls("crash"), 2)
      // Each attempt killed its session: the resend ran on a session of its own.
      const [stats] = yield* ConnectionPool.ConnectionPool.use((pool) => pool.stats)
      assert.strictEqual(stats?.created, 2)
    }).pipe(
      Effect.provide(
        TestBridge.layerTest({ s: { tools: [{ name: "crash", respond: { kind: "crash" } }] } }, {
          bridge: { retry: { times: 2, base: "5 millis" }, tools: { crash: { idempotent: true } } }
        })
      )
    ))
})
