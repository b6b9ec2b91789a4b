/**
 * The dashboard in a real browser (Debian's `chromium`, driven by `playwright-core`) against a bridge over real test
 * servers: a Streamable HTTP server in a child process that is killed halfway, a stdio server, and an HTTP endpoint
 * that refuses every request and echoes the server's secret header in its error. Plus the handler's guard (auth hook,
 * `false`) over plain HTTP.
 */
import { McpBridge } from "@mcp-bridge/core"
import { Dashboard, NodeTransport } from "@mcp-bridge/node"
import { FaultServer, TestServer } from "@mcp-bridge/testing"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { existsSync, mkdirSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import { chromium } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it } from "vitest"

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const haveChromium = existsSync(chromiumPath)
const ci = process.env.CI === "true"
const output = fileURLToPath(new URL("./output/", import.meta.url))
const secret = "sk-live-7f3a9c2e5b1d4086"

const listen = (server: Server) =>
  new Promise<string>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
  )
const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })

// An MCP endpoint that refuses every request, echoing the credentials it was sent (as a careless proxy does).
const startRefusing = () => {
  const server = createServer((req, res) => {
    req.resume()
    res.writeHead(500, { "content-type": "text/plain" })
    res.end(`upstream refused the credentials "${req.headers.authorization ?? ""}": account suspended`)
  })
  return listen(server).then((url) => ({ url: `${url}/mcp`, close: () => close(server) }))
}

interface Harness {
  readonly url: string
  readonly run: <A, E>(effect: Effect.Effect<A, E, McpBridge.McpBridge>) => Promise<A>
  readonly killDocs: () => Promise<void>
  readonly close: () => Promise<void>
}

const start = async (options: Dashboard.Options): Promise<Harness> => {
  const docs = await FaultServer.startKillableHttp({
    tools: [
      { name: "search", annotations: { readOnlyHint: true }, latencyMs: 8, jitterMs: 10, respond: { kind: "echo" } },
      { name: "get_page", latencyMs: 20, jitterMs: 30, respond: { kind: "json", value: { title: "Pools" } } }
    ]
  })
  const refusing = await startRefusing()
  const files = TestServer.stdioCommand({
    tools: [
      { name: "read_file", respond: { kind: "text", text: "hello" } },
      { name: "write_file", respond: { kind: "isError", message: "read-only file system" } }
    ]
  })
  const layer = McpBridge.layer({
    mcpServers: {
      docs: { url: docs.url, bridge: { tools: { search: { cache: "1 minute" } } } },
      files: { command: files.command, args: [...files.args] },
      vault: {
        url: refusing.url,
        headers: { Authorization: `Bearer ${secret}` },
        bridge: { circuitBreaker: false, retry: false }
      }
    }
  }, { transport: NodeTransport.layer() })
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const run = <A, E>(effect: Effect.Effect<A, E, McpBridge.McpBridge>) =>
    Effect.runPromise(Effect.provideContext(effect, context as Context.Context<McpBridge.McpBridge>))
  const handler = await Effect.runPromise(
    Dashboard.make(options).pipe(Effect.provideContext(context), Scope.provide(scope))
  )
  const http = createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(404).end("not found\n")
  })
  const url = await listen(http)
  return {
    url,
    run,
    killDocs: () => docs.kill(),
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await close(http)
      await docs.close()
      await refusing.close()
    }
  }
}

describe("Dashboard", () => {
  describe.skipIf(!haveChromium && !ci)("in a browser", () => {
    let harness: Harness

    beforeAll(async () => {
      if (!haveChromium) throw new Error(`chromium is required in CI: not found at ${chromiumPath}`)
      harness = await start({ replica: { id: "replica-1", name: "eu-west" } })
    }, 60_000)
    afterAll(() => harness?.close(), 30_000)

    it("shows every server, a call within 2 seconds, a failing server with its reason, and no secret", async () => {
      const { run, url } = harness
      // Warm: a session with every reachable server (the browser test measures the page, not a connect).
      await run(McpBridge.McpBridge.use((b) => b.callTool("docs.get_page", {})))
      await run(McpBridge.McpBridge.use((b) => b.callTool("files.read_file", {})))
      await run(McpBridge.McpBridge.use((b) => Effect.exit(b.callTool("vault.read", {}))))

      const browser = await chromium.launch({ executablePath: chromiumPath })
      try {
        const page = await browser.newPage({ viewport: { width: 1360, height: 1000 }, deviceScaleFactor: 1 })
        await page.goto(url)
        for (const server of ["docs", "files", "vault"]) {
          await page.waitForSelector(`[data-server="${server}"]`, { timeout: 15_000 })
        }
        assert.include(await page.textContent("#replica"), "eu-west")

        // The vault refuses with its secret in the body: the page shows the failure, scrubbed.
        await page.waitForSelector(`[data-server="vault"][data-state="failing"]`, { timeout: 15_000 })
        const vaultReason = await page.textContent(`[data-server="vault"] [data-role="reason"]`)
        assert.include(vaultReason, "ConnectFailed")
        assert.notInclude(vaultReason, secret)

        // A call appears within 2 seconds of its completion.
        const before = Number(
          (await page.$eval(`body`, () => document.querySelector(`[data-tool="docs.search"] .calls`)?.textContent))
            ?? "0"
        )
        await run(McpBridge.McpBridge.use((b) => b.callTool("docs.search", { q: "pool" })))
        const done = performance.now()
        await page.waitForFunction(
          (n) => Number(document.querySelector(`[data-tool="docs.search"] .calls`)?.textContent ?? "0") > n,
          before,
          { polling: 50, timeout: 15_000 }
        )
        const seenAfter = performance.now() - done
        assert.isBelow(seenAfter, 2_000, `the call appeared ${seenAfter.toFixed(0)} ms after it completed`)

        // Some traffic for the picture: cache hits, a tool error, a slower tool.
        await run(
          McpBridge.McpBridge.use((b) =>
            Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) =>
              Effect.exit(
                i % 10 === 9
                  ? b.callTool("files.write_file", { path: "/etc/x" })
                  : i % 3 === 0
                  ? b.callTool("docs.get_page", { id: i })
                  : i % 3 === 1
                  ? b.callTool("docs.search", { q: i % 4 })
                  : b.callTool("files.read_file", { path: `/tmp/${i}` })
              ), { concurrency: 4 })
          )
        )

        // The docs server dies: its next call fails, and the page shows it failing with the reason.
        await page.waitForSelector(`[data-server="docs"][data-state="connected"]`, { timeout: 15_000 })
        await harness.killDocs()
        await run(McpBridge.McpBridge.use((b) => Effect.exit(b.callTool("docs.get_page", { id: "after" }))))
        await page.waitForSelector(`[data-server="docs"][data-state="failing"]`, { timeout: 15_000 })
        const docsReason = await page.textContent(`[data-server="docs"] [data-role="reason"]`)
        assert.match(docsReason ?? "", /Closed|ConnectFailed|Timeout/)

        // No secret anywhere: not in the page, not in the JSON.
        assert.notInclude(await page.content(), secret)
        const state = await (await fetch(`${url}/dashboard/state`)).text()
        assert.notInclude(state, secret)

        mkdirSync(output, { recursive: true })
        await page.screenshot({ path: `${output}dashboard.png`, fullPage: true })
      } finally {
        await browser.close()
      }
    }, 120_000)
  })

  describe("guard", () => {
    it("asks for a key, lets an admin in, answers nothing when off", async () => {
      const harness = await start({
        authorize: (req) => Dashboard.presentedKey(req) === "admin-key"
      })
      try {
        const denied = await fetch(`${harness.url}/dashboard/state`)
        assert.strictEqual(denied.status, 401)
        assert.include(denied.headers.get("www-authenticate") ?? "", "Basic")
        const bearer = await fetch(`${harness.url}/dashboard/state`, { headers: { authorization: "Bearer admin-key" } })
        assert.strictEqual(bearer.status, 200)
        const state = await bearer.json() as { servers: Array<{ server: string }> }
        assert.deepStrictEqual(state.servers.map((s) => s.server), ["docs", "files", "vault"])
        const basic = await fetch(`${harness.url}/`, {
          headers: { authorization: `Basic ${Buffer.from("admin:admin-key").toString("base64")}` }
        })
        assert.strictEqual(basic.status, 200)
        assert.include(basic.headers.get("content-security-policy") ?? "", "script-src 'sha256-")
        const other = await fetch(`${harness.url}/mcp`)
        assert.strictEqual(other.status, 404)
      } finally {
        await harness.close()
      }
      const off = Effect.runSync(
        Effect.scoped(Dashboard.make(false)).pipe(
          Effect.provideService(McpBridge.McpBridge, undefined as never)
        )
      )
      assert.strictEqual(off({ url: "/" } as never, undefined as never), false)
    }, 60_000)
  })
})
