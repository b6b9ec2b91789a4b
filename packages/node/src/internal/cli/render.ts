/**
 * What the CLI prints: typed errors (tag, reason tag, message and structured fields), tool annotations, call results,
 * and the scrubbing of the configuration's secrets from every line.
 *
 * @internal
 */
import type { BridgeConfig, McpBridge } from "@mcp-bridge/core"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Redacted } from "effect"

// -----------------------------------------------------------------------------
// Secrets
// -----------------------------------------------------------------------------

const minSecretLength = 4

const collect = (value: unknown, into: Set<string>, depth = 0): void => {
  if (depth > 6 || value === null || typeof value !== "object") return
  if (Redacted.isRedacted(value)) {
    const secret = Redacted.value(value)
    if (typeof secret === "string" && secret.length >= minSecretLength) into.add(secret)
    return
  }
  for (const nested of Object.values(value)) collect(nested, into, depth + 1)
}

/**
 * Every secret of the configuration: the `Redacted` values (stdio `env`, HTTP `headers`, OAuth secrets) and what a
 * URL carries (its password and query values), longest first.
 *
 * @internal
 */
export const secretsOf = (config: BridgeConfig.BridgeConfig.Service): ReadonlyArray<string> => {
  const secrets = new Set<string>()
  for (const server of config.servers.values()) {
    collect(server.transport, secrets)
    const url = "url" in server.transport ? URL.parse(server.transport.url) : null
    if (url !== null) {
      for (const part of [url.password, url.username, ...url.searchParams.values()]) {
        if (part.length >= minSecretLength) secrets.add(part)
      }
    }
  }
  return [...secrets].sort((a, b) => b.length - a.length)
}

/**
 * Replaces every occurrence of a secret in `text` with `<redacted>`.
 *
 * @internal
 */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string => {
  let out = text
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join("<redacted>")
  return out
}

/**
 * Where a server is, without anything secret: the command (not its arguments, which may hold a token) of a stdio
 * server, the origin and path (no credentials, no query) of an HTTP one.
 *
 * @internal
 */
export const targetOf = (transport: BridgeConfig.ResolvedServer["transport"]): string => {
  if ("command" in transport) return transport.command.split(/[\\/]/).pop() ?? transport.command
  if ("url" in transport) {
    const url = URL.parse(transport.url)
    return url === null ? "" : `${url.origin}${url.pathname}`
  }
  return ""
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * A typed error as plain JSON: `{ _tag, reason: { _tag, ...fields }, message }`.
 *
 * @internal
 */
export interface ErrorJson {
  readonly _tag: string
  readonly reason?: Readonly<Record<string, unknown>>
  readonly message: string
}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

/**
 * The typed error of a failure (any of the bridge's errors: a `_tag` and a tagged `reason`).
 *
 * @internal
 */
export const errorJson = (error: unknown): ErrorJson => {
  if (isObject(error) && typeof error._tag === "string") {
    const message = typeof error.message === "string" ? error.message : String(error)
    const reason = isObject(error.reason) && typeof error.reason._tag === "string"
      ? { ...error.reason, _tag: error.reason._tag }
      : undefined
    return reason === undefined ? { _tag: error._tag, message } : { _tag: error._tag, reason, message }
  }
  return { _tag: "Error", message: error instanceof Error ? error.message : String(error) }
}

/**
 * `McpSessionError/ConnectFailed`.
 *
 * @internal
 */
export const errorTag = (error: ErrorJson): string =>
  error.reason === undefined ? error._tag : `${error._tag}/${String(error.reason._tag)}`

// -----------------------------------------------------------------------------
// Tools
// -----------------------------------------------------------------------------

/**
 * The tool's hints as short words: each hint set to true by name (`readOnly`, `destructive`, `idempotent`,
 * `openWorld`), and `!destructive` / `!openWorld` for the two that MCP assumes true unless the server says false.
 *
 * @internal
 */
export const hintsOf = (annotations: McpBridge.BridgeTool["annotations"]): ReadonlyArray<string> => {
  if (annotations === undefined) return []
  const hints: Array<string> = []
  if (annotations.readOnlyHint === true) hints.push("readOnly")
  if (annotations.destructiveHint === true) hints.push("destructive")
  else if (annotations.destructiveHint === false && annotations.readOnlyHint !== true) hints.push("!destructive")
  if (annotations.idempotentHint === true) hints.push("idempotent")
  if (annotations.openWorldHint === true) hints.push("openWorld")
  else if (annotations.openWorldHint === false) hints.push("!openWorld")
  return hints
}

/**
 * The first line of a description, cut to `max` characters.
 *
 * @internal
 */
export const shortDescription = (description: string | undefined, max = 80): string => {
  const line = (description ?? "").trim().split(/\r?\n/)[0]!.trim()
  return line.length <= max ? line : `${line.slice(0, max - 1).trimEnd()}…`
}

/**
 * A tool as JSON: its qualified name, server, name, description, hints and input schema.
 *
 * @internal
 */
export const toolJson = (tool: McpBridge.BridgeTool) => ({
  name: tool.qualifiedName,
  server: tool.server,
  tool: tool.name,
  ...(tool.definition.title === undefined ? {} : { title: tool.definition.title }),
  description: tool.description ?? null,
  annotations: {
    readOnlyHint: tool.annotations?.readOnlyHint ?? null,
    destructiveHint: tool.annotations?.destructiveHint ?? null,
    idempotentHint: tool.annotations?.idempotentHint ?? null,
    openWorldHint: tool.annotations?.openWorldHint ?? null
  },
  inputSchema: tool.inputSchema
})

// -----------------------------------------------------------------------------
// Results
// -----------------------------------------------------------------------------

const size = (base64: unknown) => {
  const bytes = typeof base64 === "string" ? Math.floor(base64.length * 3 / 4) : 0
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} kB`
}

const blockText = (block: Record<string, unknown>): string => {
  switch (block.type) {
    case "text":
      return String(block.text)
    case "image":
    case "audio":
      return `[${block.type} ${String(block.mimeType)}, ${size(block.data)}]`
    case "resource_link":
      return `[resource link ${String(block.uri)}${typeof block.name === "string" ? ` (${block.name})` : ""}]`
    case "resource": {
      const resource = isObject(block.resource) ? block.resource : {}
      const head = `[resource ${String(resource.uri)}${
        typeof resource.mimeType === "string" ? `, ${resource.mimeType}` : ""
      }]`
      return typeof resource.text === "string" ? `${head}\n${resource.text}` : `${head} ${size(resource.blob)}`
    }
    default:
      return JSON.stringify(block)
  }
}

/**
 * A call result as text: each content block (text as it is, binary blocks as a one-line summary), then the
 * structured content as indented JSON.
 *
 * @internal
 */
export const resultText = (result: CallToolResult): string => {
  const parts = (result.content ?? []).map((block) => blockText(block as Record<string, unknown>))
  if (result.structuredContent !== undefined) {
    parts.push(`structuredContent:\n${JSON.stringify(result.structuredContent, null, 2)}`)
  }
  return parts.join("\n")
}

/**
 * Pads the cells of each column to the widest one (the last column is left as it is).
 *
 * @internal
 */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>, indent = "  "): Array<string> => {
  const widths: Array<number> = []
  for (const row of rows) row.forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, cell.length))
  return rows.map((row) =>
    indent + row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ").trimEnd()
  )
}

/**
 * Indents every line after the first.
 *
 * @internal
 */
export const hang = (text: string, indent: string): string => text.split("\n").join(`\n${indent}`)
