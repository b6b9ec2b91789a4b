import { assert, describe, it } from "@effect/vitest"
import { callKey, canonicalJson, partitionOf } from "../src/internal/canonical.ts"

// The canonical form that keys the result cache and the coalescing of identical calls (internal/canonical.ts).
describe("canonical arguments", () => {
  it("sorts object keys at every depth and writes no whitespace", () => {
    assert.strictEqual(
      canonicalJson({ b: { z: 1, a: [{ y: 2, x: 1 }] }, a: "s" }),
      "{\"a\":\"s\",\"b\":{\"a\":[{\"x\":1,\"y\":2}],\"z\":1}}"
    )
  })

  it("writes numbers as JSON.stringify does: -0 as 0, NaN and the infinities as null", () => {
    assert.strictEqual(
      canonicalJson([-0, 1e21, 0.1, 1.5e-7, NaN, Infinity, -Infinity]),
      "[0,1e+21,0.1,1.5e-7,null,null,null]"
    )
  })

  it("leaves out properties that are undefined, and writes undefined in arrays as null, like JSON.stringify", () => {
    const value = { a: undefined, b: [undefined, () => 1], c: null, d: true }
    assert.strictEqual(canonicalJson(value), "{\"b\":[null,null],\"c\":null,\"d\":true}")
    assert.strictEqual(canonicalJson(value), JSON.stringify({ b: [null, null], c: null, d: true }))
  })

  it("escapes strings and keys as JSON", () => {
    assert.strictEqual(
      canonicalJson({ "a\"b": "line\nbreak \u2028" }),
      JSON.stringify({ "a\"b": "line\nbreak \u2028" })
    )
  })

  it("agrees with JSON.stringify on arguments parsed from JSON, whatever their key order", () => {
    const texts = [
      "{\"q\":\"pool\",\"page\":1,\"f\":{\"b\":[true,null],\"a\":-2.5}}",
      "{\"page\":1.0,\"f\":{\"a\":-25e-1,\"b\":[true,null]},\"q\":\"pool\"}"
    ]
    const [first, second] = texts.map((text) => canonicalJson(JSON.parse(text)))
    assert.strictEqual(first, second)
    assert.strictEqual(first, "{\"f\":{\"a\":-2.5,\"b\":[true,null]},\"page\":1,\"q\":\"pool\"}")
  })

  it("a call key names server, tool, partition and arguments, apart from each other", () => {
    assert.strictEqual(
      callKey("s", "t", partitionOf(false, "alice"), { b: 1, a: 2 }),
      "s\u0000t\u0000id:alice\u0000{\"a\":2,\"b\":1}"
    )
    assert.strictEqual(partitionOf(true, "alice"), "*")
    assert.strictEqual(partitionOf(false, undefined), "")
    assert.notStrictEqual(callKey("s", "t", "", {}), callKey("s", "t", partitionOf(false, ""), {}))
  })
})
