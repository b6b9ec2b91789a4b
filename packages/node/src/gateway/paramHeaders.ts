/**
 * SEP-2243 `Mcp-Param-*` headers of a 2026-07-28 `tools/call` checked against the served tool's `x-mcp-header`
 * declarations, as a server must: for each declared argument the body carries, the header must be present and
 * decode (plain, or the `=?base64?…?=` sentinel with canonical Base64 of UTF-8) to the same value; otherwise the
 * request is refused with 400 and JSON-RPC -32020 (HeaderMismatch) before it reaches the bridge.
 *
 * The SDK runs this check only for the tools of an `McpServer` (its helpers are not exported); the gateway serves the
 * low-level `Server` over upstream definitions, so it checks here, against the definition it serves. The upstream
 * gets headers the bridge's own client mirrors from the arguments, so a mismatch would never reach it.
 *
 * @internal
 */
import type { Tool } from "@modelcontextprotocol/server"

interface Declaration {
  readonly path: ReadonlyArray<string>
  readonly header: string
  readonly type: string | undefined
}

const RFC9110_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const BASE64_CANONICAL = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const CANONICAL_DECIMAL = /^-?\d+(\.\d+)?$/
const SENTINEL_PREFIX = "=?base64?"
const SENTINEL_SUFFIX = "?="

// The declarations reachable through `properties` chains (where the spec allows them), per served definition.
const scanned = new WeakMap<object, ReadonlyArray<Declaration>>()

const scan = (schema: unknown): ReadonlyArray<Declaration> => {
  const found: Array<Declaration> = []
  const visit = (node: unknown, path: ReadonlyArray<string>) => {
    if (typeof node !== "object" || node === null) return
    const s = node as Record<string, unknown>
    const header = s["x-mcp-header"]
    if (path.length > 0 && typeof header === "string" && RFC9110_TOKEN.test(header)) {
      found.push({ path, header, type: typeof s["type"] === "string" ? s["type"] : undefined })
    }
    const properties = s["properties"]
    if (typeof properties === "object" && properties !== null) {
      for (const [key, child] of Object.entries(properties)) visit(child, [...path, key])
    }
  }
  visit(schema, [])
  return found
}

const declarationsOf = (tool: Tool): ReadonlyArray<Declaration> => {
  let declarations = scanned.get(tool)
  if (declarations === undefined) {
    declarations = JSON.stringify(tool.inputSchema ?? {}).includes("\"x-mcp-header\"") ? scan(tool.inputSchema) : []
    scanned.set(tool, declarations)
  }
  return declarations
}

const valueAt = (root: unknown, path: ReadonlyArray<string>): unknown => {
  let node = root
  for (const key of path) {
    if (typeof node !== "object" || node === null) return undefined
    node = (node as Record<string, unknown>)[key]
  }
  return node
}

// The spec's conversion of an argument to header text (`undefined`: no header is expected for it).
const asText = (value: unknown): string | undefined => {
  if (typeof value === "string") return value
  if (typeof value === "boolean") return value ? "true" : "false"
  if (typeof value === "number") {
    if (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value))) return undefined
    return String(value)
  }
  return undefined
}

const decode = (value: string): string | undefined => {
  if (!(value.startsWith(SENTINEL_PREFIX) && value.endsWith(SENTINEL_SUFFIX))) return value
  const b64 = value.slice(SENTINEL_PREFIX.length, value.length - SENTINEL_SUFFIX.length)
  if (!BASE64_CANONICAL.test(b64)) return undefined
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(b64, "base64"))
  } catch {
    return undefined
  }
}

/** Why the headers of a call of `tool` with `args` disagree with its body, if they do. @internal */
export const mismatch = (
  tool: Tool,
  args: unknown,
  headers: Headers
): { readonly header: string; readonly detail: string } | undefined => {
  for (const declaration of declarationsOf(tool)) {
    const raw = valueAt(args, declaration.path)
    if (raw === undefined || raw === null) continue
    const body = asText(raw)
    if (body === undefined) continue
    const header = `Mcp-Param-${declaration.header}`
    const name = declaration.path.join(".")
    const value = headers.get(header)
    if (value === null) {
      return { header, detail: `the body carries ${name}=${JSON.stringify(raw)} but the ${header} header is absent` }
    }
    const decoded = decode(value)
    if (decoded === undefined) {
      return { header, detail: `the ${header} header carries an invalid Base64 sentinel value` }
    }
    const numeric = (declaration.type === "integer" || declaration.type === "number") && typeof raw === "number" &&
      CANONICAL_DECIMAL.test(decoded)
    if (numeric ? Number(decoded) !== raw : decoded !== body) {
      return {
        header,
        detail: `the ${header} header decodes to ${JSON.stringify(decoded)} but the body carries ${name}=${
          JSON.stringify(raw)
        }`
      }
    }
  }
  return undefined
}

/** The params of a JSON-RPC `tools/call` request body, if it is one. @internal */
export const toolsCall = (
  body: unknown
): { readonly id: unknown; readonly name: string; readonly arguments: unknown } | undefined => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined
  const message = body as { readonly method?: unknown; readonly id?: unknown; readonly params?: unknown }
  if (message.method !== "tools/call" || typeof message.params !== "object" || message.params === null) return undefined
  const params = message.params as { readonly name?: unknown; readonly arguments?: unknown }
  return typeof params.name === "string"
    ? { id: message.id, name: params.name, arguments: params.arguments }
    : undefined
}

/** The 400 / -32020 answer to a request whose headers disagree with its body. @internal */
export const refusal = (id: unknown, found: { readonly header: string; readonly detail: string }): Response =>
  Response.json({
    jsonrpc: "2.0",
    id: typeof id === "string" || typeof id === "number" ? id : null,
    error: {
      code: -32020,
      message: `Bad Request: the request headers and body disagree: ${found.detail}`,
      data: { mismatch: { header: found.header, body: found.detail } }
    }
  }, { status: 400 })
