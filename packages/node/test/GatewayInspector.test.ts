/**
 * The MCP Inspector's CLI (`@modelcontextprotocol/inspector --cli`, a real downstream client of its own) against the
 * gateway, over Streamable HTTP and over stdio (`mcp-bridge serve --stdio`): it lists tools, calls one with an
 * argument, lists resources and prompts. Upstream is the conformance fixture server, served without a prefix.
 */
import { assert, describe, it } from "@effect/vitest"
import { serveGateway } from "@mcp-bridge/node"
import { ConformanceServer } from "@mcp-bridge/testing"
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll } from "vitest"

const require = createRequire(import.meta.url)
const inspectorRoot = dirname(require.resolve("@modelcontextprotocol/inspector/package.json"))
const inspector = join(
  inspectorRoot,
  (require("@modelcontextprotocol/inspector/package.json") as { bin: Record<string, string> }).bin["mcp-inspector"]!
)
const bin = fileURLToPath(new URL("../src/bin/mcp-bridge.ts", import.meta.url))

describe("Gateway with the MCP Inspector CLI", () => {
  let fixture: ConformanceServer.ConformanceServer
  let gateway: Awaited<ReturnType<typeof serveGateway>>
  let home: string
  let config: string

  // One Inspector CLI run: the method's options, then (after `--`, so that the gateway's own `--config` is not taken
  // for the Inspector's) its target, a URL or a command and its arguments; resolves with the JSON it prints.
  const inspect = (target: ReadonlyArray<string>, ...options: ReadonlyArray<string>) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      execFile(
        process.execPath,
        [inspector, "--cli", ...options, "--", ...target],
        // A home of its own: the Inspector keeps its settings there; secrets in memory (no OS keychain here).
        { env: { ...process.env, HOME: home, MCP_INSPECTOR_SECRET_STORE: "memory" }, timeout: 60_000 },
        (error, stdout, stderr) => {
          if (error !== null) return reject(new Error(`${error.message}\n${stdout}\n${stderr}`))
          try {
            resolve(JSON.parse(stdout) as Record<string, unknown>)
          } catch {
            reject(new Error(`not JSON:\n${stdout}\n${stderr}`))
          }
        }
      )
    })

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), "gw-inspector-"))
    fixture = await ConformanceServer.startHttp()
    const settings = { mcpServers: { conformance: { url: fixture.url } }, gateway: { prefix: "never" } }
    config = join(home, "mcp.json")
    writeFileSync(config, JSON.stringify(settings))
    gateway = await serveGateway(settings, { port: 0, dashboard: false })
  }, 60_000)

  afterAll(async () => {
    await gateway?.close()
    await fixture?.close()
    rmSync(home, { recursive: true, force: true })
  })

  const transports = () => ({
    http: [gateway.url],
    stdio: [process.execPath, "--conditions=@mcp-bridge/source", bin, "serve", "--config", config, "--stdio"]
  })

  for (const transport of ["http", "stdio"] as const) {
    it(`lists tools, calls one, lists resources and prompts (${transport})`, { timeout: 180_000 }, async () => {
      const target = transports()[transport]
      const tools = await inspect(target, "--method", "tools/list")
      const names = (tools["tools"] as Array<{ name: string }>).map((t) => t.name)
      assert.include(names, "test_simple_text")
      assert.include(names, "test_elicitation")

      const simple = await inspect(target, "--method", "tools/call", "--tool-name", "test_simple_text")
      assert.deepStrictEqual(simple["content"], [{ type: "text", text: "This is a simple text response for testing." }])
      const withArgs = await inspect(
        target,
        "--method",
        "tools/call",
        "--tool-name",
        "json_schema_2020_12_tool",
        "--tool-arg",
        "name=Ada"
      )
      assert.deepStrictEqual(withArgs["content"], [{
        type: "text",
        text: "JSON Schema 2020-12 tool called with: {\"name\":\"Ada\"}"
      }])

      const resources = await inspect(target, "--method", "resources/list")
      assert.include((resources["resources"] as Array<{ uri: string }>).map((r) => r.uri), "test://static-text")
      const prompts = await inspect(target, "--method", "prompts/list")
      assert.include((prompts["prompts"] as Array<{ name: string }>).map((p) => p.name), "test_simple_prompt")
    })
  }
})
