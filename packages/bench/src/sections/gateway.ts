/**
 * Section "gateway": what the gateway's hop costs, and the gateway next to the Node tools people put in front of a
 * stdio server to reach it over HTTP.
 *
 * Every server and gateway is its own process (the `peers` section's SDK v1 echo server; `mcp-bridge serve` as a user
 * starts it), and the client is the official SDK v2 client with one warm session, so the bench's event loop carries
 * only the client. Two comparisons, each in interleaved rounds (the variants' order rotates every round):
 *
 * - the hop: the echo server over Streamable HTTP called directly, through `mcp-bridge serve` in front of it, and
 *   through a reverse proxy that forwards bytes and reads nothing of MCP (`bin/byte-forwarder.ts`: the floor of any
 *   Node hop);
 * - a stdio server served over Streamable HTTP by `mcp-bridge serve`, `supergateway --stateful` and `mcp-proxy`.
 *
 * Per round: p50 of a chunk of calls at c=1, and calls/s of a chunk at c=50 (one session, 50 requests in flight), with
 * the CPU time the serving process spent per call in that chunk (from `/proc`, Linux); the table shows the median over
 * rounds and each variant's ratio to the first of its group, round by round. Then the
 * gateway's resident memory per idle 2025-era downstream session (RSS growth over 200 sessions). Last, the dashboard
 * under load from several sessions on load-generator threads, in phases with and without a page open.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import type { LoadWorkerResult } from "../internal/loadWorker.ts"
import {
  emptySamples,
  formatRate,
  markdownTable,
  median,
  round3,
  runLoad,
  type Samples,
  summarize
} from "../internal/measure.ts"
import type { Section } from "../internal/section.ts"
import { cpuMillis, freePort, openSession, spawnServing } from "../internal/serving.ts"
import type { Served } from "../internal/serving.ts"

const serverPath = fileURLToPath(new URL("../bin/peer-echo-server.ts", import.meta.url))
const forwarderPath = fileURLToPath(new URL("../bin/byte-forwarder.ts", import.meta.url))
const compareCli = process.env["MCP_BRIDGE_BENCH_COMPARE"] || undefined
const cliPath = fileURLToPath(new URL("../../../node/src/bin/mcp-bridge.ts", import.meta.url))
const require = createRequire(import.meta.url)

const benchPackage = JSON.parse(
  readFileSync(fileURLToPath(new URL("../../package.json", import.meta.url)), "utf8")
) as { devDependencies: Record<string, string> }

const echoServerHttp = () => spawnServing([serverPath, "http"], /"url":"([^"]+)"/)

const bridgeGateway = (server: object, cli = cliPath) => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-bridge-bench-"))
  const config = join(dir, "mcp.json")
  writeFileSync(config, JSON.stringify({ mcpServers: { echo: server } }))
  return spawnServing(
    ["--conditions=@mcp-bridge/source", cli, "serve", "--config", config, "--port", "0"],
    /serving .* at (http:\/\/\S+\/mcp)/
  )
}

const binOf = (pkg: string, bin: string): string | undefined => {
  try {
    const manifest = require.resolve(`${pkg}/package.json`)
    const bins = (JSON.parse(readFileSync(manifest, "utf8")) as { bin: Record<string, string> | string }).bin
    return join(dirname(manifest), typeof bins === "string" ? bins : bins[bin]!)
  } catch {
    return undefined
  }
}

const stdioCommand = `${process.execPath} ${serverPath} stdio`

const supergateway = async (): Promise<Served> => {
  const bin = binOf("supergateway", "supergateway")
  if (bin === undefined) throw new Error("supergateway is not installed")
  const port = await freePort()
  return spawnServing(
    [
      bin,
      "--stdio",
      stdioCommand,
      "--outputTransport",
      "streamableHttp",
      "--stateful",
      "--port",
      String(port),
      "--logLevel",
      "info"
    ],
    /listening|Listening|StreamableHttp endpoint/i,
    () => `http://127.0.0.1:${port}/mcp`
  )
}

const mcpProxy = async (): Promise<Served> => {
  const bin = binOf("mcp-proxy", "mcp-proxy")
  if (bin === undefined) throw new Error("mcp-proxy is not installed")
  const port = await freePort()
  return spawnServing(
    [
      bin,
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--server",
      "stream",
      "--",
      process.execPath,
      serverPath,
      "stdio"
    ],
    /listening|Listening|started|Starting/i,
    () => `http://127.0.0.1:${port}/mcp`
  )
}

/** A warm SDK v2 session on `url` calling the echo tool. */
const openClient = async (url: string) => {
  const session = await openSession(url)
  return { call: (i: number) => session.call("echo", { i }), close: session.close }
}

const rssKib = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN)
}

interface Variant {
  readonly name: string
  readonly start: () => Promise<Served>
}

interface Measured {
  readonly name: string
  readonly error: string | undefined
  readonly p50: Array<number>
  readonly rate: Array<number>
  /** CPU time of the serving process per call at c=50, µs. */
  readonly cpu: Array<number>
  errors: number
}

/** Measures the variants of a group in rotating rounds; the first is the group's baseline. */
const measureGroup = async (
  variants: ReadonlyArray<Variant>,
  options: { readonly quick: boolean; readonly rounds: number; readonly log: (s: string) => void }
): Promise<Array<Measured>> => {
  const running: Array<{ served: Served; client: Awaited<ReturnType<typeof openClient>> } | undefined> = []
  const results: Array<Measured> = []
  try {
    for (const v of variants) {
      try {
        const served = await v.start()
        const client = await openClient(served.url)
        running.push({ served, client })
        results.push({ name: v.name, error: undefined, p50: [], rate: [], cpu: [], errors: 0 })
      } catch (error) {
        running.push(undefined)
        const message = (error instanceof Error ? error.message : String(error)).slice(0, 160)
        options.log(`  ${v.name}: ${message}`)
        results.push({ name: v.name, error: message, p50: [], rate: [], cpu: [], errors: 0 })
      }
    }
    const c1 = options.quick ? 200 : 600
    const c50 = options.quick ? 1_000 : 3_000
    for (const r of running) {
      if (r === undefined) continue
      await runLoad({ total: 300, concurrency: 1, call: r.client.call })
      await runLoad({ total: 1_000, concurrency: 50, call: r.client.call })
    }
    for (let round = 0; round < options.rounds; round++) {
      for (let k = 0; k < variants.length; k++) {
        const i = (k + round) % variants.length
        const r = running[i]
        if (r === undefined) continue
        const one = summarize(await runLoad({ total: c1, concurrency: 1, call: r.client.call }))
        const cpuBefore = cpuMillis(r.served.pid)
        const many = summarize(await runLoad({ total: c50, concurrency: 50, call: r.client.call }))
        results[i]!.cpu.push((cpuMillis(r.served.pid) - cpuBefore) * 1000 / c50)
        results[i]!.p50.push(one.p50)
        results[i]!.rate.push(many.callsPerSecond)
        results[i]!.errors += one.errors + many.errors
      }
      options.log(`  round ${round + 1}/${options.rounds}`)
    }
  } finally {
    for (const r of running) {
      if (r === undefined) continue
      await r.client.close()
      await r.served.close()
    }
  }
  return results
}

const groupTable = (results: ReadonlyArray<Measured>) => {
  const base = results[0]!
  const rows = results.map((r) => {
    if (r.error !== undefined) return [r.name, "–", "–", "–", "–", "–", `failed: ${r.error}`]
    const p50Ratio = median(r.p50.map((x, i) => x / base.p50[i]!))
    const rateRatio = median(r.rate.map((x, i) => x / base.rate[i]!))
    const hop = median(r.p50.map((x, i) => (x - base.p50[i]!) * 1000))
    const cpu = median(r.cpu)
    return [
      r.name,
      `${round3(median(r.p50))} ms`,
      r === base ? "1×" : `${formatRate(p50Ratio)}× (${hop >= 0 ? "+" : ""}${hop.toFixed(0)} µs)`,
      formatRate(median(r.rate)),
      r === base ? "1×" : `${formatRate(rateRatio)}×`,
      Number.isFinite(cpu) ? `${cpu.toFixed(0)} µs` : "–",
      r.errors === 0 ? "0" : String(r.errors)
    ]
  })
  return {
    markdown: markdownTable(
      ["", "p50 c=1", "vs first", "calls/s c=50", "vs first", "serving process CPU/call", "errors"],
      rows
    ),
    json: results.map((r) => ({
      name: r.name,
      error: r.error,
      p50Millis: r.p50.map(round3),
      callsPerSecond: r.rate.map((x) => Math.round(x)),
      cpuMicrosPerCall: r.cpu.map((x) => Math.round(x)),
      errors: r.errors
    }))
  }
}

/** RSS growth of the gateway per idle 2025-era downstream session, over `n` sessions opened and left idle. */
const memoryPerSession = async (n: number, log: (s: string) => void) => {
  const upstream = await echoServerHttp()
  const gateway = await bridgeGateway({ url: upstream.url })
  const clients: Array<Awaited<ReturnType<typeof openClient>>> = []
  try {
    const warm = await openClient(gateway.url)
    await runLoad({ total: 500, concurrency: 10, call: warm.call })
    clients.push(warm)
    await new Promise((r) => setTimeout(r, 1_000))
    const before = rssKib(gateway.pid)
    for (let i = 0; i < n; i++) clients.push(await openClient(gateway.url))
    await new Promise((r) => setTimeout(r, 1_000))
    const after = rssKib(gateway.pid)
    log(`  memory: RSS ${before} KiB before, ${after} KiB after ${n} sessions`)
    return { sessions: n, rssBeforeKib: before, rssAfterKib: after, kibPerSession: (after - before) / n }
  } finally {
    for (const c of clients) await c.close()
    await gateway.close()
    await upstream.close()
  }
}

interface LoadWorkers {
  /** Every worker drives its sessions for `millis`; their calls merged. */
  readonly run: (millis: number) => Promise<Samples>
  readonly close: () => Promise<void>
}

/** `count` load-generator threads (`internal/loadWorker.ts`), each with its own warm sessions on `url`. */
const startWorkers = async (
  url: string,
  count: number,
  options: { readonly sessions: number; readonly concurrency: number }
): Promise<LoadWorkers> => {
  const workers = await Promise.all(Array.from({ length: count }, () =>
    new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(new URL("../internal/loadWorker.ts", import.meta.url), {
        workerData: { url, sessions: options.sessions, concurrency: options.concurrency, tool: "echo" }
      })
      worker.once("error", reject)
      worker.once("message", () => resolve(worker))
    })))
  return {
    run: async (millis) => {
      const results = await Promise.all(workers.map((worker) =>
        new Promise<LoadWorkerResult>((resolve) => {
          worker.once("message", resolve)
          worker.postMessage({ run: millis })
        })
      ))
      const out = emptySamples()
      for (const r of results) {
        for (const x of r.latencies) out.latencies.push(x)
        out.errors += r.errors
        out.wallMillis = Math.max(out.wallMillis, r.wallMillis)
      }
      return out
    },
    close: async () => {
      await Promise.all(workers.map((worker) =>
        new Promise<void>((resolve) => {
          worker.once("exit", () => resolve())
          worker.postMessage({ stop: true })
          setTimeout(() => void worker.terminate(), 5_000).unref()
        })
      ))
    }
  }
}

/**
 * An open page while `during` runs: its event stream connected (as a browser tab keeps it), and with `poll`, `/` and
 * `/dashboard/state` fetched once a second (a person reloading); their latencies, and the live updates received.
 */
const withPage = async <A>(base: string, during: () => Promise<A>, poll: boolean) => {
  const stream = new AbortController()
  const eventTimes: Array<number> = []
  const response = await fetch(`${base}/dashboard/events`, { signal: stream.signal })
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let buffered = ""
  const pump = (): Promise<void> =>
    reader.read().then(({ done, value }) => {
      if (done) return
      buffered += decoder.decode(value, { stream: true })
      const frames = buffered.split("\n\n")
      buffered = frames.pop()!
      for (const frame of frames) if (frame.startsWith("data:")) eventTimes.push(performance.now())
      return pump()
    }, () => undefined)
  void pump()
  let loading = poll
  const fetches: Array<number> = []
  const polling = (async () => {
    while (loading) {
      for (const path of ["/", "/dashboard/state"]) {
        const t = performance.now()
        const res = await fetch(`${base}${path}`)
        await res.arrayBuffer()
        fetches.push(performance.now() - t)
      }
      await new Promise((r) => setTimeout(r, 1_000))
    }
  })()
  const started = performance.now()
  try {
    const result = await during()
    return { result, fetches, eventTimes, started, ended: performance.now() }
  } finally {
    loading = false
    await polling
    stream.abort()
  }
}

/**
 * The dashboard under load, and what an open page costs: `mcp-bridge serve` in front of the HTTP echo server, driven by
 * `workers` load-generator threads of several SDK v2 sessions each (one session tops out well below 1,000 calls/s).
 * In alternating phases of `phaseSeconds` (the order rotates every round), the same load runs with no page and with
 * a page open (`withPage`); then the same with one session at c=1, for the page's cost to a lone call's p50. One
 * session at c=50 runs once a round, for scale.
 */
export const dashboardUnderLoad = async (
  options: { readonly rounds: number; readonly phaseSeconds: number; readonly workers: number },
  log: (s: string) => void
) => {
  // The echo server over stdio, the gateway's cheapest upstream (its CPU per call is in the hop tables above): the
  // load is the gateway's, not an HTTP upstream's.
  const served = await bridgeGateway({ command: process.execPath, args: [serverPath, "stdio"] })
  const base = served.url.replace(/\/mcp$/, "")
  const heavy = await startWorkers(served.url, options.workers, { sessions: 2, concurrency: 16 })
  const light = await startWorkers(served.url, 1, { sessions: 1, concurrency: 1 })
  const single = await startWorkers(served.url, 1, { sessions: 1, concurrency: 50 })
  const phase = options.phaseSeconds * 1000
  type Phase = { rate: Array<number>; p50: Array<number>; errors: number }
  const empty = (): Phase => ({ rate: [], p50: [], errors: 0 })
  const loaded = { none: empty(), page: empty() }
  const lone = { none: empty(), page: empty() }
  const oneSession = empty()
  const quiet: Array<number> = []
  const fetches: Array<number> = []
  let events = 0
  let pageMillis = 0
  let maxGap = 0
  const record = (into: Phase, samples: Samples) => {
    const s = summarize(samples)
    into.rate.push(s.callsPerSecond)
    into.p50.push(s.p50)
    into.errors += s.errors
  }
  try {
    await heavy.run(2_000)
    await light.run(1_000)
    await single.run(1_000)
    for (let round = 0; round < options.rounds; round++) {
      // The rate one session reaches (c=50), for scale: what the several sessions add in this run.
      record(oneSession, await single.run(phase))
      const order = round % 2 === 0 ? (["none", "page"] as const) : (["page", "none"] as const)
      for (const which of order) {
        for (const [workers, into] of [[heavy, loaded], [light, lone]] as const) {
          if (which === "none") {
            record(into[which], await workers.run(phase))
          } else {
            // Under load, the page is also fetched once a second; alone, it is only open (its event stream).
            const seen = await withPage(base, () => workers.run(phase), workers === heavy)
            record(into[which], seen.result)
            if (workers === heavy) {
              fetches.push(...seen.fetches)
              events += seen.eventTimes.length
              pageMillis += seen.ended - seen.started
              let previous = seen.started
              for (const t of [...seen.eventTimes, seen.ended]) {
                maxGap = Math.max(maxGap, t - previous)
                previous = t
              }
            }
          }
        }
      }
      log(`  dashboard: round ${round + 1}/${options.rounds}`)
    }
    // What building and sending the state costs the gateway, with no load: the whole of a page's work per interval.
    for (let i = 0; i < 100; i++) {
      const t = performance.now()
      await (await fetch(`${base}/dashboard/state`)).arrayBuffer()
      quiet.push(performance.now() - t)
    }
  } finally {
    await heavy.close()
    await light.close()
    await single.close()
    await served.close()
  }
  const sorted = fetches.sort((a, b) => a - b)
  const result = {
    rounds: options.rounds,
    workers: options.workers,
    sessions: options.workers * 2,
    inFlight: options.workers * 2 * 16,
    callsPerSecond: {
      oneSession: Math.round(median(oneSession.rate)),
      noPage: Math.round(median(loaded.none.rate)),
      pageOpen: Math.round(median(loaded.page.rate))
    },
    loadedP50Millis: { noPage: round3(median(loaded.none.p50)), pageOpen: round3(median(loaded.page.p50)) },
    loneP50Millis: { noPage: round3(median(lone.none.p50)), pageOpen: round3(median(lone.page.p50)) },
    errors: loaded.none.errors + loaded.page.errors + lone.none.errors + lone.page.errors + oneSession.errors,
    quietStateP50Millis: round3(median(quiet)),
    pageFetches: sorted.length,
    pageP50Millis: round3(sorted[Math.floor(sorted.length / 2)] ?? Number.NaN),
    pageMaxMillis: round3(sorted.at(-1) ?? Number.NaN),
    eventsPerSecond: Number((events / (pageMillis / 1000)).toFixed(2)),
    maxEventGapMillis: Math.round(maxGap)
  }
  log(`  dashboard under load: ${JSON.stringify(result)}`)
  return result
}

export const gateway: Section = async ({ log, quick }) => {
  const rounds = quick ? 3 : 7
  log("  the hop: direct vs through mcp-bridge serve")
  let upstream: Served | undefined
  const hop = await measureGroup([
    {
      name: "SDK v2 client → echo server (HTTP), direct",
      start: async () => {
        upstream = await echoServerHttp()
        return { ...upstream, close: async () => {} }
      }
    },
    {
      name: "SDK v2 client → `mcp-bridge serve` → echo server (HTTP)",
      start: () => bridgeGateway({ url: upstream!.url })
    },
    {
      name: "SDK v2 client → a byte forwarder (`node:http`, no MCP) → echo server (HTTP)",
      start: () => spawnServing([forwarderPath, upstream!.url], /"url":"([^"]+)"/, (m) => m[1]!)
    },
    // Another build of the CLI side by side (e.g. a checkout of an earlier commit): `MCP_BRIDGE_BENCH_COMPARE=<path of
    // its packages/node/src/bin/mcp-bridge.ts>`.
    ...(compareCli === undefined ? [] : [{
      name: `SDK v2 client → \`mcp-bridge serve\` (${compareCli}) → echo server (HTTP)`,
      start: () => bridgeGateway({ url: upstream!.url }, compareCli)
    }])
  ], { quick, rounds, log }).finally(() => upstream?.close())
  log("  a stdio server over HTTP: mcp-bridge serve, supergateway, mcp-proxy")
  const stdio = await measureGroup([
    {
      name: "`mcp-bridge serve` (stdio server)",
      start: () => bridgeGateway({ command: process.execPath, args: [serverPath, "stdio"] })
    },
    { name: `supergateway ${benchPackage.devDependencies["supergateway"] ?? "?"} --stateful`, start: supergateway },
    { name: `mcp-proxy ${benchPackage.devDependencies["mcp-proxy"] ?? "?"}`, start: mcpProxy }
  ], { quick, rounds, log })
  const memory = await memoryPerSession(quick ? 50 : 200, log)
  const dashboard = await dashboardUnderLoad({ rounds: quick ? 2 : 4, phaseSeconds: quick ? 3 : 5, workers: 3 }, log)
  const a = groupTable(hop)
  const b = groupTable(stdio)
  return {
    title: "gateway: the hop, and a stdio server served over HTTP",
    markdown: [
      `Median over ${rounds} rounds; ratios are per round, to the first row of each table. One SDK v2 client session`,
      "(2025-era), the SDK v1 echo server, every server and gateway in its own process. \"Serving process CPU/call\": the",
      "CPU time (user + system) of the process the client talks to (the echo server, or the gateway, not its upstream)",
      "per call during the c=50 chunks: what a hop costs whatever else shares the machine.",
      "",
      a.markdown,
      "",
      b.markdown,
      "",
      `Gateway memory per idle 2025-era downstream session: ${memory.kibPerSession.toFixed(1)} KiB (RSS ${
        (memory.rssBeforeKib / 1024).toFixed(1)
      } → ${(memory.rssAfterKib / 1024).toFixed(1)} MiB over ${memory.sessions} sessions).`,
      "",
      `The dashboard under load: ${dashboard.workers} load threads, ${dashboard.sessions} SDK v2 sessions, ` +
      `${dashboard.inFlight} calls in flight, median over ${dashboard.rounds} phases with and without a page open (same run; ` +
      `one session at c=50 reached ${formatRate(dashboard.callsPerSecond.oneSession)} calls/s in the same run):`,
      "",
      markdownTable(["", "no page", "a page open"], [
        [
          "calls/s through the gateway",
          formatRate(dashboard.callsPerSecond.noPage),
          formatRate(dashboard.callsPerSecond.pageOpen)
        ],
        [
          "p50 of a call under that load",
          `${dashboard.loadedP50Millis.noPage} ms`,
          `${dashboard.loadedP50Millis.pageOpen} ms`
        ],
        [
          "p50 of a lone call (one session, c=1)",
          `${dashboard.loneP50Millis.noPage} ms`,
          `${dashboard.loneP50Millis.pageOpen} ms`
        ]
      ]),
      "",
      `With the page open under load and fetched once a second, \`/\` and \`/dashboard/state\` answered in ${dashboard.pageP50Millis} ms p50, ` +
      `${dashboard.pageMaxMillis} ms at most (${dashboard.pageFetches} fetches); live updates arrived at ` +
      `${dashboard.eventsPerSecond}/s, at most ${dashboard.maxEventGapMillis} ms apart. A page's work per update (the state that \`/dashboard/state\` ` +
      `builds and sends) took ${dashboard.quietStateP50Millis} ms p50, measured with no load.`
    ].join("\n"),
    json: { rounds, hop: a.json, stdio: b.json, memory, dashboard }
  }
}
