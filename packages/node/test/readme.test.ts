/**
 * The READMEs' code blocks, checked as a reader would use them. Every fenced block of `README.md` and
 * `packages/<name>/README.md` is extracted, and by its info string:
 *
 * - `fragment` anywhere in it: an excerpt (it uses a `bridge` or `config` of the text around it, quotes output, or
 *   needs what the repository does not install, as the prose next to it says), not checked;
 * - `ts` / `js`: type-checked as written (TypeScript's API, the repository's compiler options with the
 *   `@mcp-bridge/source` condition), then run as a program (`node --conditions=@mcp-bridge/source`, from a file inside
 *   the repository), with the servers it names swapped for test servers by the substitution table below; a block
 *   that imports Vitest is a test file, run by a Vitest of its own;
 * - `json`: parsed, and a configuration (`mcpServers` or a `bridge` section) decoded by `BridgeConfig.decode`;
 * - `sh`: each command is one the repository has (its npm scripts, the packages' bins, files of the repository);
 * - `text`: output, always a `fragment`.
 *
 * Any other language fails, as does an `npm run <script>` in the prose that `package.json` does not have, or a relative
 * link to a file or a heading that is not there. The substitution table changes what a block reaches, never what it
 * does: a program that fails, throws or prints the wrong thing fails its test.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { BridgeConfig, BridgeConfigSchema } from "@mcp-bridge/core"
import { TestAuthServer, TestServer } from "@mcp-bridge/testing"
import { Effect, Schema } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { isAlive } from "./helpers.ts"

const repo = fileURLToPath(new URL("../../../", import.meta.url))
// Inside the repository (so that `@mcp-bridge/*` resolve to sources), ignored by git, tsc and dprint.
const work = join(repo, "packages/node/test/.readme")

// -----------------------------------------------------------------------------
// The servers the READMEs name, and what stands in for them
// -----------------------------------------------------------------------------

interface Servers {
  /** A stdio server with the filesystem server's `read_file` (a test server of `@mcp-bridge/testing`). */
  readonly files: { readonly command: string; readonly args: ReadonlyArray<string> }
  /** A Streamable HTTP test server with a `search` tool, a resource, a resource template and a prompt. */
  readonly docs: string
  /** An OAuth-protected server whose users authorize (`search` needs `docs:read`). */
  readonly login: TestAuthServer.TestAuthServer
  /** An OAuth-protected server with a pre-registered client `bridge` for the client credentials grant. */
  readonly machine: TestAuthServer.TestAuthServer
  /** A free port on 127.0.0.1, for the Prometheus endpoint. */
  readonly metricsPort: number
}

const billingSecret = "billing-secret-4d2f"

const stdioEntry = (server: Servers["files"]) =>
  `command: ${JSON.stringify(server.command)}, args: ${JSON.stringify(server.args)}`

/**
 * What a block reaches, swapped before it runs: each `find` is replaced wherever it occurs. A block that still names
 * a server outside the repository after this (see `outside`) fails: add its substitution here.
 */
const substitutions: ReadonlyArray<{
  readonly find: string
  readonly replace: (servers: Servers) => string
  readonly why: string
}> = [
  {
    find: `command: "npx", args: ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]`,
    replace: (s) => stdioEntry(s.files),
    why: "the official filesystem server would be downloaded by npx: a stdio test server with its read_file instead"
  },
  {
    find: `command: "node", args: ["server.js"]`,
    replace: (s) => stdioEntry(s.files),
    why: "the reader's own stdio server: the same stdio test server"
  },
  {
    find: `"https://docs.example.com/mcp"`,
    replace: (s) => JSON.stringify(s.docs),
    why: "a remote Streamable HTTP server: a test server on 127.0.0.1"
  },
  {
    find: `"http://127.0.0.1:3000/mcp"`,
    replace: (s) => JSON.stringify(s.docs),
    why: "a local Streamable HTTP server: the test server on its own port"
  },
  {
    find: `"https://mcp.example.com/mcp"`,
    replace: (s) => JSON.stringify(s.login.url),
    why: "a server whose users sign in (OAuth): TestAuthServer, whose /authorize approves at once"
  },
  {
    find: `"https://billing.example.com/mcp"`,
    replace: (s) => JSON.stringify(s.machine.url),
    why: "a server for the client credentials grant: TestAuthServer with the client `bridge` registered"
  },
  {
    find: "port: 9464",
    replace: (s) => `port: ${s.metricsPort}`,
    why: "Prometheus's default port may be taken: a free one"
  }
]

/** What must not be left in a block that runs: it would reach outside the machine, or a file nobody has. */
const outside = [/\bnpx\b/, /\.example\.com/, /127\.0\.0\.1:3000\b/, /"server\.js"/]

/** A running block: its output so far, and a way to wait for a line of it. */
interface Running {
  readonly child: ChildProcess
  readonly output: () => string
  readonly waitFor: (pattern: RegExp) => Promise<RegExpExecArray>
}

/**
 * What a block's run must show, beyond exiting with 0, and what the test does while it runs (as the user would:
 * approving a login, scraping an endpoint). `contains` picks the block (a piece of its code).
 */
interface Expectation {
  readonly readme: string
  readonly contains: string
  /** Its output (stdout and stderr) matches. */
  readonly prints?: RegExp
  readonly env?: (servers: Servers, home: string) => Record<string, string>
  readonly drive?: (running: Running, servers: Servers) => Promise<void>
  /** The program serves until it is stopped: the test stops it once `drive` is done. */
  readonly serves?: boolean
}

const expectations: ReadonlyArray<Expectation> = [
  { readme: "README.md", contains: "McpBridge.layer(config", prints: /notes of the test server/ },
  { readme: "packages/core/README.md", contains: "everything.get-sum", prints: /The sum of 2 and 3 is 5/ },
  { readme: "packages/core/README.md", contains: "console.log(await bridge.listTools())", prints: /docs\.search/ },
  {
    readme: "packages/core/README.md",
    contains: "bridge.onChange",
    prints:
      /the guide of the test server[\s\S]*"page":"pool"[\s\S]*docs\.summarize[\s\S]*Summarize pools[\s\S]*\[ 'pool' \]/
  },
  {
    readme: "packages/core/README.md",
    contains: "onAuthorization",
    env: () => ({ BILLING_SECRET: billingSecret }),
    // The user: opens the URL the program shows, and pastes the address the browser lands on.
    drive: async ({ child, waitFor }) => {
      const [, url] = await waitFor(/Open (\S+)/)
      const landed = await TestAuthServer.approveAs("alice")({ url: new URL(url!), identity: "alice" })
      child.stdin!.write(`${landed}\n`)
    },
    prints: /"user":"alice"[\s\S]*"clientId":"bridge"/
  },
  {
    readme: "packages/core/README.md",
    contains: "onElicitation",
    prints: /asks: Please provide inputs[\s\S]*User provided the requested information[\s\S]*step 1 of 3/
  },
  { readme: "packages/core/README.md", contains: "ClientHandlers.layer", prints: /file:\/\/\/workspace/ },
  {
    readme: "packages/testing/README.md",
    contains: "FaultServer.stdioCommand",
    prints: /\[ 'Closed'(, 'Closed'){4} \]/
  },
  { readme: "packages/node/README.md", contains: "qualifiedName", prints: /files\.read_file[\s\S]*docs\.search/ },
  {
    readme: "packages/node/README.md",
    contains: "NodeAuth.layerLoopback",
    env: (_, home) => ({ HOME: home }),
    // The user's browser: opens the URL the loopback interaction logs, and follows the redirect back to it.
    drive: async ({ waitFor }) => {
      const [, url] = await waitFor(/open (http\S+)/)
      const landed = await TestAuthServer.approveAs("alice")({ url: new URL(url!), identity: "alice" })
      await (await fetch(landed)).text()
    },
    prints: /user: 'alice'/
  },
  {
    readme: "packages/node/README.md",
    contains: "NodeTelemetry.layerPrometheus",
    serves: true,
    drive: async (_, servers) => {
      const text = await scrape(`http://127.0.0.1:${servers.metricsPort}/metrics`)
      assert.match(text, /mcp_bridge_pool_sessions_max/)
    }
  }
]

// -----------------------------------------------------------------------------
// The blocks
// -----------------------------------------------------------------------------

interface Block {
  readonly readme: string
  /** The line of the opening fence (1-based). */
  readonly line: number
  readonly lang: string
  readonly fragment: boolean
  readonly code: string
}

const readmes = [
  "README.md",
  ...readdirSync(join(repo, "packages")).map((name) => `packages/${name}/README.md`).filter((path) =>
    existsSync(join(repo, path))
  )
]

const blocksOf = (readme: string): Array<Block> => {
  const lines = readFileSync(join(repo, readme), "utf8").split("\n")
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})(.*)$/.exec(lines[i]!)
    if (open === null) continue
    const [, indent, fence, info] = open
    const words = info!.trim().split(/\s+/).filter((w) => w.length > 0)
    const body: Array<string> = []
    let j = i + 1
    while (j < lines.length && !new RegExp(`^\\s*${fence}\\s*$`).test(lines[j]!)) {
      body.push(lines[j]!.startsWith(indent!) ? lines[j]!.slice(indent!.length) : lines[j]!)
      j++
    }
    if (j === lines.length) throw new Error(`${readme}:${i + 1}: the code block is never closed`)
    blocks.push({
      readme,
      line: i + 1,
      lang: words[0] ?? "",
      fragment: words.includes("fragment"),
      code: `${body.join("\n")}\n`
    })
    i = j
  }
  return blocks
}

const blocks = readmes.flatMap(blocksOf)
const where = (block: Block) => `${block.readme}:${block.line}`
const slug = (block: Block) => `${block.readme.replace(/\/README\.md$|\.md$/, "").replace(/\//g, "-")}-${block.line}`

const programs = blocks.filter((b) => !b.fragment && (b.lang === "ts" || b.lang === "js"))
const isTestFile = (block: Block) => /from "(@effect\/)?vitest"/.test(block.code)
const expectationOf = (block: Block) =>
  expectations.find((e) => e.readme === block.readme && block.code.includes(e.contains))

// The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces as dashes.
const headingsOf = (file: string): Set<string> =>
  new Set(
    readFileSync(file, "utf8").replace(/^(\s*)(`{3,})[^\n]*\n[\s\S]*?\n\1\2\s*$/gm, "").split("\n").flatMap((line) => {
      const heading = /^#{1,6}\s+(.+?)\s*$/.exec(line)
      return heading === null ? [] : [heading[1]!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-")]
    })
  )

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer()
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as { port: number }).port
      probe.close(() => resolve(port))
    })
  })

const scrape = async (url: string): Promise<string> => {
  for (let i = 0; i < 100; i++) {
    const response = await fetch(url).catch(() => undefined)
    if (response?.ok === true) return await response.text()
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${url} never answered`)
}

// The child's environment: this process's, without Vitest's own variables (a nested Vitest reads them).
const childEnv = (extra: Record<string, string>) => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^VITEST|^__VITEST/.test(name)) env[name] = value
  }
  return { ...env, ...extra }
}

interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly output: string
}

const groupAlive = (pid: number) => isAlive(-pid)

/** Runs `args` with this Node in a process group of its own; on timeout, or once a serving program is driven, the
 * group is ended. */
const run = (
  args: ReadonlyArray<string>,
  options: {
    readonly env: Record<string, string>
    readonly drive?: ((running: Running) => Promise<void>) | undefined
    readonly serves?: boolean | undefined
    readonly timeoutMs: number
  }
): Promise<Finished & { readonly stopped: boolean }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...args], {
      cwd: repo,
      env: options.env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"]
    })
    let output = ""
    const waiters: Array<() => void> = []
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      for (const waiter of waiters.splice(0)) waiter()
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    if (options.drive === undefined) child.stdin.end()
    let stopped = false
    const stop = () => {
      stopped = true
      if (child.pid !== undefined && groupAlive(child.pid)) process.kill(-child.pid, "SIGTERM")
    }
    const timer = setTimeout(() => {
      output += `\n[the docs test: no exit within ${options.timeoutMs} ms, stopped]`
      stopped = false
      if (child.pid !== undefined && groupAlive(child.pid)) process.kill(-child.pid, "SIGKILL")
    }, options.timeoutMs)
    const waitFor = (pattern: RegExp) =>
      new Promise<RegExpExecArray>((found) => {
        const check = () => {
          const match = pattern.exec(output)
          if (match !== null) found(match)
          else waiters.push(check)
        }
        check()
      })
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      // Whatever the program started (stdio servers) ends with it.
      if (child.pid !== undefined && groupAlive(child.pid)) process.kill(-child.pid, "SIGKILL")
      resolve({ code, signal, output, stopped })
    })
    if (options.drive !== undefined) {
      options.drive({ child, output: () => output, waitFor }).then(
        () => {
          if (options.serves === true) stop()
          else child.stdin.end()
        },
        (error: unknown) => {
          output += `\n[the docs test: driving the program failed: ${String(error)}]`
          stop()
          stopped = false
        }
      )
    }
  })

// -----------------------------------------------------------------------------
// The checks
// -----------------------------------------------------------------------------

const rootPackage = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
  readonly scripts: Record<string, string>
  readonly workspaces: ReadonlyArray<string>
}
const workspaces = rootPackage.workspaces.map((path) => ({
  path,
  manifest: JSON.parse(readFileSync(join(repo, path, "package.json"), "utf8")) as {
    readonly name: string
    readonly private?: boolean
    readonly bin?: Record<string, string>
  }
}))
const bins = new Set(workspaces.flatMap((w) => Object.keys(w.manifest.bin ?? {})))

// What is wrong with one line of a `sh` block, if anything.
const shellProblems = (line: string): Array<string> => {
  const problems: Array<string> = []
  const command = line.replace(/\s+#.*$/, "").trim()
  if (command.length === 0 || command.startsWith("#")) return problems
  for (const part of command.split(/\s*(?:&&|\|\||;)\s*/)) {
    const words = part.split(/\s+/)
    const [tool, sub] = words
    if (tool === "npm" && (sub === "run" || sub === "run-script")) {
      const script = words.slice(2).find((w) => !w.startsWith("-"))
      if (script === undefined || rootPackage.scripts[script] === undefined) {
        problems.push(`npm script "${script}" is not in package.json`)
      }
    } else if (tool === "npm" && (sub === "test" || sub === "start")) {
      if (rootPackage.scripts[sub] === undefined) problems.push(`npm script "${sub}" is not in package.json`)
    } else if (tool === "npm" && (sub === "install" || sub === "i" || sub === "ci" || sub === "pack")) {
      for (const name of words.slice(2).filter((w) => w.startsWith("@mcp-bridge/"))) {
        const found = workspaces.find((w) => w.manifest.name === name)
        if (found === undefined || found.manifest.private === true) {
          problems.push(`${name} is not a published package of this repository`)
        }
      }
      for (const w of words.flatMap((word, k) => word === "-w" ? [words[k + 1]!] : [])) {
        if (!existsSync(join(repo, w, "package.json"))) problems.push(`workspace ${w} does not exist`)
      }
    } else if (tool === "npx") {
      const rest = words.slice(1)
      const packageFlag = rest.indexOf("-p")
      const bin = (packageFlag >= 0 ? rest.slice(packageFlag + 2) : rest).find((w) => !w.startsWith("-"))
      if (bin === "node") {
        const file = rest.find((w) => /\.(ts|mjs|js)$/.test(w))
        if (file !== undefined && !existsSync(join(repo, file))) problems.push(`${file} does not exist`)
      } else if (bin === undefined || !bins.has(bin)) {
        problems.push(`npx ${bin}: no package of this repository has that bin`)
      }
    } else if (tool === "redis-server") {
      // The system's Redis (Debian's `redis-server`, which the Redis tests start too): nothing of the repository.
    } else {
      problems.push(`the docs test does not know "${tool}": teach shellProblems, or mark the block fragment`)
    }
  }
  return problems
}

// Type-checks the blocks as written, each a module of its own; returns the errors, located in their README.
const typeCheck = (checked: ReadonlyArray<Block>): Array<string> => {
  const dir = join(work, "check")
  mkdirSync(dir, { recursive: true })
  const files = new Map<string, Block>()
  for (const block of checked) {
    const file = join(dir, `${slug(block)}.${block.lang === "ts" ? "ts" : "mjs"}`)
    writeFileSync(file, block.code)
    files.set(file, block)
  }
  const configFile = join(repo, "tsconfig.base.json")
  const parsed = ts.parseJsonConfigFileContent(
    ts.readConfigFile(configFile, (path) => ts.sys.readFile(path)).config,
    ts.sys,
    repo,
    { noEmit: true, allowJs: true, checkJs: true },
    configFile
  )
  const program = ts.createProgram([...files.keys()], parsed.options)
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")
    const block = diagnostic.file === undefined ? undefined : files.get(diagnostic.file.fileName)
    if (block === undefined || diagnostic.start === undefined) return `TS${diagnostic.code}: ${text}`
    const { character, line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start)
    return `${block.readme}:${block.line + 1 + line}:${character + 1} TS${diagnostic.code}: ${text}`
  })
}

// The code a block runs: its servers swapped for the test servers.
const substituted = (block: Block, servers: Servers): string => {
  let code = block.code
  for (const s of substitutions) code = code.split(s.find).join(s.replace(servers))
  return code
}

// -----------------------------------------------------------------------------
// The tests
// -----------------------------------------------------------------------------

describe("READMEs", () => {
  let servers: Servers
  let home: string
  const stops: Array<() => Promise<void>> = []

  beforeAll(async () => {
    rmSync(work, { recursive: true, force: true })
    mkdirSync(work, { recursive: true })
    home = mkdtempSync(join(tmpdir(), "mcp-bridge-readme-home-"))
    const docs = await TestServer.startHttp({
      tools: [{ name: "search", respond: { kind: "json", value: { hits: ["docs-test-search"] } } }],
      resources: [{ uri: "docs://guide", name: "guide", text: "the guide of the test server" }],
      resourceTemplates: [{ uriTemplate: "docs://pages/{page}", name: "pages", complete: { page: ["pool", "cache"] } }],
      prompts: [{ name: "summarize", arguments: [{ name: "topic", required: true }], text: "Summarize {topic}." }]
    })
    const login = await TestAuthServer.start({ toolScopes: { search: "docs:read" } })
    const machine = await TestAuthServer.start({ clients: [{ clientId: "bridge", clientSecret: billingSecret }] })
    stops.push(() => docs.close(), () => login.close(), () => machine.close())
    servers = {
      files: TestServer.stdioCommand({
        tools: [{ name: "read_file", respond: { kind: "text", text: "notes of the test server" } }]
      }),
      docs: docs.url,
      login,
      machine,
      metricsPort: await freePort()
    }
  })

  afterAll(async () => {
    for (const stop of stops) await stop()
    rmSync(home, { recursive: true, force: true })
  })

  it("every block is in a language the test checks, and output is a fragment", () => {
    const unknown = blocks.filter((b) => !["ts", "js", "sh", "json", "text"].includes(b.lang) && !b.fragment)
    assert.deepStrictEqual(unknown.map((b) => `${where(b)} ${b.lang || "(no language)"}`), [])
    const output = blocks.filter((b) => b.lang === "text" && !b.fragment)
    assert.deepStrictEqual(output.map(where), [])
    assert.isAbove(programs.length, 10)
  })

  it("the npm scripts, bins, packages and files the READMEs name exist", () => {
    const problems: Array<string> = []
    for (const block of blocks.filter((b) => b.lang === "sh" && !b.fragment)) {
      block.code.split("\n").forEach((line, i) => {
        for (const problem of shellProblems(line)) problems.push(`${block.readme}:${block.line + 1 + i}: ${problem}`)
      })
    }
    // In the prose too (and in fragments): `npm run <script>`.
    for (const readme of readmes) {
      readFileSync(join(repo, readme), "utf8").split("\n").forEach((line, i) => {
        for (const match of line.matchAll(/npm run (?:--silent |-s )?([a-z][\w:-]*)/g)) {
          if (rootPackage.scripts[match[1]!] === undefined) {
            problems.push(`${readme}:${i + 1}: npm script "${match[1]}" is not in package.json`)
          }
        }
      })
    }
    assert.deepStrictEqual([...new Set(problems)], [])
  })

  it("every relative link points at a file of the repository, and its #anchor at a heading there", () => {
    const problems: Array<string> = []
    for (const readme of readmes) {
      const text = readFileSync(join(repo, readme), "utf8").replace(/^(\s*)(`{3,})[^\n]*\n[\s\S]*?\n\1\2\s*$/gm, "")
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue
        const [path, anchor] = target!.split("#") as [string, string | undefined]
        const file = path === "" ? join(repo, readme) : join(repo, dirname(readme), path)
        if (!existsSync(file)) {
          problems.push(`${readme}: ${target} does not exist`)
        } else if (anchor !== undefined && file.endsWith(".md") && !headingsOf(file).has(anchor)) {
          problems.push(`${readme}: ${target} names no heading of ${relative(repo, file)}`)
        }
      }
    }
    assert.deepStrictEqual(problems, [])
  })

  it.effect("every JSON block parses, and each configuration decodes", () =>
    Effect.gen(function*() {
      const problems: Array<string> = []
      for (const block of blocks.filter((b) => b.lang === "json" && !b.fragment)) {
        let value: Record<string, unknown>
        try {
          value = JSON.parse(block.code)
        } catch (error) {
          problems.push(`${where(block)}: ${String(error)}`)
          continue
        }
        if (!("mcpServers" in value) && !("bridge" in value)) continue
        // As `BridgeConfig.load` and the CLI read a file: its `mcpServers` and `bridge`, not the application's other
        // settings (a fragment of a configuration has no servers).
        const { bridge, mcpServers = {} } = value
        const error = yield* Effect.flip(
          BridgeConfig.decode(bridge === undefined ? { mcpServers } : { mcpServers, bridge })
        )
          .pipe(Effect.option)
        if (error._tag === "Some") problems.push(`${where(block)}: ${error.value.message}`)
        // The gateway's section, as the gateway reads it (an unknown field is an error there).
        if ("gateway" in value) {
          const invalid = yield* Schema.decodeUnknownEffect(BridgeConfigSchema.GatewaySettings)(value.gateway, {
            onExcessProperty: "error"
          }).pipe(Effect.flip, Effect.option)
          if (invalid._tag === "Some") problems.push(`${where(block)}: gateway: ${invalid.value.message}`)
        }
      }
      assert.deepStrictEqual(problems, [])
    }))

  it("every ts/js block type-checks as written", { timeout: 180_000 }, () => {
    assert.deepStrictEqual(typeCheck(programs), [])
  })

  it("the substitution table and the expectations are all in use", () => {
    for (const s of substitutions) {
      assert.isTrue(programs.some((b) => b.code.includes(s.find)), `substitution unused: ${s.find}`)
    }
    for (const e of expectations) {
      const matching = programs.filter((b) => b.readme === e.readme && b.code.includes(e.contains))
      assert.strictEqual(
        matching.length,
        1,
        `expectation ${e.readme} "${e.contains}" matches ${matching.length} blocks`
      )
    }
  })

  describe.each(programs.map((block) => ({ block, name: where(block) })))("$name", ({ block }) => {
    it("runs", { timeout: 120_000 }, async () => {
      const code = substituted(block, servers)
      const left = outside.filter((pattern) => pattern.test(code))
      assert.deepStrictEqual(left.map(String), [], `${where(block)} still reaches outside: add a substitution`)
      const expectation = expectationOf(block)
      const env = childEnv(expectation?.env?.(servers, home) ?? {})
      let finished: Finished & { readonly stopped: boolean }
      let file: string
      if (isTestFile(block)) {
        const dir = join(work, slug(block))
        mkdirSync(dir, { recursive: true })
        file = join(dir, "block.test.ts")
        writeFileSync(file, code)
        writeFileSync(
          join(dir, "vitest.config.ts"),
          `export default { ssr: { resolve: { conditions: ["@mcp-bridge/source", "node", "development|production"] } },\n` +
            `  test: { root: ${JSON.stringify(dir)}, include: ["block.test.ts"], testTimeout: 30000 } }\n`
        )
        const vitest = join(repo, "node_modules/vitest/vitest.mjs")
        finished = await run([vitest, "run", "--config", join(dir, "vitest.config.ts")], { env, timeoutMs: 90_000 })
      } else {
        file = join(work, `${slug(block)}.${block.lang === "ts" ? "ts" : "mjs"}`)
        writeFileSync(file, code)
        finished = await run(["--conditions=@mcp-bridge/source", file], {
          env,
          drive: expectation?.drive === undefined ? undefined : (running) => expectation.drive!(running, servers),
          serves: expectation?.serves,
          timeoutMs: 60_000
        })
      }
      const report = `${where(block)}, run as ${relative(repo, file)}:\n${finished.output}`
      if (expectation?.serves === true) assert.isTrue(finished.stopped, report)
      else assert.strictEqual(finished.code, 0, report)
      if (expectation?.prints !== undefined) assert.match(finished.output.trim(), expectation.prints, report)
    })
  })
})
