// Three `mcp-bridge serve --redis` replicas as child processes, one redis-server, and a small round-robin balancer in
// front, driven by the official SDK client over Streamable HTTP: what one Redis makes of several replicas.
import { TestAuthServer, TestRedis, TestServer } from "@mcp-bridge/testing"
import { type CallToolResult, Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, request, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { createClient } from "redis"
import { afterAll, assert, beforeAll, describe, it } from "vitest"

const bin = fileURLToPath(new URL("../../src/bin/mcp-bridge.ts", import.meta.url))
const LIMIT = 5
// The limit of the tool the Redis faults call: fail closed while Redis is away.
const GUARD = 3

interface Replica {
  readonly url: string
  readonly child: ChildProcess
  readonly output: () => string
}

// Starts one replica and waits for the line that says where it serves.
const startReplica = (file: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<Replica>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--conditions=@mcp-bridge/source", bin, "serve", "--config", file, "--port", "0", ...args],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } }
    )
    let out = ""
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const served = /at (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(out)
      if (served !== null) resolve({ url: served[1]!, child, output: () => out })
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`replica exited (${code}) before serving:\n${out}`)))
  })

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once("exit", () => resolve())
  })

// Round robin over the replicas; a replica that refuses the connection is skipped (the request, buffered, goes to
// the next), as a load balancer's passive health check does. Counts the requests each replica answered.
// A request with `x-replica: i` goes to replica i (as a sticky cookie would pin it).
interface Balancer {
  readonly url: string
  readonly served: Array<number>
  /** The replica that answered the request that created each 2025-era session. */
  readonly sessionOwner: Map<string, number>
  /** Streams sent to each replica (2025 GET streams, 2026 `subscriptions/listen` once answered), open or closed. */
  readonly streams: Array<number>
  readonly close: () => Promise<void>
}

const startBalancer = (targets: ReadonlyArray<string>) =>
  new Promise<Balancer>((resolve) => {
    let next = 0
    const served = targets.map(() => 0)
    const streams = targets.map(() => 0)
    const sessionOwner = new Map<string, number>()
    const server: Server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        const body = Buffer.concat(chunks)
        const pinned = req.headers["x-replica"]
        const attempt = (tries: number) => {
          const index = typeof pinned === "string" ? Number(pinned) : next++ % targets.length
          const target = new URL(targets[index]!)
          const upstream = request({
            host: target.hostname,
            port: target.port,
            path: req.url,
            method: req.method,
            headers: { ...req.headers, host: target.host }
          }, (answer) => {
            served[index]!++
            if (req.headers["mcp-method"] === "subscriptions/listen" && answer.statusCode === 200) streams[index]!++
            const session = answer.headers["mcp-session-id"]
            if (typeof session === "string" && !sessionOwner.has(session)) sessionOwner.set(session, index)
            res.writeHead(answer.statusCode ?? 502, answer.headers)
            answer.pipe(res)
          })
          upstream.on("error", (error) => {
            if (res.headersSent) return res.destroy()
            if (tries + 1 < targets.length) return attempt(tries + 1)
            res.writeHead(502).end(String(error))
          })
          res.on("close", () => upstream.destroy())
          upstream.end(body)
          // A 2025 GET stream's headers come with its first event: it counts once the replica has the request.
          if (req.method === "GET") upstream.once("finish", () => streams[index]!++)
        }
        attempt(0)
      })
    })
    // Idle client connections stay open longer than the test's pauses (a reused socket the server just closed resets).
    server.keepAliveTimeout = 65_000
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resolve({
        url: `http://127.0.0.1:${port}/mcp`,
        served,
        sessionOwner,
        streams,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })

const connect = async (url: string, era: "2026" | "2025", replica?: number) => {
  const client = new Client(
    { name: "replicas-test", version: "1.0.0" },
    era === "2026" ? { versionNegotiation: { mode: "auto" } } : {}
  )
  const requestInit = replica === undefined ? {} : { requestInit: { headers: { "x-replica": String(replica) } } }
  await client.connect(new StreamableHTTPClientTransport(new URL(url), requestInit))
  return client
}

// Waits for `predicate`, checked every 50 ms, failing after `timeoutMs`.
const until = async (predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string) => {
  const deadline = performance.now() + timeoutMs
  while (!(await predicate())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const names = (tools: ReadonlyArray<{ readonly name: string }>) => tools.map((t) => t.name)

// A replica's view of Redis: its `/readyz` (which asks Redis once) and its `mcp_bridge_redis_up` gauges.
const redisState = async (replica: Replica) => {
  const base = replica.url.replace(/\/mcp$/, "")
  const ready = await fetch(`${base}/readyz`).then((res) => res.json()) as {
    readonly redis: string
    readonly redisStores: Record<string, string>
  }
  const metrics = await fetch(`${base}/metrics`).then((res) => res.text())
  const gauges: Record<string, number> = {}
  for (const m of metrics.matchAll(/^mcp_bridge_redis_up\{[^}]*store="([^"]+)"[^}]*\} (\S+)$/gm)) {
    gauges[m[1]!] = Number(m[2])
  }
  return { ready, gauges }
}
const allUp = (state: Awaited<ReturnType<typeof redisState>>) =>
  state.ready.redis === "ok" && Object.keys(state.gauges).length > 0 &&
  Object.values(state.gauges).every((v) => v === 1)

// A proxy in front of an HTTP server that drops the `tools/list_changed` notifications of its streams: a replica
// that reaches the server through it never hears the server's own list changes.
const startDeafProxy = (target: string) =>
  new Promise<{ readonly url: string; readonly close: () => Promise<void> }>((resolve) => {
    const to = new URL(target)
    const server = createServer((req, res) => {
      const upstreamReq = request({
        host: to.hostname,
        port: to.port,
        path: req.url,
        method: req.method,
        headers: { ...req.headers, host: to.host }
      }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        if (!String(answer.headers["content-type"]).includes("text/event-stream")) return answer.pipe(res)
        let pending = ""
        answer.on("data", (chunk: Buffer) => {
          pending += chunk.toString()
          const events = pending.split("\n\n")
          pending = events.pop()!
          for (const event of events) {
            if (!event.includes("notifications/tools/list_changed")) res.write(`${event}\n\n`)
          }
        })
        answer.on("end", () => res.end(pending))
      })
      upstreamReq.on("error", () => res.destroy())
      res.on("close", () => upstreamReq.destroy())
      req.pipe(upstreamReq)
    })
    server.keepAliveTimeout = 65_000
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resolve({
        url: `http://127.0.0.1:${port}${to.pathname}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })

const text = (result: CallToolResult) => result.content.map((c) => c.type === "text" ? c.text : "").join("")

let redis: TestRedis.RedisServer
let upstream: TestServer.HttpTestServer
let feed: TestServer.HttpTestServer
let deaf: Awaited<ReturnType<typeof startDeafProxy>>
let secure: TestAuthServer.TestAuthServer
let dir: string
let replicas: Array<Replica> = []
let balancer: Balancer

beforeAll(async () => {
  redis = await TestRedis.start()
  upstream = await TestServer.startHttp({
    name: "up",
    tools: [
      { name: "cached", respond: { kind: "echo" } },
      { name: "limited", respond: { kind: "echo" } },
      { name: "guarded", respond: { kind: "echo" } },
      { name: "grow", respond: { kind: "addTool", name: "fresh" } }
    ]
  })
  // A server replica 0 reaches directly and the others through a proxy that drops its list changes: a change of
  // its list is heard by replica 0 alone.
  // Its list is good for ten minutes (its cache hint): a replica that missed the change would serve it that long.
  feed = await TestServer.startHttp({
    name: "feed",
    tools: [{ name: "grow", respond: { kind: "addTool", name: "fresh" } }],
    toolsListCacheHint: { ttlMs: 600_000, cacheScope: "public" }
  })
  deaf = await startDeafProxy(feed.url)
  secure = await TestAuthServer.start({ clients: [{ clientId: "svc", clientSecret: "svc-secret-1234" }] })
  const local = TestServer.stdioCommand({ name: "local", tools: [{ name: "echo", respond: { kind: "echo" } }] })
  dir = mkdtempSync(join(tmpdir(), "mcp-bridge-replicas-"))
  const config = {
    mcpServers: {
      up: {
        url: upstream.url,
        bridge: {
          tools: {
            cached: { cache: "10 minutes", shared: true },
            limited: { throttle: { perMinute: LIMIT, onLimit: "fail" } },
            guarded: { throttle: { perMinute: GUARD, onLimit: "fail" } }
          }
        }
      },
      feed: { url: feed.url },
      local: { command: local.command, args: [...local.args] },
      secure: {
        url: secure.url,
        auth: { grant: "client_credentials", clientId: "svc", clientSecret: "svc-secret-1234" },
        bridge: { retry: false }
      }
    }
  }
  const file = join(dir, "mcp.json")
  writeFileSync(file, JSON.stringify(config))
  const deafConfig = { mcpServers: { ...config.mcpServers, feed: { url: deaf.url } } }
  const fileDeaf = join(dir, "mcp-deaf.json")
  writeFileSync(fileDeaf, JSON.stringify(deafConfig))
  // The three ways to name the Redis: the flag, the environment, the file's entry.
  const fileWithRedis = join(dir, "mcp-redis.json")
  writeFileSync(fileWithRedis, JSON.stringify({ ...deafConfig, redis: { url: redis.url } }))
  replicas = await Promise.all([
    startReplica(file, ["--redis", redis.url]),
    startReplica(fileDeaf, [], { REDIS_URL: redis.url }),
    startReplica(fileWithRedis, [])
  ])
  balancer = await startBalancer(replicas.map((r) => r.url))
}, 180_000)

afterAll(async () => {
  await balancer?.close()
  for (const r of replicas) r.child.kill("SIGKILL")
  await Promise.all(replicas.map((r) => exited(r.child)))
  await upstream?.close()
  await deaf?.close()
  await feed?.close()
  await secure?.close()
  await redis?.stop()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

describe("Replicas on Redis", () => {
  it("each replica says it shares state through Redis, and its dashboard says which replica it is", async () => {
    for (const r of replicas) assert.include(r.output(), "sharing state through Redis")
    const ids = await Promise.all(replicas.map(async (r) => {
      const state = await fetch(r.url.replace(/\/mcp$/, "/dashboard/state")).then((res) => res.json()) as {
        readonly replica?: { readonly id: string }
      }
      return state.replica?.id
    }))
    assert.strictEqual(new Set(ids.filter((id) => id !== undefined)).size, 3, `replica ids: ${ids.join(", ")}`)
  })

  it("a rate limit of N per minute holds summed over the three replicas", async () => {
    const client = await connect(balancer.url, "2026")
    const before = [...balancer.served]
    let admitted = 0
    let refused = 0
    for (let i = 0; i < 3 * LIMIT; i++) {
      const outcome = await client.callTool({ name: "up_limited", arguments: { i } }).then(
        (r) => (r as CallToolResult).isError === true ? "refused" : "admitted",
        () => "refused"
      )
      if (outcome === "admitted") admitted++
      else refused++
    }
    await client.close()
    // Every replica took part, and together they let exactly the limit through.
    for (let i = 0; i < replicas.length; i++) assert.isAbove(balancer.served[i]! - before[i]!, 0)
    assert.strictEqual(admitted, LIMIT)
    assert.strictEqual(refused, 2 * LIMIT)
    assert.strictEqual(upstream.calls("limited"), LIMIT)
  }, 120_000)

  it("a read-only result cached through one replica is a hit through another", async () => {
    const one = await connect(replicas[0]!.url, "2026")
    const two = await connect(replicas[1]!.url, "2026")
    const first = await one.callTool({ name: "up_cached", arguments: { q: "x" } }) as CallToolResult
    const second = await two.callTool({ name: "up_cached", arguments: { q: "x" } }) as CallToolResult
    assert.strictEqual(text(second), text(first))
    assert.strictEqual(upstream.calls("cached"), 1)
    await one.close()
    await two.close()
  }, 120_000)

  it(
    "30 concurrent calls whose token the server stopped accepting make one token request over the replicas",
    async () => {
      const clients = await Promise.all(replicas.map((r) => connect(r.url, "2026")))
      // One call per replica in turn: the first gets a token, the others read it from Redis.
      for (const client of clients) await client.callTool({ name: "secure_whoami", arguments: {} })
      const before = secure.tokenRequests()
      secure.expireAccessTokens()
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => clients[i % 3]!.callTool({ name: "secure_whoami", arguments: {} }))
      )
      for (const result of results) {
        assert.notStrictEqual(
          (result as CallToolResult).isError,
          true,
          text(result as CallToolResult)
        )
      }
      assert.strictEqual(secure.tokenRequests() - before, 1)
      await Promise.all(clients.map((c) => c.close()))
    },
    120_000
  )

  it("a warm uncached call to a stdio server with no limit sends Redis no command", async () => {
    const client = await connect(replicas[0]!.url, "2026")
    await client.callTool({ name: "local_echo", arguments: { warm: true } })
    const probe = createClient({ url: redis.url })
    await probe.connect()
    const processed = async () => {
      const info = await probe.info("stats")
      return Number(/total_commands_processed:(\d+)/.exec(info)![1])
    }
    const before = await processed()
    for (let i = 0; i < 10; i++) await client.callTool({ name: "local_echo", arguments: { i } })
    const after = await processed()
    await probe.close()
    await client.close()
    // The only command between the two readings is the first INFO itself.
    assert.strictEqual(after - before, 1)
  }, 120_000)

  // Clients on every replica: a 2025-era session pinned to each (its GET stream open there) and a 2026-07-28 one
  // listening there; each counts the list changes it hears.
  const listeners = async () => {
    const opened = [...balancer.streams]
    const clients = []
    for (let i = 0; i < replicas.length; i++) {
      for (const era of ["2025", "2026"] as const) {
        const client = await connect(balancer.url, era, i)
        const heard = { changes: 0 }
        client.setNotificationHandler("notifications/tools/list_changed", () => {
          heard.changes++
        })
        const subscription = era === "2026" ? await client.listen({ toolsListChanged: true }) : undefined
        clients.push({ client, era, replica: i, heard, subscription })
      }
    }
    // Each replica holds two streams (a GET stream, a listen stream) before anything changes; a request after the
    // GET on the same replica finds it open.
    await until(() => balancer.streams.every((n, i) => n - opened[i]! >= 2), 30_000, "every stream open")
    await Promise.all(clients.filter((c) => c.era === "2025").map((c) => c.client.ping()))
    for (const c of clients) c.heard.changes = 0
    return clients
  }
  const closeAll = (clients: Awaited<ReturnType<typeof listeners>>) =>
    Promise.all(clients.map(async (c) => {
      await c.subscription?.close()
      await c.client.close()
    }))

  it("a tool added on the shared upstream reaches clients on every replica, and every replica lists it", async () => {
    const clients = await listeners()
    const caller = await connect(balancer.url, "2026")
    assert.notInclude(names((await caller.listTools()).tools), "up_fresh")
    await caller.callTool({ name: "up_grow", arguments: {} })
    await until(() => clients.every((c) => c.heard.changes > 0), 30_000, "list changes on every replica")
    for (const c of clients) {
      const listed = names((await c.client.listTools()).tools)
      assert.include(listed, "up_fresh", `${c.era} client on replica ${c.replica}`)
    }
    await caller.close()
    await closeAll(clients)
  }, 120_000)

  it(
    "a tool added on a server only replica 0 hears reaches clients on every replica over Redis, and each lists it",
    async () => {
      const clients = await listeners()
      const caller = await connect(balancer.url, "2026", 0)
      for (const c of clients) assert.notInclude(names((await c.client.listTools()).tools), "feed_fresh")
      await caller.callTool({ name: "feed_grow", arguments: {} })
      await until(() => clients.every((c) => c.heard.changes > 0), 30_000, "list changes on every replica")
      // Replicas 1 and 2 heard it from replica 0 alone, and dropped their own lists of the server.
      for (const c of clients) {
        assert.include(
          names((await c.client.listTools()).tools),
          "feed_fresh",
          `${c.era} client on replica ${c.replica}`
        )
      }
      await caller.close()
      await closeAll(clients)
    },
    120_000
  )

  // What a client sees of Redis faults: calls through the balancer while Redis is away, by kind.
  interface FaultFigures {
    cached: { served: number; failed: number }
    uncached: { served: number; failed: number }
    limited: { refused: number; admitted: number; other: number }
    refusal?: string
  }
  const callThroughFault = async (client: Client, tag: string, stillDown: () => boolean) => {
    const figures: FaultFigures = {
      cached: { served: 0, failed: 0 },
      uncached: { served: 0, failed: 0 },
      limited: { refused: 0, admitted: 0, other: 0 }
    }
    let i = 0
    do {
      i++
      const cached = await client.callTool({ name: "up_cached", arguments: { tag, i } }).then(
        (r) => JSON.parse(text(r as CallToolResult)).i === i,
        () => false
      )
      figures.cached[cached ? "served" : "failed"]++
      const uncached = await client.callTool({ name: "local_echo", arguments: { tag, i } }).then(
        (r) => JSON.parse(text(r as CallToolResult)).i === i,
        () => false
      )
      figures.uncached[uncached ? "served" : "failed"]++
      const limited = await client.callTool({ name: "up_guarded", arguments: { tag, i } }) as CallToolResult
      if (limited.isError !== true) figures.limited.admitted++
      else if (text(limited).includes("cannot be checked")) {
        figures.limited.refused++
        figures.refusal = text(limited)
      } else figures.limited.other++
    } while (stillDown())
    return figures
  }

  // Admissions of the guarded tool's limit Redis holds now.
  const guardedCount = async () => {
    const probe = createClient({ url: redis.url })
    await probe.connect()
    try {
      let n = 0
      for await (const keys of probe.scanIterator({ MATCH: "mcpgw:rl:*guarded*" })) {
        for (const key of keys) n += await probe.zCard(key)
      }
      return n
    } finally {
      await probe.close()
    }
  }

  const waitRecovered = async (since: number) => {
    await until(
      async () => (await Promise.all(replicas.map(redisState))).every(allUp),
      60_000,
      "every replica to see Redis again"
    )
    return Math.round(performance.now() - since)
  }

  const figures: Record<string, unknown> = {}

  it(
    "Redis paused longer than the stores wait: calls go on, limits fail closed, every replica shows it, nothing acknowledged is lost",
    async () => {
      const client = await connect(balancer.url, "2026")
      for (const r of replicas) assert.isTrue(allUp(await redisState(r)))
      // Acknowledged before the fault: one admission of the limit, one cached result.
      assert.notStrictEqual(
        (await client.callTool({ name: "up_guarded", arguments: {} }) as CallToolResult).isError,
        true
      )
      await client.callTool({ name: "up_cached", arguments: { q: "kept" } })
      assert.strictEqual(await guardedCount(), 1)

      redis.pause()
      const pausedAt = performance.now()
      let during: FaultFigures
      let states: Array<Awaited<ReturnType<typeof redisState>>>
      try {
        // While Redis is paused, calls go on (for longer than the stores' 1 s wait), and every replica says it runs
        // degraded, in `/readyz` and its gauges.
        ;[states, during] = await Promise.all([
          Promise.all(replicas.map(redisState)),
          callThroughFault(client, "paused", () => performance.now() - pausedAt < 2_000)
        ])
      } finally {
        redis.resume()
      }
      const pausedFor = Math.round(performance.now() - pausedAt)
      for (const state of states) {
        assert.strictEqual(state.ready.redis, "degraded")
        assert.isTrue(Object.values(state.gauges).includes(0), JSON.stringify(state.gauges))
      }
      assert.strictEqual(during.cached.failed, 0)
      assert.strictEqual(during.uncached.failed, 0)
      assert.strictEqual(during.limited.admitted, 0)
      assert.strictEqual(during.limited.other, 0)
      assert.include(during.refusal, "fail closed")
      assert.include(during.refusal, "onUnreachable")
      for (const r of replicas) assert.isNull(r.child.exitCode)
      const recoveredIn = await waitRecovered(performance.now())

      // The result cached before the pause is still a hit through every replica (before any call that writes).
      const cachedCalls = upstream.calls("cached")
      for (let i = 0; i < replicas.length; i++) {
        const pinned = await connect(balancer.url, "2026", i)
        await pinned.callTool({ name: "up_cached", arguments: { q: "kept" } })
        await pinned.close()
      }
      assert.strictEqual(upstream.calls("cached"), cachedCalls)
      // Nothing acknowledged lost: the admission before the pause still counts (and none refused during it does).
      await until(async () => (await guardedCount()) === 1, 30_000, "refused admissions withdrawn")
      let admitted = 0
      for (let i = 0; i < GUARD; i++) {
        const r = await client.callTool({ name: "up_guarded", arguments: { after: i } }) as CallToolResult
        if (r.isError !== true) admitted++
      }
      assert.strictEqual(admitted, GUARD - 1)
      await client.close()
      figures.pause = { pausedForMs: pausedFor, during, recoveredInMs: recoveredIn }
      console.log(`Redis SIGSTOP figures: ${JSON.stringify(figures.pause)}`)
    },
    120_000
  )

  it(
    "Redis killed and restarted empty: calls go on, every replica shows it and recovers; what Redis held is gone",
    async () => {
      const client = await connect(balancer.url, "2026")
      const session = await connect(balancer.url, "2025")
      await session.callTool({ name: "local_echo", arguments: { before: true } })
      await client.callTool({ name: "up_cached", arguments: { q: "lost" } })

      await redis.kill()
      const killedAt = performance.now()
      let during: FaultFigures
      let states: Array<Awaited<ReturnType<typeof redisState>>>
      try {
        ;[states, during] = await Promise.all([
          Promise.all(replicas.map(redisState)),
          callThroughFault(client, "killed", () => performance.now() - killedAt < 2_000)
        ])
      } finally {
        await redis.restart()
      }
      const downFor = Math.round(performance.now() - killedAt)
      for (const state of states) {
        assert.strictEqual(state.ready.redis, "degraded")
        assert.isTrue(Object.values(state.gauges).includes(0), JSON.stringify(state.gauges))
      }
      assert.strictEqual(during.cached.failed, 0)
      assert.strictEqual(during.uncached.failed, 0)
      assert.strictEqual(during.limited.admitted, 0)
      assert.strictEqual(during.limited.other, 0)
      assert.include(during.refusal, "fail closed")
      for (const r of replicas) assert.isNull(r.child.exitCode)
      const recoveredIn = await waitRecovered(performance.now())
      // The session key the replicas share is stored again, for replicas started from now on.
      const probe = createClient({ url: redis.url })
      await probe.connect()
      await until(async () => (await probe.get("mcpgw:session-key")) !== null, 30_000, "the session key restored")
      await probe.close()

      // The 2025-era session goes on (its id carries its state); the new Redis is empty: the cached result is a
      // miss, and the limit counts afresh.
      const after = await session.callTool({ name: "local_echo", arguments: { after: true } }) as CallToolResult
      assert.deepStrictEqual(JSON.parse(text(after)), { after: true })
      const cachedCalls = upstream.calls("cached")
      await client.callTool({ name: "up_cached", arguments: { q: "lost" } })
      assert.strictEqual(upstream.calls("cached"), cachedCalls + 1)
      let admitted = 0
      for (let i = 0; i < GUARD + 1; i++) {
        const r = await client.callTool({ name: "up_guarded", arguments: { afresh: i } }) as CallToolResult
        if (r.isError !== true) admitted++
      }
      assert.strictEqual(admitted, GUARD)
      await session.close()
      await client.close()
      figures.kill = { downForMs: downFor, during, recoveredInMs: recoveredIn }
      console.log(`Redis SIGKILL figures: ${JSON.stringify(figures.kill)}`)
    },
    120_000
  )

  it("a 2025-era session goes on after the replica that created it is killed", async () => {
    const client = await connect(balancer.url, "2025")
    assert.strictEqual(client.getNegotiatedProtocolVersion(), "2025-11-25")
    const session = (client as unknown as { transport: StreamableHTTPClientTransport }).transport.sessionId
    assert.isString(session)
    const owner = balancer.sessionOwner.get(session!)
    assert.isDefined(owner)
    const before = await client.callTool({ name: "local_echo", arguments: { n: 1 } }) as CallToolResult
    assert.deepStrictEqual(JSON.parse(text(before)), { n: 1 })
    replicas[owner!]!.child.kill("SIGKILL")
    await exited(replicas[owner!]!.child)
    for (let n = 2; n < 6; n++) {
      const after = await client.callTool({ name: "local_echo", arguments: { n } }) as CallToolResult
      assert.deepStrictEqual(JSON.parse(text(after)), { n })
    }
    await client.close().catch(() => undefined)
  }, 120_000)
})
