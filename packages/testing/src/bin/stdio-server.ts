/**
 * Child-process entry of the stdio test server: `node stdio-server.ts '<TestServerSpec as JSON>'`.
 * Serves the spec over this process's stdin/stdout and exits as soon as stdin closes.
 */
import { serveStdio, StdioServerTransport } from "@modelcontextprotocol/server/stdio"
import { buildServer, instanceCounter } from "../internal/instance.ts"
import { makeState } from "../internal/state.ts"
import type { TestServerSpec } from "../TestServer.ts"

const spec = JSON.parse(process.argv[2] ?? "{\"tools\":[]}") as TestServerSpec
const state = makeState(spec)
const hooks = {
  counter: instanceCounter(),
  // "crash": die mid-call without answering
  crash: (exitCode: number | undefined) => process.exit(exitCode ?? 1),
  sessions: () => 1,
  longLived: true
}

// The client going away (stdin EOF) ends the process, even with "hang" calls or latency timers pending.
process.stdin.once("end", () => process.exit(0))
process.stdin.once("close", () => process.exit(0))

if ((spec.era ?? "dual") === "dual") {
  serveStdio(() => buildServer(state, hooks), {
    onerror: (error) => process.stderr.write(`stdio test server: ${error.message}\n`)
  })
} else {
  await buildServer(state, hooks).connect(new StdioServerTransport())
}
