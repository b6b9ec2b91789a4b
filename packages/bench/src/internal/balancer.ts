/**
 * A small round-robin HTTP load balancer, in a process of its own so that its work does not share the bench's event
 * loop: `node balancer.ts URL...` forwards each request, in turn, to the next of the URLs' hosts (keep-alive
 * connections, bodies and streamed answers piped through), and prints `{"url":"http://127.0.0.1:PORT/mcp"}` once
 * listening. Exits when stdin closes.
 *
 * `startBalancer(urls)` spawns it and resolves once it listens.
 */
import { spawn } from "node:child_process"
import { Agent, createServer, request } from "node:http"
import type { AddressInfo } from "node:net"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const serve = async (targets: ReadonlyArray<URL>): Promise<void> => {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 })
  let next = 0
  const server = createServer((req, res) => {
    const target = targets[next++ % targets.length]!
    const upstream = request({
      host: target.hostname,
      port: target.port,
      path: req.url,
      method: req.method,
      headers: { ...req.headers, host: target.host },
      agent
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on("error", (error) => {
      if (res.headersSent) res.destroy()
      else res.writeHead(502).end(String(error))
    })
    res.on("close", () => upstream.destroy())
    req.pipe(upstream)
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}/mcp` }) + "\n")
}

/** A running balancer. */
export interface Balancer {
  readonly url: string
  readonly close: () => Promise<void>
}

/** Spawns a balancer over `urls`. */
export const startBalancer = (urls: ReadonlyArray<string>): Promise<Balancer> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...urls], {
      stdio: ["pipe", "pipe", "inherit"]
    })
    const lines = createInterface({ input: child.stdout! })
    lines.once("line", (line) => {
      const url = (JSON.parse(line) as { url: string }).url
      resolve({
        url,
        close: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return
          const exited = new Promise<void>((done) => child.once("exit", () => done()))
          child.stdin!.end()
          child.kill("SIGTERM")
          await exited
        }
      })
    })
    child.once("exit", (code) => reject(new Error(`balancer exited (${code}) before listening`)))
  })

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await serve(process.argv.slice(2).map((u) => new URL(u)))
  process.stdin.resume()
  process.stdin.once("end", () => process.exit(0))
}
