/**
 * A Streamable HTTP server killed and restarted on the same port: the bridge serves again
 * within about a second of the restart, not after the breaker's fixed `openFor` (30 s).
 */
import { assert, describe, it } from "@effect/vitest"
import { FaultServer, type TestServer } from "@mcp-bridge/testing"
import { Effect } from "effect"
import { connectMillis, failureOf, figure, kindOf, now, processesLeft, seconds, tally, withBridge } from "./harness.ts"

const spec: TestServer.TestServerSpec = { era: "legacy", tools: [{ name: "echo", respond: { kind: "echo" } }] }

const DOWN_MS = 2_000
const GIVE_UP_MS = 10_000

const restart = (name: string, sse: boolean) =>
  Effect.gen(function*() {
    const unit = yield* connectMillis
    const server = yield* Effect.acquireRelease(
      Effect.promise(() => FaultServer.startKillableHttp(spec, { sse })),
      (s) => Effect.promise(() => s.close())
    )
    const config = { mcpServers: { h: { url: server.url, bridge: { timeout: "1 second" } } } }
    const result = yield* withBridge(config, (bridge) =>
      Effect.gen(function*() {
        yield* bridge.callTool("h.echo", {})
        yield* Effect.promise(() => server.kill())
        // A caller keeps calling every 100 ms while the server is down...
        const down: Array<string> = []
        const killedAt = now()
        while (now() - killedAt < DOWN_MS) {
          down.push(kindOf(failureOf(yield* Effect.exit(bridge.callTool("h.echo", {})))))
          yield* Effect.sleep("100 millis")
        }
        // ...and after the restart, until a call succeeds.
        yield* Effect.promise(() => server.restart())
        const restartedAt = now()
        const after: Array<string> = []
        let recoveredMs: number | undefined
        while (now() - restartedAt < GIVE_UP_MS) {
          const kind = kindOf(failureOf(yield* Effect.exit(bridge.callTool("h.echo", {}))))
          after.push(kind)
          if (kind === "ok") {
            recoveredMs = now() - restartedAt
            break
          }
          yield* Effect.sleep("100 millis")
        }
        return { down, after, recoveredMs }
      }))
    yield* Effect.promise(() => server.close())
    const left = yield* Effect.promise(() => processesLeft())
    figure(
      name,
      `while down (${seconds(DOWN_MS)}): ${tally(result.down)}; after restart: ${tally(result.after)}; served again ${
        result.recoveredMs === undefined ? `not within ${seconds(GIVE_UP_MS)}` : `after ${seconds(result.recoveredMs)}`
      }, ${left} processes left`
    )
    assert.isDefined(result.recoveredMs, "the restarted server is used again")
    assert.isAtMost(
      result.recoveredMs!,
      1_000 + unit,
      "within about a second of the restart, plus one measured connect"
    )
    assert.strictEqual(left, 0)
  }).pipe(Effect.scoped, Effect.timeout("40 seconds"))

describe("http", () => {
  it.live(
    "http-restart-json: a killed and restarted server (JSON answers) is used again within a second",
    () => restart("http-restart-json", false),
    { timeout: 60_000 }
  )

  it.live(
    "http-restart-sse: a killed and restarted server (SSE answers) is used again within a second",
    () => restart("http-restart-sse", true),
    { timeout: 60_000 }
  )
})
