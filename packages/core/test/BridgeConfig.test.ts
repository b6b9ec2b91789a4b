import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig } from "@mcp-bridge/core"
import { Duration, Effect, Redacted } from "effect"

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

  it.effect.each(
    [
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
      [
        { mcpServers: { gh: { command: "x", bridge: { timeout: "soon" } } } },
        "mcpServers.gh.bridge.timeout",
        "gh",
        "Duration"
      ],
      [
        { mcpServers: { gh: { command: "x", bridge: { tiemout: 5 } } } },
        "mcpServers.gh.bridge.tiemout",
        "gh",
        "excess"
      ],
      [
        { mcpServers: { gh: { command: "x", bridge: { pool: { max: 0 } } } } },
        "mcpServers.gh.bridge.pool.max",
        "gh",
        "1"
      ],
      [
        { mcpServers: { gh: { command: "x", bridge: { pool: { isolation: "tenant" } } } } },
        "mcpServers.gh.bridge.pool.isolation",
        "gh",
        "tenant"
      ],
      [
        { mcpServers: { gh: { command: "x", bridge: { protocol: "2024" } } } },
        "mcpServers.gh.bridge.protocol",
        "gh",
        "2024"
      ],
      [
        { mcpServers: { gh: { command: "x", bridge: { cache: { ttl: "forever" } } } } },
        "mcpServers.gh.bridge.cache.ttl",
        "gh",
        "forever"
      ],
      [
        { mcpServers: { gh: { command: "x", bridge: { tools: { q: { cache: "static", readOnly: "yes" } } } } } },
        "mcpServers.gh.bridge.tools.q.readOnly",
        "gh",
        "boolean"
      ],
      [
        { mcpServers: { gh: { command: "x", bridge: { throttle: { perSecond: 0 } } } } },
        "mcpServers.gh.bridge.throttle.perSecond",
        "gh",
        "1"
      ],
      [
        { mcpServers: { gh: { command: "x", bridge: { throttle: { onLimit: "drop" } } } } },
        "mcpServers.gh.bridge.throttle.onLimit",
        "gh",
        "drop"
      ],
      [
        { mcpServers: { gh: { command: "x", bridge: { retry: { budget: 2 } } } } },
        "mcpServers.gh.bridge.retry.budget",
        "gh",
        "2"
      ],
      [
        { mcpServers: { gh: { command: "x", bridge: { circuitBreaker: { openFor: "never" } } } } },
        "mcpServers.gh.bridge.circuitBreaker.openFor",
        "gh",
        "never"
      ],
      [{ servers: {} }, "", undefined, ""],
      [{ mcpServers: {}, bridge: { timeout: -5 } }, "", undefined, ""]
    ] as const
  )("names the server and the field of bad input: %j", ([input, path, server, mentions]) =>
    Effect.gen(function*() {
      const error = yield* decodeError(input)
      assert.strictEqual(error._tag, "BridgeConfigError")
      assert.strictEqual(error.reason._tag, "Invalid")
      if (path !== "" && error.reason._tag === "Invalid") assert.strictEqual(error.reason.path.join("."), path)
      assert.strictEqual(error.server, server)
      assert.include(error.message, mentions)
      if (path !== "") assert.isTrue(error.message.startsWith(path))
    }))

  it.effect("never prints a secret in an error", () =>
    Effect.gen(function*() {
      const error = yield* decodeError({
        mcpServers: { gh: { command: "x", env: { TOKEN: "s3cret-value" }, bridge: { pool: { max: -1 } } } }
      })
      // The error is about the field next to the secret, and says so: the check below is not vacuous.
      assert.include(error.message, "mcpServers.gh.bridge.pool.max")
      assert.notInclude(error.message, "s3cret-value")
      assert.notInclude(JSON.stringify(error), "s3cret-value")
      const inSecret = yield* decodeError({ mcpServers: { gh: { command: "x", env: { TOKEN: 42 } } } })
      assert.include(inSecret.message, "mcpServers.gh.env.TOKEN")
      assert.notInclude(inSecret.message, "42")
    }))

  it.effect("a resolved server has every default applied", () =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.decode({
        mcpServers: {
          h: { url: "http://127.0.0.1:1/mcp" },
          m: { type: "memory" },
          n: { command: "npx", args: ["-y", "some-server"] }
        }
      })
      const h = config.servers.get("h")!
      assert.deepStrictEqual(Duration.toMillis(h.timeout), Duration.toMillis(BridgeConfig.defaults.timeout))
      assert.deepStrictEqual(Duration.toMillis(h.connectTimeout), 15_000)
      assert.deepStrictEqual([h.pool.min, h.pool.max, h.pool.concurrency, h.pool.isolation], [0, 20, 64, "shared"])
      assert.deepStrictEqual(config.servers.get("m")!.pool.concurrency, 64)
      // A package runner may download the server first: 60 seconds to connect.
      assert.deepStrictEqual(Duration.toMillis(config.servers.get("n")!.connectTimeout), 60_000)
      assert.isTrue(h.retry !== false && h.retry.times === 2 && h.retry.budget === 0.2)
      assert.isTrue(h.circuitBreaker !== false && h.circuitBreaker.failures === 5)
      assert.isUndefined(h.throttle)
      assert.deepStrictEqual([h.cache.enabled, h.cache.invalidateOnWrite, h.trustAnnotations], [true, true, false])
    }))

  it.effect("merges the global bridge section under each server's, and false switches a feature off", () =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.decode({
        mcpServers: {
          a: { type: "memory", bridge: { retry: { times: 5 }, throttle: { perSecond: 5 } } },
          b: { type: "memory", bridge: { retry: false, circuitBreaker: false } }
        },
        bridge: { retry: { base: "50 millis" }, throttle: { perMinute: 100 }, circuitBreaker: { failures: 3 } }
      })
      const a = config.servers.get("a")!
      const b = config.servers.get("b")!
      assert.deepStrictEqual(a.throttle, { perMinute: 100, perSecond: 5 })
      assert.isTrue(a.retry !== false && a.retry.times === 5 && Duration.toMillis(a.retry.base) === 50)
      assert.isTrue(a.circuitBreaker !== false && a.circuitBreaker.failures === 3)
      assert.isFalse(b.retry)
      assert.isFalse(b.circuitBreaker)
      assert.deepStrictEqual(b.throttle, { perMinute: 100 })
    }))
})
