/**
 * The plain-JSON description of a test server (its tools and how they answer) and of an HTTP test server: types only,
 * shared by `TestServer` and the internal servers that serve them.
 *
 * @internal
 */

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
 * Kinds that ask the client something, each in both eras: a 2026-07-28 request is answered `input_required` (the SDK
 * server's `inputRequired(...)`) and the client's retry read back; a 2025-era request sends a real server→client
 * request on the session, related to the call. Each answers json with `era: "modern" | "legacy"`. On 2026-07-28 the
 * retry is a `tools/call` of its own: `calls(tool)` counts each round.
 * - `elicit`: a form (`requestedSchema`, default a required `name` and three fields with defaults: `confirm` true,
 *   `count` 3, `color` "green"), `rounds` times (default 1; a round not accepted ends it); answers
 *   `{ era, action, content, answers: [{ action, content }], pid }` (`content`: what the client sent, defaults
 *   applied), on 2026-07-28 also `requestState` (the state received back), `intact` (true when it is, byte for byte,
 *   the state this server sent) and `askedBy` (the pid of the process that asked: `pid` too when the retry came back
 *   to the same server)
 * - `elicitUrl`: a URL-mode elicitation of `url`; answers `{ era, action }`
 * - `sample`: asks for a completion of `prompt` (default "Say hello"); answers `{ era, text, model, role }`
 * - `roots`: asks for the client's roots; answers `{ era, roots }`
 * - `progress`: sends `steps` progress notifications (`progress` 1..steps, `total` steps, `message` "step i of n")
 *   when the request has a progress token, then answers `{ era, steps, progressToken }`
 * - `log`: sends a log message (`"<level> message"`, logger `logger`, default "test-server") at each of `levels`
 *   (default debug, info, notice, warning, error), as the client asked: on 2025-era sessions below the level set by
 *   `logging/setLevel` are dropped, on 2026-07-28 only requests with a log level in their `_meta` get messages (at
 *   that level or above); answers `{ era, levels, logLevel? }` (`logLevel`: the level a 2026-07-28 request asked for)
 * - `capabilities`: answers `{ era, capabilities }`, the capabilities the client declared (2025: at `initialize`;
 *   2026-07-28: in this request)
 *
 * Kinds that change what the server lists, each announced to every open session (2025: a list-changed notification
 * on the session; 2026-07-28: on `subscriptions/listen` streams that asked for it):
 * - `addResource`: registers a text resource (`uri`, `name`, `text` default "added"); answers "added"
 * - `addPrompt`: registers a prompt `name` without arguments answering `text` (default "added"); answers "added"
 * - `updateResource`: sends `notifications/resources/updated` for `uri` to the sessions that subscribed to it (2025:
 *   `resources/subscribe`; 2026-07-28: a `subscriptions/listen` stream naming the URI); answers "updated"
 *
 * A server with a `log` tool declares the `logging` capability. Over legacy Streamable HTTP, what these kinds send
 * mid-call needs SSE responses: a server with one of them answers over SSE unless `sse: false` is given.
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
  | {
    readonly kind: "elicit"
    readonly message?: string
    readonly requestedSchema?: Record<string, unknown>
    readonly rounds?: number
    /** the text of the 2026-07-28 `requestState` (default: one with quotes, backslashes, tabs and non-ASCII) */
    readonly requestState?: string
  }
  | { readonly kind: "elicitUrl"; readonly url: string; readonly message?: string }
  | { readonly kind: "sample"; readonly prompt?: string; readonly maxTokens?: number }
  | { readonly kind: "roots" }
  | { readonly kind: "progress"; readonly steps: number }
  | {
    readonly kind: "log"
    readonly levels?: ReadonlyArray<
      "debug" | "info" | "notice" | "warning" | "error" | "critical" | "alert" | "emergency"
    >
    readonly logger?: string
  }
  | { readonly kind: "capabilities" }
  | { readonly kind: "addResource"; readonly uri: string; readonly name: string; readonly text?: string }
  | { readonly kind: "addPrompt"; readonly name: string; readonly text?: string }
  | { readonly kind: "updateResource"; readonly uri: string }

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
  /**
   * Each call waits (after its latency) until the test lets it go with `release(tool)`: a call the test can hold in
   * flight for as long as it needs, and see arrive (`held`, `until`). Cancelling the request ends the wait. Only for
   * servers in the test's process (in-memory, HTTP, SSE): a stdio child cannot be reached.
   */
  readonly hold?: boolean
  readonly respond: Respond
}

/**
 * A scripted resource: `resources/read` of `uri` answers one text content block with `text`.
 *
 * @since 0.1.0
 */
export interface TestResource {
  readonly uri: string
  readonly name: string
  readonly description?: string
  /** default "text/plain" */
  readonly mimeType?: string
  readonly text: string
  /** Before answering, asks the client as a prompt's `ask` does (2025-era sessions), and ends `text` the same way. */
  readonly ask?: string
}

/**
 * A scripted resource template (RFC 6570 `uriTemplate`, e.g. `"file:///{path}"`): `resources/read` of a URI it
 * matches answers one text block `JSON.stringify(variables)`. `complete` lists the values `completion/complete`
 * offers for each variable (those starting with the typed value).
 *
 * @since 0.1.0
 */
export interface TestResourceTemplate {
  readonly uriTemplate: string
  readonly name: string
  readonly description?: string
  readonly complete?: Readonly<Record<string, ReadonlyArray<string>>>
}

/**
 * A scripted prompt: `prompts/get` answers one user message whose text is `text` with each `{argument}` replaced by
 * its value. `complete` of an argument lists the values `completion/complete` offers (those starting with the typed
 * value).
 *
 * @since 0.1.0
 */
export interface TestPrompt {
  readonly name: string
  readonly description?: string
  readonly arguments?: ReadonlyArray<{
    readonly name: string
    readonly description?: string
    readonly required?: boolean
    readonly complete?: ReadonlyArray<string>
  }>
  readonly text: string
  /**
   * Before answering, a 2025-era session asks its client a form elicitation with this message (one string field,
   * `name`), and the message's text ends with ` (<action>: <content as JSON>)`, or ` (<error>)` when the client
   * could not be asked. A 2026-07-28 request answers without asking.
   */
  readonly ask?: string
}

/**
 * A test server: its tools, plus the built-in `__stats` tool (readOnlyHint) answering json
 * `{ calls: Record<toolName, number>, pid, sessions, inFlight, cancelled, rootsListChanged }`; `__stats` calls are
 * not counted.
 *
 * @since 0.1.0
 */
export interface TestServerSpec {
  /** default "test-server" */
  readonly name?: string
  /** default "1.0.0" */
  readonly version?: string
  readonly tools: ReadonlyArray<TestTool>
  /**
   * Resources (and templates): with either given (an empty array too), the server declares the `resources`
   * capability with `subscribe` and `listChanged`.
   */
  readonly resources?: ReadonlyArray<TestResource>
  readonly resourceTemplates?: ReadonlyArray<TestResourceTemplate>
  /** Prompts: when given (an empty array too), the server declares the `prompts` capability with `listChanged`. */
  readonly prompts?: ReadonlyArray<TestPrompt>
  /** "legacy": 2025-era only (plain McpServer.connect / stateful legacy HTTP); default "dual" (2025 and 2026-07-28) */
  readonly era?: "dual" | "legacy"
  /**
   * The cache hint of `tools/list` answers to 2026-07-28 requests (`ttlMs`, `cacheScope`); the SDK's default is
   * `{ ttlMs: 0, cacheScope: "private" }`. 2025-era answers carry none.
   */
  readonly toolsListCacheHint?: { readonly ttlMs?: number; readonly cacheScope?: "public" | "private" }
}

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
   * resolves once `predicate` holds, checked at every change of the server's state (calls arriving, ending,
   * cancelled, held; sessions opening, closing): wait on it instead of sleeping. Rejects after `timeoutMs`
   * (default 10 000).
   */
  readonly until: (predicate: () => boolean, timeoutMs?: number) => Promise<void>
  /** `notifications/roots/list_changed` received from clients (2025-era sessions) */
  readonly rootsListChanged: () => number
  /** 2025-era `resources/subscribe` subscriptions open now, of `uri` (all URIs if omitted) */
  readonly subscriptions: (uri?: string) => number
  /** sessions opened (stateful legacy HTTP sessions; SSE event streams) */
  readonly sessionsOpened: () => number
  /** sessions the client ended (HTTP: a DELETE of the session; SSE: the client closed its event stream) */
  readonly sessionsTerminated: () => number
  readonly openSessions: () => number
  /**
   * Forgets every open session without telling its client, as a server that restarted behind a proxy would: requests
   * naming a forgotten session get 404 "Session not found" (stateful HTTP; a no-op for SSE and stateless servers).
   * Returns how many were forgotten.
   */
  readonly forgetSessions: () => number
  /** stops listening and destroys open connections; idempotent */
  readonly close: () => Promise<void>
}

/**
 * Options of `startSse`.
 *
 * @since 0.1.0
 */
export interface SseOptions {
  /** default 0 (an ephemeral port); pass a previous port to restart a server in place */
  readonly port?: number
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
   * server's default unless a tool talks to the client mid-call: `elicit`, `elicitUrl`, `sample`, `roots`,
   * `progress`, `log`, whose messages a JSON body would drop). Beware: when an SSE response drops (crash, close), the SDK client treats it as a resumable
   * disconnect and the pending call only fails at its request timeout.
   */
  readonly sse?: boolean
}
