/**
 * The Promise facade for Node: `createBridge(config)` is `BridgeClient.make` of `@mcp-bridge/core` over the Node
 * transport (`NodeTransport.layer`), so that one install gives stdio servers (child processes), Streamable HTTP,
 * legacy SSE and in-memory servers. In an app that runs OpenTelemetry, the bridge's spans and metrics go to the app's
 * global providers (`NodeOtel`) with no wiring.
 *
 * @since 0.1.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import { BridgeClient, McpAuth } from "@mcp-bridge/core"
import { Effect, Layer } from "effect"
import * as ConfigFile from "./internal/cli/configFile.ts"
import * as NodeOtel from "./NodeOtel.ts"
import * as NodeTransport from "./NodeTransport.ts"

/**
 * Options of {@link createBridge}: those of `McpBridge.layer` (pool, cache, coalescing, throttle, resilience,
 * telemetry), plus those of the Node transport (`memory` servers, `fetch`, `stderrTailBytes`), which are ignored when
 * `transport` replaces it.
 *
 * @since 0.1.0
 */
export interface Options extends BridgeClient.Options, NodeTransport.Options {
  /**
   * The bridge's telemetry in the app's OpenTelemetry (see `NodeOtel`): when the app has registered a global tracer
   * provider or meter provider before `createBridge` (the OpenTelemetry JS SDK, auto-instrumentation), the bridge's
   * spans go to the tracer provider as children of the span active where each call is made, the server receives that
   * trace's `traceparent` (and the app's `tracestate`) in `_meta`, and the bridge's metrics join the meter provider's
   * readers. With `production`, the preset's own OTLP export is then off (the app's SDK exports). Without a
   * registered provider nothing is installed, at no cost. Off as well when `telemetry` is `false` or `observability`
   * is given.
   *
   * @default true
   */
  readonly openTelemetry?: boolean | undefined
}

/**
 * Starts a bridge over every transport Node has: stdio (`command`), Streamable HTTP (`url`), legacy SSE
 * (`"type": "sse"`) and in-memory servers (`"type": "memory"`, given in `options.memory`). Rejects with a
 * `BridgeConfigError` when the configuration is invalid. `config` is the configuration object, or the path of a
 * configuration file (Claude Desktop, Claude Code or Cursor: its `mcpServers` and `bridge` are read, as the CLI
 * reads them); a file that cannot be read or parsed is a `BridgeConfigError` too. Calls reject with the bridge's typed errors
 * (`McpBridgeError`, `McpSessionError`, `ConnectionPoolError`, `ThrottlerError`, `ResilienceError`), whose `_tag`
 * and `reason` say what went wrong. `close()` ends every session and child process.
 *
 * @example
 * ```ts
 * import { createBridge } from "@mcp-bridge/node"
 *
 * const bridge = await createBridge({
 *   mcpServers: {
 *     files: { command: "npx", args: ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"] },
 *     docs: { url: "http://127.0.0.1:3000/mcp" }
 *   }
 * })
 * const result = await bridge.callTool("files.read_file", { path: "/tmp/notes.txt" })
 * await bridge.close()
 * ```
 *
 * @since 0.1.0
 */
export const createBridge = async (
  config: object | string,
  options: Options = {}
): Promise<BridgeClient.BridgeClient> =>
  BridgeClient.make(typeof config === "string" ? await readConfigFile(config) : config, {
    ...options,
    transport: options.transport ?? NodeTransport.layer(options),
    auth: options.auth ?? defaultAuth(options),
    ...openTelemetry(options)
  })

// A configuration file's path, read as the CLI reads one (Claude Desktop, Claude Code, Cursor): its `mcpServers`
// (with a Claude Code project's local servers) and `bridge`; a file that cannot be read is a `BridgeConfigError`.
const readConfigFile = (path: string): Promise<object> =>
  Effect.runPromise(
    ConfigFile.read(path).pipe(
      Effect.map((file) => file.served),
      Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer))
    )
  )

// The facade's OAuth (tokens in memory, `onAuthorization` as the interaction) with the file system, so that a workload
// identity assertion can come from a file (`auth.assertion.file`, e.g. a Kubernetes service-account token).
const defaultAuth = (options: Options) =>
  McpAuth.layerMemory({
    ...(options.onAuthorization === undefined
      ? {}
      : { interaction: McpAuth.interactionFromCallback(options.onAuthorization, { redirectUri: options.redirectUri }) })
  }).pipe(Layer.provide(NodeFileSystem.layer))

// The options that put the bridge on the app's OpenTelemetry providers, if it has any (see `Options.openTelemetry`).
const openTelemetry = (options: Options): Partial<BridgeClient.Options> => {
  if (options.openTelemetry === false || options.telemetry === false || options.observability !== undefined) return {}
  const found = NodeOtel.registered()
  if (!found.tracerProvider && !found.meterProvider) return {}
  const traces = found.tracerProvider
  return {
    observability: NodeOtel.layerGlobal({ traces, metrics: found.meterProvider, tracerName: "@mcp-bridge/node" }),
    ...(traces && options.traceContext === undefined ? { traceContext: NodeOtel.traceContext } : {}),
    // The app's SDK exports what the preset's OTLP exporters would have: one export, not two.
    ...(options.production === true && found.tracerProvider && found.meterProvider
      ? { production: { export: false } }
      : {})
  }
}
