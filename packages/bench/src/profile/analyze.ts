/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and prints where the time of a warm call went, as markdown:
 * the share of each origin (the bridge, Effect, the SDK v2 client, zod, Node, GC...), then the top self-time and
 * inclusive entries by `file:line function`, overall and within the bridge, Effect and the SDK.
 *
 * `node packages/bench/src/profile/analyze.ts <file.cpuprofile> [--window <file.window.json>] [--top 20]`
 *
 * With a window (written by `warm-call.ts`; by default `<file>.window.json` when it exists), only the samples of
 * the measured phase count, and every figure is also given in µs per call.
 *
 * Inclusive time counts a function once per sample in which it is on the stack. Async code resumes from the
 * microtask queue, and Effect's fibers from the runtime's loop, so an async function's or a generator's inclusive
 * time covers only its synchronous stretches, never the awaited work: read the bridge's inclusive figures with that
 * in mind.
 */
import { existsSync, readFileSync } from "node:fs"
import { basename } from "node:path"
import { parseArgs } from "node:util"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}
interface Window {
  readonly label: string
  readonly startMicros: number
  readonly endMicros: number
  readonly calls: number
}

export type Origin =
  | "bridge"
  | "Effect"
  | "SDK v2 client"
  | "SDK v2 server"
  | "SDK v1"
  | "zod"
  | "ajv"
  | "bench driver"
  | "test server"
  | "Node"
  | "GC"
  | "V8/native"
  | "idle"
  | "other"

/** Where a frame's code comes from, by its URL. */
export const originOf = (frame: CallFrame): Origin => {
  const url = frame.url
  if (url === "") {
    if (frame.functionName === "(garbage collector)") return "GC"
    if (frame.functionName === "(idle)") return "idle"
    return "V8/native"
  }
  if (url.includes("/packages/core/src/") || url.includes("/packages/node/src/")) return "bridge"
  if (url.includes("/packages/bench/")) return "bench driver"
  if (url.includes("/packages/testing/")) return "test server"
  if (url.includes("/node_modules/effect/") || url.includes("/node_modules/@effect/")) return "Effect"
  if (url.includes("/@modelcontextprotocol/client/")) return "SDK v2 client"
  if (url.includes("/@modelcontextprotocol/server/") || url.includes("/@modelcontextprotocol/node/")) {
    return "SDK v2 server"
  }
  if (url.includes("/@modelcontextprotocol/sdk/") || url.includes("/@modelcontextprotocol/core/")) return "SDK v1"
  if (url.includes("/node_modules/zod/")) return "zod"
  if (url.includes("/node_modules/ajv")) return "ajv"
  if (url.startsWith("node:")) return "Node"
  return "other"
}

/** `file:line function`, the file relative to its package. */
const frameName = (frame: CallFrame): string => {
  const url = frame.url
  const file = url === ""
    ? ""
    : url.includes("/node_modules/")
    ? url.slice(url.lastIndexOf("/node_modules/") + 14)
    : url.includes("/packages/")
    ? url.slice(url.lastIndexOf("/packages/") + 10)
    : basename(url)
  const name = frame.functionName === "" ? "(anonymous)" : frame.functionName
  return file === "" ? name : `${file}:${frame.lineNumber + 1} ${name}`
}

export interface Entry {
  readonly name: string
  readonly origin: Origin
  self: number
  inclusive: number
}

export interface Analysis {
  readonly totalMicros: number
  readonly calls: number | undefined
  readonly label: string | undefined
  readonly byOrigin: Map<Origin, number>
  readonly entries: ReadonlyArray<Entry>
  /** Effect's self time by the nearest bridge frame above it on the stack (the stage that asked for the work) */
  readonly effectByBridgeCaller: Map<string, number>
}

export const analyze = (profile: Profile, window: Window | undefined): Analysis => {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const entries = new Map<string, Entry>()
  const entryOf = (frame: CallFrame): Entry => {
    const name = frameName(frame)
    let entry = entries.get(name)
    if (entry === undefined) {
      entry = { name, origin: originOf(frame), self: 0, inclusive: 0 }
      entries.set(name, entry)
    }
    return entry
  }
  const byOrigin = new Map<Origin, number>()
  const effectByBridgeCaller = new Map<string, number>()
  let total = 0
  let time = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i]!
    // a sample stands for the time until the next one
    const weight = profile.timeDeltas[i + 1] ?? 0
    if (window !== undefined && (time < window.startMicros || time >= window.endMicros)) continue
    const leaf = nodes.get(profile.samples[i]!)!
    if (leaf.callFrame.functionName === "(idle)") {
      byOrigin.set("idle", (byOrigin.get("idle") ?? 0) + weight)
      total += weight
      continue
    }
    total += weight
    const leafEntry = entryOf(leaf.callFrame)
    leafEntry.self += weight
    byOrigin.set(leafEntry.origin, (byOrigin.get(leafEntry.origin) ?? 0) + weight)
    const seen = new Set<Entry>()
    let caller: string | undefined
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const node = nodes.get(id)!
      if (node.callFrame.functionName === "(root)") break
      const entry = entryOf(node.callFrame)
      if (caller === undefined && entry.origin === "bridge") caller = entry.name
      if (seen.has(entry)) continue
      seen.add(entry)
      entry.inclusive += weight
    }
    if (leafEntry.origin === "Effect") {
      const key = caller ?? "(no bridge frame on the stack: the fiber runtime resuming, or ManagedRuntime.runPromise)"
      effectByBridgeCaller.set(key, (effectByBridgeCaller.get(key) ?? 0) + weight)
    }
  }
  return {
    totalMicros: total,
    calls: window?.calls,
    label: window?.label,
    byOrigin,
    entries: [...entries.values()],
    effectByBridgeCaller
  }
}

const pct = (x: number, total: number) => `${((100 * x) / total).toFixed(1)} %`

/** Renders an analysis; `top` entries per table. */
export const render = (analysis: Analysis, top: number): string => {
  const { calls, totalMicros } = analysis
  const perCall = (us: number) => calls === undefined ? "" : ` | ${(us / calls).toFixed(2)}`
  const perCallHeader = calls === undefined ? "" : " | µs/call"
  const perCallRule = calls === undefined ? "" : "|---:"
  const lines: Array<string> = []
  if (analysis.label !== undefined) {
    lines.push(
      `**${analysis.label}**: ${calls} calls, ${(totalMicros / 1000).toFixed(0)} ms sampled, ${
        calls === undefined ? "" : `${(totalMicros / calls).toFixed(1)} µs per call`
      }`,
      ""
    )
  }
  lines.push(`| origin (self time) | share${perCallHeader} |`, `|---|---:${perCallRule}|`)
  for (const [origin, us] of [...analysis.byOrigin].sort((a, b) => b[1] - a[1])) {
    lines.push(`| ${origin} | ${pct(us, totalMicros)}${perCall(us)} |`)
  }
  const table = (title: string, entries: ReadonlyArray<Entry>, key: "self" | "inclusive") => {
    lines.push(
      "",
      `${title}:`,
      "",
      `| ${key} | share${perCallHeader} | origin | function |`,
      `|---:|---:${perCallRule}|---|---|`
    )
    for (const e of [...entries].sort((a, b) => b[key] - a[key]).slice(0, top)) {
      if (e[key] === 0) break
      lines.push(
        `| ${(e[key] / 1000).toFixed(1)} ms | ${pct(e[key], totalMicros)}${
          perCall(e[key])
        } | ${e.origin} | \`${e.name}\` |`
      )
    }
  }
  table("Top self time", analysis.entries, "self")
  if (analysis.effectByBridgeCaller.size > 0) {
    lines.push(
      "",
      "Effect's self time by the nearest bridge frame above it (which stage asked for the work):",
      "",
      `| self | share${perCallHeader} | nearest bridge frame |`,
      `|---:|---:${perCallRule}|---|`
    )
    for (const [name, us] of [...analysis.effectByBridgeCaller].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      lines.push(`| ${(us / 1000).toFixed(1)} ms | ${pct(us, totalMicros)}${perCall(us)} | \`${name}\` |`)
    }
  }
  for (const origin of ["bridge", "Effect", "SDK v2 client"] as const) {
    const mine = analysis.entries.filter((e) => e.origin === origin)
    if (mine.length === 0) continue
    table(`${origin}: top self time`, mine, "self")
    table(`${origin}: top inclusive time (callees of any origin included)`, mine, "inclusive")
  }
  return lines.join("\n")
}

const main = () => {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { window: { type: "string" }, top: { type: "string", default: "20" } }
  })
  for (const file of positionals) {
    const windowFile = values.window ?? file.replace(/\.cpuprofile$/, ".window.json")
    const window = existsSync(windowFile) ? JSON.parse(readFileSync(windowFile, "utf8")) as Window : undefined
    const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
    console.log(`## ${basename(file)}\n\n${render(analyze(profile, window), Number(values.top))}\n`)
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(basename(process.argv[1]))) main()
