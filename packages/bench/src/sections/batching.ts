/**
 * Section "batching": what `callMany` and coalescing save.
 *
 * - 10 calls to a tool with 20 ms latency: one after the other (`callTool` in a loop) vs `callMany` (5 at a time, the
 *   default, and all 10 at once), in interleaved rounds; the ratio is the speed-up the seed promised (2-5×).
 * - 100 identical concurrent calls of a read-only tool (result cache off): upstream calls made with the coalescing on and
 *   off, and the wall time of the 100 calls.
 */
import type { BridgeClient } from "@mcp-bridge/core"
import { createBridge } from "@mcp-bridge/node"
import { TestServer } from "@mcp-bridge/testing"
import { formatMillis, formatRatio, markdownTable, percentile, round3 } from "../internal/measure.ts"
import type { Section } from "../internal/section.ts"

const spec: TestServer.TestServerSpec = {
  name: "bench-batching",
  tools: [
    { name: "slow", latencyMs: 20, respond: { kind: "echo" } },
    { name: "lookup", latencyMs: 20, respond: { kind: "echo" } }
  ]
}

const bridgeOver = (server: TestServer.TestServer, coalescing: boolean) =>
  createBridge({
    mcpServers: { s: { type: "memory", bridge: { tools: { lookup: { readOnly: true } } } } }
  }, {
    memory: { s: server.connect },
    cache: false,
    telemetry: false,
    ...(coalescing ? {} : { coalescing: false })
  })

const median = (xs: ReadonlyArray<number>) => percentile([...xs].sort((a, b) => a - b), 50)

const time = async (f: () => Promise<unknown>) => {
  const started = performance.now()
  await f()
  return performance.now() - started
}

const allOk = (results: ReadonlyArray<BridgeClient.CallManyOutcome>) => {
  if (!results.every((r) => r.ok)) throw new Error("a call failed")
}

export const batching: Section = async ({ log, quick }) => {
  const server = TestServer.make(spec)
  const bridge = await bridgeOver(server, true)
  const plain = await bridgeOver(server, false)
  try {
    // 1. sequential vs callMany
    const rounds = quick ? 8 : 30
    const calls = Array.from({ length: 10 }, (_, i) => ({ target: "s.slow", arguments: { i } }))
    log(`  10 calls × 20 ms: ${rounds} rounds of sequential, callMany(5), callMany(10)...`)
    await bridge.callMany(calls, { concurrency: 10 })
    const times = { sequential: [] as Array<number>, many5: [] as Array<number>, many10: [] as Array<number> }
    const variants: Array<[keyof typeof times, () => Promise<unknown>]> = [
      ["sequential", async () => {
        for (const call of calls) await bridge.callTool(call.target, call.arguments)
      }],
      ["many5", async () => allOk(await bridge.callMany(calls))],
      ["many10", async () => allOk(await bridge.callMany(calls, { concurrency: 10 }))]
    ]
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < variants.length; k++) {
        const [name, run] = variants[(k + round) % variants.length]!
        times[name].push(await time(run))
      }
    }
    const sequential = median(times.sequential)
    const many5 = median(times.many5)
    const many10 = median(times.many10)

    // 2. coalescing of 100 identical read-only calls
    const identical = async (client: BridgeClient.BridgeClient) => {
      const before = server.calls("lookup")
      const millis = await time(() =>
        Promise.all(Array.from({ length: 100 }, () => client.callTool("s.lookup", { q: "pool" })))
      )
      return { upstream: server.calls("lookup") - before, millis }
    }
    log("  100 identical concurrent read-only calls, coalescing on and off...")
    await identical(bridge)
    await identical(plain)
    const on: Array<{ upstream: number; millis: number }> = []
    const off: Array<{ upstream: number; millis: number }> = []
    for (let round = 0; round < (quick ? 3 : 10); round++) {
      on.push(await identical(bridge))
      off.push(await identical(plain))
    }
    const onUpstream = Math.max(...on.map((x) => x.upstream))
    const offUpstream = Math.min(...off.map((x) => x.upstream))

    const markdown = [
      markdownTable(
        ["10 calls to a tool with 20 ms latency", "median ms", "speed-up vs sequential"],
        [
          ["sequential `callTool`", formatMillis(sequential), "1×"],
          ["`callMany` (concurrency 5, the default)", formatMillis(many5), formatRatio(sequential / many5)],
          ["`callMany` (concurrency 10)", formatMillis(many10), formatRatio(sequential / many10)]
        ],
        ["left", "right", "right"]
      ),
      "",
      markdownTable(
        ["100 identical concurrent read-only calls (cache off)", "upstream calls", "median wall ms"],
        [
          ["coalescing on (coalescing)", String(onUpstream), formatMillis(median(on.map((x) => x.millis)))],
          ["coalescing off", String(offUpstream), formatMillis(median(off.map((x) => x.millis)))]
        ],
        ["left", "right", "right"]
      )
    ].join("\n")
    return {
      title: "Batching: callMany and coalescing (in-memory server, 20 ms tool latency)",
      markdown,
      json: {
        rounds,
        sequentialMillis: round3(sequential),
        callMany5Millis: round3(many5),
        callMany10Millis: round3(many10),
        speedUp5: Number((sequential / many5).toPrecision(3)),
        speedUp10: Number((sequential / many10).toPrecision(3)),
        identical: {
          upstreamWithCoalescing: onUpstream,
          upstreamWithoutCoalescing: offUpstream,
          wallMillisWithCoalescing: round3(median(on.map((x) => x.millis))),
          wallMillisWithoutCoalescing: round3(median(off.map((x) => x.millis)))
        }
      }
    }
  } finally {
    await bridge.close()
    await plain.close()
    await server.close()
  }
}
