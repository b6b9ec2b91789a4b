import { assert, describe, it } from "@effect/vitest"
import { CallerIdentity, McpBridge, McpBridgeError, Pipeline } from "@mcp-bridge/core"
import type { ToolCaller } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import { Effect } from "effect"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "read", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "admin_reset", respond: { kind: "echo" } }
]

// Access control: only the "ops" identity may call admin tools.
const acl: Pipeline.Insertion = {
  name: "acl",
  stage: {
    wrap: (next) => (request) =>
      request.tool.startsWith("admin_") && request.identity !== "ops"
        ? Pipeline.reject(request, "acl", `${request.identity ?? "anonymous"} may not call admin tools`)
        : next(request)
  }
}

// A quota: at most `limit` calls per caller identity (over the bridge's life), counted before the cache.
const quota = (limit: number): Pipeline.Insertion => {
  const used = new Map<string, number>()
  return {
    name: "quota",
    before: "cache",
    stage: {
      wrap: <E>(next: ToolCaller.ToolCaller<E>) => (request: ToolCaller.CallRequest) =>
        Effect.suspend((): ReturnType<ToolCaller.ToolCaller<E | McpBridgeError.McpBridgeError>> => {
          const who = request.identity ?? ""
          const count = used.get(who) ?? 0
          if (count >= limit) return Pipeline.reject(request, "quota", `${limit} calls per caller`)
          used.set(who, count + 1)
          return next(request)
        })
    }
  }
}

// Records the order in which stages see a call.
const audit = (name: string, seen: Array<string>, place: { before?: string; after?: string }): Pipeline.Insertion => ({
  name,
  ...place,
  stage: {
    wrap: <E>(next: ToolCaller.ToolCaller<E>) => (request) => Effect.suspend(() => (seen.push(name), next(request)))
  }
})

const withBridge = <A, E>(
  server: TestServer.TestServer,
  stages: ReadonlyArray<Pipeline.Insertion>,
  f: (bridge: McpBridge.McpBridge.Service) => Effect.Effect<A, E, any>
) =>
  Effect.flatMap(McpBridge.McpBridge, f).pipe(
    Effect.provide(TestBridge.layerTest({ s: server }, { stages, bridge: { tools: { read: { cache: "1 minute" } } } }))
  )

const reason = (error: unknown) => error instanceof McpBridgeError.McpBridgeError ? error.reason : undefined

describe("Pipeline", () => {
  it.effect("an access-control stage refuses a call before it reaches the server, typed and counted", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* withBridge(server, [acl], (bridge) =>
        Effect.gen(function*() {
          const refused = yield* Effect.flip(
            bridge.callTool("s.admin_reset", {}).pipe(Effect.provideService(CallerIdentity, "alice"))
          )
          const r = reason(refused)
          assert.strictEqual(r?._tag, "Rejected")
          assert.deepInclude(r, { server: "s", tool: "admin_reset", stage: "acl" })
          assert.include(refused.message, "alice may not call admin tools")
          assert.strictEqual(server.calls("admin_reset"), 0)
          yield* bridge.callTool("s.admin_reset", {}).pipe(Effect.provideService(CallerIdentity, "ops"))
          assert.strictEqual(server.calls("admin_reset"), 1)
          // Telemetry is above the stage: the refusal is in the metrics.
          const metrics = yield* bridge.metrics()
          const tool = metrics.servers.find((s) => s.server === "s")?.tools.find((t) => t.tool === "admin_reset")
          assert.strictEqual(tool?.calls, 2)
          assert.strictEqual(tool?.failures, 1)
        }))
    }))

  it.effect("a per-caller quota stage placed before the cache counts cached calls too", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      yield* withBridge(server, [quota(2)], (bridge) =>
        Effect.gen(function*() {
          const asAlice = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
            Effect.provideService(effect, CallerIdentity, "alice")
          yield* asAlice(bridge.callTool("s.read", { q: 1 }))
          yield* asAlice(bridge.callTool("s.read", { q: 1 }))
          const third = yield* Effect.flip(asAlice(bridge.callTool("s.read", { q: 1 })))
          assert.deepInclude(reason(third), { _tag: "Rejected", stage: "quota" })
          // The second call was a cache hit: one upstream call, yet both count against the quota.
          assert.strictEqual(server.calls("read"), 1)
          // Another caller has a quota of its own.
          yield* bridge.callTool("s.read", { q: 2 }).pipe(Effect.provideService(CallerIdentity, "bob"))
        }))
    }))

  it.effect("stages run in their places, top to bottom", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const server = TestServer.make({ tools })
      yield* withBridge(server, [
        audit("below-throttle", seen, { after: "throttle" }),
        audit("top-of-user", seen, {}),
        audit("above-resilience", seen, { before: "resilience" }),
        audit("after-top", seen, { after: "top-of-user" })
      ], (bridge) => bridge.callTool("s.admin_reset", {}))
      assert.deepStrictEqual(seen, ["top-of-user", "after-top", "above-resilience", "below-throttle"])
    }))

  it.effect("a stage placed next to a stage that is not there is a BridgeConfigError naming it", () =>
    Effect.gen(function*() {
      const server = TestServer.make({ tools })
      const error = yield* Effect.flip(
        withBridge(server, [{ ...acl, before: "nope" }], (bridge) => bridge.callTool("s.read", {}))
      )
      assert.strictEqual(error._tag, "BridgeConfigError")
      assert.include(error.message, "stages.0")
      assert.include(error.message, `no stage "nope"`)
      const taken = yield* Effect.flip(
        withBridge(server, [{ ...acl, name: "cache" }], (bridge) => bridge.callTool("s.read", {}))
      )
      assert.include(taken.message, `a stage named "cache" is already in the pipeline`)
    }))

  it.effect("a stage switched off is a pass-through: the call still runs through the others", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const server = TestServer.make({ tools })
      yield* Effect.flatMap(McpBridge.McpBridge, (bridge) => bridge.callTool("s.read", {})).pipe(
        Effect.provide(
          TestBridge.layerTest({ s: server }, { stages: [audit("a", seen, { after: "cache" })], cache: false })
        )
      )
      assert.deepStrictEqual(seen, ["a"])
      assert.strictEqual(server.calls("read"), 1)
    }))
})
