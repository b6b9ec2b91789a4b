/**
 * Opens the wire under an MCP session: Streamable HTTP, legacy HTTP+SSE, or an in-memory transport to a server in
 * the same process. stdio lives in `@mcp-bridge/node` (`NodeTransport.layer`), which extends this service, so that
 * this package stays runtime-neutral.
 *
 * Built on the official SDK's transports; the service is the seam where tests swap the wire for in-memory servers.
 *
 * @since 0.1.0
 */
import type { Transport } from "@modelcontextprotocol/client"
import { SSEClientTransport, SseError } from "@modelcontextprotocol/client"
import { Context, Duration, Effect, Layer } from "effect"
import * as McpAuth from "../auth/McpAuth.ts"
import type { ResolvedServer } from "../config/BridgeConfig.ts"
import { transportKind } from "../config/BridgeConfig.ts"
import { revealAll } from "../internal/secrets.ts"
import { BridgeHttpTransport } from "./internal/httpTransport.ts"
import * as SdkErrors from "./internal/sdkErrors.ts"

/**
 * Reveals a server's secret map (`env` or `headers`) for a transport that starts the process or sends the request:
 * the one place secrets leave their `Redacted` wrapper. For transports of other packages (e.g. stdio in
 * `@mcp-bridge/node`); never log what it returns.
 *
 * @since 0.1.0
 */
export const revealSecrets = revealAll
import { ConnectFailed, McpSessionError } from "../errors/McpSessionError.ts"

/**
 * A transport, not yet started, and how to end it.
 *
 * @since 0.1.0
 */
export interface OpenedTransport {
  readonly transport: Transport
  readonly kind: "stdio" | "http" | "sse" | "memory"
  /** The child process id (stdio). */
  readonly pid?: number | undefined
  /** The last lines the server wrote to stderr, secrets scrubbed (stdio). */
  readonly stderrTail?: (() => string) | undefined
  /**
   * Ends the server side of the session before the client closes (HTTP: `DELETE` of the `Mcp-Session-Id`, since a
   * bare close leaves the session open on the server).
   */
  readonly terminate?: (() => Promise<void>) | undefined
  /** Ends the server side at once, also when it is frozen (stdio: SIGKILL). The session then closes. */
  readonly kill?: (() => void) | undefined
}

/**
 * The JSON-RPC error code a transport answers a request with when the server's answer to it was over the size limit
 * (`bridge.maxMessageBytes`) and was dropped; its `data` carries `limitBytes`. The session reports it as the reason
 * `MessageTooLarge`.
 *
 * @since 0.1.0
 */
export const messageTooLargeCode: number = SdkErrors.messageTooLargeCode

/**
 * Connects an in-memory server: returns the client side of a linked transport pair whose other side a server is
 * already serving.
 *
 * @since 0.1.0
 */
export type MemoryConnect = () => Transport | Promise<Transport>

/**
 * The wire under the sessions: opens the transport of each new session. `McpBridge.layer` uses `layer()` unless told
 * otherwise; `NodeTransport.layer()` (in `@mcp-bridge/node`) adds stdio. Swap it in tests to reach in-memory servers.
 *
 * @since 0.1.0
 */
export class McpTransport
  extends Context.Service<McpTransport, McpTransport.Service>()("@mcp-bridge/core/McpTransport")
{}

/**
 * The type of the transport service, `McpTransport.Service`.
 *
 * @since 0.1.0
 */
export declare namespace McpTransport {
  /**
   * What a transport service does: `open` makes the transport of one new session, not yet started, or fails with an
   * `McpSessionError` (e.g. `ConnectFailed`). Implement it to reach servers over a wire of your own; `make` and
   * `NodeTransport.make` are the built-in ones.
   *
   * @since 0.1.0
   */
  export interface Service {
    /** Makes the transport of one new session of `server`; the session starts and closes it. */
    readonly open: (server: ResolvedServer) => Effect.Effect<OpenedTransport, McpSessionError>
  }
}

/**
 * Options of `make` and `layer` (passed on by `BridgeClient.make`, `NodeTransport.layer` and `createBridge`): the
 * in-memory servers to connect, and the `fetch` of HTTP and SSE transports.
 *
 * @since 0.1.0
 */
export interface Options {
  /** In-memory servers by server name (config entries with `"type": "memory"`). @default {} */
  readonly memory?: Readonly<Record<string, MemoryConnect>> | undefined
  /** `fetch` for HTTP and SSE transports (e.g. to add a dispatcher). @default globalThis.fetch */
  readonly fetch?: typeof globalThis.fetch | undefined
}

const connectFailed = (server: string, message: string) =>
  new McpSessionError({ reason: new ConnectFailed({ server, message }) })

// A legacy SSE session lives on its event stream: the server's answers come back on it, and a stream the EventSource
// reopens is a new session the server knows nothing of. So once the stream of a started session breaks, the session
// is closed, and calls waiting on it fail with `Closed` (and the pool replaces it) instead of waiting for their
// deadline. The SDK transport only reports the broken stream to `onerror`.
const closingOnStreamError = (sse: SSEClientTransport): Transport => {
  let started = false
  const transport: Transport = {
    start: async () => {
      await sse.start()
      started = true
    },
    send: (message) => sse.send(message),
    close: () => sse.close(),
    setProtocolVersion: (version) => sse.setProtocolVersion(version)
  }
  sse.onmessage = (message) => transport.onmessage?.(message)
  sse.onclose = () => transport.onclose?.()
  sse.onerror = (error) => {
    transport.onerror?.(error)
    if (started && error instanceof SseError) void sse.close()
  }
  return transport
}

/**
 * Opens HTTP, SSE and in-memory transports; `stdio` fails with a `ConnectFailed` that points at `@mcp-bridge/node`.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): McpTransport.Service => ({
  open: (server) =>
    // `fetch`: `options.fetch`, or for a server with `auth`, the OAuth fetch of the session's `CallerIdentity`.
    McpAuth.withFetch(server.name, server.transport, options.fetch, (fetch) => {
      const config = server.transport
      switch (transportKind(config)) {
        case "memory": {
          const connect = options.memory?.[server.name]
          if (connect === undefined) {
            return Effect.fail(connectFailed(
              server.name,
              `no in-memory server is registered for "${server.name}" (McpTransport.layer({ memory }))`
            ))
          }
          return Effect.tryPromise({
            try: async (): Promise<OpenedTransport> => ({ transport: await connect(), kind: "memory" }),
            catch: (error) => connectFailed(server.name, `in-memory connect failed: ${String(error)}`)
          })
        }
        case "http": {
          if (!("url" in config) || config.type === "sse") return Effect.die("unreachable")
          const headers = revealAll(config.headers)
          const transport = new BridgeHttpTransport(new URL(config.url), {
            ...(headers ? { requestInit: { headers } } : {}),
            ...(fetch ? { fetch } : {})
          })
          const terminateTimeout = Math.min(Duration.toMillis(server.connectTimeout), 5_000)
          return Effect.succeed<OpenedTransport>({
            transport,
            kind: "http",
            terminate: () =>
              transport.sessionId === undefined
                ? Promise.resolve()
                : Promise.race([
                  transport.terminateSession().catch(() => undefined),
                  new Promise<void>((resolve) => {
                    // Not holding the process open for it: `unref` where the runtime's timers have one (Node, Bun,
                    // Deno), no type of any runtime assumed.
                    const timer: unknown = setTimeout(resolve, terminateTimeout)
                    ;(timer as { unref?: () => void }).unref?.()
                  })
                ])
          })
        }
        case "sse": {
          if (!("url" in config) || config.type !== "sse") return Effect.die("unreachable")
          const headers = revealAll(config.headers)
          const transport = new SSEClientTransport(new URL(config.url), {
            ...(headers ? { requestInit: { headers } } : {}),
            ...(fetch ? { fetch } : {})
          })
          return Effect.succeed<OpenedTransport>({ transport: closingOnStreamError(transport), kind: "sse" })
        }
        case "stdio":
          return Effect.fail(connectFailed(
            server.name,
            "stdio servers need the Node transport: createBridge or NodeTransport.layer() from @mcp-bridge/node"
          ))
      }
    })
})

/**
 * HTTP, SSE and in-memory transports.
 *
 * @example
 * ```ts
 * McpTransport.layer({ memory: { calc: () => TestServer.make(spec).connect() } })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<McpTransport> => Layer.succeed(McpTransport, make(options))
