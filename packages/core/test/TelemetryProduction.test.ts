import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig, McpBridge, McpTransport, Telemetry } from "@mcp-bridge/core"
import { TestServer } from "@mcp-bridge/testing"
import { ConfigProvider, Duration, Effect, Metric } from "effect"

const tools: ReadonlyArray<TestServer.TestTool> = [{ name: "echo", respond: { kind: "echo" } }]

const resolved = (config: object, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const alpha = TestServer.make({ tools })
    const beta = TestServer.make({ tools })
    const [servers, warm] = yield* BridgeConfig.BridgeConfig.pipe(
      Effect.map((c) => [c.servers, alpha.openSessions()] as const),
      Effect.provide(McpBridge.layerProduction(config, {
        transport: McpTransport.layer({ memory: { alpha: alpha.connect, beta: beta.connect } })
      })),
      Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
    )
    return { servers, warm, alpha, beta }
  }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))

describe("McpBridge.layerProduction", () => {
  it.effect("applies the seed's production settings: pool 2-20, idle 5 min, health 60 s, throttle 50/s 1000/min", () =>
    Effect.gen(function*() {
      const { servers, warm } = yield* resolved({ mcpServers: { alpha: { type: "memory" } } })
      const s = servers.get("alpha")!
      assert.strictEqual(s.pool.min, 2)
      assert.strictEqual(s.pool.max, 20)
      assert.isTrue(Duration.equals(s.pool.idleTimeToLive, Duration.minutes(5)))
      assert.isTrue(Duration.equals(s.pool.healthCheckInterval, Duration.seconds(60)))
      assert.deepStrictEqual(
        { perSecond: s.throttle?.perSecond, perMinute: s.throttle?.perMinute, concurrency: s.throttle?.concurrency },
        { perSecond: 50, perMinute: 1000, concurrency: 20 }
      )
      // Two sessions were kept warm from start-up.
      assert.strictEqual(warm, 2)
    }))

  it.effect("user config overrides the defaults, the environment overrides both, a server's own section wins", () =>
    Effect.gen(function*() {
      const { servers } = yield* resolved(
        {
          bridge: { pool: { max: 8, idleTimeToLive: "1 minute" }, throttle: { perSecond: 5 } },
          mcpServers: { alpha: { type: "memory" }, beta: { type: "memory", bridge: { pool: { max: 3 } } } }
        },
        { MCP_BRIDGE_POOL_MAX: "40", MCP_BRIDGE_THROTTLE_PER_MINUTE: "600", MCP_BRIDGE_EXPORT: "false" }
      )
      const alpha = servers.get("alpha")!
      assert.strictEqual(alpha.pool.max, 40)
      assert.strictEqual(alpha.pool.min, 2)
      assert.isTrue(Duration.equals(alpha.pool.idleTimeToLive, Duration.minutes(1)))
      assert.strictEqual(alpha.throttle?.perSecond, 5)
      assert.strictEqual(alpha.throttle?.perMinute, 600)
      assert.strictEqual(servers.get("beta")!.pool.max, 3)
    }))

  it.effect.each(
    [
      ["MCP_BRIDGE_POOL_MIN", "two"],
      ["MCP_BRIDGE_CACHE_TTL", "soon"],
      ["MCP_BRIDGE_POOL_IDLE_TTL", "later"]
    ] as const
  )(
    "a bad environment value is a BridgeConfigError naming the variable: %s",
    ([name, value]) =>
      Effect.gen(function*() {
        const config = { mcpServers: { alpha: { type: "memory" } } }
        const error = yield* Effect.flip(resolved(config, { [name]: value }))
        assert.strictEqual(error._tag, "BridgeConfigError")
        assert.include(error.message, name)
      })
  )

  it.effect("durations from the environment reach the pool", () =>
    Effect.gen(function*() {
      const { servers } = yield* resolved({ mcpServers: { alpha: { type: "memory" } } }, {
        MCP_BRIDGE_POOL_IDLE_TTL: "2 minutes",
        MCP_BRIDGE_CACHE_TTL: "10 minutes"
      })
      assert.isTrue(Duration.equals(servers.get("alpha")!.pool.idleTimeToLive, Duration.minutes(2)))
    }))

  it.effect("alert thresholds come from the options, then from MCP_BRIDGE_ALERT_* variables", () =>
    Effect.gen(function*() {
      const given = { alerts: { errorRate: { threshold: 0.2 }, cacheHitRate: false as const } }
      const options = yield* Telemetry.optionsFromConfig(given).pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
          MCP_BRIDGE_ALERT_LATENCY_P95: "2 seconds",
          MCP_BRIDGE_ALERT_MIN_CALLS: "50",
          MCP_BRIDGE_TELEMETRY_WINDOW: "10 minutes"
        })))
      )
      const alerts = options.alerts as Telemetry.AlertOptions
      assert.deepStrictEqual(alerts.errorRate, { threshold: 0.2, minCalls: 50 })
      assert.isFalse(alerts.cacheHitRate)
      const latency = alerts.latency as { p95: Duration.Duration; minCalls: number }
      assert.isTrue(Duration.equals(latency.p95, Duration.seconds(2)))
      assert.strictEqual(latency.minCalls, 50)
      assert.isTrue(Duration.equals(options.window as Duration.Duration, Duration.minutes(10)))
    }))
})
