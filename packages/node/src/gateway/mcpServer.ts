/**
 * The gateway's MCP server: a cheap factory of the official SDK v2 low-level `Server`, one instance per 2026-07-28
 * request, per 2025-era session, or per stdio connection, each answering from the same backend (the bridge).
 *
 * `tools/list` serves the catalog (see `naming.ts`) the caller may see; `tools/call` resolves the served name to a
 * server and tool and runs the bridge's whole pipeline under the downstream request's `AbortSignal` (closing the
 * stream or `notifications/cancelled` cancels the upstream call), forwarding the upstream's progress with the
 * downstream client's own `progressToken`. `logging/setLevel` is answered by the SDK per instance and never reaches
 * an upstream; `ping` and `server/discover` are the SDK's.
 *
 * @internal
 */
import type { AuthInfo, CallToolResult, Progress, ServerCapabilities } from "@modelcontextprotocol/server"
import { ProtocolError, ProtocolErrorCode, Server } from "@modelcontextprotocol/server"
import type { Catalog, Exposed } from "./naming.ts"

/** What the MCP servers of the gateway answer from: the bridge, seen through the naming. @internal */
export interface Backend {
  /** The tools `principal` may see on `view` (`undefined`: the whole gateway; else a virtual server's name). */
  readonly catalog: (principal: string | undefined, view: string | undefined) => Promise<Catalog>
  /** The catalog a call routes with: the last one built (a call naming a tool it lacks rebuilds it once). */
  readonly routing: (principal: string | undefined, view: string | undefined) => Promise<Catalog>
  /** One call through the bridge's pipeline: resolves with the result, or a tool error result for a failed call. */
  readonly call: (
    tool: Exposed,
    args: Record<string, unknown>,
    options: {
      readonly principal: string | undefined
      readonly signal: AbortSignal
      readonly meta: Record<string, unknown> | undefined
      readonly onProgress: ((progress: Progress) => void) | undefined
    }
  ) => Promise<CallToolResult>
}

/** @internal */
export interface Info {
  readonly name: string
  readonly version: string
  readonly instructions?: string | undefined
}

const capabilities: ServerCapabilities = { tools: { listChanged: true }, logging: {} }

/** The principal a request was authenticated as (`AuthInfo.clientId`), if any. @internal */
export const principalOf = (authInfo: AuthInfo | undefined): string | undefined => authInfo?.clientId

// What of the downstream request's `_meta` goes upstream: everything but its progress token (the bridge asks for
// progress with its own) and the protocol's own envelope keys (the upstream session sends its own).
const forwardedMeta = (meta: Record<string, unknown> | undefined): Record<string, unknown> | undefined => {
  if (meta === undefined) return undefined
  let out: Record<string, unknown> | undefined
  for (const key in meta) {
    if (key === "progressToken" || key.startsWith("io.modelcontextprotocol/")) continue
    ;(out ??= {})[key] = meta[key]
  }
  return out
}

/**
 * A factory of gateway servers over `backend`, for `view` (a virtual server's name, or `undefined` for the whole
 * gateway). Each call builds one `Server` with its handlers: a handful of closures, no I/O.
 *
 * @internal
 */
export const makeFactory =
  (backend: Backend, info: Info, view: string | undefined) =>
  (context: { readonly authInfo?: AuthInfo | undefined } = {}): Server => {
    const principal = principalOf(context.authInfo)
    const server = new Server(
      { name: info.name, version: info.version },
      { capabilities, ...(info.instructions === undefined ? {} : { instructions: info.instructions }) }
    )
    server.setRequestHandler("tools/list", async () => {
      const catalog = await backend.catalog(principal, view)
      return { tools: catalog.tools.map((t) => t.definition) }
    })
    server.setRequestHandler("tools/call", async (request, ctx) => {
      const { name, arguments: args = {}, _meta } = request.params
      const authInfo = ctx.http?.authInfo ?? context.authInfo
      const caller = principalOf(authInfo)
      const catalog = await backend.catalog(caller, view)
      const tool = catalog.byName.get(name)
      if (tool === undefined) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${name}`)
      const progressToken = _meta?.progressToken
      const onProgress = progressToken === undefined
        ? undefined
        : (progress: Progress) => {
          ctx.mcpReq.notify({ method: "notifications/progress", params: { ...progress, progressToken } }).catch(
            () => undefined
          )
        }
      const result = await backend.call(tool, args as Record<string, unknown>, {
        principal: caller,
        signal: ctx.mcpReq.signal,
        meta: forwardedMeta(_meta as Record<string, unknown> | undefined),
        onProgress
      })
      return server.projectCallToolResult(result, tool.definition.outputSchema)
    })
    return server
  }
