/**
 * Section "stages": what the throttler, resilience and coalescing stages cost on a warm call, next to a bridge with every
 * stage off. One in-memory echo server (zero latency), one bridge per variant, measured in interleaved rounds at c=1
 * (median latency) and c=50 (throughput). The tool is read-only by policy, so every stage has work to do: the throttler
 * has limits (set far above the load, so it never waits), resilience has its retry policy and circuit breaker, and the
 * coalescing looks for identical calls in flight (every call has distinct arguments, so none is merged).
 */
import type { BridgeClient, McpBridge } from "@mcp-bridge/core"
import { createBridge } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { formatMicros, formatRate, formatRatio, markdownTable, micros } from "../internal/measure.ts"
import { cellJson, errorLines, measureModes, summaryOf } from "../internal/modes.ts"
import type { Cell } from "../internal/modes.ts"
import type { Section } from "../internal/section.ts"
import { callOk, echoSpec } from "../internal/targets.ts"

type Mode = "none" | "throttler" | "resilience" | "both" | "coalescing"
const modes: ReadonlyArray<Mode> = ["none", "throttler", "resilience", "both", "coalescing"]
const modeLabel: Record<Mode, string> = {
  none: "no stages",
  throttler: "throttler (limits set, never reached)",
  resilience: "resilience (retry policy + circuit breaker)",
  both: "throttler + resilience",
  coalescing: "coalescing (coalescing lookup)"
}
const concurrencies = [1, 50] as const

const options = (mode: Mode): McpBridge.LayerOptions => ({
  cache: false,
  telemetry: false,
  coalescing: mode === "coalescing",
  throttle: mode === "throttler" || mode === "both" ? {} : false,
  resilience: mode === "resilience" || mode === "both" ? {} : false
})

export const stages: Section = async ({ log, quick, rounds }) => {
  const server = TestServer.make(echoSpec)
  const bridges = new Map<Mode, BridgeClient.BridgeClient>()
  for (const mode of modes) {
    bridges.set(
      mode,
      await createBridge({
        mcpServers: {
          s: {
            type: "memory",
            bridge: {
              tools: { echo: { readOnly: true } },
              throttle: { perSecond: 100_000, perMinute: 1_000_000, concurrency: 10_000 },
              retry: { times: 2 },
              circuitBreaker: { failures: 5 }
            }
          }
        }
      }, { memory: { s: server.connect }, ...options(mode) })
    )
  }
  let cells: ReadonlyArray<Cell<Mode>>
  try {
    for (const bridge of bridges.values()) await bridge.listTools()
    cells = await measureModes({
      modes,
      concurrencies,
      rounds,
      log,
      total: (c) => quick ? (c === 1 ? 2_000 : 5_000) : (c === 1 ? 10_000 : 30_000),
      call: (mode) => {
        const bridge = bridges.get(mode)!
        return async (i) => callOk(await bridge.callTool("s.echo", { i }))
      }
    })
  } finally {
    for (const bridge of bridges.values()) await bridge.close()
    await server.close()
  }
  const find = (mode: Mode, c: number) => summaryOf(cells, mode, c)
  const rows = modes.map((mode) => {
    const c1 = find(mode, 1)
    const c50 = find(mode, 50)
    return [
      modeLabel[mode],
      micros(c1.p50),
      mode === "none" ? "–" : formatMicros(c1.p50 - find("none", 1).p50),
      formatRate(c50.callsPerSecond),
      mode === "none" ? "–" : formatRatio(c50.callsPerSecond / find("none", 50).callsPerSecond)
    ]
  })
  const markdown = [
    markdownTable(
      ["stages on a warm call (in-memory echo)", "c=1 p50 µs", "vs no stages", "c=50 calls/s", "vs no stages"],
      rows,
      ["left", "right", "right", "right", "right"]
    ),
    ...errorLines(cells)
  ].join("\n")
  return {
    title: "Stages: overhead of throttler, resilience and coalescing on a warm call",
    markdown,
    json: { cells: cells.map(cellJson) }
  }
}
