/**
 * The gateway: the bridge served as one MCP server, over Streamable HTTP at `/mcp` (both protocol eras side by side:
 * 2026-07-28 requests stateless, 2025-era clients with sessions) or over stdio, so that any MCP client (Claude
 * Desktop, Claude Code, Cursor, VS Code, the MCP Inspector, an agent framework) reaches every configured server
 * through the bridge's pool, cache, limits, breakers and telemetry.
 *
 * Built on the official SDK v2 server (`@modelcontextprotocol/server`: the low-level `Server` from a cheap factory,
 * `createMcpHandler` and the Streamable HTTP server transport, `serveStdio`) over the `McpBridge` service in context;
 * the HTTP server is a scoped `node:http` server (closed, after draining, with the layer's scope). Every `tools/call`
 * runs `McpBridge.callTool` under the downstream request's `AbortSignal`, as the `CallerIdentity` of its principal;
 * resources, resource templates, prompts and completion are served when an upstream lists them (advertised from what
 * the servers list at start), and the bridge's `changes` reach downstream clients as list changes and
 * `resources/updated`. With a `Relay` (see `layerRelay`; `serveGateway` and the CLI use one), what an upstream asks
 * during a call (elicitation, sampling, roots, log messages) reaches the downstream request that made it. Tool (and
 * prompt) names follow the configuration's `gateway` section (see `BridgeConfigSchema.GatewaySettings`).
 *
 * @since 0.1.0
 */
import {
  type BridgeConfigError,
  BridgeConfigSchema,
  CallerIdentity,
  ClientHandlers,
  McpAuth,
  McpBridge,
  MetricsRecorder,
  TelemetryExport
} from "@mcp-bridge/core"
import type { AuthInfo, CallToolResult, Server, ServerCapabilities, ServerEvent } from "@modelcontextprotocol/server"
import { ProtocolError, ProtocolErrorCode, ResourceNotFoundError } from "@modelcontextprotocol/server"
import { serveStdio } from "@modelcontextprotocol/server/stdio"
import { Cause, Context, Duration, Effect, Exit, Layer, Option, Schema, Scope, Stream } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { hostname } from "node:os"
import * as Dashboard from "./Dashboard.ts"
import * as Bridging from "./gateway/bridging.ts"
import * as Http from "./gateway/http.ts"
import * as Login from "./gateway/login.ts"
import * as McpServer from "./gateway/mcpServer.ts"
import * as Naming from "./gateway/naming.ts"
import * as OAuth from "./gateway/oauth.ts"
import * as ParamHeaders from "./gateway/paramHeaders.ts"
import * as RelayRegistry from "./gateway/relay.ts"
import * as Rounds from "./gateway/rounds.ts"
import * as NodeTransport from "./NodeTransport.ts"
import { GatewayReplicas, redisGauges } from "./replica/GatewayReplicas.ts"

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * Two tools would be served under one name (prefix mode `never` with a tool in two servers, or renames that clash).
 *
 * @since 0.1.0
 */
export class DuplicateNames extends Schema.TaggedClass<DuplicateNames>()("DuplicateNames", {
  names: Schema.Array(Schema.Struct({ name: Schema.String, tools: Schema.Array(Schema.String) }))
}) {}

/**
 * The HTTP server could not listen on `host:port` (in use, not permitted, no such address).
 *
 * @since 0.1.0
 */
export class ListenFailed extends Schema.TaggedClass<ListenFailed>()("ListenFailed", {
  host: Schema.String,
  port: Schema.Finite,
  detail: Schema.String
}) {}

/**
 * The `gateway` section of the configuration is invalid (`path` names the field).
 *
 * @since 0.1.0
 */
export class InvalidSettings extends Schema.TaggedClass<InvalidSettings>()("InvalidSettings", {
  path: Schema.Array(Schema.String),
  detail: Schema.String
}) {}

/**
 * Why the gateway could not start: `DuplicateNames`, `ListenFailed` or `InvalidSettings`.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([DuplicateNames, ListenFailed, InvalidSettings])

/**
 * The type of a `GatewayError`'s `reason`.
 *
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * The gateway could not start.
 *
 * @since 0.1.0
 */
export class GatewayError extends Schema.TaggedError<GatewayError>()("GatewayError", { reason: Reason }) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "DuplicateNames":
        return `two tools would be served under one name: ${
          r.names.map((d) => `"${d.name}" (${d.tools.join(", ")})`).join("; ")
        }. Use "gateway": { "prefix": "auto" | "always" }, a rename, or an exclude glob`
      case "ListenFailed":
        return `cannot listen on ${r.host}:${r.port}: ${r.detail}`
      case "InvalidSettings":
        return `gateway.${r.path.join(".")}: ${r.detail}`
    }
  }
}

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * A running gateway.
 *
 * @since 0.1.0
 */
export class Gateway extends Context.Service<Gateway, Gateway.Service>()("@mcp-bridge/node/Gateway") {}

/**
 * The type of the gateway service, `Gateway.Service`.
 *
 * @since 0.1.0
 */
export declare namespace Gateway {
  /**
   * What a running gateway offers.
   *
   * @since 0.1.0
   */
  export interface Service {
    /** The MCP endpoint, e.g. `http://127.0.0.1:8080/mcp` (`stdio:` for a stdio gateway). */
    readonly url: string
    /** The bound port (0 for stdio). */
    readonly port: number
    /** 2025-era downstream sessions open now. */
    readonly sessions: () => number
    /** Tells every downstream client the tool list changed (after a configuration change, for instance). */
    readonly toolsChanged: () => void
    /**
     * Applies a new configuration (`{ mcpServers, bridge?, gateway? }`) without dropping calls (see
     * `McpBridge.reconfigure`): downstream clients are told the lists changed, and the gateway's naming follows the
     * new `gateway` section. Settings the running gateway cannot change (`gateway.apiKeys`, `gateway.oauth`,
     * `gateway.virtualServers`) are kept as they are and reported in `needsRestart`. An invalid configuration changes nothing and fails with
     * `BridgeConfigError` or `GatewayError` (`InvalidSettings`), naming the field.
     */
    readonly reload: (config: object) => Effect.Effect<Reloaded, BridgeConfigError.BridgeConfigError | GatewayError>
  }
}

/**
 * What `Gateway.reload` did: the servers added, removed, changed and kept (with `drained`, which completes once the
 * removed and changed servers' calls have ended and their sessions are closed), and the settings left as they were
 * until a restart (e.g. `gateway.apiKeys`).
 *
 * @since 0.1.0
 */
export interface Reloaded extends McpBridge.Reconfigured {
  readonly needsRestart: ReadonlyArray<string>
}

/**
 * The relay of what upstream servers ask during a call (elicitation, sampling, roots) and of their log messages, to
 * the downstream request that made the call: with it in context, each `tools/call` of the gateway is entered in it for
 * its duration, and the bridge's `ClientHandlers` (see `layerRelay`) answer from it. A downstream client is asked only
 * what it declared it supports (a 2026-07-28 request, which has no server→client channel: in `input_required` rounds
 * of the gateway's own, its `requestState` sealed); otherwise, or with no call to relay to, the upstream is refused
 * with an error saying why. Without a relay, the bridge's own handlers answer (by default none).
 *
 * @since 0.1.0
 */
export class Relay extends Context.Service<Relay, Relay.Service>()("@mcp-bridge/node/Gateway/Relay") {}

/**
 * The type of the relay service, `Relay.Service`.
 *
 * @since 0.1.0
 */
export declare namespace Relay {
  /**
   * The registry of the gateway's calls in flight and the bridge handlers that answer from it.
   *
   * @since 0.1.0
   */
  export interface Service extends RelayRegistry.Relay {}
}

// The upstream logins each relay asks for (see `layerRelay`), served by the gateway it is given to.
const logins = new WeakMap<RelayRegistry.Relay, Login.Login>()

/**
 * A new relay, as both the gateway's `Relay` and the bridge's `ClientHandlers`: give the same layer to the bridge
 * (`McpBridge.layer(config, { handlers })`, so that it advertises and answers what the gateway relays) and to the
 * gateway. Each call makes a new registry, shared by every build of the layer it returns.
 *
 * It is also an `AuthInteraction` for the bridge's `McpAuth` (`McpAuth.layerMemory().pipe(Layer.provide(relay))`):
 * when an upstream server needs the caller's own login, the downstream client of the call gets a URL-mode
 * elicitation to the authorization page, the user's browser comes back to the gateway's `/oauth/callback`, and the
 * token is kept for that caller (`CallerIdentity`).
 *
 * @example
 * ```ts
 * const relay = Gateway.layerRelay()
 * const Live = Gateway.layer({ port: 8080 }).pipe(
 *   Layer.provide(McpBridge.layer(config, { transport: NodeTransport.layer(), handlers: relay })),
 *   Layer.provide(relay)
 * )
 * ```
 *
 * @since 0.1.0
 */
export const layerRelay = (): Layer.Layer<Relay | ClientHandlers.ClientHandlers | McpAuth.AuthInteraction> => {
  const relay = RelayRegistry.make()
  const login = Login.make(relay)
  logins.set(relay, login)
  return Layer.succeedContext(
    Context.make(Relay, relay).pipe(
      Context.add(ClientHandlers.ClientHandlers, relay.handlers),
      Context.add(McpAuth.AuthInteraction, login.interaction)
    )
  )
}

/**
 * Options of the gateway: what it serves (`settings`, the configuration's `gateway` section) and how it listens.
 *
 * @since 0.1.0
 */
export interface Options {
  /** The `gateway` section of the configuration (naming, virtual servers, API keys, OAuth). @default {} */
  readonly settings?: unknown
  /** @default 8080; 0 for an ephemeral port */
  readonly port?: number | undefined
  /** @default "127.0.0.1" */
  readonly host?: string | undefined
  /**
   * Host names accepted in the `Host` and `Origin` headers (DNS rebinding protection).
   * @default the localhost names when `host` is a loopback address, else any
   */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  /** The name and version the gateway announces. @default { name: "mcp-bridge", version: "0.1.0" } */
  readonly serverInfo?: { readonly name: string; readonly version: string } | undefined
  /** How long shutdown waits for requests in flight. @default "10 seconds" */
  readonly drainTimeout?: Duration.Input | undefined
  /** A 2025-era downstream session unused this long is closed. @default "30 minutes" */
  readonly sessionIdleTimeout?: Duration.Input | undefined
  /**
   * Requests the gateway does not serve itself (anything but `/mcp`, `/healthz`, `/readyz`, `/metrics`), e.g. a
   * dashboard at `/`: return `true` when handled; otherwise the gateway answers 404.
   * @default none
   */
  readonly extraRoutes?: ((req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>) | undefined
  /**
   * The live dashboard at `/` (see `Dashboard`), or `false` for none. When the gateway has API keys or OAuth, only
   * keys with `admin: true` and access tokens with `gateway.oauth.adminScope` open it. Ignored when `extraRoutes` is
   * given.
   * @default on
   */
  readonly dashboard?: Dashboard.Options | false | undefined
}

const decodeSettings = (input: unknown) =>
  Schema.decodeUnknownEffect(BridgeConfigSchema.GatewaySettings)(input ?? {}, { onExcessProperty: "error" }).pipe(
    Effect.mapError((error) =>
      new GatewayError({ reason: new InvalidSettings({ path: [], detail: error.message.replace(/\s+/g, " ") }) })
    )
  )

// A failed call becomes a tool error result (what a model can read and act on); an unknown tool a protocol error, and
// so does an upstream's error that is the downstream client's (see `gateway/rounds.ts`).
const failureResult = (cause: Cause.Cause<unknown>, retry: boolean): CallToolResult => {
  const error = Cause.squash(cause)
  const relayed = Rounds.relayedError(error, retry)
  if (relayed !== undefined) throw relayed
  if (typeof error === "object" && error !== null && "_tag" in error && error._tag === "McpBridgeError") {
    const reason = (error as McpBridge.CallError & { reason: { _tag: string } }).reason
    if (reason._tag === "UnknownTool" || reason._tag === "InvalidCall") {
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, String((error as { message?: unknown }).message))
    }
  }
  return {
    content: [{ type: "text", text: error instanceof Error ? error.message : String(error) }],
    isError: true
  }
}

/**
 * The gateway's MCP serving over the `McpBridge` in context: the server factory and backend both faces (HTTP and
 * stdio) use.
 */
const makeCore = Effect.fnUntraced(function*(options: Options) {
  const settings = yield* decodeSettings(options.settings)
  const oauth = settings.oauth
  const invalid = oauth === undefined ? undefined : OAuth.validate(oauth)
  if (invalid !== undefined) {
    return yield* new GatewayError({ reason: new InvalidSettings({ path: [...invalid.path], detail: invalid.detail }) })
  }
  const bridge = yield* McpBridge.McpBridge
  const relay = yield* Effect.serviceOption(Relay)
  const context = yield* Effect.context<never>()
  const run = Effect.runPromiseExitWith(context)
  let namer = Naming.makeNamer(settings, bridge.servers)
  const views = settings.virtualServers ?? {}
  const keyTools = new Map((settings.apiKeys ?? []).map((k) => [k.principal, k.tools]))
  let onChanged: () => void = () => undefined
  let onListChanged: (list: "resources" | "prompts") => void = () => undefined
  let onUpdated: (uri: string) => void = () => undefined
  let promptNamer = Naming.makePromptNamer(settings, bridge.servers)
  const inView = (name: string | undefined) => {
    const servers = name === undefined ? undefined : views[name]?.servers
    return servers === undefined ? () => true : (server: string) => servers.includes(server)
  }
  // One request of the bridge's other surfaces as `principal`: a failure becomes a protocol error naming it.
  const ask = async <A>(
    effect: Effect.Effect<A, unknown>,
    principal: string | undefined,
    signal: AbortSignal,
    retry = false
  ): Promise<A> => {
    const exit = await run(effect.pipe(Effect.provideService(CallerIdentity, principal)), { signal })
    if (Exit.isSuccess(exit)) return exit.value
    if (signal.aborted) throw new ProtocolError(ProtocolErrorCode.InternalError, "the request was cancelled")
    const error = Cause.squash(exit.cause)
    const relayed = Rounds.relayedError(error, retry)
    if (relayed !== undefined) throw relayed
    const tag = (error as { reason?: { _tag?: unknown } } | undefined)?.reason?._tag
    const invalid = typeof tag === "string" && (tag.startsWith("Unknown") || tag === "InvalidCall")
    throw new ProtocolError(
      invalid ? ProtocolErrorCode.InvalidParams : ProtocolErrorCode.InternalError,
      error instanceof Error ? error.message : String(error)
    )
  }

  // A request other than a call, entered in the relay for its duration under each of `servers` (no tool: what those
  // servers ask while it runs, and no call of theirs claims, goes to its client).
  const relayed = async <A>(
    servers: ReadonlyArray<string>,
    principal: string | undefined,
    target: RelayRegistry.Target,
    request: () => Promise<A>
  ): Promise<A> => {
    if (Option.isNone(relay)) return request()
    const leave = servers.map((server) => relay.value.register({ identity: principal, server, tool: "", target }))
    try {
      return await request()
    } finally {
      for (const left of leave) left()
    }
  }

  // What the upstreams offer besides tools, as found at start: a kind no server lists is not advertised.
  const [resources0, templates0, prompts0] = yield* Effect.all(
    [bridge.listResources(), bridge.listResourceTemplates(), bridge.listPrompts()],
    { concurrency: "unbounded" }
  )
  const hasResources = resources0.length + templates0.length > 0
  const capabilities: { -readonly [K in keyof ServerCapabilities]: ServerCapabilities[K] } = {
    ...(hasResources ? { resources: { subscribe: true, listChanged: true } } : {}),
    ...(prompts0.length > 0 ? { prompts: { listChanged: true } } : {}),
    ...(templates0.length + prompts0.length > 0 ? { completions: {} } : {})
  }
  // A server added later with resources or prompts: sessions opened from then on are offered them.
  const widen = (list: "resources" | "prompts") => {
    if (list === "resources") capabilities.resources ??= { subscribe: true, listChanged: true }
    else capabilities.prompts ??= { listChanged: true }
    capabilities.completions ??= {}
  }

  // The catalog per principal, rebuilt from the bridge's tool index when asked for by a list, or by a call that
  // names a tool it does not have; a change of names is announced to downstream clients.
  const catalogs = new Map<string | undefined, Naming.Catalog>()
  // Without the servers in `skip` (their login waits for the user): such a catalog is not announced as a change.
  const build = async (principal: string | undefined, skip?: ReadonlySet<string>): Promise<Naming.Catalog> => {
    const listing = skip === undefined || skip.size === 0 ? bridge.listTools() : Effect.forEach(
      bridge.servers.filter((server) => !skip.has(server)),
      (server) => bridge.listServerTools(server).pipe(Effect.orElseSucceed(() => [])),
      { concurrency: "unbounded" }
    ).pipe(Effect.map((lists) => lists.flat()))
    const exit = await run(listing.pipe(Effect.provideService(CallerIdentity, principal)))
    const catalog = namer(Exit.isSuccess(exit) ? exit.value : [])
    for (const d of catalog.duplicates) {
      await run(Effect.logWarning(`gateway: "${d.name}" is served by ${d.tools.join(" and ")}: only the first is`))
    }
    const before = catalogs.get(principal)
    catalogs.set(principal, catalog)
    if (before !== undefined && (skip === undefined || skip.size === 0) && !sameNames(before, catalog)) onChanged()
    return catalog
  }
  // The servers each caller was offered a sign-in tool for (see `catalogModern`).
  const signInNeeded = new Map<string | undefined, Set<string>>()
  // What a caller sees: its API key's tools, or its access token's scopes' (see `gateway.oauth.scopes`). Every call
  // routes through it (and a token's call checks it once more for step-up), so each view is kept with its catalog,
  // by virtual server and allowed globs: filtering every tool is done once per catalog, not per call.
  const viewsOf = new WeakMap<Naming.Catalog, Map<string, Naming.Catalog>>()
  const view = (
    catalog: Naming.Catalog,
    principal: string | undefined,
    name: string | undefined,
    authInfo: AuthInfo | undefined
  ) => {
    const allowed = principal === undefined
      ? undefined
      : keyTools.get(principal) ?? (oauth === undefined ? undefined : OAuth.toolsOf(oauth, authInfo))
    if (name === undefined && allowed === undefined) return catalog
    const key = `${name ?? ""}\u0000${allowed === undefined ? "\u0001" : allowed.join("\u0000")}`
    let kept = viewsOf.get(catalog)
    if (kept === undefined) viewsOf.set(catalog, kept = new Map())
    let seen = kept.get(key)
    if (seen === undefined) {
      const scoped = name === undefined ? catalog : Naming.subset(catalog, views[name] ?? {})
      seen = allowed === undefined ? scoped : Naming.subset(scoped, { tools: allowed })
      // Bounded: as many entries as virtual servers times the distinct scope sets seen, cleared past 256.
      if (kept.size >= 256) kept.clear()
      kept.set(key, seen)
    }
    return seen
  }

  const backend: McpServer.Backend = {
    // While a `tools/list` builds the caller's catalog, what an upstream needs of the user to list (its login) is
    // asked of that request's client.
    catalog: async (principal, name, authInfo, target) =>
      view(
        await (target === undefined
          ? build(principal)
          : relayed(bridge.servers, principal, target, () => build(principal))),
        principal,
        name,
        authInfo
      ),
    // A server whose login for the caller waits for the user is not waited for; one that asks for a login now is
    // refused at once (this request cannot ask): each is served as a sign-in tool to a client that can follow it.
    catalogModern: async (principal, name, authInfo, declared) => {
      const servers = bridge.servers.filter(inView(name))
      const login = Option.isSome(relay) ? logins.get(relay.value) : undefined
      const waiting = new Set(login?.pendingOf(principal, servers) ?? [])
      const asked = new Set<string>()
      const refuse = () => Promise.reject(new Error("offered to the client as a sign-in tool"))
      const leave = Option.isNone(relay) ?
        [] :
        servers.filter((server) => !waiting.has(server)).map((server) =>
          relay.value.register({
            identity: principal,
            server,
            tool: "",
            target: {
              capabilities: declared.elicitation?.url === undefined ? {} : { elicitation: { url: {} } },
              elicit: () => {
                asked.add(server)
                return refuse()
              },
              sample: refuse,
              listRoots: refuse,
              log: () => Promise.resolve()
            }
          })
        )
      let catalog: Naming.Catalog
      try {
        catalog = await build(principal, waiting)
      } finally {
        for (const left of leave) left()
      }
      // Remembered until a sign-in succeeds or the server is listed: a refused login may not be tried on every list.
      const needed = signInNeeded.get(principal) ?? new Set<string>()
      for (const server of [...waiting, ...asked]) needed.add(server)
      for (const tool of catalog.tools) needed.delete(tool.server)
      if (needed.size > 0) signInNeeded.set(principal, needed)
      else signInNeeded.delete(principal)
      // A sign-in tool is seen like any tool: its name passes the caller's and the view's filters.
      const offered = declared.elicitation?.url === undefined || needed.size === 0
        ? catalog
        : Naming.withSignIn(catalog, settings, servers.filter((server) => needed.has(server)))
      return view(offered, principal, name, authInfo)
    },
    signInTool: (principal, name, authInfo, tool) =>
      view(Naming.withSignIn(Naming.empty, settings, bridge.servers), principal, name, authInfo).byName.get(tool),
    signIn: async (server, principal, signal, target) => {
      const exit = await relayed(
        [server],
        principal,
        target,
        () => run(bridge.listServerTools(server).pipe(Effect.provideService(CallerIdentity, principal)), { signal })
      )
      if (Exit.isFailure(exit)) return failureResult(exit.cause, false)
      signInNeeded.get(principal)?.delete(server)
      // The server's tools join the caller's catalog (announced to its clients as a list change).
      await build(principal)
      return {
        content: [{
          type: "text",
          text: `Signed in to "${server}": list the tools again to see its ${exit.value.length}.`
        }]
      }
    },
    // A call looks its tool up in the last catalog built; a miss rebuilds it once (a tool just added).
    routing: async (principal, name, authInfo) => {
      const cached = catalogs.get(principal)
      return view(cached ?? await build(principal), principal, name, authInfo)
    },
    call: async (tool, args, { meta, onProgress, principal, rounds, signal, target }) => {
      const effect = bridge.callTool({ server: tool.server, tool: tool.tool }, args, {
        ...(meta === undefined ? {} : { meta }),
        ...(onProgress === undefined ? {} : { onProgress }),
        ...(rounds === undefined ? {} : { rounds })
      }).pipe(Effect.provideService(CallerIdentity, principal))
      // What the upstream asks during the call is relayed to this request's client.
      const leave = Option.isSome(relay)
        ? relay.value.register({ identity: principal, server: tool.server, tool: tool.tool, target })
        : undefined
      const exit = await run(effect, { signal }).finally(leave)
      if (Exit.isSuccess(exit)) return exit.value
      if (signal.aborted) throw new ProtocolError(ProtocolErrorCode.InternalError, "the request was cancelled")
      return failureResult(exit.cause, Rounds.isRetry(rounds))
    },
    capabilities,
    resources: (name, signal) =>
      ask(bridge.listResources(), undefined, signal).then((all) =>
        all.filter((r) => inView(name)(r.server)).map(({ server: _, ...resource }) => resource)
      ),
    templates: (name, signal) =>
      ask(bridge.listResourceTemplates(), undefined, signal).then((all) =>
        all.filter((t) => inView(name)(t.server)).map(({ server: _, ...template }) => template)
      ),
    // A URI no server has, or one its server refuses as invalid: "not found", naming the URI in `data` (SEP-2164).
    // What an upstream asks while it reads goes to this request's client (the URI's server is the bridge's to find).
    read: (uri, principal, signal, target, rounds) =>
      relayed(
        bridge.servers,
        principal,
        target,
        () =>
          ask(
            bridge.readResource(uri, rounds === undefined ? {} : { rounds }),
            principal,
            signal,
            Rounds.isRetry(rounds)
          )
      ).catch((error: unknown) => {
        if (error instanceof ProtocolError && error.code === ProtocolErrorCode.InvalidParams) {
          throw new ResourceNotFoundError(uri, error.message)
        }
        throw error
      }),
    subscribe: (uri, on) =>
      ask(
        on ? bridge.subscribeResource(uri) : bridge.unsubscribeResource(uri),
        undefined,
        new AbortController().signal
      ),
    prompts: (name, signal) =>
      ask(bridge.listPrompts(), undefined, signal).then((all) =>
        promptNamer(all.filter((p) => inView(name)(p.server)))
      ),
    getPrompt: (prompt, args, principal, signal, target, rounds) =>
      relayed([prompt.server], principal, target, () =>
        ask(
          bridge.getPrompt(
            { server: prompt.server, prompt: prompt.prompt },
            args,
            rounds === undefined ? {} : { rounds }
          ),
          principal,
          signal,
          Rounds.isRetry(rounds)
        )),
    complete: (params, principal, signal) => ask(bridge.complete(params), principal, signal)
  }
  const info = {
    name: options.serverInfo?.name ?? "mcp-bridge",
    version: options.serverInfo?.version ?? "0.1.0"
  }
  // One registry of bridged calls for every view; with replicas, a retry whose call another replica holds goes there.
  const replicas = Option.getOrUndefined(yield* Effect.serviceOption(GatewayReplicas))
  const bridging = Bridging.make(
    McpServer.BRIDGED_IDLE_MILLIS,
    replicas === undefined ? {} : { keys: replicas.roundKeys, replica: replicas.rounds.replica }
  )
  yield* Effect.addFinalizer(() => Effect.sync(bridging.close))
  replicas?.rounds.serve((retry, signal) => Bridging.answer(bridging, retry, signal))
  const parking: McpServer.Parking = { bridging, forward: replicas?.rounds.forward }
  const factories = new Map<string | undefined, ReturnType<typeof McpServer.makeFactory>>()
  for (const name of [undefined, ...Object.keys(views)]) {
    factories.set(name, McpServer.makeFactory(backend, info, name, parking))
  }
  const factory = (name: string | undefined, authInfo: AuthInfo | undefined) =>
    factories.get(name)!(authInfo === undefined ? {} : { authInfo })

  // Names served twice are a startup error in prefix mode `never` (and for clashing renames in any mode).
  const first = namer(yield* bridge.listTools())
  if (first.duplicates.length > 0) {
    return yield* new GatewayError({ reason: new DuplicateNames({ names: first.duplicates }) })
  }
  catalogs.set(undefined, first)

  // A new configuration: the bridge's servers, and the naming of the new `gateway` section; what needs a restart is
  // kept and reported.
  const restartOnly = ["apiKeys", "oauth", "virtualServers"] as const
  const reload = (input: object) =>
    Effect.gen(function*() {
      const file = input as { readonly mcpServers?: unknown; readonly bridge?: unknown; readonly gateway?: unknown }
      const next = yield* decodeSettings(file.gateway)
      const needsRestart = restartOnly.filter((key) => JSON.stringify(next[key]) !== JSON.stringify(settings[key]))
        .map((key) => `gateway.${key}`)
      const applied = yield* bridge.reconfigure({
        mcpServers: file.mcpServers,
        ...(file.bridge === undefined ? {} : { bridge: file.bridge })
      })
      const { apiKeys: _keys, oauth: _oauth, virtualServers: _views, ...renamed } = next
      const naming = {
        ...renamed,
        ...(settings.apiKeys === undefined ? {} : { apiKeys: settings.apiKeys }),
        ...(settings.oauth === undefined ? {} : { oauth: settings.oauth }),
        ...(settings.virtualServers === undefined ? {} : { virtualServers: settings.virtualServers })
      }
      namer = Naming.makeNamer(naming, bridge.servers)
      promptNamer = Naming.makePromptNamer(naming, bridge.servers)
      catalogs.clear()
      onChanged()
      return { ...applied, needsRestart } satisfies Reloaded
    })

  return {
    reload,
    settings,
    bridge,
    factory,
    // A 2026-07-28 `tools/call` whose `Mcp-Param-*` headers disagree with its arguments is refused before the bridge.
    checkModern: (request: Request, body: unknown, name: string | undefined, authInfo: AuthInfo | undefined) => {
      const call = ParamHeaders.toolsCall(body)
      if (call === undefined) return undefined
      return backend.routing(McpServer.principalOf(authInfo), name, authInfo).then((catalog) => {
        const tool = catalog.byName.get(call.name)
        const found = tool && ParamHeaders.mismatch(tool.definition, call.arguments, request.headers)
        return found === undefined ? undefined : ParamHeaders.refusal(call.id, found)
      })
    },
    // A `tools/call` of a tool outside the access token's scopes that another scope shows (see `gateway.oauth.scopes`):
    // the first such scope in the configuration's order, for a 403 `insufficient_scope`. Unknown tools stay unknown.
    stepUpScope: async (body: unknown, name: string | undefined, authInfo: AuthInfo | undefined) => {
      const scopes = settings.oauth?.scopes
      if (scopes === undefined || authInfo?.extra?.issuer !== settings.oauth?.issuer) return undefined
      const call = ParamHeaders.toolsCall(body)
      if (call === undefined) return undefined
      const principal = McpServer.principalOf(authInfo)
      if ((await backend.routing(principal, name, authInfo)).byName.has(call.name)) return undefined
      const catalog = catalogs.get(principal) ?? await build(principal)
      const scoped = name === undefined ? catalog : Naming.subset(catalog, views[name] ?? {})
      if (!scoped.byName.has(call.name)) return undefined
      for (const [scope, tools] of Object.entries(scopes)) {
        if (Naming.subset(scoped, { tools }).byName.has(call.name)) return { tool: call.name, scope }
      }
      return undefined
    },
    views: Object.keys(views),
    onChanges: (to: {
      readonly tools: () => void
      readonly list: (list: "resources" | "prompts") => void
      readonly updated: (uri: string) => void
    }) => {
      onChanged = to.tools
      onListChanged = to.list
      onUpdated = to.updated
    },
    // An upstream's tool list change drops the catalogs; every change is told to downstream clients.
    watchChanges: Stream.runForEach(bridge.changes, (change) =>
      Effect.sync(() => {
        if (change._tag === "ResourceUpdated") return onUpdated(change.uri)
        if (change.list !== "tools") {
          widen(change.list)
          return onListChanged(change.list)
        }
        catalogs.clear()
        onChanged()
      }))
  }
})

const sameNames = (a: Naming.Catalog, b: Naming.Catalog) =>
  a.tools.length === b.tools.length &&
  a.tools.every((t) => {
    const other = b.byName.get(t.name)?.definition
    return other === t.definition || (other !== undefined && JSON.stringify(other) === JSON.stringify(t.definition))
  })

/**
 * Serves the `McpBridge` in context over Streamable HTTP at `http://host:port/mcp` until the scope closes, then
 * drains: new requests get 503, requests in flight get `drainTimeout` to end, every session is closed.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const recorder = yield* Effect.serviceOption(MetricsRecorder.MetricsRecorder)
  const replicas = yield* Effect.serviceOption(GatewayReplicas)
  const login = Option.getOrUndefined(Option.flatMapNullishOr(yield* Effect.serviceOption(Relay), (r) => logins.get(r)))
  if (Option.isSome(recorder) && Option.isSome(replicas)) {
    const remove = recorder.value.observe(redisGauges(replicas.value))
    yield* Effect.addFinalizer(() => Effect.sync(remove))
  }
  // A tool list change another replica learned: this replica's own upstream sessions may not have heard it.
  if (Option.isSome(replicas)) {
    const bridge = yield* McpBridge.McpBridge
    const stop = replicas.value.bus.subscribeRemote((event) => {
      if (event.kind === "tools_list_changed") Effect.runSync(bridge.dropToolLists())
    })
    yield* Effect.addFinalizer(() => Effect.sync(stop))
  }
  const host = options.host ?? "127.0.0.1"
  const port = options.port ?? 8080
  const context = yield* Effect.context<never>()
  const run = Effect.runPromiseExitWith(context)

  // The port is bound first (answering 503 until the gateway is ready), so that the gateway's own URL is known before
  // anything reaches an upstream: an upstream login started at start-up registers the callback on it.
  let listener: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "retry-after": "1" })
    res.end("the gateway is starting\n")
  }
  let gateway: Http.HttpGateway | undefined
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => listener(req, res))
  const drainMillis = Duration.toMillis(Duration.fromInputUnsafe(options.drainTimeout ?? "10 seconds"))
  const bound = yield* Effect.acquireRelease(
    Effect.callback<AddressInfo, GatewayError>((resume) => {
      const onError = (error: Error) =>
        resume(Effect.fail(new GatewayError({ reason: new ListenFailed({ host, port, detail: error.message }) })))
      server.once("error", onError)
      server.listen(port, host, () => {
        server.off("error", onError)
        resume(Effect.succeed(server.address() as AddressInfo))
      })
    }),
    () =>
      Effect.promise(async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()))
        await gateway?.close(drainMillis)
        server.closeAllConnections()
        await closed
      })
  )
  const shownHost = bound.family === "IPv6" ? `[${bound.address}]` : bound.address
  // The gateway's own URL, the OAuth resource when the configuration names none.
  const ownUrl = `http://${shownHost}:${bound.port}/mcp`
  const configured = (yield* decodeSettings(options.settings)).oauth?.resource
  // Upstream logins come back to the gateway's public origin (the OAuth resource's, when configured).
  login?.listening(new URL(configured ?? ownUrl).origin)

  const core = yield* makeCore(options)
  // With API keys, the dashboard opens to admin keys only (`admin: true`); without any, to whoever reaches the port.
  const keys = core.settings.apiKeys ?? []
  const adminDigests = keys.filter((k) => k.admin === true).map((k) => Buffer.from(k.sha256, "hex"))
  const oauth = core.settings.oauth === undefined ? undefined : OAuth.make(core.settings.oauth, {
    resource: () => ownUrl,
    views: core.views,
    onError: (error) => void run(Effect.logWarning(error.message))
  })
  const dashboard = options.extraRoutes !== undefined || options.dashboard === false
    ? undefined
    : yield* Dashboard.make({
      authorize: (req) => {
        if (keys.length === 0 && oauth === undefined) return true
        const key = Dashboard.presentedKey(req)
        if (key !== undefined) {
          const digest = createHash("sha256").update(key).digest()
          if (adminDigests.some((k) => k.length === digest.length && timingSafeEqual(k, digest))) return true
        }
        return oauth === undefined ? false : oauth.isAdmin(req)
      },
      // Behind one address with other replicas, the page says which replica answered.
      ...(Option.isSome(replicas) ? { replica: process.env.MCP_BRIDGE_REPLICA ?? `${hostname()}:${process.pid}` } : {}),
      ...options.dashboard
    })
  gateway = Http.make({
    factory: core.factory,
    views: core.views,
    allowedHosts: options.allowedHosts ?? Http.defaultAllowedHosts(host),
    apiKeys: core.settings.apiKeys ?? [],
    oauth,
    metrics: () =>
      Option.isSome(recorder)
        ? PrometheusMetrics.formatUnsafe(recorder.value.context, { metricNameMapper: TelemetryExport.prometheusName })
        : "",
    ready: async () => {
      const servers: Record<string, string> = {}
      await Promise.all(core.bridge.servers.map(async (name) => {
        const exit = await run(core.bridge.listServerTools(name).pipe(Effect.timeout("5 seconds")))
        servers[name] = Exit.isSuccess(exit) ? "ok" : Cause.squash(exit.cause) instanceof Error
          ? (Cause.squash(exit.cause) as Error).message
          : "unavailable"
      }))
      return { ok: Object.values(servers).every((s) => s === "ok"), servers }
    },
    extraRoutes: oauth === undefined && login === undefined ? options.extraRoutes ?? dashboard : (req, res) => {
      if (oauth?.serveMetadata(req, res) === true || login?.callback(req, res) === true) return true
      const extra = options.extraRoutes ?? dashboard
      return extra === undefined ? false : extra(req, res)
    },
    sessionIdleMillis: Duration.toMillis(Duration.fromInputUnsafe(options.sessionIdleTimeout ?? "30 minutes")),
    onError: (error) => void run(Effect.logDebug(`gateway: ${error.message}`)),
    replicas: Option.getOrUndefined(replicas),
    checkModern: core.checkModern,
    stepUpScope: core.stepUpScope
  })
  core.onChanges({ tools: gateway.toolsChanged, list: gateway.listChanged, updated: gateway.resourceUpdated })
  yield* Effect.forkScoped(core.watchChanges)
  listener = gateway.listener
  return {
    url: ownUrl,
    port: bound.port,
    sessions: gateway.sessions,
    toolsChanged: gateway.toolsChanged,
    reload: core.reload
  } satisfies Gateway.Service
})

/**
 * The gateway over the `McpBridge` in context, serving Streamable HTTP until the layer's scope closes.
 *
 * @example
 * ```ts
 * const Live = Gateway.layer({ port: 8080 }).pipe(Layer.provide(McpBridge.layer(config, { transport: NodeTransport.layer() })))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Gateway, GatewayError, McpBridge.McpBridge> =>
  Layer.effect(Gateway, make(options))

/**
 * Serves the `McpBridge` in context over this process's stdin and stdout (what Claude Desktop launches) until the
 * scope closes or stdin ends. Upstream list changes and resource updates reach the client: unsolicited on a 2025-era
 * connection, on its `subscriptions/listen` streams on a 2026-07-28 one. Log to stderr only: stdout carries the
 * protocol.
 *
 * @since 0.1.0
 */
export const makeStdio = Effect.fnUntraced(function*(options: Omit<Options, "port" | "host"> = {}) {
  const core = yield* makeCore(options)
  // The connection's one instance (pinned by the SDK at the opening exchange) hears the upstreams' changes.
  let pinned: Server | undefined
  const notify = (event: ServerEvent) => {
    if (pinned !== undefined) McpServer.notify(pinned, event)
  }
  const toolsChanged = () => notify({ kind: "tools_list_changed" })
  core.onChanges({
    tools: toolsChanged,
    list: (list) => notify({ kind: list === "resources" ? "resources_list_changed" : "prompts_list_changed" }),
    updated: (uri) => notify({ kind: "resource_updated", uri })
  })
  yield* Effect.acquireRelease(
    Effect.sync(() =>
      serveStdio(() => {
        const server = core.factory(undefined, undefined)
        pinned = server
        return server
      })
    ),
    (handle) => Effect.promise(() => handle.close())
  )
  yield* Effect.forkScoped(core.watchChanges)
  return { url: "stdio:", port: 0, sessions: () => 1, toolsChanged, reload: core.reload } satisfies Gateway.Service
})

/**
 * The gateway over stdio (see `makeStdio`).
 *
 * @since 0.1.0
 */
export const layerStdio = (
  options: Omit<Options, "port" | "host"> = {}
): Layer.Layer<Gateway, GatewayError, McpBridge.McpBridge> => Layer.effect(Gateway, makeStdio(options))

/**
 * Options of `serveGateway`: the gateway's, and the bridge's (`McpBridge.LayerOptions`, over the Node transport).
 *
 * @since 0.1.0
 */
export interface ServeOptions extends Options {
  /** Options of the bridge under the gateway. @default {} */
  readonly bridge?: McpBridge.LayerOptions | undefined
}

/**
 * A gateway started from a Promise program.
 *
 * @since 0.1.0
 */
export interface RunningGateway {
  /** The MCP endpoint. */
  readonly url: string
  readonly port: number
  /** Applies a new configuration without dropping calls (see `Gateway.Service.reload`). */
  readonly reload: (config: object) => Promise<Reloaded>
  /** Drains and stops the gateway, then closes every upstream session and child process. */
  readonly close: () => Promise<void>
}

/**
 * Starts a bridge over `config` (the Claude-style `{ mcpServers, bridge?, gateway? }` object) and serves it over
 * Streamable HTTP: the Promise face of `layer`. Rejects with a `BridgeConfigError` or a `GatewayError`.
 *
 * @example
 * ```ts
 * import { serveGateway } from "@mcp-bridge/node"
 *
 * const gateway = await serveGateway({ mcpServers: { docs: { url: "http://127.0.0.1:3000/mcp" } } }, { port: 8080 })
 * console.log(gateway.url) // http://127.0.0.1:8080/mcp
 * await gateway.close()
 * ```
 *
 * @since 0.1.0
 */
export const serveGateway = async (config: object, options: ServeOptions = {}): Promise<RunningGateway> => {
  const { bridge, ...gatewayOptions } = options
  const settings = gatewayOptions.settings ?? (config as { readonly gateway?: unknown }).gateway
  const relay = layerRelay()
  const auth = McpAuth.layerMemory().pipe(Layer.provide(relay))
  const live = layer({ ...gatewayOptions, settings }).pipe(
    Layer.provide(McpBridge.layer(config, { transport: NodeTransport.layer(), handlers: relay, auth, ...bridge })),
    Layer.provide(relay)
  )
  const scope = await Effect.runPromise(Scope.make())
  const exit = await Effect.runPromiseExit(
    Layer.buildWithScope(live, scope).pipe(Effect.map((context) => Context.get(context, Gateway)))
  )
  if (Exit.isFailure(exit)) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw Cause.squash(exit.cause)
  }
  return {
    url: exit.value.url,
    port: exit.value.port,
    reload: (next) => Effect.runPromise(exit.value.reload(next)),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
