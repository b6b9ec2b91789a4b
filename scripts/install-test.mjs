// The install test (`npm run test:install`, run by .ci/run): what a user outside this repository gets from npm.
//
// 1. Builds (`npm run build`) and packs every publishable package (core, node, testing), and checks each tarball:
//    dist JavaScript, declarations and maps, no tests, no `.ts` import left in the JavaScript.
// 2. Installs the tarballs into a fresh project in the OS temp directory: nothing but the tarballs and their registry
//    dependencies (plus typescript and @types/node for the type check), with the repository's tools off PATH. Checks
//    that @mcp-bridge/* came from the tarballs, that there is one copy of effect, and that no devDependency came along.
// 3. On each Node (the lowest that `engines` allows, and Node 24; each the `node` package from the registry, installed
//    into a scratch directory): runs a plain .mjs program (createBridge from @mcp-bridge/node, the stdio test server
//    of @mcp-bridge/testing and a Streamable HTTP one, listTools and callTool), type-checks a .ts Effect program with
//    `tsc --strict` against the installed declarations, and runs it; then runs the installed `mcp-bridge` command
//    (`tools --json`) against the installed stdio test server. A program must end by itself once it closed its
//    bridge, leaving no child process behind.
//
// Plain JavaScript with Node's built-ins only, so that it runs on any Node from 20 on. Every step has a timeout;
// temp directories and child processes are removed at the end (KEEP_INSTALL_TEST=1 keeps the directory).
// INSTALL_TEST_NODES="22.19.0,24.21.0" overrides the Node versions.
import { spawn } from "node:child_process"
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, dirname, join, relative, resolve, sep } from "node:path"
import { fileURLToPath } from "node:url"

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const packages = ["core", "node", "testing"]
const readJson = (file) => JSON.parse(readFileSync(file, "utf8"))
const rootManifest = readJson(join(repo, "package.json"))
const manifests = Object.fromEntries(packages.map((p) => [p, readJson(join(repo, "packages", p, "package.json"))]))

// The lowest Node `engines` allows (every package says the same), and the Node 24 the repository pins.
const lowestNode = () => {
  const ranges = new Set(packages.map((p) => manifests[p].engines?.node))
  if (ranges.size !== 1) throw new Error(`the packages' engines differ: ${[...ranges].join(", ")}`)
  const match = /^>=\s*(\d+)\.(\d+)(?:\.(\d+))?$/.exec([...ranges][0] ?? "")
  if (!match) throw new Error(`cannot read the lowest Node from engines.node "${[...ranges][0]}"`)
  return `${match[1]}.${match[2]}.${match[3] ?? 0}`
}
const nodeVersions = process.env.INSTALL_TEST_NODES
  ? process.env.INSTALL_TEST_NODES.split(",").map((v) => v.trim()).filter(Boolean)
  : [lowestNode(), rootManifest.devDependencies.node]
const installedVersion = (name) => readJson(join(repo, "node_modules", name, "package.json")).version
const tools = { typescript: installedVersion("typescript"), "@types/node": installedVersion("@types/node") }

// -----------------------------------------------------------------------------
// Output and processes
// -----------------------------------------------------------------------------

const started = Date.now()
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`
const log = (line = "") => console.log(line === "" ? "" : `[install-test] ${line}`)
const indent = (text) => text.trimEnd().split("\n").filter((l) => l.trim() !== "").map((l) => `    ${l}`).join("\n")

class StepError extends Error {}

// The environment of every child: no npm_* variables of an enclosing `npm run`, and PATH without this repository's
// node_modules/.bin (so that nothing of the repository's toolchain is used by accident).
const baseEnv = (() => {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || key === "INIT_CWD" || key === "NODE_OPTIONS") continue
    env[key] = value
  }
  env.PATH = (process.env.PATH ?? "").split(delimiter).filter((d) => d !== "" && !resolve(d).startsWith(repo + sep))
    .join(delimiter)
  return env
})()

const children = new Set()

const killGroup = (child, signal = "SIGKILL") => {
  try {
    process.kill(-child.pid, signal)
  } catch {
    // already gone
  }
}

// Is anything of the child's process group still running (a grandchild it left behind)?
const groupAlive = (pid) => {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Runs a command in its own process group with a timeout; resolves `{ stdout, stderr, millis }` when it exits with
 * 0, rejects with a `StepError` carrying its output otherwise. `leftovers: "fail"` also fails a command that leaves
 * a process of its group running after it exits (a child process it did not end).
 */
const run = (command, args, { cwd, env = baseEnv, timeoutMs, leftovers = "kill" }) =>
  new Promise((resolvePromise, reject) => {
    const begin = Date.now()
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] })
    children.add(child)
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => stdout += chunk)
    child.stderr.on("data", (chunk) => stderr += chunk)
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      killGroup(child)
    }, timeoutMs)
    const fail = (message) =>
      reject(
        new StepError(
          `${message}\n  $ ${[command, ...args].join(" ")}\n  (in ${cwd})` +
            (stdout.trim() ? `\n  stdout:\n${indent(stdout.slice(-4000))}` : "") +
            (stderr.trim() ? `\n  stderr:\n${indent(stderr.slice(-4000))}` : "")
        )
      )
    child.on("error", (error) => {
      clearTimeout(timer)
      children.delete(child)
      fail(`cannot start: ${error.message}`)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      children.delete(child)
      const left = groupAlive(child.pid)
      if (left) killGroup(child)
      const millis = Date.now() - begin
      if (timedOut) return fail(`timed out after ${seconds(timeoutMs)}`)
      if (code !== 0) return fail(`exited with ${signal ?? code}`)
      if (left && leftovers === "fail") return fail("exited, but left a process of its group running (now killed)")
      resolvePromise({ stdout, stderr, millis })
    })
  })

const npm = (args, cwd, timeoutMs = 300_000) =>
  run(process.platform === "win32" ? "npm.cmd" : "npm", [...args, "--no-audit", "--no-fund", "--loglevel=warn"], {
    cwd,
    timeoutMs
  })

// -----------------------------------------------------------------------------
// Steps
// -----------------------------------------------------------------------------

const scratch = mkdtempSync(join(tmpdir(), "mcp-bridge-install-test-"))
const tarballDir = join(scratch, "tarballs")
const app = join(scratch, "app")

const cleanup = () => {
  for (const child of children) killGroup(child)
  if (process.env.KEEP_INSTALL_TEST === "1") log(`kept ${scratch}`)
  else rmSync(scratch, { recursive: true, force: true })
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    cleanup()
    process.exit(130)
  })
}

const build = async () => {
  const { millis } = await run("npm", ["run", "build", "--silent"], {
    cwd: repo,
    env: process.env,
    timeoutMs: 300_000
  })
  log(`built core, node, testing (npm run build): ${seconds(millis)}`)
}

const pack = async () => {
  mkdirSync(tarballDir, { recursive: true })
  const { stdout, millis } = await npm(
    ["pack", ...packages.flatMap((p) => ["-w", `packages/${p}`]), "--pack-destination", tarballDir, "--json"],
    repo
  )
  const packed = JSON.parse(stdout.slice(stdout.indexOf("[")))
  log(`packed ${packed.length} packages: ${seconds(millis)}`)
  for (const entry of packed) {
    const paths = entry.files.map((f) => f.path)
    const problems = []
    const required = ["package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.d.ts", "dist/index.js.map"]
    for (const file of required) {
      if (!paths.includes(file)) problems.push(`no ${file}`)
    }
    const stray = paths.filter((p) =>
      !/^(dist\/.+\.(js|js\.map|d\.ts|d\.ts\.map)|src\/.+\.ts|package\.json|README\.md|LICENSE)$/.test(p)
    )
    // Each package ships a copy of the repository's LICENSE (npm packs a package's own folder only).
    const name = entry.name.replace(/^@mcp-bridge\//, "")
    if (readFileSync(join(repo, "packages", name, "LICENSE"), "utf8") !== readFileSync(join(repo, "LICENSE"), "utf8")) {
      problems.push(`packages/${name}/LICENSE differs from the repository's LICENSE`)
    }
    if (stray.length > 0) problems.push(`unexpected files: ${stray.join(", ")}`)
    if (problems.length > 0) throw new StepError(`${entry.filename}: ${problems.join("; ")}`)
    const dists = paths.filter((p) => p.startsWith("dist/") && p.endsWith(".js")).length
    log(
      `  ${entry.filename}: ${entry.entryCount} files, ${
        (entry.size / 1024).toFixed(1)
      } kB packed, ${dists} dist modules`
    )
  }
  // Nothing of the JavaScript may import a `.ts` file: the installed package never runs its sources.
  for (const p of packages) {
    const dist = join(repo, "packages", p, "dist")
    const walk = (dir) =>
      readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
        d.isDirectory() ? walk(join(dir, d.name)) : d.name.endsWith(".js") ? [join(dir, d.name)] : []
      )
    for (const file of walk(dist)) {
      const source = readFileSync(file, "utf8")
      const bad = [...source.matchAll(/(?:from|import)\s*\(?\s*"([^"]+\.ts)"/g)].map((m) => m[1])
      if (bad.length > 0) throw new StepError(`${relative(repo, file)} imports ${bad.join(", ")}`)
    }
  }
  return packed.map((entry) => join(tarballDir, entry.filename))
}

// The `node` package from the registry (its preinstall fetches the platform's binary package, node-<os>-<arch>).
const installNode = async (version) => {
  const dir = join(scratch, `node-${version}`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "node-runtime", private: true, allowScripts: { node: true } }, null, 2)
  )
  const { millis } = await npm(["install", `node@${version}`, "--prefer-offline"], dir)
  const binary = join(dir, "node_modules", "node", "bin", process.platform === "win32" ? "node.exe" : "node")
  if (!existsSync(binary)) throw new StepError(`node@${version} installed no binary at ${binary}`)
  const { stdout } = await run(binary, ["--version"], { cwd: dir, timeoutMs: 30_000 })
  if (stdout.trim() !== `v${version}`) throw new StepError(`node@${version} runs as ${stdout.trim()}`)
  log(`node@${version} from the registry: ${seconds(millis)} (${relative(scratch, binary)})`)
  return binary
}

const installApp = async (tarballs) => {
  mkdirSync(app, { recursive: true })
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "install-test-app", version: "1.0.0", private: true, type: "module" }, null, 2)
  )
  const { millis } = await npm(["install", ...tarballs.map((t) => relative(app, t)), "--prefer-offline"], app)
  const tooling = await npm(
    [
      "install",
      "--save-dev",
      `typescript@${tools.typescript}`,
      `@types/node@${tools["@types/node"]}`,
      "--prefer-offline"
    ],
    app
  )
  log(
    `installed the tarballs into ${app}: ${seconds(millis)}; typescript@${tools.typescript} and @types/node@${
      tools["@types/node"]
    } for the type check: ${seconds(tooling.millis)}`
  )

  const lock = readJson(join(app, "package-lock.json")).packages
  const installed = Object.keys(lock).filter((k) => k.startsWith("node_modules/"))
  for (const p of packages) {
    const name = `@mcp-bridge/${p}`
    const copies = installed.filter((k) => k === `node_modules/${name}` || k.endsWith(`/node_modules/${name}`))
    const entry = lock[`node_modules/${name}`]
    if (copies.length !== 1 || !String(entry?.resolved ?? "").startsWith("file:")) {
      throw new StepError(
        `${name}: expected one copy from its tarball, found ${JSON.stringify(copies)} ${entry?.resolved}`
      )
    }
    const real = realpathSync(join(app, "node_modules", name))
    if (real.startsWith(repo + sep)) throw new StepError(`${name} points into the repository: ${real}`)
  }
  const effects = installed.filter((k) => k === "node_modules/effect" || k.endsWith("/node_modules/effect"))
  if (effects.length !== 1) throw new StepError(`expected one copy of effect, found ${effects.join(", ")}`)
  const ours = new Set([...packages.map((p) => `@mcp-bridge/${p}`), "effect", "typescript", "@types/node"])
  const devOnly = new Set(
    packages.flatMap((p) => Object.keys(manifests[p].devDependencies ?? {})).filter((name) =>
      !ours.has(name) && !packages.some((p) => name in (manifests[p].dependencies ?? {}))
    )
  )
  const leaked = installed.filter((k) => devOnly.has(k.slice(k.lastIndexOf("node_modules/") + 13)))
  if (leaked.length > 0) throw new StepError(`devDependencies were installed: ${leaked.join(", ")}`)
  const version = (name) => lock[`node_modules/${name}`]?.version
  log(
    `  ${installed.length} packages; @mcp-bridge/{core,node,testing} from their tarballs; effect@${
      version("effect")
    } ` +
      `(one copy), @modelcontextprotocol/client@${version("@modelcontextprotocol/client")}; ` +
      `no devDependency of ours (${[...devOnly].join(", ")})`
  )
}

// A plain ES module: the Promise facade over a stdio server and a Streamable HTTP server.
const smokeMjs = `import { createBridge } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"

const spec = { name: "install-test", tools: [{ name: "echo", respond: { kind: "echo" } }] }
const { command, args } = TestServer.stdioCommand(spec)
const http = await TestServer.startHttp(spec)
const bridge = await createBridge({
  mcpServers: { local: { command, args: [...args] }, remote: { url: http.url } },
  bridge: { timeout: "10 seconds" }
})
try {
  const tools = (await bridge.listTools()).map((tool) => tool.qualifiedName).sort()
  const local = await bridge.callTool("local.echo", { hello: "stdio" })
  const remote = await bridge.callTool("remote.echo", { hello: "http" })
  console.log("resolved   ", import.meta.resolve("@mcp-bridge/node").replace(/^.*node_modules/, "node_modules"))
  console.log("stdio child", args[0].replace(/^.*node_modules/, "node_modules"))
  console.log("listTools  ", JSON.stringify(tools))
  console.log("callTool   ", "local.echo ->", local.content[0].text, "| remote.echo ->", remote.content[0].text)
  // every test server also has its \`__stats\` tool
  const expected = ["local.__stats", "local.echo", "remote.__stats", "remote.echo"]
  if (JSON.stringify(tools) !== JSON.stringify(expected)) throw new Error("unexpected tools")
  if (local.content[0].text !== '{"hello":"stdio"}' || remote.content[0].text !== '{"hello":"http"}') {
    throw new Error("unexpected results")
  }
} finally {
  await bridge.close()
  await http.close()
}
`

// An Effect program, type-checked against the installed declarations, then run by Node (type stripping).
const effectTs = `import { McpBridge } from "@mcp-bridge/core"
import { NodeTransport } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { Effect } from "effect"

const spec: TestServer.TestServerSpec = { name: "install-test", tools: [{ name: "echo", respond: { kind: "echo" } }] }
const { command, args } = TestServer.stdioCommand(spec)

const Bridge = McpBridge.layer(
  { mcpServers: { local: { command, args: [...args] } }, bridge: { timeout: "10 seconds" } },
  { transport: NodeTransport.layer() }
)

const program = Effect.gen(function*() {
  const bridge = yield* McpBridge.McpBridge
  const tools = yield* bridge.listTools()
  const result = yield* bridge.callTool("local.echo", { hello: "effect" })
  const missing = yield* bridge.callTool("local.nope", {}).pipe(
    Effect.map(() => "no error"),
    Effect.catchTag("McpBridgeError", (error) => Effect.succeed(error.reason._tag))
  )
  const first = result.content[0]
  return {
    tools: tools.map((tool: McpBridge.BridgeTool) => tool.qualifiedName),
    text: first?.type === "text" ? first.text : "",
    missing
  }
})

// The declarations are real types, not \`any\`: each line under a directive must be a type error (never run).
export const typeChecks = () => {
  // @ts-expect-error a tool target is a string or { server, tool }
  McpBridge.McpBridge.use((bridge) => bridge.callTool(42))
  // @ts-expect-error the layer takes a transport layer, not options of one
  McpBridge.layer({ mcpServers: {} }, { transport: { stderrTailBytes: 1 } })
  // @ts-expect-error callTool fails with typed errors (McpBridgeError, McpSessionError...), not never
  const _infallible: Effect.Effect<unknown, never, McpBridge.McpBridge> = McpBridge.McpBridge.use((b) =>
    b.callTool("a.b")
  )
}

const outcome = await Effect.runPromise(program.pipe(Effect.provide(Bridge)))
console.log("listTools  ", JSON.stringify(outcome.tools))
console.log("callTool   ", "local.echo ->", outcome.text, "| local.nope ->", outcome.missing)
if (outcome.text !== '{"hello":"effect"}' || outcome.missing !== "UnknownTool") throw new Error("unexpected outcome")
`

// The configuration the installed CLI reads: the installed stdio test server, in a Claude Desktop-style file (other
// settings next to `mcpServers`).
const cliConfigMjs = `import { TestServer } from "@mcp-bridge/testing"
import { writeFileSync } from "node:fs"

const { command, args } = TestServer.stdioCommand({
  name: "install-test",
  tools: [{ name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } }]
})
writeFileSync(process.argv[2], JSON.stringify({ globalShortcut: "", mcpServers: { local: { command, args: [...args] } } }))
`

const tsconfig = {
  compilerOptions: {
    strict: true,
    target: "ES2023",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    types: ["node"],
    noEmit: true,
    skipLibCheck: false,
    verbatimModuleSyntax: true,
    erasableSyntaxOnly: true
  },
  files: ["effect.ts"]
}

const onNode = async (version, binary) => {
  const env = { ...baseEnv, PATH: [dirname(binary), baseEnv.PATH].join(delimiter) }
  const smoke = await run(binary, ["smoke.mjs"], { cwd: app, env, timeoutMs: 60_000, leftovers: "fail" })
  log(`node ${version}: smoke.mjs (Promise facade, stdio + Streamable HTTP) passed: ${seconds(smoke.millis)}`)
  console.log(indent(smoke.stdout))
  const tsc = await run(binary, [join("node_modules", "typescript", "bin", "tsc"), "--strict", "-p", "tsconfig.json"], {
    cwd: app,
    env,
    timeoutMs: 180_000
  })
  log(`node ${version}: tsc --strict -p tsconfig.json (skipLibCheck false) passed: ${seconds(tsc.millis)}`)
  const effect = await run(binary, ["effect.ts"], { cwd: app, env, timeoutMs: 60_000, leftovers: "fail" })
  log(`node ${version}: effect.ts (McpBridge.layer + NodeTransport, stdio) passed: ${seconds(effect.millis)}`)
  console.log(indent(effect.stdout))
  const warnings = effect.stderr.trim()
  if (warnings) console.log(indent(`stderr: ${warnings}`))
  await cli(version, binary, env)
}

// The installed `mcp-bridge` bin (dist/bin/mcp-bridge.js through node_modules/.bin, started by the Node on PATH).
const cli = async (version, binary, env) => {
  const config = `mcp-${version}.json`
  await run(binary, ["cli-config.mjs", config], { cwd: app, env, timeoutMs: 30_000 })
  const bin = join("node_modules", ".bin", process.platform === "win32" ? "mcp-bridge.cmd" : "mcp-bridge")
  const tools = await run(join(app, bin), ["tools", "--json", "--config", config], {
    cwd: app,
    env,
    timeoutMs: 60_000,
    leftovers: "fail"
  })
  let doc
  try {
    doc = JSON.parse(tools.stdout)
  } catch {
    throw new StepError(`mcp-bridge tools --json printed more than one JSON document:\n${indent(tools.stdout)}`)
  }
  const names = doc.tools.map((tool) => tool.name).sort()
  if (doc.ok !== true || JSON.stringify(names) !== JSON.stringify(["local.__stats", "local.echo"])) {
    throw new StepError(`mcp-bridge tools --json: unexpected document\n${indent(tools.stdout)}`)
  }
  const echo = doc.tools.find((tool) => tool.name === "local.echo")
  if (echo.annotations.readOnlyHint !== true) throw new StepError(`local.echo lost its hints: ${JSON.stringify(echo)}`)
  log(`node ${version}: ${bin} tools --json (installed bin, stdio test server) passed: ${seconds(tools.millis)}`)
  console.log(indent(`tools       ${JSON.stringify(names)}; servers ${JSON.stringify(doc.servers)}`))
}

// -----------------------------------------------------------------------------
// Main
// -----------------------------------------------------------------------------

let failed = false
try {
  log(`node ${nodeVersions.join(" and ")}; scratch directory ${scratch}`)
  await build()
  const tarballs = await pack()
  const [binaries] = await Promise.all([
    Promise.all(nodeVersions.map((v) => installNode(v))),
    installApp(tarballs)
  ])
  writeFileSync(join(app, "smoke.mjs"), smokeMjs)
  writeFileSync(join(app, "effect.ts"), effectTs)
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify(tsconfig, null, 2))
  writeFileSync(join(app, "cli-config.mjs"), cliConfigMjs)
  for (const [i, version] of nodeVersions.entries()) await onNode(version, binaries[i])
  log(`passed on node ${nodeVersions.join(" and ")} in ${seconds(Date.now() - started)}`)
} catch (error) {
  failed = true
  console.error(`[install-test] FAILED: ${error instanceof StepError ? error.message : error?.stack ?? error}`)
} finally {
  cleanup()
}
process.exit(failed ? 1 : 0)
