/**
 * The `mcp-bridge` CLI end to end: the command is spawned from sources (with the `@mcp-bridge/source` condition) in a
 * process group of its own, against stdio and Streamable HTTP test servers of `@mcp-bridge/testing` and the official
 * reference server `@modelcontextprotocol/server-everything`, and its stdout, stderr, `--json` documents and exit
 * codes are checked. Every run must leave no process of its group behind and print no secret of the configuration.
 */
import { assert, describe, it } from "@effect/vitest"
import { TestServer } from "@mcp-bridge/testing"
import { Context, Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { isAlive } from "./helpers.ts"

const bin = fileURLToPath(new URL("../src/bin/mcp-bridge.ts", import.meta.url))
const everything = createRequire(import.meta.url).resolve("@modelcontextprotocol/server-everything/dist/index.js")

const envSecret = "env-secret-7f3a9c"
const headerSecret = "header-secret-b81d2e"
const secrets = [envSecret, headerSecret]

const spec: TestServer.TestServerSpec = {
  name: "cli-test",
  tools: [
    {
      name: "echo",
      description: "Echoes its arguments back.\nA second line that the listing leaves out.",
      annotations: { readOnlyHint: true, openWorldHint: false },
      respond: { kind: "echo" }
    },
    {
      name: "wipe",
      annotations: { destructiveHint: true, idempotentHint: true },
      respond: { kind: "text", text: "ok" }
    },
    { name: "fail", respond: { kind: "isError", message: "the tool broke" } }
  ]
}

// -----------------------------------------------------------------------------
// Running the CLI
// -----------------------------------------------------------------------------

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const groupAlive = (pid: number) => isAlive(-pid)

// This machine's time to start the CLI (`--version`), measured once: every run starts a Node process for the CLI and
// one per stdio server, which a loaded machine takes seconds to do. A run may take the CLI's own timeouts plus ten
// such starts; a test, four such runs.
const cliStartMillis = await new Promise<number>((resolve) => {
  const started = performance.now()
  spawn(process.execPath, ["--conditions=@mcp-bridge/source", bin, "--version"], {
    env: { ...process.env, NODE_OPTIONS: "" },
    stdio: "ignore"
  }).on("close", () => resolve(performance.now() - started))
})
const runBudgetMillis = 25_000 + 10 * cliStartMillis
const testBudgetMillis = 4 * runBudgetMillis

/** Runs `mcp-bridge ...args` from sources; fails the test if it leaves a process of its group or prints a secret. */
const cli = (
  args: ReadonlyArray<string>,
  options: {
    readonly cwd?: string
    readonly interruptWhen?: (stderr: string) => boolean
    /** Close the reading end of stdout at once, as `mcp-bridge ... | head -0` would. */
    readonly closeStdout?: boolean
  } = {}
) =>
  Effect.promise(() =>
    new Promise<Run>((resolve, reject) => {
      const child = spawn(process.execPath, ["--conditions=@mcp-bridge/source", bin, ...args], {
        cwd: options.cwd ?? tmpdir(),
        detached: true,
        env: { ...process.env, NODE_OPTIONS: "" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      if (options.closeStdout === true) child.stdout.destroy()
      else child.stdout.on("data", (chunk) => stdout += chunk)
      let interrupted = false
      child.stderr.on("data", (chunk) => {
        stderr += chunk
        if (!interrupted && options.interruptWhen?.(stderr)) {
          interrupted = true
          child.kill("SIGINT")
        }
      })
      const timer = setTimeout(() => {
        process.kill(-child.pid!, "SIGKILL")
        reject(new Error(`mcp-bridge ${args.join(" ")} timed out\n${stdout}\n${stderr}`))
      }, runBudgetMillis)
      child.on("close", (code) => {
        clearTimeout(timer)
        const leftover = groupAlive(child.pid!)
        if (leftover) process.kill(-child.pid!, "SIGKILL")
        if (leftover) return reject(new Error(`mcp-bridge ${args.join(" ")} left a process behind`))
        for (const secret of secrets) {
          if (stdout.includes(secret) || stderr.includes(secret)) {
            return reject(new Error(`mcp-bridge ${args.join(" ")} printed a secret\n${stdout}\n${stderr}`))
          }
        }
        resolve({ code, stdout, stderr })
      })
    })
  )

/** The one JSON document of a `--json` run: all of stdout parses. */
const document = (run: Run): any => {
  try {
    return JSON.parse(run.stdout)
  } catch {
    throw new Error(`stdout is not one JSON document:\n${run.stdout}\nstderr:\n${run.stderr}`)
  }
}

const noStackTrace = (run: Run) => assert.notMatch(run.stdout + run.stderr, /\n\s+at .+:\d+:\d+/)

// -----------------------------------------------------------------------------
// Fixtures: servers and configuration files
// -----------------------------------------------------------------------------

class Fixtures extends Context.Service<Fixtures, {
  readonly dir: string
  /** local (stdio), remote (HTTP), everything (reference server), broken (no such command). */
  readonly all: string
  /** local, remote and everything. */
  readonly good: string
  readonly write: (name: string, content: unknown) => string
}>()("test/Cli/Fixtures") {}

const FixturesLive = Layer.effect(
  Fixtures,
  Effect.gen(function*() {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), "mcp-bridge-cli-")))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const http = yield* TestServer.httpScoped(spec)
    const { command, args } = TestServer.stdioCommand(spec)
    const write = (name: string, content: unknown) => {
      const file = join(dir, name)
      writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content, null, 2))
      return file
    }
    const servers = {
      local: { type: "stdio", command, args: [...args], env: { API_TOKEN: envSecret } },
      remote: { type: "http", url: http.url, headers: { Authorization: `Bearer ${headerSecret}` } },
      everything: { command: process.execPath, args: [everything] }
    }
    // A Claude Desktop file: other settings next to `mcpServers`.
    const all = write("claude_desktop_config.json", {
      globalShortcut: "Ctrl+Space",
      mcpServers: { ...servers, broken: { command: "mcp-bridge-no-such-server" } }
    })
    const good = write("mcp.json", { mcpServers: servers })
    return { dir, all, good, write }
  })
)

// -----------------------------------------------------------------------------
// Tests
// -----------------------------------------------------------------------------

describe("Cli", { timeout: testBudgetMillis }, () => {
  it.layer(FixturesLive, { timeout: "60 seconds" })((it) => {
    it.effect("tools: every server's tools as server.tool with hints; a failed server is reported", () =>
      Effect.gen(function*() {
        const { all } = yield* Fixtures
        const run = yield* cli(["tools", "--config", all])
        assert.strictEqual(run.code, 1)
        assert.match(run.stdout, /^local \(stdio, 4 tools\)$/m)
        assert.match(run.stdout, /^ {2}local\.echo +readOnly !openWorld +Echoes its arguments back\.$/m)
        assert.match(run.stdout, /^ {2}local\.wipe +destructive idempotent$/m)
        assert.match(run.stdout, /^remote \(http, 4 tools\)$/m)
        assert.match(run.stdout, /^ {2}remote\.echo /m)
        assert.match(run.stdout, /^ {2}everything\.get-sum .*Returns the sum of two numbers/m)
        assert.notInclude(run.stdout, "second line")
        assert.match(run.stdout, /^broken \(stdio\): FAILED McpSessionError\/ConnectFailed$/m)
        assert.include(run.stdout, "cannot connect to MCP server \"broken\"")
        assert.include(run.stderr, "1 of 4 servers failed")
        noStackTrace(run)
      }))

    it.effect("tools --json: one document with every tool and each server's outcome", () =>
      Effect.gen(function*() {
        const { all, good } = yield* Fixtures
        const run = yield* cli(["tools", "--json", "--config", all])
        assert.strictEqual(run.code, 1)
        const doc = document(run)
        assert.strictEqual(doc.config, all)
        assert.strictEqual(doc.ok, false)
        assert.deepStrictEqual(
          doc.servers.map((s: any) => [s.name, s.transport, s.ok, s.toolCount]),
          [["local", "stdio", true, 4], ["remote", "http", true, 4], ["everything", "stdio", true, 13], [
            "broken",
            "stdio",
            false,
            undefined
          ]]
        )
        const broken = doc.servers[3]
        assert.strictEqual(broken.error._tag, "McpSessionError")
        assert.strictEqual(broken.error.reason._tag, "ConnectFailed")
        assert.strictEqual(broken.error.reason.server, "broken")
        assert.include(broken.error.message, "cannot connect")
        const echo = doc.tools.find((t: any) => t.name === "local.echo")
        assert.deepStrictEqual(echo.annotations, {
          readOnlyHint: true,
          destructiveHint: null,
          idempotentHint: null,
          openWorldHint: false
        })
        assert.strictEqual(echo.server, "local")
        assert.strictEqual(echo.tool, "echo")
        assert.include(echo.description, "second line")
        assert.deepStrictEqual(echo.inputSchema, { type: "object" })
        assert.includeMembers(doc.tools.map((t: any) => t.name), ["remote.wipe", "everything.echo"])
        assert.strictEqual(run.stderr, "")

        const ok = yield* cli(["--json", "tools", "-c", good])
        assert.strictEqual(ok.code, 0)
        assert.strictEqual(document(ok).ok, true)
      }))

    it.effect("call: prints text and structured content; secrets in the output are redacted", () =>
      Effect.gen(function*() {
        const { good } = yield* Fixtures
        const run = yield* cli(["call", "local.echo", JSON.stringify({ a: 1, token: envSecret }), "--config", good])
        assert.strictEqual(run.code, 0)
        assert.strictEqual(
          run.stdout,
          "{\"a\":1,\"token\":\"<redacted>\"}\nstructuredContent:\n" +
            JSON.stringify({ arguments: { a: 1, token: "<redacted>" }, meta: {} }, null, 2) + "\n"
        )
        const remote = yield* cli(["call", "remote.wipe", "--config", good])
        assert.strictEqual(remote.code, 0)
        assert.strictEqual(remote.stdout, "ok\n")
      }))

    it.effect("call --json against the reference server; an image is summarized in text", () =>
      Effect.gen(function*() {
        const { good } = yield* Fixtures
        const run = yield* cli(["call", "everything.get-sum", "{\"a\":2,\"b\":3}", "--json", "--config", good])
        assert.strictEqual(run.code, 0)
        const doc = document(run)
        assert.strictEqual(doc.tool, "everything.get-sum")
        assert.strictEqual(doc.ok, true)
        assert.include(doc.result.content[0].text, "5")
        const image = yield* cli(["call", "everything.get-tiny-image", "--config", good])
        assert.strictEqual(image.code, 0)
        assert.match(image.stdout, /^\[image image\/png, [\d.]+ kB\]$/m)
      }))

    it.effect("call: an isError result is printed as such and exits with 1", () =>
      Effect.gen(function*() {
        const { good } = yield* Fixtures
        const run = yield* cli(["call", "local.fail", "--config", good])
        assert.strictEqual(run.code, 1)
        assert.strictEqual(run.stdout, "the tool broke\n")
        assert.include(run.stderr, "local.fail answered with an error result (isError: true)")
        const json = yield* cli(["call", "remote.fail", "--json", "--config", good])
        assert.strictEqual(json.code, 1)
        const doc = document(json)
        assert.strictEqual(doc.ok, false)
        assert.strictEqual(doc.result.isError, true)
      }))

    it.effect("call: a typed failure exits with 1 and its message, without a stack trace", () =>
      Effect.gen(function*() {
        const { all } = yield* Fixtures
        const unknown = yield* cli(["call", "local.nope", "--config", all])
        assert.strictEqual(unknown.code, 1)
        assert.strictEqual(unknown.stdout, "")
        assert.match(unknown.stderr, /^error: McpBridgeError\/UnknownTool: MCP server "local" has no tool "nope"/)
        noStackTrace(unknown)
        const down = yield* cli(["call", "broken.anything", "--json", "--config", all])
        assert.strictEqual(down.code, 1)
        const doc = document(down)
        assert.strictEqual(doc.error._tag, "McpSessionError")
        assert.strictEqual(doc.error.reason._tag, "ConnectFailed")
        const server = yield* cli(["call", "nowhere.tool", "--config", all])
        assert.strictEqual(server.code, 1)
        assert.include(server.stderr, "McpBridgeError/UnknownServer")
      }))

    it.effect("call: arguments that are not a JSON object are a usage error (exit 2)", () =>
      Effect.gen(function*() {
        const { good } = yield* Fixtures
        const notJson = yield* cli(["call", "local.echo", "{a:1}", "--config", good])
        assert.strictEqual(notJson.code, 2)
        assert.include(notJson.stderr, "the arguments are not JSON")
        const array = yield* cli(["call", "local.echo", "[1]", "--json", "--config", good])
        assert.strictEqual(array.code, 2)
        assert.include(document(array).error.message, "must be a JSON object")
        const missing = yield* cli(["call", "--config", good])
        assert.strictEqual(missing.code, 2)
        assert.include(missing.stderr, "Missing required argument: tool")
        assert.strictEqual(missing.stdout, "")
      }))

    it.effect("doctor: transport, protocol version, connect time and tool count per server, with progress", () =>
      Effect.gen(function*() {
        const { all } = yield* Fixtures
        const run = yield* cli(["doctor", "--config", all])
        assert.strictEqual(run.code, 1)
        // A dual-era stdio server is served on 2026-07-28 however slowly this machine starts it.
        assert.match(run.stdout, /^ {2}local +ok +stdio \(node\) +2026-07-28 +\d+ ms +4 tools$/m)
        assert.match(
          run.stdout,
          /^ {2}remote +ok +http \(http:\/\/127\.0\.0\.1:\d+\/mcp\) +2026-07-28 +\d+ ms +4 tools$/m
        )
        assert.match(run.stdout, /^ {2}everything +ok +stdio \(node\) +2025-\d\d-\d\d +\d+ ms +13 tools$/m)
        assert.match(
          run.stdout,
          /^ {2}broken +FAILED +stdio \(mcp-bridge-no-such-server\) +McpSessionError\/ConnectFailed after \d+ ms$/m
        )
        assert.include(run.stdout, "spawn mcp-bridge-no-such-server ENOENT")
        assert.include(run.stdout, "3 of 4 servers ok, 1 failed")
        // Not a terminal: one progress line per server that answered, the last one left out.
        const progress = run.stderr.split("\n").filter((line) => line.startsWith("connecting "))
        assert.strictEqual(progress[0], "connecting 0/4... (waiting for local, remote, everything, broken)")
        assert.strictEqual(progress.length, 4)
        assert.match(progress[3]!, /^connecting 3\/4\.\.\. \(waiting for \w+\)$/)
        noStackTrace(run)
      }))

    it.effect("doctor --json: one document; exit 0 when every server connects", () =>
      Effect.gen(function*() {
        const { all, good } = yield* Fixtures
        const run = yield* cli(["doctor", "--json", "--config", all])
        assert.strictEqual(run.code, 1)
        assert.strictEqual(run.stderr, "")
        const doc = document(run)
        assert.deepStrictEqual(doc.summary, { servers: 4, ok: 3, failed: 1 })
        const local = doc.servers.find((s: any) => s.name === "local")
        assert.strictEqual(local.transport, "stdio")
        assert.oneOf(local.protocolVersion, ["2026-07-28", "2025-11-25"])
        assert.strictEqual(local.era, local.protocolVersion === "2026-07-28" ? "modern" : "legacy")
        assert.strictEqual(local.toolCount, 4)
        assert.isAbove(local.connectMillis, 0)
        const reference = doc.servers.find((s: any) => s.name === "everything")
        assert.strictEqual(reference.era, "legacy")
        assert.strictEqual(reference.toolCount, 13)
        const broken = doc.servers.find((s: any) => s.name === "broken")
        assert.strictEqual(broken.ok, false)
        assert.deepStrictEqual([broken.error._tag, broken.error.reason._tag], ["McpSessionError", "ConnectFailed"])
        assert.isNumber(broken.elapsedMillis)

        const ok = yield* cli(["doctor", "--json", "--config", good])
        assert.strictEqual(ok.code, 0)
        assert.deepStrictEqual(document(ok).summary, { servers: 3, ok: 3, failed: 0 })
      }))

    it.effect("doctor: a server that dies with a secret on stderr is reported without the secret", () =>
      Effect.gen(function*() {
        const { write } = yield* Fixtures
        const file = write("leaky.json", {
          mcpServers: {
            leaky: {
              command: process.execPath,
              args: ["-e", "process.stderr.write('token=' + process.env.API_TOKEN + '\\n'); process.exit(3)"],
              env: { API_TOKEN: envSecret }
            }
          }
        })
        const run = yield* cli(["doctor", "--config", file])
        assert.strictEqual(run.code, 1)
        assert.match(run.stdout, /leaky +FAILED +stdio \(node\) +McpSessionError\/\w+ after \d+ ms/)
        assert.include(run.stdout, "token=<redacted>")
      }))

    it.effect("doctor: a server that never answers times out; Ctrl-C ends the CLI and its children at once", () =>
      Effect.gen(function*() {
        const { write } = yield* Fixtures
        const silent = { command: process.execPath, args: ["-e", "setInterval(() => {}, 1000)"] }
        const timeout = write("silent.json", { mcpServers: { silent }, bridge: { connectTimeout: "1 second" } })
        const timedOut = yield* cli(["doctor", "--config", timeout])
        assert.strictEqual(timedOut.code, 1)
        assert.match(timedOut.stdout, /silent +FAILED +stdio \(node\) +McpSessionError\/Timeout after \d+ ms/)
        assert.include(timedOut.stdout, "did not answer connect within 1000 ms")
        // Interrupted while connecting: exit code 130, and no process of the group is left (checked by `cli`).
        const waiting = write("waiting.json", { mcpServers: { silent } })
        const interrupted = yield* cli(["doctor", "--config", waiting], {
          interruptWhen: (stderr) => stderr.includes("connecting 0/1")
        })
        assert.strictEqual(interrupted.code, 130)
        assert.strictEqual(interrupted.stdout, "")
      }))

    it.effect("a reader that closes stdout early: no crash, every child process ended", () =>
      Effect.gen(function*() {
        const { good } = yield* Fixtures
        const run = yield* cli(["tools", "--json", "--config", good], { closeStdout: true })
        assert.strictEqual(run.code, 0)
        assert.strictEqual(run.stderr, "")
      }))

    // One CLI run per test: each run starts a Node process, which a loaded machine takes seconds to do.
    const clearError = (run: Run) => {
      assert.strictEqual(run.code, 2)
      assert.strictEqual(run.stdout, "")
      noStackTrace(run)
    }

    it.effect("a missing configuration is a clear error (exit 2) that names where clients keep theirs", () =>
      Effect.gen(function*() {
        const { dir } = yield* Fixtures
        const missing = yield* cli(["tools", "--config", join(dir, "nope.json")])
        clearError(missing)
        assert.include(missing.stderr, `error: BridgeConfigError/Unreadable: ${join(dir, "nope.json")}: cannot read it`)
        assert.include(
          missing.stderr,
          "Claude Desktop: ~/Library/Application Support/Claude/claude_desktop_config.json"
        )
      }))

    it.effect("a configuration that is not JSON is a clear error (exit 2)", () =>
      Effect.gen(function*() {
        const { write } = yield* Fixtures
        const notJson = yield* cli(["doctor", "--config", write("bad.json", "{ \"mcpServers\": ")])
        clearError(notJson)
        assert.include(notJson.stderr, "not JSON")
      }))

    it.effect("an invalid configuration is a clear error (exit 2) with the path of the bad field", () =>
      Effect.gen(function*() {
        const { write } = yield* Fixtures
        const invalid = write("invalid.json", { mcpServers: { x: { command: 3 } } })
        const [named, json] = yield* Effect.all([
          cli(["tools", "--config", invalid]),
          cli(["call", "x.y", "--json", "--config", invalid])
        ], { concurrency: 2 })
        clearError(named)
        assert.include(
          named.stderr,
          `error: BridgeConfigError/Invalid: ${invalid}: mcpServers.x.command: Expected string`
        )
        assert.strictEqual(json.code, 2)
        assert.deepStrictEqual(document(json).error.reason.path, ["mcpServers", "x", "command"])
      }))

    it.effect("no configuration at all is a clear error (exit 2)", () =>
      Effect.gen(function*() {
        const none = yield* cli(["doctor"])
        clearError(none)
        assert.include(none.stderr, "pass --config FILE")
      }))

    it.effect("a Claude Code ~/.claude.json: user servers and the current project's local servers", () =>
      Effect.gen(function*() {
        const { dir, write } = yield* Fixtures
        const { command, args } = TestServer.stdioCommand(spec)
        const file = write("claude.json", {
          numStartups: 12,
          mcpServers: { user: { type: "stdio", command, args: [...args], env: {} } },
          projects: {
            [dir]: { allowedTools: [], mcpServers: { project: { type: "stdio", command, args: [...args] } } },
            "/somewhere/else": { mcpServers: { other: { command: "nope" } } }
          }
        })
        const run = yield* cli(["tools", "--json", "--config", file], { cwd: dir })
        assert.strictEqual(run.code, 0)
        assert.deepStrictEqual(document(run).servers.map((s: any) => s.name), ["user", "project"])
      }))

    it.effect("a file with no servers: nothing to list or check, exit 0", () =>
      Effect.gen(function*() {
        const { write } = yield* Fixtures
        const file = write("empty.json", { mcpServers: {} })
        for (const command of ["tools", "doctor"]) {
          const run = yield* cli([command, "--config", file])
          assert.strictEqual(run.code, 0)
          assert.strictEqual(run.stdout, `${file}: no servers in "mcpServers"\n`)
        }
      }))

    it.effect("--help and --version", () =>
      Effect.gen(function*() {
        const help = yield* cli(["--help"])
        assert.strictEqual(help.code, 0)
        for (const command of ["tools", "call", "doctor"]) {
          assert.match(help.stdout, new RegExp(`^ {2}${command} `, "m"))
        }
        const version = yield* cli(["--version"])
        assert.strictEqual(version.code, 0)
        assert.include(version.stdout, "0.1.0")
      }))
  })
})
