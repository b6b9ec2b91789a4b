/**
 * Runs every client scenario of the official MCP conformance suite against the bridge (`client.ts`, which uses the
 * Promise facade), a few at a time, and reports one line per scenario.
 *
 * `npm run conformance [-- options]`:
 * - `--only <name>`: run the scenarios whose name contains `<name>` (repeatable);
 * - `--concurrency <n>`: scenarios in flight at once (default 4; each is two Node processes, mostly idle);
 * - `--baseline <file>`: a JSON array of scenarios expected to fail: they do not fail the run, but one that passes does
 *   (the baseline is stale);
 * - `--verbose`: print the failed checks and the tail of the client's output of every failing scenario.
 *
 * Each scenario is one `conformance client --scenario <name> --command "node client.ts"` process, whose exit code is
 * the suite's own verdict (no failed check, no warning, no client timeout, and a zero client exit code unless the
 * scenario expects the client to give up). The checks are read from the `checks.json` it writes. The summary goes to
 * `.conformance/summary.json` (with each scenario's checks and output under `.conformance/<scenario>/`), and the
 * process exits with 1 unless every scenario passed.
 *
 * Nothing here is a vitest test: the suite drives whole processes, and its scenarios bind their own ports.
 */
import { spawn } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

interface Check {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly status: "SUCCESS" | "FAILURE" | "WARNING" | "SKIPPED" | "INFO"
  readonly errorMessage?: string
}

interface ScenarioResult {
  readonly scenario: string
  readonly passed: boolean
  readonly exitCode: number | null
  readonly durationMillis: number
  readonly checks: {
    readonly success: number
    readonly failure: number
    readonly warning: number
    readonly info: number
  }
  readonly failed: ReadonlyArray<{ readonly id: string; readonly status: string; readonly detail: string }>
  readonly output: string
}

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, "../../../..")
const clientScript = join(here, "client.ts")
const require = createRequire(import.meta.url)
const suitePackage = require.resolve("@modelcontextprotocol/conformance/package.json")
const suiteBin = join(dirname(suitePackage), "dist/index.js")
const suiteVersion = (JSON.parse(readFileSync(suitePackage, "utf8")) as { version: string }).version
const outDir = join(root, ".conformance")

// --- arguments ---------------------------------------------------------------

const args = process.argv.slice(2)
const only: Array<string> = []
let concurrency = 4
let baselineFile: string | undefined
let verbose = false
for (let i = 0; i < args.length; i++) {
  const arg = args[i]
  if (arg === "--only") only.push(args[++i] ?? "")
  else if (arg === "--concurrency") concurrency = Math.max(1, Number(args[++i]) || 1)
  else if (arg === "--baseline") baselineFile = args[++i]
  else if (arg === "--verbose") verbose = true
  else {
    console.error(`unknown option ${arg}`)
    process.exit(2)
  }
}
const baseline = new Set<string>(
  baselineFile === undefined ? [] : JSON.parse(readFileSync(resolve(baselineFile), "utf8")) as Array<string>
)

// --- processes ---------------------------------------------------------------

const run = (argv: ReadonlyArray<string>, timeoutMillis: number) =>
  new Promise<{ code: number | null; output: string }>((resolvePromise) => {
    const child = spawn(process.execPath, [suiteBin, ...argv], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMillis)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolvePromise({ code, output })
    })
  })

const listScenarios = async (): Promise<Array<string>> => {
  const { code, output } = await run(["list", "--client"], 30_000)
  if (code !== 0) throw new Error(`conformance list failed:\n${output}`)
  return output.split("\n").flatMap((line) => {
    const match = /^\s+- (\S+)/.exec(line)
    return match ? [match[1]!] : []
  })
}

const findFile = (dir: string, name: string): string | undefined => {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) {
      const found = findFile(path, name)
      if (found !== undefined) return found
    } else if (entry === name) return path
  }
  return undefined
}

const runScenario = async (scenario: string): Promise<ScenarioResult> => {
  const dir = join(outDir, ...scenario.split("/"))
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const started = performance.now()
  // The suite splits the command at spaces, and appends the server URL.
  const command = `${process.execPath} --conditions=@mcp-bridge/source ${clientScript}`
  const { code, output } = await run(
    ["client", "--scenario", scenario, "--command", command, "--timeout", "30000", "-o", dir],
    90_000
  )
  const durationMillis = Math.round(performance.now() - started)
  writeFileSync(join(dir, "output.txt"), output)
  const checksFile = findFile(dir, "checks.json")
  const checks: ReadonlyArray<Check> = checksFile === undefined
    ? []
    : JSON.parse(readFileSync(checksFile, "utf8")) as Array<Check>
  const count = (status: Check["status"]) => checks.filter((check) => check.status === status).length
  return {
    scenario,
    passed: code === 0,
    exitCode: code,
    durationMillis,
    checks: { success: count("SUCCESS"), failure: count("FAILURE"), warning: count("WARNING"), info: count("INFO") },
    failed: checks.filter((check) => check.status === "FAILURE" || check.status === "WARNING").map((check) => ({
      id: check.id,
      status: check.status,
      detail: check.errorMessage ?? check.description
    })),
    output
  }
}

// --- report ------------------------------------------------------------------

const line = (result: ScenarioResult, width: number) => {
  const { failure, success, warning } = result.checks
  const mark = result.passed ? "PASS" : baseline.has(result.scenario) ? "xfail" : "FAIL"
  const counts = `${success}/${success + failure} checks${
    warning > 0 ? `, ${warning} warning${warning > 1 ? "s" : ""}` : ""
  }`
  const exit = result.passed || failure > 0 || warning > 0 ? "" : `, client exit ${result.exitCode}`
  return `${mark.padEnd(5)} ${result.scenario.padEnd(width)} ${counts}${exit} (${
    (result.durationMillis / 1000).toFixed(1)
  } s)`
}

const main = async () => {
  const started = performance.now()
  const all = await listScenarios()
  const scenarios = only.length === 0 ? all : all.filter((name) => only.some((part) => name.includes(part)))
  if (scenarios.length === 0) throw new Error(`no client scenario matches ${only.join(", ")}`)
  mkdirSync(outDir, { recursive: true })
  console.log(`conformance ${suiteVersion}: ${scenarios.length} client scenarios, ${concurrency} at a time`)
  const width = Math.max(...scenarios.map((name) => name.length))
  const results = new Map<string, ScenarioResult>()
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, scenarios.length) }, async () => {
    while (next < scenarios.length) {
      const scenario = scenarios[next++]!
      const result = await runScenario(scenario)
      results.set(scenario, result)
      console.log(line(result, width))
      if (verbose && !result.passed) {
        for (const check of result.failed) console.log(`        ${check.status} ${check.id}: ${check.detail}`)
        console.log(result.output.trim().split("\n").slice(-15).map((text) => `        | ${text}`).join("\n"))
      }
    }
  }))
  const ordered = scenarios.map((name) => results.get(name)!)
  const passed = ordered.filter((result) => result.passed)
  const unexpected = ordered.filter((result) => !result.passed && !baseline.has(result.scenario))
  const stale = ordered.filter((result) => result.passed && baseline.has(result.scenario))
  const durationMillis = Math.round(performance.now() - started)
  writeFileSync(
    join(outDir, "summary.json"),
    JSON.stringify(
      {
        suite: `@modelcontextprotocol/conformance@${suiteVersion}`,
        finishedAt: new Date().toISOString(),
        durationMillis,
        passed: passed.length,
        failed: ordered.length - passed.length,
        scenarios: ordered.map(({ output: _output, ...result }) => result)
      },
      null,
      2
    ) + "\n"
  )
  console.log(
    `${passed.length}/${ordered.length} scenarios passed in ${(durationMillis / 1000).toFixed(1)} s; ` +
      `summary in ${relative(process.cwd(), join(outDir, "summary.json"))}`
  )
  for (const result of stale) console.log(`stale baseline: ${result.scenario} passes now`)
  process.exit(unexpected.length > 0 || stale.length > 0 ? 1 : 0)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
