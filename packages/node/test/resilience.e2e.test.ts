import { assert, describe, it } from "@effect/vitest"
import { McpBridge } from "@mcp-bridge/core"
import { NodeTransport } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { Effect, Exit, Fiber } from "effect"
import { createServer, type Socket } from "node:net"
import { freePort } from "./helpers.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", respond: { kind: "echo" } },
  { name: "slow", latencyMs: 10, respond: { kind: "echo" } }
]

/** A TCP server on 127.0.0.1 that accepts connections and never answers (an upstream that hangs). */
const blackHole = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ port: number; close: () => void }>((resolve) => {
      const sockets = new Set<Socket>()
      const server = createServer((socket) => {
        sockets.add(socket)
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as { port: number }).port
        resolve({
          port,
          close: () => {
            for (const socket of sockets) socket.destroy()
            server.close()
          }
        })
      })
    })
  ),
  (hole) => Effect.sync(() => hole.close())
)

const errorTag = (exit: Exit.Exit<unknown, { readonly _tag: string; readonly reason: { readonly _tag: string } }>) =>
  Exit.isSuccess(exit) ? "ok" : exit.cause.reasons.map((r) => r._tag === "Fail" ? r.error.reason._tag : r._tag).join()

describe("resilience end to end", () => {
  it.live(
    "a dead server beside a healthy one: the healthy one is never held up, the dead one fails fast",
    () =>
      Effect.gen(function*() {
        const healthy = yield* TestServer.httpScoped({ tools })
        const hole = yield* blackHole
        const refused = yield* freePort
        const breaker = { failures: 1, openFor: "1 minute" }
        const batch = Effect.flatMap(McpBridge.McpBridge, (bridge) =>
          bridge.callMany(
            Array.from({ length: 40 }, (_, i) => ({ target: "healthy.slow", arguments: { i } })),
            { concurrency: 8 }
          ))
        // How long the healthy batch takes on this machine, alone: the hanging server's connect deadline is set well
        // past it, so that "still waiting" below is about the bridge, not about how fast this machine is.
        const alone = yield* Effect.gen(function*() {
          const started = performance.now()
          yield* batch
          return performance.now() - started
        }).pipe(
          Effect.provide(McpBridge.layer({ mcpServers: { healthy: { url: healthy.url } } }, {
            transport: NodeTransport.layer()
          }))
        )
        const connectTimeout = `${Math.ceil(1_000 + 2 * alone)} millis`
        const layer = McpBridge.layer({
          mcpServers: {
            healthy: { url: healthy.url },
            hanging: { url: `http://127.0.0.1:${hole.port}/mcp`, bridge: { connectTimeout } },
            refused: { url: `http://127.0.0.1:${refused}/mcp` }
          },
          bridge: { circuitBreaker: breaker, retry: false }
        }, { transport: NodeTransport.layer() })

        yield* Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          // A call to the hanging server waits for its connect deadline...
          const stuck = yield* Effect.forkChild(Effect.exit(bridge.callTool("hanging.echo", {})))
          // ...while the healthy server answers many calls, and the refused one fails.
          const results = yield* bridge.callMany(
            Array.from({ length: 40 }, (_, i) => ({ target: "healthy.slow", arguments: { i } })),
            { concurrency: 8 }
          )
          assert.isTrue(results.every((r) => r._tag === "Success"))
          assert.strictEqual(healthy.calls("slow"), 80)
          assert.isUndefined(stuck.pollUnsafe(), "the hanging server's call is still waiting")
          const refusedExits = yield* Effect.forEach(
            [1, 2, 3, 4],
            () => Effect.exit(bridge.callTool("refused.echo", {}))
          )
          assert.deepStrictEqual(refusedExits.map(errorTag), [
            "ConnectFailed",
            "CircuitOpen",
            "CircuitOpen",
            "CircuitOpen"
          ])
          // The hanging server fails with its deadline; after that failure its circuit is open too.
          assert.strictEqual(errorTag(yield* Fiber.join(stuck)), "Timeout")
          const open = yield* Effect.exit(bridge.callTool("hanging.echo", {}))
          assert.strictEqual(errorTag(open), "CircuitOpen")
          // Healthy calls still go through.
          const after = yield* bridge.callTool("healthy.echo", { x: 1 })
          assert.deepStrictEqual(after.content, [{ type: "text", text: "{\"x\":1}" }])
        }).pipe(Effect.provide(layer))
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )
})
