// Three `mcp-bridge serve --redis` replicas as child processes, one redis-server, and a small round-robin balancer in
// front, driven by the official SDK client over Streamable HTTP: what one Redis makes of several replicas.
import { TestAuthServer, TestServer } from "@mcp-bridge/testing"
import { type CallToolResult, Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, request, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { createClient } from "redis"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type RedisServer, startRedis } from "./redisServer.ts"

const bin = fileURLToPath(new URL("../../src/bin/mcp-bridge.ts", import.meta.url))
const LIMIT = 5

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
interface Balancer {
  readonly url: string
  readonly served: Array<number>
  /** The replica that answered the request that created each 2025-era session. */
  readonly sessionOwner: Map<string, number>
  readonly close: () => Promise<void>
}

const startBalancer = (targets: ReadonlyArray<string>) =>
  new Promise<Balancer>((resolve) => {
    let next = 0
    const served = targets.map(() => 0)
    const sessionOwner = new Map<string, number>()
    const server: Server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        const body = Buffer.concat(chunks)
        const attempt = (tries: number) => {
          const index = next++ % targets.length
          const target = new URL(targets[index]!)
          const upstream = request({
            host: target.hostname,
            port: target.port,
            path: req.url,
            method: req.method,
            headers: { ...req.headers, host: target.host }
          }, (answer) => {
            served[index]!++
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
        }
        attempt(0)
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resolve({
        url: `http://127.0.0.1:${port}/mcp`,
        served,
        sessionOwner,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })

const connect = async (url: string, era: "2026" | "2025") => {
  const client = new Client(
    { name: "replicas-test", version: "1.0.0" },
    era === "2026" ? { versionNegotiation: { mode: "auto" } } : {}
  )
  await client.connect(new StreamableHTTPClientTransport(new URL(url)))
  return client
}

const text = (result: CallToolResult) => result.content.map((c) => c.type === "text" ? c.text : "").join("")

let redis: RedisServer
let upstream: TestServer.HttpTestServer
let secure: TestAuthServer.TestAuthServer
let dir: string
let replicas: Array<Replica> = []
let balancer: Balancer

beforeAll(async () => {
  redis = await startRedis()
  upstream = await TestServer.startHttp({
    name: "up",
    tools: [
      { name: "cached", respond: { kind: "echo" } },
      { name: "limited", respond: { kind: "echo" } }
    ]
  })
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
            limited: { throttle: { perMinute: LIMIT, onLimit: "fail" } }
          }
        }
      },
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
  // The three ways to name the Redis: the flag, the environment, the file's entry.
  const fileWithRedis = join(dir, "mcp-redis.json")
  writeFileSync(fileWithRedis, JSON.stringify({ ...config, redis: { url: redis.url } }))
  replicas = await Promise.all([
    startReplica(file, ["--redis", redis.url]),
    startReplica(file, [], { REDIS_URL: redis.url }),
    startReplica(fileWithRedis, [])
  ])
  balancer = await startBalancer(replicas.map((r) => r.url))
}, 180_000)

afterAll(async () => {
  await balancer?.close()
  for (const r of replicas) r.child.kill("SIGKILL")
  await Promise.all(replicas.map((r) => exited(r.child)))
  await upstream?.close()
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

  it(
    "Redis paused: calls go on (the cache fails open), no replica crashes, and sharing resumes with Redis",
    async () => {
      const one = await connect(replicas[0]!.url, "2026")
      const two = await connect(replicas[1]!.url, "2026")
      const calls = upstream.calls("cached")
      redis.pause()
      try {
        const during = await one.callTool({ name: "up_cached", arguments: { q: "paused" } }) as CallToolResult
        assert.deepStrictEqual(JSON.parse(text(during)), { q: "paused" })
        const local = await two.callTool({ name: "local_echo", arguments: { q: "paused" } }) as CallToolResult
        assert.deepStrictEqual(JSON.parse(text(local)), { q: "paused" })
        assert.strictEqual(upstream.calls("cached"), calls + 1)
      } finally {
        redis.resume()
      }
      // Back: a result stored through one replica is again a hit through another (waiting out each store's pause).
      let hit = false
      for (let i = 0; !hit && i < 200; i++) {
        const before = upstream.calls("cached")
        await one.callTool({ name: "up_cached", arguments: { q: "after", i } })
        await two.callTool({ name: "up_cached", arguments: { q: "after", i } })
        hit = upstream.calls("cached") === before + 1
        if (!hit) await new Promise((r) => setTimeout(r, 100))
      }
      assert.isTrue(hit)
      for (const r of replicas) assert.isNull(r.child.exitCode)
      await one.close()
      await two.close()
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
