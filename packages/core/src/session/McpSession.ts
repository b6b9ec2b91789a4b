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
import type {
  CallToolResult,
  ClientCapabilities,
  CompleteRequest,
  CompleteResult,
  DiscoverResult,
  GetPromptResult,
  InputResponses,
  McpSubscription,
  PriorDiscovery,
  Progress,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplateType,
  ServerCapabilities,
  Tool
} from "@modelcontextprotocol/client"
import { Client, isInputRequiredResult, SdkError, SdkErrorCode } from "@modelcontextprotocol/client"
import { Clock, Deferred, Duration, Effect, Option, type Scope, Stream } from "effect"
import { CallerIdentity } from "../auth/CallerIdentity.ts"
import { type ResolvedServer, transportKind } from "../config/BridgeConfig.ts"
import {
  Closed,
  ConnectFailed,
  McpSessionError,
  Protocol,
  type Reason,
  Timeout,
  Unauthorized
} from "../errors/McpSessionError.ts"
import { scrub } from "../internal/scrub.ts"
import { secretValues } from "../internal/secrets.ts"
import * as ClientHandlers from "./ClientHandlers.ts"
import * as Interaction from "./internal/interaction.ts"
import * as ProbeRace from "./internal/probeRace.ts"
import { completeByDefault } from "./internal/resultType.ts"
import * as Rounds from "./internal/rounds.ts"
import * as SdkErrors from "./internal/sdkErrors.ts"
import * as ToolCall from "./internal/toolCall.ts"
import { McpTransport, type OpenedTransport } from "./McpTransport.ts"

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
 * What a `tools/call` may carry besides its parameters.
 *
 * @since 0.1.0
 */
export interface CallOptions {
  /** The caller, for the handlers of what the server asks during the call (`ClientHandlers.Origin`). */
  readonly identity?: string | undefined
  /** Called with each progress notification the server sends for this call. */
  readonly onProgress?: ((progress: Progress) => void) | undefined
  /** The tool's definition (from `tools/list`): its `outputSchema` validates the result. */
  readonly definition?: Tool | undefined
  /** The caller answers the server's `input_required` results itself (see `ClientRounds`). */
  readonly rounds?: ClientRounds | undefined
}

/**
 * A caller that answers a 2026-07-28 server's `input_required` results itself, e.g. a gateway in front of a
 * 2026-07-28 client: such a result comes back to it as the server sent it (`resultType: "input_required"`,
 * `inputRequests`, `requestState`), unfulfilled, and its retry carries the client's answers. The server sees the
 * caller's client capabilities as the request's own. A 2025-era session ignores it: its server asks with requests of
 * its own, which the `ClientHandlers` answer.
 *
 * @since 0.1.0
 */
export interface ClientRounds {
  /** The caller's client capabilities: what a 2026-07-28 server may ask for in this request. */
  readonly clientCapabilities: ClientCapabilities
  /** The answers to the previous round's `inputRequests`, by key, as the client sent them. */
  readonly inputResponses?: InputResponses | undefined
  /** The previous round's `requestState`, echoed as received. */
  readonly requestState?: string | undefined
}

/**
 * True for rounds that answer an earlier `input_required` (they carry `inputResponses` or `requestState`): such a
 * request is never served from a cache nor merged with another.
 *
 * @since 0.1.0
 */
export const isRetry = (rounds: ClientRounds | undefined): boolean =>
  rounds !== undefined && (rounds.inputResponses !== undefined || rounds.requestState !== undefined)

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
 * A list answer (`resources/list`, `resources/templates/list`, `prompts/list`) with every page, and the 2026-07-28
 * cache hints when the server sent them.
 *
 * @since 0.1.0
 */
export interface Listed<A> {
  readonly items: ReadonlyArray<A>
  readonly ttlMs?: number | undefined
  readonly cacheScope?: "public" | "private" | undefined
}

/**
 * Which list of a server changed: what a list-changed notification names.
 *
 * @since 0.1.0
 */
export type ListKind = "tools" | "resources" | "prompts"

/**
 * The arguments of one `prompts/get`.
 *
 * @since 0.1.0
 */
export interface PromptParams {
  readonly name: string
  readonly arguments?: Readonly<Record<string, string>> | undefined
}

/**
 * An open MCP session.
 *
 * @since 0.1.0
 */
export interface McpSession {
  readonly server: string
  /** The session's number in its pool (`Options.id`), for logs, errors and tests; 0 when not numbered. */
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
  /**
   * For reuse by later sessions of the same server: skips the era probe. `undefined` when the verdict is not sure
   * (a stdio server that answered the legacy handshake after a probe that only timed out: it may have been slow).
   */
  readonly prior: PriorDiscovery | undefined
  readonly callTool: (
    params: CallParams,
    timeout: Duration.Duration,
    options?: CallOptions
  ) => Effect.Effect<CallToolResult, McpSessionError>
  /** `tools/list`, every page. */
  readonly listTools: (timeout: Duration.Duration) => Effect.Effect<ToolList, McpSessionError>
  /** A liveness probe the server era supports: `ping` (legacy) or `server/discover` (2026-07-28). */
  readonly probe: (timeout: Duration.Duration) => Effect.Effect<void, McpSessionError>
  /** False once the transport closed or broke. */
  readonly isOpen: () => boolean
  /**
   * Ends the session at once, also when the server is frozen (stdio: SIGKILL): calls in flight fail with `Closed`.
   * For a session the pool retires because it stopped answering.
   */
  readonly kill: () => void
  /** Completes when the transport closes. */
  readonly closed: Effect.Effect<void>
  /** Registers a handler for `notifications/tools/list_changed`. */
  readonly onToolsChanged: (f: () => void) => void
  /** What the server said it offers (`initialize` or `server/discover`). */
  readonly capabilities: ServerCapabilities | undefined
  /** `resources/list`, every page (none when the server has no `resources` capability). */
  readonly listResources: (timeout: Duration.Duration) => Effect.Effect<Listed<Resource>, McpSessionError>
  /** `resources/templates/list`, every page (none when the server has no `resources` capability). */
  readonly listResourceTemplates: (
    timeout: Duration.Duration
  ) => Effect.Effect<Listed<ResourceTemplateType>, McpSessionError>
  /** `resources/read` (with `rounds`, an `input_required` result comes back as such: see `ClientRounds`). */
  readonly readResource: (
    uri: string,
    timeout: Duration.Duration,
    rounds?: ClientRounds
  ) => Effect.Effect<ReadResourceResult, McpSessionError>
  /**
   * Asks for `notifications/resources/updated` of `uri` on this session: `resources/subscribe` (2025 era) or a
   * `subscriptions/listen` stream for the URI (2026-07-28). Subscribing twice is one subscription.
   */
  readonly subscribeResource: (uri: string, timeout: Duration.Duration) => Effect.Effect<void, McpSessionError>
  /** Ends the subscription of `uri` on this session (nothing when there is none). */
  readonly unsubscribeResource: (uri: string, timeout: Duration.Duration) => Effect.Effect<void, McpSessionError>
  /** `prompts/list`, every page (none when the server has no `prompts` capability). */
  readonly listPrompts: (timeout: Duration.Duration) => Effect.Effect<Listed<Prompt>, McpSessionError>
  /** `prompts/get` (with `rounds`, an `input_required` result comes back as such: see `ClientRounds`). */
  readonly getPrompt: (
    params: PromptParams,
    timeout: Duration.Duration,
    rounds?: ClientRounds
  ) => Effect.Effect<GetPromptResult, McpSessionError>
  /** `completion/complete`. */
  readonly complete: (
    params: CompleteRequest["params"],
    timeout: Duration.Duration
  ) => Effect.Effect<CompleteResult, McpSessionError>
  /** Registers a handler for the server's list-changed notifications (tools, resources, prompts). */
  readonly onListChanged: (f: (list: ListKind) => void) => void
  /** Registers a handler for `notifications/resources/updated`. */
  readonly onResourceUpdated: (f: (uri: string) => void) => void
  /** The SDK client, for what the bridge does not wrap. */
  readonly client: Client
}

/**
 * Options of `McpSession.make`: what an earlier session of the same server learnt (`prior`, which skips the era probe)
 * and the client name sent to the server. The pool passes the `prior` of the last session it opened for the server.
 *
 * @since 0.1.0
 */
export interface Options {
  /** What opening the session learnt last time (skips the era probe). */
  readonly prior?: PriorDiscovery | undefined
  /** Client name sent to servers. @default "mcp-bridge" */
  readonly clientName?: string | undefined
  /** The session's number, given by its pool. @default 0 */
  readonly id?: number | undefined
  /**
   * The tools of this server known to ask the user (elicitation, sampling, roots) during a call, shared by the
   * server's sessions: a tool whose call asked, when nothing else was in flight, is added. On a 2025-era session a
   * request of the server while several calls run is attributed to the one call of such a tool (and the pool runs
   * such calls on a session no other call joins).
   */
  readonly asking?: Set<string> | undefined
}

/**
 * Maps what the SDK threw into a reason of `server`: for transports of other packages, whose failures then read like
 * the bridge's own (HTTP 404/410 and network resets are `Closed`, 5xx and JSON-RPC errors `Protocol`, an SDK request
 * timeout `Timeout`, a refused OAuth authorization `Unauthorized`).
 *
 * @since 0.1.0
 */
export const reasonFromSdk: (
  server: string,
  error: unknown,
  operation: string,
  timeoutMillis: number,
  stderr?: string
) => Reason = SdkErrors.reasonFromSdk

// Outlives any real deadline: the SDK's own timer is only a backstop behind the bridge's deadline.
const sdkBackstop = (timeoutMillis: number) => Math.min(timeoutMillis + 1_000, 2_147_483_647)

/**
 * Opens a session of `server` in the current scope. Closing the scope closes the session.
 *
 * - Negotiation (`protocol: "auto"`): the SDK probes with `server/discover` on the session's own connection (the
 *   stdio transport of `@mcp-bridge/node` probes in place: one process per session) and falls back to `initialize` on
 *   the same connection when the server is silent. A stdio server that exits on the probe costs one more process,
 *   once: the session reconnects with the legacy handshake, and the verdict (`prior`) tells later sessions.
 * - What the server asks during a call (elicitation, sampling, roots) goes to the `ClientHandlers` in context, whose
 *   capabilities alone are advertised; on 2026-07-28 an `input_required` result is fulfilled with the same handlers
 *   and the call retried on this session, `requestState` echoed as received.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(
  server: ResolvedServer,
  options: Options = {}
): Effect.fn.Return<McpSession, McpSessionError, Scope.Scope | McpTransport> {
  const transports = yield* McpTransport
  const handlers: ClientHandlers.ClientHandlers.Service = Option.getOrElse(
    yield* Effect.serviceOption(ClientHandlers.ClientHandlers),
    () => ({})
  )
  const sessionIdentity = yield* CallerIdentity
  const context = yield* Effect.context<never>()
  const runHandler: Interaction.Run = (effect) => Effect.runPromiseWith(context)(effect)
  const toolsChanged: Array<() => void> = []
  const listChanged: Array<(list: ListKind) => void> = []
  const resourceUpdated: Array<(uri: string) => void> = []
  const changedList = (list: ListKind) => () => {
    if (list === "tools") { for (const f of toolsChanged) f() }
    for (const f of listChanged) f(list)
  }
  const startedAt = yield* Clock.currentTimeMillis
  const connectMillis = Duration.toMillis(server.connectTimeout)
  const id = options.id ?? 0
  // What the server sends back (an error body, a message) may echo its secrets: they never reach an error.
  const secrets = secretValues(server)
  const clean = (text: string) => scrub(text, secrets)
  const stdio = transportKind(server.transport) === "stdio"
  // On stdio the probe is raced against a `ping` sent after it (`ProbeRace`): a server answers the probe, or the ping
  // without the probe (legacy), as soon as it runs, however slow its start. The window only bounds a server silent
  // to both before `initialize` (pings before it are allowed by the spec), and leaves it a quarter of the connect's
  // time for the handshake. Over HTTP a probe timeout fails the connect, so it gets the connect's time.
  const probeMillis = stdio ? Math.floor(connectMillis * 0.75) : connectMillis
  // With a log handler and no level, `info`: a 2026-07-28 server sends no log at all unless a request asks for a level.
  const logLevel = server.logLevel ?? handlers.logLevel ?? (handlers.log === undefined ? undefined : "info")

  // The calls in flight, to tell a server's request (2025 era) which call it belongs to; `asked`: the server asked
  // the client something while the call ran, so its result may depend on the user's answer.
  const inFlight = new Map<number, { readonly tool: string; readonly identity: string | undefined; asked: boolean }>()
  // Progress callbacks of the calls in flight, by the token their request carries. Not the SDK's `onprogress`: its
  // client dispatches notifications a microtask late but answers at once, so progress read in the same chunk as the
  // answer (stdio) found its handler gone and was dropped. Here a callback outlives its call's answer by that tick.
  const progressOf = new Map<string, (progress: Progress) => void>()
  const asking = options.asking ?? new Set<string>()
  // The one call (tool and caller) a request of the server belongs to: the only one in flight, else the only one of a
  // tool known to ask; `undefined` while that is ambiguous.
  const soleCall = (asks: boolean) => {
    let only: { readonly tool: string; readonly identity: string | undefined } | undefined
    for (const call of inFlight.values()) {
      if (asks && !asking.has(call.tool)) continue
      if (only !== undefined && (only.tool !== call.tool || only.identity !== call.identity)) return undefined
      only = call
    }
    return only
  }
  const askedBy = () => soleCall(false) ?? soleCall(true)
  const origin = (): ClientHandlers.Origin => {
    const only = askedBy()
    return { server: server.name, tool: only?.tool, identity: only?.identity ?? sessionIdentity }
  }
  // The server asked: the calls it may have asked for are marked (all of them while that is ambiguous), and a tool
  // known for sure to have asked is remembered.
  const onAsked = () => {
    const only = askedBy()
    if (only !== undefined) asking.add(only.tool)
    for (const call of inFlight.values()) {
      if (only === undefined || (call.tool === only.tool && call.identity === only.identity)) call.asked = true
    }
  }

  const newClient = () => {
    const client = new Client(
      { name: options.clientName ?? "mcp-bridge", version: "0.1.0" },
      {
        capabilities: Interaction.capabilitiesOf(handlers),
        versionNegotiation: {
          mode: server.protocol === "2026-07-28" ? { pin: "2026-07-28" } : server.protocol,
          probe: { timeoutMs: probeMillis }
        },
        // The session fulfils `input_required` results itself (it knows which call, tool and caller asked).
        inputRequired: { autoFulfill: false },
        listMaxPages: 1_000,
        listChanged: {
          tools: { autoRefresh: false, debounceMs: 0, onChanged: changedList("tools") },
          resources: { autoRefresh: false, debounceMs: 0, onChanged: changedList("resources") },
          prompts: { autoRefresh: false, debounceMs: 0, onChanged: changedList("prompts") }
        }
      }
    )
    Interaction.register(client, handlers, origin, runHandler, onAsked)
    client.setNotificationHandler("notifications/resources/updated", ({ params }) => {
      for (const f of resourceUpdated) f(params.uri)
    })
    client.setNotificationHandler("notifications/progress", ({ params: { progressToken, ...progress } }) => {
      progressOf.get(String(progressToken))?.(progress)
    })
    return client
  }

  // One connect on a fresh transport and client; closed again if it fails.
  const connectWith = (prior: PriorDiscovery | undefined) =>
    Effect.gen(function*() {
      const opened = yield* transports.open(server)
      // Answers are completed first (the SDK sees them after the probe race's filter).
      const transport = completeByDefault(opened.transport)
      const race = stdio && prior === undefined ? ProbeRace.wrap(transport) : undefined
      const client = newClient()
      const stderr = () => opened.stderrTail?.() || undefined
      const close = Effect.promise(async () => {
        if (opened.terminate) await opened.terminate().catch(() => undefined)
        await client.close().catch(() => undefined)
      })
      const failed = (error: unknown) => {
        const reason = reasonFromSdk(server.name, error, "connect", connectMillis, stderr())
        return new McpSessionError({
          reason: reason._tag === "Timeout" || reason._tag === "Unauthorized" ? reason : new ConnectFailed({
            server: server.name,
            message: clean("message" in reason ? reason.message : new McpSessionError({ reason }).message),
            ...(stderr() ? { stderr: stderr()! } : {})
          })
        })
      }
      const exitedOnProbe = yield* Effect.tryPromise({
        try: (signal) =>
          client.connect(race?.transport ?? transport, {
            signal,
            timeout: connectMillis,
            ...(prior ? { prior } : {})
          }).then(
            () => false,
            (error: unknown) => {
              if (isExitOnProbe(error)) return true
              throw error
            }
          ),
        catch: failed
      }).pipe(Effect.onError(() => close))
      if (exitedOnProbe) {
        yield* close
        return undefined
      }
      return { opened, client, stderr, close, probeAnswered: race?.answered() ?? true }
    })

  const connectAll = Effect.gen(function*() {
    const first = yield* connectWith(options.prior)
    if (first !== undefined) return { ...first, exitedOnProbe: false }
    // A stdio server built on an SDK that exits on any request before `initialize`: legacy, on a new process.
    const second = yield* connectWith({ kind: "legacy" })
    if (second === undefined) {
      return yield* new McpSessionError({
        reason: new ConnectFailed({ server: server.name, message: "the server exited during the version negotiation" })
      })
    }
    return { ...second, exitedOnProbe: true }
  })
  const { client, close, exitedOnProbe, opened, probeAnswered, stderr } = yield* connectAll.pipe(
    Effect.timeoutOrElse({
      duration: server.connectTimeout,
      orElse: () =>
        Effect.fail(
          new McpSessionError({
            reason: new Timeout({ server: server.name, operation: "connect", timeoutMillis: connectMillis })
          })
        )
    })
  )
  yield* Effect.addFinalizer(() => Effect.andThen(Effect.sync(() => (open = false)), close))

  const closedSignal = yield* Deferred.make<void>()
  let open = true
  client.onclose = () => {
    open = false
    Deferred.doneUnsafe(closedSignal, Effect.void)
  }
  if (!client.transport) open = false

  // A request's failure names this session when it is about the session (it died, or did not answer in time).
  const ofThisSession = (reason: Reason): Reason =>
    reason._tag === "Closed"
      ? new Closed({ ...reason, message: clean(reason.message), session: id })
      : reason._tag === "Timeout"
      ? new Timeout({ ...reason, session: id })
      : reason._tag === "Protocol"
      ? new Protocol({ ...withCleanData(reason), message: clean(reason.message) })
      : reason
  // An error's `data` that echoes a secret of the server's configuration is dropped whole.
  const withCleanData = (reason: Protocol): Protocol => {
    if (reason.data === undefined) return reason
    const text = JSON.stringify(reason.data) ?? ""
    if (clean(text) === text) return reason
    const { data: _, ...rest } = reason
    return new Protocol(rest)
  }
  const fail = (operation: string, timeoutMillis: number) => (error: unknown) =>
    new McpSessionError({
      reason: ofThisSession(
        open ?
          reasonFromSdk(server.name, error, operation, timeoutMillis, stderr()) :
          new Closed({
            server: server.name,
            message: `transport closed during ${operation}`,
            ...(stderr() ? { stderr: stderr()! } : {})
          })
      )
    })
  const timedOut = (operation: string, timeoutMillis: number) =>
    new McpSessionError({ reason: new Timeout({ server: server.name, operation, timeoutMillis, session: id }) })

  const era = client.getProtocolEra() ?? "legacy"
  const prior = options.prior
  // Connecting from a prior 2026-07-28 verdict costs no round trip: the SDK returns as soon as the transport starts
  // (for stdio, before the child is ready) and opens no `subscriptions/listen` stream. One request here makes the
  // session ready before it is leased, and subscribes to list changes like a negotiated session.
  if (prior?.kind === "modern" && era === "modern") {
    const advertised = prior.discover.capabilities
    const filter = {
      ...(advertised?.tools?.listChanged === true ? { toolsListChanged: true } : {}),
      ...(advertised?.resources?.listChanged === true ? { resourcesListChanged: true } : {}),
      ...(advertised?.prompts?.listChanged === true ? { promptsListChanged: true } : {})
    }
    yield* Effect.tryPromise({
      try: (signal): Promise<unknown> =>
        Object.keys(filter).length > 0
          ? client.listen(filter, { signal, timeout: connectMillis })
          : client.discover({ signal, timeout: connectMillis }),
      catch: (error) => {
        // A login refused here is the caller's, not the server's failure (it does not count for the circuit).
        const reason = reasonFromSdk(server.name, error, "connect", connectMillis, stderr())
        return new McpSessionError({
          reason: reason._tag === "Unauthorized" ? reason : new ConnectFailed({
            server: server.name,
            message: clean(error instanceof Error ? error.message : String(error)),
            ...(stderr() ? { stderr: stderr()! } : {})
          })
        })
      }
    }).pipe(
      Effect.timeoutOrElse({
        duration: server.connectTimeout,
        orElse: () => Effect.fail(timedOut("connect", connectMillis))
      })
    )
  }
  // The log level the server sends at: set once on a 2025-era session; sent with every 2026-07-28 request.
  if (logLevel !== undefined && era === "legacy" && client.getServerCapabilities()?.logging !== undefined) {
    yield* Effect.promise(() => client.setLoggingLevel(logLevel).catch(() => undefined))
  }
  // Roots changed: 2025-era servers are told.
  const rootsChanges = handlers.roots?.changes
  if (rootsChanges !== undefined && era === "legacy") {
    yield* rootsChanges.pipe(
      Stream.runForEach(() => Effect.promise(() => client.sendRootsListChanged().catch(() => undefined))),
      Effect.forkScoped
    )
  }
  const connectedAt = yield* Clock.currentTimeMillis
  const discover: DiscoverResult | undefined = client.getDiscoverResult()

  // Every request, on every clock: the deadline is Effect's (`Clock.sleep`, so a `TestClock` drives it as the live
  // clock does), and an interrupted or timed-out request is aborted, which cancels it on the wire.
  const request = <A>(
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

  // A `tools/call` at the SDK's request level, `input_required` rounds fulfilled on this session (internal/toolCall.ts).
  const callTool = ToolCall.makeCallTool({
    client,
    era,
    server: server.name,
    sessionId: id,
    logLevel,
    handlers,
    run: runHandler,
    inFlight,
    progressOf,
    markInteractive: (result) => void Object.defineProperty(result, interactiveMark, { value: true })
  })
  // A result the caller's own rounds led to (an `input_required` handed back, or the answer to a retry) is its own.
  const marked = <A extends object>(result: A, rounds: ClientRounds | undefined): A => {
    if (Rounds.passesThrough(era, rounds) && (isInputRequiredResult(result) || isRetry(rounds))) {
      Object.defineProperty(result, interactiveMark, { value: true })
    }
    return result
  }

  // -----------------------------------------------------------------------------
  // Resources, prompts, completion: each one request through `request` (deadline, cancellation, typed errors)
  // -----------------------------------------------------------------------------

  const capabilities = client.getServerCapabilities()
  const hintsOf = (result: unknown): Omit<Listed<never>, "items"> => {
    const hints = result as { ttlMs?: unknown; cacheScope?: unknown }
    return {
      ttlMs: typeof hints.ttlMs === "number" ? hints.ttlMs : undefined,
      cacheScope: hints.cacheScope === "public" || hints.cacheScope === "private" ? hints.cacheScope : undefined
    }
  }
  // 2026-07-28 subscriptions of this session, by URI: a `subscriptions/listen` stream each.
  const listens = new Map<string, Promise<McpSubscription>>()
  const surface = {
    capabilities,
    listResources: (timeout: Duration.Duration) =>
      capabilities?.resources === undefined
        ? Effect.succeed<Listed<Resource>>({ items: [] })
        : request("resources/list", timeout, async (signal, sdkTimeout) => {
          const result = await client.listResources(undefined, { signal, timeout: sdkTimeout, cacheMode: "bypass" })
          return { items: result.resources, ...hintsOf(result) }
        }),
    listResourceTemplates: (timeout: Duration.Duration) =>
      capabilities?.resources === undefined
        ? Effect.succeed<Listed<ResourceTemplateType>>({ items: [] })
        : request("resources/templates/list", timeout, async (signal, sdkTimeout) => {
          const result = await client.listResourceTemplates(undefined, {
            signal,
            timeout: sdkTimeout,
            cacheMode: "bypass"
          })
          return { items: result.resourceTemplates, ...hintsOf(result) }
        }),
    readResource: (uri: string, timeout: Duration.Duration, rounds?: ClientRounds) =>
      request(
        "resources/read",
        timeout,
        (signal, sdkTimeout) =>
          client.readResource(Rounds.params(era, rounds, { uri }), {
            signal,
            timeout: sdkTimeout,
            cacheMode: "bypass",
            allowInputRequired: Rounds.passesThrough(era, rounds)
          }).then((result) => marked(result, rounds))
      ),
    subscribeResource: (uri: string, timeout: Duration.Duration) =>
      era === "modern"
        ? request("subscriptions/listen", timeout, (_signal, sdkTimeout) => {
          let listen = listens.get(uri)
          if (listen === undefined) {
            // Not the request's signal: the stream outlives this request, until `unsubscribeResource` or the session.
            listen = client.listen({ resourceSubscriptions: [uri] }, { timeout: sdkTimeout })
            listens.set(uri, listen)
            listen.then(
              (subscription) =>
                subscription.closed.then(() => {
                  if (listens.get(uri) === listen) listens.delete(uri)
                }),
              () => {
                if (listens.get(uri) === listen) listens.delete(uri)
              }
            )
          }
          return listen.then(() => undefined)
        })
        : request(
          "resources/subscribe",
          timeout,
          (signal, sdkTimeout) => client.subscribeResource({ uri }, { signal, timeout: sdkTimeout })
        ).pipe(Effect.asVoid),
    unsubscribeResource: (uri: string, timeout: Duration.Duration) =>
      era === "modern"
        ? request("subscriptions/listen", timeout, async () => {
          const listen = listens.get(uri)
          listens.delete(uri)
          if (listen !== undefined) await listen.then((subscription) => subscription.close(), () => undefined)
        })
        : request(
          "resources/unsubscribe",
          timeout,
          (signal, sdkTimeout) => client.unsubscribeResource({ uri }, { signal, timeout: sdkTimeout })
        ).pipe(Effect.asVoid),
    listPrompts: (timeout: Duration.Duration) =>
      capabilities?.prompts === undefined
        ? Effect.succeed<Listed<Prompt>>({ items: [] })
        : request("prompts/list", timeout, async (signal, sdkTimeout) => {
          const result = await client.listPrompts(undefined, { signal, timeout: sdkTimeout, cacheMode: "bypass" })
          return { items: result.prompts, ...hintsOf(result) }
        }),
    getPrompt: (params: PromptParams, timeout: Duration.Duration, rounds?: ClientRounds) =>
      request(
        `prompts/get ${params.name}`,
        timeout,
        (signal, sdkTimeout) =>
          client.getPrompt(
            Rounds.params(era, rounds, {
              name: params.name,
              ...(params.arguments === undefined ? {} : { arguments: { ...params.arguments } })
            }),
            { signal, timeout: sdkTimeout, allowInputRequired: Rounds.passesThrough(era, rounds) }
          ).then((result) => marked(result, rounds))
      ),
    complete: (params: CompleteRequest["params"], timeout: Duration.Duration) =>
      request(
        "completion/complete",
        timeout,
        (signal, sdkTimeout) => client.complete(params, { signal, timeout: sdkTimeout })
      ),
    onListChanged: (f: (list: ListKind) => void) => {
      listChanged.push(f)
    },
    onResourceUpdated: (f: (uri: string) => void) => {
      resourceUpdated.push(f)
    }
  }

  // The verdict for later sessions. A legacy verdict after a probe that only timed out (no answer to the probe nor to
  // the ping after it) may be a modern server that was slow to start: not kept, so that the next session probes again.
  const tentative = era === "legacy" && stdio && server.protocol === "auto" && !exitedOnProbe &&
    prior === undefined && !probeAnswered
  const session: McpSession = {
    server: server.name,
    id,
    protocolVersion: client.getNegotiatedProtocolVersion() ?? "unknown",
    era,
    transport: opened.kind,
    pid: opened.pid,
    openedAt: connectedAt,
    connectMillis: connectedAt - startedAt,
    prior: era === "modern" && discover !== undefined
      ? { kind: "modern", discover }
      : tentative
      ? undefined
      : { kind: "legacy" },
    callTool: (params, timeout, callOptions) =>
      request(
        `tools/call ${params.name}`,
        timeout,
        (signal, sdkTimeout) => callTool(params, signal, sdkTimeout, callOptions)
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
    kill: () => {
      open = false
      if (opened.kill !== undefined) opened.kill()
      else void client.close().catch(() => undefined)
    },
    closed: Deferred.await(closedSignal),
    onToolsChanged: (f) => {
      toolsChanged.push(f)
    },
    ...surface,
    client
  }
  return session
})

// Results that took `input_required` rounds carry this mark (not enumerable, so never serialized): they depend on
// what a user answered, so they are never cached. The mark lives on the result, not in module state.
const interactiveMark = Symbol.for("@mcp-bridge/core/McpSession/interactive")

/**
 * True for a result that took rounds of user input (2026-07-28 `input_required`): it must not be cached.
 *
 * @since 0.1.0
 */
export const isInteractive = (result: CallToolResult): boolean =>
  (result as { readonly [interactiveMark]?: boolean })[interactiveMark] === true

// The SDK's typed failure of a probe on a connection that closed: a stdio server that exits on `server/discover`.
const isExitOnProbe = (error: unknown): boolean =>
  error instanceof SdkError && error.code === SdkErrorCode.EraNegotiationFailed &&
  /closed during the server\/discover probe/.test(error.message)
