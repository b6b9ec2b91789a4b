/**
 * The gateway's tool names: how the tools of many servers become one list that real clients accept.
 *
 * - Prefix mode: `auto` (the server's name before each tool's only when more than one server is configured),
 *   `always`, `never` (a name served by two servers is then a startup error).
 * - The name is `prefix + separator + tool` (separator `_` by default), or the tool's `rename`; every character
 *   outside letters, digits, `_` and `-` (what the major model APIs accept) becomes `_`.
 * - Every name fits in 64 characters: a longer one keeps its first 55 characters, then `_` and the first 8 hex digits
 *   of the SHA-256 of the whole (unshortened) name. The same name always shortens the same way.
 * - A server that needs its user's login before it can be listed is served to a 2026-07-28 client as one tool of the
 *   gateway's own, `prefix + separator + "sign_in"` (see `withSignIn`).
 * - Per server: `include` and `exclude` globs (`*`, `?`) over the server's own tool names; per tool: `name` and
 *   `description` overrides.
 *
 * Plain functions over plain data: the catalog is rebuilt from the bridge's tool index each time a list is asked for.
 *
 * @internal
 */
import type { BridgeConfigSchema, McpBridge } from "@mcp-bridge/core"
import type { Prompt, Tool } from "@modelcontextprotocol/server"
import { createHash } from "node:crypto"

/** @internal */
export type Settings = typeof BridgeConfigSchema.GatewaySettings.Type

/** The longest tool name the gateway serves. @internal */
export const maxNameLength = 64

/** A tool as the gateway serves it. @internal */
export interface Exposed {
  /** The name downstream clients see. */
  readonly name: string
  readonly server: string
  /** The server's own name of the tool. */
  readonly tool: string
  /** The definition downstream clients see (name and description replaced). */
  readonly definition: Tool
  /** A tool of the gateway's own (see `withSignIn`): its call signs the user in to `server`. */
  readonly signIn?: true | undefined
}

/** The tools the gateway serves, and the names two servers (or two tools) ended up sharing. @internal */
export interface Catalog {
  readonly tools: ReadonlyArray<Exposed>
  readonly byName: ReadonlyMap<string, Exposed>
  /** Each name served more than once: the later tools with it are left out. */
  readonly duplicates: ReadonlyArray<{ readonly name: string; readonly tools: ReadonlyArray<string> }>
}

/** A glob (`*` any run of characters, `?` one) as a regular expression over the whole name. @internal */
export const globToRegExp = (glob: string): RegExp =>
  new RegExp(
    `^${
      glob.split("").map((c) => c === "*" ? ".*" : c === "?" ? "." : c.replace(/[\\^$.|+()[\]{}]/g, "\\$&")).join("")
    }$`
  )

/** Whether `name` matches one of `globs`. @internal */
export const matchesAny = (globs: ReadonlyArray<RegExp>, name: string): boolean => globs.some((g) => g.test(name))

/** Replaces every character outside letters, digits, `_` and `-` with `_`. @internal */
export const sanitize = (name: string): string => name.replace(/[^A-Za-z0-9_-]/g, "_")

/**
 * Fits a name in `max` characters: a longer one keeps its first `max - 9` characters, then `_` and the first 8 hex
 * digits of the SHA-256 of the whole name.
 *
 * @internal
 */
export const shorten = (name: string, max: number = maxNameLength): string =>
  name.length <= max
    ? name
    : `${name.slice(0, max - 9)}_${createHash("sha256").update(name).digest("hex").slice(0, 8)}`

/** Builds the catalog of `tools` (the bridge's, in server order) under the gateway settings. @internal */
export const makeNamer = (settings: Settings | undefined, servers: ReadonlyArray<string>) => {
  const mode = settings?.prefix ?? "auto"
  const separator = settings?.separator ?? "_"
  const prefixed = mode === "always" || (mode === "auto" && servers.length > 1)
  const perServer = new Map(
    servers.map((server) => {
      const own = settings?.servers?.[server]
      return [server, {
        prefix: own?.prefix ?? server,
        include: own?.include?.map(globToRegExp),
        exclude: (own?.exclude ?? []).map(globToRegExp),
        tools: own?.tools ?? {}
      }] as const
    })
  )
  const nameOf = (tool: McpBridge.BridgeTool): string | undefined => {
    const own = perServer.get(tool.server)
    if (own === undefined) return undefined
    if (own.include !== undefined && !matchesAny(own.include, tool.name)) return undefined
    if (matchesAny(own.exclude, tool.name)) return undefined
    const rename = own.tools[tool.name]?.name
    const raw = rename ?? (prefixed ? `${own.prefix}${separator}${tool.name}` : tool.name)
    return shorten(sanitize(raw))
  }
  return (tools: ReadonlyArray<McpBridge.BridgeTool>): Catalog => {
    const byName = new Map<string, Exposed>()
    const clashes = new Map<string, Array<string>>()
    for (const tool of tools) {
      const name = nameOf(tool)
      if (name === undefined) continue
      const seen = byName.get(name)
      if (seen !== undefined) {
        const list = clashes.get(name) ?? [`${seen.server}.${seen.tool}`]
        list.push(tool.qualifiedName)
        clashes.set(name, list)
        continue
      }
      const description = perServer.get(tool.server)?.tools[tool.name]?.description ?? tool.definition.description
      const definition: Tool = {
        ...tool.definition,
        name,
        ...(description === undefined ? {} : { description })
      }
      byName.set(name, { name, server: tool.server, tool: tool.name, definition })
    }
    return {
      tools: Array.from(byName.values()),
      byName,
      duplicates: Array.from(clashes, ([name, list]) => ({ name, tools: list }))
    }
  }
}

/** The part of `catalog` a virtual server (or a principal) sees: tools of `servers`, and names matching `tools`. @internal */
export const subset = (
  catalog: Catalog,
  filter: { readonly servers?: ReadonlyArray<string> | undefined; readonly tools?: ReadonlyArray<string> | undefined }
): Catalog => {
  if (filter.servers === undefined && filter.tools === undefined) return catalog
  const servers = filter.servers === undefined ? undefined : new Set(filter.servers)
  const globs = filter.tools?.map(globToRegExp)
  const tools = catalog.tools.filter((t) =>
    (servers === undefined || servers.has(t.server)) && (globs === undefined || matchesAny(globs, t.name))
  )
  return { tools, byName: new Map(tools.map((t) => [t.name, t])), duplicates: catalog.duplicates }
}

/** A catalog of no tool. @internal */
export const empty: Catalog = { tools: [], byName: new Map(), duplicates: [] }

/**
 * `catalog` with a sign-in tool for each of `servers` (`prefix + separator + "sign_in"`, whatever the prefix mode: the
 * server's own tools are not listed yet); a name the catalog already serves keeps its tool. @internal
 */
export const withSignIn = (
  catalog: Catalog,
  settings: Settings | undefined,
  servers: ReadonlyArray<string>
): Catalog => {
  const added: Array<Exposed> = []
  for (const server of servers) {
    const prefix = settings?.servers?.[server]?.prefix ?? server
    const name = shorten(sanitize(`${prefix}${settings?.separator ?? "_"}sign_in`))
    if (catalog.byName.has(name) || added.some((t) => t.name === name)) continue
    added.push({
      name,
      server,
      tool: "",
      signIn: true,
      definition: {
        name,
        title: `Sign in to ${server}`,
        description:
          `Sign in to the MCP server "${server}": opens its sign-in page. Its tools are listed once you have.`,
        inputSchema: { type: "object", properties: {} }
      }
    })
  }
  if (added.length === 0) return catalog
  const tools = [...catalog.tools, ...added]
  return { tools, byName: new Map(tools.map((t) => [t.name, t])), duplicates: catalog.duplicates }
}

/** A prompt as the gateway serves it. @internal */
export interface ExposedPrompt {
  /** The name downstream clients see. */
  readonly name: string
  readonly server: string
  /** The server's own name of the prompt. */
  readonly prompt: string
  /** The definition downstream clients see (name replaced). */
  readonly definition: Prompt
}

/** The prompts the gateway serves, by the name downstream clients see. @internal */
export interface PromptCatalog {
  readonly prompts: ReadonlyArray<ExposedPrompt>
  readonly byName: ReadonlyMap<string, ExposedPrompt>
}

/**
 * Builds the prompt catalog of `prompts` (the bridge's, in server order): the tools' prefix mode, per-server prefix
 * and separator, sanitized and shortened the same way; a name served twice keeps its first prompt.
 *
 * @internal
 */
export const makePromptNamer = (settings: Settings | undefined, servers: ReadonlyArray<string>) => {
  const mode = settings?.prefix ?? "auto"
  const separator = settings?.separator ?? "_"
  const prefixed = mode === "always" || (mode === "auto" && servers.length > 1)
  const known = new Set(servers)
  return (prompts: ReadonlyArray<McpBridge.BridgePrompt>): PromptCatalog => {
    const byName = new Map<string, ExposedPrompt>()
    for (const prompt of prompts) {
      if (!known.has(prompt.server)) continue
      const prefix = settings?.servers?.[prompt.server]?.prefix ?? prompt.server
      const name = shorten(sanitize(prefixed ? `${prefix}${separator}${prompt.name}` : prompt.name))
      if (byName.has(name)) continue
      const { qualifiedName: _q, server: _s, ...rest } = prompt
      byName.set(name, { name, server: prompt.server, prompt: prompt.name, definition: { ...rest, name } })
    }
    return { prompts: Array.from(byName.values()), byName }
  }
}
