/**
 * Malformed and extreme configurations: every one is rejected by `createBridge` with a
 * typed `BridgeConfigError` (`Invalid`) whose message names the field; nothing throws synchronously, nothing is
 * accepted, nothing crashes the host (the extreme one runs in a process of its own, with a small heap).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as Expect from "./expect.ts"
import {
  figure,
  freePort,
  hangMillis,
  kindOf,
  messageOf,
  now,
  processesLeft,
  seconds,
  tally,
  within
} from "./harness.ts"

const url = "http://127.0.0.1:9/mcp"
const stdioEntry = { command: process.execPath, args: ["-e", ""] }
const secret = "sk-config-2c1f0e8b9d7a4c3e"

interface Case {
  readonly name: string
  readonly config: unknown
  /** the path the error must name */
  readonly path: ReadonlyArray<string>
}

const server = (entry: unknown): unknown => ({ mcpServers: { a: entry } })
const bridge = (settings: unknown): unknown => ({ mcpServers: { a: { url, bridge: settings } } })
const at = (...path: Array<string>) => ["mcpServers", "a", ...path]
const atBridge = (...path: Array<string>) => at("bridge", ...path)

const cases: ReadonlyArray<Case> = [
  { name: "config null", config: null, path: [] },
  { name: "config a number", config: 42, path: [] },
  { name: "no mcpServers", config: {}, path: ["mcpServers"] },
  { name: "mcpServers an array", config: { mcpServers: [] }, path: ["mcpServers"] },
  { name: "server entry a number", config: server(5), path: at() },
  { name: "server entry empty", config: server({}), path: at() },
  { name: "server name with a dot", config: { mcpServers: { "a.b": { url } } }, path: ["mcpServers", "a.b"] },
  { name: "server name empty", config: { mcpServers: { "": { url } } }, path: ["mcpServers"] },
  { name: "url unparseable (IPv6)", config: server({ url: "http://[::1/mcp" }), path: at("url") },
  { name: "url without host", config: server({ url: "http://" }), path: at("url") },
  { name: "url ftp", config: server({ url: "ftp://example.com/mcp" }), path: at("url") },
  { name: "url a number", config: server({ url: 5 }), path: at("url") },
  { name: "type unknown", config: server({ type: "grpc", url }), path: at("type") },
  { name: "command empty", config: server({ command: "" }), path: at("command") },
  { name: "command a number", config: server({ command: 5 }), path: at("command") },
  { name: "args a string", config: server({ ...stdioEntry, args: "-e" }), path: at("args") },
  { name: "args with a number", config: server({ ...stdioEntry, args: [1] }), path: at("args", "0") },
  { name: "env value a number", config: server({ ...stdioEntry, env: { KEY: 5 } }), path: at("env", "KEY") },
  { name: "headers a string", config: server({ url, headers: "x" }), path: at("headers") },
  {
    name: "header value an array (secret)",
    config: server({ url, headers: { Authorization: [`Bearer ${secret}`] } }),
    path: at("headers", "Authorization")
  },
  { name: "unknown field", config: server({ url, bridge: { poool: {} } }), path: atBridge("poool") },
  { name: "timeout a word", config: bridge({ timeout: "soon" }), path: atBridge("timeout") },
  { name: "timeout negative", config: bridge({ timeout: -5 }), path: atBridge("timeout") },
  { name: "timeout zero", config: bridge({ timeout: 0 }), path: atBridge("timeout") },
  { name: "protocol unknown", config: bridge({ protocol: "2024-01-01" }), path: atBridge("protocol") },
  { name: "pool.max 0", config: bridge({ pool: { max: 0 } }), path: atBridge("pool", "max") },
  { name: "pool.max 1e9", config: bridge({ pool: { max: 1e9 } }), path: atBridge("pool", "max") },
  {
    name: "pool.concurrency 1e9",
    config: bridge({ pool: { concurrency: 1e9 } }),
    path: atBridge("pool", "concurrency")
  },
  { name: "pool.min negative", config: bridge({ pool: { min: -1 } }), path: atBridge("pool", "min") },
  { name: "pool.min fractional", config: bridge({ pool: { min: 2.5 } }), path: atBridge("pool", "min") },
  { name: "pool.min above max", config: bridge({ pool: { min: 5, max: 2 } }), path: atBridge("pool", "min") },
  {
    name: "pool.isolation unknown",
    config: bridge({ pool: { isolation: "tenant" } }),
    path: atBridge("pool", "isolation")
  },
  {
    name: "pool.acquireTimeout a word",
    config: bridge({ pool: { acquireTimeout: "forever" } }),
    path: atBridge("pool", "acquireTimeout")
  },
  {
    name: "throttle.perSecond 0",
    config: bridge({ throttle: { perSecond: 0 } }),
    path: atBridge("throttle", "perSecond")
  },
  {
    name: "throttle.onLimit unknown",
    config: bridge({ throttle: { onLimit: "drop" } }),
    path: atBridge("throttle", "onLimit")
  },
  { name: "retry.times negative", config: bridge({ retry: { times: -1 } }), path: atBridge("retry", "times") },
  { name: "retry.times 1e6", config: bridge({ retry: { times: 1e6 } }), path: atBridge("retry", "times") },
  { name: "retry.budget 2", config: bridge({ retry: { budget: 2 } }), path: atBridge("retry", "budget") },
  {
    name: "circuitBreaker.failures 0",
    config: bridge({ circuitBreaker: { failures: 0 } }),
    path: atBridge("circuitBreaker", "failures")
  },
  {
    name: "circuitBreaker.window 1e9",
    config: bridge({ circuitBreaker: { window: 1e9 } }),
    path: atBridge("circuitBreaker", "window")
  },
  { name: "cache.ttl a word", config: bridge({ cache: { ttl: "sometimes" } }), path: atBridge("cache", "ttl") },
  {
    name: "cache.maxResultBytes 1e15",
    config: bridge({ cache: { maxResultBytes: 1e15 } }),
    path: atBridge("cache", "maxResultBytes")
  },
  {
    name: "tool timeout a word",
    config: bridge({ tools: { t: { timeout: "later" } } }),
    path: atBridge("tools", "t", "timeout")
  },
  {
    name: "global timeout a word",
    config: { mcpServers: { a: { url } }, bridge: { timeout: "x" } },
    path: ["bridge", "timeout"]
  }
]

type Verdict = "typed" | "typed-no-path" | "untyped" | "accepted" | "threw" | "hung"

const judge = async (c: Case, hang: number): Promise<{ readonly verdict: Verdict; readonly detail: string }> => {
  let pending: Promise<Expect.Bridge>
  try {
    pending = Expect.createBridge(c.config as object)
  } catch (error) {
    return { verdict: "threw", detail: kindOf(error) }
  }
  try {
    const made = await within(hang, pending, "createBridge")
    await made.close()
    return { verdict: "accepted", detail: "" }
  } catch (error) {
    if (messageOf(error).includes("did not settle within")) return { verdict: "hung", detail: "" }
    if (messageOf(error).includes(secret.slice(3))) return { verdict: "untyped", detail: "message shows the secret" }
    if (Expect.isConfigInvalid(error, c.path)) return { verdict: "typed", detail: "" }
    const typed = kindOf(error).startsWith("BridgeConfigError")
    return {
      verdict: typed ? "typed-no-path" : "untyped",
      detail: `${kindOf(error)}: ${messageOf(error).slice(0, 100)}`
    }
  }
}

const fixture = fileURLToPath(new URL("./fixtures/createBridge.ts", import.meta.url))

const rssOf = (pid: number): number => {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match === null ? 0 : Number(match[1]) * 1024
  } catch {
    return 0
  }
}

describe("config", () => {
  it(`malformed-configs: ${cases.length} malformed configurations, each a typed error naming its field`, async () => {
    const hang = await Effect.runPromise(hangMillis)
    const results: Array<{ readonly c: Case; readonly verdict: Verdict; readonly detail: string }> = []
    for (const c of cases) results.push({ c, ...(await judge(c, hang)) })
    const left = await processesLeft()
    const bad = results.filter((r) => r.verdict !== "typed")
    figure(
      "malformed-configs",
      `${cases.length} configs: ${tally(results.map((r) => r.verdict))}; not right: ${
        bad.map((r) => `${r.c.name} (${r.verdict}${r.detail === "" ? "" : `: ${r.detail.slice(0, 60)}`})`).join("; ")
      }; ${left} processes left`
    )
    for (const r of bad) console.log(`  ${r.c.name}: ${r.verdict} ${r.detail}`)
    assert.deepStrictEqual(
      bad.map((r) => r.c.name),
      [],
      "every malformed configuration gets a typed error naming its field"
    )
    assert.strictEqual(left, 0)
  }, 120_000)

  it("extreme-config: pool.min 100000 is refused with a typed error, not opened until the host dies", async () => {
    const hang = await Effect.runPromise(hangMillis)
    const port = await freePort()
    const config = { mcpServers: { a: { url: `http://127.0.0.1:${port}/mcp`, bridge: { pool: { min: 100_000 } } } } }
    const started = now()
    const child = spawn(process.execPath, [
      "--conditions=@mcp-bridge/source",
      "--max-old-space-size=192",
      fixture,
      JSON.stringify(config),
      JSON.stringify(atBridge("pool", "min"))
    ], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")))
    child.stderr.resume()
    let peakRss = 0
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(child.pid!))), 100)
    const killer = setTimeout(() => child.kill("SIGKILL"), 4 * hang)
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal }))
    )
    clearInterval(sampler)
    clearTimeout(killer)
    const ms = now() - started
    const line = out.split("\n").find((l) => l.startsWith("{"))
    const result = line === undefined
      ? undefined
      : JSON.parse(line) as { outcome: string; invalid?: boolean; message?: string }
    const left = await processesLeft()
    figure(
      "extreme-config",
      `pool.min 100000: ${
        result === undefined
          ? `the process died (${signal ?? `exit ${code}`}) after ${seconds(ms)}`
          : `${result.outcome}${
            result.message === undefined ? "" : ` ("${result.message.slice(0, 80)}")`
          }, exit ${code} after ${seconds(ms)}`
      }, peak RSS ${Math.round(peakRss / 1024 / 1024)} MB (heap limit 192 MB), ${left} processes left`
    )
    assert.strictEqual(code, 0, "the host process survives")
    assert.strictEqual(result?.outcome, "rejected", "the configuration is refused")
    assert.isTrue(result?.invalid === true, "as BridgeConfigError Invalid naming mcpServers.a.bridge.pool.min")
    assert.strictEqual(left, 0)
  }, 60_000)
})
