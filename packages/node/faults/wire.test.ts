/**
 * Wire robustness over stdio: a garbage line, a half line, an answer with a wrong id affect no
 * other request; a result over the size limit fails with a typed error that names the limit.
 *
 * Every scenario uses one session (`pool.max: 1`), so that the innocent call shares the wire with the faulty one.
 */
import { assert, describe, it } from "@effect/vitest"
import type { FaultServer } from "@mcp-bridge/testing"
import { Effect, Fiber } from "effect"
import * as Expect from "./expect.ts"
import {
  failureOf,
  figure,
  kindOf,
  messageOf,
  pidOf,
  processesLeft,
  seconds,
  stdio,
  timed,
  withBridge
} from "./harness.ts"

const config = {
  mcpServers: { s: stdio({ tools: [{ name: "echo" }] }, { bridge: { pool: { max: 1 }, retry: false } }) }
}

/**
 * Call A carries `fault`; call B (innocent, same session) starts 100 ms later. Returns both outcomes and whether B
 * was served by the same process as a call made before A.
 */
const faultyThenInnocent = (fault: FaultServer.Fault, timeout = 1_500) =>
  withBridge(config, (bridge) =>
    Effect.gen(function*() {
      const before = pidOf((yield* bridge.callTool("s.echo", {})).structuredContent)
      const a = yield* Effect.forkChild(timed(bridge.callTool("s.echo", { __fault: fault }, { timeout })))
      yield* Effect.sleep("100 millis")
      const b = yield* timed(bridge.callTool("s.echo", { innocent: true }, { timeout }))
      const aResult = yield* Fiber.join(a)
      const bPid = b.exit._tag === "Success" ? pidOf(b.exit.value.structuredContent) : undefined
      return { a: aResult, b, sameSession: bPid === before }
    }))

const describeCall = (r: { readonly exit: import("effect").Exit.Exit<unknown, unknown>; readonly ms: number }) =>
  `${kindOf(failureOf(r.exit))} in ${seconds(r.ms)}`

describe("wire", () => {
  it.live("half-line-never: half a line that is never completed costs only its own call", () =>
    Effect.gen(function*() {
      const r = yield* faultyThenInnocent({ kind: "halfLine" })
      const left = yield* Effect.promise(() => processesLeft())
      figure(
        "half-line-never",
        `faulty call ${describeCall(r.a)}; innocent call ${describeCall(r.b)}; ${left} processes left`
      )
      assert.strictEqual(kindOf(failureOf(r.b.exit)), "ok", "the innocent call is answered")
      assert.strictEqual(left, 0)
    }).pipe(Effect.timeout("30 seconds")), { timeout: 60_000 })

  it.live(
    "half-line-later: half a line completed 300 ms later delays, and loses, nothing",
    () =>
      Effect.gen(function*() {
        const r = yield* faultyThenInnocent({ kind: "halfLine", restAfterMs: 300 })
        const left = yield* Effect.promise(() => processesLeft())
        figure(
          "half-line-later",
          `faulty call ${describeCall(r.a)}; innocent call ${describeCall(r.b)}; ${left} processes left`
        )
        assert.strictEqual(kindOf(failureOf(r.a.exit)), "ok")
        assert.strictEqual(kindOf(failureOf(r.b.exit)), "ok")
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("30 seconds")),
    { timeout: 60_000 }
  )

  it.live(
    "garbage-line: a line that is not JSON-RPC is skipped, both calls are answered",
    () =>
      Effect.gen(function*() {
        const r = yield* faultyThenInnocent({ kind: "garbage" })
        const left = yield* Effect.promise(() => processesLeft())
        figure(
          "garbage-line",
          `faulty call ${describeCall(r.a)}; innocent call ${
            describeCall(r.b)
          }, same session: ${r.sameSession}; ${left} processes left`
        )
        assert.strictEqual(kindOf(failureOf(r.a.exit)), "ok")
        assert.strictEqual(kindOf(failureOf(r.b.exit)), "ok")
        assert.isTrue(r.sameSession, "the session survives a garbage line")
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("30 seconds")),
    { timeout: 60_000 }
  )

  it.live(
    "wrong-id: an answer with an unknown id costs its own call only, the session stays",
    () =>
      Effect.gen(function*() {
        const r = yield* faultyThenInnocent({ kind: "wrongId" }, 1_000)
        const left = yield* Effect.promise(() => processesLeft())
        figure(
          "wrong-id",
          `faulty call ${describeCall(r.a)}; innocent call ${
            describeCall(r.b)
          }, same session: ${r.sameSession}; ${left} processes left`
        )
        assert.isTrue(Expect.isAnyTimeout(failureOf(r.a.exit)), kindOf(failureOf(r.a.exit)))
        assert.strictEqual(kindOf(failureOf(r.b.exit)), "ok")
        assert.isTrue(r.sameSession)
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("30 seconds")),
    { timeout: 60_000 }
  )

  it.live(
    "oversized: a 33 MiB result fails with a typed error naming the (default 32 MiB) limit; 11 MiB passes; the next call is served",
    () =>
      Effect.gen(function*() {
        const r = yield* withBridge(config, (bridge) =>
          Effect.gen(function*() {
            yield* bridge.callTool("s.echo", {})
            const fits = yield* timed(
              bridge.callTool("s.echo", { __fault: { kind: "oversized", bytes: 11 * 1024 * 1024 } })
            )
            const big = yield* timed(
              bridge.callTool("s.echo", { __fault: { kind: "oversized", bytes: 33 * 1024 * 1024 } }, {
                timeout: 10_000
              })
            )
            const next = yield* timed(bridge.callTool("s.echo", {}))
            return { fits, big, next }
          }))
        const left = yield* Effect.promise(() => processesLeft())
        const error = failureOf(r.big.exit)
        figure(
          "oversized",
          `11 MiB: ${describeCall(r.fits)}; 33 MiB: ${describeCall(r.big)} ("${
            messageOf(error).slice(0, 90)
          }"); next call ${describeCall(r.next)}; ${left} processes left`
        )
        assert.strictEqual(
          kindOf(failureOf(r.fits.exit)),
          "ok",
          "an 11 MiB result (over the SDK's 10 MB) fits the default limit"
        )
        assert.isTrue(Expect.isMessageTooLarge(error), `a typed error naming the limit: ${kindOf(error)}`)
        assert.strictEqual(kindOf(failureOf(r.next.exit)), "ok")
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("40 seconds")),
    { timeout: 60_000 }
  )
})
