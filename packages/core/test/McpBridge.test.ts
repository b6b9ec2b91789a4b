import { assert, describe, it, layer } from "@effect/vitest"
import { BridgeClient, BridgeConfig, ConnectionPool, McpBridge, McpBridgeError, McpTransport } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import { ConfigProvider, Duration, Effect, Fiber, Logger, Result } from "effect"
import { TestClock } from "effect/testing"
import { drain, text, until } from "./fixtures.ts"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", description: "Echoes", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "fails", respond: { kind: "isError", message: "no such record" } },
  { name: "hang", respond: { kind: "hang" } },
  { name: "crash", respond: { kind: "crash" } },
  { name: "held", hold: true, respond: { kind: "echo" } }
]

const bridgeLayer = (servers: Record<string, TestServer.TestServer>, bridge: Record<string, unknown> = {}) =>
  TestBridge.layerTest(servers, { bridge })

const withBridge = <A, E>(
  servers: Record<string, TestServer.TestServer>,
  f: (bridge: McpBridge.McpBridge.Service) => Effect.Effect<A, E, any>,
  bridge: Record<string, unknown> = {}
) => Effect.flatMap(McpBridge.McpBridge, f).pipe(Effect.provide(bridgeLayer(servers, bridge)))

describe("McpBridge", () => {
  it.effect("lists the tools of every server with qualified names", () =>
    Effect.gen(function*() {
      const a = TestServer.make({ tools })
      const b = TestServer.make({ tools: [{ name: "get", respond: { kind: "echo" } }], era: "legacy" })
      const listed = yield* withBridge({ alpha: a, beta: b }, (bridge) => bridge.listTools())
      const names = listed.map((t) => t.qualifiedName).sort()
      assert.deepStrictEqual(names, [
        "alpha.__stats",
        "alpha.crash",
        "alpha.echo",
        "alpha.fails",
        "alpha.hang",
        "alpha.held",
        "beta.__stats",
        "beta.get"
      ])
      const echo = listed.find((t) => t.qualifiedName === "alpha.echo")!
      assert.strictEqual(echo.server, "alpha")
      assert.strictEqual(echo.name, "echo")
      assert.strictEqual(echo.description, "Echoes")
      assert.deepStrictEqual(echo.annotations, { readOnlyHint: true })
      assert.strictEqual(echo.inputSchema.type, "object")
      assert.strictEqual(echo.definition.name, "echo")
    }))

  describe("listServerTools", () => {
    it.effect("lists one server's tools; an unknown server is UnknownServer", () =>
      Effect.gen(function*() {
        const a = TestServer.make({ tools })
        const b = TestServer.make({ tools: [{ name: "get", respond: { kind: "echo" } }] })
        yield* withBridge({ alpha: a, beta: b }, (bridge) =>
          Effect.gen(function*() {
            const beta = yield* bridge.listServerTools("beta")
            assert.deepStrictEqual(beta.map((t) => t.qualifiedName).sort(), ["beta.__stats", "beta.get"])
            assert.isTrue(beta.every((t) => t.server === "beta"))
            const error = yield* Effect.flip(bridge.listServerTools("gamma"))
            assert.isTrue(error._tag === "McpBridgeError" && error.reason._tag === "UnknownServer")
            assert.deepStrictEqual(error.server, "gamma")
          }))
      }))

    it.effect("gives an unreachable server's error, which listTools leaves out and logs", () =>
      Effect.gen(function*() {
        const up = TestServer.make({ tools: [{ name: "get", respond: { kind: "echo" } }] })
        const logs: Array<string> = []
        const logger = Logger.make((o) => logs.push(`${o.logLevel}: ${String(o.message)}`))
        yield* Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          const error = yield* Effect.flip(bridge.listServerTools("down"))
          assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "ConnectFailed")
          assert.strictEqual(error.server, "down")
          const all = yield* bridge.listTools()
          assert.deepStrictEqual(all.map((t) => t.qualifiedName).sort(), ["up.__stats", "up.get"])
          assert.isTrue(logs.some((l) => l.startsWith("Warn") && l.includes("MCP server \"down\" left out")))
        }).pipe(
          Effect.provide(McpBridge.layer(
            { mcpServers: { up: { type: "memory" }, down: { type: "memory", bridge: { retry: false } } } },
            { transport: McpTransport.layer({ memory: { up: up.connect } }) }
          )),
          Effect.provide(Logger.layer([logger]))
        )
      }))
  })

  it.effect("calls a tool by qualified name or by parts", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      const [byName, byParts] = yield* withBridge({ alpha: server }, (bridge) =>
        Effect.all([
          bridge.callTool("alpha.echo", { x: 1 }),
          bridge.callTool({ server: "alpha", tool: "echo" }, { y: [2] })
        ]))
      assert.deepStrictEqual(byName.content, [{ type: "text", text: "{\"x\":1}" }])
      assert.deepStrictEqual(byParts.content, [{ type: "text", text: "{\"y\":[2]}" }])
      assert.strictEqual(server.calls("echo"), 2)
    }))

  it.effect("an isError result is a successful call", () =>
    Effect.gen(function*() {
      const result = yield* withBridge({ alpha: TestServer.make({ tools }) }, (bridge) =>
        bridge.callTool("alpha.fails", {}))
      assert.isTrue(result.isError)
      assert.deepStrictEqual(result.content, [{ type: "text", text: "no such record" }])
    }))

  it.effect("an unknown server or tool is a typed error listing what exists", () =>
    Effect.gen(function*() {
      const [noServer, noTool, badTarget, badArgs] = yield* withBridge(
        { alpha: TestServer.make({ tools }), beta: TestServer.make({ tools }) },
        (bridge) =>
          Effect.all([
            Effect.flip(bridge.callTool("gamma.echo", {})),
            Effect.flip(bridge.callTool("alpha.ehco", {})),
            Effect.flip(bridge.callTool("echo", {})),
            Effect.flip(bridge.callTool("alpha.echo", [1, 2] as any))
          ])
      )
      assert.isTrue(noServer._tag === "McpBridgeError" && noServer.reason._tag === "UnknownServer")
      assert.include(noServer.message, "configured servers: alpha, beta")
      assert.isTrue(noTool._tag === "McpBridgeError" && noTool.reason._tag === "UnknownTool")
      assert.include(noTool.message, "its tools: echo, fails, hang, crash, held, __stats")
      assert.isTrue(badTarget._tag === "McpBridgeError" && badTarget.reason._tag === "InvalidCall")
      assert.isTrue(badArgs._tag === "McpBridgeError" && badArgs.reason._tag === "InvalidCall")
      if (badArgs._tag === "McpBridgeError" && badArgs.reason._tag === "InvalidCall") {
        assert.deepStrictEqual([badArgs.reason.path, badArgs.reason.server, badArgs.reason.tool], [
          ["arguments"],
          "alpha",
          "echo"
        ])
      }
    }))

  it.effect("a server that never answers fails at the call's deadline with DeadlineExceeded", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      const fiber = yield* withBridge(
        { alpha: server },
        (bridge) => bridge.callTool("alpha.hang", {}, { timeout: "2 seconds" })
      ).pipe(Effect.forkChild)
      yield* until(server, () => server.inFlight() === 1)
      yield* TestClock.adjust("1999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.deepStrictEqual(
        error._tag === "McpBridgeError" ? error.reason : error,
        new McpBridgeError.DeadlineExceeded({ server: "alpha", tool: "hang", timeoutMillis: 2000, phase: "call" })
      )
      assert.include(error.message, "the call to alpha.hang did not end within its deadline of 2000 ms")
    }))

  it.effect("the server's configured timeout applies when the call gives none", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      const fiber = yield* withBridge({ alpha: server }, (bridge) => bridge.callTool("alpha.hang", {}), {
        timeout: "7 seconds"
      }).pipe(Effect.forkChild)
      yield* until(server, () => server.inFlight() === 1)
      yield* TestClock.adjust("6 seconds")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "Timeout")
      assert.isTrue(
        error._tag === "McpSessionError" && error.reason._tag === "Timeout" &&
          error.reason.timeoutMillis === 7000
      )
    }))

  it.effect("interrupting a call cancels the request on the wire", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* withBridge({ alpha: server }, (bridge) =>
        Effect.gen(function*() {
          const fiber = yield* bridge.callTool("alpha.hang", {}).pipe(Effect.forkChild)
          yield* until(server, () => server.inFlight() === 1)
          yield* Fiber.interrupt(fiber)
          yield* until(server, () => server.cancelled() === 1 && server.inFlight() === 0)
          // The session is still usable after the cancellation.
          const result = yield* bridge.callTool("alpha.echo", { after: true })
          assert.deepStrictEqual(result.content, [{ type: "text", text: "{\"after\":true}" }])
          assert.strictEqual((yield* ConnectionPool.ConnectionPool.use((pool) => pool.stats))[0]?.created, 1)
        }))
    }))

  it.effect("negotiates 2026-07-28 with dual-era servers and a legacy version with legacy servers", () =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.BridgeConfig
      const pool = yield* ConnectionPool.ConnectionPool
      const versions = yield* Effect.forEach(
        ["modern", "legacy"],
        (name) =>
          pool.withSession(
            config.servers.get(name)!,
            (session) => Effect.succeed([session.protocolVersion, session.era])
          )
      )
      assert.deepStrictEqual(versions, [["2026-07-28", "modern"], ["2025-11-25", "legacy"]])
    }).pipe(Effect.provide(bridgeLayer({
      modern: TestServer.make({ tools }),
      legacy: TestServer.make({ tools, era: "legacy" })
    }))))

  it.effect("a bad timeout option is a typed InvalidCall naming the option", () =>
    withBridge({ s: TestServer.make({ tools }) }, (bridge) =>
      Effect.gen(function*() {
        for (const timeout of ["soon", -1, 0]) {
          const error = yield* Effect.flip(bridge.callTool("s.echo", {}, { timeout: timeout as "1 second" }))
          assert.isTrue(error._tag === "McpBridgeError" && error.reason._tag === "InvalidCall")
          if (error._tag !== "McpBridgeError" || error.reason._tag !== "InvalidCall") return
          assert.deepStrictEqual([error.reason.path, error.reason.server, error.reason.tool], [
            ["options", "timeout"],
            "s",
            "echo"
          ])
          assert.include(error.message, `invalid tool call to s.echo: options.timeout: must be a positive duration`)
        }
      })))

  it.effect("arguments nested 100,000 levels deep are a typed InvalidCall, with no upstream call and no stack overflow", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* withBridge({ s: server }, (bridge) =>
        Effect.gen(function*() {
          let deep: Record<string, unknown> = {}
          for (let i = 0; i < 100_000; i++) deep = { a: deep }
          // A cacheable tool (the cache keys canonical arguments) and one that is not.
          for (const tool of ["s.echo", "s.fails"]) {
            const error = yield* Effect.flip(bridge.callTool(tool, deep))
            assert.isTrue(error._tag === "McpBridgeError" && error.reason._tag === "InvalidCall")
            assert.include(error.message, "nested at most 256 levels deep")
          }
          // Just under the bound is served.
          let ok: Record<string, unknown> = {}
          for (let i = 0; i < 250; i++) ok = { a: ok }
          yield* bridge.callTool("s.echo", ok)
          assert.strictEqual(server.calls("fails"), 0)
        }), { tools: { echo: { cache: "1 minute" } } })
    }))

  describe("callMany", () => {
    layer(TestBridge.layerTest({ s: { tools } }, { bridge: { retry: false } }))("over one bridge", (it) => {
      it.effect("one result per call in input order: each its own success or typed failure", () =>
        Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          const fiber = yield* Effect.forkChild(bridge.callMany([
            { name: "s.echo", arguments: { i: 0 } },
            { name: "s.fails" },
            { name: "s.hang", options: { timeout: "50 millis" } },
            { name: "s.nope" },
            { name: "elsewhere.echo" },
            { target: "s.echo", arguments: { i: 5 } },
            { name: "s.echo", arguments: [1] as any },
            { name: { server: "s", tool: "echo" }, arguments: { i: 7 } }
          ]))
          const servers = yield* TestBridge.TestServers
          yield* until(servers.s!, () => servers.s!.inFlight() === 1 && servers.s!.calls("hang") === 1)
          yield* TestClock.adjust("50 millis")
          const results = yield* Fiber.join(fiber)
          const tags = results.map((r) =>
            Result.isSuccess(r)
              ? r.success.isError ? "isError" : text(r.success)
              : `${r.failure._tag}:${r.failure.reason._tag}`
          )
          assert.deepStrictEqual(tags, [
            "{\"i\":0}",
            "isError",
            "McpBridgeError:DeadlineExceeded",
            "McpBridgeError:UnknownTool",
            "McpBridgeError:UnknownServer",
            "{\"i\":5}",
            "McpBridgeError:InvalidCall",
            "{\"i\":7}"
          ])
        }))

      it.effect("an item's _meta is sent with its call", () =>
        Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          const s = (yield* TestBridge.TestServers).s!
          const before = s.receivedMeta("echo").length
          yield* bridge.callMany([
            { name: "s.echo", arguments: { n: 1 }, _meta: { traceparent: "00-1-2-01" } },
            { name: "s.echo", arguments: { n: 2 }, options: { meta: { k: "v" } } }
          ], { concurrency: 1 })
          assert.deepStrictEqual(s.receivedMeta("echo").slice(before), [{ traceparent: "00-1-2-01" }, { k: "v" }])
        }))

      it.effect("runs 5 calls at a time by default, or as many as asked", () =>
        Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          const s = (yield* TestBridge.TestServers).s!
          const calls = Array.from({ length: 12 }, (_, i) => ({ name: "s.held", arguments: { i } }))
          const byDefault = yield* Effect.forkChild(bridge.callMany(calls))
          yield* until(s, () => s.held("held") === 5)
          yield* drain(s, "held", 12)
          assert.strictEqual((yield* Fiber.join(byDefault)).length, 12)
          assert.strictEqual(s.peakInFlight(), 5)
          const asked = yield* Effect.forkChild(bridge.callMany(calls, { concurrency: 12 }))
          yield* until(s, () => s.held("held") === 12)
          s.release("held")
          assert.isTrue((yield* Fiber.join(asked)).every(Result.isSuccess))
          assert.strictEqual(s.peakInFlight(), 12)
          assert.strictEqual(s.calls("held"), 24)
        }))
    })
  })

  describe("the Promise facade (BridgeClient.make)", () => {
    const facade = async (server: TestServer.TestServer, bridge: Record<string, unknown> = {}) =>
      BridgeClient.make({ mcpServers: { s: { type: "memory", bridge } } }, {
        transport: McpTransport.layer({ memory: { s: server.connect } })
      })

    it.live("passes meta, identity and timeout, and rejects a bad timeout with InvalidCall", () =>
      Effect.promise(async () => {
        const server = TestServer.make({ tools })
        const bridge = await facade(server, { pool: { isolation: "per-identity" } })
        try {
          await bridge.callTool("s.echo", { n: 1 }, { meta: { k: "v" }, identity: "tenant-1", timeout: "5 seconds" })
          assert.deepStrictEqual(server.receivedMeta("echo"), [{ k: "v" }])
          // The identity reached the pool: the call ran on a session of tenant-1's own pool.
          const pools = (await bridge.stats()).map((s) => [s.identity, s.created])
          assert.deepStrictEqual(pools.filter(([identity]) => identity === "tenant-1"), [["tenant-1", 1]])
          // The timeout is the call's deadline, as text or as milliseconds.
          for (const [timeout, millis] of [["150 millis", 150], [120, 120]] as const) {
            const error = await bridge.callTool("s.hang", {}, { timeout }).then(() => undefined, (e) => e)
            assert.strictEqual(error?._tag, "McpBridgeError")
            assert.deepStrictEqual(
              [error?.reason._tag, error?.reason.timeoutMillis, error?.reason.phase],
              ["DeadlineExceeded", millis, "call"]
            )
          }
          const bad = await bridge.callTool("s.echo", {}, { timeout: "soon" }).then(() => undefined, (e) => e)
          assert.strictEqual(bad?._tag, "McpBridgeError")
          assert.strictEqual(bad?.reason._tag, "InvalidCall")
        } finally {
          await bridge.close()
          await server.close()
        }
      }))

    it.live("callMany: { ok, result } or { ok, error } per call, in order", () =>
      Effect.promise(async () => {
        const server = TestServer.make({ tools })
        const bridge = await facade(server)
        try {
          const outcomes = await bridge.callMany([
            { target: "s.echo", arguments: { i: 1 }, options: { meta: { k: "w" } } },
            { target: "s.nope" },
            { target: "s.hang", options: { timeout: 30 } },
            { target: "s.fails" }
          ], { concurrency: 2 })
          assert.deepStrictEqual(
            outcomes.map((o) => o.ok ? text(o.result) : `${o.error._tag}:${o.error.reason._tag}`),
            ["{\"i\":1}", "McpBridgeError:UnknownTool", "McpBridgeError:DeadlineExceeded", "no such record"]
          )
          assert.deepStrictEqual(server.receivedMeta("echo").at(-1), { k: "w" })
        } finally {
          await bridge.close()
          await server.close()
        }
      }))

    it.live("aborting a call's signal cancels it on the wire", () =>
      Effect.promise(async () => {
        const server = TestServer.make({ tools })
        const bridge = await facade(server)
        try {
          const controller = new AbortController()
          const pending = bridge.callTool("s.hang", {}, { signal: controller.signal }).then(
            () => "answered",
            () => "rejected"
          )
          await server.until(() => server.inFlight() === 1)
          controller.abort()
          assert.strictEqual(await pending, "rejected")
          await server.until(() => server.cancelled() === 1 && server.inFlight() === 0)
          // A signal that is already aborted: the call is not made.
          const aborted = AbortSignal.abort()
          const before = server.calls()
          assert.strictEqual(
            await bridge.callTool("s.echo", {}, { signal: aborted }).then(() => "answered", () => "rejected"),
            "rejected"
          )
          assert.strictEqual(server.calls(), before)
          // The bridge goes on.
          assert.strictEqual(text(await bridge.callTool("s.echo", { n: 1 })), "{\"n\":1}")
        } finally {
          await bridge.close()
          await server.close()
        }
      }))

    it.live("a call whose signal aborts before it is sent never reaches the server, at every wait", () =>
      Effect.promise(async () => {
        const server = TestServer.make({
          tools: [
            ...tools,
            { name: "write", respond: { kind: "echo" } },
            { name: "slow", annotations: { readOnlyHint: true }, respond: { kind: "hang" } }
          ]
        })
        const rejected = (p: Promise<unknown>) => p.then(() => "answered", (e) => `${e?._tag}:${e?.reason?._tag}`)
        // Each check ends with a call made after the aborted one on the same session: had the aborted one been sent,
        // the server would have seen it first.
        const writes = () => server.calls("write")
        try {
          // Routing: a cold bridge fetches the tool list first; the signal aborts meanwhile.
          const cold = await facade(server)
          const routing = new AbortController()
          const routed = rejected(cold.callTool("s.write", { n: "routing" }, { signal: routing.signal }))
          routing.abort()
          assert.strictEqual(await routed, "McpBridgeError:Aborted")
          await cold.callTool("s.write", { n: "after" })
          assert.strictEqual(writes(), 1)
          // Already aborted on a warm bridge.
          assert.strictEqual(
            await rejected(cold.callTool("s.write", { n: "aborted" }, { signal: AbortSignal.abort() })),
            "McpBridgeError:Aborted"
          )
          await cold.callTool("s.write", { n: "after" })
          assert.strictEqual(writes(), 2)
          await cold.close()

          // The pool: the only session is busy; the call waits for it and is aborted meanwhile.
          const pooled = await facade(server, { pool: { max: 1, concurrency: 1 } })
          await pooled.callTool("s.echo", {})
          const busy = pooled.callTool("s.held", {})
          await server.until(() => server.held("held") === 1)
          const waiting = new AbortController()
          const queued = rejected(pooled.callTool("s.write", { n: "pool" }, { signal: waiting.signal }))
          waiting.abort()
          assert.strictEqual(await queued, "McpBridgeError:Aborted")
          server.release("held")
          await busy
          await pooled.callTool("s.write", { n: "after" })
          assert.strictEqual(writes(), 3)
          await pooled.close()

          // The throttler: one call a second; the second call waits for its turn and is aborted meanwhile.
          const throttled = await facade(server, { throttle: { perSecond: 1, maxWait: "5 seconds" } })
          await throttled.callTool("s.write", { n: "first" })
          const turn = new AbortController()
          const limited = rejected(throttled.callTool("s.write", { n: "throttle" }, { signal: turn.signal }))
          await new Promise((resolve) => setTimeout(resolve, 20))
          turn.abort()
          assert.strictEqual(await limited, "McpBridgeError:Aborted")
          await throttled.callTool("s.write", { n: "after" })
          assert.strictEqual(writes(), 5)
          await throttled.close()

          // Backoff between retries: the first attempt times out, the signal aborts during the backoff.
          const retrying = await facade(server, {
            retry: { times: 3, base: "300 millis" },
            deadline: "10 seconds",
            tools: { slow: { readOnly: true, timeout: "50 millis" } }
          })
          await retrying.callTool("s.echo", {})
          const backoff = new AbortController()
          const retried = rejected(retrying.callTool("s.slow", {}, { signal: backoff.signal }))
          await server.until(() => server.calls("slow") === 1 && server.cancelled() >= 1)
          backoff.abort()
          assert.strictEqual(await retried, "McpBridgeError:Aborted")
          await new Promise((resolve) => setTimeout(resolve, 900))
          await retrying.callTool("s.echo", {})
          assert.strictEqual(server.calls("slow"), 1)
          await retrying.close()
        } finally {
          await server.close()
        }
      }))

    it.live("coalesced callers keep their own signals: the shared call is cancelled when the last caller leaves", () =>
      Effect.promise(async () => {
        const server = TestServer.make({ tools })
        const bridge = await facade(server, { tools: { held: { readOnly: true } } })
        const outcome = (p: Promise<{ readonly content: ReadonlyArray<unknown> }>) =>
          p.then((r) => text(r), (e) => `${e?._tag}:${e?.reason?._tag}`)
        try {
          await bridge.callTool("s.echo", {})
          // Two identical calls, each with its own signal: one upstream call.
          const [a, b] = [new AbortController(), new AbortController()]
          const first = outcome(bridge.callTool("s.held", { q: 1 }, { signal: a.signal }))
          const second = outcome(bridge.callTool("s.held", { q: 1 }, { signal: b.signal }))
          await server.until(() => server.held("held") === 1)
          // One caller leaves: the call goes on for the other.
          a.abort()
          assert.strictEqual(await first, "McpBridgeError:Aborted")
          assert.strictEqual(server.release("held"), 1)
          assert.strictEqual(await second, "{\"q\":1}")
          assert.deepStrictEqual([server.calls("held"), server.cancelled()], [1, 0])
          // Both leave: the shared call is cancelled on the wire, once.
          const [c, d] = [new AbortController(), new AbortController()]
          const third = outcome(bridge.callTool("s.held", { q: 2 }, { signal: c.signal }))
          const fourth = outcome(bridge.callTool("s.held", { q: 2 }, { signal: d.signal }))
          await server.until(() => server.held("held") === 1)
          c.abort()
          d.abort()
          assert.deepStrictEqual([await third, await fourth], ["McpBridgeError:Aborted", "McpBridgeError:Aborted"])
          await server.until(() => server.cancelled() === 1 && server.inFlight() === 0)
          assert.strictEqual(server.calls("held"), 2)
        } finally {
          await bridge.close()
          await server.close()
        }
      }))

    it.live("aborting callMany's signal cancels every call still running: their outcomes are Aborted", () =>
      Effect.promise(async () => {
        const server = TestServer.make({ tools })
        const bridge = await facade(server)
        try {
          const controller = new AbortController()
          const pending = bridge.callMany(
            [{ target: "s.hang" }, { target: "s.hang", arguments: { n: 2 } }],
            { signal: controller.signal }
          )
          await server.until(() => server.inFlight() === 2)
          controller.abort("the user left")
          const outcomes = await pending
          assert.deepStrictEqual(
            outcomes.map((o) => o.ok ? "ok" : `${o.error._tag}:${o.error.reason._tag}`),
            ["McpBridgeError:Aborted", "McpBridgeError:Aborted"]
          )
          const first = outcomes[0]
          assert.strictEqual(
            !first?.ok && first?.error.reason._tag === "Aborted" && first.error.reason.reason,
            "the user left"
          )
          await server.until(() => server.cancelled() === 2 && server.inFlight() === 0)
        } finally {
          await bridge.close()
          await server.close()
        }
      }))

    it.live("close ends every session; a call after close is refused", () =>
      Effect.promise(async () => {
        const server = TestServer.make({ tools })
        const bridge = await facade(server)
        await bridge.callTool("s.echo", {})
        assert.strictEqual(server.openSessions(), 1)
        await bridge.close()
        await server.until(() => server.openSessions() === 0)
        assert.strictEqual(
          await bridge.callTool("s.echo", {}).then(() => "answered", () => "rejected"),
          "rejected"
        )
        await server.close()
      }))
  })

  describe("layerProduction", () => {
    const echo: ReadonlyArray<TestServer.TestTool> = [{ name: "echo", respond: { kind: "echo" } }]
    const resolved = (config: object, env: Record<string, string> = {}) =>
      Effect.gen(function*() {
        const alpha = TestServer.make({ tools: echo })
        const beta = TestServer.make({ tools: echo })
        const servers = yield* Effect.gen(function*() {
          const servers = (yield* BridgeConfig.BridgeConfig).servers
          yield* until(alpha, () => alpha.openSessions() === servers.get("alpha")!.pool.min)
          return servers
        }).pipe(
          Effect.provide(McpBridge.layerProduction(config, {
            transport: McpTransport.layer({ memory: { alpha: alpha.connect, beta: beta.connect } })
          })),
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
        )
        return { servers, alpha, beta }
      })

    it.effect("applies the seed's production settings: pool 2-20, idle 5 min, health 60 s, throttle 50/s 1000/min", () =>
      Effect.gen(function*() {
        const { servers } = yield* resolved({ mcpServers: { alpha: { type: "memory" } } })
        const s = servers.get("alpha")!
        assert.strictEqual(s.pool.min, 2)
        assert.strictEqual(s.pool.max, 20)
        assert.isTrue(Duration.equals(s.pool.idleTimeToLive, Duration.minutes(5)))
        assert.isTrue(Duration.equals(s.pool.healthCheckInterval, Duration.seconds(60)))
        assert.deepStrictEqual(
          { perSecond: s.throttle?.perSecond, perMinute: s.throttle?.perMinute, concurrency: s.throttle?.concurrency },
          { perSecond: 50, perMinute: 1000, concurrency: 20 }
        )
      }))

    it.effect("a reconfiguration keeps the production settings under the new configuration", () =>
      Effect.gen(function*() {
        const alpha = TestServer.make({ tools: echo })
        const beta = TestServer.make({ tools: echo })
        yield* Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          const applied = yield* bridge.reconfigure({
            mcpServers: { alpha: { type: "memory" }, beta: { type: "memory" } }
          })
          assert.deepStrictEqual([applied.added, applied.changed, applied.unchanged], [["beta"], [], ["alpha"]])
          const beta2 = (yield* BridgeConfig.BridgeConfig).servers.get("beta")!
          assert.deepStrictEqual([beta2.pool.min, beta2.throttle?.perSecond], [2, 50])
        }).pipe(
          Effect.provide(McpBridge.layerProduction({ mcpServers: { alpha: { type: "memory" } } }, {
            transport: McpTransport.layer({ memory: { alpha: alpha.connect, beta: beta.connect } })
          })),
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ MCP_BRIDGE_EXPORT: "false" })))
        )
      }))

    it.effect("user config overrides the defaults, the environment overrides both, a server's own section wins", () =>
      Effect.gen(function*() {
        const { servers } = yield* resolved(
          {
            bridge: { pool: { max: 8, idleTimeToLive: "1 minute" }, throttle: { perSecond: 5 } },
            mcpServers: { alpha: { type: "memory" }, beta: { type: "memory", bridge: { pool: { max: 3 } } } }
          },
          { MCP_BRIDGE_POOL_MAX: "40", MCP_BRIDGE_THROTTLE_PER_MINUTE: "600", MCP_BRIDGE_EXPORT: "false" }
        )
        const alpha = servers.get("alpha")!
        assert.strictEqual(alpha.pool.max, 40)
        assert.strictEqual(alpha.pool.min, 2)
        assert.isTrue(Duration.equals(alpha.pool.idleTimeToLive, Duration.minutes(1)))
        assert.strictEqual(alpha.throttle?.perSecond, 5)
        assert.strictEqual(alpha.throttle?.perMinute, 600)
        assert.strictEqual(servers.get("beta")!.pool.max, 3)
      }))

    it.effect.each(
      [
        ["MCP_BRIDGE_POOL_MIN", "two"],
        ["MCP_BRIDGE_CACHE_TTL", "soon"],
        ["MCP_BRIDGE_POOL_IDLE_TTL", "later"]
      ] as const
    )(
      "a bad environment value is a BridgeConfigError naming the variable: %s",
      ([name, value]) =>
        Effect.gen(function*() {
          const config = { mcpServers: { alpha: { type: "memory" } } }
          const error = yield* Effect.flip(resolved(config, { [name]: value }))
          assert.strictEqual(error._tag, "BridgeConfigError")
          assert.include(error.message, name)
          assert.isTrue(error.reason._tag === "Invalid" && error.reason.path[0] === "environment")
        })
    )

    it.effect("durations from the environment reach the pool", () =>
      Effect.gen(function*() {
        const { servers } = yield* resolved({ mcpServers: { alpha: { type: "memory" } } }, {
          MCP_BRIDGE_POOL_IDLE_TTL: "2 minutes",
          MCP_BRIDGE_CACHE_TTL: "10 minutes"
        })
        assert.isTrue(Duration.equals(servers.get("alpha")!.pool.idleTimeToLive, Duration.minutes(2)))
      }))
  })
})
