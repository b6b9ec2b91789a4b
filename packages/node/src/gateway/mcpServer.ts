/**
 * The gateway's MCP server: a cheap factory of the official SDK v2 low-level `Server`, one instance per 2026-07-28
 * request, per 2025-era session, or per stdio connection, each answering from the same backend (the bridge).
 *
 * `tools/list` serves the catalog (see `naming.ts`) the caller may see; `tools/call` resolves the served name to a
 * server and tool and runs the bridge's whole pipeline under the downstream request's `AbortSignal` (closing the
 * stream or `notifications/cancelled` cancels the upstream call), forwarding the upstream's progress with the
 * downstream client's own `progressToken`; what the upstream asks during the call (elicitation, sampling, roots,
 * log messages) is relayed to this request's client when the bridge answers through a relay (see `relay.ts`); a
 * 2026-07-28 request gets a 2026-07-28 upstream's `input_required` results and retries them itself (see `rounds.ts`).
 * Resources, resource templates, prompts (named like tools) and completion are served when an upstream has them: a
 * resource URI is routed by the bridge, a prompt's served name is mapped back to its server and prompt. `resources/subscribe` (2025-era sessions) subscribes upstream through the bridge, and the
 * instance's subscriptions end with it. `logging/setLevel` is answered by the SDK per instance and never reaches an
 * upstream; `ping` and `server/discover` are the SDK's.
 *
 * @internal
 */
import type { McpSession } from "@mcp-bridge/core"
import type {
  AuthInfo,
  CallToolResult,
  ClientCapabilities,
  CompleteResult,
  GetPromptResult,
  InputRequiredResult,
  Progress,
  ReadResourceResult,
  Resource,
  ResourceTemplateType,
  ServerCapabilities,
  ServerEvent
} from "@modelcontextprotocol/server"
import { isInputRequiredResult, ProtocolError, ProtocolErrorCode, Server } from "@modelcontextprotocol/server"
import type { ServerContext } from "@modelcontextprotocol/server"
import * as Bridging from "./bridging.ts"
import type { Catalog, Exposed, ExposedPrompt, PromptCatalog } from "./naming.ts"
import type { Target } from "./relay.ts"
import * as Rounds from "./rounds.ts"

/** What the MCP servers of the gateway answer from: the bridge, seen through the naming. @internal */
export interface Backend {
  /**
   * The tools `principal` may see on `view` (`undefined`: the whole gateway; else a virtual server's name), as its
   * credentials (`authInfo`: an API key's, an access token's scopes) allow; `target`, the `tools/list` request's
   * client, is asked what listing an upstream needs of the user (a login).
   */
  readonly catalog: (
    principal: string | undefined,
    view: string | undefined,
    authInfo: AuthInfo | undefined,
    target?: Target | undefined
  ) => Promise<Catalog>
  /**
   * The catalog of a 2026-07-28 `tools/list` (no server→client channel, no rounds): what an upstream needs of the user
   * to list (a login) is not waited for, and, when the client declared URL-mode elicitation (`declared`), each such
   * server is served as a sign-in tool (see `signIn`).
   */
  readonly catalogModern: (
    principal: string | undefined,
    view: string | undefined,
    authInfo: AuthInfo | undefined,
    declared: ClientCapabilities
  ) => Promise<Catalog>
  /** The sign-in tool `tool` names on `view` that `principal` may see, if any: callable whether listed or not. */
  readonly signInTool: (
    principal: string | undefined,
    view: string | undefined,
    authInfo: AuthInfo | undefined,
    tool: string
  ) => Exposed | undefined
  /** The call of a sign-in tool: lists `server` as `principal`, its login asked of `target` (the request's client). */
  readonly signIn: (
    server: string,
    principal: string | undefined,
    signal: AbortSignal,
    target: Target
  ) => Promise<CallToolResult>
  /** The catalog a call routes with: the last one built (a call naming a tool it lacks rebuilds it once). */
  readonly routing: (
    principal: string | undefined,
    view: string | undefined,
    authInfo: AuthInfo | undefined
  ) => Promise<Catalog>
  /** One call through the bridge's pipeline: resolves with the result, or a tool error result for a failed call. */
  readonly call: (
    tool: Exposed,
    args: Record<string, unknown>,
    options: {
      readonly principal: string | undefined
      readonly signal: AbortSignal
      readonly meta: Record<string, unknown> | undefined
      readonly onProgress: ((progress: Progress) => void) | undefined
      /** What the upstream asks during the call is relayed to this request's client (see `relay.ts`). */
      readonly target: Target
      /** A 2026-07-28 request's own rounds of `input_required` (see `rounds.ts`). */
      readonly rounds: McpSession.ClientRounds | undefined
    }
  ) => Promise<CallToolResult | InputRequiredResult>
  /** What the upstream servers offer besides tools (`resources`, `prompts`, `completions`). */
  readonly capabilities: ServerCapabilities
  /** The resources of the servers `view` serves. */
  readonly resources: (view: string | undefined, signal: AbortSignal) => Promise<ReadonlyArray<Resource>>
  /** The resource templates of the servers `view` serves. */
  readonly templates: (view: string | undefined, signal: AbortSignal) => Promise<ReadonlyArray<ResourceTemplateType>>
  /**
   * Reads a resource (routed by its URI), as `principal`; what an upstream asks meanwhile goes to `target` (the
   * request's client).
   */
  readonly read: (
    uri: string,
    principal: string | undefined,
    signal: AbortSignal,
    target: Target,
    rounds?: McpSession.ClientRounds
  ) => Promise<ReadResourceResult>
  /** Subscribes to (or, `false`, unsubscribes from) a resource's updates upstream. */
  readonly subscribe: (uri: string, on: boolean) => Promise<void>
  /** The prompts `view` serves, by served name. */
  readonly prompts: (view: string | undefined, signal: AbortSignal) => Promise<PromptCatalog>
  /** Gets a prompt, as `principal`; what its upstream asks meanwhile goes to `target` (the request's client). */
  readonly getPrompt: (
    prompt: ExposedPrompt,
    args: Record<string, string>,
    principal: string | undefined,
    signal: AbortSignal,
    target: Target,
    rounds?: McpSession.ClientRounds
  ) => Promise<GetPromptResult>
  /** `completion/complete` of a resource template's variable (`server` undefined: routed by the URI template). */
  readonly complete: (
    params: {
      readonly ref: { readonly type: "ref/prompt"; readonly name: string } | {
        readonly type: "ref/resource"
        readonly uri: string
      }
      readonly argument: { readonly name: string; readonly value: string }
      readonly context?: { readonly arguments?: Readonly<Record<string, string>> } | undefined
      readonly server?: string | undefined
    },
    principal: string | undefined,
    signal: AbortSignal
  ) => Promise<CompleteResult>
}

/** How long a bridged call waits for its client's next round. @internal */
export const BRIDGED_IDLE_MILLIS = 5 * 60_000

/**
 * Where the gateway's servers park the calls they bridge (one registry for every view), and how a retry whose call
 * another replica holds reaches it (none without replicas: such a retry is refused with -32602). @internal
 */
export interface Parking {
  readonly bridging: Bridging.Bridging
  readonly forward?:
    | ((replica: string, retry: Bridging.Forwarded, signal: AbortSignal) => Promise<unknown>)
    | undefined
}

const subscriptions = new WeakMap<Server, Set<string>>()

/** The resource URIs a gateway server instance (a 2025-era session) subscribed to. @internal */
export const subscriptionsOf = (server: Server): ReadonlySet<string> | undefined => subscriptions.get(server)

/**
 * Tells one gateway server instance (a 2025-era session, or a stdio connection of either era: on a 2026-07-28 stdio
 * connection the SDK routes the notification to the client's `subscriptions/listen` streams) of a change upstream; an
 * instance hears `resources/updated` only of a URI it subscribed to.
 *
 * @internal
 */
export const notify = (server: Server, event: ServerEvent): void => {
  const sent = event.kind === "tools_list_changed"
    ? server.sendToolListChanged()
    : event.kind === "prompts_list_changed"
    ? server.sendPromptListChanged()
    : event.kind === "resources_list_changed"
    ? server.sendResourceListChanged()
    : subscriptionsOf(server)?.has(event.uri) === true
    ? server.sendResourceUpdated({ uri: event.uri })
    : Promise.resolve()
  sent.catch(() => undefined)
}

/** @internal */
export interface Info {
  readonly name: string
  readonly version: string
  readonly instructions?: string | undefined
}

/** The principal a request was authenticated as (`AuthInfo.clientId`), if any. @internal */
export const principalOf = (authInfo: AuthInfo | undefined): string | undefined => authInfo?.clientId

// What of the downstream request's `_meta` goes upstream: everything but its progress token (the bridge asks for
// progress with its own) and the protocol's own envelope keys (the upstream session sends its own).
const forwardedMeta = (meta: Record<string, unknown> | undefined): Record<string, unknown> | undefined => {
  if (meta === undefined) return undefined
  let out: Record<string, unknown> | undefined
  for (const key in meta) {
    if (key === "progressToken" || key.startsWith("io.modelcontextprotocol/")) continue
    ;(out ??= {})[key] = meta[key]
  }
  return out
}

/**
 * What a downstream request (`tools/call`, `prompts/get`, `resources/read`, the `tools/list` that may ask for a
 * login) can send its client, related to the request (so on its stream). A
 * 2026-07-28 request has no server→client request channel (its needs are `input_required` results, see `rounds.ts`):
 * the relay asks its client nothing. A 2025-era one may be asked what it declared at `initialize`; its log messages
 * follow the level it set with `logging/setLevel` (the SDK's filter on this instance).
 */
const targetOf = (server: Server, ctx: ServerContext): Target => {
  return {
    capabilities: Rounds.isModern(ctx) ? undefined : server.getClientCapabilities(),
    elicit: (params, signal) => ctx.mcpReq.elicitInput(params, { signal }),
    // The answer reaches the upstream session's SDK client, which checks it against the request (tools or not).
    sample: (params, signal) => ctx.mcpReq.requestSampling(params, { signal }) as ReturnType<Target["sample"]>,
    listRoots: (signal) => ctx.mcpReq.send({ method: "roots/list" }, { signal }),
    log: (message) => ctx.mcpReq.log(message.level, message.data, message.logger)
  }
}

/**
 * A factory of gateway servers over `backend`, for `view` (a virtual server's name, or `undefined` for the whole
 * gateway). Each call builds one `Server` with its handlers: a handful of closures, no I/O.
 *
 * @internal
 */
export const makeFactory = (
  backend: Backend,
  info: Info,
  view: string | undefined,
  // The calls of 2026-07-28 clients parked between the rounds that bridge a 2025-era upstream's requests.
  parking: Parking = { bridging: Bridging.make(BRIDGED_IDLE_MILLIS) }
) => {
  const { bridging, forward } = parking
  // A request to the backend, with the signal and target what the upstream asks goes to: the request's own for a
  // 2025-era request. A 2026-07-28 request (`rounds`) has no server→client channel: a 2025-era upstream's requests
  // during it come back as rounds of the gateway's own (a retry naming one resumes the parked request), a 2026-07-28
  // upstream's `input_required` as it was sent. `subject` binds the rounds to what was asked (a tool, a prompt, a URI).
  const served = <R>(
    ctx: ServerContext,
    caller: string | undefined,
    subject: string,
    target: Target,
    request: (signal: AbortSignal, target: Target, rounds: McpSession.ClientRounds | undefined) => Promise<unknown>
  ): Promise<R | InputRequiredResult> => {
    const rounds = Rounds.roundsOf(ctx)
    if (rounds === undefined) return request(ctx.mcpReq.signal, target, undefined) as Promise<R>
    // Bound to the view too: one registry parks the calls of every view.
    const bound = `${view ?? ""}\u0000${subject}`
    const { inputResponses, requestState } = rounds
    let call = requestState === undefined ? undefined : bridging.resume(requestState, caller, bound, inputResponses)
    if (call !== undefined && "_tag" in call) {
      if (forward === undefined || requestState === undefined) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, "Invalid requestState: its call ended or expired")
      }
      const retry = { requestState, principal: caller, tool: bound, inputResponses }
      return forward(call.replica, retry, ctx.mcpReq.signal) as Promise<R | InputRequiredResult>
    }
    if (call === undefined) {
      call = bridging.start(caller, bound)
      call.settle(request(call.signal, call.target(rounds.clientCapabilities, target.log), rounds))
    }
    return bridging.next<R>(call, ctx.mcpReq.signal)
  }
  return (context: { readonly authInfo?: AuthInfo | undefined } = {}): Server => {
    const server = new Server(
      { name: info.name, version: info.version },
      {
        capabilities: { tools: { listChanged: true }, logging: {}, ...backend.capabilities },
        ...(info.instructions === undefined ? {} : { instructions: info.instructions })
      }
    )
    // The caller's catalog, built now. What an upstream needs of the user to list (a login) is asked of a 2025-era
    // request's client; a 2026-07-28 request's client is offered a sign-in tool instead.
    const listed = (ctx: ServerContext, caller: string | undefined, authInfo: AuthInfo | undefined) =>
      Rounds.isModern(ctx)
        ? backend.catalogModern(caller, view, authInfo, Rounds.declaredOf(ctx))
        : backend.catalog(caller, view, authInfo, targetOf(server, ctx))
    server.setRequestHandler("tools/list", async (_request, ctx) => {
      const authInfo = ctx.http?.authInfo ?? context.authInfo
      const catalog = await listed(ctx, principalOf(authInfo), authInfo)
      return { tools: catalog.tools.map((t) => t.definition) }
    })
    server.setRequestHandler("tools/call", async (request, ctx) => {
      const { name, arguments: args = {}, _meta } = request.params
      const authInfo = ctx.http?.authInfo ?? context.authInfo
      const caller = principalOf(authInfo)
      // The last catalog built routes the call (no listing per call); a name it lacks rebuilds it once. A sign-in tool
      // stays callable once the server is listed (the retry of its round comes after the login).
      const tool = (await backend.routing(caller, view, authInfo)).byName.get(name) ??
        (await listed(ctx, caller, authInfo)).byName.get(name) ?? backend.signInTool(caller, view, authInfo, name)
      if (tool === undefined) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${name}`)
      const progressToken = _meta?.progressToken
      const onProgress = progressToken === undefined
        ? undefined
        : (progress: Progress) => {
          ctx.mcpReq.notify({ method: "notifications/progress", params: { ...progress, progressToken } }).catch(
            () => undefined
          )
        }
      const meta = forwardedMeta(_meta as Record<string, unknown> | undefined)
      const result = await served<CallToolResult>(
        ctx,
        caller,
        name,
        targetOf(server, ctx),
        (signal, callTarget, rounds) =>
          tool.signIn === true ?
            backend.signIn(tool.server, caller, signal, callTarget) :
            backend.call(tool, args as Record<string, unknown>, {
              principal: caller,
              signal,
              meta,
              onProgress,
              target: callTarget,
              rounds
            })
      )
      // An `input_required` goes to the client as is (the SDK checks it against the capabilities the request declares).
      if (isInputRequiredResult(result)) return result
      return server.projectCallToolResult(result, tool.definition.outputSchema)
    })
    const caps = backend.capabilities
    const callerOf = (ctx: { readonly http?: { readonly authInfo?: AuthInfo | undefined } | undefined }) =>
      principalOf(ctx.http?.authInfo ?? context.authInfo)
    if (caps.resources !== undefined) {
      server.setRequestHandler("resources/list", async (_request, ctx) => ({
        resources: [...await backend.resources(view, ctx.mcpReq.signal)]
      }))
      server.setRequestHandler("resources/templates/list", async (_request, ctx) => ({
        resourceTemplates: [...await backend.templates(view, ctx.mcpReq.signal)]
      }))
      server.setRequestHandler(
        "resources/read",
        (request, ctx) => {
          const uri = request.params.uri
          const caller = callerOf(ctx)
          return served<ReadResourceResult>(
            ctx,
            caller,
            `resources/read ${uri}`,
            targetOf(server, ctx),
            (signal, target, rounds) => backend.read(uri, caller, signal, target, rounds)
          ) as Promise<ReadResourceResult>
        }
      )
      if (caps.resources.subscribe === true) {
        const mine = new Set<string>()
        subscriptions.set(server, mine)
        server.setRequestHandler("resources/subscribe", async (request) => {
          const uri = request.params.uri
          if (!mine.has(uri)) {
            await backend.subscribe(uri, true)
            mine.add(uri)
          }
          return {}
        })
        server.setRequestHandler("resources/unsubscribe", async (request) => {
          const uri = request.params.uri
          if (mine.delete(uri)) await backend.subscribe(uri, false)
          return {}
        })
        const closed = server.onclose
        server.onclose = () => {
          for (const uri of mine) backend.subscribe(uri, false).catch(() => undefined)
          mine.clear()
          closed?.()
        }
      }
    }
    const promptOf = async (name: string, signal: AbortSignal) => {
      const prompt = (await backend.prompts(view, signal)).byName.get(name)
      if (prompt === undefined) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown prompt: ${name}`)
      return prompt
    }
    if (caps.prompts !== undefined) {
      server.setRequestHandler("prompts/list", async (_request, ctx) => ({
        prompts: (await backend.prompts(view, ctx.mcpReq.signal)).prompts.map((p) => p.definition)
      }))
      server.setRequestHandler("prompts/get", async (request, ctx) => {
        const prompt = await promptOf(request.params.name, ctx.mcpReq.signal)
        const args = request.params.arguments ?? {}
        const caller = callerOf(ctx)
        return served<GetPromptResult>(
          ctx,
          caller,
          `prompts/get ${request.params.name}`,
          targetOf(server, ctx),
          (signal, target, rounds) => backend.getPrompt(prompt, args, caller, signal, target, rounds)
        ) as Promise<GetPromptResult>
      })
    }
    if (caps.completions !== undefined) {
      server.setRequestHandler("completion/complete", async (request, ctx) => {
        const { argument, context: args, ref } = request.params
        const signal = ctx.mcpReq.signal
        const common = {
          argument,
          ...(args?.arguments === undefined ? {} : { context: { arguments: args.arguments } })
        }
        if (ref.type === "ref/prompt") {
          const prompt = await promptOf(ref.name, signal)
          return backend.complete(
            { ...common, ref: { type: "ref/prompt", name: prompt.prompt }, server: prompt.server },
            callerOf(ctx),
            signal
          )
        }
        return backend.complete({ ...common, ref: { type: "ref/resource", uri: ref.uri } }, callerOf(ctx), signal)
      })
    }
    return server
  }
}
