/**
 * Section "peers": the bridge next to the MCP clients people use instead of it, on one plain server.
 *
 * The server is an SDK v1 `Server` with one zero-latency tool `echo` (`src/bin/peer-echo-server.ts`), as a stdio
 * child process and as stateful Streamable HTTP on 127.0.0.1 (its own process, so its CPU is not the bench's event
 * loop). Every client gets one warm session (the bridge: its pool), then each round runs a chunk of calls of every
 * client in a shuffled order (seeded, a new order per round, so that no client always follows another, nor the naive
 * pattern's process spawns). Per round, each client's p50 and p95 at c=1 and its calls/s at c=50 are divided by the
 * raw SDK v2 client's in the same round; the table shows the median of those ratios over the rounds.
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { openBridge } from "../internal/bridgePeer.ts"
import { formatRate, markdownTable, median, round3, runLoad, summarize } from "../internal/measure.ts"
import type { Call, Summary } from "../internal/measure.ts"
import {
  guardNetwork,
  naiveCall,
  openAiSdk,
  openEffectMcp,
  openMcpUse,
  openSdkV1,
  openSdkV2
} from "../internal/peerClients.ts"
import type { Endpoint, PeerSession } from "../internal/peerClients.ts"
import type { Section } from "../internal/section.ts"

type TransportName = "stdio" | "http"
const transports: ReadonlyArray<TransportName> = ["stdio", "http"]
const concurrencies = [1, 50] as const
type Concurrency = typeof concurrencies[number]

type PeerId = "sdk2" | "sdk1" | "aisdk" | "mcpuse" | "effect" | "bridge" | "bridge1" | "hit" | "naive"

const benchPackage = JSON.parse(
  readFileSync(fileURLToPath(new URL("../../package.json", import.meta.url)), "utf8")
) as { dependencies: Record<string, string>; devDependencies: Record<string, string> }
const version = (name: string) => benchPackage.devDependencies[name] ?? benchPackage.dependencies[name] ?? "?"

interface Peer {
  readonly id: PeerId
  readonly label: string
  /** opens the warm session; the naive pattern has none */
  readonly open: ((endpoint: Endpoint) => Promise<PeerSession>) | undefined
  /** what the c=50 column means for this client */
  readonly sessionsNote: string
}

const clients: ReadonlyArray<Peer> = [
  {
    id: "sdk2",
    label: `raw SDK v2 ${version("@modelcontextprotocol/client")} (baseline)`,
    open: openSdkV2,
    sessionsNote: "1"
  },
  { id: "sdk1", label: `raw SDK v1 ${version("@modelcontextprotocol/sdk")}`, open: openSdkV1, sessionsNote: "1" },
  { id: "aisdk", label: `\`@ai-sdk/mcp\` ${version("@ai-sdk/mcp")}`, open: openAiSdk, sessionsNote: "1" },
  { id: "mcpuse", label: `mcp-use ${version("mcp-use")} (\`mcp-use/client\`)`, open: openMcpUse, sessionsNote: "1" },
  {
    id: "effect",
    label: `Effect ${version("effect")} \`effect/ai\` McpClient`,
    open: openEffectMcp,
    sessionsNote: "1"
  },
  {
    id: "bridge",
    label: "mcp-bridge, default stack, uncached",
    open: (endpoint) => openBridge(endpoint),
    sessionsNote: "pool"
  },
  {
    id: "bridge1",
    label: "mcp-bridge, default stack, uncached, `pool.max` 1",
    open: (endpoint) => openBridge(endpoint, { maxSessions: 1 }),
    sessionsNote: "1"
  },
  {
    id: "hit",
    label: "mcp-bridge, cache hit",
    open: (endpoint) => openBridge(endpoint, { cached: true }),
    sessionsNote: "pool"
  },
  { id: "naive", label: "naive: new SDK v2 session per call", open: undefined, sessionsNote: "1 per call" }
]

/** Calls per client per round, by transport and concurrency; `naive` has its own. */
const chunk = (quick: boolean, transport: TransportName, c: Concurrency, id: PeerId): number => {
  if (id === "naive") {
    if (c === 50) return 50 // one call per worker: 50 sessions (over stdio, 50 processes) opened at once
    return transport === "stdio" ? (quick ? 3 : 6) : (quick ? 20 : 60)
  }
  const table: Record<TransportName, Record<Concurrency, readonly [quick: number, full: number]>> = {
    stdio: { 1: [300, 1_000], 50: [1_500, 5_000] },
    http: { 1: [150, 500], 50: [400, 1_500] }
  }
  return table[transport][c][quick ? 0 : 1]
}

/** Rounds the naive pattern takes part in at c=50 over stdio (50 Node start-ups at once cost ~15-25 s on 2 cores). */
const naiveStdioBurstRounds = (rounds: number) => Math.max(1, Math.floor(rounds / 3))

/** Rounds of this section: more than the bench's default, as each ratio is a median of per-round ratios. */
const roundsOf = (quick: boolean) => quick ? 5 : 7

/** A small seeded generator (mulberry32), so that a run's orders can be replayed. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
}

const shuffle = <A>(items: ReadonlyArray<A>, random: () => number): Array<A> => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

const spread = (xs: ReadonlyArray<number>): readonly [number, number] => {
  const finite = xs.filter(Number.isFinite)
  return finite.length === 0 ? [Number.NaN, Number.NaN] : [Math.min(...finite), Math.max(...finite)]
}

const serverPath = fileURLToPath(new URL("../bin/peer-echo-server.ts", import.meta.url))

/** Starts the server for `transport`: stdio is a command (each session spawns it); HTTP is one process, started here. */
const startServer = async (
  transport: TransportName
): Promise<{ readonly endpoint: Endpoint; readonly close: () => Promise<void> }> => {
  if (transport === "stdio") {
    return {
      endpoint: { kind: "stdio", command: process.execPath, args: [serverPath, "stdio"] },
      close: async () => {}
    }
  }
  const child = spawn(process.execPath, [serverPath, "http"], { stdio: ["pipe", "pipe", "inherit"] })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const lines = createInterface({ input: child.stdout })
  const url = await new Promise<string>((resolve, reject) => {
    lines.once("line", (line) => resolve((JSON.parse(line) as { url: string }).url))
    child.once("exit", (code) => reject(new Error(`peer HTTP server exited (${code})`)))
  })
  return {
    endpoint: { kind: "http", url },
    close: async () => {
      child.stdin.end()
      const timer = setTimeout(() => child.kill("SIGKILL"), 2_000)
      await exited
      clearTimeout(timer)
    }
  }
}

/** One client's chunk in one round. */
interface RoundCell {
  readonly round: number
  /** position in the round's order (0 = first) */
  readonly position: number
  readonly summary: Summary
}

interface PeerResult {
  readonly peer: Peer
  readonly connectError: string | undefined
  readonly protocol: string | undefined
  readonly cells: Map<Concurrency, Array<RoundCell>>
  errors: number
  firstError: string | undefined
  /** sessions the bridge's pool opened (bridge variants), after the run */
  sessionsOpened: number | undefined
}

const describe = (error: unknown) =>
  (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).split("\n")[0]!.slice(0, 160)

const measureTransport = async (
  transport: TransportName,
  options: {
    readonly quick: boolean
    readonly rounds: number
    readonly seed: number
    readonly log: (s: string) => void
  }
): Promise<Array<PeerResult>> => {
  const { log, quick, rounds } = options
  const server = await startServer(transport)
  const sessions = new Map<PeerId, PeerSession>()
  const results: Array<PeerResult> = []
  try {
    for (const peer of clients) {
      let connectError: string | undefined
      let protocol: string | undefined
      if (peer.open !== undefined) {
        try {
          const session = await peer.open(server.endpoint)
          sessions.set(peer.id, session)
          protocol = session.protocol
        } catch (error) {
          connectError = describe(error)
          log(`  ${transport}: ${peer.id} failed to connect: ${connectError}`)
        }
      }
      results.push({
        peer,
        connectError,
        protocol,
        cells: new Map(concurrencies.map((c) => [c, []])),
        errors: 0,
        firstError: undefined,
        sessionsOpened: undefined
      })
    }
    const callOf = (result: PeerResult): Call => {
      if (result.peer.id === "naive") return (i) => naiveCall(server.endpoint, { i })
      const session = sessions.get(result.peer.id)!
      if (result.peer.id === "hit") return () => session.call({ hit: true })
      return (i) => session.call({ i })
    }
    const live = results.filter((r) => r.connectError === undefined)
    const random = seeded(options.seed + transports.indexOf(transport))
    for (const c of concurrencies) {
      log(`  ${transport} c=${c}: warming up...`)
      for (const result of live) {
        const warm = result.peer.id === "naive" ? (c === 1 ? 1 : 0) : (c === 1 ? 200 : 1_000)
        if (warm > 0) await runLoad({ total: warm, concurrency: c, call: callOf(result) })
      }
      for (let round = 0; round < rounds; round++) {
        const order = shuffle(live, random).filter((r) =>
          !(r.peer.id === "naive" && transport === "stdio" && c === 50 && round >= naiveStdioBurstRounds(rounds))
        )
        const started = performance.now()
        for (let position = 0; position < order.length; position++) {
          const result = order[position]!
          const samples = await runLoad({
            total: chunk(quick, transport, c, result.peer.id),
            concurrency: c,
            call: callOf(result)
          })
          result.errors += samples.errors
          result.firstError ??= samples.firstError
          result.cells.get(c)!.push({ round, position, summary: summarize(samples) })
        }
        log(
          `  ${transport} c=${c} round ${round + 1}/${rounds} (${order.map((r) => r.peer.id).join(", ")}): ${
            ((performance.now() - started) / 1000).toFixed(1)
          } s`
        )
      }
    }
    for (const result of live) {
      const session = sessions.get(result.peer.id)
      if (session !== undefined && "pool" in session) {
        const stats = await (session as PeerSession & { pool: () => Promise<{ created: number } | undefined> }).pool()
        result.sessionsOpened = stats?.created
      }
    }
  } finally {
    for (const session of sessions.values()) await session.close().catch(() => undefined)
    await server.close()
  }
  return results
}

/** The medians of one client against the baseline, per round. */
interface Ratios {
  readonly p50: number
  readonly p95: number
  readonly p50DeltaMicros: number
  readonly throughput: number
  readonly p50Spread: readonly [number, number]
  readonly throughputSpread: readonly [number, number]
  /** medians of the client's own figures */
  readonly p50Millis: number
  readonly p95Millis: number
  readonly callsPerSecond: number
  readonly roundsC1: number
  readonly roundsC50: number
}

const ratiosOf = (result: PeerResult, baseline: PeerResult): Ratios => {
  const per = (c: Concurrency, f: (mine: Summary, base: Summary) => number): Array<number> =>
    result.cells.get(c)!.flatMap((cell) => {
      const base = baseline.cells.get(c)!.find((b) => b.round === cell.round)
      return base === undefined ? [] : [f(cell.summary, base.summary)]
    })
  const p50 = per(1, (m, b) => m.p50 / b.p50)
  const throughput = per(50, (m, b) => m.callsPerSecond / b.callsPerSecond)
  return {
    p50: median(p50),
    p95: median(per(1, (m, b) => m.p95 / b.p95)),
    p50DeltaMicros: median(per(1, (m, b) => (m.p50 - b.p50) * 1000)),
    throughput: median(throughput),
    p50Spread: spread(p50),
    throughputSpread: spread(throughput),
    p50Millis: median(result.cells.get(1)!.map((x) => x.summary.p50)),
    p95Millis: median(result.cells.get(1)!.map((x) => x.summary.p95)),
    callsPerSecond: median(result.cells.get(50)!.map((x) => x.summary.callsPerSecond)),
    roundsC1: result.cells.get(1)!.length,
    roundsC50: result.cells.get(50)!.length
  }
}

const ratio = (x: number): string => {
  if (!Number.isFinite(x)) return "–"
  return x >= 10 ? `${Math.round(x).toLocaleString("en-US")}×` : x >= 0.1 ? `${x.toFixed(2)}×` : `${x.toPrecision(2)}×`
}

const micros = (ms: number): string => Number.isFinite(ms) ? `${Math.round(ms * 1000).toLocaleString("en-US")}` : "–"

const signedMicros = (us: number): string =>
  Number.isFinite(us) ? `${us >= 0 ? "+" : "−"}${Math.round(Math.abs(us)).toLocaleString("en-US")} µs` : "–"

const table = (transport: TransportName, results: ReadonlyArray<PeerResult>, rounds: number): string => {
  const baseline = results.find((r) => r.peer.id === "sdk2")!
  const rows = results.map((result) => {
    if (result.connectError !== undefined) {
      return [result.peer.label, "–", "–", "–", "–", "–", "–", "–", "–", "–", `cannot connect: ${result.connectError}`]
    }
    const r = ratiosOf(result, baseline)
    const notes: Array<string> = []
    if (result.errors > 0) notes.push(`${result.errors} errors (${result.firstError})`)
    if (result.peer.id === "naive" && r.roundsC50 < rounds) notes.push(`c=50 in ${r.roundsC50} of ${rounds} rounds`)
    const sessions = result.sessionsOpened !== undefined
      ? `${result.sessionsOpened}`
      : result.peer.sessionsNote
    const range = ([lo, hi]: readonly [number, number]) => result.peer.id === "sdk2" ? "–" : `${ratio(lo)}–${ratio(hi)}`
    return [
      result.peer.label,
      ratio(r.p50),
      range(r.p50Spread),
      result.peer.id === "sdk2" ? "–" : signedMicros(r.p50DeltaMicros),
      ratio(r.p95),
      ratio(r.throughput),
      range(r.throughputSpread),
      micros(r.p50Millis),
      formatRate(r.callsPerSecond),
      sessions,
      notes.join("; ")
    ]
  })
  return markdownTable(
    [
      `${transport}: client`,
      "p50 c=1",
      "range",
      "p50 − SDK v2",
      "p95 c=1",
      "calls/s c=50",
      "range",
      "p50 µs",
      "calls/s",
      "sessions",
      "notes"
    ],
    rows,
    ["left", "right", "right", "right", "right", "right", "right", "right", "right", "right", "left"]
  )
}

export const peers: Section = async ({ log, quick }) => {
  const rounds = roundsOf(quick)
  const seed = Number(process.env.BENCH_SEED ?? 14)
  const network = guardNetwork()
  const byTransport = new Map<TransportName, Array<PeerResult>>()
  const started = performance.now()
  let outbound: ReadonlyArray<string> = []
  try {
    for (const transport of transports) {
      byTransport.set(transport, await measureTransport(transport, { quick, rounds, seed, log }))
    }
  } finally {
    outbound = network.stop()
  }
  const seconds = (performance.now() - started) / 1000
  const protocols = [
    ...new Set(
      transports.flatMap((t) => byTransport.get(t)!.flatMap((r) => r.protocol === undefined ? [] : [r.protocol]))
    )
  ]
  const markdown = [
    ...transports.flatMap((t) => [table(t, byTransport.get(t)!, rounds), ""]),
    `Ratios are per round to the raw SDK v2 client in the same round, median over ${rounds} rounds, with their ` +
    `range over the rounds (latency: lower is faster; calls/s: higher is better); "p50 − SDK v2" is the median ` +
    `per-round difference; "p50 µs" and "calls/s" are the client's own medians; "sessions" is the sessions open at ` +
    `c=50 (the bridge's pool grows; every other client multiplexes the 50 calls on its one session). Protocol ` +
    `reported by the clients that tell: ${protocols.join(", ") || "–"}. Shuffle seed ${seed}; ${
      seconds.toFixed(0)
    } s. ` +
    `Requests to non-loopback hosts during the section: ${outbound.length === 0 ? "none" : outbound.join(", ")}.`
  ].join("\n")
  return {
    title: "Peers: the bridge next to plain MCP clients (one SDK v1 echo server, warm sessions)",
    markdown,
    json: {
      seed,
      rounds,
      seconds: Math.round(seconds),
      outboundRequests: outbound,
      transports: Object.fromEntries(transports.map((t) => {
        const results = byTransport.get(t)!
        const baseline = results.find((r) => r.peer.id === "sdk2")!
        return [
          t,
          results.map((result) => {
            if (result.connectError !== undefined) {
              return { id: result.peer.id, label: result.peer.label, connectError: result.connectError }
            }
            const r = ratiosOf(result, baseline)
            return {
              id: result.peer.id,
              label: result.peer.label,
              protocol: result.protocol,
              errors: result.errors,
              firstError: result.firstError,
              sessionsOpened: result.sessionsOpened,
              ratios: {
                p50C1: Number(r.p50.toPrecision(3)),
                p95C1: Number(r.p95.toPrecision(3)),
                p50DeltaMicrosC1: Math.round(r.p50DeltaMicros),
                callsPerSecondC50: Number(r.throughput.toPrecision(3)),
                p50C1Spread: r.p50Spread.map((x) => Number(x.toPrecision(3))),
                callsPerSecondC50Spread: r.throughputSpread.map((x) => Number(x.toPrecision(3)))
              },
              medians: {
                p50MillisC1: round3(r.p50Millis),
                p95MillisC1: round3(r.p95Millis),
                callsPerSecondC50: Math.round(r.callsPerSecond)
              },
              rounds: Object.fromEntries(concurrencies.map((c) => [
                `c${c}`,
                result.cells.get(c)!.map((cell) => ({
                  round: cell.round,
                  position: cell.position,
                  calls: cell.summary.calls,
                  errors: cell.summary.errors,
                  p50Millis: round3(cell.summary.p50),
                  p95Millis: round3(cell.summary.p95),
                  callsPerSecond: Math.round(cell.summary.callsPerSecond)
                }))
              ]))
            }
          })
        ]
      }))
    }
  }
}
