/**
 * A call's timeout bounds the call: a server that never answers the handshake costs a 1 s call
 * 1 s, with an error that names the phase; a Streamable HTTP server killed while it streams an SSE answer fails the
 * call when the stream breaks, not at the call's deadline.
 */
import { assert, describe, it } from "@effect/vitest"
import { FaultServer } from "@mcp-bridge/testing"
import { Effect, Fiber } from "effect"
import * as Expect from "./expect.ts"
import {
  connectMillis,
  failureOf,
  figure,
  kindOf,
  messageOf,
  now,
  processesLeft,
  seconds,
  stdio,
  timed,
  withBridge
} from "./harness.ts"

describe("deadline", () => {
  it.live(
    "never-initialize: timeout 1000 against a server that never answers the handshake takes 1 s",
    () =>
      Effect.gen(function*() {
        const unit = yield* connectMillis
        const spec: FaultServer.FaultServerSpec = { handshake: "never", tools: [{ name: "echo" }] }
        const { exit, ms } = yield* withBridge(
          { mcpServers: { s: stdio(spec) } },
          (bridge) => timed(bridge.callTool("s.echo", {}, { timeout: 1000 }))
        )
        const left = yield* Effect.promise(() => processesLeft())
        const error = failureOf(exit)
        figure(
          "never-initialize",
          `1 s call ended after ${seconds(ms)} with ${kindOf(error)} ("${
            messageOf(error).slice(0, 80)
          }"), ${left} processes left`
        )
        assert.isAtMost(ms, 1_000 + unit, "the call's deadline covers connecting (plus one measured connect)")
        assert.isTrue(
          Expect.isDeadline(error, "connect"),
          `a deadline error naming the connect phase: ${kindOf(error)}`
        )
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("40 seconds")),
    { timeout: 60_000 }
  )

  it.live(
    "sse-kill: a Streamable HTTP server killed mid-answer (SSE) fails the call when the stream breaks",
    () =>
      Effect.gen(function*() {
        const unit = yield* connectMillis
        const server = yield* Effect.acquireRelease(
          Effect.promise(() =>
            FaultServer.startKillableHttp({
              era: "legacy",
              tools: [{ name: "echo", respond: { kind: "echo" } }, {
                name: "slow",
                latencyMs: 5_000,
                respond: { kind: "echo" }
              }]
            }, { sse: true })
          ),
          (s) => Effect.promise(() => s.close())
        )
        const config = { mcpServers: { h: { url: server.url, bridge: { timeout: "10 seconds", retry: false } } } }
        const result = yield* withBridge(config, (bridge) =>
          Effect.gen(function*() {
            yield* bridge.callTool("h.echo", {})
            const call = yield* Effect.forkChild(timed(bridge.callTool("h.slow", {})))
            yield* Effect.sleep("300 millis")
            yield* Effect.promise(() => server.kill())
            const killedAt = now()
            const { exit } = yield* Fiber.join(call)
            return { exit, afterKill: now() - killedAt }
          }))
        const left = yield* Effect.promise(() => processesLeft())
        const error = failureOf(result.exit)
        figure(
          "sse-kill",
          `call in flight failed ${seconds(result.afterKill)} after the kill with ${
            kindOf(error)
          } (deadline 10 s), ${left} processes left`
        )
        assert.isAtMost(result.afterKill, 2 * unit, "noticed when the stream breaks, long before the 10 s deadline")
        assert.isTrue(Expect.isClosed(error), kindOf(error))
        assert.strictEqual(left, 0)
      }).pipe(Effect.scoped, Effect.timeout("40 seconds")),
    { timeout: 60_000 }
  )
})
