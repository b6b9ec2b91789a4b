import type { JSONRPCMessage, McpServer, Transport } from "@modelcontextprotocol/server"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import { buildServer, instanceCounter } from "./instance.ts"
import { closeAll, listenLoopback } from "./loopback.ts"
import type { HttpTestServer, SseOptions, TestServerSpec } from "./spec.ts"
import { changed, makeState, observe } from "./state.ts"

const MAX_BODY = 64 * 1024 * 1024

interface SseSession {
  readonly transport: Transport
  readonly server: McpServer
  readonly response: ServerResponse
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

/**
 * A legacy HTTP+SSE test server (the 2024-11-05 transport) on 127.0.0.1: `GET /sse` opens a session's event stream
 * and names its POST endpoint (`/messages?sessionId=...`) in an `endpoint` event; the server's messages come back as
 * `message` events on the stream. The SDK v2 has no server side for this deprecated transport, so it is written here
 * (one McpServer per session, 2025-era protocol only).
 */
export const startSseServer = async (spec: TestServerSpec, options?: SseOptions): Promise<HttpTestServer> => {
  const state = makeState(spec)
  const sessions = new Map<string, SseSession>()
  let opened = 0
  let terminated = 0
  let closed = false

  const httpServer = createServer()
  const crash = (): void => {
    httpServer.close()
    httpServer.closeAllConnections()
  }

  const openSession = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const sessionId = randomUUID()
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive"
    })
    let ended = false
    const transport: Transport = {
      sessionId,
      start: async () => {
        res.write(`event: endpoint\ndata: /messages?sessionId=${sessionId}\n\n`)
      },
      send: async (message: JSONRPCMessage) => {
        if (!ended) res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`)
      },
      close: async () => {
        if (ended) return
        ended = true
        res.end()
        end()
      }
    }
    const end = () => {
      if (sessions.delete(sessionId)) changed(state)
      transport.onclose?.()
    }
    // The client closed its event stream: the session is over.
    req.on("close", () => {
      if (ended) return
      ended = true
      if (!closed) terminated++
      end()
    })
    const server = buildServer(state, {
      counter: instanceCounter(),
      crash,
      sessions: () => sessions.size,
      longLived: true
    })
    sessions.set(sessionId, { transport, server, response: res })
    opened++
    await server.connect(transport)
    changed(state)
  }

  const postMessage = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const session = sessions.get(url.searchParams.get("sessionId") ?? "")
    if (session === undefined) {
      res.writeHead(404).end("Session not found")
      return
    }
    let message: JSONRPCMessage
    try {
      message = JSON.parse(await readBody(req)) as JSONRPCMessage
    } catch {
      res.writeHead(400).end("Invalid JSON")
      return
    }
    res.writeHead(202).end("Accepted")
    session.transport.onmessage?.(message)
  }

  httpServer.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1")
    const handle = async (): Promise<void> => {
      if (req.method === "GET" && url.pathname === "/sse") return openSession(req, res)
      if (req.method === "POST" && url.pathname === "/messages") return postMessage(req, res, url)
      res.writeHead(404).end("Not found")
    }
    handle().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500)
      res.end(error instanceof Error ? error.message : "Internal error")
    })
  })

  const port = await listenLoopback(httpServer, options?.port)

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    const open = [...sessions.values()]
    await Promise.all(open.map((s) => s.server.close().catch(() => undefined)))
    await closeAll(httpServer)
  }

  return {
    url: `http://127.0.0.1:${port}/sse`,
    port,
    ...observe(state),
    sessionsOpened: () => opened,
    sessionsTerminated: () => terminated,
    openSessions: () => sessions.size,
    forgetSessions: () => 0,
    close
  }
}
