import { assert, describe, it } from "@effect/vitest"
import { CallerIdentity, McpAuth, McpBridge, RefreshLock, TokenStore } from "@mcp-bridge/core"
import { TestAuthServer } from "@mcp-bridge/testing"
import { Clock, Effect, Layer } from "effect"

// Two bridges of one process sharing a token store: with the memory lock, expired tokens are refreshed once.

describe("RefreshLock", () => {
  it.live(
    "two bridges sharing a store, their tokens expired, called concurrently: one refresh",
    () =>
      Effect.gen(function*() {
        const server = yield* TestAuthServer.scoped()
        const shared = yield* Layer.build(Layer.merge(TokenStore.layerMemory, RefreshLock.layerMemory))
        // The bridges' OAuth clocks jump 2 hours once `ahead` is set: their 1-hour tokens expire at once.
        let ahead = 0
        const real = yield* Clock.Clock
        const shifted: Clock.Clock = {
          ...real,
          currentTimeMillisUnsafe: () => real.currentTimeMillisUnsafe() + ahead,
          currentTimeMillis: Effect.sync(() => real.currentTimeMillisUnsafe() + ahead),
          sleep: (duration) => real.sleep(duration)
        }
        const bridge = (options: McpAuth.Options) =>
          Layer.build(McpBridge.layer(
            { mcpServers: { s: { url: server.url, auth: {}, bridge: { retry: false, cache: false } } } },
            {
              auth: McpAuth.layer(options).pipe(
                Layer.provide(Layer.succeedContext(shared)),
                Layer.provide(Layer.succeed(Clock.Clock, shifted))
              )
            }
          ))
        const first = yield* bridge({ interaction: McpAuth.interactionFromCallback(TestAuthServer.approveAs("alice")) })
        const second = yield* bridge({})
        const whoami = McpBridge.McpBridge.use((b) => b.callTool("s.whoami", {})).pipe(
          Effect.map((result) => (result.structuredContent as { readonly user: string }).user),
          Effect.provideService(CallerIdentity, "alice")
        )
        assert.strictEqual(yield* Effect.provide(whoami, first), "alice")
        assert.strictEqual(yield* Effect.provide(whoami, second), "alice")
        ahead = 2 * 60 * 60 * 1000
        const users = yield* Effect.all(
          Array.from({ length: 10 }, (_, i) => Effect.provide(whoami, i % 2 === 0 ? first : second)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(users, Array.from({ length: 10 }, () => "alice"))
        const refreshes = server.events().filter((e) => e.kind === "token" && e.grant === "refresh_token")
        assert.deepStrictEqual(refreshes.map((e) => e.kind === "token" && e.ok), [true])
        assert.strictEqual(server.tokenRequests("authorization_code"), 1)
      }).pipe(Effect.scoped),
    60_000
  )
})
