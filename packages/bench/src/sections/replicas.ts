/**
 * Section "replicas": what sharing state through Redis costs, with a redis-server of the section's own.
 *
 * 1. A Redis-backed cache hit next to one plain Redis `GET` of the very entry it reads, on the same node-redis
 *    connection (Effect's `Redis` service from `NodeRedis`), in one process, interleaved: a bridge built with
 *    `McpBridge.layer` over `RedisStores.layer` (what `serve --redis` runs), its hit measured inside Effect (full
 *    default pipeline), the store's `get` alone, and the `GET`.
 * 2. `mcp-bridge serve` replicas behind a small round-robin balancer (its own process), all calling one upstream HTTP
 *    echo server (the `peers` section's SDK v1 server, its own process): one replica without Redis, one with
 *    `--redis`, three with `--redis`. Per round, p50 of an uncached call at c=1, calls/s at c=50 over 4 client
 *    sessions, and p50 of a cache hit at c=1; every variant behind the same kind of balancer.
 * 3. Redis commands per call by kind, from Redis's own `MONITOR`, on one replica: round trips (commands a replica
 *    sent) and commands run (those plus the commands its scripts ran).
 */
import { NodeRedis } from "@effect/platform-node"
import { McpBridge, McpTransport, ResultStore } from "@mcp-bridge/core"
import { RedisStores } from "@mcp-bridge/node"
import { TestRedis, TestServer } from "@mcp-bridge/testing"
import { Effect, Layer, ManagedRuntime } from "effect"
import { Redis } from "effect/persistence"
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { startBalancer } from "../internal/balancer.ts"
import type { Balancer } from "../internal/balancer.ts"
import {
  formatRate,
  markdownTable,
  median,
  micros,
  percentile,
  round3,
  runLoad,
  summarize
} from "../internal/measure.ts"
import type { Section } from "../internal/section.ts"
import { openSession, spawnServing } from "../internal/serving.ts"
import type { Session } from "../internal/serving.ts"

const serverPath = fileURLToPath(new URL("../bin/peer-echo-server.ts", import.meta.url))
const cliPath = fileURLToPath(new URL("../../../node/src/bin/mcp-bridge.ts", import.meta.url))

// -----------------------------------------------------------------------------
// 1. a Redis-backed hit vs one GET
// -----------------------------------------------------------------------------

/** The size of the cached result's text: a small search answer. */
const resultText = "x".repeat(1_024)

const libraryHit = async (redisUrl: string, quick: boolean, rounds: number, log: (s: string) => void) => {
  const server = TestServer.make({
    name: "bench-replicas",
    tools: [{ name: "cached", respond: { kind: "text", text: resultText } }]
  })
  const prefix = "bench:lib:"
  const connection = NodeRedis.layer({ url: redisUrl })
  const runtime = ManagedRuntime.make(
    McpBridge.layer({
      mcpServers: { s: { type: "memory", bridge: { tools: { cached: { cache: "1 hour", shared: true } } } } }
    }, { transport: McpTransport.layer({ memory: { s: server.connect } }) }).pipe(
      Layer.provideMerge(RedisStores.layer({ prefix })),
      Layer.provideMerge(connection)
    )
  )
  try {
    const perChunk = quick ? 1_000 : 4_000
    log(`  library: ${rounds} rounds of ${perChunk} hits, store gets and GETs...`)
    return await runtime.runPromise(Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      const redis = yield* Redis.Redis
      const store = yield* ResultStore.ResultStore
      const hit = bridge.callTool("s.cached", { q: "same" })
      yield* hit
      const keys = yield* redis.send<ReadonlyArray<string>>("KEYS", `${prefix}rc:e:*`)
      if (keys.length !== 1) return yield* Effect.die(new Error(`expected one cached entry, found ${keys.length}`))
      const entry = keys[0]!
      const [name, tool, partition, args] = entry.slice(`${prefix}rc:e:`.length).split("\u0000")
      const key: ResultStore.Key = { server: name!, tool: tool!, partition: partition!, arguments: args! }
      const bytes = (yield* redis.send<string>("GET", entry)).length
      const variants = [
        { name: "get", run: redis.send<string>("GET", entry) },
        { name: "store", run: store.get(key) },
        { name: "hit", run: hit }
      ] as const
      const samples = new Map<string, Array<number>>(variants.map((v) => [v.name, []]))
      const perRound = new Map<string, Array<number>>(variants.map((v) => [v.name, []]))
      for (const v of variants) for (let i = 0; i < 500; i++) yield* v.run
      for (let round = 0; round < rounds; round++) {
        for (let k = 0; k < variants.length; k++) {
          const v = variants[(k + round) % variants.length]!
          const chunk = new Array<number>(perChunk)
          for (let i = 0; i < perChunk; i++) {
            const started = performance.now()
            yield* v.run
            chunk[i] = performance.now() - started
          }
          samples.get(v.name)!.push(...chunk)
          perRound.get(v.name)!.push(percentile(chunk.sort((a, b) => a - b), 50))
        }
      }
      const stat = (name: string) => {
        const sorted = samples.get(name)!.sort((a, b) => a - b)
        return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), calls: sorted.length }
      }
      const ratio = (name: string) => median(perRound.get(name)!.map((x, i) => x / perRound.get("get")![i]!))
      return {
        bytes,
        upstreamCalls: server.calls("cached"),
        get: stat("get"),
        store: { ...stat("store"), vsGet: ratio("store") },
        hit: { ...stat("hit"), vsGet: ratio("hit") }
      }
    }))
  } finally {
    await runtime.dispose()
    await server.close()
  }
}

// -----------------------------------------------------------------------------
// 2. replicas behind a balancer
// -----------------------------------------------------------------------------

const readOnly = { readOnly: true, cache: false }

/**
 * The gateway's configuration: one HTTP upstream twice (uncached, cached); with `stdio`, also stdio servers (plain,
 * rate-limited, over its limit) for the counts.
 */
const gatewayConfig = (upstream: string, withStdio: boolean) => {
  const stdio = (throttle?: object) => ({
    command: process.execPath,
    args: [serverPath, "stdio"],
    bridge: { tools: { echo: throttle === undefined ? readOnly : { ...readOnly, throttle } } }
  })
  return {
    mcpServers: {
      up: { url: upstream, bridge: { tools: { echo: readOnly } } },
      cached: { url: upstream, bridge: { tools: { echo: { cache: "1 hour", shared: true } } } },
      ...(withStdio
        ? {
          local: stdio(),
          limited: stdio({ perMinute: 1_000_000, onLimit: "fail" }),
          refused: stdio({ perMinute: 1, onLimit: "fail" })
        }
        : {})
    }
  }
}

const startReplica = (config: string, redis: string | undefined) =>
  spawnServing(
    [
      "--conditions=@mcp-bridge/source",
      cliPath,
      "serve",
      "--config",
      config,
      "--port",
      "0",
      "--no-dashboard",
      ...(redis === undefined ? [] : ["--redis", redis])
    ],
    /serving .* at (http:\/\/\S+\/mcp)/
  )

type Opened = Session

interface ReplicaVariant {
  readonly name: string
  readonly balancer: Balancer
  clients: ReadonlyArray<Opened>
  readonly p50: Array<number>
  readonly rate: Array<number>
  readonly hitP50: Array<number>
  errors: number
  firstError: string | undefined
}

const sessions = 4

const measureReplicas = async (
  variants: ReadonlyArray<ReplicaVariant>,
  quick: boolean,
  rounds: number,
  log: (s: string) => void
) => {
  for (const v of variants) {
    v.clients = await Promise.all(Array.from({ length: sessions }, () => openSession(v.balancer.url)))
  }
  const c1 = quick ? 200 : 500
  const c50 = quick ? 500 : 1_500
  const uncached = (v: ReplicaVariant) => (i: number) => v.clients[i % sessions]!.call("up_echo", { i })
  const hit = (v: ReplicaVariant) => () => v.clients[0]!.call("cached_echo", { q: "same" })
  for (const v of variants) {
    await runLoad({ total: 300, concurrency: 1, call: uncached(v) })
    await runLoad({ total: 500, concurrency: 50, call: uncached(v) })
    await runLoad({ total: 100, concurrency: 1, call: hit(v) })
  }
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(k + round) % variants.length]!
      const one = await runLoad({ total: c1, concurrency: 1, call: uncached(v) })
      const many = await runLoad({ total: c50, concurrency: 50, call: uncached(v) })
      const hits = await runLoad({ total: c1, concurrency: 1, call: hit(v) })
      v.p50.push(summarize(one).p50)
      v.rate.push(summarize(many).callsPerSecond)
      v.hitP50.push(summarize(hits).p50)
      for (const s of [one, many, hits]) {
        v.errors += s.errors
        v.firstError ??= s.firstError
      }
    }
    log(`  round ${round + 1}/${rounds}`)
  }
}

// -----------------------------------------------------------------------------
// 3. Redis commands per call
// -----------------------------------------------------------------------------

interface Kind {
  readonly name: string
  readonly era: "2025" | "2026"
  /** one call (warm-up runs it once with index -1) */
  readonly call: (client: Opened, i: number) => Promise<boolean>
  /** calls before counting (warm session, filled cache, used-up limit) */
  readonly warm: number
}

const kinds: ReadonlyArray<Kind> = [
  { name: "warm uncached call, stdio server", era: "2026", warm: 2, call: (c, i) => c.call("local_echo", { i }) },
  {
    name: "the same, 2025-era session (sealed id)",
    era: "2025",
    warm: 2,
    call: (c, i) => c.call("local_echo", { i })
  },
  {
    name: "uncached call, HTTP server (shared circuit)",
    era: "2026",
    warm: 2,
    call: (c, i) => c.call("up_echo", { i })
  },
  { name: "cache hit", era: "2026", warm: 2, call: (c) => c.call("cached_echo", { q: "counted" }) },
  {
    name: "cache miss that stores (HTTP server)",
    era: "2026",
    warm: 0,
    call: (c, i) => c.call("cached_echo", { miss: i })
  },
  { name: "rate-limited call, admitted (stdio)", era: "2026", warm: 2, call: (c, i) => c.call("limited_echo", { i }) },
  {
    name: "rate-limited call, refused (stdio)",
    era: "2026",
    warm: 2,
    call: async (c, i) => !(await c.call("refused_echo", { i }))
  }
]

const execFileAsync = promisify(execFile)

interface Counted {
  readonly kind: string
  readonly calls: number
  readonly errors: number
  readonly roundTrips: number
  readonly commands: number
  readonly sent: Record<string, number>
  readonly inScripts: Record<string, number>
}

const countCommands = async (redis: TestRedis.RedisServer, url: string, perKind: number, log: (s: string) => void) => {
  const watch = await TestRedis.monitor(redis.port)
  const marker = async (name: string) => {
    await execFileAsync("redis-cli", ["-h", "127.0.0.1", "-p", String(redis.port), "ECHO", name])
    await watch.waitFor(name)
  }
  const between = (start: string, end: string): ReadonlyArray<TestRedis.Monitored> => {
    const from = watch.seen.findIndex((m) => m.args.includes(start))
    const to = watch.seen.findIndex((m) => m.args.includes(end))
    const probe = watch.seen[from]!.client
    return watch.seen.slice(from + 1, to).filter((m) => m.client !== probe)
  }
  const tally = (commands: ReadonlyArray<TestRedis.Monitored>, calls: number) => {
    const sent: Record<string, number> = {}
    const inScripts: Record<string, number> = {}
    for (const m of commands) {
      const into = m.client === "lua" ? inScripts : sent
      into[m.command] = (into[m.command] ?? 0) + 1 / calls
    }
    return { sent, inScripts }
  }
  const out: Array<Counted> = []
  try {
    // Background commands of an idle replica over the time the counted calls take.
    await marker("idle:start")
    await new Promise((r) => setTimeout(r, 1_000))
    await marker("idle:end")
    const idle = between("idle:start", "idle:end").length
    log(`  commands while idle for 1 s: ${idle}`)
    for (const [k, kind] of kinds.entries()) {
      const client = await openSession(url, kind.era)
      try {
        for (let i = 0; i < kind.warm; i++) await kind.call(client, -1 - i)
        await marker(`kind${k}:start`)
        let errors = 0
        for (let i = 0; i < perKind; i++) if (!(await kind.call(client, i).catch(() => false))) errors++
        await marker(`kind${k}:end`)
        const commands = between(`kind${k}:start`, `kind${k}:end`)
        const { inScripts, sent } = tally(commands, perKind)
        const roundTrips = commands.filter((m) => m.client !== "lua").length / perKind
        out.push({
          kind: kind.name,
          calls: perKind,
          errors,
          roundTrips,
          commands: commands.length / perKind,
          sent,
          inScripts
        })
      } finally {
        await client.close()
      }
    }
    return { idle, kinds: out }
  } finally {
    await watch.stop()
  }
}

const perCall = (x: number): string => {
  const tenths = Math.round(x * 10) / 10
  return Number.isInteger(tenths) ? String(tenths) : tenths.toFixed(1)
}

const describeCommands = (counts: Record<string, number>): string =>
  Object.entries(counts).sort(([, a], [, b]) => b - a).map(([name, n]) =>
    perCall(n) === "1" ? name : `${name} ×${perCall(n)}`
  ).join(", ")

// -----------------------------------------------------------------------------
// The section
// -----------------------------------------------------------------------------

export const replicas: Section = async ({ log, quick }) => {
  const rounds = quick ? 3 : 5
  const redis = await TestRedis.start()
  const dir = mkdtempSync(join(tmpdir(), "mcp-bridge-bench-replicas-"))
  const closing: Array<() => Promise<void>> = []
  try {
    const lib = await libraryHit(redis.url, quick, rounds, log)
    log(`  hit p50 ${micros(lib.hit.p50)} µs, GET p50 ${micros(lib.get.p50)} µs`)

    log("  starting the upstream, 4 replicas (1 without Redis, 3 with) and 3 balancers...")
    const upstream = await spawnServing([serverPath, "http"], /"url":"([^"]+)"/)
    closing.push(upstream.close)
    const config = join(dir, "mcp.json")
    writeFileSync(config, JSON.stringify(gatewayConfig(upstream.url, false)))
    // One at a time: several gateways starting at once on a loaded machine wait long for each other.
    const started = []
    for (const redisUrl of [undefined, redis.url, redis.url, redis.url]) {
      const replica = await startReplica(config, redisUrl)
      closing.push(replica.close)
      started.push(replica)
    }
    const [plain, ...shared] = started
    const balancers = [
      await startBalancer([plain!.url]),
      await startBalancer([shared[0]!.url]),
      await startBalancer(shared.map((s) => s.url))
    ]
    closing.push(...balancers.map((b) => b.close))
    const variant = (name: string, balancer: Balancer): ReplicaVariant => ({
      name,
      balancer,
      clients: [],
      p50: [],
      rate: [],
      hitP50: [],
      errors: 0,
      firstError: undefined
    })
    const variants = [
      variant("1 replica, no Redis (memory stores)", balancers[0]!),
      variant("1 replica, `--redis`", balancers[1]!),
      variant("3 replicas, `--redis`, round robin", balancers[2]!)
    ]
    try {
      await measureReplicas(variants, quick, rounds, log)
    } finally {
      for (const v of variants) for (const c of v.clients) await c.close()
      for (const close of closing.splice(1).reverse()) await close().catch(() => undefined)
    }

    log("  counting Redis commands per call (MONITOR) on a replica with stdio servers too...")
    const countingConfig = join(dir, "mcp-counting.json")
    writeFileSync(countingConfig, JSON.stringify(gatewayConfig(upstream.url, true)))
    const counting = await startReplica(countingConfig, redis.url)
    closing.push(counting.close)
    const counted = await countCommands(redis, counting.url, quick ? 10 : 20, log)

    const base = variants[0]!
    const replicaTable = markdownTable(
      ["", "uncached p50 c=1", "vs first", "calls/s c=50", "vs first", "cache hit p50 c=1", "errors"],
      variants.map((v) => [
        v.name,
        `${round3(median(v.p50))} ms`,
        v === base ? "1×" : `${formatRate(median(v.p50.map((x, i) => x / base.p50[i]!)))}×`,
        formatRate(median(v.rate)),
        v === base ? "1×" : `${formatRate(median(v.rate.map((x, i) => x / base.rate[i]!)))}×`,
        `${round3(median(v.hitP50))} ms`,
        String(v.errors)
      ]),
      ["left", "right", "right", "right", "right", "right", "right"]
    )
    const libTable = markdownTable(
      ["measured (inside Effect, one node-redis connection)", "p50 µs", "p99 µs", "vs GET (p50, per round)"],
      [
        [`plain \`GET\` of the cached entry (${lib.bytes} bytes)`, micros(lib.get.p50), micros(lib.get.p99), "1×"],
        [
          "`RedisResultStore.get` (GET + JSON.parse)",
          micros(lib.store.p50),
          micros(lib.store.p99),
          `${formatRate(lib.store.vsGet)}×`
        ],
        [
          "cache hit through the bridge (full default pipeline)",
          micros(lib.hit.p50),
          micros(lib.hit.p99),
          `${formatRate(lib.hit.vsGet)}×`
        ]
      ],
      ["left", "right", "right", "right"]
    )
    const countTable = markdownTable(
      ["call", "round trips", "commands run", "sent", "run by scripts"],
      counted.kinds.map((c) => [
        c.kind + (c.errors > 0 ? ` (${c.errors} unexpected outcomes)` : ""),
        perCall(c.roundTrips),
        perCall(c.commands),
        describeCommands(c.sent) || "none",
        describeCommands(c.inScripts) || "–"
      ]),
      ["left", "right", "right", "left", "left"]
    )
    const errors = variants.filter((v) => v.firstError !== undefined).map((v) =>
      `\nerrors in ${v.name}: ${v.firstError}`
    )
    return {
      title: "replicas: a Redis-backed hit vs a GET, replicas behind a balancer, Redis commands per call",
      markdown: [
        `A Redis-backed cache hit next to one plain \`GET\` of the same entry (medians over ${rounds} interleaved ` +
        "rounds; same process, same connection):",
        "",
        libTable,
        "",
        `\`mcp-bridge serve\` replicas behind a round-robin balancer (its own process), one HTTP echo upstream; ` +
        `median over ${rounds} rounds, ratios per round; c=50 spreads over ${sessions} SDK v2 client sessions ` +
        "(2025-era). Every replica, the balancer, Redis, the upstream and the client share this machine's cores: " +
        "more replicas add no cores here, so this shows what Redis and the balancing cost, not how far replicas scale.",
        "",
        replicaTable,
        "",
        `Redis commands per call, counted by Redis (\`MONITOR\`) over ${counted.kinds[0]?.calls ?? 0} calls ` +
        `of each kind on one replica (${counted.idle} background commands in 1 s idle):`,
        "",
        countTable,
        ...errors
      ].join("\n"),
      json: {
        rounds,
        library: {
          bytes: lib.bytes,
          getP50Micros: Number(micros(lib.get.p50)),
          storeGetP50Micros: Number(micros(lib.store.p50)),
          hitP50Micros: Number(micros(lib.hit.p50)),
          hitP99Micros: Number(micros(lib.hit.p99)),
          hitVsGet: Number(lib.hit.vsGet.toPrecision(3)),
          storeVsGet: Number(lib.store.vsGet.toPrecision(3)),
          upstreamCalls: lib.upstreamCalls
        },
        replicas: variants.map((v) => ({
          name: v.name,
          p50Millis: v.p50.map(round3),
          callsPerSecond: v.rate.map((x) => Math.round(x)),
          hitP50Millis: v.hitP50.map(round3),
          errors: v.errors
        })),
        commandsPerCall: counted
      }
    }
  } finally {
    for (const close of closing.reverse()) await close().catch(() => undefined)
    await redis.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
