/**
 * `npm run bench [-- --quick] [--only overhead,cache]`: what the bridge costs and what it saves, per transport and
 * concurrency.
 *
 * Each section measures its variants in interleaved rounds (so they share machine conditions), prints a markdown
 * table, and adds its results to `.bench/results.json`. The sections are listed in `sections`; each lives in
 * `sections/<name>.ts` except `overhead`, which is below.
 */
import { mkdir, writeFile } from "node:fs/promises"
import { cpus } from "node:os"
import { relative, resolve } from "node:path"
import {
  formatMicros,
  formatMillis,
  formatRate,
  formatRatio,
  interleave,
  markdownTable,
  round3,
  summarize
} from "./internal/measure.ts"
import type { Summary, Variant } from "./internal/measure.ts"
import { callOk, connectClient, echoSpec, naiveCall, startTarget, transportNames } from "./internal/targets.ts"
import type { TransportName } from "./internal/targets.ts"

import type { Context, Section } from "./internal/section.ts"
import { batching } from "./sections/batching.ts"
import { cache } from "./sections/cache.ts"
import { gateway } from "./sections/gateway.ts"
import { peers } from "./sections/peers.ts"
import { replicas } from "./sections/replicas.ts"
import { stages } from "./sections/stages.ts"
import { telemetry } from "./sections/telemetry.ts"

// -----------------------------------------------------------------------------
// Section: overhead (raw SDK vs naive vs bridge)
// -----------------------------------------------------------------------------

type Mode = "raw" | "naive" | "bridge"
const modes: ReadonlyArray<Mode> = ["raw", "naive", "bridge"]
const modeLabel: Record<Mode, string> = {
  raw: "raw SDK (1 warm session)",
  naive: "naive (session per call)",
  bridge: "bridge (pooled)"
}
const concurrencies = [1, 50] as const
type Concurrency = typeof concurrencies[number]

/** Calls measured per cell: [raw and bridge, naive], by transport and concurrency. */
const counts = (quick: boolean, transport: TransportName, c: Concurrency): { pooled: number; naive: number } => {
  const table: Record<TransportName, Record<Concurrency, { pooled: number; naive: number }>> = quick
    ? {
      memory: { 1: { pooled: 1_000, naive: 100 }, 50: { pooled: 3_000, naive: 200 } },
      stdio: { 1: { pooled: 1_000, naive: 5 }, 50: { pooled: 3_000, naive: 10 } },
      http: { 1: { pooled: 500, naive: 50 }, 50: { pooled: 1_500, naive: 150 } }
    }
    : {
      memory: { 1: { pooled: 5_000, naive: 500 }, 50: { pooled: 20_000, naive: 1_000 } },
      stdio: { 1: { pooled: 5_000, naive: 20 }, 50: { pooled: 15_000, naive: 50 } },
      http: { 1: { pooled: 3_000, naive: 300 }, 50: { pooled: 10_000, naive: 1_000 } }
    }
  return table[transport][c]
}

interface OverheadCell {
  readonly transport: TransportName
  readonly concurrency: Concurrency
  readonly mode: Mode
  readonly summary: Summary
  readonly firstError: string | undefined
}

const overhead: Section = async ({ log, quick, rounds }) => {
  const cells: Array<OverheadCell> = []
  for (const transport of transportNames) {
    const target = await startTarget(transport, echoSpec)
    const raw = await connectClient(target)
    const bridge = await target.bridge()
    try {
      await bridge.listTools()
      for (const concurrency of concurrencies) {
        const n = counts(quick, transport, concurrency)
        log(`  ${transport} c=${concurrency}: ${n.pooled} raw + ${n.pooled} bridge + ${n.naive} naive calls...`)
        const started = performance.now()
        const variants: Record<Mode, Variant> = {
          raw: {
            name: "raw",
            total: n.pooled,
            warmup: Math.min(n.pooled, Math.max(200, concurrency * 10)),
            call: async (i) => callOk(await raw.callTool({ name: "echo", arguments: { i } }))
          },
          naive: {
            name: "naive",
            total: n.naive,
            warmup: transport === "stdio" ? 1 : Math.min(20, n.naive),
            call: async (i) => callOk((await naiveCall(target, "echo", { i })).result)
          },
          bridge: {
            name: "bridge",
            total: n.pooled,
            warmup: Math.min(n.pooled, Math.max(200, concurrency * 10)),
            call: async (i) => callOk(await bridge.callTool("s.echo", { i }))
          }
        }
        const results = await interleave(modes.map((m) => variants[m]), { concurrency, rounds })
        for (const mode of modes) {
          const samples = results.get(mode)!
          cells.push({ transport, concurrency, mode, summary: summarize(samples), firstError: samples.firstError })
        }
        log(`    done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
      }
      const stats = await bridge.stats()
      for (const s of stats) {
        log(
          `  ${transport} bridge pool: ${s.created} sessions opened, ${s.idle} idle, ${s.invalidated} invalidated, ` +
            `mean connect ${formatMillis(s.meanConnectMillis ?? Number.NaN)} ms`
        )
      }
    } finally {
      await bridge.close()
      await raw.close()
      await target.close()
    }
  }

  const find = (t: TransportName, c: Concurrency, m: Mode) =>
    cells.find((x) => x.transport === t && x.concurrency === c && x.mode === m)!.summary
  const rows = cells.map((cell) => [
    cell.transport,
    String(cell.concurrency),
    modeLabel[cell.mode],
    String(cell.summary.calls),
    formatMillis(cell.summary.p50),
    formatMillis(cell.summary.p95),
    formatMillis(cell.summary.p99),
    formatRate(cell.summary.callsPerSecond),
    String(cell.summary.errors)
  ])
  const ratios = transportNames.flatMap((t) =>
    concurrencies.map((c) => {
      const raw = find(t, c, "raw")
      const naive = find(t, c, "naive")
      const bridge = find(t, c, "bridge")
      return {
        transport: t,
        concurrency: c,
        poolingSpeedup: naive.p50 / bridge.p50,
        bridgeOverhead: bridge.p50 / raw.p50,
        bridgeOverheadMicros: (bridge.p50 - raw.p50) * 1000,
        throughputVsRaw: bridge.callsPerSecond / raw.callsPerSecond
      }
    })
  )
  const errors = cells.filter((c) => c.firstError !== undefined)
  const markdown = [
    markdownTable(
      ["transport", "c", "mode", "calls", "p50 ms", "p95 ms", "p99 ms", "calls/s", "errors"],
      rows,
      ["left", "right", "left", "right", "right", "right", "right", "right", "right"]
    ),
    "",
    markdownTable(
      [
        "transport",
        "c",
        "pooling speed-up (naive/bridge p50)",
        "bridge overhead (bridge/raw p50)",
        "bridge − raw p50",
        "bridge/raw calls/s"
      ],
      ratios.map((r) => [
        r.transport,
        String(r.concurrency),
        formatRatio(r.poolingSpeedup),
        formatRatio(r.bridgeOverhead),
        formatMicros(r.bridgeOverheadMicros / 1000),
        formatRatio(r.throughputVsRaw)
      ]),
      ["left", "right", "right", "right", "right", "right"]
    ),
    ...errors.map((c) => `\nerrors in ${c.transport} c=${c.concurrency} ${c.mode}: ${c.firstError}`)
  ].join("\n")
  return {
    title: "Overhead: raw SDK vs naive vs bridge (tool `echo`, zero latency)",
    markdown,
    json: {
      cells: cells.map((c) => ({
        transport: c.transport,
        concurrency: c.concurrency,
        mode: c.mode,
        calls: c.summary.calls,
        errors: c.summary.errors,
        firstError: c.firstError,
        p50Millis: round3(c.summary.p50),
        p95Millis: round3(c.summary.p95),
        p99Millis: round3(c.summary.p99),
        meanMillis: round3(c.summary.mean),
        maxMillis: round3(c.summary.max),
        callsPerSecond: Math.round(c.summary.callsPerSecond),
        wallMillis: Math.round(c.summary.wallMillis)
      })),
      ratios: ratios.map((r) => ({
        ...r,
        poolingSpeedup: Number(r.poolingSpeedup.toPrecision(3)),
        bridgeOverhead: Number(r.bridgeOverhead.toPrecision(3)),
        bridgeOverheadMicros: Math.round(r.bridgeOverheadMicros),
        throughputVsRaw: Number(r.throughputVsRaw.toPrecision(3))
      }))
    }
  }
}

// -----------------------------------------------------------------------------
// Main
// -----------------------------------------------------------------------------

const sections: ReadonlyArray<readonly [name: string, run: Section]> = [
  ["overhead", overhead],
  ["cache", cache],
  ["telemetry", telemetry],
  ["batching", batching],
  ["stages", stages],
  ["peers", peers],
  ["gateway", gateway],
  ["replicas", replicas]
]

const main = async () => {
  const argv = process.argv.slice(2)
  const quick = argv.includes("--quick")
  const onlyAt = argv.indexOf("--only")
  const only = onlyAt >= 0 ? new Set((argv[onlyAt + 1] ?? "").split(",")) : undefined
  const unknown = only === undefined ? [] : [...only].filter((name) => !sections.some(([n]) => n === name))
  if (unknown.length > 0) {
    console.error(`unknown section(s) ${unknown.join(", ")}; sections: ${sections.map(([n]) => n).join(", ")}`)
    process.exitCode = 2
    return
  }
  const script = relative(process.cwd(), process.argv[1] ?? "packages/bench/src/bench.ts")
  const command = process.env.npm_lifecycle_event === "bench"
    ? `npm run bench${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`
    : `node ${script}${argv.length > 0 ? ` ${argv.join(" ")}` : ""}`
  const machine = `node ${process.version}, ${process.platform}/${process.arch}, ${cpus().length} × ${
    cpus()[0]?.model.trim() ?? "cpu"
  }`
  console.log(`$ ${command}`)
  console.log(`${machine}; ${quick ? "quick" : "full"} mode\n`)
  const context: Context = {
    quick,
    rounds: quick ? 3 : 5,
    log: (line) => console.error(line)
  }
  const started = performance.now()
  const results: Record<string, unknown> = {}
  for (const [name, run] of sections) {
    if (only !== undefined && !only.has(name)) continue
    console.error(`section ${name}:`)
    const result = await run(context)
    console.log(`## ${result.title}\n\n${result.markdown}\n`)
    results[name] = result.json
  }
  const seconds = (performance.now() - started) / 1000
  console.log(`finished in ${seconds.toFixed(1)} s`)
  const dir = resolve(process.cwd(), ".bench")
  await mkdir(dir, { recursive: true })
  const file = resolve(dir, "results.json")
  await writeFile(
    file,
    JSON.stringify({ command, machine, quick, date: new Date().toISOString(), seconds, sections: results }, null, 2) +
      "\n"
  )
  console.log(`results written to ${relative(process.cwd(), file)}`)
}

await main()
