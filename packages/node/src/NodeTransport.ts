/**
 * The Node transports: everything `McpTransport.layer()` opens (Streamable HTTP, SSE, in-memory), plus stdio servers
 * started as child processes.
 *
 * A stdio session is a whole process: the pool bounds how many there are, and closing the session's scope ends the
 * process (stdin closed, then SIGTERM, then SIGKILL); a frozen one is killed at once when the pool retires it. The
 * stdio transport is built on the SDK's message handling (see `internal/stdioTransport.ts`), and adds framing that
 * survives partial and garbage lines, a per-message size limit (`bridge.maxMessageBytes`) that fails only the request
 * it hits, and the server's stderr kept as a short tail with the values of its `env` scrubbed from the whole stream.
 * It probes the protocol era in place, so a session costs one process whatever the era. HTTP and SSE sessions fetch
 * over `node:http` and `node:https` with keep-alive agents rather than the global `fetch` (a third of a call's CPU
 * less; `fetch` in the options replaces it).
 *
 * @since 0.1.0
 */
import { BridgeConfig, McpSessionError, McpTransport } from "@mcp-bridge/core"
import { Effect, Layer, Redacted } from "effect"
import * as NodeFetch from "./internal/nodeFetch.ts"
import { StdioTransport } from "./internal/stdioTransport.ts"

/**
 * Options of `make` and `layer` (and of `createBridge`): those of `McpTransport.make` for HTTP, SSE and in-memory
 * servers, plus how much of a stdio server's stderr to keep. Without a `fetch`, HTTP sessions fetch over `node:http`
 * and `node:https` (the global `fetch` when `HTTP_PROXY` or `HTTPS_PROXY` is set).
 *
 * @since 0.1.0
 */
export interface Options extends McpTransport.Options {
  /** How much of a server's stderr to keep for error messages (after scrubbing). @default 4096 characters */
  readonly stderrTailBytes?: number | undefined
}

/**
 * The Node transport service: stdio for `command` entries, `McpTransport.make(options)` for the rest.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): McpTransport.McpTransport.Service => {
  // HTTP and SSE sessions fetch over `node:http` unless the options bring a `fetch` (see `internal/nodeFetch.ts`).
  const base = McpTransport.make({ ...options, fetch: options.fetch ?? NodeFetch.make() })
  const tailBytes = options.stderrTailBytes ?? 4096
  return {
    open: (server) => {
      const config = server.transport
      if (BridgeConfig.transportKind(config) !== "stdio" || !("command" in config)) return base.open(server)
      return Effect.try({
        try: (): McpTransport.OpenedTransport => {
          const secrets = config.env === undefined ? [] : Object.values(config.env).map(Redacted.value)
          const transport = new StdioTransport({
            command: config.command,
            args: config.args ?? [],
            env: McpTransport.revealSecrets(config.env) ?? {},
            cwd: config.cwd,
            maxMessageBytes: server.maxMessageBytes,
            stderrTailBytes: tailBytes,
            secrets
          })
          return {
            transport,
            kind: "stdio",
            get pid() {
              return transport.pid ?? undefined
            },
            stderrTail: () => transport.stderrTail(),
            // The session's scope ends the process itself: a session interrupted while it connects has a client
            // that never took the transport over, so `client.close()` alone would leave the child running.
            terminate: () => transport.close(),
            kill: () => transport.kill()
          }
        },
        catch: (error) =>
          new McpSessionError.McpSessionError({
            reason: new McpSessionError.ConnectFailed({
              server: server.name,
              message: `cannot start ${config.command}: ${String(error)}`
            })
          })
      })
    }
  }
}

/**
 * stdio, Streamable HTTP, SSE and in-memory transports: what a Node program gives `McpBridge.layer` (and what
 * `createBridge` uses).
 *
 * @example
 * ```ts
 * const Bridge = McpBridge.layer(config, { transport: NodeTransport.layer() })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<McpTransport.McpTransport> =>
  Layer.succeed(McpTransport.McpTransport, make(options))
