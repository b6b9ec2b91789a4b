/**
 * Profiles `mcp-bridge serve` under load: one SDK v2 client session drives calls through the gateway to the echo
 * server, and the gateway process runs under `node --cpu-prof`. Prints the gateway's CPU time per call (from `/proc`,
 * Linux: user and system, profiler included) and writes `.bench/profiles/gateway-<upstream>-c<n>.cpuprofile`, which
 * `analyze.ts` reads.
 *
 * `node packages/bench/src/profile/gateway.ts [--upstream http|stdio] [--calls 20000] [--concurrency 50]
 *   [--interval 100] [--no-profile] [--cli <another checkout's packages/node/src/bin/mcp-bridge.ts>]`
 *
 * The profile covers the whole process (start-up and 3,000 warm-up calls included): compare shares between runs of
 * the same options, and take latencies from `npm run bench -- --only gateway`.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { runLoad, summarize } from "../internal/measure.ts"
import { cpuMillis, openSession, spawnServing } from "../internal/serving.ts"

const { values } = parseArgs({
  options: {
    upstream: { type: "string", default: "http" },
    calls: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "50" },
    interval: { type: "string", default: "100" },
    "no-profile": { type: "boolean", default: false },
    cli: { type: "string" }
  }
})

const serverPath = fileURLToPath(new URL("../bin/peer-echo-server.ts", import.meta.url))
const cliPath = values.cli ?? fileURLToPath(new URL("../../../node/src/bin/mcp-bridge.ts", import.meta.url))
const calls = Number(values.calls)
const concurrency = Number(values.concurrency)
const name = `gateway-${values.upstream}-c${concurrency}`
const dir = resolve(process.cwd(), ".bench/profiles")
mkdirSync(dir, { recursive: true })

const echo = values.upstream === "http"
  ? await spawnServing([serverPath, "http"], /"url":"([^"]+)"/)
  : undefined
const config = join(mkdtempSync(join(tmpdir(), "mcp-bridge-profile-")), "mcp.json")
writeFileSync(
  config,
  JSON.stringify({
    mcpServers: { echo: echo ? { url: echo.url } : { command: process.execPath, args: [serverPath, "stdio"] } }
  })
)
const profile = values["no-profile"]
  ? []
  : [
    "--cpu-prof",
    "--cpu-prof-dir",
    dir,
    "--cpu-prof-name",
    `${name}.cpuprofile`,
    "--cpu-prof-interval",
    values.interval
  ]
const gateway = await spawnServing(
  [...profile, "--conditions=@mcp-bridge/source", cliPath, "serve", "--config", config, "--port", "0"],
  /serving .* at (http:\/\/\S+\/mcp)/
)
try {
  const session = await openSession(gateway.url)
  const call = (i: number) => session.call("echo", { i })
  await runLoad({ total: 3_000, concurrency: 50, call })
  const before = cpuMillis(gateway.pid)
  const measured = summarize(await runLoad({ total: calls, concurrency, call }))
  const cpu = (cpuMillis(gateway.pid) - before) * 1000 / calls
  console.log(
    `${name}: p50 ${measured.p50.toFixed(3)} ms, ${measured.callsPerSecond.toFixed(0)} calls/s, ` +
      `${measured.errors} errors, gateway CPU ${cpu.toFixed(0)} µs/call`
  )
  await session.close()
} finally {
  // The profile is written when the gateway exits.
  await gateway.close()
  await echo?.close()
}
if (!values["no-profile"]) console.log(`profile: ${join(dir, `${name}.cpuprofile`)}`)
