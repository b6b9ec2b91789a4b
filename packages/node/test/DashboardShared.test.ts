/**
 * The dashboard of two replicas sharing one real redis-server (`RedisStores.layerReplicas`, as `serve --redis` runs):
 * each page's `/dashboard/state` shows, beside its replica's own figures, the shared view: a cache hit made through
 * one replica counts in the other's shared hit rate, the shared cache's entries, a rate limit's use summed over both,
 * and a remote server's circuit opened through one replica shows open on the other; with no page open, Redis hears
 * nothing from the dashboards.
 */
import { McpBridge } from "@mcp-bridge/core"
import { Dashboard, NodeTransport } from "@mcp-bridge/node"
import { TestRedis, TestServer } from "@mcp-bridge/testing"
import { type Context, Effect, Exit, Layer, Redacted, Scope } from "effect"
import { randomUUID } from "node:crypto"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { createClient } from "redis"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import * as RedisStores from "../src/replica/RedisStores.ts"

const listen = (server: Server) =>
  new Promise<string>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
  )
const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })

interface Replica {
  readonly url: string
  readonly call: (tool: string, args: Record<string, unknown>) => Promise<Exit.Exit<unknown, unknown>>
  readonly close: () => Promise<void>
}

interface SharedState {
  readonly cache: { readonly hits: number; readonly misses: number }
  readonly shared: {
    readonly error: string | null
    readonly replicas: ReadonlyArray<{ readonly id: string; readonly self: boolean; readonly hits: number }>
    readonly cache: { readonly entries: number; readonly hits: number; readonly misses: number } | null
    readonly limits: ReadonlyArray<{ readonly server: string; readonly window: string; readonly used: number | null }>
    readonly circuits: ReadonlyArray<{ readonly server: string; readonly state: string | null }>
  } | null
  readonly servers: ReadonlyArray<{ readonly server: string; readonly state: string }>
}

const startReplica = async (id: string, config: object, prefix: string, redisUrl: string): Promise<Replica> => {
  const layer = McpBridge.layer(config, { transport: NodeTransport.layer() }).pipe(
    Layer.provideMerge(RedisStores.layerReplicas({ url: Redacted.make(redisUrl), prefix }))
  )
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const handler = await Effect.runPromise(
    Dashboard.make({ replica: id, interval: "100 millis", sharedInterval: "100 millis" }).pipe(
      Effect.provideContext(context),
      Scope.provide(scope)
    )
  )
  const http = createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(404).end("not found\n")
  })
  const url = await listen(http)
  return {
    url,
    call: (tool, args) =>
      Effect.runPromise(
        Effect.exit(McpBridge.McpBridge.use((b) => b.callTool(tool, args))).pipe(
          Effect.provideContext(context as Context.Context<McpBridge.McpBridge>)
        )
      ),
    close: async () => {
      await close(http)
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }
}

// Reads a page's state until `ok` holds (the replicas publish and read on 100 ms timers), or fails with the last one.
const stateUntil = async (replica: Replica, ok: (s: SharedState) => boolean): Promise<SharedState> => {
  let last: SharedState | undefined
  for (let i = 0; i < 300; i++) {
    last = await (await fetch(`${replica.url}/dashboard/state`)).json() as SharedState
    if (ok(last)) return last
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.fail(`the shared view never showed it: ${JSON.stringify(last?.shared)}`)
}

describe("Dashboard, shared by replicas", () => {
  let redis: TestRedis.RedisServer
  let upstream: TestServer.HttpTestServer
  let refusing: { url: string; close: () => Promise<void> }
  let a: Replica
  let b: Replica

  beforeAll(async () => {
    redis = await TestRedis.start()
    upstream = await TestServer.startHttp({
      tools: [{ name: "search", annotations: { readOnlyHint: true }, respond: { kind: "echo" } }]
    })
    const down = createServer((req, res) => {
      req.resume()
      res.writeHead(500, { "content-type": "text/plain" }).end("down")
    })
    refusing = { url: `${await listen(down)}/mcp`, close: () => close(down) }
    const config = {
      mcpServers: {
        docs: {
          url: upstream.url,
          bridge: { throttle: { perMinute: 1000 }, tools: { search: { cache: "1 minute" } } }
        },
        vault: { url: refusing.url, bridge: { retry: false, circuitBreaker: { failures: 2, openFor: "1 minute" } } }
      }
    }
    const prefix = `t${randomUUID().slice(0, 8)}:`
    a = await startReplica("replica-a", config, prefix, redis.url)
    b = await startReplica("replica-b", config, prefix, redis.url)
  }, 60_000)
  afterAll(async () => {
    await a?.close()
    await b?.close()
    await upstream?.close()
    await refusing?.close()
    await redis?.stop()
  }, 30_000)

  it("sends Redis nothing while no page is open", async () => {
    const probe = createClient({ url: redis.url })
    await probe.connect()
    const processed = async () => Number(/total_commands_processed:(\d+)/.exec(await probe.info("stats"))![1])
    const before = await processed()
    // Ten of the pages' 100 ms intervals.
    await new Promise((r) => setTimeout(r, 1_000))
    const after = await processed()
    await probe.close()
    // The only command between the two readings is the first INFO itself.
    assert.strictEqual(after - before, 1)
  })

  it(
    "shows a hit through one replica in the other's shared figures, and both replicas' limits and circuits",
    async () => {
      // B misses and fills the shared cache; A hits it.
      assert.isTrue(Exit.isSuccess(await b.call("docs.search", { q: "pools" })))
      assert.isTrue(Exit.isSuccess(await a.call("docs.search", { q: "pools" })))
      // Two failures through A open vault's circuit in Redis.
      await a.call("vault.read", {})
      await a.call("vault.read", {})

      const seen = await stateUntil(
        b,
        (s) =>
          s.shared !== null && (s.shared.cache?.hits ?? 0) >= 1 && s.shared.replicas.length === 2 &&
          s.shared.circuits.some((c) => c.server === "vault" && c.state === "open")
      )
      const shared = seen.shared!
      assert.isNull(shared.error)
      // This replica's own figures: its one miss, no hit; the shared ones: A's hit and B's miss.
      assert.strictEqual(seen.cache.hits, 0)
      assert.strictEqual(seen.cache.misses, 1)
      assert.strictEqual(shared.cache!.hits, 1)
      assert.strictEqual(shared.cache!.misses, 1)
      assert.strictEqual(shared.cache!.entries, 1)
      assert.deepStrictEqual(shared.replicas.map((r) => [r.id, r.self, r.hits]), [
        ["replica-a", false, 1],
        ["replica-b", true, 0]
      ])
      // The docs limit counted both replicas' admissions (B's miss went upstream; A's hit did not reach the throttler).
      const docsLimit = shared.limits.find((l) => l.server === "docs" && l.window === "minute")
      assert.isDefined(docsLimit)
      assert.isAtLeast(docsLimit!.used ?? 0, 1)
      // B never called vault: its own state is idle, the shared circuit open.
      assert.strictEqual(seen.servers.find((s) => s.server === "vault")?.state, "idle")
      assert.strictEqual(shared.circuits.find((c) => c.server === "docs")?.state, "closed")

      // A's page sees the same shared figures, and itself as `self`.
      const fromA = await stateUntil(a, (s) => (s.shared?.cache?.hits ?? 0) >= 1)
      assert.deepStrictEqual(fromA.shared!.replicas.map((r) => r.self), [true, false])
      assert.strictEqual(fromA.cache.hits, 1)

      // The page itself has the shared panel.
      const page = await (await fetch(`${b.url}/`)).text()
      assert.include(page, `id="shared-section"`)
    },
    60_000
  )
})
