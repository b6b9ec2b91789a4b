/**
 * Shared fixtures for the stage tests: a decoded config over in-memory servers, a `CallRequest` for a tool on one of
 * them, and the canned tool results the scripted upstreams answer with.
 */
import { BridgeConfig, type McpBridge, MetricsRecorder, ToolPolicy } from "@mcp-bridge/core"
import type { ToolCaller } from "@mcp-bridge/core"
import { TestBridge, type TestServer } from "@mcp-bridge/testing"
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Effect, Fiber, type Metric } from "effect"
import { TestClock } from "effect/testing"

/** A successful tool result with the text "ok". */
export const ok: CallToolResult = { content: [{ type: "text", text: "ok" }] }

/** A tool-level error result (`isError: true`). */
export const toolError: CallToolResult = { content: [{ type: "text", text: "no such record" }], isError: true }

/** Decodes a config with one in-memory server per entry, each with the given `bridge` settings. */
export const configOf = (servers: Record<string, Record<string, unknown>>) =>
  BridgeConfig.decode({
    mcpServers: Object.fromEntries(Object.entries(servers).map(([name, bridge]) => [name, { type: "memory", bridge }]))
  })

/** The request the bridge would build for `tool` on `server` of `config`, with its resolved policy. */
export const requestOf = (
  config: BridgeConfig.BridgeConfig.Service,
  server: string,
  tool: string,
  args: Record<string, unknown> = {}
): ToolCaller.CallRequest => {
  const resolved = config.servers.get(server)!
  return {
    server: resolved,
    tool,
    arguments: args,
    definition: undefined,
    policy: ToolPolicy.resolve(resolved, tool),
    identity: undefined,
    timeout: resolved.timeout,
    // No overall deadline: each attempt has its `timeout`.
    deadlineAt: Number.MAX_SAFE_INTEGER,
    deadlineMillis: Number.MAX_SAFE_INTEGER,
    meta: undefined
  }
}

/** The text of a tool result's first content block. */
export const text = (result: { readonly content: ReadonlyArray<unknown> }) =>
  (result.content[0] as { text: string }).text

/**
 * Waits until `predicate` holds on `server`, re-checked at each change of the server's state (a call arriving, ending,
 * cancelled...): an event from the server, never a sleep, so that it is honest under `TestClock` too.
 */
export const until = (
  server: { readonly until: TestServer.TestServer["until"] },
  predicate: () => boolean
): Effect.Effect<void> => Effect.promise(() => server.until(predicate))

/** The sum of the counter series `id` whose attributes include `attributes`, 0 if none was recorded. */
export const counterValue = (
  snapshot: ReadonlyArray<Metric.Metric.Snapshot>,
  id: string,
  attributes: Record<string, string> = {}
): number =>
  snapshot.filter((s) => s.id === id && Object.entries(attributes).every(([k, v]) => s.attributes?.[k] === v)).reduce(
    (n, s) => n + Number((s.state as Metric.CounterState<number>).count),
    0
  )

/** The bridge's metric series now, from its own recorder (each bridge has its own registry). */
export const recorded = MetricsRecorder.MetricsRecorder.useSync((recorder) => recorder.snapshot())

/**
 * Lets every call of `tool` (a `hold: true` tool) through as it arrives, until `total` calls have been made and none
 * is in flight: for tests that hold calls at the server to see how many are there at once.
 */
export const drain = (
  server: Pick<TestServer.TestServer, "until" | "release" | "held" | "calls" | "inFlight">,
  tool: string,
  total: number
): Effect.Effect<void> =>
  Effect.gen(function*() {
    while (server.calls(tool) < total || server.held(tool) > 0 || server.inFlight() > 0) {
      server.release(tool)
      yield* until(server, () => server.held(tool) > 0 || server.calls(tool) >= total && server.inFlight() === 0)
    }
  })

/**
 * On server `alpha` (tools `echo`, `fails`, `hang`): three successes, two tool errors, and a call that times out after
 * 2 seconds on the TestClock. Returns the timeout's error.
 */
export const workload = (bridge: McpBridge.McpBridge.Service) =>
  Effect.gen(function*() {
    const alpha = (yield* TestBridge.TestServers).alpha!
    yield* bridge.callTool("alpha.echo", { n: 1 })
    yield* bridge.callTool("alpha.echo", { n: 2 })
    yield* bridge.callTool("alpha.echo", { n: 3 })
    yield* bridge.callTool("alpha.fails", {})
    yield* bridge.callTool("alpha.fails", {})
    const hung = yield* bridge.callTool("alpha.hang", {}, { timeout: "2 seconds" }).pipe(Effect.flip, Effect.forkChild)
    yield* until(alpha, () => alpha.inFlight() === 1)
    yield* TestClock.adjust("2 seconds")
    return yield* Fiber.join(hung)
  })
