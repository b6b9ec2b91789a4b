/**
 * Sessions that stop answering: a frozen child (SIGSTOP) gets no more calls after its
 * first timeout and is retired within the probe's deadline; retiring it never holds a caller past its deadline; a
 * call that is never answered times out at its deadline and costs nothing else.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Expect from "./expect.ts"
import {
  alive,
  connectMillis,
  failureOf,
  figure,
  kindOf,
  messageOf,
  now,
  pidOf,
  processesLeft,
  seconds,
  stdio,
  tally,
  timed,
  withBridge
} from "./harness.ts"

const tools = [{ name: "echo" }, { name: "hang", fault: { kind: "hang" as const } }]

interface Outcome {
  readonly kind: string
  readonly ms: number
  readonly pid: number | undefined
  readonly message: string
}

const outcome = (
  r: {
    readonly exit: import("effect").Exit.Exit<{ readonly structuredContent?: unknown }, unknown>
    readonly ms: number
  }
): Outcome => {
  const error = failureOf(r.exit)
  return {
    kind: kindOf(error),
    ms: r.ms,
    pid: r.exit._tag === "Success" ? pidOf(r.exit.value.structuredContent) : undefined,
    message: error === undefined ? "" : messageOf(error)
  }
}

// The first call opens the session: its deadline is the connect timeout's (15 s by default), not the 1 s deadline
// under test, which a loaded machine spends on spawning the child alone.
const warmUp = { timeout: "15 seconds" } as const

describe("freeze", () => {
  it.live(
    "freeze-sigstop: a frozen child gets no more calls after its first timeout and is retired",
    () =>
      Effect.gen(function*() {
        const unit = yield* connectMillis
        const config = { mcpServers: { s: stdio({ tools }, { bridge: { timeout: "1 second" } }) } }
        const result = yield* withBridge(config, (bridge, pool) =>
          Effect.gen(function*() {
            const frozen = pidOf((yield* bridge.callTool("s.echo", {}, warmUp)).structuredContent)
            process.kill(frozen, "SIGSTOP")
            const frozenAt = now()
            return yield* Effect.gen(function*() {
              const calls: Array<Outcome> = []
              // The first call finds the session frozen; the second opens a fresh child, so its deadline is the
              // connect's (the spawn is the machine's time, not the bridge's); the rest run on the 1 s deadline.
              for (let i = 0; i < 8; i++) {
                calls.push(outcome(yield* timed(bridge.callTool("s.echo", { i }, i === 1 ? warmUp : {}))))
              }
              // Retired: the pool invalidated the session, or its process is gone.
              let retiredMs: number | undefined
              while (now() - frozenAt < 9_000) {
                const stats = yield* pool.stats
                if (stats.some((s) => s.invalidated > 0) || !alive(frozen)) {
                  retiredMs = now() - frozenAt
                  break
                }
                yield* Effect.sleep("100 millis")
              }
              return { frozen, calls, retiredMs }
            }).pipe(Effect.ensuring(Effect.sync(() => alive(frozen) && process.kill(frozen, "SIGCONT"))))
          }))
        const left = yield* Effect.promise(() => processesLeft())
        const timeouts = result.calls.filter((c) => c.kind.endsWith("Timeout") || c.kind.endsWith("DeadlineExceeded"))
          .length
        const toFrozen = result.calls.filter((c) => c.kind !== "ok" || c.pid === result.frozen).length
        figure(
          "freeze-sigstop",
          `8 calls after SIGSTOP: ${tally(result.calls.map((c) => c.kind))}; ${toFrozen} not served by a live child; ` +
            `frozen session retired ${
              result.retiredMs === undefined ? "not within 9 s" : `after ${seconds(result.retiredMs)}`
            }, ${left} processes left`
        )
        assert.isAtMost(timeouts, 1, "only the first call finds the session frozen")
        assert.strictEqual(toFrozen, 1, "every later call is served by a live child")
        assert.isDefined(result.retiredMs, "the frozen session is retired")
        assert.isAtMost(
          result.retiredMs!,
          6_000 + unit,
          "within the first timeout plus the probe's deadline (5 s), plus one measured connect"
        )
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("45 seconds")),
    { timeout: 60_000 }
  )

  it.live(
    "deadline-frozen: retiring a frozen session never holds a 1 s call past its deadline",
    () =>
      Effect.gen(function*() {
        const unit = yield* connectMillis
        // A short lifetime makes the pool retire the frozen session while calls hold it.
        const config = {
          mcpServers: { s: stdio({ tools }, { bridge: { timeout: "1 second", pool: { maxLifetime: "2 seconds" } } }) }
        }
        const calls = yield* withBridge(config, (bridge) =>
          Effect.gen(function*() {
            const frozen = pidOf((yield* bridge.callTool("s.echo", {}, warmUp)).structuredContent)
            process.kill(frozen, "SIGSTOP")
            const frozenAt = now()
            return yield* Effect.gen(function*() {
              const calls: Array<Outcome> = []
              while (now() - frozenAt < 5_000 && calls.length < 8) {
                calls.push(outcome(yield* timed(bridge.callTool("s.echo", { n: calls.length }))))
              }
              return calls
            }).pipe(Effect.ensuring(Effect.sync(() => alive(frozen) && process.kill(frozen, "SIGCONT"))))
          }))
        const left = yield* Effect.promise(() => processesLeft())
        const longest = calls.reduce((a, b) => (b.ms > a.ms ? b : a))
        figure(
          "deadline-frozen",
          `${calls.length} calls of 1 s: ${tally(calls.map((c) => c.kind))}; longest ${
            seconds(longest.ms)
          } (${longest.kind}${
            longest.message === "" ? "" : `: "${longest.message.slice(0, 70)}"`
          }), ${left} processes left`
        )
        assert.isAtMost(longest.ms, 1_000 + unit, "no call outlives its 1 s deadline (plus one measured connect)")
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("45 seconds")),
    { timeout: 60_000 }
  )

  it.live(
    "hang-call: a call never answered times out at its deadline, the next call is served at once",
    () =>
      Effect.gen(function*() {
        const unit = yield* connectMillis
        const { hung, next } = yield* withBridge({ mcpServers: { s: stdio({ tools }) } }, (bridge) =>
          Effect.gen(function*() {
            yield* bridge.callTool("s.echo", {})
            const hung = yield* timed(bridge.callTool("s.hang", {}, { timeout: "1 second" }))
            const next = yield* timed(bridge.callTool("s.echo", {}))
            return { hung, next }
          }))
        const left = yield* Effect.promise(() =>
          processesLeft()
        )
        const error = failureOf(hung.exit)
        figure(
          "hang-call",
          `hung call ${kindOf(error)} after ${seconds(hung.ms)}, next call ${kindOf(failureOf(next.exit))} in ${
            seconds(next.ms)
          }, ${left} processes left`
        )
        assert.isTrue(Expect.isAnyTimeout(error), kindOf(error))
        assert.isAtMost(hung.ms, 1_000 + unit)
        assert.strictEqual(kindOf(failureOf(next.exit)), "ok")
        // Served without waiting: at most one connect (a replaced session), never another deadline.
        assert.isAtMost(next.ms, unit)
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("30 seconds")),
    { timeout: 60_000 }
  )
})
