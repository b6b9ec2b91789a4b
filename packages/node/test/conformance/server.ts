/**
 * Runs the *server* scenarios of the official MCP conformance suite against the gateway: the suite's fixture server
 * (`ConformanceServer` of `@mcp-bridge/testing`, the tools, resources and prompts the scenarios call by name) behind a
 * gateway in its one-server, no-prefix mode (`"gateway": { "prefix": "never" }`), both on free loopback ports of this
 * process. Each release of the suite runs all its server scenarios in one `conformance server --url <gateway>/mcp
 * --suite all` process (a process per scenario would spend most of its time starting): the stable release
 * (`@modelcontextprotocol/conformance`), then the prerelease with the 2026-07-28 scenarios (`conformance-next`).
 *
 * `npm run conformance:server [-- options]`:
 * - `--suite <current|next>`: run one release only (repeatable; default both);
 * - `--only <name>`: run the scenarios whose name contains `<name>` (repeatable);
 * - `--no-baseline`: every scenario must pass (by default each release's expected failures,
 *   `expected-failures-server.json` and `expected-failures-server-next.json`, do not fail the run, but one of them that
 *   passes does: the list is stale);
 * - `--direct`: run against the fixture itself, without the gateway (to tell the fixture's faults from the gateway's;
 *   the expected-failures lists describe the gateway);
 * - `--verbose`: print the failed checks of every failing scenario.
 *
 * A scenario passes when it saved its checks and none failed (warnings are printed, not failures). The checks are
 * read from the `checks.json` the suite writes under `.conformance/server-<suite>/`, and a summary goes to
 * `summary.json` beside them. The process exits with 1 unless every scenario passed or is an expected failure.
 *
 * Extension scenarios (`tasks-*`, `sep-2640-skills-*`) are left out: the gateway serves no extension.
 *
 * Nothing here is a vitest test: the suite drives whole processes.
 */
import { serveGateway } from "@mcp-bridge/node"
import { ConformanceServer } from "@mcp-bridge/testing"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"
import { loadSuites, outRoot, parseOptions, runCli as run, type Suite } from "./suites.ts"

interface Check {
  readonly id: string
  readonly status: "SUCCESS" | "FAILURE" | "WARNING" | "SKIPPED" | "INFO"
  readonly description?: string
  readonly errorMessage?: string
}

interface ScenarioResult {
  readonly scenario: string
  readonly passed: boolean
  readonly checks: {
    readonly saved: number
    readonly success: number
    readonly failure: number
    readonly warning: number
  }
  readonly failed: ReadonlyArray<{ readonly id: string; readonly status: string; readonly detail: string }>
  readonly output: string
}

const options = parseOptions(process.argv.slice(2), { flags: ["--direct"] })
const { only, suites, verbose } = options
const direct = options.flags.has("--direct")
const allSuites = loadSuites(options, {
  current: "expected-failures-server.json",
  next: "expected-failures-server-next.json"
})

/** The server scenarios of a release, each marked when the suite lists it as an extension's. */
const listScenarios = async (suite: Suite): Promise<Array<{ readonly name: string; readonly extension: boolean }>> => {
  const { code, output } = await run(suite, ["list", "--server"], 60_000)
  if (code !== 0) throw new Error(`conformance ${suite.version} list failed:\n${output}`)
  return output.split("\n").flatMap((line) => {
    const match = /^\s+- (\S+)(.*)$/.exec(line)
    return match ? [{ name: match[1]!, extension: /\bextension\b/.test(match[2] ?? "") }] : []
  })
}

/** A scenario's checks as the suite saved them: `<dir>/server-<scenario>-<timestamp>/checks.json`. */
const readResults = (dir: string, scenarios: ReadonlyArray<string>, output: string): Array<ScenarioResult> => {
  const saved = existsSync(dir) ? readdirSync(dir) : []
  return scenarios.map((scenario) => {
    const entry = saved.find((name) => new RegExp(`^server-${scenario}-\\d{4}-\\d\\d-\\d\\dT`).test(name))
    const file = entry === undefined ? undefined : join(dir, entry, "checks.json")
    const checks: ReadonlyArray<Check> = file === undefined || !existsSync(file)
      ? []
      : JSON.parse(readFileSync(file, "utf8")) as Array<Check>
    const count = (status: Check["status"]) => checks.filter((check) => check.status === status).length
    const failure = count("FAILURE")
    return {
      scenario,
      // A scenario that saved no checks did not run to its end (a crash or the suite's timeout).
      passed: checks.length > 0 && failure === 0,
      checks: { saved: checks.length, success: count("SUCCESS"), failure, warning: count("WARNING") },
      failed: checks.filter((check) => check.status === "FAILURE" || check.status === "WARNING").map((check) => ({
        id: check.id,
        status: check.status,
        detail: check.errorMessage ?? check.description ?? ""
      })),
      output: checks.length > 0 ? "" : output
    }
  })
}

// --- report ------------------------------------------------------------------

const line = (suite: Suite, result: ScenarioResult, width: number) => {
  const { failure, success, warning } = result.checks
  const mark = result.passed ? "PASS" : suite.baseline.has(result.scenario) ? "xfail" : "FAIL"
  const warnings = warning > 0 ? `, ${warning} warning${warning > 1 ? "s" : ""}` : ""
  const counts = result.checks.saved === 0 ? "no checks saved" : `${success}/${success + failure} checks${warnings}`
  return `${mark.padEnd(5)} ${result.scenario.padEnd(width)} ${counts}`
}

/**
 * Runs one release's server scenarios against `url` in one suite process (`--suite all`: the pending scenarios too);
 * returns whether the run is green (no unexpected failure, no stale entry). Extension scenarios run and are reported,
 * but do not count: the gateway serves no extension.
 */
const runSuite = async (suite: Suite, url: string): Promise<boolean> => {
  const started = performance.now()
  const listed = await listScenarios(suite)
  const chosen = only.length === 0 ? listed : listed.filter(({ name }) => only.some((part) => name.includes(part)))
  if (chosen.length === 0) {
    console.log(`conformance ${suite.version}: no server scenario matches ${only.join(", ")}`)
    return true
  }
  const outDir = join(outRoot, `server-${suite.name}`)
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  console.log(`conformance ${suite.version}: ${chosen.length} server scenarios against ${url}`)
  const argv = chosen.length === listed.length
    ? ["server", "--url", url, "--suite", "all", "-o", outDir]
    : chosen.length === 1
    ? ["server", "--url", url, "--scenario", chosen[0]!.name, "-o", outDir]
    : undefined
  let output = ""
  if (argv !== undefined) output = (await run(suite, argv, 240_000)).output
  else {
    for (const { name } of chosen) {
      output += (await run(suite, ["server", "--url", url, "--scenario", name, "-o", outDir], 120_000)).output
    }
  }
  writeFileSync(join(outDir, "output.txt"), output)
  const results = readResults(outDir, chosen.map(({ name }) => name), output)
  const extension = new Set(chosen.filter((s) => s.extension).map((s) => s.name))
  const width = Math.max(...chosen.map(({ name }) => name.length))
  for (const result of results) {
    console.log(`${line(suite, result, width)}${extension.has(result.scenario) ? " (extension, not counted)" : ""}`)
    if (verbose && !result.passed) {
      for (const check of result.failed) console.log(`        ${check.status} ${check.id}: ${check.detail}`)
      if (result.output !== "") {
        console.log(result.output.trim().split("\n").slice(-15).map((text) => `        | ${text}`).join("\n"))
      }
    }
  }
  const counted = results.filter((result) => !extension.has(result.scenario))
  const passed = counted.filter((result) => result.passed)
  const unexpected = counted.filter((result) => !result.passed && !suite.baseline.has(result.scenario))
  const stale = counted.filter((result) => result.passed && suite.baseline.has(result.scenario))
  const expected = counted.filter((result) => !result.passed && suite.baseline.has(result.scenario))
  const durationMillis = Math.round(performance.now() - started)
  writeFileSync(
    join(outDir, "summary.json"),
    JSON.stringify(
      {
        suite: `@modelcontextprotocol/conformance@${suite.version}`,
        target: "the mcp-bridge gateway (prefix never) in front of @mcp-bridge/testing ConformanceServer",
        finishedAt: new Date().toISOString(),
        durationMillis,
        passed: passed.length,
        failed: counted.length - passed.length,
        extensions: {
          passed: results.filter((r) => extension.has(r.scenario) && r.passed).length,
          total: extension.size
        },
        expectedFailures: Object.fromEntries(expected.map((r) => [r.scenario, suite.baseline.get(r.scenario)])),
        scenarios: results.map(({ output: _output, ...result }) => ({
          ...result,
          extension: extension.has(result.scenario)
        }))
      },
      null,
      2
    ) + "\n"
  )
  console.log(
    `conformance ${suite.version}: ${passed.length}/${counted.length} server scenarios passed, ` +
      `${expected.length} expected failure${expected.length === 1 ? "" : "s"}, ` +
      `${unexpected.length} unexpected, in ${(durationMillis / 1000).toFixed(1)} s; ` +
      `summary in ${relative(process.cwd(), join(outDir, "summary.json"))}`
  )
  for (const result of expected) {
    console.log(`expected failure: ${result.scenario}: ${suite.baseline.get(result.scenario)}`)
  }
  for (const result of unexpected) console.log(`UNEXPECTED FAILURE: ${result.scenario}`)
  for (const result of stale) console.log(`stale expected failure: ${result.scenario} passes now`)
  return unexpected.length === 0 && stale.length === 0
}

const main = async () => {
  const fixture = await ConformanceServer.startHttp()
  const gateway = await serveGateway(
    { mcpServers: { conformance: { url: fixture.url } }, gateway: { prefix: "never" } },
    { port: 0, dashboard: false }
  )
  let green = true
  try {
    const chosen = suites.length === 0 ? allSuites : allSuites.filter((suite) => suites.includes(suite.name))
    for (const suite of chosen) green = (await runSuite(suite, direct ? fixture.url : gateway.url)) && green
  } finally {
    await gateway.close()
    await fixture.close()
  }
  process.exit(green ? 0 : 1)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
