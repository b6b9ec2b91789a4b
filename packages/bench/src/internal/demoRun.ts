/**
 * The demo's bridge run and its grading, apart from the script that prints them, so that a test runs the same
 * workload and checks the same verdicts.
 *
 * The workload is a fixed sequence of rounds, never a race: each round is a write alone, then each distinct read once
 * (misses: the write dropped the server's cached results), then reads of those same keys (hits). No read of a key is
 * in flight while a write runs, so what is cached, and the hit rate, are the same on any machine.
 */
import { AlertRules } from "@mcp-bridge/core"
import type { BridgeClient } from "@mcp-bridge/core"
import { createBridge } from "@mcp-bridge/node"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { emptySamples, runLoad } from "./measure.ts"

/** One call of the workload. */
export interface DemoCall {
  readonly tool: string
  readonly args: Record<string, unknown>
}

/** The distinct reads: a cache key each. */
export const demoReads: ReadonlyArray<DemoCall> = [
  { tool: "get_tasks", args: {} },
  { tool: "get_tasks", args: { status: "todo" } },
  { tool: "get_tasks", args: { status: "in_progress" } },
  { tool: "get_tasks", args: { status: "done" } },
  { tool: "get_today_metrics", args: {} },
  { tool: "get_clients", args: {} }
]

/** Rounds of the workload, and calls per round (one write, each distinct read once, then repeated reads). */
export const DEMO_ROUNDS = 8
export const DEMO_ROUND_CALLS = 25
/** Calls in flight at once within a phase of a round. */
export const DEMO_CONCURRENCY = 8

/** The three phases of round `round`, run one after the other; the calls of a phase run concurrently. */
export const demoRound = (round: number): ReadonlyArray<ReadonlyArray<DemoCall>> => {
  const write: DemoCall = {
    tool: "create_task",
    args: { title: `Follow up #${round + 1}`, priority: "medium", assignee: "maya" }
  }
  const repeats = DEMO_ROUND_CALLS - 1 - demoReads.length
  return [[write], demoReads, Array.from({ length: repeats }, (_, i) => demoReads[(i + round) % demoReads.length]!)]
}

/** Misses and hits the workload makes by design: each distinct read misses once per round, the repeats hit. */
export const demoExpected = {
  calls: DEMO_ROUNDS * DEMO_ROUND_CALLS,
  misses: DEMO_ROUNDS * demoReads.length,
  hits: DEMO_ROUNDS * (DEMO_ROUND_CALLS - 1 - demoReads.length)
}

/**
 * The operator's cache policy for the demo server: its read-only annotations are trusted (cached for the "dynamic"
 * class, 5 minutes), clients are "static" (1 hour), and `create_task` (not read-only) drops the server's cached
 * results when it runs (`invalidateOnWrite`, the default).
 */
export const demoCachePolicy = {
  trustAnnotations: true,
  cache: { ttl: "dynamic" },
  tools: { get_clients: { cache: "static" } }
}

const isOk = (result: CallToolResult): boolean => result.isError !== true

/** Runs the workload through a bridge to the stdio server `command args`, and what the bridge measured. */
export const runDemoBridge = async (command: string, args: ReadonlyArray<string>) => {
  const started = performance.now()
  const bridge: BridgeClient.BridgeClient = await createBridge({
    mcpServers: { workos: { command, args: [...args], bridge: demoCachePolicy } }
  })
  try {
    const tools = await bridge.listTools()
    const coldStartMillis = performance.now() - started
    const samples = emptySamples()
    for (let round = 0; round < DEMO_ROUNDS; round++) {
      for (const phase of demoRound(round)) {
        await runLoad({
          total: phase.length,
          concurrency: DEMO_CONCURRENCY,
          call: async (i) => isOk(await bridge.callTool(`workos.${phase[i]!.tool}`, phase[i]!.args))
        }, samples)
      }
    }
    const stats = (await bridge.stats()).find((s) => s.server === "workos")
    // The bridge's own view of the run: its live metrics snapshot, and the alert rules it would fire.
    const snapshot = await bridge.metrics()
    const metrics = snapshot.servers.find((s) => s.server === "workos")!
    return {
      samples,
      stats,
      coldStartMillis,
      tools: tools.length,
      metrics,
      alerts: AlertRules.rulesFiring(snapshot)
    }
  } finally {
    await bridge.close()
  }
}

/** A verdict on the seed's thresholds. */
export type Grade = "Target" | "Good" | "Needs Improvement" | "n/a"

/** `lower`: lower is better (latency), else higher is better (rates). */
export const grade = (value: number | undefined, target: number, good: number, lower: boolean): Grade => {
  if (value === undefined || !Number.isFinite(value)) return "n/a"
  if (lower ? value < target : value > target) return "Target"
  if (lower ? value < good : value > good) return "Good"
  return "Needs Improvement"
}

/** The verdicts the workload decides by design, whatever the machine: success rate and cache hit rate. */
export const designVerdicts = (
  metrics: { readonly successRate?: number | undefined; readonly cache: { readonly hitRate?: number | undefined } }
) => ({
  successRate: grade(metrics.successRate, 0.99, 0.95, false),
  cacheHitRate: metrics.cache.hitRate === undefined ? "n/a" as const : grade(metrics.cache.hitRate, 0.7, 0.5, false)
})
