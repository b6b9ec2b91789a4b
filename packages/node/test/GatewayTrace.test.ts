/**
 * The gateway continues a downstream client's trace: with a tracer installed (an Effect program's own, as
 * `NodeOtel.layerGlobal` installs one), the call's spans are children of the client's W3C `traceparent` (sent in the
 * request `_meta`), and the upstream receives a `traceparent` of the same trace whose parent is the gateway's span.
 */
import { assert, describe, it } from "@effect/vitest"
import { McpBridge } from "@mcp-bridge/core"
import { Gateway, NodeTransport } from "@mcp-bridge/node"
import { TestServer, TestTracer } from "@mcp-bridge/testing"
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { Effect, Layer } from "effect"

describe("Gateway: traces", () => {
  it.live("a call's spans continue the downstream client's trace, and the upstream gets a traceparent of it", () =>
    Effect.gen(function*() {
      const upstream = yield* TestServer.httpScoped({
        name: "up",
        tools: [{ name: "echo", respond: { kind: "echo" } }]
      })
      const live = Gateway.layer({ port: 0, dashboard: false }).pipe(
        Layer.provide(McpBridge.layer({ mcpServers: { up: { url: upstream.url } } }, {
          transport: NodeTransport.layer()
        }))
      )
      yield* Effect.gen(function*() {
        const gateway = yield* Gateway.Gateway
        const { spans } = yield* TestTracer.TestTracer
        for (const mode of ["auto", "legacy"] as const) {
          const traceId = mode === "auto" ? "4bf92f3577b34da6a3ce929d0e0e4736" : "0af7651916cd43dd8448eb211c80319c"
          const clientSpan = "00f067aa0ba902b7"
          const client = new Client(
            { name: "trace-test", version: "1.0.0" },
            mode === "auto" ? { versionNegotiation: { mode: "auto" } } : {}
          )
          yield* Effect.promise(() => client.connect(new StreamableHTTPClientTransport(new URL(gateway.url))))
          yield* Effect.promise(() =>
            client.callTool({
              name: "echo",
              arguments: { mode },
              _meta: { traceparent: `00-${traceId}-${clientSpan}-01` }
            })
          )
          yield* Effect.promise(() => client.close())
          const ours = spans.filter((s) => s.traceId === traceId)
          assert.isAbove(ours.length, 0, `the gateway's spans joined trace ${traceId}`)
          // The outermost of them is a child of the client's span.
          assert.isTrue(
            ours.some((s) => s.parent._tag === "Some" && s.parent.value.spanId === clientSpan),
            "a span whose parent is the downstream client's"
          )
          const sent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(
            String(upstream.receivedMeta("echo").at(-1)?.traceparent)
          )
          assert.isNotNull(sent)
          assert.strictEqual(sent![1], traceId)
          assert.isTrue(ours.some((s) => s.spanId === sent![2]), "the upstream's parent is a span of the gateway")
        }
      }).pipe(Effect.provide(live))
    }).pipe(Effect.scoped, Effect.provide(TestTracer.layer)))
})
