/**
 * The configuration file the CLI is pointed at: a Claude Desktop, Claude Code or Cursor file, or an mcp-bridge one.
 *
 * These files hold other settings next to `mcpServers` (Claude Code's `~/.claude.json` has dozens), which the
 * bridge's strict schema refuses, so the CLI keeps `mcpServers` and `bridge` and leaves the rest. In a Claude Code
 * `~/.claude.json`, the servers of the current directory's project (`projects[<cwd>].mcpServers`, the "local" scope
 * that `claude mcp add` writes by default) are added over the user-scope ones, as Claude Code does. What the entries
 * themselves hold is decoded by `McpBridge.layer`, whose `BridgeConfigError` names the field.
 *
 * @internal
 */
import { BridgeConfigError } from "@mcp-bridge/core"
import { Effect, FileSystem, Path } from "effect"

/**
 * The files the CLI reads, by application, with where each usually lives.
 *
 * @internal
 */
export const usualPaths: ReadonlyArray<{ readonly app: string; readonly paths: ReadonlyArray<string> }> = [
  {
    app: "Claude Desktop",
    paths: [
      "~/Library/Application Support/Claude/claude_desktop_config.json (macOS)",
      "%APPDATA%\\Claude\\claude_desktop_config.json (Windows)",
      "~/.config/Claude/claude_desktop_config.json (Linux)"
    ]
  },
  { app: "Claude Code", paths: ["~/.claude.json (user and local scopes)", ".mcp.json (project scope)"] },
  { app: "Cursor", paths: ["~/.cursor/mcp.json (global)", ".cursor/mcp.json (project)"] }
]

/**
 * A configuration read from a file: the object for `McpBridge.layer`, and where its servers came from.
 *
 * @internal
 */
export interface ConfigFile {
  /** The absolute path of the file. */
  readonly file: string
  /** `{ mcpServers, bridge? }`, nothing else of the file. */
  readonly config: { readonly mcpServers: unknown; readonly bridge?: unknown }
  /** `{ mcpServers, bridge?, gateway?, redis? }` as the file has them, for `mcp-bridge serve` (a long-running pool). */
  readonly served: {
    readonly mcpServers: unknown
    readonly bridge?: unknown
    readonly gateway?: unknown
    readonly redis?: unknown
  }
  /** The Claude Code project whose local-scope servers were added, if any. */
  readonly project: string | undefined
}

const unreadable = (file: string, detail: string) =>
  new BridgeConfigError.BridgeConfigError({ reason: new BridgeConfigError.Unreadable({ file, detail }) })

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Reads `path` (relative to the current directory) and keeps what the bridge reads of it.
 *
 * @internal
 */
export const read = Effect.fnUntraced(function*(path: string) {
  const fs = yield* FileSystem.FileSystem
  const paths = yield* Path.Path
  const file = paths.resolve(path)
  const text = yield* fs.readFileString(file).pipe(
    Effect.mapError((error) =>
      unreadable(file, `cannot read it: ${error.reason._tag === "NotFound" ? "no such file" : error.message}`)
    )
  )
  const parsed = yield* Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (error) => unreadable(file, `not JSON: ${error instanceof Error ? error.message : String(error)}`)
  })
  if (!isRecord(parsed)) {
    return yield* BridgeConfigError.invalid([], "Expected a JSON object with an \"mcpServers\" object")
  }
  // Claude Code: the current project's local-scope servers override the user-scope ones of the same name.
  const cwd = paths.resolve(".")
  const projects = parsed.projects
  const local = isRecord(projects) && isRecord(projects[cwd]) ? projects[cwd].mcpServers : undefined
  const hasLocal = isRecord(local) && Object.keys(local).length > 0
  if (parsed.mcpServers === undefined && !hasLocal) {
    return yield* BridgeConfigError.invalid(
      ["mcpServers"],
      isRecord(projects)
        ? "Missing key: no user-scope \"mcpServers\", and none for this directory's project in \"projects\" " +
          "(run mcp-bridge in the project's directory, or point --config at its .mcp.json)"
        : "Missing key: the file has no \"mcpServers\" object"
    )
  }
  const mcpServers = hasLocal
    ? { ...(isRecord(parsed.mcpServers) ? parsed.mcpServers : {}), ...local }
    : parsed.mcpServers
  const served = {
    mcpServers,
    ...(parsed.bridge === undefined ? {} : { bridge: parsed.bridge }),
    ...(parsed.gateway === undefined ? {} : { gateway: parsed.gateway }),
    ...(parsed.redis === undefined ? {} : { redis: parsed.redis })
  }
  return {
    file,
    config: forCli(mcpServers, parsed.bridge),
    served,
    project: hasLocal ? cwd : undefined
  } satisfies ConfigFile
})

/**
 * The settings the CLI runs servers with, under the file's own: the library's connect timeouts (15 seconds, 60 for a
 * package runner such as `npx -y`, whose first start may download it), and one session per server (`pool.min` 0), for
 * which a caller waits as long as the connect takes (so that a slow server shows its own error, not the pool's
 * `PoolTimeout`).
 *
 * @internal
 */
export const cliDefaults = {} as const

const cliPool = { min: 0, acquireTimeout: "10 minutes" } as const

// Only well-formed sections are changed: anything else is left for the decoder to report.
const withCliPool = (bridge: unknown): unknown =>
  isRecord(bridge) && (bridge.pool === undefined || isRecord(bridge.pool))
    ? { ...bridge, pool: { ...bridge.pool, ...cliPool } }
    : bridge

const forCli = (mcpServers: unknown, bridge: unknown) => ({
  mcpServers: isRecord(mcpServers)
    ? Object.fromEntries(
      Object.entries(mcpServers).map(([name, entry]) => [
        name,
        isRecord(entry) && entry.bridge !== undefined ? { ...entry, bridge: withCliPool(entry.bridge) } : entry
      ])
    )
    : mcpServers,
  bridge: bridge === undefined
    ? withCliPool(cliDefaults)
    : isRecord(bridge)
    ? withCliPool({ ...cliDefaults, ...bridge })
    : bridge
})
