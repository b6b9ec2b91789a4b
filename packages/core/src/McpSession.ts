/**
 * One MCP session: an official SDK `Client` over one transport, as a scoped Effect resource.
 *
 * Opening connects with a deadline and negotiates the protocol version (2026-07-28 or a legacy one); every request
 * carries a deadline and an `AbortSignal`, so that interrupting the Effect cancels the request on the wire. A closed
 * or broken transport is detected and surfaces as `McpSessionError` with reason `Closed`, so that the pool can evict
 * the session. Closing the scope ends the child process (stdio) and terminates the HTTP session on the server.
 *
 * @since 0.1.0
 */
import type { CallToolResult, DiscoverResult, PriorDiscovery, Tool } from "@modelcontextprotocol/client"
import { Client, ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from "@modelcontextprotocol/client"
import { Clock, Context, Deferred, Duration, Effect, Schema, Scope } from "effect"
import type { ResolvedServer } from "./BridgeConfig.ts"
import { isAuthorizationFailure } from "./McpAuth.ts"
import { McpTransport, type OpenedTransport } from "./McpTransport.ts"

/**
 * The session could not be opened: the process did not start, the URL did not answer, the handshake failed.
 * `stderr` holds the last lines the server printed (secrets of its `env` scrubbed).
 *
 * @since 0.1.0
 */
export class ConnectFailed extends Schema.TaggedClass<ConnectFailed>()("ConnectFailed", {
  message: Schema.String,
  stderr: Schema.optionalKey(Schema.String)
}) {}

/**
 * A request, or opening the session, took longer than its deadline. The request was cancelled on the wire.
 *
 * @since 0.1.0
 */
export class Timeout extends Schema.TaggedClass<Timeout>()("Timeout", {
  operation: Schema.String,
  timeoutMillis: Schema.Finite
}) {}

/**
 * The transport is closed or broken: the child process exited, the connection was refused or reset, or an HTTP
 * server no longer knows the session. The session is dead; a new one is needed.
 *
 * @since 0.1.0
 */
export class Closed extends Schema.TaggedClass<Closed>()("Closed", {
  message: Schema.String,
  stderr: Schema.optionalKey(Schema.String)
}) {}

/**
 * The server answered with a JSON-RPC error (unknown method, invalid params...) or an answer the SDK rejected.
 *
 * @since 0.1.0
 */
export class Protocol extends Schema.TaggedClass<Protocol>()("Protocol", {
  code: Schema.Finite,
  message: Schema.String
}) {}

/**
 * The server refused the request's authorization (OAuth, see `McpAuth`), and the bridge could not obtain one it
 * accepts: no interaction to ask the user, the user or the authorization server refused, a scope the server keeps
 * refusing (`status` 403, `requiredScope`). `detail` never holds a token or a secret.
 *
 * @since 0.1.0
 */
export class Unauthorized extends Schema.TaggedClass<Unauthorized>()("Unauthorized", {
  detail: Schema.String,
  status: Schema.optionalKey(Schema.Finite),
  requiredScope: Schema.optionalKey(Schema.String)
}) {}

/**
 * @since 0.1.0
 */
export const Reason = Schema.Union([ConnectFailed, Timeout, Closed, Protocol, Unauthorized])

/**
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * A session-level failure of `server`.
 *
 * @example
 * ```ts
 * effect.pipe(Effect.catchReason("McpSessionError", "Timeout", (r) => Effect.succeed(`slow: ${r.timeoutMillis}`)))
 * ```
 *
 * @since 0.1.0
 */
export class McpSessionError extends Schema.TaggedError<McpSessionError>()("McpSessionError", {
  server: Schema.String,
  reason: Reason
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "ConnectFailed":
        return `cannot connect to MCP server "${this.server}": ${r.message}${r.stderr ? `\n${r.stderr}` : ""}`
      case "Timeout":
        return `MCP server "${this.server}" did not answer ${r.operation} within ${r.timeoutMillis} ms`
      case "Closed":
        return `connection to MCP server "${this.server}" is closed: ${r.message}`
      case "Protocol":
        return `MCP server "${this.server}" answered with error ${r.code}: ${r.message}`
      case "Unauthorized":
        return `MCP server "${this.server}" refused the authorization: ${r.detail}`
    }
  }

  /**
   * True when the session that raised it is dead and must be replaced.
   */
  get isTransportFailure(): boolean {
    return this.reason._tag === "Closed" || this.reason._tag === "ConnectFailed"
  }
}

// -----------------------------------------------------------------------------
// Model
// -----------------------------------------------------------------------------

/**
 * The arguments of one `tools/call`.
 *
 * @since 0.1.0
 */
export interface CallParams {
  readonly name: string
  readonly arguments?: Readonly<Record<string, unknown>> | undefined
  /** Request `_meta` (e.g. W3C `traceparent`). */
  readonly _meta?: Readonly<Record<string, unknown>> | undefined
}

/**
 * A `tools/list` answer with every page, and the 2026-07-28 cache hints when the server sent them.
 *
 * @since 0.1.0
 */
export interface ToolList {
  readonly tools: ReadonlyArray<Tool>
  readonly ttlMs?: number | undefined
  readonly cacheScope?: "public" | "private" | undefined
}

/**
 * An open MCP session.
 *
 * @since 0.1.0
 */
export interface McpSession {
  readonly server: string
  /** A number unique in this process, for logs and tests. */
  readonly id: number
  /** The negotiated protocol version, e.g. `"2026-07-28"` or `"2025-11-25"`. */
  readonly protocolVersion: string
  readonly era: "legacy" | "modern"
  readonly transport: OpenedTransport["kind"]
  /** The child process id (stdio sessions). */
  readonly pid: number | undefined
  /** When the session was opened (Clock millis), and how long opening took. */
  readonly openedAt: number
  readonly connectMillis: number
  /** For reuse by later sessions of the same server: skips the era probe. */
  readonly prior: PriorDiscovery
  readonly callTool: (
    params: CallParams,
    timeout: Duration.Duration
  ) => Effect.Effect<CallToolResult, McpSessionError>
  /** `tools/list`, every page. */
  readonly listTools: (timeout: Duration.Duration) => Effect.Effect<ToolList, McpSessionError>
  /** A liveness probe the server era supports: `ping` (legacy) or `server/discover` (2026-07-28). */
  readonly probe: (timeout: Duration.Duration) => Effect.Effect<void, McpSessionError>
  /** False once the transport closed or broke. */
  readonly isOpen: () => boolean
  /** Completes when the transport closes. */
  readonly closed: Effect.Effect<void>
  /** Registers a handler for `notifications/tools/list_changed`. */
  readonly onToolsChanged: (f: () => void) => void
  /** The SDK client, for what the bridge does not wrap. */
  readonly client: Client
}

/**
 * @since 0.1.0
 */
export interface Options {
  /** What opening the session learnt last time (skips the era probe). */
  readonly prior?: PriorDiscovery | undefined
  /** Client name sent to servers. @default "mcp-bridge" */
  readonly clientName?: string | undefined
}

// -----------------------------------------------------------------------------
// SDK boundary
// -----------------------------------------------------------------------------

const transientNetworkCodes = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ENOTFOUND", "UND_ERR_SOCKET"])

const causeCode = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let i = 0; i < 4 && typeof current === "object" && current !== null; i++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

const causeChain = (error: unknown): Array<unknown> => {
  const chain: Array<unknown> = []
  for (let current = error, i = 0; i < 4 && current !== undefined && current !== null; i++) {
    chain.push(current)
    current = typeof current === "object" ? (current as { cause?: unknown }).cause : undefined
  }
  return chain
}

/**
 * Maps what the SDK threw into a reason. Exported for the transports of other packages.
 *
 * @since 0.1.0
 */
export const reasonFromSdk = (
  error: unknown,
  operation: string,
  timeoutMillis: number,
  stderr?: string
): Reason => {
  const withStderr = stderr ? { stderr } : {}
  const denied = causeChain(error).find(isAuthorizationFailure)
  if (denied !== undefined) {
    return new Unauthorized({
      detail: denied.detail,
      ...(denied.status === undefined ? {} : { status: denied.status }),
      ...(denied.requiredScope === undefined ? {} : { requiredScope: denied.requiredScope })
    })
  }
  if (error instanceof SdkHttpError) {
    return error.status === 404 || error.status === 410
      ? new Closed({ message: `HTTP ${error.status}: the server no longer knows this session`, ...withStderr })
      : error.status >= 500
      ? new Closed({ message: `HTTP ${error.status} ${error.statusText ?? ""}`.trim() })
      : new Protocol({ code: error.status, message: error.message })
  }
  if (error instanceof SdkError) {
    switch (error.code) {
      case SdkErrorCode.RequestTimeout:
        return new Timeout({ operation, timeoutMillis })
      case SdkErrorCode.ConnectionClosed:
      case SdkErrorCode.NotConnected:
      case SdkErrorCode.SendFailed:
        return new Closed({ message: error.message, ...withStderr })
      default:
        return new Protocol({ code: -1, message: error.message })
    }
  }
  if (error instanceof ProtocolError) return new Protocol({ code: error.code, message: error.message })
  const code = causeCode(error)
  if (code !== undefined && transientNetworkCodes.has(code)) {
    return new Closed({ message: `${code}: ${error instanceof Error ? error.message : String(error)}`, ...withStderr })
  }
  if (error instanceof TypeError && /fetch failed|network/i.test(error.message)) {
    return new Closed({ message: error.message, ...withStderr })
  }
  return new Protocol({ code: -1, message: error instanceof Error ? error.message : String(error) })
}

let nextId = 0

// Effect's default clock (real time); a call on it gets its deadline from one timer, see `request`.
const liveClock = Context.get(Context.empty(), Clock.Clock)

// Outlives any real deadline: the SDK's own timer is only a backstop behind the bridge's deadline.
const sdkBackstop = (timeoutMillis: number) => Math.min(timeoutMillis + 1_000, 2_147_483_647)

/**
 * Opens a session of `server` in the current scope. Closing the scope closes the session.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(
  server: ResolvedServer,
  options: Options = {}
): Effect.fn.Return<McpSession, McpSessionError, Scope.Scope | McpTransport> {
  const transports = yield* McpTransport
  const toolsChanged: Array<() => void> = []
  const startedAt = yield* Clock.currentTimeMillis
  const connectMillis = Duration.toMillis(server.connectTimeout)
  const opened = yield* transports.open(server)
  const client = new Client(
    { name: options.clientName ?? "mcp-bridge", version: "0.1.0" },
    {
      versionNegotiation: {
        mode: server.protocol === "2026-07-28" ? { pin: "2026-07-28" } : server.protocol,
        probe: { timeoutMs: Math.max(Math.floor(connectMillis / 3), 100) }
      },
      listMaxPages: 1_000,
      listChanged: {
        tools: {
          autoRefresh: false,
          debounceMs: 0,
          onChanged: () => {
            for (const f of toolsChanged) f()
          }
        }
      }
    }
  )
  const closedSignal = yield* Deferred.make<void>()
  let open = true
  client.onclose = () => {
    open = false
    Deferred.doneUnsafe(closedSignal, Effect.void)
  }

  const stderr = () => opened.stderrTail?.() || undefined
  const fail = (operation: string, timeoutMillis: number) => (error: unknown) =>
    new McpSessionError({
      server: server.name,
      reason: open ?
        reasonFromSdk(error, operation, timeoutMillis, stderr()) :
        new Closed({
          message: `transport closed during ${operation}`,
          ...(stderr() ? { stderr: stderr()! } : {})
        })
    })

  // Close (and terminate the server side) when the scope closes, whether or not the connect succeeded.
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      open = false
      if (opened.terminate) await opened.terminate().catch(() => undefined)
      await client.close().catch(() => undefined)
    })
  )

  const timedOut = (operation: string, timeoutMillis: number) =>
    new McpSessionError({ server: server.name, reason: new Timeout({ operation, timeoutMillis }) })

  const prior = options.prior
  const withConnectDeadline = <A>(effect: Effect.Effect<A, McpSessionError>) =>
    Effect.timeoutOrElse(effect, {
      duration: server.connectTimeout,
      orElse: () => Effect.fail(timedOut("connect", connectMillis))
    })
  yield* Effect.tryPromise({
    try: (signal) => client.connect(opened.transport, { signal, timeout: connectMillis, ...(prior ? { prior } : {}) }),
    catch: (error) => {
      const reason = reasonFromSdk(error, "connect", connectMillis, stderr())
      return new McpSessionError({
        server: server.name,
        reason: reason._tag === "Timeout" || reason._tag === "Unauthorized" ? reason : new ConnectFailed({
          message: reason.message,
          ...(stderr() ? { stderr: stderr()! } : {})
        })
      })
    }
  }).pipe(withConnectDeadline)
  const era = client.getProtocolEra() ?? "legacy"
  // Connecting from a prior 2026-07-28 verdict costs no round trip: the SDK returns as soon as the transport starts
  // (for stdio, before the child is ready) and opens no `subscriptions/listen` stream. One request here makes the
  // session ready before it is leased, and subscribes to tool-list changes like a negotiated session.
  if (prior?.kind === "modern" && era === "modern") {
    const listChanged = prior.discover.capabilities?.tools?.listChanged === true
    yield* Effect.tryPromise({
      try: (signal): Promise<unknown> =>
        listChanged
          ? client.listen({ toolsListChanged: true }, { signal, timeout: connectMillis })
          : client.discover({ signal, timeout: connectMillis }),
      catch: (error) =>
        new McpSessionError({
          server: server.name,
          reason: new ConnectFailed({
            message: error instanceof Error ? error.message : String(error),
            ...(stderr() ? { stderr: stderr()! } : {})
          })
        })
    }).pipe(withConnectDeadline)
  }
  const connectedAt = yield* Clock.currentTimeMillis
  const discover: DiscoverResult | undefined = client.getDiscoverResult()

  // With the live clock, one callback holds the request and its deadline timer: no fibers raced per call.
  const requestLive = <A>(
    operation: string,
    timeoutMillis: number,
    run: (signal: AbortSignal, timeoutMillis: number) => Promise<A>
  ): Effect.Effect<A, McpSessionError> =>
    Effect.callback<A, McpSessionError>((resume) => {
      if (!open) {
        resume(Effect.fail(fail(operation, timeoutMillis)(undefined)))
        return
      }
      const controller = new AbortController()
      let settled = false
      const settle = () => {
        if (settled) return false
        settled = true
        clearTimeout(timer)
        return true
      }
      const timer = setTimeout(() => {
        if (!settle()) return
        controller.abort()
        resume(Effect.fail(timedOut(operation, timeoutMillis)))
      }, Math.min(timeoutMillis, 2_147_483_647))
      run(controller.signal, sdkBackstop(timeoutMillis)).then(
        (value) => {
          if (settle()) resume(Effect.succeed(value))
        },
        (error) => {
          if (settle()) resume(Effect.fail(fail(operation, timeoutMillis)(error)))
        }
      )
      // Interrupted: cancel the request on the wire.
      return Effect.sync(() => {
        if (settle()) controller.abort()
      })
    })

  // On any other clock (a TestClock), the deadline comes from Effect, so that tests drive it.
  const requestOnClock = <A>(
    operation: string,
    timeout: Duration.Duration,
    run: (signal: AbortSignal, timeoutMillis: number) => Promise<A>
  ): Effect.Effect<A, McpSessionError> => {
    const timeoutMillis = Duration.toMillis(timeout)
    return Effect.suspend(() =>
      open
        ? Effect.tryPromise({
          try: (signal) => run(signal, sdkBackstop(timeoutMillis)),
          catch: fail(operation, timeoutMillis)
        })
        : Effect.fail(fail(operation, timeoutMillis)(undefined))
    ).pipe(
      Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.fail(timedOut(operation, timeoutMillis)) })
    )
  }

  const request = <A>(
    operation: string,
    timeout: Duration.Duration,
    run: (signal: AbortSignal, timeoutMillis: number) => Promise<A>
  ): Effect.Effect<A, McpSessionError> =>
    Effect.withFiber((fiber) =>
      fiber.getRef(Clock.Clock) === liveClock
        ? requestLive(operation, Duration.toMillis(timeout), run)
        : requestOnClock(operation, timeout, run)
    )

  const session: McpSession = {
    server: server.name,
    id: ++nextId,
    protocolVersion: client.getNegotiatedProtocolVersion() ?? "unknown",
    era,
    transport: opened.kind,
    pid: opened.pid,
    openedAt: connectedAt,
    connectMillis: connectedAt - startedAt,
    prior: era === "modern" && discover !== undefined ? { kind: "modern", discover } : { kind: "legacy" },
    callTool: (params, timeout) =>
      request(
        `tools/call ${params.name}`,
        timeout,
        (signal, sdkTimeout) =>
          client.callTool(params as Parameters<Client["callTool"]>[0], { signal, timeout: sdkTimeout }) as Promise<
            CallToolResult
          >
      ),
    listTools: (timeout) =>
      request("tools/list", timeout, async (signal, sdkTimeout) => {
        const result = await client.listTools(undefined, { signal, timeout: sdkTimeout, cacheMode: "bypass" })
        const hints = result as { ttlMs?: unknown; cacheScope?: unknown }
        return {
          tools: result.tools,
          ttlMs: typeof hints.ttlMs === "number" ? hints.ttlMs : undefined,
          cacheScope: hints.cacheScope === "public" || hints.cacheScope === "private" ? hints.cacheScope : undefined
        }
      }),
    probe: (timeout) =>
      request(era === "modern" ? "server/discover" : "ping", timeout, (signal, sdkTimeout) =>
        era === "modern"
          ? client.discover({ signal, timeout: sdkTimeout })
          : client.ping({ signal, timeout: sdkTimeout })).pipe(Effect.asVoid),
    isOpen: () => open,
    closed: Deferred.await(closedSignal),
    onToolsChanged: (f) => {
      toolsChanged.push(f)
    },
    client
  }
  return session
})
