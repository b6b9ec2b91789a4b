/**
 * The gateway's HTTP face: one `node:http` request listener serving MCP at `/mcp` (and each virtual server at
 * `/mcp/<name>`) to both protocol eras, plus `/healthz`, `/readyz` and `/metrics`.
 *
 * - 2026-07-28 requests (no session, `_meta` envelope) go to the SDK's `createMcpHandler` (strict: `legacy:
 *   "reject"`), which builds a server per request from the factory.
 * - 2025-era requests (2025-11-25 back to 2024-11-05) are routed by the SDK's own predicate, `isLegacyRequest`, to
 *   sessions: an `initialize` opens one (`WebStandardStreamableHTTPServerTransport` + a server from the factory), and
 *   later requests find it by `Mcp-Session-Id` (an unknown id answers 404, so the client initializes again). A
 *   request whose answer is the first thing sent about it is answered as JSON, others as event streams
 *   (`jsonAnswers.ts`).
 * - Host and Origin checks against DNS rebinding when the gateway listens on a loopback address (or on the hosts and
 *   origins the operator allows), API keys or OAuth access tokens when configured (a 2025-era session serves only
 *   the principal that opened it), then the request body is read and parsed once (`nodeHttp.ts`: the SDK's handlers
 *   get it parsed, and answers that are not event streams are written whole).
 * - Drain: `close` stops new requests (503), waits for those in flight, then closes every session.
 *
 * @internal
 */
import type { AuthInfo, McpHttpHandler, ServerEvent } from "@modelcontextprotocol/server"
import {
  createMcpHandler,
  hostHeaderValidationResponse,
  isInitializeRequest,
  isLegacyRequest,
  localhostAllowedHostnames,
  originValidationResponse,
  WebStandardStreamableHTTPServerTransport
} from "@modelcontextprotocol/server"
import type { Server } from "@modelcontextprotocol/server"
import { createHash, randomUUID, timingSafeEqual } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { GatewayReplicas } from "../replica/GatewayReplicas.ts"
import { replayInitialize } from "../replica/revive.ts"
import * as EventStore from "./eventStore.ts"
import { JsonAnswers, singleRequestId } from "./jsonAnswers.ts"
import { notify as notifySession } from "./mcpServer.ts"
import { inbound, maxBodyBytes, respond } from "./nodeHttp.ts"
import type { OAuthGate } from "./oauth.ts"

/** An API key as the configuration stores it: the SHA-256 hex of the key, and who it is. @internal */
export interface ApiKey {
  readonly principal: string
  readonly sha256: string
}

/** @internal */
export interface HttpOptions {
  /** Builds a server for one request or session of `view` (`undefined`: the whole gateway). */
  readonly factory: (view: string | undefined, authInfo: AuthInfo | undefined) => Server
  /** The virtual servers' names (each served at `/mcp/<name>`). */
  readonly views: ReadonlyArray<string>
  /** Host names accepted in `Host` and `Origin`; `undefined` accepts any (a gateway bound to a public address). */
  readonly allowedHosts: ReadonlyArray<string> | undefined
  readonly apiKeys: ReadonlyArray<ApiKey>
  /** OAuth access tokens (see `oauth.ts`), beside the API keys when both are configured. */
  readonly oauth?: OAuthGate | undefined
  /** Prometheus text of the bridge's metrics. */
  readonly metrics: () => string
  /** Whether every upstream answers (for `/readyz`). */
  readonly ready: () => Promise<{ readonly ok: boolean; readonly servers: Record<string, string> }>
  /** Requests the gateway does not serve itself (e.g. the dashboard at `/`): `true` when handled. */
  readonly extraRoutes?: ((req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>) | undefined
  /** A 2025-era session unused this long is closed. */
  readonly sessionIdleMillis: number
  readonly onError: (error: Error) => void
  /** Replicas behind one load balancer: sealed session ids any replica revives, a shared bus and event store. */
  readonly replicas?: GatewayReplicas.Service | undefined
  /**
   * The scope that would let an access token's caller make a `tools/call` it cannot make now (a tool outside the
   * token's scopes that another scope shows): the request is answered 403 `insufficient_scope` naming it.
   */
  readonly stepUpScope?:
    | ((body: unknown, view: string | undefined, authInfo: AuthInfo | undefined) => Promise<
      { readonly tool: string; readonly scope: string } | undefined
    >)
    | undefined
  /** Checks a 2026-07-28 request's body against its headers (e.g. `Mcp-Param-*`): a `Response` refuses it. */
  readonly checkModern?:
    | ((request: Request, body: unknown, view: string | undefined, authInfo: AuthInfo | undefined) =>
      | Response
      | undefined
      | Promise<Response | undefined>)
    | undefined
}

/** @internal */
export interface HttpGateway {
  readonly listener: (req: IncomingMessage, res: ServerResponse) => void
  /** Stops taking requests, waits for those in flight (at most `graceMillis`), closes every session. */
  readonly close: (graceMillis: number) => Promise<void>
  /** 2025-era sessions open now. */
  readonly sessions: () => number
  /** Tells every open downstream session and listen stream that the tool list changed. */
  readonly toolsChanged: () => void
  /** Tells every open downstream session and listen stream that the resource or prompt list changed. */
  readonly listChanged: (list: "resources" | "prompts") => void
  /** Tells the downstream sessions and listen streams subscribed to `uri` that it was updated. */
  readonly resourceUpdated: (uri: string) => void
}

interface Session {
  readonly transport: WebStandardStreamableHTTPServerTransport
  /** What the server is connected to: the transport, with answers sent as JSON when nothing else came first. */
  readonly answers: JsonAnswers
  readonly server: Server
  /** The principal that opened the session: only it may use the session's id. */
  readonly principal: string | undefined
  lastSeen: number
}

/** How long a 2025-era client waits before it reconnects a dropped stream (the SSE `retry` field). */
const RETRY_MILLIS = 1000

const jsonRpcError = (status: number, code: number, message: string, headers: Record<string, string> = {}) =>
  Response.json({ jsonrpc: "2.0", error: { code, message }, id: null }, { status, headers })

const sha256 = (text: string) => createHash("sha256").update(text).digest()

/** The API key of a request: `Authorization: Bearer <key>` or `X-API-Key: <key>`. @internal */
export const presentedKey = (headers: Headers): string | undefined => {
  const auth = headers.get("authorization")
  if (auth !== null && auth.toLowerCase().startsWith("bearer ")) return auth.slice(7).trim()
  return headers.get("x-api-key") ?? undefined
}

/** @internal */
export const make = (options: HttpOptions): HttpGateway => {
  const sessions = new Map<string, Session>()
  const keys = options.apiKeys.map((k) => ({ principal: k.principal, digest: Buffer.from(k.sha256, "hex") }))
  const allowed = options.allowedHosts === undefined ? undefined : [...options.allowedHosts]

  const modern = new Map<string | undefined, McpHttpHandler>()
  for (const view of [undefined, ...options.views]) {
    modern.set(
      view,
      createMcpHandler(({ authInfo }) => options.factory(view, authInfo), {
        legacy: "reject",
        onerror: (error) => options.onError(error),
        ...(options.replicas === undefined ? {} : { bus: options.replicas.bus })
      })
    )
  }

  let closing = false
  let inFlight = 0
  let idle: (() => void) | undefined

  const authenticate = (request: Request): AuthInfo | Response | undefined => {
    if (keys.length === 0) return undefined
    const key = presentedKey(request.headers)
    if (key !== undefined) {
      const digest = sha256(key)
      for (const k of keys) {
        if (timingSafeEqual(digest, k.digest)) return { token: "", clientId: k.principal, scopes: [] }
      }
    }
    return jsonRpcError(401, -32001, "Unauthorized: a valid API key is required", {
      "www-authenticate": "Bearer realm=\"mcp-bridge\""
    })
  }
  const gate = options.oauth
  const authenticateOAuth = gate === undefined
    ? undefined
    : (request: Request) => gate.authenticate(request, keys.length === 0 ? undefined : authenticate)

  const closeSession = (id: string) => {
    const session = sessions.get(id)
    if (session === undefined) return
    sessions.delete(id)
    session.transport.close().catch(() => undefined)
  }

  const sweep = setInterval(() => {
    const cutoff = Date.now() - options.sessionIdleMillis
    for (const [id, session] of sessions) if (session.lastSeen < cutoff) closeSession(id)
  }, Math.min(60_000, Math.max(1_000, options.sessionIdleMillis / 2)))
  sweep.unref()

  const legacy = async (
    request: Request,
    body: unknown,
    view: string | undefined,
    authInfo: AuthInfo | undefined
  ): Promise<Response> => {
    const handleOptions = authInfo === undefined ? { parsedBody: body } : { parsedBody: body, authInfo }
    if (!isInitializeRequest(body)) {
      return jsonRpcError(400, -32000, "Bad Request: No valid session ID provided")
    }
    let session: Session | undefined
    const replicas = options.replicas
    const sealed = replicas?.sealSessionId(body.params, bindingOf(view, authInfo))
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: sealed === undefined ? randomUUID : () => sealed,
      // Resumable streams (SEP-1699): replayed by this process, or by any replica from Redis.
      eventStore: sealed === undefined ? EventStore.make() : replicas!.events.forSession(sealed),
      retryInterval: RETRY_MILLIS,
      onsessioninitialized: (id) => {
        sessions.set(id, session!)
      },
      onsessionclosed: (id) => {
        sessions.delete(id)
      }
    })
    const server = options.factory(view, authInfo)
    const answers = new JsonAnswers(transport)
    session = { transport, answers, server, principal: authInfo?.clientId, lastSeen: Date.now() }
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId)
    }
    await server.connect(answers)
    return transport.handleRequest(request, handleOptions)
  }

  // A session this replica does not hold (its replica stopped, or the balancer sent the client here) is rebuilt
  // from its sealed id; concurrent requests for one id share one rebuild.
  const reviving = new Map<string, Promise<Session | undefined>>()
  const revive = (id: string, view: string | undefined, authInfo: AuthInfo | undefined) => {
    const replicas = options.replicas
    if (replicas === undefined) return undefined
    const pending = reviving.get(id)
    if (pending !== undefined) return pending
    const attempt = (async (): Promise<Session | undefined> => {
      const initialize = replicas.openSessionId(id, bindingOf(view, authInfo))
      if (initialize === undefined) return undefined
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => id,
        eventStore: replicas.events.forSession(id),
        retryInterval: RETRY_MILLIS,
        onsessionclosed: (closed) => {
          sessions.delete(closed)
        }
      })
      const server = options.factory(view, authInfo)
      const answers = new JsonAnswers(transport)
      const session: Session = { transport, answers, server, principal: authInfo?.clientId, lastSeen: Date.now() }
      transport.onclose = () => {
        if (sessions.get(id) === session) sessions.delete(id)
      }
      await server.connect(answers)
      if (!(await replayInitialize(transport, id, initialize))) {
        await transport.close()
        return undefined
      }
      sessions.set(id, session)
      return session
    })().finally(() => reviving.delete(id))
    reviving.set(id, attempt)
    return attempt
  }

  // A call the token's scopes do not allow, which another scope would: 403 `insufficient_scope` (step-up).
  const stepUp = async (parsed: unknown, view: string | undefined, auth: AuthInfo | undefined) => {
    if (gate === undefined || options.stepUpScope === undefined || auth === undefined || parsed === undefined) {
      return undefined
    }
    const needed = await options.stepUpScope(parsed, view, auth)
    return needed === undefined ? undefined : gate.insufficientScope(auth, needed.tool, needed.scope)
  }

  /** `parsed`: the request's body as JSON (`undefined`: none, or not JSON, and then the body is in `request`). */
  const mcp = async (request: Request, view: string | undefined, parsed: unknown): Promise<Response> => {
    if (allowed !== undefined) {
      const rejected = hostHeaderValidationResponse(request, allowed) ?? originValidationResponse(request, allowed)
      if (rejected !== undefined) return rejected
    }
    const auth = authenticateOAuth === undefined ? authenticate(request) : await authenticateOAuth(request)
    if (auth instanceof Response) return auth
    const handleOptions = auth === undefined ? {} : { authInfo: auth }
    const sessionId = request.headers.get("mcp-session-id")
    if (sessionId !== null) {
      const session = sessions.get(sessionId) ?? await revive(sessionId, view, auth)
      if (session === undefined || session.principal !== auth?.clientId) {
        return jsonRpcError(404, -32001, "Session not found")
      }
      session.lastSeen = Date.now()
      if (parsed === undefined) return session.transport.handleRequest(request, handleOptions)
      const refused = await stepUp(parsed, view, auth)
      if (refused !== undefined) return refused
      const withBody = { ...handleOptions, parsedBody: parsed }
      const id = request.method === "POST" ? singleRequestId(parsed) : undefined
      return id === undefined
        ? session.transport.handleRequest(request, withBody)
        : session.answers.handle(request, withBody, id)
    }
    if (request.method !== "POST") return modern.get(view)!.fetch(request, handleOptions)
    if (parsed === undefined) return jsonRpcError(400, -32700, "Parse error: the body is not JSON")
    const body = parsed
    if (await isLegacyRequest(request, body)) return legacy(request, body, view, auth)
    const stepped = await stepUp(body, view, auth)
    if (stepped !== undefined) return stepped
    const checked = options.checkModern?.(request, body, view, auth)
    const refused = checked instanceof Promise ? await checked : checked
    if (refused !== undefined) return refused
    return modern.get(view)!.fetch(request, { ...handleOptions, parsedBody: body })
  }

  const viewOf = (path: string): string | undefined | null => {
    if (path === "/mcp" || path === "/mcp/") return undefined
    if (path.startsWith("/mcp/")) {
      const name = path.slice(5).replace(/\/$/, "")
      return options.views.includes(name) ? name : null
    }
    return null
  }

  // The request's signal aborts when the client goes away before its answer is written.
  const serveMcp = async (req: IncomingMessage, res: ServerResponse, view: string | undefined): Promise<void> => {
    const abort = new AbortController()
    let finished = false
    const closed = new Promise<void>((resolve) =>
      res.once("close", () => {
        if (!finished) abort.abort()
        resolve()
      })
    )
    let response: Response
    try {
      const read = await inbound(req, abort.signal)
      response = read === "too-large"
        ? jsonRpcError(413, -32000, `Payload Too Large: Request body must not exceed ${maxBodyBytes} bytes`, {
          connection: "close"
        })
        : await mcp(read.request, view, read.parsed)
    } catch (error) {
      options.onError(error instanceof Error ? error : new Error(String(error)))
      response = jsonRpcError(500, -32603, "Internal server error")
    }
    await respond(response, res, closed)
    finished = true
  }

  const text = (res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8") => {
    res.writeHead(status, { "content-type": type, "cache-control": "no-store" })
    res.end(body)
  }

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?", 1)[0]!
    if (path === "/healthz") return text(res, closing ? 503 : 200, closing ? "draining\n" : "ok\n")
    if (path === "/readyz") {
      const replicas = options.replicas
      const [ready] = await Promise.all([options.ready(), replicas?.check()])
      const ok = ready.ok && !closing
      // Redis unreachable leaves the replica ready (it serves, degraded): every replica shares the one Redis.
      const redis = replicas === undefined ? {} : {
        redis: replicas.status(),
        redisStores: Object.fromEntries(replicas.health().map((p) => [p.store, p.up ? "ok" : "unreachable"]))
      }
      return text(res, ok ? 200 : 503, JSON.stringify({ ok, servers: ready.servers, ...redis }), "application/json")
    }
    if (path === "/metrics") return text(res, 200, options.metrics(), "text/plain; version=0.0.4; charset=utf-8")
    const view = viewOf(path)
    if (view !== null) {
      if (closing) return text(res, 503, "the gateway is shutting down\n")
      return serveMcp(req, res, view)
    }
    if (options.extraRoutes !== undefined && await options.extraRoutes(req, res)) return
    text(res, 404, "not found\n")
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    // Drain waits for calls, not for the long-lived streams (2025 GET streams, 2026 `subscriptions/listen`).
    if (req.method === "POST" && req.headers["mcp-method"] !== "subscriptions/listen") {
      inFlight++
      let done = false
      res.on("close", () => {
        if (done) return
        done = true
        if (--inFlight === 0 && idle !== undefined) idle()
      })
    }
    serve(req, res).catch((error) => {
      options.onError(error instanceof Error ? error : new Error(String(error)))
      if (!res.headersSent) text(res, 500, "internal error\n")
      else res.end()
    })
  }

  const close = async (graceMillis: number) => {
    closing = true
    clearInterval(sweep)
    stopFanOut?.()
    if (inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMillis)
        idle = () => {
          clearTimeout(timer)
          resolve()
        }
        // Long-lived streams (2025 GET streams, 2026 listen streams) never end on their own: close them now.
        for (const session of sessions.values()) session.transport.closeStandaloneSSEStream()
      })
    }
    for (const id of Array.from(sessions.keys())) closeSession(id)
    await Promise.all(Array.from(modern.values(), (handler) => handler.close()))
  }

  const toolsChanged = () => {
    if (options.replicas !== undefined) return options.replicas.bus.publish({ kind: "tools_list_changed" })
    for (const session of sessions.values()) session.server.sendToolListChanged().catch(() => undefined)
    for (const handler of modern.values()) handler.notify.toolsChanged()
  }
  // With replicas, the bus carries every change: the 2026 listen streams hear it through `createMcpHandler`, this
  // replica's 2025 sessions through this listener, whichever replica it was published on.
  const stopFanOut = options.replicas?.bus.subscribe((event) => {
    for (const session of sessions.values()) notifySession(session.server, event)
  })

  const listChanged = (list: "resources" | "prompts") => {
    const event: ServerEvent = { kind: list === "resources" ? "resources_list_changed" : "prompts_list_changed" }
    if (options.replicas !== undefined) return options.replicas.bus.publish(event)
    for (const session of sessions.values()) notifySession(session.server, event)
    for (const handler of modern.values()) {
      if (list === "resources") handler.notify.resourcesChanged()
      else handler.notify.promptsChanged()
    }
  }

  // A 2025-era session hears `resources/updated` only of a URI it subscribed to.
  const resourceUpdated = (uri: string) => {
    const event: ServerEvent = { kind: "resource_updated", uri }
    if (options.replicas !== undefined) return options.replicas.bus.publish(event)
    for (const session of sessions.values()) notifySession(session.server, event)
    for (const handler of modern.values()) handler.notify.resourceUpdated(uri)
  }

  return { listener, close, sessions: () => sessions.size, toolsChanged, listChanged, resourceUpdated }
}

// A sealed session id serves only the view and the principal it was opened for.
const bindingOf = (view: string | undefined, authInfo: AuthInfo | undefined) =>
  `${view ?? ""}\u0000${authInfo?.clientId ?? ""}`

/** The host names a gateway bound to `host` accepts in `Host` and `Origin` when none are configured. @internal */
export const defaultAllowedHosts = (host: string): ReadonlyArray<string> | undefined =>
  host === "127.0.0.1" || host === "localhost" || host === "::1" || host === "[::1]"
    ? localhostAllowedHostnames()
    : undefined
