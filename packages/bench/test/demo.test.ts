import { assert, describe, it } from "@effect/vitest"
import { TestServer } from "@mcp-bridge/testing"
import { demoExpected, designVerdicts, runDemoBridge } from "../src/internal/demoRun.ts"

describe("demo", () => {
  it("the bridge run hits and misses the cache exactly as its workload is written, on any machine", async () => {
    const { args, command } = TestServer.stdioCommand(TestServer.demoServers.workos)
    const run = await runDemoBridge(command, args)
    const m = run.metrics
    assert.strictEqual(run.samples.errors, 0)
    assert.strictEqual(m.calls, demoExpected.calls)
    // Each distinct read misses once per round (after that round's write), every repeat hits: no read races a write.
    assert.deepStrictEqual([m.cache.hits, m.cache.misses], [demoExpected.hits, demoExpected.misses])
    assert.isAbove(m.cache.hitRate!, 0.7)
    assert.deepStrictEqual(designVerdicts(m), { successRate: "Target", cacheHitRate: "Target" })
  })
})
