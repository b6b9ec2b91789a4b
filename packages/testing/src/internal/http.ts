import { NodeStreamableHTTPServerTransport, toNodeHandler, toWebRequest } from "@modelcontextprotocol/node"
import type { NodeIncomingMessageLike } from "@modelcontextprotocol/node"
import {
  createMcpHandler,
  isInitializeRequest,
  isLegacyRequest,
  legacyStatelessFallback
} from "@modelcontextprotocol/server"
import type { McpHttpHandler, McpServer, McpServerFactory } from "@modelcontextprotocol/server"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import { buildServer, instanceCounter } from "./instance.ts"
import { talksToClient } from "./interact.ts"
import { closeAll, listenLoopback } from "./loopback.ts"
import type { HttpOptions, HttpTestServer, TestServerSpec } from "./spec.ts"
import { changed, makeState, observe } from "./state.ts"

const MAX_BODY = 64 * 1024 * 1024

interface LegacySession {
  readonly transport: NodeStreamableHTTPServerTransport
  readonly server: McpServer
}

const readBody = async (req: IncomingMessage): Promise<string> => {
  const chunks: Array<Buffer> = []
  let size = 0
  for await (const chunk of req) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer)
    size += buf.length
    if (size > MAX_BODY) throw new Error("request body too large")
    chunks.push(buf)
  }
  return Buffer.concat(chunks).toString("utf8")
}

const jsonRpcError = (res: ServerResponse, status: number, code: number, message: string): void => {
  if (res.headersSent) return void res.end()
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }))
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/**
 * A Streamable HTTP test server on 127.0.0.1.
 *
 * - `stateful` (default): 2025-era traffic gets Mcp-Session-Id sessions, one NodeStreamableHTTPServerTransport and
 *   one McpServer per session. With `era: "dual"`, requests carrying the 2026-07-28 per-request envelope (as
 *   classified by the SDK's own `isLegacyRequest`) are routed to a `createMcpHandler(..., { legacy: "reject" })`.
 * - `stateless`: `createMcpHandler(..., { legacy: "stateless" })` (or, for `era: "legacy"`, the SDK's
 *   `legacyStatelessFallback` alone).
 */
export const startHttpServer = async (
  spec: TestServerSpec,
  options?: HttpOptions
): Promise<HttpTestServer> => {
  const state = makeState(spec)
  const mode = options?.mode ?? "stateful"
  const dual = (spec.era ?? "dual") === "dual"
  const sessions = new Map<string, LegacySession>()
  const forgotten: Array<LegacySession> = []
  let opened = 0
  let terminated = 0
  let closed = false

  const httpServer = createServer()
  const crash = (): void => {
    httpServer.close()
    httpServer.closeAllConnections()
  }

  // Per-request instances (modern requests, stateless legacy) have no session: their "counter" is keyed by the
  // caller's Authorization header, so distinct identities still see distinct counters.
  const principalCounters = new Map<string, number>()
  const principalCounter = (request: Request | undefined) => () => {
    const key = request?.headers.get("authorization") ?? ""
    const n = (principalCounters.get(key) ?? 0) + 1
    principalCounters.set(key, n)
    return n
  }
  const perRequestFactory: McpServerFactory = (ctx) =>
    buildServer(state, {
      counter: principalCounter(ctx.requestInfo),
      crash,
      sessions: () => sessions.size,
      longLived: false
    })

  let handler: McpHttpHandler | undefined
  let nodeHandler: ReturnType<typeof toNodeHandler> | undefined
  if (mode === "stateless" && dual) {
    handler = createMcpHandler(perRequestFactory, { legacy: "stateless" })
    nodeHandler = toNodeHandler(handler)
  } else if (mode === "stateless") {
    nodeHandler = toNodeHandler({ fetch: legacyStatelessFallback(perRequestFactory) })
  } else if (dual) {
    handler = createMcpHandler(perRequestFactory, { legacy: "reject" })
    nodeHandler = toNodeHandler(handler)
  }
  if (handler !== undefined) {
    const notify = handler.notify
    state.toolsChangedListeners.add(() => notify.toolsChanged())
    state.notifyListeners.add((event) => {
      if (event.kind === "resources") notify.resourcesChanged()
      else if (event.kind === "prompts") notify.promptsChanged()
      else notify.resourceUpdated(event.uri)
    })
  }

  const openLegacySession = async (): Promise<NodeStreamableHTTPServerTransport> => {
    const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      // JSON bodies by default: a call in flight when the server crashes or closes then fails at once on the client.
      // Over an SSE response the SDK client treats the drop as a resumable disconnect and the call stays pending
      // until its request timeout. A tool that talks to the client mid-call needs SSE: a JSON body drops what the
      // server sends before its answer (requests, progress, log messages).
      enableJsonResponse: !(options?.sse ?? spec.tools.some((tool) => talksToClient(tool.respond))),
      onsessioninitialized: (id) => {
        opened++
        sessions.set(id, { transport, server })
        changed(state)
      },
      onsessionclosed: (id) => {
        // called by the SDK for a client's DELETE only
        if (sessions.delete(id)) terminated++
        changed(state)
      }
    })
    const server = buildServer(state, {
      counter: instanceCounter(),
      crash,
      sessions: () => sessions.size,
      longLived: true
    })
    await server.connect(transport)
    return transport
  }

  const handleStateful = async (req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> => {
    const sessionId = header(req, "mcp-session-id")
    if (sessionId !== undefined) {
      const session = sessions.get(sessionId)
      if (session === undefined) return jsonRpcError(res, 404, -32001, "Session not found")
      return session.transport.handleRequest(req, res, body)
    }
    if (req.method === "POST" && isInitializeRequest(body)) {
      const transport = await openLegacySession()
      return transport.handleRequest(req, res, body)
    }
    return jsonRpcError(res, 400, -32000, "Bad Request: No valid session ID provided")
  }

  httpServer.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const handle = async (): Promise<void> => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1")
      if (url.pathname !== "/mcp") return jsonRpcError(res, 404, -32000, "Not found")
      let body: unknown = undefined
      if (req.method === "POST") {
        const raw = await readBody(req)
        try {
          body = raw.length > 0 ? JSON.parse(raw) : undefined
        } catch {
          return jsonRpcError(res, 400, -32700, "Parse error")
        }
      }
      // IncomingMessage's `method?: string | undefined` clashes with the SDK's duck type under
      // exactOptionalPropertyTypes, hence the cast
      const nodeReq = req as NodeIncomingMessageLike
      if (mode === "stateless") return nodeHandler!(nodeReq, res, body)
      if (nodeHandler !== undefined) {
        // the stream is already drained; the parsed body stands in for it
        const probe = await toWebRequest(nodeReq, body)
        if (!(await isLegacyRequest(probe, body))) return nodeHandler(nodeReq, res, body)
      }
      return handleStateful(req, res, body)
    }
    handle().catch((error: unknown) =>
      jsonRpcError(res, 500, -32603, error instanceof Error ? error.message : "Internal error")
    )
  })

  const port = await listenLoopback(httpServer, options?.port)

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    const open = [...sessions.values(), ...forgotten.splice(0)]
    sessions.clear()
    changed(state)
    await Promise.all(open.map((s) => s.server.close().catch(() => undefined)))
    await handler?.close().catch(() => undefined)
    await closeAll(httpServer)
  }

  return {
    url: `http://127.0.0.1:${port}/mcp`,
    port,
    ...observe(state),
    sessionsOpened: () => opened,
    sessionsTerminated: () => terminated,
    openSessions: () => sessions.size,
    forgetSessions: () => {
      const open = [...sessions.values()]
      forgotten.push(...open)
      sessions.clear()
      changed(state)
      // Their streams stay open (closed with the server), as a restarted process behind a load balancer would leave
      // them: only requests naming them fail.
      return open.length
    },
    close
  }
}
