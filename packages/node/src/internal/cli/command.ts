/**
 * The `mcp-bridge` command line: `tools`, `call` and `doctor` over the servers of a Claude Desktop, Claude Code or
 * Cursor configuration file, for a first look at one's own servers without writing code.
 *
 * Built on Effect's CLI module (`effect/cli`: `Command`, `Flag`, `Argument`) over `McpBridge.layer` with
 * `NodeTransport`: each command builds the bridge in its own scope, so that every session and child process is closed
 * before the process exits. The bridge runs with no result cache and no retries, so that what is printed is what the
 * server did, once. Every line printed goes through the scrubbing of the configuration's secrets.
 *
 * Exit codes: 0 success; 1 a call failed, the tool answered `isError`, or a server failed; 2 a usage or
 * configuration error.
 *
 * @internal
 */
import {
  BridgeConfig,
  BridgeConfigError,
  BridgeConfigSchema,
  ConnectionPool,
  McpAuth,
  McpBridge
} from "@mcp-bridge/core"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Cause, Clock, Data, Effect, Exit, Layer, Logger, Option, Redacted, Result, Runtime, Schema } from "effect"
import { Argument, CliConfig, CliError, CliOutput, Command, Flag, GlobalFlag } from "effect/cli"
import * as Gateway from "../../Gateway.ts"
import * as NodeTransport from "../../NodeTransport.ts"
import * as RedisStores from "../../replica/RedisStores.ts"
import * as ConfigFile from "./configFile.ts"
import * as Progress from "./progress.ts"
import * as Reload from "./reload.ts"
import {
  type ErrorJson,
  errorJson,
  errorTag,
  hang,
  hintsOf,
  resultText,
  scrub,
  secretsOf,
  shortDescription,
  table,
  targetOf,
  toolJson
} from "./render.ts"

// -----------------------------------------------------------------------------
// Output and exit codes
// -----------------------------------------------------------------------------

/**
 * Ends the command with an exit code, once its output is written.
 *
 * @internal
 */
export class ExitCode extends Data.TaggedError("ExitCode")<{ readonly code: number }> {
  override get [Runtime.errorExitCode](): number {
    return this.code
  }
  override readonly [Runtime.errorReported] = false
}

const exitWith = (code: number): Effect.Effect<void, ExitCode> =>
  code === 0 ? Effect.void : Effect.fail(new ExitCode({ code }))

const usageError = 2

// A reader that went away (`mcp-bridge tools | head -1`) closes the pipe: what is left to print is dropped, and the
// command still ends its sessions and child processes before it exits.
const write = (stream: NodeJS.WriteStream, text: string) =>
  Effect.sync(() => {
    if (!stream.destroyed) stream.write(text)
  })

const ignoreOutputErrors = Effect.sync(() => {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount("error") === 0) stream.on("error", () => stream.destroy())
  }
})

/** Output of one command: stdout and stderr, with the configuration's secrets scrubbed. */
interface Io {
  readonly json: boolean
  /** Lines on stdout. */
  readonly out: (...lines: ReadonlyArray<string>) => Effect.Effect<void>
  /** Lines on stderr. */
  readonly err: (...lines: ReadonlyArray<string>) => Effect.Effect<void>
  /** One JSON document on stdout. */
  readonly document: (value: unknown) => Effect.Effect<void>
}

const makeIo = (json: boolean, secrets: ReadonlyArray<string>): Io => {
  // In a JSON document a secret with a quote or a backslash appears escaped.
  const inJson = [...new Set(secrets.flatMap((secret) => [JSON.stringify(secret).slice(1, -1), secret]))]
    .sort((a, b) => b.length - a.length)
  return {
    json,
    out: (...lines) => write(process.stdout, scrub(lines.map((line) => `${line}\n`).join(""), secrets)),
    err: (...lines) => write(process.stderr, scrub(lines.map((line) => `${line}\n`).join(""), secrets)),
    document: (value) => write(process.stdout, `${scrub(JSON.stringify(value, null, 2), inJson)}\n`)
  }
}

// -----------------------------------------------------------------------------
// Flags shared by every command
// -----------------------------------------------------------------------------

const configFlag = Flag.File("config").pipe(
  Flag.withAlias("c"),
  Flag.withDescription(
    "The MCP configuration file: a Claude Desktop, Claude Code or Cursor file, or any JSON file with \"mcpServers\""
  ),
  Flag.optional
)

const jsonFlag = Flag.Boolean("json").pipe(
  Flag.withDescription("Print one JSON document on stdout (for scripts)"),
  Flag.withDefault(false)
)

const root = Command.make("mcp-bridge").pipe(
  Command.withSharedFlags({ config: configFlag, json: jsonFlag }),
  Command.withDescription(
    "A first look at your MCP servers: list their tools, call one, check that each connects. Reads the " +
      "\"mcpServers\" of Claude Desktop, Claude Code and Cursor configuration files."
  )
)

const usualPathsText = () => ConfigFile.usualPaths.map(({ app, paths }) => `  ${app}: ${paths.join(", ")}`).join("\n")

// -----------------------------------------------------------------------------
// The bridge of one command
// -----------------------------------------------------------------------------

/** What a command body gets: the bridge's services, the configuration file, and the output. */
interface Session {
  readonly io: Io
  readonly file: ConfigFile.ConfigFile
  readonly config: BridgeConfig.BridgeConfig.Service
  readonly bridge: McpBridge.McpBridge.Service
  readonly pool: ConnectionPool.ConnectionPool.Service
}

// One attempt per call, nothing cached, no telemetry: the CLI shows what each server did.
const bridgeLayer = (config: object) =>
  McpBridge.layer(config, {
    transport: NodeTransport.layer(),
    cache: false,
    resilience: false,
    coalescing: false,
    telemetry: false
  })

const configErrorDocument = (file: string | undefined, error: ErrorJson) => ({
  ...(file === undefined ? {} : { config: file }),
  ok: false,
  error
})

/**
 * Reads the configuration file, builds the bridge in a scope of its own, and runs `body` with it. A missing or bad
 * configuration is reported (named field, no stack) and ends the command with exit code 2.
 */
const withBridge = <R>(
  flags: { readonly config: Option.Option<string>; readonly json: boolean },
  body: (session: Session) => Effect.Effect<void, ExitCode, R>
) =>
  Effect.gen(function*() {
    if (Option.isNone(flags.config)) {
      const io = makeIo(flags.json, [])
      const message = "no configuration file: pass --config FILE. The usual places are:\n" + usualPathsText()
      yield* io.json
        ? io.document({ ok: false, error: { _tag: "UsageError", message } })
        : io.err(`error: ${message}`)
      return yield* exitWith(usageError)
    }
    const path = flags.config.value
    const file = yield* ConfigFile.read(path)
    yield* Effect.gen(function*() {
      const config = yield* BridgeConfig.BridgeConfig
      const io = makeIo(flags.json, secretsOf(config))
      yield* body({
        io,
        file,
        config,
        bridge: yield* McpBridge.McpBridge,
        pool: yield* ConnectionPool.ConnectionPool
      })
    }).pipe(Effect.provide(bridgeLayer(file.config)))
  }).pipe(Effect.catchTag("BridgeConfigError", (error) => reportConfigError(flags, error)))

// A missing or bad configuration is reported (named field, no stack) and ends the command with exit code 2.
const reportConfigError = (
  flags: { readonly config: Option.Option<string>; readonly json: boolean },
  error: BridgeConfigError.BridgeConfigError
) =>
  Effect.gen(function*() {
    const io = makeIo(flags.json, [])
    const encoded = errorJson(error)
    const file = error.reason._tag === "Unreadable" ? error.reason.file : Option.getOrUndefined(flags.config)
    // An `Invalid` message names the field; say which file it is in.
    const message = error.reason._tag === "Invalid" && file !== undefined
      ? `${file}: ${error.message}`
      : error.message
    if (io.json) {
      yield* io.document(configErrorDocument(file, { ...encoded, message }))
    } else {
      yield* io.err(`error: ${errorTag(encoded)}: ${message}`)
      if (error.reason._tag === "Unreadable" && error.reason.detail.includes("no such file")) {
        yield* io.err(`The usual places of MCP configuration files are:\n${usualPathsText()}`)
      }
    }
    return yield* exitWith(usageError)
  })

// -----------------------------------------------------------------------------
// tools
// -----------------------------------------------------------------------------

type Listed =
  | {
    readonly server: BridgeConfig.ResolvedServer
    readonly ok: true
    readonly tools: ReadonlyArray<McpBridge.BridgeTool>
  }
  | { readonly server: BridgeConfig.ResolvedServer; readonly ok: false; readonly error: ErrorJson }

const progressOf = (servers: ReadonlyArray<BridgeConfig.ResolvedServer>, quietUnlessTty: boolean) =>
  Progress.make({
    servers: servers.map((server) => server.name),
    write: (text) => write(process.stderr, text),
    isTty: process.stderr.isTTY === true,
    quietUnlessTty,
    columns: process.stderr.columns || 100
  })

const list = (bridge: McpBridge.McpBridge.Service, server: BridgeConfig.ResolvedServer): Effect.Effect<Listed> =>
  Effect.map(
    Effect.result(bridge.listServerTools(server.name)),
    (result): Listed =>
      Result.isSuccess(result)
        ? { server, ok: true, tools: result.success }
        : { server, ok: false, error: errorJson(result.failure) }
  )

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`

// One block per server: its tools with their hints and descriptions, cut to `width` columns, or its error.
const toolsText = (listed: ReadonlyArray<Listed>, width: number): Array<string> =>
  listed.flatMap((l, i) => {
    const kind = BridgeConfig.transportKind(l.server.transport)
    const gap = i > 0 ? [""] : []
    if (!l.ok) {
      return [...gap, `${l.server.name} (${kind}): FAILED ${errorTag(l.error)}`, `  ${hang(l.error.message, "  ")}`]
    }
    const rows = l.tools.map((tool) => [tool.qualifiedName, hintsOf(tool.annotations).join(" "), tool.description])
    const nameWidth = Math.max(0, ...rows.map(([name]) => name!.length))
    const hintWidth = Math.max(0, ...rows.map(([, hints]) => hints!.length))
    const room = Math.max(30, width - nameWidth - hintWidth - 7)
    return [
      ...gap,
      `${l.server.name} (${kind}, ${plural(l.tools.length, "tool")})`,
      ...table(rows.map(([name, hints, description]) => [name!, hints!, shortDescription(description, room)]))
    ]
  })

const tools = Command.make(
  "tools",
  {},
  Effect.fnUntraced(function*() {
    const flags = yield* root
    yield* withBridge(flags, ({ bridge, config, file, io }) =>
      Effect.scoped(Effect.gen(function*() {
        const servers = [...config.servers.values()]
        const progress = yield* progressOf(servers, true)
        const listed = yield* Effect.forEach(
          servers,
          (server) => Effect.tap(list(bridge, server), () => progress.done(server.name)),
          { concurrency: "unbounded" }
        )
        yield* progress.end
        const failed = listed.filter((l) => !l.ok).length

        if (io.json) {
          yield* io.document({
            config: file.file,
            ok: failed === 0,
            servers: listed.map((l) => ({
              name: l.server.name,
              transport: BridgeConfig.transportKind(l.server.transport),
              ok: l.ok,
              ...(l.ok ? { toolCount: l.tools.length } : { error: l.error })
            })),
            tools: listed.flatMap((l) => l.ok ? l.tools.map(toolJson) : [])
          })
        } else if (servers.length === 0) {
          yield* io.out(`${file.file}: no servers in "mcpServers"`)
        } else {
          // On a terminal the lines fit its width; elsewhere (a pipe, a file) they fit 120 columns.
          const width = process.stdout.isTTY === true ? process.stdout.columns || 100 : 120
          yield* io.out(...toolsText(listed, width))
          if (failed > 0) yield* io.err(`\n${failed} of ${plural(servers.length, "server")} failed`)
        }
        return yield* exitWith(failed === 0 ? 0 : 1)
      })))
  })
).pipe(
  Command.withShortDescription("List every server's tools as server.tool, with their hints"),
  Command.withDescription(
    "List every server's tools as server.tool, with their hints (readOnly, destructive, idempotent, openWorld) " +
      "and a short description. A server that fails is reported with its error; the others are still listed."
  ),
  Command.withExamples([
    { command: "mcp-bridge tools --config ~/.cursor/mcp.json", description: "List the tools of Cursor's servers" },
    { command: "mcp-bridge tools --json --config .mcp.json | jq -r '.tools[].name'", description: "Names only" }
  ])
)

// -----------------------------------------------------------------------------
// call
// -----------------------------------------------------------------------------

const parseArguments = (text: Option.Option<string>): Result.Result<Record<string, unknown>, string> => {
  if (Option.isNone(text)) return Result.succeed({})
  let value: unknown
  try {
    value = JSON.parse(text.value)
  } catch (error) {
    return Result.fail(`the arguments are not JSON: ${error instanceof Error ? error.message : String(error)}`)
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? Result.succeed(value as Record<string, unknown>)
    : Result.fail(`the arguments must be a JSON object, like '{"a":1}', got ${text.value}`)
}

const call = Command.make(
  "call",
  {
    tool: Argument.String("tool").pipe(Argument.withDescription("The tool to call, as server.tool")),
    arguments: Argument.String("arguments").pipe(
      Argument.withDescription("The arguments, as a JSON object (default {})"),
      Argument.optional
    )
  },
  Effect.fnUntraced(function*(input) {
    const flags = yield* root
    const args = parseArguments(input.arguments)
    if (Result.isFailure(args)) {
      const io = makeIo(flags.json, [])
      yield* flags.json
        ? io.document({ tool: input.tool, ok: false, error: { _tag: "UsageError", message: args.failure } })
        : io.err(`error: ${args.failure}`)
      return yield* exitWith(usageError)
    }
    yield* withBridge(flags, ({ bridge, io }) =>
      Effect.gen(function*() {
        const outcome = yield* Effect.result(bridge.callTool(input.tool, args.success))
        if (Result.isFailure(outcome)) {
          const error = errorJson(outcome.failure)
          yield* io.json
            ? io.document({ tool: input.tool, ok: false, error })
            : io.err(`error: ${errorTag(error)}: ${error.message}`)
          return yield* exitWith(1)
        }
        const result: CallToolResult = outcome.success
        const isError = result.isError === true
        if (io.json) {
          yield* io.document({ tool: input.tool, ok: !isError, result })
        } else {
          if (isError) yield* io.err(`${input.tool} answered with an error result (isError: true):`)
          yield* io.out(resultText(result))
        }
        return yield* exitWith(isError ? 1 : 0)
      }))
  })
).pipe(
  Command.withShortDescription("Call a tool and print its result"),
  Command.withDescription(
    "Call a tool and print its result: the text content, then the structured content. Exits with 1 when the call " +
      "fails (the typed error's message on stderr) or the tool answers isError."
  ),
  Command.withExamples([
    {
      command: "mcp-bridge call everything.get-sum '{\"a\":1,\"b\":2}' --config mcp.json",
      description: "Call get-sum on the server named everything"
    }
  ])
)

// -----------------------------------------------------------------------------
// doctor
// -----------------------------------------------------------------------------

type Checked =
  | {
    readonly server: BridgeConfig.ResolvedServer
    readonly ok: true
    readonly protocolVersion: string
    readonly era: "legacy" | "modern"
    readonly connectMillis: number
    readonly toolCount: number
  }
  | {
    readonly server: BridgeConfig.ResolvedServer
    readonly ok: false
    readonly elapsedMillis: number
    readonly error: ErrorJson
  }

const check = (session: Session, server: BridgeConfig.ResolvedServer): Effect.Effect<Checked> =>
  Effect.gen(function*() {
    const startedAt = yield* Clock.currentTimeMillis
    const outcome = yield* Effect.result(Effect.gen(function*() {
      const opened = yield* session.pool.withSession(
        server,
        (s) => Effect.succeed({ protocolVersion: s.protocolVersion, era: s.era, connectMillis: s.connectMillis })
      )
      const listed = yield* session.bridge.listServerTools(server.name)
      return { ...opened, toolCount: listed.length }
    }))
    if (Result.isSuccess(outcome)) return { server, ok: true, ...outcome.success }
    const endedAt = yield* Clock.currentTimeMillis
    return { server, ok: false, elapsedMillis: endedAt - startedAt, error: errorJson(outcome.failure) }
  })

// One row per server: name, status, transport, then its protocol version, connect time and tool count (aligned
// among the servers that answered), or its error under it.
const doctorText = (checked: ReadonlyArray<Checked>): Array<string> => {
  const answered = checked.filter((c) => c.ok)
  const details = table(
    answered.map((c) => [c.protocolVersion, `${c.connectMillis} ms`.padStart(8), plural(c.toolCount, "tool")]),
    ""
  )
  const rows = checked.map((c) => {
    const transport = `${BridgeConfig.transportKind(c.server.transport)} (${targetOf(c.server.transport)})`
    return c.ok
      ? [c.server.name, "ok", transport, details[answered.indexOf(c)]!]
      : [c.server.name, "FAILED", transport, `${errorTag(c.error)} after ${c.elapsedMillis} ms`]
  })
  const indent = " ".repeat(2 + Math.max(...checked.map((c) => c.server.name.length)) + 2)
  const lines = table(rows)
  return checked.flatMap((c, i) => c.ok ? [lines[i]!] : [lines[i]!, `${indent}${hang(c.error.message, indent)}`])
}

const doctor = Command.make(
  "doctor",
  {},
  Effect.fnUntraced(function*() {
    const flags = yield* root
    yield* withBridge(flags, (session) =>
      Effect.scoped(Effect.gen(function*() {
        const { config, file, io } = session
        const servers = [...config.servers.values()]
        const progress = yield* progressOf(servers, io.json)
        const checked = yield* Effect.forEach(
          servers,
          (server) => Effect.tap(check(session, server), () => progress.done(server.name)),
          { concurrency: "unbounded" }
        )
        yield* progress.end
        const failed = checked.filter((c) => !c.ok).length

        if (io.json) {
          yield* io.document({
            config: file.file,
            ok: failed === 0,
            summary: { servers: servers.length, ok: servers.length - failed, failed },
            servers: checked.map((c) => ({
              name: c.server.name,
              ok: c.ok,
              transport: BridgeConfig.transportKind(c.server.transport),
              target: targetOf(c.server.transport),
              ...(c.ok
                ? {
                  protocolVersion: c.protocolVersion,
                  era: c.era,
                  connectMillis: c.connectMillis,
                  toolCount: c.toolCount
                }
                : { elapsedMillis: c.elapsedMillis, error: c.error })
            }))
          })
          return yield* exitWith(failed === 0 ? 0 : 1)
        }

        const project = file.project === undefined ? "" : ` (with the local servers of project ${file.project})`
        if (servers.length === 0) {
          yield* io.out(`${file.file}${project}: no servers in "mcpServers"`)
        } else {
          yield* io.out(`${file.file}${project}: ${plural(servers.length, "server")}`, "")
          yield* io.out(...doctorText(checked))
          yield* io.out(
            "",
            failed === 0
              ? `${servers.length} of ${plural(servers.length, "server")} ok`
              : `${servers.length - failed} of ${plural(servers.length, "server")} ok, ${failed} failed`
          )
        }
        return yield* exitWith(failed === 0 ? 0 : 1)
      })))
  })
).pipe(
  Command.withShortDescription("Connect to every server and report on each"),
  Command.withDescription(
    "Connect to every server at once and print, per server: transport, negotiated protocol version, connect time " +
      "and tool count, or the typed error of the failure. Exits with 1 if any server failed."
  ),
  Command.withExamples([
    {
      command: "mcp-bridge doctor --config ~/Library/Application\\ Support/Claude/claude_desktop_config.json",
      description: "Check Claude Desktop's servers"
    }
  ])
)

// -----------------------------------------------------------------------------
// serve
// -----------------------------------------------------------------------------

const serve = Command.make(
  "serve",
  {
    port: Flag.Int("port").pipe(
      Flag.withDescription("The port of the Streamable HTTP endpoint (0: any free port)"),
      Flag.withDefault(8080)
    ),
    host: Flag.String("host").pipe(
      Flag.withDescription("The address to listen on (a loopback address also checks Host and Origin)"),
      Flag.withDefault("127.0.0.1")
    ),
    stdio: Flag.Boolean("stdio").pipe(
      Flag.withDescription("Serve MCP on stdin and stdout instead (what Claude Desktop launches)"),
      Flag.withDefault(false)
    ),
    dashboard: Flag.Boolean("dashboard").pipe(
      Flag.withDescription("Serve the live dashboard at / (--no-dashboard: none)"),
      Flag.withDefault(true)
    ),
    redis: Flag.Redacted("redis").pipe(
      Flag.withDescription(
        "Share sessions, list changes, the result cache, rate limits, circuits and OAuth tokens with other replicas " +
          "through this Redis (redis://[:password@]host:port); else REDIS_URL, else the file's \"redis\" entry"
      ),
      Flag.optional
    )
  },
  Effect.fnUntraced(function*(input) {
    const flags = yield* root
    if (Option.isNone(flags.config)) {
      yield* makeIo(false, []).err(
        "error: no configuration file: pass --config FILE. The usual places are:\n" + usualPathsText()
      )
      return yield* exitWith(usageError)
    }
    let redisUrl: Redacted.Redacted<string> | undefined
    yield* Effect.gen(function*() {
      const file = yield* ConfigFile.read(flags.config.pipe(Option.getOrThrow))
      const settings = file.served.gateway
      const redis = yield* redisOf(input.redis, file.served.redis)
      redisUrl = redis?.url
      const replicas = redis === undefined ? undefined : RedisStores.layerReplicas(redis)
      // With replicas, OAuth tokens are shared (sealed) and renewed once across them. `replicas` is built before the
      // bridge (below) and memoized, so its failures surface typed there, never through this `orDie`. What upstream
      // servers ask during a call goes to the downstream client that made it (the relay), a user's login to an
      // upstream server too (the relay is the `AuthInteraction`).
      const relay = Gateway.layerRelay()
      const bridge = McpBridge.layer(file.served, {
        transport: NodeTransport.layer(),
        handlers: relay,
        auth: replicas === undefined
          ? McpAuth.layerMemory().pipe(Layer.provide(relay))
          : McpAuth.layer().pipe(Layer.provide(replicas), Layer.provide(relay), Layer.orDie)
      })
      const gateway = (input.stdio
        ? Gateway.layerStdio({ settings })
        : Gateway.layer({
          settings,
          port: input.port,
          host: input.host,
          ...(input.dashboard ? {} : { dashboard: false as const })
        })).pipe(Layer.provide(relay))
      const live = replicas === undefined
        ? gateway.pipe(Layer.provideMerge(bridge))
        : gateway.pipe(Layer.provideMerge(Layer.provide(bridge, replicas)), Layer.provide(replicas))
      yield* Effect.gen(function*() {
        const gateway = yield* Gateway.Gateway
        const config = yield* BridgeConfig.BridgeConfig
        const io = makeIo(false, secretsOf(config))
        const count = plural(config.servers.size, "server")
        if (redis !== undefined) {
          yield* io.err(`mcp-bridge: sharing state through Redis at ${RedisStores.printableUrl(redis.url)}`)
        }
        // The file is reloaded when it changes and on SIGHUP; the configuration in force is the one to scrub.
        yield* Reload.watchAndReload({
          path: flags.config.pipe(Option.getOrThrow),
          file: file.file,
          started: { redis: file.served.redis },
          gateway,
          log: (...lines) => makeIo(false, secretsOf(config)).err(...lines)
        })
        if (input.stdio) {
          yield* io.err(`mcp-bridge: serving ${count} of ${file.file} over stdio`)
          yield* stdinEnded
        } else {
          yield* io.out(`mcp-bridge: serving ${count} of ${file.file} at ${gateway.url}`)
          if (input.dashboard) yield* io.out(`mcp-bridge: dashboard at ${gateway.url.replace(/\/mcp$/, "/")}`)
          return yield* Effect.never
        }
      }).pipe(Effect.scoped, Effect.provide(live))
    }).pipe(
      Effect.catchTag("BridgeConfigError", (error) => reportConfigError(flags, error)),
      Effect.catchTag(
        "GatewayError",
        (error) => Effect.andThen(makeIo(false, []).err(`error: GatewayError: ${error.message}`), exitWith(usageError))
      ),
      Effect.catchTag("RedisError", (error) =>
        Effect.andThen(
          makeIo(false, []).err(
            `error: RedisError: ${redisUrl === undefined ? "" : RedisStores.describeError(redisUrl, error)}`
          ),
          exitWith(1)
        )),
      Effect.catchTag(
        "SessionSealError",
        (error) =>
          Effect.andThen(makeIo(false, []).err(`error: SessionSealError: ${error.message}`), exitWith(usageError))
      )
    )
  })
).pipe(
  Command.withShortDescription("Serve every server as one MCP server (Streamable HTTP at /mcp, or stdio)"),
  Command.withDescription(
    "Serve the configured servers as one MCP server, through the bridge (pool, cache, limits, breakers): over " +
      "Streamable HTTP at http://HOST:PORT/mcp for 2026-07-28 and 2025-era clients, with /healthz, /readyz and " +
      "/metrics beside it, or over stdio with --stdio. Tool names follow the file's \"gateway\" section. The file is " +
      "reloaded when it changes and on SIGHUP, without dropping calls in flight (an invalid file is refused and the " +
      "previous configuration keeps serving). Stops on SIGINT or SIGTERM after the calls in flight end."
  ),
  Command.withExamples([
    { command: "mcp-bridge serve --config mcp.json --port 8080", description: "Serve at http://127.0.0.1:8080/mcp" },
    { command: "mcp-bridge serve --config mcp.json --stdio", description: "Serve over stdio" }
  ])
)

// The Redis to share state through: `--redis`, else `REDIS_URL`, else the file's `redis` entry; none by default.
const redisOf = (flag: Option.Option<Redacted.Redacted<string>>, entry: unknown) =>
  Effect.gen(function*() {
    const fromFile = entry === undefined ? undefined : yield* Schema.decodeUnknownEffect(
      BridgeConfigSchema.RedisSettings
    )(entry).pipe(
      Effect.mapError(() =>
        BridgeConfigError.invalid(
          ["redis"],
          "Expected a Redis URL, or { \"url\", \"prefix\"?, \"onUnreachable\"?: \"refuse\" | { \"share\": n } }"
        )
      )
    )
    const file = fromFile === undefined ? undefined : Redacted.isRedacted(fromFile) ? { url: fromFile } : fromFile
    const env = process.env["REDIS_URL"]
    const url = Option.isSome(flag)
      ? flag.value
      : env !== undefined && env !== ""
      ? Redacted.make(env)
      : file?.url
    if (url === undefined) return undefined
    return {
      url,
      ...(file?.prefix === undefined ? {} : { prefix: file.prefix }),
      ...(file?.onUnreachable === undefined ? {} : { onUnreachable: file.onUnreachable })
    } satisfies RedisStores.ReplicaOptions
  })

// Resolves when stdin ends: a stdio client that goes away ends the gateway.
const stdinEnded = Effect.callback<void>((resume) => {
  const done = () => resume(Effect.void)
  process.stdin.once("end", done)
  process.stdin.once("close", done)
  return Effect.sync(() => {
    process.stdin.off("end", done)
    process.stdin.off("close", done)
  })
})

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

/**
 * The `mcp-bridge` command with its subcommands.
 *
 * @internal
 */
export const command = root.pipe(Command.withSubcommands([tools, call, doctor, serve]))

// Usage errors: the errors and where to find help, on stderr (stdout stays for what was asked).
const presenter: CliOutput.Presenter = {
  present: Effect.fnUntraced(function*(event) {
    const formatter = yield* CliOutput.Formatter
    switch (event._tag) {
      case "Help":
        return yield* write(process.stdout, `${formatter.formatHelpDoc(event.helpDoc)}\n`)
      case "Version":
        return yield* write(process.stdout, `${formatter.formatVersion(event.name, event.version)}\n`)
      case "InvalidInvocation":
        return yield* write(
          process.stderr,
          `${formatter.formatErrors(event.errors)}\nSee: ${event.commandPath.join(" ")} --help\n`
        )
    }
  })
}

const isUsageError = (error: unknown) =>
  CliError.isCliError(error) && error._tag === "ShowHelp" && error.errors.length > 0

/**
 * Runs the command line `args`; fails with `ExitCode` (or a CLI usage error) for a non-zero exit.
 *
 * @internal
 */
export const run = (
  args: ReadonlyArray<string>,
  version: string
): Effect.Effect<void, unknown, Command.Environment> =>
  Effect.andThen(ignoreOutputErrors, Command.runWith(command, { version })(args)).pipe(
    // Anything unexpected (a defect, an untyped failure) is reported once, with its cause, and exits with 1.
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
      const error = Cause.squash(cause)
      if (error instanceof ExitCode || isUsageError(error)) return Effect.failCause(cause)
      if (CliError.isCliError(error) && error._tag === "ShowHelp") return Effect.void
      return Effect.andThen(
        write(process.stderr, `mcp-bridge: unexpected error\n${Cause.pretty(cause)}\n`),
        Effect.fail(new ExitCode({ code: 1 }))
      )
    }),
    Effect.provide(Layer.mergeAll(
      CliConfig.layer({ builtIns: GlobalFlag.BuiltIns.filter((flag) => flag !== GlobalFlag.Wizard) }),
      CliOutput.layerPresenter(presenter)
    )),
    Effect.provideService(Logger.LogToStderr, true)
  )

/**
 * The exit code of a finished run: 0, `ExitCode`'s code, 2 for a usage error, 130 when interrupted. Exits once
 * stdout and stderr are flushed (a pipe may be asynchronous), also when a library left a handle open.
 *
 * @internal
 */
export const teardown: Runtime.Teardown = (exit, onExit) => {
  let code = 0
  Runtime.defaultTeardown(exit, (c) => code = c)
  if (Exit.isFailure(exit) && isUsageError(Cause.squash(exit.cause))) code = usageError
  const flush = (stream: NodeJS.WriteStream, then: () => void) =>
    stream.destroyed ? then() : stream.write("", () => then())
  flush(process.stdout, () =>
    flush(process.stderr, () => {
      onExit(code)
      process.exit(code)
    }))
}
