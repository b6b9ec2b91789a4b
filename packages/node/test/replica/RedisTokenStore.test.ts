import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { CallerIdentity, McpAuth, McpBridge, type TokenStore } from "@mcp-bridge/core"
import { TestAuthServer, TestRedis } from "@mcp-bridge/testing"
import { Clock, Deferred, Effect, Fiber, Layer, Redacted } from "effect"
import { Redis } from "effect/persistence"
import { randomUUID } from "node:crypto"
import { afterAll, beforeAll } from "vitest"
import * as RedisTokenStore from "../../src/replica/RedisTokenStore.ts"
import * as SessionSeal from "../../src/replica/SessionSeal.ts"

let redis: TestRedis.RedisServer
beforeAll(async () => {
  redis = await TestRedis.start()
}, 60_000)
afterAll(() => redis?.stop())

const connection = () => Layer.orDie(Layer.unwrap(Effect.sync(() => NodeRedis.layer({ url: redis.url }))))
const prefix = () => `test:${randomUUID()}:`

// A store of its own connection, as one replica has.
const replica = (options: RedisTokenStore.Options) =>
  Effect.flatMap(Layer.build(connection()), (context) => Effect.provide(RedisTokenStore.make(options), context))

const raw = Effect.flatMap(Layer.build(connection()), (context) => Effect.provide(Redis.Redis, context))

const alice: TokenStore.StoreKey = { kind: "tokens", server: "s", identity: "alice" }
const bob: TokenStore.StoreKey = { kind: "tokens", server: "s", identity: "bob" }
const SECRET = "{\"access_token\":\"at_secret_value\"}"

describe("RedisTokenStore", () => {
  it.live("seals values at rest and opens them on another replica", () =>
    Effect.gen(function*() {
      const p = prefix()
      const keys = [SessionSeal.generateKey()]
      const a = yield* replica({ prefix: p, keys })
      const b = yield* replica({ prefix: p, keys })
      yield* a.store.set(alice, Redacted.make(SECRET))
      assert.strictEqual(Redacted.value((yield* b.store.get(alice))!), SECRET)
      const redisRaw = yield* raw
      const names = yield* redisRaw.send<ReadonlyArray<string>>("KEYS", `${p}tok:*`)
      assert.strictEqual(names.length, 1)
      const stored = yield* redisRaw.send<string>("GET", names[0]!)
      assert.isFalse(stored.includes("at_secret_value"))
      assert.isTrue(stored.startsWith("k1."))
      assert.strictEqual(yield* b.store.get(bob), undefined)
      yield* b.store.remove(alice)
      assert.strictEqual(yield* a.store.get(alice), undefined)
    }).pipe(Effect.scoped))

  it.live("an altered value, or one moved under another caller's key, is absent", () =>
    Effect.gen(function*() {
      const p = prefix()
      const s = yield* replica({ prefix: p, keys: [SessionSeal.generateKey()] })
      const redisRaw = yield* raw
      yield* s.store.set(alice, Redacted.make(SECRET))
      const [name] = yield* redisRaw.send<ReadonlyArray<string>>("KEYS", `${p}tok:*`)
      const stored = yield* redisRaw.send<string>("GET", name!)
      // Moved under bob's entry: the entry's key is authenticated with the value.
      yield* s.store.set(bob, Redacted.make("placeholder"))
      const bobName = (yield* redisRaw.send<ReadonlyArray<string>>("KEYS", `${p}tok:*`)).find((n) => n !== name)!
      yield* redisRaw.send("SET", bobName, stored)
      assert.strictEqual(yield* s.store.get(bob), undefined)
      // One character of the ciphertext changed.
      const at = stored.length - 20
      const altered = stored.slice(0, at) + (stored[at] === "A" ? "B" : "A") + stored.slice(at + 1)
      yield* redisRaw.send("SET", name!, altered)
      assert.strictEqual(yield* s.store.get(alice), undefined)
      yield* redisRaw.send("SET", name!, "not sealed at all")
      assert.strictEqual(yield* s.store.get(alice), undefined)
    }).pipe(Effect.scoped))

  it.live("key rotation: sealed with the newest key, opened with any current one; a retired key's values are absent", () =>
    Effect.gen(function*() {
      const p = prefix()
      const [k1, k2] = [SessionSeal.generateKey(), SessionSeal.generateKey()]
      const before = yield* replica({ prefix: p, keys: [k1] })
      const during = yield* replica({ prefix: p, keys: [k2, k1] })
      const after = yield* replica({ prefix: p, keys: [k2] })
      yield* before.store.set(alice, Redacted.make(SECRET))
      assert.strictEqual(Redacted.value((yield* during.store.get(alice))!), SECRET)
      assert.strictEqual(yield* after.store.get(alice), undefined)
      yield* during.store.set(bob, Redacted.make(SECRET))
      assert.strictEqual(Redacted.value((yield* after.store.get(bob))!), SECRET)
      assert.strictEqual(Redacted.value((yield* before.store.get(alice))!), SECRET)
      assert.strictEqual(yield* before.store.get(bob), undefined)
    }).pipe(Effect.scoped))

  it.live("replicas agree on a key through Redis when none is given", () =>
    Effect.gen(function*() {
      const p = prefix()
      const a = yield* replica({ prefix: p })
      const b = yield* replica({ prefix: p })
      yield* a.store.set(alice, Redacted.make(SECRET))
      assert.strictEqual(Redacted.value((yield* b.store.get(alice))!), SECRET)
    }).pipe(Effect.scoped))

  it.live("a lock held by one replica makes another wait until it is released", () =>
    Effect.gen(function*() {
      const p = prefix()
      const keys = [SessionSeal.generateKey()]
      const a = yield* replica({ prefix: p, keys })
      const b = yield* replica({ prefix: p, keys })
      const key = { server: "s", identity: "alice" }
      const order: Array<string> = []
      const entered = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.forkChild(
        a.lock.withLock(key, Effect.andThen(Deferred.succeed(entered, undefined), Deferred.await(release)))
      )
      yield* Deferred.await(entered)
      const waiter = yield* Effect.forkChild(b.lock.withLock(key, Effect.sync(() => order.push("second"))))
      order.push("first releases")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.join(waiter)
      assert.deepStrictEqual(order, ["first releases", "second"])
      // Another identity's lock is another lock.
      yield* a.lock.withLock(key, b.lock.withLock({ server: "s", identity: "bob" }, Effect.void))
    }).pipe(Effect.scoped))

  it.live(
    "two bridges whose tokens expire at once, called concurrently, make one refresh between them",
    () =>
      Effect.gen(function*() {
        const server = yield* TestAuthServer.scoped()
        const p = prefix()
        const keys = [SessionSeal.generateKey()]
        // Both bridges' OAuth clocks run 2 hours ahead once `ahead` is set: their tokens (1 hour) expire at once.
        let ahead = 0
        const real = yield* Clock.Clock
        const shifted: Clock.Clock = {
          ...real,
          currentTimeMillisUnsafe: () => real.currentTimeMillisUnsafe() + ahead,
          currentTimeMillis: Effect.sync(() => real.currentTimeMillisUnsafe() + ahead),
          sleep: (duration) => real.sleep(duration)
        }
        const bridge = (auth: McpAuth.Options) =>
          Layer.build(McpBridge.layer(
            { mcpServers: { s: { url: server.url, auth: {}, bridge: { retry: false, cache: false } } } },
            {
              auth: McpAuth.layer(auth).pipe(
                Layer.provide(RedisTokenStore.layer({ prefix: p, keys })),
                Layer.provide(connection()),
                Layer.provide(Layer.succeed(Clock.Clock, shifted)),
                Layer.orDie
              )
            }
          ))
        // Only the first bridge can ask its user: the second lives on the tokens the first obtained.
        const first = yield* bridge({ interaction: McpAuth.interactionFromCallback(TestAuthServer.approveAs("alice")) })
        const second = yield* bridge({})
        const whoami = McpBridge.McpBridge.use((b) => b.callTool("s.whoami", {})).pipe(
          Effect.map((result) => (result.structuredContent as { readonly user: string }).user),
          Effect.provideService(CallerIdentity, "alice")
        )
        assert.strictEqual(yield* Effect.provide(whoami, first), "alice")
        assert.strictEqual(yield* Effect.provide(whoami, second), "alice")
        assert.strictEqual(server.tokenRequests("authorization_code"), 1)
        assert.strictEqual(server.tokenRequests("refresh_token"), 0)

        ahead = 2 * 60 * 60 * 1000
        const users = yield* Effect.all(
          Array.from({ length: 30 }, (_, i) => Effect.provide(whoami, i % 2 === 0 ? first : second)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(users, Array.from({ length: 30 }, () => "alice"))
        const refreshes = server.events().filter((e) => e.kind === "token" && e.grant === "refresh_token")
        assert.deepStrictEqual(refreshes.map((e) => e.kind === "token" && e.ok), [true])
        assert.strictEqual(server.tokenRequests("authorization_code"), 1)
      }).pipe(Effect.scoped),
    60_000
  )
})

describe("RedisTokenStore, tokens the server refuses", () => {
  it.live(
    "two bridges whose tokens the server stops accepting, called concurrently, make one refresh",
    () =>
      Effect.gen(function*() {
        const server = yield* TestAuthServer.scoped()
        const p = prefix()
        const keys = [SessionSeal.generateKey()]
        const bridge = (auth: McpAuth.Options) =>
          Layer.build(McpBridge.layer(
            { mcpServers: { s: { url: server.url, auth: {}, bridge: { retry: false, cache: false } } } },
            {
              auth: McpAuth.layer(auth).pipe(
                Layer.provide(RedisTokenStore.layer({ prefix: p, keys })),
                Layer.provide(connection()),
                Layer.orDie
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
        // Access tokens refused before their time (401): the refresh token still works, once.
        server.expireAccessTokens()
        const users = yield* Effect.all(
          Array.from({ length: 30 }, (_, i) => Effect.provide(whoami, i % 2 === 0 ? first : second)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(users, Array.from({ length: 30 }, () => "alice"))
        const refreshes = server.events().filter((e) => e.kind === "token" && e.grant === "refresh_token")
        assert.deepStrictEqual(refreshes.map((e) => e.kind === "token" && e.ok), [true])
        assert.strictEqual(server.tokenRequests("authorization_code"), 1)
      }).pipe(Effect.scoped),
    60_000
  )
})
