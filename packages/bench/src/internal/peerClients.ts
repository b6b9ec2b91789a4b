/**
 * The MCP clients of the `peers` section, each behind the same small shape: open a warm session on an endpoint, call
 * `echo` on it, close it. Every client is used the way its documentation shows, with its defaults; the bridge's own
 * adapter is in `bridgePeer.ts`.
 *
 * mcp-use sends anonymous usage telemetry (PostHog, Scarf) unless `MCP_USE_ANONYMIZED_TELEMETRY=false` is set when
 * its telemetry singleton is made: `openMcpUse` sets it before importing the package (imported lazily for that
 * reason), and the section counts every non-loopback request the process makes (see `guardNetwork`).
 */
import { createMCPClient } from "@ai-sdk/mcp"
import { StdioMCPTransport } from "@ai-sdk/mcp/mcp-stdio"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Client as ClientV2, StreamableHTTPClientTransport as HttpTransportV2 } from "@modelcontextprotocol/client"
import { StdioClientTransport as StdioTransportV2 } from "@modelcontextprotocol/client/stdio"
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport as StdioTransportV1 } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport as HttpTransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Layer, ManagedRuntime } from "effect"
import { McpClient, McpProtocol } from "effect/ai"
import { FetchHttpClient } from "effect/http"
import { ChildProcess } from "effect/process"
import { subscribe, unsubscribe } from "node:diagnostics_channel"

/** Where the server is: a command to spawn (a new process per session), or a Streamable HTTP URL. */
export type Endpoint =
  | { readonly kind: "stdio"; readonly command: string; readonly args: ReadonlyArray<string> }
  | { readonly kind: "http"; readonly url: string }

/** A warm session of one client. `call` resolves `false` for an `isError` result. */
export interface PeerSession {
  readonly call: (args: Readonly<Record<string, unknown>>) => Promise<boolean>
  /** the protocol version the session speaks, where the client tells */
  readonly protocol: string | undefined
  readonly close: () => Promise<void>
}

const clientInfo = { name: "mcp-bridge-bench", version: "0.1.0" }

const isOk = (result: unknown): boolean => (result as { isError?: unknown }).isError !== true

const quietly = async (f: () => Promise<unknown>): Promise<void> => {
  await f().catch(() => undefined)
}

/** The official SDK v2 client (`@modelcontextprotocol/client` 2.4) with its defaults (2025-era handshake). */
export const openSdkV2 = async (endpoint: Endpoint): Promise<PeerSession> => {
  const client = new ClientV2(clientInfo)
  const transport = endpoint.kind === "stdio"
    ? new StdioTransportV2({ command: endpoint.command, args: [...endpoint.args], stderr: "ignore" })
    : new HttpTransportV2(new URL(endpoint.url))
  await client.connect(transport)
  return {
    call: async (args) => isOk(await client.callTool({ name: "echo", arguments: { ...args } })),
    protocol: client.getNegotiatedProtocolVersion(),
    close: async () => {
      if (transport instanceof HttpTransportV2) await quietly(() => transport.terminateSession())
      await quietly(() => client.close())
    }
  }
}

/** The official SDK v1 client (`@modelcontextprotocol/sdk` 1.32). */
export const openSdkV1 = async (endpoint: Endpoint): Promise<PeerSession> => {
  const client = new ClientV1(clientInfo)
  const transport = endpoint.kind === "stdio"
    ? new StdioTransportV1({ command: endpoint.command, args: [...endpoint.args], stderr: "ignore" })
    : new HttpTransportV1(new URL(endpoint.url))
  await client.connect(transport)
  return {
    call: async (args) => isOk(await client.callTool({ name: "echo", arguments: { ...args } })),
    protocol: undefined,
    close: async () => {
      if (transport instanceof HttpTransportV1) await quietly(() => transport.terminateSession())
      await quietly(() => client.close())
    }
  }
}

/** Vercel's `@ai-sdk/mcp` 2.0 client: its stdio transport, or its built-in HTTP transport (`type: "http"`). */
export const openAiSdk = async (endpoint: Endpoint): Promise<PeerSession> => {
  const client = await createMCPClient({
    clientName: clientInfo.name,
    version: clientInfo.version,
    transport: endpoint.kind === "stdio"
      ? new StdioMCPTransport({ command: endpoint.command, args: [...endpoint.args], stderr: "ignore" })
      : { type: "http", url: endpoint.url }
  })
  return {
    call: async (args) => isOk(await client.callTool({ name: "echo", arguments: { ...args } })),
    protocol: client.initializeResult.protocolVersion,
    close: () => client.close()
  }
}

interface McpUseSession {
  readonly callTool: (name: string, args?: Record<string, unknown>) => Promise<unknown>
}
interface McpUseClient {
  readonly createSession: (server: string) => Promise<McpUseSession>
  readonly close: () => Promise<void>
}

/**
 * mcp-use 1.34 (`mcp-use/client`, its `MCPClient` and `MCPSession`, on its own copy of the SDK v1), telemetry off.
 * Its HTTP connector tries Streamable HTTP first (SSE only as a fallback, never needed here).
 */
export const openMcpUse = async (endpoint: Endpoint): Promise<PeerSession> => {
  process.env.MCP_USE_ANONYMIZED_TELEMETRY = "false"
  const { MCPClient } = await import("mcp-use/client")
  const server = endpoint.kind === "stdio"
    ? { command: endpoint.command, args: [...endpoint.args] }
    : { url: endpoint.url }
  const client = new MCPClient({ mcpServers: { s: server } }) as unknown as McpUseClient
  const session = await client.createSession("s")
  return {
    call: async (args) => isOk(await session.callTool("echo", { ...args })),
    protocol: undefined,
    close: () => client.close()
  }
}

/**
 * Effect 4.1's `effect/ai` `McpClient` (experimental) on protocol 2025-11-25: over stdio with the Node child-process
 * spawner, over HTTP with the fetch client. Called through a `ManagedRuntime`, as a Promise program would.
 */
export const openEffectMcp = async (endpoint: Endpoint): Promise<PeerSession> => {
  const options = { name: clientInfo.name, version: clientInfo.version, protocol: McpProtocol.v2025_11_25 }
  const layer = endpoint.kind === "stdio"
    ? McpClient.layerStdio({ ...options, command: ChildProcess.make(endpoint.command, [...endpoint.args]) }).pipe(
      Layer.provide(NodeServices.layer)
    )
    : McpClient.layerHttp({ ...options, url: endpoint.url }).pipe(Layer.provide(FetchHttpClient.layer))
  const runtime = ManagedRuntime.make(layer)
  try {
    const client = await runtime.runPromise(McpClient.McpClient)
    const tools = await runtime.runPromise(client.listTools())
    const tool = tools.find((t) => t.name === "echo")
    if (tool === undefined) throw new Error("effect/ai McpClient: no echo tool")
    return {
      call: async (args) =>
        isOk(await runtime.runPromise(client.callTool({ tool, arguments: { ...args } }) as Effect.Effect<unknown>)),
      protocol: client.protocolVersion,
      close: () => runtime.dispose()
    }
  } catch (error) {
    await runtime.dispose()
    throw error
  }
}

/** The naive pattern: a new SDK v2 client and session (over stdio: a new process) for one call, closed after it. */
export const naiveCall = async (endpoint: Endpoint, args: Readonly<Record<string, unknown>>): Promise<boolean> => {
  const session = await openSdkV2(endpoint)
  try {
    return await session.call(args)
  } finally {
    await session.close()
  }
}

/**
 * Counts HTTP requests (fetch and `node:http`) to any host but the loopback from now on; `stop` ends the count and
 * returns the hosts seen. The peers section uses it to show that nothing phoned home during the run.
 */
export const guardNetwork = (): { readonly stop: () => ReadonlyArray<string> } => {
  const seen: Array<string> = []
  const loopback = (host: string) => /^(127\.|\[?::1\]?|localhost)/.test(host)
  const onUndici = (message: unknown) => {
    const { request } = message as { request: { origin?: string } }
    const host = request.origin === undefined ? "" : new URL(request.origin).hostname
    if (!loopback(host)) seen.push(request.origin ?? "?")
  }
  const onHttp = (message: unknown) => {
    const { request } = message as { request: { host?: string; getHeader?: (name: string) => unknown } }
    const host = String(request.host ?? request.getHeader?.("host") ?? "")
    if (!loopback(host)) seen.push(host)
  }
  subscribe("undici:request:create", onUndici)
  subscribe("http.client.request.start", onHttp)
  return {
    stop: () => {
      unsubscribe("undici:request:create", onUndici)
      unsubscribe("http.client.request.start", onHttp)
      return [...seen]
    }
  }
}
