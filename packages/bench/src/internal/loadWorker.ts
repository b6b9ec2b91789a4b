/**
 * A load generator on its own thread: `sessions` warm SDK v2 client sessions on `url`, each with `concurrency` calls
 * of `tool` in flight, so that one event loop's client cost does not cap the rate a gateway is driven at. The parent
 * sends `{ run: millis }` and gets back the latencies of the calls completed in that time; `{ stop: true }` closes the
 * sessions and ends the thread. Its POSTs carry no abort signal (see `posting`).
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { parentPort, workerData } from "node:worker_threads"

/** What the parent passes as `workerData`. */
export interface LoadWorkerData {
  readonly url: string
  readonly sessions: number
  readonly concurrency: number
  readonly tool: string
}

/** One `run`'s result. */
export interface LoadWorkerResult {
  readonly latencies: Array<number>
  readonly errors: number
  readonly wallMillis: number
}

const data = workerData as LoadWorkerData
const port = parentPort!

// The load's own cost, kept off the gateway's CPU: the SDK hands `fetch` the transport's long-lived signal for every
// POST of a 2025-era session, and undici adds a listener to it per request that only garbage collection removes
// (each fetch then walks all earlier ones). A POST here gets no signal (it ends with its answer); the GET stream keeps
// its own, so that closing the session ends it.
const posting: typeof fetch = (input, init) => fetch(input, init?.method === "POST" ? { ...init, signal: null } : init)

const open = async () => {
  for (let attempt = 0;; attempt++) {
    const client = new Client({ name: "mcp-bridge-bench-load", version: "0.1.0" })
    const transport = new StreamableHTTPClientTransport(new URL(data.url), { fetch: posting })
    try {
      await client.connect(transport)
      return { client, transport }
    } catch (error) {
      await client.close().catch(() => undefined)
      if (attempt >= 20) throw error
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

const sessions = await Promise.all(Array.from({ length: data.sessions }, open))
let n = 0

const run = async (millis: number): Promise<LoadWorkerResult> => {
  const latencies: Array<number> = []
  let errors = 0
  const started = performance.now()
  const until = started + millis
  const loop = async (client: Client) => {
    while (performance.now() < until) {
      const t = performance.now()
      try {
        const result = await client.callTool({ name: data.tool, arguments: { i: n++ } })
        latencies.push(performance.now() - t)
        if ((result as { isError?: boolean }).isError === true) errors++
      } catch {
        errors++
      }
    }
  }
  await Promise.all(sessions.flatMap(({ client }) => Array.from({ length: data.concurrency }, () => loop(client))))
  return { latencies, errors, wallMillis: performance.now() - started }
}

port.on("message", (message: { readonly run?: number; readonly stop?: boolean }) => {
  if (message.run !== undefined) {
    void run(message.run).then((result) => port.postMessage(result))
  } else if (message.stop === true) {
    void Promise.all(sessions.map(async ({ client, transport }) => {
      await transport.terminateSession().catch(() => undefined)
      await client.close().catch(() => undefined)
    })).then(() => port.close())
  }
})
port.postMessage({ ready: true })
