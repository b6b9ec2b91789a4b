/**
 * `npm run demo`: the seed's "Expected Performance Metrics", measured live against the demo "workos" server started
 * as a stdio child process (no network, no keys), through the bridge and through the naive pattern side by side.
 */
import { AlertRules } from "@mcp-bridge/core"
import { TestServer } from "@mcp-bridge/testing"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio"
import { Duration } from "effect"
import {
  DEMO_CONCURRENCY,
  DEMO_ROUND_CALLS,
  DEMO_ROUNDS,
  type DemoCall,
  demoExpected,
  demoRound,
  designVerdicts,
  type Grade,
  grade,
  runDemoBridge
} from "./internal/demoRun.ts"
import { formatMillis, formatRate, markdownTable, runLoad, summarize, timed } from "./internal/measure.ts"
import { newClient } from "./internal/targets.ts"

const NAIVE_CALLS = 20

const spec = TestServer.demoServers.workos
const { args, command } = TestServer.stdioCommand(spec)

/** The workload's calls in order, for the naive pattern (one at a time). */
const sequence: ReadonlyArray<DemoCall> = Array.from({ length: DEMO_ROUNDS }, (_, r) => demoRound(r).flat()).flat()

const isOk = (result: CallToolResult): boolean => result.isError !== true

// -----------------------------------------------------------------------------
// Grading (the seed's thresholds)
// -----------------------------------------------------------------------------

const verdict = (bridge: Grade, naive: Grade): string => `${bridge} (naive: ${naive})`

const percent = (x: number): string => `${(x * 100).toFixed(1)}%`

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`

// -----------------------------------------------------------------------------
// Runs
// -----------------------------------------------------------------------------

const runNaive = async () => {
  const connects: Array<number> = []
  const firstCalls: Array<number> = []
  const samples = await runLoad({
    total: NAIVE_CALLS,
    concurrency: 1,
    call: async (i) => {
      const { args: callArgs, tool } = sequence[i]!
      const client = newClient()
      try {
        const connect = await timed(() =>
          client.connect(new StdioClientTransport({ command, args: [...args], stderr: "ignore" }))
        )
        connects.push(connect.millis)
        const call = await timed(() => client.callTool({ name: tool, arguments: callArgs }) as Promise<CallToolResult>)
        firstCalls.push(call.millis)
        return isOk(call.value)
      } finally {
        // The caller has its result before the close; the close is not part of the call's latency.
        void client.close().catch(() => undefined)
      }
    }
  })
  return { samples, connects, firstCalls }
}

const mean = (xs: ReadonlyArray<number>) => xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length

const main = async () => {
  console.log(
    `Demo: the "workos" MCP server (${spec.tools.map((t) => t.name).join(", ")}) as a stdio child process; ` +
      `${demoExpected.calls} calls through the bridge in ${DEMO_ROUNDS} rounds of ${DEMO_ROUND_CALLS} (a write alone, ` +
      `each distinct read once, then repeated reads, ${DEMO_CONCURRENCY} at a time), then ${NAIVE_CALLS} calls ` +
      `with the naive pattern (new SDK client + process per call, one at a time).\n`
  )
  const started = performance.now()
  const bridgeRun = await runDemoBridge(command, args)
  const naiveRun = await runNaive()
  // let the last naive close finish before the process winds down
  await new Promise((resolve) => setTimeout(resolve, 50))

  const b = summarize(bridgeRun.samples)
  const n = summarize(naiveRun.samples)
  // errors = calls that threw + calls answered with isError, over every attempted call
  const naiveSuccess = (NAIVE_CALLS - naiveRun.samples.errors) / NAIVE_CALLS

  // The bridge column comes from the bridge's live metrics snapshot (`bridge.metrics()`); the naive column is
  // measured by the client, as the naive pattern has no bridge to ask.
  const m = bridgeRun.metrics
  const connectMean = m.pool?.meanConnectMillis
  const connectLast = bridgeRun.stats?.lastConnectMillis
  const naiveConnect = mean(naiveRun.connects)
  const bridgeSuccess = m.successRate
  const hitRate = m.cache.hitRate

  const rows = [
    [
      "Tool call latency (p50)",
      "<100ms",
      `${formatMillis(m.p50Millis ?? Number.NaN)} ms`,
      `${formatMillis(n.p50)} ms`,
      verdict(grade(m.p50Millis, 100, 200, true), grade(n.p50, 100, 200, true))
    ],
    [
      "Tool call latency (p95)",
      "<500ms",
      `${formatMillis(m.p95Millis ?? Number.NaN)} ms`,
      `${formatMillis(n.p95)} ms`,
      verdict(grade(m.p95Millis, 500, 1000, true), grade(n.p95, 500, 1000, true))
    ],
    [
      "Connection establishment",
      "<500ms",
      connectMean === undefined
        ? "–"
        : `${formatMillis(connectMean)} ms mean (last ${formatMillis(connectLast ?? Number.NaN)} ms, ` +
          `${plural(m.pool?.created ?? 0, "session")})`,
      `${formatMillis(naiveConnect)} ms mean (${plural(naiveRun.connects.length, "session")})`,
      verdict(grade(connectMean, 500, 1000, true), grade(naiveConnect, 500, 1000, true))
    ],
    [
      "Success rate",
      ">99%",
      bridgeSuccess === undefined ? "–" : `${percent(bridgeSuccess)} (${m.success}/${m.calls})`,
      `${percent(naiveSuccess)} (${NAIVE_CALLS - naiveRun.samples.errors}/${NAIVE_CALLS})`,
      verdict(designVerdicts(m).successRate, grade(naiveSuccess, 0.99, 0.95, false))
    ],
    [
      "Cache hit rate",
      ">70%",
      hitRate === undefined
        ? "n/a (no cacheable calls)"
        : `${percent(hitRate)} (${m.cache.hits}/${m.cache.hits + m.cache.misses})`,
      "n/a",
      designVerdicts(m).cacheHitRate
    ]
  ]
  console.log(markdownTable(["Metric", "Target", "Bridge", "Naive", "Verdict"], rows))
  console.log()
  console.log("Per tool, from `bridge.metrics()` (latency percentiles over the last 5 minutes):\n")
  console.log(markdownTable(
    ["Tool", "Calls", "Success rate", "Mean ms", "p50 ms", "p95 ms", "p99 ms"],
    m.tools.filter((t) => t.calls > 0).map((t) => [
      t.tool,
      String(t.calls),
      t.successRate === undefined ? "–" : percent(t.successRate),
      formatMillis(t.meanMillis ?? Number.NaN),
      formatMillis(t.p50Millis ?? Number.NaN),
      formatMillis(t.p95Millis ?? Number.NaN),
      formatMillis(t.p99Millis ?? Number.NaN)
    ])
  ))
  console.log()
  const d = AlertRules.defaults
  console.log(
    `Alert rules (error rate > ${percent(d.errorRate.threshold)}, p95 > ${Duration.toMillis(d.latency.p95)} ms, ` +
      `cache hit rate < ${percent(d.cacheHitRate.threshold)}, callers waiting for a session, circuit open): ` +
      (bridgeRun.alerts.length === 0
        ? "none would fire."
        : `would fire:\n${bridgeRun.alerts.map((a) => `  - ${a.rule}: ${a.message}`).join("\n")}`)
  )
  console.log()
  const bridgeError = bridgeRun.samples.firstError
  const naiveError = naiveRun.samples.firstError
  console.log(
    `- Bridge: ${b.calls} calls in ${formatRate(b.wallMillis / 1000)} s (${formatRate(b.callsPerSecond)} calls/s); ` +
      `cold start (spawn, connect, tools/list of ${bridgeRun.tools} tools) ` +
      `${formatMillis(bridgeRun.coldStartMillis)} ms${bridgeError === undefined ? "" : `; first error: ${bridgeError}`}`
  )
  console.log(
    `- Naive: ${n.calls} calls in ${formatRate(n.wallMillis / 1000)} s (${formatRate(n.callsPerSecond)} calls/s); ` +
      `each = connect() (mean ${formatMillis(naiveConnect)} ms) + the call on the new session ` +
      `(mean ${formatMillis(mean(naiveRun.firstCalls))} ms)` +
      (naiveError === undefined ? "" : `; first error: ${naiveError}`)
  )
  console.log(
    `- With version negotiation "auto" over stdio, the SDK's connect() probes on a throwaway sibling process and ` +
      `only then starts the session's own process,\n  without waiting for it: that start-up lands on the first call.`
  )
  console.log(
    `Verdicts grade the bridge column (the naive column's in brackets). Done in ${
      formatRate((performance.now() - started) / 1000)
    } s.`
  )
}

await main()
