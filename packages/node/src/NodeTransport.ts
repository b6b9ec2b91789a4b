/**
 * The Node transports: everything `McpTransport.layer()` opens, plus stdio servers started as child processes with the
 * official SDK's `StdioClientTransport`.
 *
 * A stdio session is a whole process: the pool bounds how many there are, and closing the session's scope ends the
 * process (stdin closed, then SIGTERM, then SIGKILL). The server's stderr is kept as a short tail, with the values of
 * its `env` secrets scrubbed, and attached to connect and close errors.
 *
 * @since 0.1.0
 */
import { BridgeConfig, McpSessionError, McpTransport } from "@mcp-bridge/core"
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/client/stdio"
import { Effect, Layer, Redacted } from "effect"

/**
 * @since 0.1.0
 */
export interface Options extends McpTransport.Options {
  /** How much of a server's stderr to keep for error messages. @default 4096 bytes */
  readonly stderrTailBytes?: number | undefined
}

const scrub = (text: string, secrets: ReadonlyArray<string>) =>
  secrets.reduce((acc, secret) => secret.length >= 4 ? acc.split(secret).join("<redacted>") : acc, text)

/**
 * @since 0.1.0
 */
export const make = (options: Options = {}): McpTransport.McpTransport.Service => {
  const base = McpTransport.make(options)
  const tailBytes = options.stderrTailBytes ?? 4096
  return {
    open: (server) => {
      const config = server.transport
      if (BridgeConfig.transportKind(config) !== "stdio" || !("command" in config)) return base.open(server)
      return Effect.try({
        try: (): McpTransport.OpenedTransport => {
          const secrets = config.env === undefined ? [] : Object.values(config.env).map(Redacted.value)
          const transport = new StdioClientTransport({
            command: config.command,
            args: [...(config.args ?? [])],
            env: { ...getDefaultEnvironment(), ...McpTransport.revealSecrets(config.env) },
            ...(config.cwd === undefined ? {} : { cwd: config.cwd }),
            stderr: "pipe"
          })
          let tail = ""
          const start = transport.start.bind(transport)
          // The stderr stream exists once the process is spawned.
          transport.start = async () => {
            await start()
            transport.stderr?.on("data", (chunk: Buffer) => {
              tail = (tail + chunk.toString("utf8")).slice(-tailBytes)
            })
          }
          return {
            transport,
            kind: "stdio",
            get pid() {
              return transport.pid ?? undefined
            },
            stderrTail: () => scrub(tail.trim(), secrets)
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
 * stdio, Streamable HTTP, SSE and in-memory transports.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<McpTransport.McpTransport> =>
  Layer.succeed(McpTransport.McpTransport, make(options))
