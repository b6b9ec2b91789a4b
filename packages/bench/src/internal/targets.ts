/**
 * The servers a bench section talks to, one per transport, and the three ways of calling them: a warm raw SDK
 * client, the naive pattern (a new session per call), and the bridge.
 */
import type { BridgeClient } from "@mcp-bridge/core"
import { createBridge } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import type { CallToolResult, Transport } from "@modelcontextprotocol/client"
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio"

export type TransportName = "memory" | "stdio" | "http"

export const transportNames: ReadonlyArray<TransportName> = ["memory", "stdio", "http"]

/** A running server and how to reach it. */
export interface Target {
  readonly transport: TransportName
  /** a new, unconnected client-side transport of a new session */
  readonly newTransport: () => Promise<Transport>
  /** a bridge over this server, named `s` */
  readonly bridge: (config?: { readonly bridge?: Record<string, unknown> }) => Promise<BridgeClient.BridgeClient>
  readonly close: () => Promise<void>
}

/** The server the overhead is measured against: one zero-latency tool. */
export const echoSpec: TestServer.TestServerSpec = {
  name: "bench",
  tools: [{ name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } }]
}

/** Starts `spec` behind `transport`. */
export const startTarget = async (transport: TransportName, spec: TestServer.TestServerSpec): Promise<Target> => {
  switch (transport) {
    case "memory": {
      const server = TestServer.make(spec)
      return {
        transport,
        newTransport: () => server.connect(),
        bridge: (extra = {}) =>
          createBridge({ mcpServers: { s: { type: "memory" } }, ...extra }, { memory: { s: server.connect } }),
        close: () => server.close()
      }
    }
    case "stdio": {
      const { args, command } = TestServer.stdioCommand(spec)
      return {
        transport,
        newTransport: async () => new StdioClientTransport({ command, args: [...args], stderr: "ignore" }),
        bridge: (extra = {}) => createBridge({ mcpServers: { s: { command, args: [...args] } }, ...extra }),
        close: async () => {}
      }
    }
    case "http": {
      const server = await TestServer.startHttp(spec, { mode: "stateful" })
      return {
        transport,
        newTransport: async () => new StreamableHTTPClientTransport(new URL(server.url)),
        bridge: (extra = {}) => createBridge({ mcpServers: { s: { url: server.url } }, ...extra }),
        close: () => server.close()
      }
    }
  }
}

/** A new official SDK client, negotiating the protocol era like the bridge does. */
export const newClient = (): Client =>
  new Client({ name: "mcp-bridge-bench", version: "0.1.0" }, { versionNegotiation: { mode: "auto" } })

/** A connected SDK client on a new session. */
export const connectClient = async (target: Target): Promise<Client> => {
  const client = newClient()
  await client.connect(await target.newTransport())
  return client
}

export const callOk = (result: CallToolResult | unknown): boolean =>
  (result as Partial<CallToolResult>).isError !== true

/** The naive pattern: a new client and session for one call, closed after it. */
export const naiveCall = async (
  target: Target,
  name: string,
  args: Record<string, unknown>
): Promise<{ result: CallToolResult; connectMillis: number; callMillis: number }> => {
  const started = performance.now()
  const client = newClient()
  try {
    await client.connect(await target.newTransport())
    const connected = performance.now()
    const result = await client.callTool({ name, arguments: args }) as CallToolResult
    return { result, connectMillis: connected - started, callMillis: performance.now() - connected }
  } finally {
    await client.close().catch(() => undefined)
  }
}
