import { assert, describe, it } from "@effect/vitest"
import { main } from "../examples/quickstart.ts"

describe("examples", () => {
  it("quickstart runs", async () => {
    const result = await main()
    assert.isAbove(result.tools, 5)
    assert.include(JSON.stringify(result.sum), "5")
  })
})
