import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Redacted } from "effect"
import { BridgeConfig } from "@mcp-bridge/core"

const decodeError = (input: unknown) => Effect.flip(BridgeConfig.decode(input))

describe("BridgeConfig", () => {
  it.effect("decodes the Claude-style mcpServers file with defaults and per-server overrides", () =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.decode({
        mcpServers: {
          files: { command: "node", args: ["server.js"], env: { TOKEN: "s3cret-value" }, cwd: "/tmp" },
          docs: { url: "https://example.test/mcp", headers: { Authorization: "Bearer abc123" } },
          old: { type: "sse", url: "http://127.0.0.1:9/sse", bridge: { timeout: "5 seconds" } },
          mem: { type: "memory", bridge: { pool: { max: 3, isolation: "per-identity" } } }
        },
        bridge: { timeout: 12_000, pool: { min: 1 } }
      })
      const files = config.servers.get("files")!
      assert.strictEqual(BridgeConfig.transportKind(files.transport), "stdio")
      assert.deepStrictEqual(Duration.toMillis(files.timeout), 12_000)
      assert.strictEqual(files.pool.min, 1)
      assert.strictEqual(files.pool.max, 20)
      assert.strictEqual(files.protocol, "auto")
      const old = config.servers.get("old")!
      assert.strictEqual(BridgeConfig.transportKind(old.transport), "sse")
      assert.strictEqual(Duration.toMillis(old.timeout), 5_000)
      const mem = config.servers.get("mem")!
      assert.strictEqual(mem.pool.max, 3)
      assert.strictEqual(mem.pool.isolation, "per-identity")
      assert.strictEqual(BridgeConfig.transportKind(config.servers.get("docs")!.transport), "http")
    }))

  it.effect("keeps env values and headers redacted", () =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.decode({
        mcpServers: {
          files: { command: "node", env: { TOKEN: "s3cret-value" } },
          docs: { url: "https://example.test/mcp", headers: { Authorization: "Bearer abc123" } }
        }
      })
      const files = config.servers.get("files")!.transport
      assert.isTrue("env" in files && files.env !== undefined && Redacted.isRedacted(files.env.TOKEN))
      const printed = JSON.stringify([...config.servers.values()]) + String("env" in files ? files.env : "") +
        [...config.servers.values()].map((s) => `${JSON.stringify(s)}`).join()
      assert.notInclude(printed, "s3cret-value")
      assert.notInclude(printed, "abc123")
    }))

  it.effect.each([
    [{ mcpServers: { "a.b": { command: "node" } } }, "mcpServers.a.b", "a.b", "no dots"],
    [{ mcpServers: { gh: { url: "ftp://x" } } }, "mcpServers.gh.url", "gh", "http:// or https://"],
    [{ mcpServers: { gh: { command: "" } } }, "mcpServers.gh.command", "gh", ""],
    [{ mcpServers: { gh: { command: 5 } } }, "mcpServers.gh.command", "gh", "string"],
    [{ mcpServers: { gh: { command: "x", args: "a b" } } }, "mcpServers.gh.args", "gh", "array"],
    [{ mcpServers: { gh: { command: "x", env: { A: 1 } } } }, "mcpServers.gh.env.A", "gh", "string"],
    [{ mcpServers: { gh: { command: "x", cwd: 3 } } }, "mcpServers.gh.cwd", "gh", "string"],
    [{ mcpServers: { gh: { url: "http://x", headers: { A: [] } } } }, "mcpServers.gh.headers.A", "gh", "string"],
    [{ mcpServers: { gh: { type: "carrier-pigeon" } } }, "mcpServers.gh.type", "gh", "carrier-pigeon"],
    [{ mcpServers: { gh: {} } }, "mcpServers.gh", "gh", "\"command\""],
    [{ mcpServers: { gh: { command: "x", bridge: { timeout: "soon" } } } }, "mcpServers.gh.bridge.timeout", "gh", "Duration"],
    [{ mcpServers: { gh: { command: "x", bridge: { tiemout: 5 } } } }, "mcpServers.gh.bridge.tiemout", "gh", "excess"],
    [{ mcpServers: { gh: { command: "x", bridge: { pool: { max: 0 } } } } }, "mcpServers.gh.bridge.pool.max", "gh", "1"],
    [{ mcpServers: { gh: { command: "x", bridge: { pool: { isolation: "tenant" } } } } }, "mcpServers.gh.bridge.pool.isolation", "gh", "tenant"],
    [{ mcpServers: { gh: { command: "x", bridge: { protocol: "2024" } } } }, "mcpServers.gh.bridge.protocol", "gh", "2024"],
    [{ servers: {} }, "", undefined, ""],
    [{ mcpServers: {}, bridge: { timeout: -5 } }, "", undefined, ""]
  ] as const)("names the server and the field of bad input: %j", ([input, path, server, mentions]) =>
    Effect.gen(function*() {
      const error = yield* decodeError(input)
      assert.strictEqual(error._tag, "BridgeConfigError")
      if (path !== "") assert.strictEqual(error.path.join("."), path)
      assert.strictEqual(error.server, server)
      assert.include(error.message, mentions)
      if (path !== "") assert.isTrue(error.message.startsWith(path))
    }))

  it.effect("never prints a secret in an error", () =>
    Effect.gen(function*() {
      const error = yield* decodeError({
        mcpServers: { gh: { command: "x", env: { TOKEN: "s3cret-value" }, bridge: { pool: { max: -1 } } } }
      })
      assert.notInclude(error.message, "s3cret-value")
      assert.notInclude(JSON.stringify(error), "s3cret-value")
    }))
})
