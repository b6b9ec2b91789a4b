import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig, McpSession, McpSessionError, McpTransport } from "@mcp-bridge/core"
import { TestServer } from "@mcp-bridge/testing"
import { ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from "@modelcontextprotocol/client"
import type { Transport } from "@modelcontextprotocol/client"
import { Deferred, Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { until } from "./fixtures.ts"

const sessionOf = (bridge: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const config = yield* BridgeConfig.decode({ mcpServers: { s: { type: "memory", bridge } } })
    return yield* McpSession.make(config.servers.get("s")!)
  })

/** Waits for `deferred` on the live clock, up to 5 seconds: a real event, bounded, also inside `it.effect`. */
const awaitLive = <A>(deferred: Deferred.Deferred<A>) =>
  Deferred.await(deferred).pipe(Effect.timeout("5 seconds"), TestClock.withLive)

describe("McpSession", () => {
  const server = TestServer.make({
    tools: [{ name: "add", respond: { kind: "addTool", name: "extra" } }, { name: "echo", respond: { kind: "echo" } }]
  })

  it.effect("a session opened from a prior 2026-07-28 verdict is ready and hears tools/list_changed", () =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.decode({ mcpServers: { s: { type: "memory" } } })
      const resolved = config.servers.get("s")!
      const first = yield* McpSession.make(resolved)
      assert.strictEqual(first.era, "modern")
      assert.strictEqual(first.prior?.kind, "modern")
      const second = yield* McpSession.make(resolved, { prior: first.prior })
      assert.strictEqual(second.protocolVersion, "2026-07-28")
      const heard = yield* Deferred.make<void>()
      let times = 0
      second.onToolsChanged(() => {
        times++
        Deferred.doneUnsafe(heard, Effect.void)
      })
      yield* first.callTool({ name: "add", arguments: {} }, Duration.seconds(5))
      yield* awaitLive(heard)
      assert.strictEqual(times, 1)
      const list = yield* second.listTools(Duration.seconds(5))
      assert.include(list.tools.map((t) => t.name), "extra")
      yield* second.probe(Duration.seconds(5))
    }).pipe(Effect.scoped, Effect.provide(McpTransport.layer({ memory: { s: server.connect } }))))

  describe("opening", () => {
    // A server that takes the connection and never answers: the handshake can only end by its deadline.
    const silent = (sent: Deferred.Deferred<void>) => async (): Promise<Transport> => ({
      start: async () => {},
      send: async () => {
        Deferred.doneUnsafe(sent, Effect.void)
      },
      close: async () => {}
    })

    it.effect.each(["legacy", "auto"] as const)(
      "connect fails with Timeout at connectTimeout (protocol %s)",
      (protocol) =>
        Effect.gen(function*() {
          const sent = yield* Deferred.make<void>()
          const fiber = yield* sessionOf({ connectTimeout: "3 seconds", protocol }).pipe(
            Effect.scoped,
            Effect.provide(McpTransport.layer({ memory: { s: silent(sent) } })),
            Effect.flip,
            Effect.forkChild
          )
          // The handshake is on the wire; from now on only the deadline can end it.
          yield* awaitLive(sent)
          yield* TestClock.adjust("2999 millis")
          assert.isUndefined(fiber.pollUnsafe())
          yield* TestClock.adjust("1 millis")
          const error = yield* Fiber.join(fiber)
          assert.deepStrictEqual(
            error.reason,
            new McpSessionError.Timeout({ server: "s", operation: "connect", timeoutMillis: 3000 })
          )
          assert.strictEqual(error.server, "s")
          assert.isFalse(error._tag === "McpSessionError" && error.isTransportFailure)
        })
    )

    it.effect("a transport that cannot be opened is ConnectFailed", () =>
      Effect.gen(function*() {
        const error = yield* sessionOf().pipe(
          Effect.scoped,
          Effect.provide(McpTransport.layer({
            memory: {
              s: () => Promise.reject(new Error("no such server"))
            }
          })),
          Effect.flip
        )
        assert.isTrue(error._tag === "McpSessionError" && error.reason._tag === "ConnectFailed")
        assert.include(error.message, "no such server")
        assert.isTrue(error._tag === "McpSessionError" && error.isTransportFailure)
      }))

    it.effect("an unregistered in-memory server is ConnectFailed naming it", () =>
      Effect.gen(function*() {
        const error = yield* sessionOf().pipe(Effect.scoped, Effect.provide(McpTransport.layer()), Effect.flip)
        assert.strictEqual(error.reason._tag, "ConnectFailed")
        assert.include(error.message, "no in-memory server is registered for \"s\"")
      }))
  })

  describe("on the live clock (one callback holds the request and its deadline)", () => {
    const hanging = TestServer.make({
      tools: [{ name: "hang", respond: { kind: "hang" } }, { name: "echo", respond: { kind: "echo" } }]
    })

    it.live("a call past its deadline fails with Timeout and is cancelled on the wire; the session goes on", () =>
      Effect.gen(function*() {
        const s = yield* sessionOf()
        const before = hanging.cancelled()
        const error = yield* Effect.flip(s.callTool({ name: "hang", arguments: {} }, Duration.millis(100)))
        assert.deepStrictEqual(
          error.reason,
          new McpSessionError.Timeout({ server: "s", operation: "tools/call hang", timeoutMillis: 100, session: s.id })
        )
        yield* until(hanging, () => hanging.cancelled() === before + 1)
        const echoed = yield* s.callTool({ name: "echo", arguments: { n: 1 } }, Duration.seconds(5))
        assert.deepStrictEqual(echoed.content, [{ type: "text", text: "{\"n\":1}" }])
      }).pipe(Effect.scoped, Effect.provide(McpTransport.layer({ memory: { s: hanging.connect } }))))

    it.live("interrupting a call cancels it on the wire", () =>
      Effect.gen(function*() {
        const s = yield* sessionOf()
        const before = hanging.cancelled()
        const fiber = yield* Effect.forkChild(s.callTool({ name: "hang", arguments: {} }, Duration.seconds(30)))
        yield* until(hanging, () => hanging.inFlight() === 1)
        yield* Fiber.interrupt(fiber)
        yield* until(hanging, () => hanging.cancelled() === before + 1 && hanging.inFlight() === 0)
      }).pipe(Effect.scoped, Effect.provide(McpTransport.layer({ memory: { s: hanging.connect } }))))
  })

  describe("reasonFromSdk: what the SDK throws, as a reason", () => {
    const reason = (error: unknown) => McpSession.reasonFromSdk("s", error, "tools/call t", 500, "last words")
    const http = (status: number, statusText = "") =>
      new SdkHttpError(SdkErrorCode.ClientHttpNotImplemented, `HTTP ${status}`, { status, statusText })
    const network = (code: string) => new TypeError("fetch failed", { cause: Object.assign(new Error(code), { code }) })

    it.each([404, 410])("HTTP %i: the server no longer knows the session, Closed", (status) => {
      const r = reason(http(status))
      assert.strictEqual(r._tag, "Closed")
      assert.deepStrictEqual([r.server, r._tag === "Closed" && r.stderr], ["s", "last words"])
      // the server refused it unread: the pool may send it again on a new session
      assert.strictEqual(r._tag === "Closed" && r.notExecuted, true)
    })

    it.each([500, 502, 503])(
      "HTTP %i: this request failed, Protocol with the status (the session is kept)",
      (status) => {
        assert.deepStrictEqual(
          reason(http(status, "Bad Gateway")),
          new McpSessionError.Protocol({ server: "s", code: status, message: `HTTP ${status} Bad Gateway` })
        )
      }
    )

    it("HTTP 429: Protocol with code 429 (which resilience retries)", () => {
      assert.deepStrictEqual(
        reason(http(429)),
        new McpSessionError.Protocol({ server: "s", code: 429, message: "HTTP 429" })
      )
    })

    it.each([400, 401, 403, 405])("HTTP %i: Protocol with the status as code", (status) => {
      const r = reason(http(status))
      assert.deepStrictEqual([r._tag, r._tag === "Protocol" && r.code], ["Protocol", status])
    })

    it.each(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ENOTFOUND", "UND_ERR_SOCKET"])(
      "network error %s (in the error or its cause): Closed",
      (code) => {
        for (const error of [network(code), Object.assign(new Error("socket"), { code })]) {
          const r = reason(error)
          assert.strictEqual(r._tag, "Closed")
          assert.include(r._tag === "Closed" ? r.message : "", code)
        }
      }
    )

    it("an SDK error over a network error (a negotiation probe of a server that is down) names the network code", () => {
      // As the SDK throws it: the network error is the `cause`.
      const probe = Object.assign(
        new SdkError(SdkErrorCode.EraNegotiationFailed, "Version negotiation probe failed: fetch failed"),
        { cause: network("ECONNREFUSED") }
      )
      assert.deepStrictEqual(
        reason(probe),
        new McpSessionError.Protocol({
          server: "s",
          code: -1,
          message: "Version negotiation probe failed: fetch failed (ECONNREFUSED)"
        })
      )
    })

    it("an SDK request timeout: Timeout with the operation and deadline", () => {
      assert.deepStrictEqual(
        reason(new SdkError(SdkErrorCode.RequestTimeout, "Request timed out")),
        new McpSessionError.Timeout({ server: "s", operation: "tools/call t", timeoutMillis: 500 })
      )
    })

    it.each([SdkErrorCode.ConnectionClosed, SdkErrorCode.NotConnected, SdkErrorCode.SendFailed])(
      "the SDK's %s: Closed",
      (code) => {
        assert.strictEqual(reason(new SdkError(code, "Connection closed"))._tag, "Closed")
      }
    )

    it("a JSON-RPC error: Protocol with its code; anything else: Protocol -1", () => {
      assert.deepStrictEqual(
        reason(new ProtocolError(-32602, "Invalid params")),
        new McpSessionError.Protocol({ server: "s", code: -32602, message: "Invalid params" })
      )
      const other = reason(new Error("surprise"))
      assert.deepStrictEqual([other._tag, other._tag === "Protocol" && other.code], ["Protocol", -1])
      assert.strictEqual(reason(Object.assign(new Error("x"), { code: "EACCES" }))._tag, "Protocol")
    })
  })
})
