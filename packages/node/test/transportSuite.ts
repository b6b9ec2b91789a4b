/**
 * One suite for every transport the bridge speaks (stdio, Streamable HTTP, legacy HTTP+SSE, in-memory): each
 * transport runs the same tests, against the same test server, through `McpBridge.layer` with `NodeTransport.layer`.
 */
import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig, ConnectionPool, McpBridge, McpBridgeError } from "@mcp-bridge/core"
import { NodeTransport } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { Deferred, Effect, Exit, Fiber, Layer, Scope, Stream } from "effect"

/** The tools every transport is tested with. */
export const suiteTools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "fails", respond: { kind: "isError", message: "no such record" } },
  { name: "hang", respond: { kind: "hang" } },
  { name: "crash", respond: { kind: "crash" } }
]

/** The server every transport is tested with: `suiteTools`, resources, a template, a prompt, and tools that change them. */
export const suiteSpec: TestServer.TestServerSpec = {
  tools: [
    ...suiteTools,
    { name: "add_resource", respond: { kind: "addResource", uri: "memo://added", name: "added", text: "new" } },
    { name: "touch", respond: { kind: "updateResource", uri: "memo://notes" } }
  ],
  resources: [{ uri: "memo://notes", name: "notes", text: "the notes" }],
  resourceTemplates: [{ uriTemplate: "file:///{path}", name: "files", complete: { path: ["a.txt", "b.txt"] } }],
  prompts: [{ name: "greet", arguments: [{ name: "who", complete: ["world"] }], text: "Hello, {who}!" }]
}

/** A server of `suiteSpec` reachable over one transport. */
export interface Fixture {
  /** The `mcpServers` entry of the server (named `s`). */
  readonly entry: Record<string, unknown>
  /** The protocol version the bridge should negotiate with it. */
  readonly protocolVersion: "2026-07-28" | "2025-11-25"
  /** Options of the transport layer (e.g. the in-memory servers). */
  readonly transport?: NodeTransport.Options | undefined
  /**
   * True when every session reaches the same server counters (`__stats`); false for stdio, where each session is a
   * process of its own.
   */
  readonly sharedStats: boolean
  /** After a crash: brings the server back (an HTTP server listens again on its port); nothing for the others. */
  readonly restart: Effect.Effect<void>
  /**
   * Waits (bounded) until nothing of the sessions with these child pids (stdio) is left at the server: no open
   * session, no event stream, no child process.
   */
  readonly untilNothingOpen: (pids: ReadonlyArray<number>) => Effect.Effect<void>
}

const text = (result: { readonly content: ReadonlyArray<unknown> }) => (result.content[0] as { text: string }).text

/** The test server's own counters (its `__stats` tool), read through the bridge. */
const serverStats = McpBridge.McpBridge.use((bridge) => bridge.callTool("s.__stats")).pipe(
  Effect.map((r) => r.structuredContent as { calls: Record<string, number>; inFlight: number; cancelled: number })
)

/** Reads the server's counters until `predicate` holds, for up to 5 seconds: a wait on the server, bounded. */
const untilStats = (predicate: (stats: Effect.Success<typeof serverStats>) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 250; i++) {
      const stats = yield* serverStats
      if (predicate(stats)) return stats
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.die(new Error("the test server's counters never got there"))
  })

const poolStats = Effect.flatMap(ConnectionPool.ConnectionPool, (pool) => pool.stats)

/** Reads the pool's own figures (no call) until `predicate` holds for the first pool, for up to 5 seconds. */
const untilPool = (predicate: (stats: ConnectionPool.PoolStats) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 250; i++) {
      const [stats] = yield* poolStats
      if (stats !== undefined && predicate(stats)) return stats
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.die(new Error("the pool never got there"))
  })

/**
 * The shared suite: `makeFixture` starts a server of `suiteTools` for one test (in its scope) and says how to reach
 * it.
 */
export const transportSuite = (
  name: string,
  makeFixture: () => Effect.Effect<Fixture, never, Scope.Scope>
) =>
  describe(`${name} transport`, () => {
    const bridgeOf = (fixture: Fixture, bridge: Record<string, unknown> = {}) =>
      McpBridge.layer(
        { mcpServers: { s: { ...fixture.entry, bridge: { retry: false, ...bridge } } } },
        { transport: NodeTransport.layer(fixture.transport ?? {}), cache: false, coalescing: false }
      )
    const withBridge = <A, E>(
      effect: Effect.Effect<A, E, McpBridge.Services> | ((fixture: Fixture) => Effect.Effect<A, E, McpBridge.Services>),
      bridge: Record<string, unknown> = {}
    ) =>
      Effect.gen(function*() {
        const fixture = yield* makeFixture()
        const body = typeof effect === "function" ? effect(fixture) : effect
        return yield* body.pipe(Effect.provide(bridgeOf(fixture, bridge)))
      }).pipe(Effect.scoped)

    it.live("opens a session on the expected protocol version and transport", () =>
      Effect.gen(function*() {
        const fixture = yield* makeFixture()
        const [version, kind] = yield* Effect.gen(function*() {
          const config = yield* BridgeConfig.BridgeConfig
          const pool = yield* ConnectionPool.ConnectionPool
          return yield* pool.withSession(
            config.servers.get("s")!,
            (session) => Effect.succeed([session.protocolVersion, session.transport] as const)
          )
        }).pipe(Effect.provide(bridgeOf(fixture)))
        assert.strictEqual(version, fixture.protocolVersion)
        assert.strictEqual(kind, BridgeConfig.transportKind(fixture.entry as any))
      }).pipe(Effect.scoped))

    it.live("lists the server's tools", () =>
      withBridge(Effect.gen(function*() {
        const listed = yield* McpBridge.McpBridge.use((bridge) => bridge.listTools())
        assert.deepStrictEqual(listed.map((t) => t.qualifiedName).sort(), [
          "s.__stats",
          "s.add_resource",
          "s.crash",
          "s.echo",
          "s.fails",
          "s.hang",
          "s.touch"
        ])
        assert.deepStrictEqual(listed.find((t) => t.name === "echo")?.annotations, { readOnlyHint: true })
      })))

    it.live("lists and reads resources and templates, gets a prompt, completes an argument, pings", () =>
      withBridge(Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        assert.deepStrictEqual((yield* bridge.listResources()).map((r) => r.uri), ["memo://notes"])
        assert.deepStrictEqual((yield* bridge.listResourceTemplates()).map((t) => t.uriTemplate), ["file:///{path}"])
        assert.deepStrictEqual((yield* bridge.listPrompts()).map((p) => p.qualifiedName), ["s.greet"])
        const read = yield* bridge.readResource("memo://notes")
        assert.strictEqual((read.contents[0] as { text: string }).text, "the notes")
        const templated = yield* bridge.readResource("file:///x.md")
        assert.deepStrictEqual(JSON.parse((templated.contents[0] as { text: string }).text), { path: "x.md" })
        const prompt = yield* bridge.getPrompt("s.greet", { who: "world" })
        assert.strictEqual((prompt.messages[0]!.content as { text: string }).text, "Hello, world!")
        const completed = yield* bridge.complete({
          ref: { type: "ref/resource", uri: "file:///{path}" },
          argument: { name: "path", value: "b" }
        })
        assert.deepStrictEqual(completed.completion.values, ["b.txt"])
        const unknown = yield* Effect.flip(bridge.readResource("memo://none"))
        assert.strictEqual(unknown._tag === "McpBridgeError" ? unknown.reason._tag : unknown._tag, "UnknownResource")
        yield* bridge.ping("s")
      })))

    it.live("a subscribed resource's updates and the server's list changes reach bridge.changes", () =>
      withBridge(
        Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          assert.strictEqual((yield* bridge.listResources()).length, 1)
          yield* bridge.subscribeResource("memo://notes")
          const updated = yield* bridge.changes.pipe(
            Stream.filter((change) => change._tag === "ResourceUpdated"),
            Stream.take(1),
            Stream.runCollect,
            Effect.forkChild({ startImmediately: true })
          )
          yield* bridge.callTool("s.touch")
          assert.deepStrictEqual(Array.from(yield* Fiber.join(updated)), [{
            _tag: "ResourceUpdated",
            server: "s",
            uri: "memo://notes"
          }])
          const listChanged = yield* bridge.changes.pipe(
            Stream.filter((change) => change._tag === "ListChanged"),
            Stream.take(1),
            Stream.runCollect,
            Effect.forkChild({ startImmediately: true })
          )
          yield* bridge.callTool("s.add_resource")
          assert.deepStrictEqual(Array.from(yield* Fiber.join(listChanged)), [{
            _tag: "ListChanged",
            server: "s",
            list: "resources"
          }])
          assert.deepStrictEqual((yield* bridge.listResources()).map((r) => r.uri).sort(), [
            "memo://added",
            "memo://notes"
          ])
          yield* bridge.unsubscribeResource("memo://notes")
        }).pipe(Effect.timeout("20 seconds"))
      ))

    it.live("calls a tool, four calls at once on one session", () =>
      withBridge(Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        const results = yield* Effect.forEach([1, 2, 3, 4], (i) => bridge.callTool("s.echo", { i }), {
          concurrency: 4
        })
        assert.deepStrictEqual(results.map(text), [1, 2, 3, 4].map((i) => `{"i":${i}}`))
        assert.deepStrictEqual(results[0]!.structuredContent, { arguments: { i: 1 }, meta: {} })
        assert.strictEqual((yield* serverStats).calls.echo, 4)
        assert.strictEqual((yield* poolStats)[0]?.created, 1)
      })))

    it.live("an isError result is a successful call", () =>
      withBridge(Effect.gen(function*() {
        const result = yield* McpBridge.McpBridge.use((bridge) => bridge.callTool("s.fails"))
        assert.isTrue(result.isError)
        assert.strictEqual(text(result), "no such record")
      })))

    it.live("a call past its deadline fails with DeadlineExceeded, is cancelled on the wire, and keeps its session", () =>
      withBridge(Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        // Warm first: the deadline is the call's, not a budget for starting the server.
        assert.strictEqual(text(yield* bridge.callTool("s.echo", { before: 1 })), "{\"before\":1}")
        const error = yield* Effect.flip(bridge.callTool("s.hang", {}, { timeout: "300 millis" }))
        assert.deepStrictEqual(
          error._tag === "McpBridgeError" ? error.reason : error,
          new McpBridgeError.DeadlineExceeded({ server: "s", tool: "hang", timeoutMillis: 300, phase: "call" })
        )
        // The session is out of service while its probe runs; then back (no lease left), and nothing was retired.
        yield* untilPool((p) => p.inUse === 0)
        // The server saw exactly one cancellation, and its state (these counters; for stdio, its process) is intact.
        const stats = yield* untilStats((s) => s.cancelled === 1 && s.inFlight === 0)
        assert.deepStrictEqual([stats.calls.hang, stats.calls.echo, stats.cancelled], [1, 1, 1])
        // The session still answered its probe: it serves the next call, and no session was opened or retired.
        assert.strictEqual(text(yield* bridge.callTool("s.echo", { after: 1 })), "{\"after\":1}")
        const [pool] = yield* poolStats
        assert.deepStrictEqual([pool?.created, pool?.invalidated], [1, 0])
        assert.strictEqual((yield* serverStats).calls.echo, 2)
      })))

    it.live("interrupting a call cancels it on the wire", () =>
      withBridge(Effect.gen(function*() {
        const bridge = yield* McpBridge.McpBridge
        const fiber = yield* Effect.forkChild(bridge.callTool("s.hang", {}))
        yield* untilStats((s) => s.inFlight === 1)
        yield* Fiber.interrupt(fiber)
        const stats = yield* untilStats((s) => s.cancelled === 1 && s.inFlight === 0)
        assert.strictEqual(stats.calls.hang, 1)
      })))

    it.live("a server that dies mid-call fails that call with Closed; the next call gets a new session", () =>
      Effect.gen(function*() {
        const fixture = yield* makeFixture()
        yield* Effect.gen(function*() {
          const bridge = yield* McpBridge.McpBridge
          assert.strictEqual(text(yield* bridge.callTool("s.echo", { before: 1 })), "{\"before\":1}")
          const error = yield* Effect.flip(bridge.callTool("s.crash", {}, { timeout: "20 seconds" }))
          assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "Closed", String(error))
          yield* fixture.restart
          // The pool may have tried to replace the dead session while the server was down: a read-only call retries
          // a failed connect, as it would in production.
          assert.strictEqual(text(yield* bridge.callTool("s.echo", { after: 1 })), "{\"after\":1}")
          const [stats] = yield* poolStats
          assert.deepStrictEqual([stats?.created, stats?.invalidated], [2, 1])
        }).pipe(
          Effect.provide(
            bridgeOf(fixture, { retry: { times: 3, base: "50 millis" }, tools: { echo: { readOnly: true } } })
          )
        )
      }).pipe(Effect.scoped))

    it.live("closing the bridge leaves nothing behind: no session, no stream, no child process", () =>
      Effect.gen(function*() {
        const fixture = yield* makeFixture()
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(bridgeOf(fixture, { pool: { min: 2, concurrency: 1 } }), scope)
        const pids = yield* Effect.gen(function*() {
          const config = yield* BridgeConfig.BridgeConfig
          const pool = yield* ConnectionPool.ConnectionPool
          assert.strictEqual(text(yield* McpBridge.McpBridge.use((b) => b.callTool("s.echo", { n: 1 }))), "{\"n\":1}")
          // Three sessions leased at once (none is released before all three are held).
          const allHeld = yield* Deferred.make<void>()
          let holding = 0
          return yield* Effect.forEach([1, 2, 3], () =>
            pool.withSession(config.servers.get("s")!, (session) =>
              Effect.gen(function*() {
                if (++holding === 3) {
                  yield* Deferred.succeed(allHeld, undefined)
                }
                yield* Deferred.await(allHeld)
                return session.pid
              })), { concurrency: 3 })
        }).pipe(Effect.provide(context))
        assert.strictEqual(pids.length, 3)
        yield* Scope.close(scope, Exit.void)
        yield* fixture.untilNothingOpen(pids.filter((pid): pid is number =>
          pid !== undefined
        ))
      }).pipe(Effect.scoped))
  })
