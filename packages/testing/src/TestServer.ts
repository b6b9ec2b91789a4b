/**
 * A scriptable MCP test server built on the official MCP TypeScript SDK (v2) server: the same spec can be served
 * in memory, as a stdio child process, or as a Streamable HTTP server on 127.0.0.1.
 *
 * @since 0.1.0
 */
import type { Transport } from "@modelcontextprotocol/client"
import { Effect } from "effect"
import type { Scope } from "effect"
import { fileURLToPath } from "node:url"
import { workos } from "./internal/demo.ts"
import { startHttpServer } from "./internal/http.ts"
import { makeMemoryServer } from "./internal/memory.ts"
import type { HttpOptions, HttpTestServer, SseOptions, TestServerSpec } from "./internal/spec.ts"
import { startSseServer } from "./internal/sse.ts"
import { makeState, observe } from "./internal/state.ts"

export type {
  /**
   * @since 0.1.0
   */
  HttpOptions,
  /**
   * @since 0.1.0
   */
  HttpTestServer,
  /**
   * @since 0.1.0
   */
  Respond,
  /**
   * @since 0.1.0
   */
  SseOptions,
  /**
   * @since 0.1.0
   */
  TestPrompt,
  /**
   * @since 0.1.0
   */
  TestResource,
  /**
   * @since 0.1.0
   */
  TestResourceTemplate,
  /**
   * @since 0.1.0
   */
  TestServerSpec,
  /**
   * @since 0.1.0
   */
  TestTool
} from "./internal/spec.ts"

/**
 * An in-process test server, for in-memory connections.
 *
 * @since 0.1.0
 */
export interface TestServer {
  readonly spec: TestServerSpec
  /** upstream calls received so far (all tools if omitted) */
  readonly calls: (tool?: string) => number
  /** the request `_meta` of each tool call received (at least the last 10 000), in order (all tools if omitted) */
  readonly receivedMeta: (tool?: string) => ReadonlyArray<Readonly<Record<string, unknown>>>
  /** a new session: a linked in-memory client-side transport, ready for `client.connect` */
  readonly connect: () => Promise<Transport>
  /** tool calls running now */
  readonly inFlight: () => number
  /** the most tool calls that ran at once */
  readonly peakInFlight: () => number
  /** tool calls the client cancelled (interrupted, timed out) while they ran */
  readonly cancelled: () => number
  /** calls of a `hold: true` tool (all tools if omitted) waiting to be released now */
  readonly held: (tool?: string) => number
  /** lets `count` (default: all) held calls of `tool` (all tools if omitted) go on, oldest first; returns how many */
  readonly release: (tool?: string, count?: number) => number
  /**
   * Resolves once `predicate` holds, checked at every change of the server's state (calls arriving, ending,
   * cancelled, held; sessions opening, closing): what a test waits on instead of sleeping, also under `TestClock`.
   * Rejects after `timeoutMs` (default 10 000), so that a wait for something that never happens fails.
   *
   * @example
   * ```ts
   * const fiber = yield* Effect.forkChild(bridge.callTool("s.hang", {}))
   * yield* Effect.promise(() => server.until(() => server.inFlight() === 1))
   * ```
   */
  readonly until: (predicate: () => boolean, timeoutMs?: number) => Promise<void>
  /** `notifications/roots/list_changed` received from clients (2025-era sessions) */
  readonly rootsListChanged: () => number
  /** 2025-era `resources/subscribe` subscriptions open now, of `uri` (all URIs if omitted) */
  readonly subscriptions: (uri?: string) => number
  /** in-memory sessions currently open */
  readonly openSessions: () => number
  /** closes every session */
  readonly close: () => Promise<void>
}

/**
 * Creates an in-process test server. Each `connect()` opens a new session served dual-era (unless `era: "legacy"`)
 * over an `InMemoryTransport` linked pair.
 *
 * @since 0.1.0
 */
export const make = (spec: TestServerSpec): TestServer => {
  const state = makeState(spec)
  const memory = makeMemoryServer(state)
  return {
    spec,
    ...observe(state),
    connect: memory.connect,
    openSessions: memory.openSessions,
    close: memory.close
  }
}

// Installed, this module is `dist/TestServer.js` and the entry is the built `dist/bin/stdio-server.js`. Inside this
// repository it runs from `src/TestServer.ts`: the entry is `src/bin/stdio-server.ts` (Node strips its types), and the
// child resolves `@mcp-bridge/*` from sources as its parent does.
const fromSources = import.meta.url.endsWith(".ts")
const stdioServerArgs: ReadonlyArray<string> = fromSources
  ? ["--conditions=@mcp-bridge/source", fileURLToPath(new URL("./bin/stdio-server.ts", import.meta.url))]
  : [fileURLToPath(new URL("./bin/stdio-server.js", import.meta.url))]

/**
 * The command line of a child process serving `spec` over stdio, for an `mcpServers` entry: the current Node
 * (`process.execPath`) running this package's stdio server entry. The child exits when its stdin closes.
 *
 * @example
 * ```ts
 * const { command, args } = TestServer.stdioCommand({ tools: [{ name: "echo", respond: { kind: "echo" } }] })
 * const bridge = await createBridge({ mcpServers: { test: { command, args: [...args] } } })
 * ```
 *
 * @since 0.1.0
 */
export const stdioCommand = (
  spec: TestServerSpec
): { readonly command: string; readonly args: ReadonlyArray<string> } => ({
  command: process.execPath,
  args: [...stdioServerArgs, JSON.stringify(spec)]
})

/**
 * Starts a Streamable HTTP test server on 127.0.0.1.
 *
 * @since 0.1.0
 */
export const startHttp = (spec: TestServerSpec, options?: HttpOptions): Promise<HttpTestServer> =>
  startHttpServer(spec, options)

/**
 * {@link startHttp} as a scoped resource: the server is closed when the scope closes.
 *
 * @since 0.1.0
 */
export const httpScoped = (
  spec: TestServerSpec,
  options?: HttpOptions
): Effect.Effect<HttpTestServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startHttp(spec, options)),
    (server) => Effect.promise(() => server.close())
  )

/**
 * Starts a legacy HTTP+SSE test server (the deprecated 2024-11-05 transport: an event stream at `/sse`, messages
 * POSTed to the endpoint it names) on 127.0.0.1; `url` is the stream's, for a `{ "type": "sse", "url": ... }` entry.
 * Served on the 2025-era protocol only.
 *
 * @since 0.1.0
 */
export const startSse = (spec: TestServerSpec, options?: SseOptions): Promise<HttpTestServer> =>
  startSseServer(spec, options)

/**
 * {@link startSse} as a scoped resource: the server is closed when the scope closes.
 *
 * @since 0.1.0
 */
export const sseScoped = (
  spec: TestServerSpec,
  options?: SseOptions
): Effect.Effect<HttpTestServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startSse(spec, options)),
    (server) => Effect.promise(() => server.close())
  )

/**
 * Alias of {@link httpScoped}.
 *
 * @since 0.1.0
 */
export const layerHttp: (
  spec: TestServerSpec,
  options?: HttpOptions
) => Effect.Effect<HttpTestServer, never, Scope.Scope> = httpScoped

/**
 * Example servers for the demo: "workos" (get_tasks, get_today_metrics, get_clients, create_task) with fake data.
 *
 * @since 0.1.0
 */
export const demoServers: { readonly workos: TestServerSpec } = { workos }
