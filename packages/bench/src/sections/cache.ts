/**
 * Section "cache": what the result cache saves.
 *
 * 1. A cache hit vs a warm pooled (uncached) call, through the same bridge, over memory, stdio and HTTP, interleaved
 *    at concurrency 1; the ratio is of the medians. Both go through the whole default pipeline (telemetry, cache,
 *    coalescing, throttler, resilience) via the Promise facade.
 * 2. The latency of a hit through the full pipeline measured inside Effect (no Promise hop), in µs.
 * 3. A mixed workload: Zipf-distributed arguments (s = 1.1 over 1,000 values) over a read-only tool and a write tool,
 *    sequential, with a seeded generator; the hit rate from `ResultCache.stats()`, with and without writes.
 */
import { McpBridge, McpTransport, ResultCache } from "@mcp-bridge/core"
import { TestServer } from "@mcp-bridge/testing"
import { Effect, ManagedRuntime } from "effect"
import {
  formatMillis,
  formatRate,
  formatRatio,
  interleave,
  markdownTable,
  micros,
  percentile,
  round3,
  summarize
} from "../internal/measure.ts"
import type { Summary } from "../internal/measure.ts"
import type { Section } from "../internal/section.ts"
import { callOk, startTarget, transportNames } from "../internal/targets.ts"
import type { TransportName } from "../internal/targets.ts"

const spec: TestServer.TestServerSpec = {
  name: "bench-cache",
  tools: [
    { name: "echo", respond: { kind: "echo" } },
    { name: "cached", respond: { kind: "echo" } },
    { name: "write", respond: { kind: "text", text: "ok" } }
  ]
}

/**
 * The operator's policy: `cached` may be cached for an hour; `echo` is read-only but never cached (so calling it
 * drops nothing); `write`, with no policy on an untrusted server, is a write: with `invalidateOnWrite` (the default)
 * each call drops the server's cached results.
 */
const policy = { tools: { cached: { cache: "1 hour" }, echo: { readOnly: true, cache: false } } }

// -----------------------------------------------------------------------------
// 1. hit vs warm pooled call
// -----------------------------------------------------------------------------

interface PairCell {
  readonly transport: TransportName
  readonly pooled: Summary
  readonly hit: Summary
  readonly firstError: string | undefined
}

const hitVsPooled = async (
  log: (line: string) => void,
  quick: boolean,
  rounds: number
): Promise<ReadonlyArray<PairCell>> => {
  const cells: Array<PairCell> = []
  for (const transport of transportNames) {
    const target = await startTarget(transport, spec)
    const bridge = await target.bridge({ bridge: policy })
    try {
      await bridge.listTools()
      const total = quick ? 1_000 : 5_000
      log(`  ${transport}: ${total} pooled + ${total} cache-hit calls, interleaved...`)
      const results = await interleave([
        {
          name: "pooled",
          total,
          warmup: 200,
          call: async (i) => callOk(await bridge.callTool("s.echo", { i }))
        },
        {
          name: "hit",
          total,
          warmup: 200,
          call: async () => callOk(await bridge.callTool("s.cached", { q: "same" }))
        }
      ], { concurrency: 1, rounds })
      const stats = await bridge.cache.stats()
      log(`    cache: ${stats.hits} hits, ${stats.misses} misses, ${stats.size} entries, ${stats.bytes} bytes`)
      const pooled = results.get("pooled")!
      const hit = results.get("hit")!
      cells.push({
        transport,
        pooled: summarize(pooled),
        hit: summarize(hit),
        firstError: pooled.firstError ?? hit.firstError
      })
    } finally {
      await bridge.close()
      await target.close()
    }
  }
  return cells
}

// -----------------------------------------------------------------------------
// 2. hit latency through the full pipeline, inside Effect
// -----------------------------------------------------------------------------

const pipelineHitMicros = async (quick: boolean) => {
  const server = TestServer.make(spec)
  const runtime = ManagedRuntime.make(
    McpBridge.layer({ mcpServers: { s: { type: "memory" } }, bridge: policy }, {
      transport: McpTransport.layer({ memory: { s: server.connect } })
    })
  )
  try {
    const n = quick ? 20_000 : 100_000
    const latencies = await runtime.runPromise(Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      const call = bridge.callTool("s.cached", { q: "same" })
      for (let i = 0; i < 2_000; i++) yield* call
      const out = new Array<number>(n)
      for (let i = 0; i < n; i++) {
        const started = performance.now()
        yield* call
        out[i] = performance.now() - started
      }
      return out
    }))
    latencies.sort((a, b) => a - b)
    const stats = await runtime.runPromise(ResultCache.ResultCache.use((cache) => cache.stats))
    return {
      calls: n,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      upstream: server.calls("cached"),
      hits: stats.hits
    }
  } finally {
    await runtime.dispose()
    await server.close()
  }
}

// -----------------------------------------------------------------------------
// 3. Zipf workload
// -----------------------------------------------------------------------------

/** mulberry32: a small seeded generator, so that every run draws the same workload. */
const seeded = (seed: number) => () => {
  seed |= 0
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** A Zipf(s) sampler over ranks 1..n. */
const zipf = (n: number, s: number, random: () => number) => {
  const cdf = new Array<number>(n)
  let sum = 0
  for (let k = 1; k <= n; k++) cdf[k - 1] = sum += 1 / Math.pow(k, s)
  return () => {
    const u = random() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    return lo + 1
  }
}

interface Mix {
  readonly name: string
  readonly writes: number
  readonly invalidateOnWrite: boolean
}

const mixes: ReadonlyArray<Mix> = [
  { name: "read-only (100 % reads)", writes: 0, invalidateOnWrite: true },
  { name: "80 % reads / 20 % writes, invalidateOnWrite on", writes: 0.2, invalidateOnWrite: true },
  { name: "80 % reads / 20 % writes, invalidateOnWrite off", writes: 0.2, invalidateOnWrite: false }
]

const zipfWorkload = async (mix: Mix, calls: number) => {
  const server = TestServer.make(spec)
  const runtime = ManagedRuntime.make(
    McpBridge.layer({
      mcpServers: { s: { type: "memory" } },
      bridge: { ...policy, cache: { invalidateOnWrite: mix.invalidateOnWrite } }
    }, { transport: McpTransport.layer({ memory: { s: server.connect } }) })
  )
  try {
    const random = seeded(42)
    const next = zipf(1_000, 1.1, random)
    const started = performance.now()
    await runtime.runPromise(Effect.gen(function*() {
      const bridge = yield* McpBridge.McpBridge
      for (let i = 0; i < calls; i++) {
        if (random() < mix.writes) yield* bridge.callTool("s.write", { id: next() })
        else yield* bridge.callTool("s.cached", { id: next() })
      }
    }))
    const millis = performance.now() - started
    const stats = await runtime.runPromise(ResultCache.ResultCache.use((cache) => cache.stats))
    return { mix, stats, reads: stats.hits + stats.misses, upstreamReads: server.calls("cached"), millis }
  } finally {
    await runtime.dispose()
    await server.close()
  }
}

// -----------------------------------------------------------------------------
// The section
// -----------------------------------------------------------------------------

export const cache: Section = async ({ log, quick, rounds }) => {
  const pairs = await hitVsPooled(log, quick, rounds)
  log("  full-pipeline hit latency inside Effect...")
  const pipeline = await pipelineHitMicros(quick)
  log("  Zipf workloads...")
  const zipfCalls = 5_000
  const workloads = []
  for (const mix of mixes) workloads.push(await zipfWorkload(mix, zipfCalls))

  const pairTable = markdownTable(
    ["transport", "warm pooled call p50 ms", "cache hit p50 ms", "hit p99 ms", "pooled / hit (p50)", "hit faster by"],
    pairs.map((c) => [
      c.transport,
      formatMillis(c.pooled.p50),
      formatMillis(c.hit.p50),
      formatMillis(c.hit.p99),
      formatRatio(c.pooled.p50 / c.hit.p50),
      `${((1 - c.hit.p50 / c.pooled.p50) * 100).toFixed(1)} %`
    ]),
    ["left", "right", "right", "right", "right", "right"]
  )
  const pipelineTable = markdownTable(
    ["measured", "calls", "p50 µs", "p99 µs", "upstream calls"],
    [
      [
        "cache hit, full default pipeline, inside Effect (memory server)",
        formatRate(pipeline.calls),
        micros(pipeline.p50),
        micros(pipeline.p99),
        String(pipeline.upstream)
      ],
      ...pairs.filter((c) => c.transport === "memory").map((c) => [
        "cache hit, full default pipeline, Promise facade (memory server)",
        formatRate(c.hit.calls),
        micros(c.hit.p50),
        micros(c.hit.p99),
        "1"
      ])
    ],
    ["left", "right", "right", "right", "right"]
  )
  const zipfTable = markdownTable(
    [
      "workload (5,000 calls, Zipf s = 1.1 over 1,000 argument values)",
      "cacheable reads",
      "hits",
      "hit rate",
      "upstream reads",
      "evictions"
    ],
    workloads.map((w) => [
      w.mix.name,
      formatRate(w.reads),
      formatRate(w.stats.hits),
      `${(w.stats.hitRate * 100).toFixed(1)} %`,
      formatRate(w.upstreamReads),
      String(w.stats.evictions)
    ]),
    ["left", "right", "right", "right", "right", "right"]
  )
  const errors = pairs.filter((c) => c.firstError !== undefined).map((c) =>
    `\nerrors over ${c.transport}: ${c.firstError}`
  )
  return {
    title: "Result cache: hit vs warm pooled call, hit latency, hit rate of a mixed workload",
    markdown: [pairTable, "", pipelineTable, "", zipfTable, ...errors].join("\n"),
    json: {
      hitVsPooled: pairs.map((c) => ({
        transport: c.transport,
        pooledP50Millis: round3(c.pooled.p50),
        hitP50Millis: round3(c.hit.p50),
        hitP99Millis: round3(c.hit.p99),
        ratio: Number((c.pooled.p50 / c.hit.p50).toPrecision(3)),
        calls: c.hit.calls,
        errors: c.pooled.errors + c.hit.errors
      })),
      pipelineHit: {
        calls: pipeline.calls,
        p50Micros: Number((pipeline.p50 * 1000).toFixed(2)),
        p99Micros: Number((pipeline.p99 * 1000).toFixed(2)),
        upstreamCalls: pipeline.upstream
      },
      zipf: workloads.map((w) => ({
        workload: w.mix.name,
        calls: zipfCalls,
        reads: w.reads,
        hits: w.stats.hits,
        hitRate: Number(w.stats.hitRate.toFixed(4)),
        upstreamReads: w.upstreamReads,
        evictions: w.stats.evictions,
        millis: Math.round(w.millis)
      }))
    }
  }
}
