/**
 * Runs every client scenario of the official MCP conformance suite against the bridge (`client.ts`, which uses the
 * Promise facade), a few at a time, and reports one line per scenario. Two releases of the suite run one after the
 * other: the stable one (`@modelcontextprotocol/conformance`) and the prerelease with the newest scenarios
 * (`conformance-next`, an npm alias of a 0.2.0 prerelease).
 *
 * `npm run conformance [-- options]`:
 * - `--suite <current|next>`: run one release only (repeatable; default both);
 * - `--only <name>`: run the scenarios whose name contains `<name>` (repeatable);
 * - `--concurrency <n>`: scenarios in flight at once (default 4; each is two Node processes, mostly idle);
 * - `--no-baseline`: every scenario must pass (by default each release's expected failures, `expected-failures.json`
 *   and `expected-failures-next.json`, do not fail the run, but one of them that passes does: the list is stale);
 * - `--verbose`: print the failed checks and the tail of the client's output of every failing scenario.
 *
 * An expected-failures file maps each scenario to the reason it fails (an API the bridge does not have, a defect of
 * the suite), so that nothing is hidden.
 *
 * Each scenario is one `conformance client --scenario <name> --command "node client.ts"` process, whose exit code is
 * the suite's own verdict (no failed check, no warning, no client timeout, and a zero client exit code unless the
 * scenario expects the client to give up). The checks are read from the `checks.json` it writes. The summary goes to
 * `.conformance/<suite>/summary.json` (with each scenario's checks and output beside it), and the process exits with
 * 1 unless every scenario passed or is an expected failure.
 *
 * Nothing here is a vitest test: the suite drives whole processes, and its scenarios bind their own ports.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { loadSuites, outRoot, parseOptions, runCli as run, type Suite } from "./suites.ts"

interface Check {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly status: "SUCCESS" | "FAILURE" | "WARNING" | "SKIPPED" | "INFO"
  readonly errorMessage?: string
}

interface ScenarioResult {
  readonly scenario: string
  readonly extension: boolean
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

const clientScript = join(dirname(fileURLToPath(import.meta.url)), "client.ts")
/** How long the suite lets a client run before it fails the scenario (see `runScenario`). */
const clientTimeoutMillis = 120_000

const options = parseOptions(process.argv.slice(2), { valued: ["--concurrency"] })
const { only, suites, verbose } = options
const concurrency = Math.max(1, Number(options.values.get("--concurrency") ?? 4) || 1)
const allSuites = loadSuites(options, { current: "expected-failures.json", next: "expected-failures-next.json" })

/** The client scenarios of a release, each marked when the suite lists it as an extension's. */
const listScenarios = async (suite: Suite): Promise<Array<{ name: string; extension: boolean }>> => {
  const { code, output } = await run(suite, ["list", "--client"], 30_000)
  if (code !== 0) throw new Error(`conformance ${suite.version} list failed:\n${output}`)
  return output.split("\n").flatMap((line) => {
    const match = /^\s+- (\S+)(.*)$/.exec(line)
    return match ? [{ name: match[1]!, extension: /\bextension\b/.test(match[2] ?? "") }] : []
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

const runScenario = async (
  suite: Suite,
  scenario: { readonly name: string; readonly extension: boolean }
): Promise<ScenarioResult> => {
  const dir = join(outRoot, suite.name, ...scenario.name.split("/"))
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const started = performance.now()
  // The suite splits the command at spaces, and appends the server URL. The client's time limit is generous: a
  // client process needs about two seconds of CPU to load the bridge from source, and on a loaded machine (two cores
  // shared by several runs) that took over 30 s of wall time, so the suite's usual 30 s judged the machine, not the
  // client. A scenario that passes ends when the client exits, well before the limit.
  const command = `${process.execPath} --conditions=@mcp-bridge/source ${clientScript}`
  const { code, output } = await run(
    suite,
    ["client", "--scenario", scenario.name, "--command", command, "--timeout", String(clientTimeoutMillis), "-o", dir],
    clientTimeoutMillis + 60_000
  )
  const durationMillis = Math.round(performance.now() - started)
  writeFileSync(join(dir, "output.txt"), output)
  const checksFile = findFile(dir, "checks.json")
  const checks: ReadonlyArray<Check> = checksFile === undefined
    ? []
    : JSON.parse(readFileSync(checksFile, "utf8")) as Array<Check>
  const count = (status: Check["status"]) => checks.filter((check) => check.status === status).length
  return {
    scenario: scenario.name,
    extension: scenario.extension,
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

const line = (suite: Suite, result: ScenarioResult, width: number) => {
  const { failure, success, warning } = result.checks
  const mark = result.passed ? "PASS" : suite.baseline.has(result.scenario) ? "xfail" : "FAIL"
  const counts = `${success}/${success + failure} checks${
    warning > 0 ? `, ${warning} warning${warning > 1 ? "s" : ""}` : ""
  }`
  const exit = result.passed || failure > 0 || warning > 0 ? "" : `, client exit ${result.exitCode}`
  return `${mark.padEnd(5)} ${result.scenario.padEnd(width)} ${counts}${exit} (${
    (result.durationMillis / 1000).toFixed(1)
  } s)`
}

/** Runs one release's scenarios; returns whether the run is green (no unexpected failure, no stale entry). */
const runSuite = async (suite: Suite): Promise<boolean> => {
  const started = performance.now()
  const all = await listScenarios(suite)
  const scenarios = only.length === 0 ? all : all.filter(({ name }) => only.some((part) => name.includes(part)))
  if (scenarios.length === 0) {
    console.log(`conformance ${suite.version}: no client scenario matches ${only.join(", ")}`)
    return true
  }
  const outDir = join(outRoot, suite.name)
  mkdirSync(outDir, { recursive: true })
  console.log(`conformance ${suite.version}: ${scenarios.length} client scenarios, ${concurrency} at a time`)
  const width = Math.max(...scenarios.map(({ name }) => name.length))
  const results = new Map<string, ScenarioResult>()
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, scenarios.length) }, async () => {
    while (next < scenarios.length) {
      const scenario = scenarios[next++]!
      const result = await runScenario(suite, scenario)
      results.set(scenario.name, result)
      console.log(line(suite, result, width))
      if (verbose && !result.passed) {
        for (const check of result.failed) console.log(`        ${check.status} ${check.id}: ${check.detail}`)
        console.log(result.output.trim().split("\n").slice(-15).map((text) => `        | ${text}`).join("\n"))
      }
    }
  }))
  const ordered = scenarios.map(({ name }) => results.get(name)!)
  const passed = ordered.filter((result) => result.passed)
  const unexpected = ordered.filter((result) => !result.passed && !suite.baseline.has(result.scenario))
  const stale = ordered.filter((result) => result.passed && suite.baseline.has(result.scenario))
  const durationMillis = Math.round(performance.now() - started)
  const tally = (extension: boolean) => {
    const part = ordered.filter((result) => result.extension === extension)
    return { passed: part.filter((result) => result.passed).length, total: part.length }
  }
  const core = tally(false)
  const extensions = tally(true)
  writeFileSync(
    join(outDir, "summary.json"),
    JSON.stringify(
      {
        suite: `@modelcontextprotocol/conformance@${suite.version}`,
        finishedAt: new Date().toISOString(),
        durationMillis,
        passed: passed.length,
        failed: ordered.length - passed.length,
        core,
        extensions,
        expectedFailures: Object.fromEntries(
          ordered.filter((result) => !result.passed && suite.baseline.has(result.scenario)).map((
            result
          ) => [result.scenario, suite.baseline.get(result.scenario)])
        ),
        scenarios: ordered.map(({ output: _output, ...result }) => result)
      },
      null,
      2
    ) + "\n"
  )
  console.log(
    `conformance ${suite.version}: ${passed.length}/${ordered.length} scenarios passed (core ${core.passed}/${core.total}, ` +
      `extensions ${extensions.passed}/${extensions.total}) in ${(durationMillis / 1000).toFixed(1)} s; ` +
      `summary in ${relative(process.cwd(), join(outDir, "summary.json"))}`
  )
  for (const result of ordered) {
    if (!result.passed && suite.baseline.has(result.scenario)) {
      console.log(`expected failure: ${result.scenario}: ${suite.baseline.get(result.scenario)}`)
    }
  }
  for (const result of stale) console.log(`stale expected failure: ${result.scenario} passes now`)
  return unexpected.length === 0 && stale.length === 0
}

const main = async () => {
  const chosen = suites.length === 0 ? allSuites : allSuites.filter((suite) => suites.includes(suite.name))
  let green = true
  for (const suite of chosen) green = (await runSuite(suite)) && green
  process.exit(green ? 0 : 1)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
