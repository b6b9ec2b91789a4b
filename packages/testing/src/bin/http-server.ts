/**
 * Child-process entry of a killable Streamable HTTP test server:
 * `node http-server.ts '{"spec": TestServerSpec, "port": number, "sse": boolean, "mode": "stateful" | "stateless"}'`.
 * Prints `listening <port>` once it listens; dies with the process (the test kills it with SIGKILL).
 */
import { startHttpServer } from "../internal/http.ts"
import type { TestServerSpec } from "../TestServer.ts"

const options = JSON.parse(process.argv[2] ?? "{}") as {
  readonly spec: TestServerSpec
  readonly port: number
  readonly sse: boolean
  readonly mode: "stateful" | "stateless"
}
const server = await startHttpServer(options.spec, { port: options.port, sse: options.sse, mode: options.mode })
process.stdout.write(`listening ${server.port}\n`)
// The parent going away ends the server too (it is re-parented: its ppid changes).
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.exit(0)
}, 500).unref()
