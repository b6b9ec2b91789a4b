import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig, ConnectionPool, McpBridge } from "@mcp-bridge/core"
import { createBridge, NodeTransport } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { Deferred, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./helpers.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "slow", latencyMs: 40, respond: { kind: "echo" } },
  { name: "hang", respond: { kind: "hang" } },
  { name: "crash", respond: { kind: "crash" } },
  { name: "pid", respond: { kind: "echo" } }
]

const settle = (ms = 50) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
const waitUntil = (f: () => boolean, ms = 5_000) =>
  Effect.promise(async () => {
    const until = performance.now() + ms
    while (!f() && performance.now() < until) await new Promise((r) => setTimeout(r, 20))
    return f()
  })

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

describe("stdio end to end", () => {
  const stdio = (pool: object = {}) => {
    const { command, args } = TestServer.stdioCommand({ tools })
    return { mcpServers: { s: { command, args: [...args], bridge: { pool } } } }
  }

  it.live("calls tools of a real stdio child through McpBridge", () =>
    Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      const listed = yield* bridge.listTools()
      assert.includeMembers(listed.map((t) => t.qualifiedName), ["s.echo", "s.slow", "s.__stats"])
      const results = yield* Effect.forEach([1, 2, 3, 4], (i) => bridge.callTool("s.echo", { i }), {
        concurrency: 4
      })
      assert.deepStrictEqual(results.map(text), [1, 2, 3, 4].map((i) => `{"i":${i}}`))
    }).pipe(Effect.provide(bridgeLayer(stdio()))))

  it.live("no child process is left after the scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(bridgeLayer(stdio({ min: 2, max: 3, concurrency: 1 })), scope)
      const pids = yield* Effect.gen(function*() {
        const config = yield* BridgeConfig.BridgeConfig
        const pool = yield* ConnectionPool.ConnectionPool
        // Three leases held at once (none is released before all three are held), one request per session: three
        // child processes.
        const allHeld = yield* Deferred.make<void>()
        let holding = 0
        const held = yield* Effect.forEach([1, 2, 3], () =>
          pool.withSession(config.servers.get("s")!, (session) =>
            Effect.gen(function*() {
              if (++holding === 3) {
                yield* Deferred.succeed(allHeld, undefined)
              }
              yield* Deferred.await(allHeld)
              return session.pid!
            })), { concurrency: 3 })
        const stats = yield* pool.stats
        assert.strictEqual(stats[0].created, 3)
        return held
      }).pipe(Effect.provide(context))
      assert.strictEqual(new Set(pids).size, 3)
      assert.isTrue(pids.every(isAlive))
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(
        yield* waitUntil(() =>
          !pids.some(isAlive)
        ),
        `children still alive: ${pids.filter(isAlive)}`
      )
    }))

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
      assert.strictEqual(results.length, 12)
      const [stats] = yield* Effect.flatMap(ConnectionPool.ConnectionPool, (pool) => pool.stats)
      assert.strictEqual(stats.created, 2)
    }).pipe(Effect.provide(bridgeLayer(stdio({ max: 2, concurrency: 1 })))))

  it.live("a server that exits mid-call fails that call with Closed; the next call gets a new process", () =>
    Effect.gen(function*() {
      const before = yield* sessionPids
      const error = yield* Effect.flip(call("s.crash"))
      assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "Closed", String(error))
      assert.isTrue(yield* waitUntil(() => !isAlive(before)))
      assert.strictEqual(text(yield* call("s.echo", { again: 1 })), "{\"again\":1}")
      const after = yield* sessionPids
      assert.notStrictEqual(after, before)
    }).pipe(Effect.provide(bridgeLayer(stdio()))))

  it.live("a child killed from outside is replaced without the user doing anything", () =>
    Effect.gen(function*() {
      const before = yield* sessionPids
      process.kill(before, "SIGKILL")
      assert.isTrue(yield* waitUntil(() => !isAlive(before)))
      yield* settle()
      assert.strictEqual(text(yield* call("s.echo", { n: 1 })), "{\"n\":1}")
      const after = yield* sessionPids
      assert.notStrictEqual(after, before)
      assert.isTrue(isAlive(after))
    }).pipe(Effect.provide(bridgeLayer(stdio({ min: 1 })))))

  it.live("a command that cannot start is a typed ConnectFailed, without its env secrets", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(call("s.echo"))
      assert.strictEqual(error._tag, "McpSessionError")
      assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "ConnectFailed")
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

  it.effect("a stdio server that never answers fails at the deadline and the call is cancelled", () =>
    Effect.gen(function*() {
      const fiber = yield* call("s.hang", {}, "3 seconds").pipe(Effect.forkChild)
      yield* TestClock.withLive(settle(300))
      yield* TestClock.adjust("3 seconds")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "Timeout")
      // The session survives a timed-out call.
      const stats = yield* call("s.__stats")
      const parsed = JSON.parse(text(stats)) as { cancelled: number; inFlight: number }
      assert.strictEqual(parsed.cancelled, 1)
      assert.strictEqual(parsed.inFlight, 0)
    }).pipe(Effect.provide(bridgeLayer(stdio()))))
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
  it.live("calls a real HTTP server and terminates its session on close", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.httpScoped({ tools, era: "legacy" })
      yield* Effect.gen(function*() {
        const results = yield* Effect.forEach([1, 2, 3], (i) => call("s.echo", { i }), { concurrency: 3 })
        assert.deepStrictEqual(results.map(text), [1, 2, 3].map((i) => `{"i":${i}}`))
      }).pipe(Effect.provide(bridgeLayer({ mcpServers: { s: { url: server.url } } })))
      assert.isAtLeast(server.sessionsOpened(), 1)
      assert.strictEqual(server.sessionsTerminated(), server.sessionsOpened())
      assert.strictEqual(server.openSessions(), 0)
    }))

  it.live("speaks 2026-07-28 to a dual-era HTTP server", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.httpScoped({ tools })
      const version = yield* Effect.gen(function*() {
        const config = yield* BridgeConfig.BridgeConfig
        const pool = yield* ConnectionPool.ConnectionPool
        assert.strictEqual(text(yield* call("s.echo", { m: 1 })), "{\"m\":1}")
        return yield* pool.withSession(config.servers.get("s")!, (s) => Effect.succeed(s.protocolVersion))
      }).pipe(Effect.provide(bridgeLayer({ mcpServers: { s: { url: server.url } } })))
      assert.strictEqual(version, "2026-07-28")
    }))

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
        assert.strictEqual(text(yield* call("s.echo", { n: 3 })), "{\"n\":3}")
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
      const pending = bridge.callTool("s.hang", {}, { signal: controller.signal }).catch((e: unknown) => e)
      controller.abort()
      assert.isDefined(await pending)
      const [stats] = await bridge.stats()
      await bridge.close()
      assert.strictEqual(stats.created, 1)
    }))

  it.live("rejects a bad config with a message naming the server and field", () =>
    Effect.promise(async () => {
      const error = await createBridge({ mcpServers: { db: { command: "x", bridge: { timeout: "soon" } } } })
        .catch((e: unknown) => e as Error)
      assert.include((error as Error).message, "mcpServers.db.bridge.timeout")
    }))
})
