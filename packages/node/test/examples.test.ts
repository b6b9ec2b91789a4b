import { assert, describe, it } from "@effect/vitest"
import { main as cache } from "../examples/cache.ts"
import { main } from "../examples/quickstart.ts"
import { main as resilience } from "../examples/resilience.ts"
import { main as telemetry } from "../examples/telemetry.ts"

describe("examples", () => {
  it("quickstart runs", async () => {
    const result = await main()
    assert.isAbove(result.tools, 5)
    assert.include(JSON.stringify(result.sum), "5")
  })

  it("cache runs", async () => {
    const { after, before, dropped } = await cache()
    assert.deepStrictEqual([before.hits, before.misses, before.size], [1, 2, 2])
    assert.strictEqual(before.servers.calc?.hits, 1)
    assert.strictEqual(dropped, 2)
    assert.strictEqual(after.size, 0)
  })

  it("telemetry runs", async () => {
    const { events, server } = await telemetry()
    assert.strictEqual(server.calls, 11)
    assert.strictEqual(server.successRate, 1)
    assert.strictEqual(server.tools.find((t) => t.tool === "get-sum")?.calls, 10)
    assert.isDefined(server.tools.find((t) => t.tool === "get-sum")?.p95Millis)
    assert.deepStrictEqual(events, [])
  })

  it("resilience runs", async () => {
    const { down, sums } = await resilience()
    assert.isTrue(sums.every((r) => r.ok))
    assert.deepStrictEqual(down, ["ConnectFailed", "CircuitOpen", "CircuitOpen", "CircuitOpen"])
  })
})
