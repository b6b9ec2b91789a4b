/**
 * Per-identity pools: a cold burst of 50 identities is served in arrival order, with at most one process per identity,
 * beside a warm identity that keeps its session and is never failed; identities that are not strings never share a session or a cached
 * result (they are rejected as `InvalidCall`, or encoded canonically).
 */
import { assert, describe, it } from "@effect/vitest"
import { CallerIdentity } from "@mcp-bridge/core"
import { FaultServer } from "@mcp-bridge/testing"
import { Effect, Fiber } from "effect"
import * as Expect from "./expect.ts"
import {
  descendants,
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
  tempPath,
  withBridge
} from "./harness.ts"

describe("identity", () => {
  it.live(
    "cold-identities-50: 50 new identities at once on per-identity pools of max 1 are all served, beside a warm one",
    () =>
      Effect.gen(function*() {
        const pidLog = tempPath("pids")
        const config = {
          mcpServers: {
            // calls' deadlines far above what 51 spawns take on a slow machine: what is tested is who gets served
            s: stdio({ pidLog, tools: [{ name: "echo" }] }, {
              bridge: { pool: { isolation: "per-identity", max: 1 }, timeout: "4 minutes" }
            })
          }
        }
        const start = now()
        let peak = 0
        const result = yield* withBridge(config, (bridge) =>
          Effect.gen(function*() {
            // a warm identity: its session open, then calls back to back while the cold burst arrives
            const warmCall = bridge.callTool("s.echo", { warm: true }).pipe(
              Effect.provideService(CallerIdentity, "warm")
            )
            const first = yield* warmCall
            let burstDone = false
            const warmPids = new Set<number>([pidOf(first.structuredContent)])
            const warmMillis: Array<number> = []
            const warm = yield* Effect.forkChild(Effect.gen(function*() {
              const failures: Array<unknown> = []
              while (!burstDone) {
                const t = now()
                const exit = yield* Effect.exit(warmCall)
                warmMillis.push(now() - t)
                if (exit._tag === "Success") warmPids.add(pidOf(exit.value.structuredContent))
                else failures.push(failureOf(exit))
              }
              return failures
            }))
            const sampler = yield* Effect.forkChild(
              Effect.forever(Effect.andThen(
                Effect.sync(() => {
                  peak = Math.max(peak, descendants().length)
                }),
                Effect.sleep("50 millis")
              ))
            )
            const errors = yield* Effect.forEach(
              Array.from({ length: 50 }, (_, i) => `tenant-${i}`),
              (identity) =>
                Effect.map(
                  Effect.exit(
                    bridge.callTool("s.echo", { identity }).pipe(
                      Effect.provideService(CallerIdentity, identity)
                    )
                  ),
                  failureOf
                ),
              { concurrency: "unbounded" }
            )
            burstDone = true
            const warmFailures = yield* Fiber.join(warm)
            yield* Fiber.interrupt(sampler)
            return { errors, warmFailures, warmPids, warmMillis }
          }))
        const ms = now() - start
        const left = yield* Effect.promise(() => processesLeft(10_000))
        const started = FaultServer.readPidLog(pidLog).started.length
        const failed = result.errors.filter((e) => e !== undefined)
        const sample = failed[0] === undefined ? "" : ` (e.g. "${messageOf(failed[0]).slice(0, 90)}")`
        const sorted = [...result.warmMillis].sort((a, b) => a - b)
        const p50 = sorted[Math.floor(sorted.length / 2)] ?? 0
        figure(
          "cold-identities-50",
          `${50 - failed.length}/50 served in ${seconds(ms)}: ${
            tally(result.errors.map(kindOf))
          }${sample}; ${started} processes started, peak ${peak} alive, ${left} processes left; the warm identity: ${sorted.length} calls during the burst, ${result.warmFailures.length} failed, p50 ${
            p50.toFixed(0)
          } ms, slowest ${(sorted.at(-1) ?? 0).toFixed(0)} ms, on ${result.warmPids.size} process(es)`
        )
        assert.strictEqual(failed.length, 0, "every caller of a cold burst waits for its session")
        assert.deepStrictEqual(result.warmFailures, [], "the warm identity's calls all succeed")
        assert.strictEqual(result.warmPids.size, 1, "the warm identity keeps its one session through the burst")
        // 51 sessions, plus at most one probe sibling: a cold burst negotiates the protocol era once per server
        assert.isAtMost(started, 52, "one process per identity, plus one era probe")
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("5 minutes")),
    { timeout: 330_000 }
  )

  it(
    "identity-non-string: { tenant: 'a' } and { tenant: 'b' } (and 1 and '1') never share a session or a result",
    async () => {
      const config = {
        mcpServers: {
          s: stdio({ tools: [{ name: "whoami" }] }, {
            bridge: { pool: { isolation: "per-identity" }, tools: { whoami: { cache: "1 minute" } } }
          })
        }
      }
      const bridge = await Expect.createBridge(config)
      const call = async (identity: unknown) => {
        try {
          const result = await bridge.callTool("s.whoami", {}, { identity: identity as string })
          return { pid: pidOf(result.structuredContent), error: undefined }
        } catch (error) {
          return { pid: undefined, error }
        }
      }
      const pairs: Array<readonly [unknown, unknown, string]> = [
        [{ tenant: "a" }, { tenant: "b" }, "{tenant:a}/{tenant:b}"],
        [1, "1", "1/\"1\""],
        [["a"], ["b"], "[a]/[b]"]
      ]
      const outcomes: Array<
        { readonly label: string; readonly shared: boolean; readonly text: string; readonly typed: boolean }
      > = []
      try {
        for (const [a, b, label] of pairs) {
          const x = await call(a)
          const y = await call(b)
          const shared = x.pid !== undefined && x.pid === y.pid
          // a rejection is only right as an InvalidCall at options.identity (a string side may well succeed)
          const typed = [x, y].every((r, i) =>
            r.error === undefined ? true : Expect.isIdentityRejected(r.error) && typeof [a, b][i] !== "string"
          )
          outcomes.push({
            label,
            shared,
            typed,
            text: `${label}: ${
              shared ? `shared one session and result (pid ${x.pid})` : `${kindOf(x.error)} / ${kindOf(y.error)}`
            }`
          })
        }
      } finally {
        await bridge.close()
      }
      const left = await processesLeft()
      figure("identity-non-string", `${outcomes.map((o) => o.text).join("; ")}; ${left} processes left`)
      for (const o of outcomes) {
        assert.isFalse(o.shared, `${o.label} must not share a session or a cached result`)
        assert.isTrue(o.typed, `${o.label}: a non-string identity is rejected as InvalidCall at options.identity`)
      }
      assert.strictEqual(left, 0)
    },
    60_000
  )
})
