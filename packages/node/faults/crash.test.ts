/**
 * stdio servers that die mid-call: one crash costs the calls it hit, never the server's circuit,
 * and a call that is safe to repeat is sent again once on a fresh process, not retried into more crashes.
 */
import { assert, describe, it } from "@effect/vitest"
import { FaultServer } from "@mcp-bridge/testing"
import { Effect } from "effect"
import * as Expect from "./expect.ts"
import {
  failureOf,
  figure,
  kindOf,
  now,
  processesLeft,
  seconds,
  stdio,
  tally,
  tempPath,
  timed,
  withBridge
} from "./harness.ts"

const CRASH = 99

describe("crash", () => {
  it.live(
    "crash-mid-call: the call fails Closed at once, the next call gets a fresh process",
    () =>
      Effect.gen(function*() {
        const pidLog = tempPath("pids")
        const spec: FaultServer.FaultServerSpec = {
          pidLog,
          tools: [{ name: "die", fault: { kind: "crash", exitCode: CRASH } }, { name: "echo" }]
        }
        const { crashed, next } = yield* withBridge({ mcpServers: { s: stdio(spec) } }, (bridge) =>
          Effect.gen(function*() {
            yield* bridge.callTool("s.echo", {})
            const crashed = yield* timed(bridge.callTool("s.die", {}))
            const next = yield* timed(bridge.callTool("s.echo", {}))
            return { crashed, next }
          }))
        const left = yield* Effect.promise(() =>
          processesLeft()
        )
        const error = failureOf(crashed.exit)
        figure(
          "crash-mid-call",
          `crashed call ${kindOf(error)} in ${seconds(crashed.ms)}, next call ${kindOf(failureOf(next.exit))} in ${
            seconds(next.ms)
          }, ${FaultServer.readPidLog(pidLog).started.length} processes started, ${left} processes left`
        )
        assert.isTrue(Expect.isClosed(error), `crashed call: ${kindOf(error)}`)
        assert.strictEqual(kindOf(failureOf(next.exit)), "ok")
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("40 seconds")),
    { timeout: 60_000 }
  )

  it.live(
    "crash-5-in-flight: 5 calls lost to one crash, the next 120 calls are served by a fresh process",
    () =>
      Effect.gen(function*() {
        const spec: FaultServer.FaultServerSpec = {
          tools: [
            // the 5th call in flight makes the process exit: the 5 are lost together
            { name: "work", fault: { kind: "crash", whenInFlight: 5, exitCode: CRASH } },
            { name: "echo" }
          ]
        }
        const result = yield* withBridge({ mcpServers: { s: stdio(spec) } }, (bridge) =>
          Effect.gen(function*() {
            yield* bridge.callTool("s.echo", {})
            const inFlight = yield* Effect.forEach(
              [1, 2, 3, 4, 5],
              (i) => Effect.map(Effect.exit(bridge.callTool("s.work", { i })), failureOf),
              { concurrency: "unbounded" }
            )
            const crashedAt = now()
            let firstOk: number | undefined
            const after = yield* Effect.forEach(
              Array.from({ length: 120 }, (_, i) => i),
              (i) =>
                Effect.map(Effect.exit(bridge.callTool("s.echo", { i })), (exit) => {
                  const error = failureOf(exit)
                  if (error === undefined && firstOk === undefined) firstOk = now()
                  return error
                }),
              { concurrency: 4 }
            )
            return { inFlight, after, recoveredMs: firstOk === undefined ? undefined : firstOk - crashedAt }
          }))
        const left = yield* Effect.promise(() => processesLeft())
        const lost = result.after.filter((e) => e !== undefined).length
        figure(
          "crash-5-in-flight",
          `in flight: ${tally(result.inFlight.map(kindOf))}; next 120: ${tally(result.after.map(kindOf))}; ` +
            `recovered in ${
              result.recoveredMs === undefined ? "never" : seconds(result.recoveredMs)
            }, ${lost} later calls lost, ${left} processes left`
        )
        assert.isTrue(result.inFlight.every(Expect.isClosed), "the 5 calls in flight fail Closed")
        assert.strictEqual(lost, 0, "one crash must not open the circuit: the next 120 calls are served")
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("40 seconds")),
    { timeout: 60_000 }
  )

  it.live(
    "crash-read-only: a read-only call that kills its process is sent again once, not retried into 3 crashes",
    () =>
      Effect.gen(function*() {
        const pidLog = tempPath("pids")
        const spec: FaultServer.FaultServerSpec = {
          pidLog,
          tools: [{ name: "poison", fault: { kind: "crash", exitCode: CRASH } }]
        }
        const config = {
          mcpServers: { s: stdio(spec, { bridge: { tools: { poison: { readOnly: true, cache: false } } } }) }
        }
        const { ms, exit } = yield* withBridge(config, (bridge) => timed(bridge.callTool("s.poison", {})))
        const left = yield* Effect.promise(() => processesLeft())
        const log = FaultServer.readPidLog(pidLog)
        const crashed = [...log.exited.values()].filter((code) => code === CRASH).length
        figure(
          "crash-read-only",
          `1 call: ${kindOf(failureOf(exit))} after ${
            seconds(ms)
          }, ${crashed} processes crashed, ${log.started.length} started, ${left} processes left`
        )
        assert.isTrue(Expect.isClosed(failureOf(exit)), kindOf(failureOf(exit)))
        assert.isAtMost(crashed, 2, "at most the first attempt and one resend on a fresh process")
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("40 seconds")),
    { timeout: 60_000 }
  )
})
