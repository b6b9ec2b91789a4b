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
import { countCalls, makeState, receivedMeta } from "./internal/state.ts"

/**
 * What a test tool answers. Every variant is plain JSON, so a spec can be handed to a child process.
 *
 * - `echo`: text = `JSON.stringify(arguments)`, structuredContent = `{ arguments, meta }` (meta = the request `_meta`)
 * - `text`: one text block
 * - `json`: text = `JSON.stringify(value)`; structuredContent = value when it is a plain object
 * - `filter`: the `items` whose `field` equals the argument of that name (all items without the argument), as json
 *   `{ items, count }`
 * - `isError`: a `CallToolResult` with `isError: true`
 * - `payload`: one text block of `bytes` bytes
 * - `counter`: `String(n)`, n = 1, 2, 3... per session (over stateless/modern HTTP: per Authorization header)
 * - `crash`: stdio: the process exits mid-call; HTTP: the server stops listening and drops every socket;
 *   in-memory: the server side of the transport closes
 * - `hang`: never answers (until the request is cancelled or the client goes away)
 * - `flaky`: the first `failures` calls (per server) answer `isError` "flaky failure N", later calls echo
 * - `addTool`: registers an echo tool `name` at runtime (the SDK sends `notifications/tools/list_changed`)
 *
 * @since 0.1.0
 */
export type Respond =
  | { readonly kind: "echo" }
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "json"; readonly value: unknown }
  | {
    readonly kind: "filter"
    readonly field: string
    readonly items: ReadonlyArray<Readonly<Record<string, unknown>>>
  }
  | { readonly kind: "isError"; readonly message: string }
  | { readonly kind: "payload"; readonly bytes: number }
  | { readonly kind: "counter" }
  | { readonly kind: "crash"; readonly exitCode?: number }
  | { readonly kind: "hang" }
  | { readonly kind: "flaky"; readonly failures: number }
  | { readonly kind: "addTool"; readonly name: string }

/**
 * One scripted tool.
 *
 * @since 0.1.0
 */
export interface TestTool {
  readonly name: string
  readonly description?: string
  /** JSON Schema of the arguments; default `{ type: "object" }` */
  readonly inputSchema?: Record<string, unknown>
  readonly annotations?: {
    readOnlyHint?: boolean
    destructiveHint?: boolean
    idempotentHint?: boolean
    openWorldHint?: boolean
    title?: string
  }
  /** artificial delay before answering (aborted with the request) */
  readonly latencyMs?: number
  /** optional uniform extra delay in 0..jitterMs */
  readonly jitterMs?: number
  readonly respond: Respond
}

/**
 * A test server: its tools, plus the built-in `__stats` tool (readOnlyHint) answering json
 * `{ calls: Record<toolName, number>, pid, sessions }`; `__stats` calls are not counted.
 *
 * @since 0.1.0
 */
export interface TestServerSpec {
  /** default "test-server" */
  readonly name?: string
  /** default "1.0.0" */
  readonly version?: string
  readonly tools: ReadonlyArray<TestTool>
  /** "legacy": 2025-era only (plain McpServer.connect / stateful legacy HTTP); default "dual" (2025 and 2026-07-28) */
  readonly era?: "dual" | "legacy"
  /**
   * The cache hint of `tools/list` answers to 2026-07-28 requests (`ttlMs`, `cacheScope`); the SDK's default is
   * `{ ttlMs: 0, cacheScope: "private" }`. 2025-era answers carry none.
   */
  readonly toolsListCacheHint?: { readonly ttlMs?: number; readonly cacheScope?: "public" | "private" }
}

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
    calls: (tool) => countCalls(state, tool),
    receivedMeta: (tool) => receivedMeta(state, tool),
    inFlight: () => state.inFlight,
    cancelled: () => state.cancelled,
    peakInFlight: () => state.peakInFlight,
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
 * A running Streamable HTTP test server.
 *
 * @since 0.1.0
 */
export interface HttpTestServer {
  /** e.g. `http://127.0.0.1:PORT/mcp` */
  readonly url: string
  readonly port: number
  readonly calls: (tool?: string) => number
  /** the request `_meta` of each tool call received (at least the last 10 000), in order (all tools if omitted) */
  readonly receivedMeta: (tool?: string) => ReadonlyArray<Readonly<Record<string, unknown>>>
  /** stateful legacy sessions opened */
  readonly sessionsOpened: () => number
  /** stateful legacy sessions ended by a client DELETE */
  readonly sessionsTerminated: () => number
  readonly openSessions: () => number
  /** stops listening and destroys open connections; idempotent */
  readonly close: () => Promise<void>
}

/**
 * Options of {@link startHttp}.
 *
 * @since 0.1.0
 */
export interface HttpOptions {
  /** default 0 (an ephemeral port); pass a previous port to restart a server in place */
  readonly port?: number
  /**
   * "stateful" (default): 2025-era clients get Mcp-Session-Id sessions, 2026-07-28 requests are served per request
   * (with `era: "dual"`). "stateless": every request is served by a fresh instance, both eras.
   */
  readonly mode?: "stateful" | "stateless"
  /**
   * Answer stateful 2025-era POSTs over SSE streams (the SDK's default) instead of single JSON bodies (this
   * server's default). Beware: when an SSE response drops (crash, close), the SDK client treats it as a resumable
   * disconnect and the pending call only fails at its request timeout.
   */
  readonly sse?: boolean
}

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
