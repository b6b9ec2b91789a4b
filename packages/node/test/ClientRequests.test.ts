/**
 * What servers ask their client, against real servers: the test server's interactive tools as stdio child
 * processes and over Streamable HTTP, each dual-era (negotiated as 2026-07-28: `input_required` results the bridge
 * fulfils and retries) and legacy-only (2025-11-25: real server→client requests), and `server-everything` (SDK v1).
 * Through `McpBridge.layer` with `ClientHandlers`, and through the Promise facade (`createBridge`).
 */
import { assert, describe, it } from "@effect/vitest"
import {
  BridgeConfig,
  CallerIdentity,
  ClientHandlers,
  ConnectionPool,
  McpBridge,
  McpSessionError
} from "@mcp-bridge/core"
import { createBridge, NodeTransport } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import type { ElicitResult, Progress, Root } from "@modelcontextprotocol/client"
import { Context, Effect, Fiber, Latch, Layer, PubSub, type Scope, Stream } from "effect"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"

const MODERN = "2026-07-28" as const
const LEGACY = "2025-11-25" as const

// -----------------------------------------------------------------------------
// The server
// -----------------------------------------------------------------------------

/** Quotes, a backslash, a tab, two spaces, non-ASCII: what a client that re-encodes a state would change. */
const requestStateText = "état \"opaque\" \\ tab\there  ✓ 🙂"
const form = {
  type: "object",
  properties: {
    name: { type: "string", title: "Name" },
    confirm: { type: "boolean", default: true },
    count: { type: "integer", default: 3 },
    color: { type: "string", enum: ["red", "green", "blue"], default: "green" }
  },
  required: ["name"]
}
const defaultsApplied = { name: "Ada", confirm: true, count: 3, color: "green" }
const consentUrl = "https://auth.example.com/consent?session=7"

// A scripted user answers by the question's first word: "decline", "fail", "wait" (until the test lets it go), else
// the form with only its required field.
const tools: ReadonlyArray<TestServer.TestTool> = [
  {
    name: "elicit",
    respond: { kind: "elicit", message: "Who are you?", requestedSchema: form, requestState: requestStateText }
  },
  { name: "elicit_twice", respond: { kind: "elicit", message: "Again", requestedSchema: form, rounds: 2 } },
  { name: "elicit_decline", respond: { kind: "elicit", message: "decline this", requestedSchema: form } },
  { name: "elicit_fail", respond: { kind: "elicit", message: "fail this", requestedSchema: form } },
  { name: "elicit_cached", respond: { kind: "elicit", message: "Cached?", requestedSchema: form } },
  { name: "elicit_wait", respond: { kind: "elicit", message: "wait for it", requestedSchema: form } },
  { name: "url", respond: { kind: "elicitUrl", url: consentUrl, message: "Sign in" } },
  { name: "sample", respond: { kind: "sample", prompt: "What is 2+2?" } },
  { name: "roots", respond: { kind: "roots" } },
  { name: "progress", respond: { kind: "progress", steps: 5 } },
  { name: "log", respond: { kind: "log", levels: ["debug", "info", "notice", "warning", "error", "critical"] } },
  { name: "capabilities", respond: { kind: "capabilities" } },
  { name: "echo", respond: { kind: "echo" } }
]
const spec = (era: "dual" | "legacy"): TestServer.TestServerSpec => ({ name: "interact", era, tools })

// The operator's policy: a cacheable interactive tool, a coalescable one, and a cacheable plain tool to compare.
const policy = {
  retry: false,
  tools: {
    elicit_cached: { cache: "1 minute" },
    elicit_wait: { readOnly: true, cache: false },
    echo: { cache: "1 minute" }
  }
}

type Stats = {
  readonly calls: Readonly<Record<string, number>>
  readonly rootsListChanged: number
  readonly pid: number
}

/** One way to reach a test server, and its counters. */
interface Fixture {
  /** The `mcpServers` entry (named `s`). */
  readonly entry: Record<string, unknown>
  /** The server's counters: through the bridge (`__stats`) for a stdio child, from the server object over HTTP. */
  readonly stats: Effect.Effect<Stats, unknown, McpBridge.McpBridge>
  /** Waits (bounded) until `predicate` holds of the server's counters. */
  readonly until: (predicate: (stats: Stats) => boolean) => Effect.Effect<void, unknown, McpBridge.McpBridge>
}

const viaBridge = McpBridge.McpBridge.use((bridge) => bridge.callTool("s.__stats")).pipe(
  Effect.map((result) => result.structuredContent as unknown as Stats)
)

const stdioFixture = (era: "dual" | "legacy"): Effect.Effect<Fixture> =>
  Effect.sync(() => {
    const { args, command } = TestServer.stdioCommand(spec(era))
    return {
      entry: { command, args: [...args] },
      stats: viaBridge,
      // A child process's state is read through the bridge: every 20 ms, for up to 5 seconds.
      until: (predicate) =>
        Effect.gen(function*() {
          for (let i = 0; i < 250; i++) {
            if (predicate(yield* viaBridge)) return
            yield* Effect.sleep("20 millis")
          }
          return yield* Effect.die(new Error("the server's counters never got there"))
        })
    }
  })

const httpFixture = (era: "dual" | "legacy"): Effect.Effect<Fixture, never, Scope.Scope> =>
  Effect.map(TestServer.httpScoped(spec(era)), (server) => {
    const stats = (): Stats => ({
      calls: Object.fromEntries(tools.map((tool) => [tool.name, server.calls(tool.name)])),
      rootsListChanged: server.rootsListChanged(),
      pid: process.pid
    })
    return {
      entry: { url: server.url },
      stats: Effect.sync(stats),
      until: (predicate) => Effect.promise(() => server.until(() => predicate(stats())))
    }
  })

interface Target {
  readonly name: string
  readonly version: typeof MODERN | typeof LEGACY
  readonly fixture: Effect.Effect<Fixture, never, Scope.Scope>
}

const targets: ReadonlyArray<Target> = [
  { name: "stdio, dual-era server", version: MODERN, fixture: stdioFixture("dual") },
  { name: "stdio, legacy server", version: LEGACY, fixture: stdioFixture("legacy") },
  { name: "Streamable HTTP, dual-era server", version: MODERN, fixture: httpFixture("dual") },
  { name: "Streamable HTTP, legacy server", version: LEGACY, fixture: httpFixture("legacy") }
]

// -----------------------------------------------------------------------------
// The user
// -----------------------------------------------------------------------------

interface Asked {
  readonly kind: "elicit" | "sample" | "roots"
  readonly params: unknown
  readonly origin: ClientHandlers.Origin
}

interface Logged {
  readonly message: ClientHandlers.LogMessage
  readonly origin: ClientHandlers.Origin
}

/** The application's side: handlers that answer like a scripted user and record what they were asked. */
interface User {
  readonly handlers: ClientHandlers.Handlers
  readonly asked: Array<Asked>
  readonly logs: Array<Logged>
  /** Opens the gate that "wait" questions wait at. */
  readonly release: Effect.Effect<void>
  /** Closes it again. */
  readonly hold: Effect.Effect<void>
  readonly setRoots: (roots: ReadonlyArray<Root>) => Effect.Effect<void>
}

const firstRoots: ReadonlyArray<Root> = [{ uri: "file:///work/one", name: "one" }]
const nextRoots: ReadonlyArray<Root> = [{ uri: "file:///work/two", name: "two" }, { uri: "file:///work/three" }]

const makeUser = (options: {
  readonly only?: ReadonlyArray<"elicit" | "sample" | "roots" | "log">
  readonly elicitUrl?: boolean
  readonly logLevel?: ClientHandlers.Handlers["logLevel"]
  /** Every elicitation waits at the gate. */
  readonly holdAll?: boolean
} = {}): Effect.Effect<User, never, Scope.Scope> =>
  Effect.gen(function*() {
    const asked: Array<Asked> = []
    const logs: Array<Logged> = []
    const gate = yield* Latch.make(false)
    const changes = yield* PubSub.unbounded<void>()
    let roots = firstRoots
    const wants = (kind: "elicit" | "sample" | "roots" | "log") =>
      options.only === undefined || options.only.includes(kind)
    const handlers: ClientHandlers.Handlers = {
      ...(wants("elicit") ?
        {
          elicitUrl: options.elicitUrl ?? true,
          elicit: (params, origin) =>
            Effect.suspend((): Effect.Effect<ElicitResult, Error> => {
              asked.push({ kind: "elicit", params, origin })
              if (params.mode === "url") return Effect.succeed({ action: "accept" as const })
              const accept = { action: "accept" as const, content: { name: "Ada" } }
              if (options.holdAll === true || params.message.startsWith("wait")) return Effect.as(gate.await, accept)
              if (params.message.startsWith("decline")) return Effect.succeed({ action: "decline" as const })
              if (params.message.startsWith("fail")) return Effect.fail(new Error("the user closed the dialog"))
              return Effect.succeed(accept)
            })
        } :
        {}),
      ...(wants("sample") ?
        {
          sample: (params, origin) =>
            Effect.sync(() => {
              asked.push({ kind: "sample", params, origin })
              const last = params.messages[params.messages.length - 1]?.content
              const prompt = last !== undefined && !Array.isArray(last) && last.type === "text" ? last.text : "?"
              return {
                role: "assistant" as const,
                model: "test-model",
                content: { type: "text" as const, text: `answer to: ${prompt}` }
              }
            })
        } :
        {}),
      ...(wants("roots") ?
        {
          roots: {
            list: (origin) =>
              Effect.sync(() => {
                asked.push({ kind: "roots", params: undefined, origin })
                return roots
              }),
            changes: Stream.fromPubSub(changes)
          }
        } :
        {}),
      ...(wants("log") ? { log: (message, origin) => Effect.sync(() => void logs.push({ message, origin })) } : {}),
      ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel })
    }
    return {
      handlers,
      asked,
      logs,
      release: Effect.asVoid(gate.open),
      hold: Effect.asVoid(gate.close),
      setRoots: (next) =>
        Effect.suspend(() => {
          roots = next
          return PubSub.publish(changes, undefined)
        })
    }
  })

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

const bridgeLayer = (fixture: Fixture, handlers: ClientHandlers.Handlers, bridge: Record<string, unknown> = {}) =>
  McpBridge.layer(
    { mcpServers: { s: { ...fixture.entry, bridge: { ...policy, ...bridge } } } },
    { transport: NodeTransport.layer(), handlers: ClientHandlers.layer(handlers) }
  )

const call = (tool: string, args: Record<string, unknown> = {}, options: McpBridge.CallOptions = {}) =>
  McpBridge.McpBridge.use((bridge) => bridge.callTool(`s.${tool}`, args, options))

/** The tool's json answer. */
const answer = (tool: string, args: Record<string, unknown> = {}, options: McpBridge.CallOptions = {}) =>
  Effect.map(call(tool, args, options), (result) => {
    assert.notStrictEqual(result.isError, true, JSON.stringify(result.content))
    return result.structuredContent as Record<string, any>
  })

const session = Effect.gen(function*() {
  const config = yield* BridgeConfig.BridgeConfig
  const pool = yield* ConnectionPool.ConnectionPool
  return yield* pool.withSession(
    config.servers.get("s")!,
    (session) =>
      Effect.succeed({
        protocolVersion: session.protocolVersion,
        era: session.era,
        pid: session.pid,
        tentative: session.prior === undefined
      })
  )
})
const created = Effect.map(
  Effect.flatMap(ConnectionPool.ConnectionPool, (pool) => pool.stats),
  (stats) => stats.reduce((n, s) => n + s.created, 0)
)

/** Waits until the pool has opened `n` sessions (bounded like `eventually`). */
const untilCreated = (n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 4_000 && (yield* created) < n; i++) yield* Effect.sleep("5 millis")
    assert.strictEqual(yield* created, n)
  })

/**
 * Waits for what the handlers record in this process, checking every 5 ms; bounded (20 seconds) only so that a test
 * that is wrong fails rather than hangs: on a loaded machine a process takes what it takes to start.
 */
const eventually = (predicate: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 4_000 && !predicate(); i++) yield* Effect.sleep("5 millis")
    assert.isTrue(predicate(), "the handlers never saw it")
  })

const since = <A>(array: ReadonlyArray<A>, from: number) => array.slice(from)

/**
 * A tool whose server may not ask this client: a 2025-era server's SDK answers `isError` with `message`; a 2026-07-28
 * server's SDK answers the call with JSON-RPC error -32021 (the request declared no such capability).
 */
const refused = (tool: string, message: string) =>
  Effect.gen(function*() {
    if ((yield* session).era === "modern") {
      const error = yield* Effect.flip(call(tool))
      assert.instanceOf(error, McpSessionError.McpSessionError)
      assert.deepStrictEqual(
        error.reason._tag === "Protocol" ? error.reason.code : error.reason._tag,
        -32021,
        error.message
      )
    } else {
      const result = yield* call(tool)
      assert.isTrue(result.isError)
      assert.deepStrictEqual(result.content, [{ type: "text", text: message }])
    }
  })

/** One scenario's server, user and bridge, shared by the tests of one target. */
class Scenario extends Context.Service<Scenario, { readonly fixture: Fixture; readonly user: User }>()(
  "test/ClientRequests/Scenario"
) {}

const scenarioLayer = (target: Target) =>
  Layer.unwrap(Effect.gen(function*() {
    const fixture = yield* target.fixture
    const user = yield* makeUser({ logLevel: "info" })
    return bridgeLayer(fixture, user.handlers).pipe(Layer.merge(Layer.succeed(Scenario, { fixture, user })))
  }))

/** A bridge of its own for one test, with other handlers. */
const withOwnBridge = <A, E>(
  target: Target,
  userOptions: Parameters<typeof makeUser>[0],
  body: (user: User, fixture: Fixture) => Effect.Effect<A, E, McpBridge.Services>,
  bridge: Record<string, unknown> = {}
) =>
  Effect.gen(function*() {
    const fixture = yield* target.fixture
    const user = yield* makeUser(userOptions)
    return yield* body(user, fixture).pipe(Effect.provide(bridgeLayer(fixture, user.handlers, bridge)))
  }).pipe(Effect.scoped)

// -----------------------------------------------------------------------------
// Tests
// -----------------------------------------------------------------------------

describe("ClientRequests", () => {
  for (const target of targets) {
    const modern = target.version === MODERN
    // On 2026-07-28 the retry of an `input_required` result is a `tools/call` of its own.
    const rounds = (n: number) => modern ? n + 1 : 1

    describe(target.name, () => {
      it.live("capabilities: none without handlers; a server that asks anyway gets no answer from a user", () =>
        withOwnBridge(target, { only: [] }, (user) =>
          Effect.gen(function*() {
            assert.deepStrictEqual((yield* session).protocolVersion, target.version)
            assert.deepStrictEqual((yield* answer("capabilities")).capabilities, {})
            // The server's SDK refuses to ask a client that declared no elicitation.
            yield* refused("elicit", "Client does not support form elicitation.")
            assert.deepStrictEqual(user.asked, [])
          })))

      it.live("capabilities: only those of the handlers given", () =>
        withOwnBridge(target, { only: ["elicit"], elicitUrl: false }, () =>
          Effect.gen(function*() {
            assert.deepStrictEqual((yield* answer("capabilities")).capabilities, {
              elicitation: { form: { applyDefaults: true } }
            })
          })))

      it.live("URL-mode elicitation only when enabled: the user is never asked to open a URL otherwise", () =>
        withOwnBridge(target, { elicitUrl: false }, (user) =>
          Effect.gen(function*() {
            yield* refused("url", "Client does not support url elicitation.")
            assert.deepStrictEqual(user.asked, [])
            // The bridge goes on.
            assert.deepStrictEqual((yield* answer("echo", { after: 1 })).arguments, { after: 1 })
          })))

      it.live("logs: logLevel filters what the server sends (error and above)", () =>
        withOwnBridge(target, { logLevel: "error" }, (user) =>
          Effect.gen(function*() {
            yield* answer("log")
            yield* eventually(() => user.logs.length >= 2)
            assert.deepStrictEqual(user.logs.map((l) => l.message.level), ["error", "critical"])
          })))

      if (!modern) {
        it.live("who asked, on a 2025-era session: a call of a tool known to ask runs on a session alone, so each caller's question names its call", () =>
          withOwnBridge(target, {}, (user) =>
            Effect.gen(function*() {
              const as = (identity: string) => (effect: ReturnType<typeof answer>) =>
                Effect.forkChild(Effect.provideService(effect, CallerIdentity, identity))
              const origin = (identity: string) => ({ server: "s", tool: "elicit_wait", identity })
              // Alone on its session, the question is surely this call's: the tool is now known to ask.
              const learn = yield* as("alice")(answer("elicit_wait", { n: 1 }))
              yield* eventually(() => user.asked.length === 1)
              yield* user.release
              yield* Fiber.join(learn)
              assert.deepStrictEqual(user.asked.map((a) => a.origin), [origin("alice")])
              // Two callers at once: the second does not join the first one's session (which could not tell whose
              // question is whose), it gets a session of its own.
              yield* user.hold
              const first = yield* as("alice")(answer("elicit_wait", { n: 2 }))
              yield* eventually(() => user.asked.length === 2)
              const second = yield* as("bob")(answer("elicit_wait", { n: 3 }))
              yield* eventually(() => user.asked.length === 3)
              yield* user.release
              yield* Fiber.joinAll([first, second])
              assert.deepStrictEqual(user.asked.slice(1).map((a) => a.origin), [origin("alice"), origin("bob")])
              assert.strictEqual(yield* created, 2)
            }), { pool: { max: 2 } }))
      }

      if (!modern && target.name.startsWith("Streamable HTTP")) {
        it.live("who asked, on a 2025-era session: a question during calls of several tools goes to the one known to ask", () =>
          Effect.gen(function*() {
            const server = yield* TestServer.httpScoped({
              name: "interact",
              era: "legacy",
              tools: [...tools, { name: "held", hold: true, respond: { kind: "echo" } }]
            })
            const fixture: Fixture = {
              entry: { url: server.url },
              stats: Effect.die("no counters"),
              until: () => Effect.die("no counters")
            }
            yield* withOwnBridge({ ...target, fixture: Effect.succeed(fixture) }, {}, (user) =>
              Effect.gen(function*() {
                const as = (identity: string) => (effect: ReturnType<typeof answer>) =>
                  Effect.forkChild(Effect.provideService(effect, CallerIdentity, identity))
                const learn = yield* as("alice")(answer("elicit_wait", { n: 1 }))
                yield* eventually(() => user.asked.length === 1)
                yield* user.release
                yield* Fiber.join(learn)
                // A call of another tool is in flight on the session when the server asks.
                yield* user.hold
                const other = yield* as("carol")(answer("held"))
                yield* Effect.promise(() => server.until(() => server.held("held") === 1))
                const asking = yield* as("alice")(answer("elicit_wait", { n: 2 }))
                yield* eventually(() => user.asked.length === 2)
                yield* user.release
                server.release("held")
                yield* Fiber.joinAll([other, asking])
                assert.deepStrictEqual(user.asked[1]!.origin, { server: "s", tool: "elicit_wait", identity: "alice" })
                assert.strictEqual(yield* created, 1)
              }))
          }).pipe(Effect.scoped))
      }

      it.layer(scenarioLayer(target), { excludeTestServices: true, timeout: "30 seconds" })((it) => {
        it.effect(`negotiates ${target.version}; capabilities of every handler given`, () =>
          Effect.gen(function*() {
            const opened = yield* session
            assert.strictEqual(opened.protocolVersion, target.version)
            assert.strictEqual(opened.era, modern ? "modern" : "legacy")
            assert.deepStrictEqual((yield* answer("capabilities")).capabilities, {
              elicitation: { form: { applyDefaults: true }, url: {} },
              sampling: {},
              roots: { listChanged: true }
            })
          }))

        it.effect("form elicitation: the defaults the user left out are applied (SEP-1034); origin names server, tool and identity", () =>
          Effect.gen(function*() {
            const { fixture, user } = yield* Scenario
            const before = user.asked.length
            const callsBefore = (yield* fixture.stats).calls.elicit ?? 0
            const result = yield* answer("elicit", {}).pipe(Effect.provideService(CallerIdentity, "alice"))
            assert.strictEqual(result.era, modern ? "modern" : "legacy")
            assert.strictEqual(result.action, "accept")
            assert.deepStrictEqual(result.content, defaultsApplied)
            const asked = since(user.asked, before)
            assert.strictEqual(asked.length, 1)
            assert.deepStrictEqual(asked[0]!.origin, { server: "s", tool: "elicit", identity: "alice" })
            const params = asked[0]!.params as { message: string; requestedSchema: unknown }
            assert.strictEqual(params.message, "Who are you? (1 of 1)")
            assert.deepStrictEqual(params.requestedSchema, form)
            assert.strictEqual((yield* fixture.stats).calls.elicit, callsBefore + rounds(1))
            if (modern) {
              // The retry carried the server's requestState byte for byte, to the process that asked.
              assert.strictEqual(result.requestState, JSON.stringify([requestStateText, 1, result.askedBy, []]))
              assert.isTrue(result.intact)
              assert.strictEqual(result.askedBy, result.pid)
            }
          }))

        it.effect("two rounds of elicitation in one call", () =>
          Effect.gen(function*() {
            const { fixture, user } = yield* Scenario
            const before = user.asked.length
            const callsBefore = (yield* fixture.stats).calls.elicit_twice ?? 0
            const result = yield* answer("elicit_twice")
            assert.deepStrictEqual(
              since(user.asked, before).map((a) => (a.params as { message: string }).message),
              ["Again (1 of 2)", "Again (2 of 2)"]
            )
            assert.deepStrictEqual(result.answers, [
              { action: "accept", content: defaultsApplied },
              { action: "accept", content: defaultsApplied }
            ])
            assert.strictEqual((yield* fixture.stats).calls.elicit_twice, callsBefore + rounds(2))
            if (modern) assert.isTrue(result.intact)
          }))

        it.effect("a declined elicitation reaches the server as declined", () =>
          Effect.gen(function*() {
            const result = yield* answer("elicit_decline")
            assert.strictEqual(result.action, "decline")
            assert.strictEqual(result.content, null)
          }))

        it.effect("a handler that fails: the server hears an error, the call fails, the bridge goes on", () =>
          Effect.gen(function*() {
            const createdBefore = yield* created
            if (modern) {
              // The bridge has no answer to retry with: the call fails with a typed error.
              const error = yield* Effect.flip(call("elicit_fail"))
              assert.instanceOf(error, McpSessionError.McpSessionError)
              assert.deepStrictEqual(
                error.reason,
                new McpSessionError.HandlerFailed({
                  server: "s",
                  request: "elicitation/create",
                  message: "the user closed the dialog"
                })
              )
              assert.include(error.message, "the application's elicitation/create handler failed")
            } else {
              // The server got an error answer to its request; what it makes of it is its own: this one says so.
              const result = yield* call("elicit_fail")
              assert.isTrue(result.isError)
              assert.deepStrictEqual(result.content, [{ type: "text", text: "the user closed the dialog" }])
            }
            assert.deepStrictEqual((yield* answer("echo", { after: 2 })).arguments, { after: 2 })
            assert.strictEqual(yield* created, createdBefore)
          }))

        it.effect("URL-mode elicitation: the user is asked to open the URL", () =>
          Effect.gen(function*() {
            const { user } = yield* Scenario
            const before = user.asked.length
            assert.strictEqual((yield* answer("url")).action, "accept")
            const asked = since(user.asked, before)
            assert.strictEqual(asked.length, 1)
            const params = asked[0]!.params as { mode: string; url: string; message: string }
            assert.strictEqual(params.mode, "url")
            assert.strictEqual(params.url, consentUrl)
            assert.strictEqual(params.message, "Sign in")
            assert.deepStrictEqual(asked[0]!.origin, { server: "s", tool: "url", identity: undefined })
          }))

        it.effect("sampling: the server gets the model's answer", () =>
          Effect.gen(function*() {
            const { user } = yield* Scenario
            const before = user.asked.length
            const result = yield* answer("sample").pipe(Effect.provideService(CallerIdentity, "bob"))
            assert.deepStrictEqual(
              { text: result.text, model: result.model, role: result.role },
              { text: "answer to: What is 2+2?", model: "test-model", role: "assistant" }
            )
            const asked = since(user.asked, before)
            assert.deepStrictEqual(asked.map((a) => [a.kind, a.origin]), [[
              "sample",
              { server: "s", tool: "sample", identity: "bob" }
            ]])
          }))

        it.effect("roots, and setRoots: a 2025-era server hears roots/list_changed; the next roots call sees them", () =>
          Effect.gen(function*() {
            const { fixture, user } = yield* Scenario
            assert.deepStrictEqual((yield* answer("roots")).roots, firstRoots)
            assert.deepStrictEqual(user.asked.at(-1)?.origin, { server: "s", tool: "roots", identity: undefined })
            yield* user.setRoots(nextRoots)
            if (modern) {
              // No notification on 2026-07-28: a server asks again when it needs them.
              assert.strictEqual((yield* fixture.stats).rootsListChanged, 0)
            } else {
              yield* fixture.until((stats) => stats.rootsListChanged === 1)
            }
            assert.deepStrictEqual((yield* answer("roots")).roots, nextRoots)
            yield* user.setRoots(firstRoots)
            if (!modern) yield* fixture.until((stats) => stats.rootsListChanged === 2)
          }))

        it.effect("progress: onProgress gets every notification, in order", () =>
          Effect.gen(function*() {
            const seen: Array<Progress> = []
            const result = yield* answer("progress", {}, { onProgress: (progress) => seen.push(progress) })
            assert.strictEqual(result.steps, 5)
            assert.notStrictEqual(result.progressToken, null)
            assert.deepStrictEqual(
              seen,
              [1, 2, 3, 4, 5].map((i) => ({ progress: i, total: 5, message: `step ${i} of 5` }))
            )
          }))

        it.effect("logs: the handler gets each message at or above the level asked for, with its origin", () =>
          Effect.gen(function*() {
            const { user } = yield* Scenario
            const before = user.logs.length
            const result = yield* answer("log").pipe(Effect.provideService(CallerIdentity, "carol"))
            if (modern) assert.strictEqual(result.logLevel, "info")
            yield* eventually(() => user.logs.length >= before + 5)
            const logs = since(user.logs, before)
            assert.deepStrictEqual(
              logs.map((l) => [l.message.level, l.message.data, l.message.logger]),
              ["info", "notice", "warning", "error", "critical"].map((
                level
              ) => [level, `${level} message`, "test-server"])
            )
            for (const log of logs) assert.deepStrictEqual(log.origin, { server: "s", tool: "log", identity: "carol" })
          }))

        it.effect("an interactive result is never cached: a cacheable tool called twice asks twice", () =>
          Effect.gen(function*() {
            const { fixture, user } = yield* Scenario
            const before = user.asked.length
            const callsBefore = (yield* fixture.stats).calls
            yield* answer("elicit_cached", { q: 1 })
            yield* answer("elicit_cached", { q: 1 })
            assert.strictEqual(since(user.asked, before).length, 2)
            const calls = (yield* fixture.stats).calls
            assert.strictEqual(calls.elicit_cached, (callsBefore.elicit_cached ?? 0) + 2 * rounds(1))
            // The cache is on: a cacheable tool that asks nothing is served from it the second time.
            yield* answer("echo", { q: 1 })
            yield* answer("echo", { q: 1 })
            assert.strictEqual((yield* fixture.stats).calls.echo, (callsBefore.echo ?? 0) + 1)
          }))

        it.effect("an interactive call is never coalesced: an identical call made meanwhile asks for itself", () =>
          Effect.gen(function*() {
            const { fixture, user } = yield* Scenario
            const before = user.asked.length
            const callsBefore = (yield* fixture.stats).calls.elicit_wait ?? 0
            const first = yield* Effect.forkChild(answer("elicit_wait", { same: true }))
            yield* eventually(() => user.asked.length === before + 1)
            // Identical and read-only: the coalescing would have it join the first call in flight.
            const second = yield* Effect.forkChild(answer("elicit_wait", { same: true }))
            for (let i = 0; i < 20; i++) yield* Effect.yieldNow
            yield* user.release
            const results = yield* Fiber.joinAll([first, second])
            assert.deepStrictEqual(results.map((r) => r.action), ["accept", "accept"])
            assert.strictEqual(since(user.asked, before).length, 2)
            assert.strictEqual((yield* fixture.stats).calls.elicit_wait, callsBefore + 2 * rounds(1))
          }))

        it.effect("one session served every test", () =>
          Effect.gen(function*() {
            assert.strictEqual(yield* created, 1)
          }))
      })
    })
  }

  // ---------------------------------------------------------------------------
  // server-everything (official SDK v1, 2025-11-25): tools registered per client capability
  // ---------------------------------------------------------------------------

  const everything = createRequire(import.meta.url).resolve("@modelcontextprotocol/server-everything/dist/index.js")
  const everythingEntry = { command: process.execPath, args: [everything, "stdio"] }
  const clientRequestTools = ["get-roots-list", "trigger-elicitation-request", "trigger-sampling-request"]
  const texts = (result: { readonly content: ReadonlyArray<unknown> }) =>
    result.content.map((block) => (block as { readonly text?: string }).text ?? "").join("\n")

  describe("server-everything", () => {
    const listed = Effect.map(
      McpBridge.McpBridge.use((bridge) => bridge.listTools()),
      (tools) => tools.map((tool) => tool.name)
    )
    const fixture: Effect.Effect<Fixture> = Effect.succeed({
      entry: everythingEntry,
      stats: Effect.die("no counters"),
      until: () => Effect.die("no counters")
    })
    const target: Target = { name: "server-everything", version: LEGACY, fixture }

    it.live("without handlers: none of the tools that ask the client", () =>
      withOwnBridge(target, { only: [] }, () =>
        Effect.gen(function*() {
          assert.strictEqual((yield* session).protocolVersion, LEGACY)
          const names = yield* listed
          assert.include(names, "echo")
          for (const name of clientRequestTools) assert.notInclude(names, name)
        })))

    it.live("elicitation only: its elicitation tool and no other", () =>
      withOwnBridge(target, { only: ["elicit"], elicitUrl: false }, () =>
        Effect.gen(function*() {
          const names = yield* listed
          assert.include(names, "trigger-elicitation-request")
          assert.notInclude(names, "trigger-url-elicitation")
          assert.notInclude(names, "trigger-sampling-request")
          assert.notInclude(names, "get-roots-list")
        })))

    it.live("with every handler: each tool asks, and answers with what the user said", () =>
      withOwnBridge(target, {}, (user) =>
        Effect.gen(function*() {
          const names = yield* listed
          for (const name of [...clientRequestTools, "trigger-url-elicitation"]) assert.include(names, name)

          const before = user.asked.length
          const elicited = texts(
            yield* call("trigger-elicitation-request").pipe(
              Effect.provideService(CallerIdentity, "erin")
            )
          )
          assert.include(elicited, "User provided the requested information")
          assert.include(elicited, "- Name: Ada")
          // Its schema's defaults, applied for the user (SEP-1034).
          assert.include(elicited, "- Favorite Integer: 42")
          assert.include(elicited, "\"firstLine\": \"It was a dark and stormy night.\"")
          const asked = since(user.asked, before).filter((a) => a.kind === "elicit")
          assert.deepStrictEqual(asked.map((a) => a.origin), [{
            server: "s",
            tool: "trigger-elicitation-request",
            identity: "erin"
          }])

          const sampled = texts(yield* call("trigger-sampling-request", { prompt: "hello" }))
          assert.include(sampled, "answer to: Resource trigger-sampling-request context: hello")
          assert.include(sampled, "test-model")

          assert.include(texts(yield* call("get-roots-list")), "file:///work/one")
          // It lists the roots again when told they changed.
          const rootsAsked = () => user.asked.filter((a) => a.kind === "roots").length
          const rootsBefore = rootsAsked()
          yield* user.setRoots(nextRoots)
          yield* eventually(() => rootsAsked() > rootsBefore)
          const roots = texts(yield* call("get-roots-list"))
          assert.include(roots, "file:///work/two")
          assert.include(roots, "file:///work/three")
          assert.notInclude(roots, "file:///work/one")
        })))
  })

  // ---------------------------------------------------------------------------
  // Processes: one per stdio session, whatever the era
  // ---------------------------------------------------------------------------

  describe("one process per stdio session", () => {
    // Each child is started by a shell that writes its pid (kept by `exec`) to a file: the processes the bridge
    // started, including any it started and lost during the era negotiation.
    const counted = (command: string, args: ReadonlyArray<string>) =>
      Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "mcp-bridge-interact-"))),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      ).pipe(Effect.map((dir) => {
        const file = join(dir, "pids")
        return {
          entry: { command: "/bin/sh", args: ["-c", `echo $$ >> '${file}'; exec "$0" "$@"`, command, ...args] },
          pids: () => {
            try {
              return readFileSync(file, "utf8").trim().split("\n").filter((line) => line !== "").map(Number)
            } catch {
              return []
            }
          }
        }
      }))
    const servers = [
      { name: "dual-era test server", version: MODERN, ...TestServer.stdioCommand(spec("dual")), tool: "elicit_wait" },
      { name: "legacy test server", version: LEGACY, ...TestServer.stdioCommand(spec("legacy")), tool: "elicit_wait" },
      { name: "server-everything", version: LEGACY, ...everythingEntry, tool: "trigger-elicitation-request" }
    ]
    for (const server of servers) {
      it.live(`${server.name}, protocol "auto": one process, and exactly one more for a second session`, () =>
        Effect.gen(function*() {
          const child = yield* counted(server.command, server.args)
          const fixture: Effect.Effect<Fixture> = Effect.succeed({
            entry: child.entry,
            stats: Effect.die("no counters"),
            until: () => Effect.die("no counters")
          })
          const target: Target = { name: server.name, version: server.version, fixture }
          yield* withOwnBridge(target, { holdAll: true }, (user) =>
            Effect.gen(function*() {
              const first = yield* session
              // The era is the server's, however slow this machine starts it, and a sure verdict.
              assert.deepStrictEqual([first.protocolVersion, first.tentative], [server.version, false])
              assert.deepStrictEqual(child.pids(), [first.pid])
              // Two calls at once on sessions that serve one call each: a second session.
              const fibers = yield* Effect.forEach(
                [1, 2],
                (n) => Effect.forkChild(call(server.tool, server.tool === "elicit_wait" ? { n } : {}))
              )
              // The second session is open (the pool's own count, not a guess at how fast a process starts), and each
              // call has asked its question.
              yield* untilCreated(2)
              yield* eventually(() => user.asked.length >= 2)
              yield* user.release
              const results = yield* Fiber.joinAll(fibers)
              assert.strictEqual(yield* created, 2)
              const pids = child.pids()
              assert.strictEqual(pids.length, 2)
              assert.strictEqual(pids[0], first.pid)
              if (server.tool === "elicit_wait") {
                // Each call's answer came from the process that asked: on 2026-07-28, the retry went back to it.
                const answers = results.map((r) => r.structuredContent as { pid: number; askedBy?: number })
                assert.sameMembers(answers.map((a) => a.pid), pids)
                if (first.protocolVersion === MODERN) { for (const a of answers) assert.strictEqual(a.askedBy, a.pid) }
              }
            }), { protocol: "auto", pool: { max: 2, concurrency: 1 } })
        }))
    }
  })

  // ---------------------------------------------------------------------------
  // The era of a stdio server, whatever the machine's speed
  // ---------------------------------------------------------------------------

  describe("era negotiation on stdio", () => {
    const sessionOf = (entry: Fixture["entry"]) =>
      withOwnBridge(
        {
          name: "s",
          version: MODERN,
          fixture: Effect.succeed({ entry, stats: Effect.die("-"), until: () => Effect.die("-") })
        },
        {},
        () => session,
        { protocol: "auto" }
      )
    const dual = TestServer.stdioCommand(spec("dual"))
    const legacy = TestServer.stdioCommand(spec("legacy"))

    it.live("a dual-era server that starts later than any fixed probe window is served on 2026-07-28", () =>
      Effect.gen(function*() {
        // The child reads nothing for 2.5 s: the probe waits in its stdin, and is answered first when it runs.
        const late = { command: "/bin/sh", args: ["-c", `sleep 2.5; exec "$0" "$@"`, dual.command, ...dual.args] }
        const first = yield* sessionOf(late)
        assert.deepStrictEqual([first.protocolVersion, first.tentative], [MODERN, false])
      }))

    it.live("a legacy server that ignores server/discover is legacy once it answers the ping after the probe", () =>
      Effect.gen(function*() {
        // A filter in front of the legacy test server drops `server/discover`, as a server that ignores unknown
        // requests before `initialize` does.
        const filter = [
          `const c = require("node:child_process").spawn(process.argv[1], process.argv.slice(2), { stdio: ["pipe", "inherit", "inherit"] })`,
          `require("node:readline").createInterface({ input: process.stdin })`,
          `  .on("line", (l) => { if (!l.includes('"server/discover"')) c.stdin.write(l + "\\n") })`,
          `  .on("close", () => c.stdin.end())`,
          `c.on("exit", (code) => process.exit(code ?? 0))`
        ].join("\n")
        const silent = { command: process.execPath, args: ["-e", filter, legacy.command, ...legacy.args] }
        const first = yield* sessionOf(silent)
        // A sure verdict: the probe was settled by the ping, not by a window running out.
        assert.deepStrictEqual([first.protocolVersion, first.tentative], [LEGACY, false])
      }))
  })

  // ---------------------------------------------------------------------------
  // The Promise facade
  // ---------------------------------------------------------------------------

  describe("createBridge", () => {
    for (const target of targets) {
      it.live(`${target.name}: onElicitation, per-call onProgress, onLog and logLevel, roots and setRoots`, () =>
        Effect.gen(function*() {
          const fixture = yield* target.fixture
          const asked: Array<
            { readonly request: ClientHandlers.ElicitParams; readonly origin: ClientHandlers.Origin }
          > = []
          const logs: Array<Logged> = []
          const bridge = yield* Effect.acquireRelease(
            Effect.promise(() =>
              createBridge({ mcpServers: { s: { ...fixture.entry, bridge: policy } } }, {
                onElicitation: async (request, origin) => {
                  asked.push({ request, origin })
                  return { action: "accept", content: { name: "Ada" } }
                },
                onLog: (message, origin) => void logs.push({ message, origin }),
                logLevel: "warning",
                roots: firstRoots
              })
            ),
            (bridge) => Effect.promise(() => bridge.close())
          )
          const json = (name: string, options?: Parameters<typeof bridge.callTool>[2]) =>
            Effect.promise(() => bridge.callTool(`s.${name}`, {}, options)).pipe(
              Effect.map((result) => result.structuredContent as Record<string, any>)
            )

          const elicited = yield* json("elicit", { identity: "dave" })
          assert.deepStrictEqual(elicited.content, defaultsApplied)
          assert.deepStrictEqual(asked.map((a) => a.origin), [{ server: "s", tool: "elicit", identity: "dave" }])
          assert.strictEqual(asked[0]!.request.message, "Who are you? (1 of 1)")
          if (target.version === MODERN) assert.isTrue(elicited.intact)

          const seen: Array<Progress> = []
          yield* json("progress", { onProgress: (progress) => seen.push(progress) })
          assert.deepStrictEqual(seen.map((p) => [p.progress, p.total, p.message]), [
            [1, 5, "step 1 of 5"],
            [2, 5, "step 2 of 5"],
            [3, 5, "step 3 of 5"],
            [4, 5, "step 4 of 5"],
            [5, 5, "step 5 of 5"]
          ])

          yield* json("log", { identity: "dave" })
          yield* eventually(() => logs.length >= 3)
          assert.deepStrictEqual(logs.map((l) => l.message.level), ["warning", "error", "critical"])
          assert.deepStrictEqual(logs[0]!.origin, { server: "s", tool: "log", identity: "dave" })

          assert.deepStrictEqual((yield* json("roots")).roots, firstRoots)
          bridge.setRoots(nextRoots)
          if (target.version === LEGACY) {
            // The server hears it: its counters, read through the bridge until they say so.
            for (let i = 0; i < 250 && (yield* json("__stats")).rootsListChanged !== 1; i++) {
              yield* Effect.sleep("20 millis")
            }
            assert.strictEqual((yield* json("__stats")).rootsListChanged, 1)
          }
          assert.deepStrictEqual((yield* json("roots")).roots, nextRoots)
        }))
    }
  })
})
