/**
 * Secrets of servers that fail: the `env` values a stdio server echoes to stderr, cut by the
 * 4 KiB stderr window, and the `headers` a 401 server echoes in its error body, never reach an error (message, JSON,
 * stack), a span, a log line or a metric, not even as a fragment.
 */
import { assert, describe, it } from "@effect/vitest"
import { FaultServer, TestTracer } from "@mcp-bridge/testing"
import { Cause, Effect, Logger, References, Tracer } from "effect"
import { failureOf, figure, messageOf, processesLeft, stdio, withBridge } from "./harness.ts"

const WINDOW = 4096

/** A random secret of `length` characters (letters and digits: no fragment of it occurs by chance). */
const makeSecret = (prefix: string, length: number) => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  let out = prefix
  while (out.length < length) out += alphabet[Math.floor(Math.random() * alphabet.length)]
  return out
}

/** The longest piece of `secret` (6 characters or more) that occurs in `text`, 0 for none. */
const leaked = (text: string, secret: string): number => {
  for (let size = secret.length; size >= 6; size--) {
    for (let at = 0; at + size <= secret.length; at++) {
      if (text.includes(secret.slice(at, at + size))) return size
    }
  }
  return 0
}

const show = (value: unknown): string => {
  try {
    return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v instanceof Map ? [...v] : v)) ??
      String(value)
  } catch {
    return String(value)
  }
}

const spanText = (span: Tracer.NativeSpan): string =>
  [
    span.name,
    show([...span.attributes]),
    show(span.events),
    span.status._tag === "Ended" && span.status.exit._tag === "Failure" ? Cause.pretty(span.status.exit.cause) : ""
  ].join("\n")

/**
 * Calls one tool, lists the tools (a server that fails is left out, with a WARN line) and reads the metrics, with
 * every span and log line recorded; returns where each secret leaked and how much of it. The config turns the
 * circuit breaker off, so that every attempt reaches the failing server.
 */
const probe = (config: object, target: string, secrets: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const capture = Logger.make((options) => {
      lines.push(
        `${options.logLevel} ${
          (options.message as ReadonlyArray<unknown>).map((m) => typeof m === "string" ? m : show(m)).join(" ")
        } ${Cause.pretty(options.cause)}`
      )
    })
    const { error, metrics } = yield* withBridge(config, (bridge) =>
      Effect.gen(function*() {
        const error = failureOf(yield* Effect.exit(bridge.callTool(target, {})))
        yield* bridge.listTools()
        const metrics = yield* bridge.metrics()
        return { error, metrics }
      })).pipe(
        Effect.provide(Logger.layer([capture])),
        Effect.provideService(References.MinimumLogLevel, "Debug")
      )
    const { spans } = yield* TestTracer.TestTracer
    const places: Record<string, string> = {
      message: messageOf(error),
      json: show(error),
      stack: error instanceof Error ? String(error.stack) : "",
      string: String(error),
      spans: spans.map(spanText).join("\n"),
      logs: lines.join("\n"),
      metrics: show(metrics)
    }
    const found: Array<string> = []
    let worst = 0
    for (const [place, text] of Object.entries(places)) {
      const n = Math.max(...secrets.map((s) => leaked(text, s)))
      worst = Math.max(worst, n)
      if (n > 0) found.push(`${place} ${n}`)
    }
    return { error, found, worst, spans: spans.length, logs: lines.length }
  }).pipe(Effect.provide(TestTracer.layer))

describe("secrets", () => {
  it.live(
    "secret-stderr-window: an env secret split by the 4 KiB stderr window is scrubbed, fragments included",
    () =>
      Effect.gen(function*() {
        const secret = makeSecret("sk-live-", 34)
        const inWindow = 11
        const spec: FaultServer.FaultServerSpec = {
          tools: [{ name: "echo" }],
          // `API_KEY=<secret>` then padding, so that only the secret's last 11 characters fall inside the window
          startup: { env: ["API_KEY"], padBytes: WINDOW - 1 - inWindow, exitCode: 1 }
        }
        const config = {
          mcpServers: { s: stdio(spec, { env: { API_KEY: secret }, bridge: { circuitBreaker: false, retry: false } }) }
        }
        const r = yield* probe(config, "s.echo", [secret])
        const left = yield* Effect.promise(() => processesLeft())
        figure(
          "secret-stderr-window",
          `${r.worst} of ${secret.length} secret characters leaked (${inWindow} inside the window): ${
            r.found.join(", ") || "nowhere"
          }; ${r.spans} spans, ${r.logs} log lines checked; ${left} processes left`
        )
        assert.strictEqual(r.worst, 0, `secret fragments leaked in: ${r.found.join(", ")}`)
        assert.strictEqual(left, 0)
      }).pipe(Effect.timeout("40 seconds")),
    { timeout: 60_000 }
  )

  it.live(
    "secret-401-headers: header secrets a 401 server echoes in its error body are scrubbed (auto and legacy)",
    () =>
      Effect.gen(function*() {
        const server = yield* Effect.acquireRelease(
          Effect.promise(() => FaultServer.startUnauthorized()),
          (s) => Effect.promise(() => s.close())
        )
        const token = makeSecret("tok-", 40)
        const apiKey = makeSecret("key-", 32)
        const results: Array<string> = []
        let worst = 0
        for (const protocol of ["auto", "legacy"]) {
          const config = {
            mcpServers: {
              a: {
                url: server.url,
                headers: { Authorization: `Bearer ${token}`, "X-Api-Key": apiKey },
                bridge: { protocol, circuitBreaker: false, retry: false }
              }
            }
          }
          const r = yield* probe(config, "a.echo", [token, apiKey])
          worst = Math.max(worst, r.worst)
          results.push(`${protocol}: ${r.worst} characters leaked in ${r.found.join(", ") || "nowhere"}`)
        }
        figure("secret-401-headers", `401 answered ${server.requests()} requests; ${results.join("; ")}`)
        assert.isAbove(server.requests(), 0)
        assert.strictEqual(worst, 0, results.join("; "))
      }).pipe(Effect.scoped, Effect.timeout("40 seconds")),
    { timeout: 60_000 }
  )
})
