/**
 * The floor of any Node HTTP hop, for the bench's `gateway` section: a reverse proxy on `node:http` that forwards each
 * request's bytes to one upstream URL over keep-alive connections and streams the answer back, reading nothing of MCP
 * (no JSON parse, no session, no validation). Not a gateway: what a hop costs a Node process before any MCP work.
 *
 * Usage: `node byte-forwarder.ts <upstream url>`; prints `{"url":"http://127.0.0.1:<port>/mcp"}` once it listens.
 */
import { Agent, createServer, request } from "node:http"

const target = new URL(process.argv[2] ?? "")
const agent = new Agent({ keepAlive: true, maxSockets: 512 })

const server = createServer((req, res) => {
  const upstream = request(
    {
      host: target.hostname,
      port: target.port,
      path: req.url,
      method: req.method,
      headers: { ...req.headers, host: target.host },
      agent
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    }
  )
  upstream.on("error", () => {
    if (!res.headersSent) res.writeHead(502)
    res.end()
  })
  // A client that goes away (an event stream it closes) ends the upstream request too.
  res.on("close", () => {
    if (!res.writableFinished) upstream.destroy()
  })
  req.pipe(upstream)
})

server.listen(0, "127.0.0.1", () => {
  const port = (server.address() as { port: number }).port
  console.log(JSON.stringify({ url: `http://127.0.0.1:${port}${target.pathname}` }))
})
process.on("SIGTERM", () => server.close(() => process.exit(0)))
