/**
 * Profile driver: warm, uncached `echo` calls one at a time (c=1), for `node --cpu-prof`.
 *
 * ```sh
 * node --cpu-prof --cpu-prof-interval 50 --cpu-prof-dir .bench/profiles --cpu-prof-name bridge-stdio.cpuprofile \
 *   packages/bench/src/profile/warm-call.ts --client bridge --transport stdio
 * node packages/bench/src/profile/analyze.ts .bench/profiles/bridge-stdio.cpuprofile
 * ```
 *
 * - `--client bridge|sdk2`: the bridge (see `--stack`), or the raw SDK v2 client for comparison
 * - `--transport stdio|memory`: the `peers` section's SDK v1 echo server as a child process (2025-11-25), or the
 *   testing package's SDK v2 server in this process (`--era modern`: 2026-07-28, the default; `legacy`: 2025-11-25)
 * - `--stack busy|default`: `busy` (the default) gives every stage work on every call, the tool uncached (see
 *   `BridgePeerOptions.stack`); `default` is the default stack on a configuration that names only the server
 * - `--calls N` (20000) measured after `--warmup N` (5000) calls
 * - `--concurrency N` (1): the calls made by N callers at once, each one call after the other
 *
 * It writes `<profile>.window.json` beside the profile (the measured phase's start and end on the profiler's clock,
 * and the call count) when `--window` names it, and always prints the mean µs per call. The analyzer reads the window
 * file next to the profile by default, so the start-up and warm-up are left out of the figures.
 */
import { TestServer } from "@mcp-bridge/testing"
import { Client } from "@modelcontextprotocol/client"
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { openBridge } from "../internal/bridgePeer.ts"
import type { BridgeEndpoint } from "../internal/bridgePeer.ts"
import { openSdkV2 } from "../internal/peerClients.ts"
import type { PeerSession } from "../internal/peerClients.ts"

const { values } = parseArgs({
  options: {
    client: { type: "string", default: "bridge" },
    transport: { type: "string", default: "stdio" },
    era: { type: "string", default: "modern" },
    stack: { type: "string", default: "busy" },
    calls: { type: "string", default: "20000" },
    warmup: { type: "string", default: "5000" },
    concurrency: { type: "string", default: "1" },
    "max-sessions": { type: "string" },
    window: { type: "string" }
  }
})

const serverPath = fileURLToPath(new URL("../bin/peer-echo-server.ts", import.meta.url))
const memoryServer = values.transport === "memory"
  ? TestServer.make({
    name: "profile",
    era: values.era === "legacy" ? "legacy" : "dual",
    tools: [{ name: "echo", respond: { kind: "echo" } }]
  })
  : undefined
const endpoint: BridgeEndpoint = memoryServer !== undefined
  ? { kind: "memory", connect: memoryServer.connect }
  : { kind: "stdio", command: process.execPath, args: [serverPath, "stdio"] }

const openSdk = async (): Promise<PeerSession> => {
  if (endpoint.kind !== "memory") return openSdkV2(endpoint)
  const client = new Client(
    { name: "profile", version: "0.1.0" },
    values.era === "legacy" ? {} : { versionNegotiation: { mode: "auto" } }
  )
  await client.connect(await endpoint.connect())
  return {
    call: async (args) => (await client.callTool({ name: "echo", arguments: { ...args } })).isError !== true,
    protocol: client.getNegotiatedProtocolVersion(),
    close: () => client.close()
  }
}

const session = values.client === "sdk2"
  ? await openSdk()
  : await openBridge(endpoint, {
    stack: values.stack === "default" ? "default" : "busy",
    ...(values["max-sessions"] === undefined ? {} : { maxSessions: Number(values["max-sessions"]) })
  })

const calls = Number(values.calls)
const warmup = Number(values.warmup)
for (let i = 0; i < warmup; i++) await session.call({ i })
const concurrency = Math.max(1, Number(values.concurrency))
const startMicros = Number(process.hrtime.bigint() / 1000n)
let next = 0
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < calls) {
    const i = next++
    if (!(await session.call({ i }))) throw new Error(`call ${i} failed`)
  }
}))
const endMicros = Number(process.hrtime.bigint() / 1000n)
if ("pool" in session) console.log("pool", JSON.stringify(await (session as { pool: () => Promise<unknown> }).pool()))
await session.close()
await memoryServer?.close()

const meanMicros = (endMicros - startMicros) / calls
const label = `${values.client} ${values.transport}${endpoint.kind === "memory" ? ` ${values.era}` : ""}${
  values.client === "bridge" ? ` stack=${values.stack}` : ""
}${concurrency > 1 ? ` c=${concurrency}` : ""}`
console.log(`${label}: ${calls} calls, ${meanMicros.toFixed(1)} µs per call`)
if (values.window !== undefined) {
  mkdirSync(dirname(values.window), { recursive: true })
  writeFileSync(values.window, JSON.stringify({ label, startMicros, endMicros, calls, meanMicros }, null, 2) + "\n")
}
