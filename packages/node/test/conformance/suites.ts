/**
 * What the two conformance runners share (`run.ts`, the client scenarios; `server.ts`, the server scenarios): their
 * common options, the two releases of the suite with each one's expected failures, and running the suite's CLI.
 */
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

/** One release of the suite: where its CLI is, and which scenarios are expected to fail, and why. */
export interface Suite {
  readonly name: "current" | "next"
  readonly version: string
  readonly bin: string
  readonly baseline: ReadonlyMap<string, string>
}

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)

/** The repository's root. */
export const root = resolve(here, "../../../..")
/** Where the runs write their checks and summaries. */
export const outRoot = join(root, ".conformance")

/** The options both runners take, and a runner's own. */
export interface Options {
  /** `--only <name>` (repeatable): the scenarios whose name contains one of these. */
  readonly only: ReadonlyArray<string>
  /** `--suite <current|next>` (repeatable): the releases to run (all when empty). */
  readonly suites: ReadonlyArray<string>
  /** `--no-baseline` unsets it. */
  readonly useBaseline: boolean
  readonly verbose: boolean
  /** The runner's own flags that were given. */
  readonly flags: ReadonlySet<string>
  /** The runner's own options with a value. */
  readonly values: ReadonlyMap<string, string>
}

/** Parses `argv`: the common options, the runner's own `flags` and `valued` options; anything else exits with 2. */
export const parseOptions = (
  argv: ReadonlyArray<string>,
  own: { readonly flags?: ReadonlyArray<string>; readonly valued?: ReadonlyArray<string> } = {}
): Options => {
  const only: Array<string> = []
  const suites: Array<string> = []
  const flags = new Set<string>()
  const values = new Map<string, string>()
  let useBaseline = true
  let verbose = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--only") only.push(argv[++i] ?? "")
    else if (arg === "--suite") suites.push(argv[++i] ?? "")
    else if (arg === "--no-baseline") useBaseline = false
    else if (arg === "--verbose") verbose = true
    else if (own.flags?.includes(arg)) flags.add(arg)
    else if (own.valued?.includes(arg)) values.set(arg, argv[++i] ?? "")
    else {
      console.error(`unknown option ${arg}`)
      process.exit(2)
    }
  }
  return { only, suites, useBaseline, verbose, flags, values }
}

const readBaseline = (file: string, useBaseline: boolean): ReadonlyMap<string, string> => {
  if (!useBaseline || !existsSync(file)) return new Map()
  const entries = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>
  for (const [scenario, reason] of Object.entries(entries)) {
    if (typeof reason !== "string" || reason.trim().length === 0) {
      throw new Error(`${relative(root, file)}: "${scenario}" needs a reason`)
    }
  }
  return new Map(Object.entries(entries))
}

const suiteOf = (name: Suite["name"], pkg: string, baselineFile: string, useBaseline: boolean): Suite => {
  const manifest = require.resolve(`${pkg}/package.json`)
  return {
    name,
    version: (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version,
    bin: join(dirname(manifest), "dist/index.js"),
    baseline: readBaseline(join(here, baselineFile), useBaseline)
  }
}

/**
 * Both releases (the stable `@modelcontextprotocol/conformance` and the prerelease `conformance-next`), each with its
 * expected-failures file of this folder; an unknown name in `options.suites` exits with 2.
 */
export const loadSuites = (
  options: Options,
  baselineFiles: { readonly current: string; readonly next: string }
): ReadonlyArray<Suite> => {
  const all: ReadonlyArray<Suite> = [
    suiteOf("current", "@modelcontextprotocol/conformance", baselineFiles.current, options.useBaseline),
    suiteOf("next", "conformance-next", baselineFiles.next, options.useBaseline)
  ]
  for (const name of options.suites) {
    if (!all.some((suite) => suite.name === name)) {
      console.error(`unknown suite ${name} (current or next)`)
      process.exit(2)
    }
  }
  return all
}

/** Runs the suite's CLI with `argv` from the root: its exit code and output; killed after `timeoutMillis`. */
export const runCli = (suite: Suite, argv: ReadonlyArray<string>, timeoutMillis: number) =>
  new Promise<{ code: number | null; output: string }>((resolvePromise) => {
    const child = spawn(process.execPath, [suite.bin, ...argv], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMillis)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolvePromise({ code, output })
    })
  })
