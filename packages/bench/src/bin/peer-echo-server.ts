/**
 * The server of the `peers` section: a plain MCP server on the official SDK v1 (`@modelcontextprotocol/sdk` 1.32, the
 * low-level `Server`, no bridge code, no test hooks) with one tool, `echo`, answering `JSON.stringify(arguments)`.
 *
 * - `node peer-echo-server.ts stdio`: serves this process's stdin/stdout; exits when stdin closes.
 * - `node peer-echo-server.ts http`: stateful Streamable HTTP on 127.0.0.1 (a random port), one `Server` and
 *   transport per `Mcp-Session-Id`, the SDK's default responses (SSE streams); prints `{"url":"..."}` on stdout once
 *   listening and exits when stdin closes.
 *
 * The SDK v1 server stops at protocol 2025-11-25, so every client runs the 2025-era protocol against it.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { CallToolRequestSchema, isInitializeRequest, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

const echoTool = {
  name: "echo",
  description: "Answers its arguments as JSON text.",
  inputSchema: { type: "object" as const }
}

const newServer = (): Server => {
  const server = new Server({ name: "peer-echo", version: "1.0.0" }, { capabilities: { tools: {} } })
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [echoTool] }))
  server.setRequestHandler(CallToolRequestSchema, (request) =>
    request.params.name === "echo"
      ? { content: [{ type: "text", text: JSON.stringify(request.params.arguments ?? {}) }] }
      : { content: [{ type: "text", text: `unknown tool ${request.params.name}` }], isError: true })
  return server
}

const readJson = async (req: IncomingMessage): Promise<unknown> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString("utf8"))
}

const badRequest = (res: ServerResponse, status: number, message: string): void => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }))
}

const serveHttp = async (): Promise<void> => {
  const sessions = new Map<string, StreamableHTTPServerTransport>()
  const http = createServer((req, res) => {
    const handle = async () => {
      const body = req.method === "POST" ? await readJson(req) : undefined
      const header = req.headers["mcp-session-id"]
      const sessionId = Array.isArray(header) ? header[0] : header
      if (sessionId !== undefined) {
        const transport = sessions.get(sessionId)
        if (transport === undefined) return badRequest(res, 404, "Session not found")
        return transport.handleRequest(req, res, body)
      }
      if (req.method !== "POST" || !isInitializeRequest(body)) {
        return badRequest(res, 400, "Bad Request: No valid session ID provided")
      }
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, transport)
        },
        onsessionclosed: (id) => {
          sessions.delete(id)
        }
      })
      transport.onclose = () => {
        if (transport.sessionId !== undefined) sessions.delete(transport.sessionId)
      }
      await newServer().connect(transport)
      return transport.handleRequest(req, res, body)
    }
    handle().catch((error: unknown) => {
      if (!res.headersSent) badRequest(res, 500, String(error))
      else res.end()
    })
  })
  http.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve))
  const { port } = http.address() as AddressInfo
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}/mcp` }) + "\n")
}

const mode = process.argv[2]
if (mode === "stdio") {
  await newServer().connect(new StdioServerTransport())
  process.stdin.once("end", () => process.exit(0))
} else if (mode === "http") {
  await serveHttp()
  process.stdin.resume()
  process.stdin.once("end", () => process.exit(0))
} else {
  process.stderr.write("usage: peer-echo-server.ts stdio|http\n")
  process.exit(2)
}
