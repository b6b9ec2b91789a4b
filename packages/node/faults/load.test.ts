/**
 * Load: 10,000 concurrent callers on a pool of 20 lose nothing; a rate limit of N per second never lets more than N calls reach the server in any sliding second,
 * under 500 concurrent callers, with no call refused while waiting is allowed; an in-flight limit refuses with a
 * typed `ConcurrencyLimited`.
 */
import { assert, describe, it } from "@effect/vitest"
import { FaultServer } from "@mcp-bridge/testing"
import { Effect, Fiber } from "effect"
import * as Expect from "./expect.ts"
import {
  descendants,
  failureOf,
  figure,
  kindOf,
  now,
  processesLeft,
  seconds,
  slidingPeak,
  statsOf,
  stdio,
  tally,
  tempPath,
  withBridge
} from "./harness.ts"

describe("load", () => {
  it.live(
    "callers-10k-pool-20: 10,000 concurrent callers on a pool of 20 sessions, 0 errors",
    () =>
      Effect.gen(function*() {
        const pidLog = tempPath("pids")
        // What is under test is that nothing is lost, not how fast this machine drains 10,000 calls: the waits are far
        // longer than any run took (11-25 s here), where the defaults (10 s in the pool's queue, 60 s a call) would
        // refuse the last waiters of a slow run, as they should.
        const config = {
          mcpServers: {
            s: stdio({ pidLog, tools: [{ name: "echo" }] }, {
              bridge: { deadline: "120 seconds", pool: { max: 20, acquireTimeout: "120 seconds" } }
            })
          }
        }
        let peakRss = 0
        let peakProcesses = 0
        const start = now()
        const errors = yield* withBridge(config, (bridge) =>
          Effect.gen(function*() {
            const sampler = yield* Effect.forkChild(Effect.forever(Effect.andThen(
              Effect.sync(() => {
                peakRss = Math.max(peakRss, process.memoryUsage().rss)
                peakProcesses = Math.max(peakProcesses, descendants().length)
              }),
              Effect.sleep("200 millis")
            )))
            const errors = yield* Effect.forEach(
              Array.from({ length: 10_000 }, (_, i) => i),
              (i) => Effect.map(Effect.exit(bridge.callTool("s.echo", { i })), failureOf),
              { concurrency: "unbounded" }
            )
            yield* Fiber.interrupt(sampler)
            return errors
          }))
        const ms = now() - start
        const left = yield* Effect.promise(() => processesLeft(10_000))
        const failed = errors.filter((e) => e !== undefined)
        figure(
          "callers-10k-pool-20",
          `10000 calls in ${seconds(ms)}: ${tally(errors.map(kindOf))}; ${
            FaultServer.readPidLog(pidLog).started.length
          } processes started, peak ${peakProcesses} alive; peak RSS of the bridge process ${
            Math.round(peakRss / 1024 / 1024)
          } MB; ${left} processes left`
        )
        assert.strictEqual(failed.length, 0)
        assert.isAtMost(peakProcesses, 21, "the pool bounds the processes (20, plus a probe while the first opens)")
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("150 seconds")),
    { timeout: 170_000 }
  )

  it.live(
    "rate-limit-window: perSecond 100 under 500 concurrent callers: at most 100 in any sliding second",
    () =>
      Effect.gen(function*() {
        const limit = 100
        const config = {
          mcpServers: {
            s: stdio({ tools: [{ name: "echo" }] }, { bridge: { pool: { max: 1 }, throttle: { perSecond: limit } } })
          }
        }
        const start = now()
        const { errors, times } = yield* withBridge(config, (bridge) =>
          Effect.gen(function*() {
            const errors = yield* Effect.forEach(
              Array.from({ length: 500 }, (_, i) => i),
              (i) => Effect.map(Effect.exit(bridge.callTool("s.echo", { i })), failureOf),
              { concurrency: "unbounded" }
            )
            // __stats is throttled too: it takes one more token, after the 500
            const stats = statsOf((yield* bridge.callTool("s.__stats", {})).structuredContent)
            return { errors, times: stats.callTimes.echo ?? [] }
          }))
        const ms = now() - start
        const left = yield* Effect.promise(() => processesLeft())
        const peak = slidingPeak(times, 1_000)
        figure(
          "rate-limit-window",
          `500 callers, limit ${limit}/s: ${tally(errors.map(kindOf))} in ${
            seconds(ms)
          }; the server saw ${times.length} calls, peak ${peak} in a sliding second; ${left} processes left`
        )
        assert.strictEqual(errors.filter((e) => e !== undefined).length, 0, "no call refused while waiting is allowed")
        assert.isAtMost(peak, limit, "never more than the limit in any sliding window of its length")
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("60 seconds")),
    { timeout: 90_000 }
  )

  it.live(
    "concurrency-limit-typed: an in-flight limit that runs out of waiting time refuses with ConcurrencyLimited",
    () =>
      Effect.gen(function*() {
        const config = {
          mcpServers: {
            s: stdio({ tools: [{ name: "slow", latencyMs: 1_000 }] }, {
              bridge: { throttle: { concurrency: 2, maxWait: "200 millis" } }
            })
          }
        }
        const errors = yield* withBridge(config, (bridge) =>
          Effect.forEach(
            [1, 2, 3, 4, 5, 6],
            (i) => Effect.map(Effect.exit(bridge.callTool("s.slow", { i })), failureOf),
            { concurrency: "unbounded" }
          ))
        const left = yield* Effect.promise(() => processesLeft())
        const refused = errors.filter((e) => e !== undefined)
        figure(
          "concurrency-limit-typed",
          `6 callers, 2 in flight: ${tally(errors.map(kindOf))}; ${left} processes left`
        )
        assert.strictEqual(refused.length, 4)
        assert.isTrue(refused.every(Expect.isConcurrencyLimited), tally(refused.map(kindOf)))
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("30 seconds")),
    { timeout: 60_000 }
  )
})
