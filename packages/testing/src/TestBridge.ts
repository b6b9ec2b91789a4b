/**
 * Test layers for users' own tests: a whole `McpBridge` over in-memory `TestServer`s, no processes, no network.
 * Swap it in where production code gets `McpBridge.layer(config)`.
 *
 * @since 0.1.0
 */
import { type BridgeConfigError, McpBridge, McpTransport } from "@mcp-bridge/core"
import { Context, Effect, Layer } from "effect"
import * as TestServer from "./TestServer.ts"

/**
 * The test servers behind a `TestBridge.layerTest`, by server name, to inspect calls made to them.
 *
 * @since 0.1.0
 */
export class TestServers extends Context.Service<TestServers, Readonly<Record<string, TestServer.TestServer>>>()(
  "@mcp-bridge/testing/TestServers"
) {}

/**
 * Options of `layerTest`: those of `McpBridge.layer` except the transport (always the in-memory test servers), and the
 * `bridge` sections of every server or of some, e.g. to test code under a throttle or without the cache.
 *
 * @since 0.1.0
 */
export interface Options extends Omit<McpBridge.LayerOptions, "transport"> {
  /** The `bridge` section applied to every server (pool, cache, throttle, timeout...). @default {} */
  readonly bridge?: Readonly<Record<string, unknown>> | undefined
  /** Per-server `bridge` sections, over `bridge`. @default {} */
  readonly servers?: Readonly<Record<string, Readonly<Record<string, unknown>>>> | undefined
}

/**
 * A bridge over in-memory test servers, plus `TestServers` to look at what they received: provide it to your code's
 * tests where production provides `McpBridge.layer(config)`. Closing the layer closes every session.
 *
 * @example
 * ```ts
 * const Test = TestBridge.layerTest({ crm: { tools: [{ name: "get_account", respond: { kind: "json", value: { id: 1 } } }] } })
 * it.effect("reads the account", () =>
 *   Effect.gen(function*() {
 *     const result = yield* McpBridge.McpBridge.use((b) => b.callTool("crm.get_account", { id: 1 }))
 *     const servers = yield* TestBridge.TestServers
 *     assert.strictEqual(servers.crm.calls("get_account"), 1)
 *   }).pipe(Effect.provide(Test)))
 * ```
 *
 * @since 0.1.0
 */
export const layerTest = (
  servers: Readonly<Record<string, TestServer.TestServerSpec | TestServer.TestServer>>,
  options: Options = {}
): Layer.Layer<McpBridge.Services | TestServers, BridgeConfigError.BridgeConfigError> =>
  Layer.unwrap(Effect.gen(function*() {
    const instances: Record<string, TestServer.TestServer> = {}
    for (const [name, server] of Object.entries(servers)) {
      instances[name] = "connect" in server ? server : TestServer.make(server)
    }
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => Promise.all(Object.values(instances).map((s) => s.close().catch(() => undefined))))
    )
    const config = {
      mcpServers: Object.fromEntries(
        Object.keys(instances).map((
          name
        ) => [name, { type: "memory", bridge: { ...options.bridge, ...options.servers?.[name] } }])
      )
    }
    const memory = Object.fromEntries(Object.entries(instances).map(([name, s]) => [name, s.connect]))
    return McpBridge.layer(config, {
      ...options,
      transport: McpTransport.layer({ memory })
    }).pipe(Layer.merge(Layer.succeed(TestServers, instances)))
  }))
