/**
 * Malformed calls through the Promise facade: every facade method rejects (never throws
 * synchronously) with a typed error naming the argument path; arguments must be JSON-serialisable, checked before
 * they are sent or used as a cache key.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Expect from "./expect.ts"
import { figure, hangMillis, kindOf, messageOf, processesLeft, stdio, tally, within } from "./harness.ts"

type Facade = Expect.Bridge
type AnyFn = (...args: Array<unknown>) => Promise<unknown>

interface Case {
  readonly name: string
  readonly run: (bridge: Facade) => Promise<unknown>
  /** what the error must be: an InvalidCall at this path, or an unknown server / tool */
  readonly expect: ReadonlyArray<string> | { readonly unknown: "UnknownServer" | "UnknownTool"; readonly name: string }
}

const circular = () => {
  const args: Record<string, unknown> = { a: 1 }
  args.self = args
  return args
}

const call = (bridge: Facade, ...args: Array<unknown>) => (bridge.callTool as unknown as AnyFn)(...args)
const many = (bridge: Facade, ...args: Array<unknown>) => (bridge.callMany as unknown as AnyFn)(...args)

const cases: ReadonlyArray<Case> = [
  // the target
  { name: "callTool(42)", run: (b) => call(b, 42), expect: ["name"] },
  { name: "callTool(undefined)", run: (b) => call(b), expect: ["name"] },
  { name: "callTool(null)", run: (b) => call(b, null), expect: ["name"] },
  { name: "callTool(\"\")", run: (b) => call(b, ""), expect: ["name"] },
  { name: "callTool(\"nodot\")", run: (b) => call(b, "nodot"), expect: ["name"] },
  { name: "callTool(\".echo\")", run: (b) => call(b, ".echo"), expect: ["name"] },
  { name: "callTool(\"s.\")", run: (b) => call(b, "s."), expect: ["name"] },
  { name: "callTool({ server: 1 })", run: (b) => call(b, { server: 1, tool: "echo" }), expect: ["name", "server"] },
  { name: "callTool({ server: \"s\" })", run: (b) => call(b, { server: "s" }), expect: ["name", "tool"] },
  { name: "callTool([\"s\", \"echo\"])", run: (b) => call(b, ["s", "echo"]), expect: ["name"] },
  { name: "unknown server", run: (b) => call(b, "nope.echo"), expect: { unknown: "UnknownServer", name: "nope" } },
  { name: "unknown tool", run: (b) => call(b, "s.nope"), expect: { unknown: "UnknownTool", name: "nope" } },
  // the arguments
  { name: "arguments 5", run: (b) => call(b, "s.echo", 5), expect: ["arguments"] },
  { name: "arguments \"x\"", run: (b) => call(b, "s.echo", "x"), expect: ["arguments"] },
  { name: "arguments [1, 2]", run: (b) => call(b, "s.echo", [1, 2]), expect: ["arguments"] },
  { name: "arguments null", run: (b) => call(b, "s.echo", null), expect: ["arguments"] },
  { name: "BigInt argument", run: (b) => call(b, "s.echo", { n: 10n }), expect: ["arguments", "n"] },
  { name: "nested BigInt", run: (b) => call(b, "s.echo", { deep: { n: 1n } }), expect: ["arguments", "deep", "n"] },
  { name: "BigInt in an array", run: (b) => call(b, "s.echo", { list: [1, 2n] }), expect: ["arguments", "list", "1"] },
  { name: "BigInt to a cached tool", run: (b) => call(b, "s.cached", { n: 10n }), expect: ["arguments", "n"] },
  { name: "function argument", run: (b) => call(b, "s.echo", { f: () => 1 }), expect: ["arguments", "f"] },
  { name: "symbol argument", run: (b) => call(b, "s.echo", { s: Symbol("x") }), expect: ["arguments", "s"] },
  { name: "circular arguments", run: (b) => call(b, "s.echo", circular()), expect: ["arguments", "self"] },
  {
    name: "circular arguments, cached tool",
    run: (b) => call(b, "s.cached", circular()),
    expect: ["arguments", "self"]
  },
  // the options
  { name: "options 5", run: (b) => call(b, "s.echo", {}, 5), expect: ["options"] },
  { name: "timeout -1", run: (b) => call(b, "s.echo", {}, { timeout: -1 }), expect: ["options", "timeout"] },
  { name: "timeout \"soon\"", run: (b) => call(b, "s.echo", {}, { timeout: "soon" }), expect: ["options", "timeout"] },
  { name: "timeout 0", run: (b) => call(b, "s.echo", {}, { timeout: 0 }), expect: ["options", "timeout"] },
  { name: "timeout NaN", run: (b) => call(b, "s.echo", {}, { timeout: Number.NaN }), expect: ["options", "timeout"] },
  { name: "timeout {}", run: (b) => call(b, "s.echo", {}, { timeout: {} }), expect: ["options", "timeout"] },
  { name: "identity 42", run: (b) => call(b, "s.echo", {}, { identity: 42 }), expect: ["options", "identity"] },
  {
    name: "identity { tenant }",
    run: (b) => call(b, "s.echo", {}, { identity: { tenant: "a" } }),
    expect: ["options", "identity"]
  },
  { name: "signal \"x\"", run: (b) => call(b, "s.echo", {}, { signal: "x" }), expect: ["options", "signal"] },
  { name: "signal {}", run: (b) => call(b, "s.echo", {}, { signal: {} }), expect: ["options", "signal"] },
  { name: "meta 5", run: (b) => call(b, "s.echo", {}, { meta: 5 }), expect: ["options", "meta"] },
  { name: "meta [1]", run: (b) => call(b, "s.echo", {}, { meta: [1] }), expect: ["options", "meta"] },
  {
    name: "meta with a BigInt",
    run: (b) => call(b, "s.echo", {}, { meta: { n: 1n } }),
    expect: ["options", "meta", "n"]
  },
  { name: "onProgress 5", run: (b) => call(b, "s.echo", {}, { onProgress: 5 }), expect: ["options", "onProgress"] },
  // callMany
  { name: "callMany(5)", run: (b) => many(b, 5), expect: ["calls"] },
  { name: "callMany(null)", run: (b) => many(b, null), expect: ["calls"] },
  { name: "callMany([5])", run: (b) => many(b, [5]), expect: ["calls", "0"] },
  { name: "callMany([{ name: 42 }])", run: (b) => many(b, [Expect.manyItem(42)]), expect: ["calls", "0", "name"] },
  {
    name: "callMany item arguments 5",
    run: (b) => many(b, [Expect.manyItem("s.echo", 5)]),
    expect: ["calls", "0", "arguments"]
  },
  {
    name: "callMany item BigInt",
    run: (b) => many(b, [Expect.manyItem("s.echo", { n: 1n })]),
    expect: ["calls", "0", "arguments", "n"]
  },
  { name: "callMany concurrency 0", run: (b) => many(b, [], { concurrency: 0 }), expect: ["options", "concurrency"] },
  {
    name: "callMany concurrency \"x\"",
    run: (b) => many(b, [], { concurrency: "x" }),
    expect: ["options", "concurrency"]
  }
]

type Verdict = "typed" | "typed-no-path" | "untyped" | "resolved" | "threw" | "hung"

/** The error a call ended with: its rejection, or the first failed outcome of a `callMany`. */
const errorOf = async (
  pending: Promise<unknown>,
  hang: number
): Promise<{ readonly error: unknown; readonly resolved: boolean }> => {
  try {
    const value = await within(hang, pending, "call")
    const failed = Array.isArray(value)
      ? (value as Array<{ ok?: boolean; error?: unknown }>).find((o) => o?.ok === false)
      : undefined
    return failed === undefined ? { error: undefined, resolved: true } : { error: failed.error, resolved: false }
  } catch (error) {
    return { error, resolved: false }
  }
}

const judge = async (
  bridge: Facade,
  c: Case,
  hang: number
): Promise<{ readonly verdict: Verdict; readonly detail: string }> => {
  let pending: Promise<unknown>
  try {
    pending = c.run(bridge)
  } catch (error) {
    return { verdict: "threw", detail: `${kindOf(error)}` }
  }
  const { error, resolved } = await errorOf(pending, hang)
  if (resolved) return { verdict: "resolved", detail: "" }
  if (messageOf(error).includes("did not settle within")) return { verdict: "hung", detail: "" }
  const right = Array.isArray(c.expect)
    ? Expect.isInvalidCall(error, c.expect as ReadonlyArray<string>)
    : Expect.isUnknown(
      error,
      (c.expect as { readonly unknown: "UnknownServer" | "UnknownTool" }).unknown,
      (c.expect as { readonly name: string }).name
    )
  if (right) return { verdict: "typed", detail: "" }
  const typed = kindOf(error).startsWith("McpBridgeError")
  return { verdict: typed ? "typed-no-path" : "untyped", detail: `${kindOf(error)}: ${messageOf(error).slice(0, 90)}` }
}

describe("calls", () => {
  it(
    `malformed-calls: ${cases.length} malformed calls, each rejected with a typed error naming the argument path`,
    async () => {
      const config = {
        mcpServers: {
          s: stdio({ tools: [{ name: "echo" }, { name: "cached" }] }, {
            bridge: { tools: { cached: { cache: "1 minute" } } }
          })
        }
      }
      const hang = await Effect.runPromise(hangMillis)
      const bridge = await Expect.createBridge(config)
      const results: Array<{ readonly c: Case; readonly verdict: Verdict; readonly detail: string }> = []
      try {
        await bridge.callTool("s.echo", {})
        for (const c of cases) results.push({ c, ...(await judge(bridge, c, hang)) })
        // the bridge is still usable after all that
        await bridge.callTool("s.echo", { after: true })
      } finally {
        await bridge.close()
      }
      const left = await processesLeft()
      const bad = results.filter((r) => r.verdict !== "typed")
      figure(
        "malformed-calls",
        `${cases.length} calls: ${tally(results.map((r) => r.verdict))}; not right: ${
          bad.map((r) => `${r.c.name} (${r.verdict})`).join(", ")
        }; ${left} processes left`
      )
      for (const r of bad) console.log(`  ${r.c.name}: ${r.verdict} ${r.detail}`)
      assert.deepStrictEqual(
        bad.map((r) => r.c.name),
        [],
        "every malformed call rejects with a typed error naming the argument path"
      )
      assert.strictEqual(left, 0)
    },
    120_000
  )
})
