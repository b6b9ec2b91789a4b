import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig, ToolPolicy } from "@mcp-bridge/core"
import { Duration, Effect } from "effect"

describe("ToolPolicy", () => {
  const policyOf = (
    bridge: object,
    tool: string,
    annotations?: { readOnlyHint?: boolean; idempotentHint?: boolean }
  ) =>
    BridgeConfig.decode({ mcpServers: { s: { type: "memory", bridge } } }).pipe(
      Effect.map((config) =>
        ToolPolicy.resolve(config.servers.get("s")!, tool, annotations === undefined ? {} : { annotations })
      )
    )

  it.effect("caches nothing by default, whatever the annotations say", () =>
    Effect.gen(function*() {
      const policy = yield* policyOf({}, "search", { readOnlyHint: true, idempotentHint: true })
      assert.isFalse(policy.cacheable)
      assert.isFalse(policy.readOnly)
      assert.isFalse(policy.safe)
    }))

  it.effect("trusts annotations only on a server marked trustAnnotations", () =>
    Effect.gen(function*() {
      const policy = yield* policyOf({ trustAnnotations: true }, "search", { readOnlyHint: true })
      assert.isTrue(policy.cacheable)
      assert.isTrue(policy.safe)
      assert.isUndefined(policy.cacheTtl)
      const write = yield* policyOf({ trustAnnotations: true }, "delete", { readOnlyHint: false })
      assert.isFalse(write.cacheable)
      const idempotent = yield* policyOf({ trustAnnotations: true }, "put", { idempotentHint: true })
      assert.isFalse(idempotent.cacheable)
      assert.isTrue(idempotent.safe)
    }))

  it.effect("takes the operator's per-tool policy over annotations, presets included", () =>
    Effect.gen(function*() {
      const bridge = {
        trustAnnotations: true,
        cache: { ttl: "10 minutes" },
        tools: {
          docs: { cache: "static", shared: true },
          quotes: { cache: "realtime" },
          listing: { cache: "dynamic" },
          lying: { readOnly: false },
          explicit: { cache: "90 seconds", timeout: "2 seconds" }
        }
      }
      const docs = yield* policyOf(bridge, "docs")
      assert.isTrue(docs.cacheable && docs.shared && docs.readOnly)
      assert.strictEqual(Duration.toMillis(docs.cacheTtl!), 3_600_000)
      assert.strictEqual(Duration.toMillis((yield* policyOf(bridge, "listing")).cacheTtl!), 300_000)
      assert.isFalse((yield* policyOf(bridge, "quotes", { readOnlyHint: true })).cacheable)
      assert.isFalse((yield* policyOf(bridge, "lying", { readOnlyHint: true })).cacheable)
      const explicit = yield* policyOf(bridge, "explicit")
      assert.strictEqual(Duration.toMillis(explicit.cacheTtl!), 90_000)
      assert.strictEqual(Duration.toMillis(explicit.timeout!), 2_000)
      const hinted = yield* policyOf(bridge, "other", { readOnlyHint: true })
      assert.strictEqual(Duration.toMillis(hinted.cacheTtl!), 600_000)
    }))

  it.effect("caches nothing from a server whose cache is false", () =>
    Effect.gen(function*() {
      const policy = yield* policyOf({ cache: false, tools: { docs: { cache: "static" } } }, "docs")
      assert.isFalse(policy.cacheable)
      assert.isTrue(policy.readOnly)
    }))
})

describe("ToolPolicy: throttle and timeout of a tool", () => {
  it.effect("a tool's throttle and timeout come from its own section; a server cache ttl of realtime caches only tools with a ttl of their own", () =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.decode({
        mcpServers: {
          s: {
            type: "memory",
            bridge: {
              cache: { ttl: "realtime" },
              tools: {
                heavy: { readOnly: true, throttle: { concurrency: 1 }, timeout: "5 seconds" },
                docs: { cache: "1 minute" }
              }
            }
          }
        }
      })
      const server = config.servers.get("s")!
      const heavy = ToolPolicy.resolve(server, "heavy")
      assert.deepStrictEqual(heavy.throttle, { concurrency: 1 })
      assert.strictEqual(Duration.toMillis(heavy.timeout!), 5_000)
      assert.isFalse(heavy.cacheable)
      assert.isTrue(heavy.safe)
      assert.isTrue(ToolPolicy.resolve(server, "docs").cacheable)
      assert.isUndefined(ToolPolicy.resolve(server, "other").throttle)
    }))
})
