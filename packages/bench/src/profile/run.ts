/**
 * Profiles the warm uncached call in every configuration, one `node --cpu-prof` child each, then writes
 * `.bench/profiles/report.md` (a summary by origin, then each profile's top entries; see `analyze.ts`).
 *
 * `node packages/bench/src/profile/run.ts [--calls 20000] [--interval 50] [--only bridge-stdio,sdk2-stdio]`
 *
 * Each child runs `warm-call.ts`; the profiles, their window files and the report go to `.bench/profiles/`.
 * The sampling interval (µs) makes the profiled calls slower than unprofiled ones: compare the configurations with
 * each other, and take absolute latencies from `npm run bench`.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { analyze, render } from "./analyze.ts"
import type { Analysis, Origin } from "./analyze.ts"

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "20000" },
    interval: { type: "string", default: "50" },
    only: { type: "string" },
    top: { type: "string", default: "20" }
  }
})

const configurations: ReadonlyArray<readonly [name: string, args: ReadonlyArray<string>]> = [
  ["bridge-stdio", ["--client", "bridge", "--transport", "stdio", "--stack", "busy"]],
  ["sdk2-stdio", ["--client", "sdk2", "--transport", "stdio"]],
  ["bridge-stdio-default", ["--client", "bridge", "--transport", "stdio", "--stack", "default"]],
  ["bridge-memory-modern", ["--client", "bridge", "--transport", "memory", "--era", "modern", "--stack", "busy"]],
  ["sdk2-memory-modern", ["--client", "sdk2", "--transport", "memory", "--era", "modern"]],
  ["bridge-memory-legacy", ["--client", "bridge", "--transport", "memory", "--era", "legacy", "--stack", "busy"]],
  [
    "bridge-memory-legacy-default",
    ["--client", "bridge", "--transport", "memory", "--era", "legacy", "--stack", "default"]
  ],
  ["sdk2-memory-legacy", ["--client", "sdk2", "--transport", "memory", "--era", "legacy"]]
]

const only = values.only === undefined ? undefined : new Set(values.only.split(","))
const dir = resolve(process.cwd(), ".bench/profiles")
mkdirSync(dir, { recursive: true })
const driver = fileURLToPath(new URL("./warm-call.ts", import.meta.url))

const analyses: Array<readonly [string, Analysis]> = []
for (const [name, args] of configurations) {
  if (only !== undefined && !only.has(name)) continue
  const window = resolve(dir, `${name}.window.json`)
  const out = execFileSync(process.execPath, [
    "--cpu-prof",
    "--cpu-prof-interval",
    values.interval,
    "--cpu-prof-dir",
    dir,
    "--cpu-prof-name",
    `${name}.cpuprofile`,
    driver,
    ...args,
    "--calls",
    values.calls,
    "--window",
    window
  ], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })
  console.error(out.trim())
  const profile = JSON.parse(readFileSync(resolve(dir, `${name}.cpuprofile`), "utf8"))
  analyses.push([name, analyze(profile, JSON.parse(readFileSync(window, "utf8")))])
}

const origins: ReadonlyArray<Origin> = [
  "bridge",
  "Effect",
  "SDK v2 client",
  "zod",
  "SDK v2 server",
  "test server",
  "Node",
  "V8/native",
  "GC",
  "idle"
]
const perCall = (a: Analysis, us: number | undefined) => ((us ?? 0) / (a.calls ?? 1)).toFixed(1)
const summary = [
  `| profile | µs/call | ${origins.join(" | ")} | other |`,
  `|---|---:|${origins.map(() => "---:").join("|")}|---:|`,
  ...analyses.map(([name, a]) => {
    const rest = [...a.byOrigin].filter(([o]) => !origins.includes(o)).reduce((acc, [, us]) => acc + us, 0)
    return `| ${name} | ${perCall(a, a.totalMicros)} | ${
      origins.map((o) => perCall(a, a.byOrigin.get(o))).join(" | ")
    } | ${perCall(a, rest)} |`
  })
].join("\n")

const report = [
  "# Warm uncached call: CPU profiles",
  "",
  `\`node packages/bench/src/profile/run.ts --calls ${values.calls} --interval ${values.interval}\`, ${process.version}; ` +
  "self time by origin, µs per call (the profiler's sampling slows every call down).",
  "",
  summary,
  "",
  ...analyses.map(([name, a]) => `## ${name}\n\n${render(a, Number(values.top))}\n`)
].join("\n")
writeFileSync(resolve(dir, "report.md"), report + "\n")
console.log(summary)
console.log(`\nreport written to ${resolve(dir, "report.md")}`)
