import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig, ConnectionPool, McpBridge } from "@mcp-bridge/core"
import { createBridge, NodeTransport } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { Effect, Exit, Layer, Schedule, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort, isAlive } from "./helpers.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "slow", latencyMs: 40, respond: { kind: "echo" } },
  { name: "hang", respond: { kind: "hang" } },
  { name: "crash", respond: { kind: "crash" } }
]

// Waits (bounded: 5 seconds) for state outside this process, a child's exit, checking every 20 ms.
const waitUntil = (f: () => boolean, ms = 5_000) =>
  Effect.promise(async () => {
    const until = performance.now() + ms
    while (!f() && performance.now() < until) await new Promise((r) => setTimeout(r, 20))
    return f()
  })
const waitUntilEffect = <E, R>(f: Effect.Effect<boolean, E, R>, ms = 5_000) =>
  Effect.gen(function*() {
    const until = performance.now() + ms
    while (performance.now() < until) {
      if (yield* f) return true
      yield* Effect.sleep("20 millis")
    }
    return yield* f
  })

/** Polls `f` every 20 ms until it holds, with no deadline of its own: for an event whose time is the machine's. */
const untilTrue = <E, R>(f: Effect.Effect<boolean, E, R>) =>
  Effect.repeat(f, { until: (done) => done, schedule: Schedule.spaced("20 millis") })

const bridgeLayer = (config: object) => McpBridge.layer(config, { transport: NodeTransport.layer() })
const call = (target: string, args: Record<string, unknown> = {}, timeout?: string) =>
  Effect.flatMap(
    McpBridge.McpBridge,
    (bridge) => bridge.callTool(target, args, timeout === undefined ? {} : { timeout: timeout as "1 second" })
  )
const text = (result: { content: ReadonlyArray<unknown> }) => (result.content[0] as { text: string }).text
const sessionPids = Effect.gen(function*() {
  const config = yield* BridgeConfig.BridgeConfig
  const pool = yield* ConnectionPool.ConnectionPool
  return yield* pool.withSession(config.servers.get("s")!, (session) => Effect.succeed(session.pid!))
})

// What every transport does (list, call, isError, deadlines and cancellation, a crash, closing) is the shared suite
// of NodeTransport.test.ts; these are the end-to-end cases particular to one transport or one server.
describe("stdio end to end", () => {
  const stdio = (pool: object = {}) => {
    const { command, args } = TestServer.stdioCommand({ tools })
    return { mcpServers: { s: { command, args: [...args], bridge: { pool } } } }
  }

  it.live("a session still connecting when the scope closes leaves no child process", () =>
    Effect.gen(function*() {
      // A server that never answers the handshake, and says where it runs.
      const dir = mkdtempSync(join(tmpdir(), "mcp-bridge-e2e-"))
      const pidFile = join(dir, "pid")
      const silent = {
        mcpServers: {
          s: {
            command: process.execPath,
            args: [
              "-e",
              "require('fs').writeFileSync(process.argv[1], String(process.pid)); setInterval(() => {}, 1000)",
              pidFile
            ]
          }
        }
      }
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(bridgeLayer(silent), scope)
      yield* Effect.forkIn(call("s.echo").pipe(Effect.provide(context)), scope)
      assert.isTrue(yield* waitUntil(() => existsSync(pidFile) && readFileSync(pidFile, "utf8") !== ""))
      const pid = Number(readFileSync(pidFile, "utf8"))
      // Whatever the outcome, the test leaves nothing behind.
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (isAlive(pid)) process.kill(pid, "SIGKILL")
          rmSync(dir, { recursive: true, force: true })
        })
      )
      assert.isTrue(isAlive(pid))
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(isAlive(pid), "the child of the interrupted connect is still running")
    }))

  it.live("never runs more than `max` child processes", () =>
    Effect.gen(function*() {
      const results = yield* Effect.forEach(Array.from({ length: 12 }, (_, i) => i), (i) => call("s.slow", { i }), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(results.map(text), Array.from({ length: 12 }, (_, i) => `{"i":${i}}`))
      const [stats] = yield* Effect.flatMap(ConnectionPool.ConnectionPool, (pool) => pool.stats)
      // The pool grows by measurement (a busy pool first waits for a lease to end), so how many of the two it opens
      // depends on how fast this machine is; never more than `max`.
      assert.isAtLeast(stats?.created ?? 0, 1)
      assert.isAtMost(stats?.created ?? 0, 2)
    }).pipe(Effect.provide(bridgeLayer(stdio({ max: 2, concurrency: 1 })))))

  it.live("a child killed from outside is replaced without the user doing anything", () =>
    Effect.gen(function*() {
      const before = yield* sessionPids
      process.kill(before, "SIGKILL")
      assert.isTrue(yield* waitUntil(() => !isAlive(before)))
      // The pool sees the transport close and retires the session (and, with `min: 1`, opens another) on its own.
      // Awaited as events, bounded by the test's own timeout: the replacement costs a spawn and a connect, which a
      // loaded machine takes seconds to do.
      const pool = yield* ConnectionPool.ConnectionPool
      yield* untilTrue(Effect.map(pool.stats, ([s]) => s?.invalidated === 1))
      yield* untilTrue(Effect.map(pool.stats, ([s]) => s?.created === 2))
      assert.strictEqual(text(yield* call("s.echo", { n: 1 })), "{\"n\":1}")
      const after = yield* sessionPids
      assert.notStrictEqual(after, before)
      assert.isTrue(isAlive(after))
      assert.strictEqual((yield* pool.stats)[0]?.created, 2)
    }).pipe(Effect.provide(bridgeLayer(stdio({ min: 1 })))))

  it.live("a command that cannot start is a typed ConnectFailed with its stderr, without its env secrets", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(call("s.echo"))
      assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "ConnectFailed")
      // The server's stderr was captured (and its secret scrubbed out of it): the check below is not vacuous.
      const stderr = error._tag === "McpSessionError" && error.reason._tag === "ConnectFailed"
        ? error.reason.stderr
        : ""
      assert.strictEqual(stderr, "token=<redacted>")
      assert.include(error.message, "token=<redacted>")
      assert.notInclude(error.message + JSON.stringify(error), "hunter2-secret")
    }).pipe(
      Effect.provide(bridgeLayer({
        mcpServers: {
          s: {
            command: process.execPath,
            args: ["-e", "console.error('token=' + process.env.API_TOKEN); process.exit(3)"],
            env: { API_TOKEN: "hunter2-secret" },
            bridge: { protocol: "legacy", connectTimeout: "5 seconds" }
          }
        }
      }))
    ))
})

describe("official reference server", () => {
  const require = createRequire(import.meta.url)
  const everything = require.resolve("@modelcontextprotocol/server-everything/dist/index.js")

  it.live("drives @modelcontextprotocol/server-everything over stdio through McpBridge", () =>
    Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      const listed = yield* bridge.listTools()
      assert.includeMembers(listed.map((t) => t.qualifiedName), ["everything.echo", "everything.get-sum"])
      const echo = yield* bridge.callTool("everything.echo", { message: "hello" })
      assert.include(text(echo), "hello")
      const sum = yield* bridge.callTool("everything.get-sum", { a: 2, b: 3 })
      assert.include(text(sum), "5")
      const unknown = yield* Effect.flip(bridge.callTool("everything.nope", {}))
      assert.isTrue(unknown._tag === "McpBridgeError" && unknown.reason._tag === "UnknownTool")
    }).pipe(
      Effect.provide(bridgeLayer({ mcpServers: { everything: { command: process.execPath, args: [everything] } } }))
    ))
})

describe("legacy HTTP+SSE end to end", () => {
  const require = createRequire(import.meta.url)
  const everything = require.resolve("@modelcontextprotocol/server-everything/dist/index.js")

  it.live("calls the reference server over the deprecated SSE transport", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      yield* Effect.acquireRelease(
        Effect.promise(() =>
          new Promise<ChildProcess>((resolve, reject) => {
            const child = spawn(process.execPath, [everything, "sse"], {
              env: { ...process.env, PORT: String(port) },
              stdio: ["ignore", "ignore", "pipe"]
            })
            child.stderr!.on("data", (chunk: Buffer) => {
              if (chunk.toString().includes("running on port")) resolve(child)
            })
            child.once("exit", (code) => reject(new Error(`sse server exited with ${code}`)))
          })
        ),
        (child) => Effect.sync(() => child.kill("SIGKILL"))
      )
      const result = yield* call("old.echo", { message: "over sse" }).pipe(
        Effect.provide(bridgeLayer({ mcpServers: { old: { type: "sse", url: `http://127.0.0.1:${port}/sse` } } }))
      )
      assert.include(text(result), "over sse")
    }))
})

describe("Streamable HTTP end to end", () => {
  it.live("a dead HTTP server fails calls fast instead of hanging; a restarted one is reconnected", () =>
    Effect.gen(function*() {
      const first = yield* Effect.promise(() => TestServer.startHttp({ tools, era: "legacy" }))
      const port = first.port
      yield* Effect.gen(function*() {
        assert.strictEqual(text(yield* call("s.echo", { n: 1 })), "{\"n\":1}")
        yield* Effect.promise(() => first.close())
        const error = yield* Effect.flip(call("s.echo", { n: 2 }, "5 seconds"))
        assert.strictEqual(error._tag, "McpSessionError")
        const restarted = yield* Effect.acquireRelease(
          Effect.promise(() => TestServer.startHttp({ tools, era: "legacy" }, { port })),
          (s) => Effect.promise(() => s.close())
        )
        // The pool starts replacing the dead session at once, and that attempt can meet the port still closed: a
        // call that joins it fails fast with the same typed error, and a later one connects to the restarted server.
        let answer: string | undefined
        for (let attempt = 0; attempt < 50 && answer === undefined; attempt++) {
          const exit = yield* Effect.exit(call("s.echo", { n: 3 }))
          if (Exit.isSuccess(exit)) answer = text(exit.value)
          else yield* Effect.sleep("20 millis")
        }
        assert.strictEqual(answer, "{\"n\":3}")
        assert.strictEqual(restarted.calls("echo"), 1)
      }).pipe(Effect.provide(bridgeLayer({ mcpServers: { s: { url: `http://127.0.0.1:${port}/mcp` } } })))
    }))
})

describe("createBridge (Promise facade)", () => {
  it.live("starts stdio servers without Effect and closes them", () =>
    Effect.promise(async () => {
      const { command, args } = TestServer.stdioCommand({ tools })
      const bridge = await createBridge({ mcpServers: { s: { command, args: [...args] } } })
      const result = await bridge.callTool("s.echo", { hello: "world" })
      assert.strictEqual(text(result), "{\"hello\":\"world\"}")
      const error = await bridge.callTool("s.nope", {}).catch((e: unknown) => e)
      assert.strictEqual((error as { _tag: string })._tag, "McpBridgeError")
      const controller = new AbortController()
      const pending = bridge.callTool("s.hang", {}, { signal: controller.signal }).then(() => "answered", () =>
        "rejected")
      const serverStats = async () =>
        (await bridge.callTool("s.__stats")).structuredContent as { inFlight: number; cancelled: number }
      for (let i = 0; i < 250 && (await serverStats()).inFlight === 0; i++) {
        await new Promise((r) =>
          setTimeout(r, 20)
        )
      }
      controller.abort()
      assert.strictEqual(await pending, "rejected")
      let stats = await serverStats()
      for (let i = 0; i < 250 && stats.cancelled === 0; i++) {
        await new Promise((r) => setTimeout(r, 20))
        stats = await serverStats()
      }
      assert.deepStrictEqual([stats.cancelled, stats.inFlight], [1, 0])
      const [pool] = await bridge.stats()
      await bridge.close()
      assert.strictEqual(pool?.created, 1)
    }))

  it.live("rejects a bad config with a message naming the server and field", () =>
    Effect.promise(async () => {
      const error = await createBridge({ mcpServers: { db: { command: "x", bridge: { timeout: "soon" } } } })
        .catch((e: unknown) => e as Error)
      assert.include((error as Error).message, "mcpServers.db.bridge.timeout")
    }))
})
