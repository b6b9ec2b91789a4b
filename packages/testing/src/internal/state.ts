import type { McpServer } from "@modelcontextprotocol/server"
import type { TestServerSpec } from "./spec.ts"

/**
 * State shared by every session of one test server: one stdio process, one HTTP server, or one in-memory
 * `TestServer` object. Per-session state (the "counter" respond kind) lives on each McpServer instance instead.
 */
export interface ServerState {
  readonly spec: TestServerSpec
  /** upstream tool calls per tool name (the built-in `__stats` tool is not counted) */
  readonly calls: Map<string, number>
  /** the request `_meta` of (at least) the last 10 000 tool calls received, in order (e.g. W3C `traceparent`) */
  readonly metas: Array<{ readonly tool: string; readonly meta: Readonly<Record<string, unknown>> }>
  /** tool calls running now */
  inFlight: number
  /** the most tool calls that ran at once */
  peakInFlight: number
  /** tool calls whose request was cancelled by the client (its abort signal fired) */
  cancelled: number
  /** calls seen so far per "flaky" tool */
  readonly flaky: Map<string, number>
  /** echo tools added at runtime by the "addTool" respond kind; every later instance registers them too */
  readonly addedTools: Array<string>
  /** long-lived (per-session) instances, so a runtime addTool reaches every open session */
  readonly live: Set<McpServer>
  /** extra listeners told about runtime tool-list changes (e.g. the modern HTTP handler's notifier) */
  readonly toolsChangedListeners: Set<() => void>
}

export const makeState = (spec: TestServerSpec): ServerState => ({
  spec,
  calls: new Map(),
  metas: [],
  inFlight: 0,
  peakInFlight: 0,
  cancelled: 0,
  flaky: new Map(),
  addedTools: [],
  live: new Set(),
  toolsChangedListeners: new Set()
})

export const recordCall = (state: ServerState, tool: string, meta?: Readonly<Record<string, unknown>>): void => {
  state.calls.set(tool, (state.calls.get(tool) ?? 0) + 1)
  state.metas.push({ tool, meta: meta ?? {} })
  // Bounded, so that a long benchmark run does not grow without end (trimmed in chunks: O(1) amortized per call).
  if (state.metas.length >= 20_000) state.metas.splice(0, state.metas.length - 10_000)
}

export const receivedMeta = (state: ServerState, tool?: string): ReadonlyArray<Readonly<Record<string, unknown>>> =>
  state.metas.filter((m) => tool === undefined || m.tool === tool).map((m) => m.meta)

export const countCalls = (state: ServerState, tool?: string): number => {
  if (tool !== undefined) return state.calls.get(tool) ?? 0
  let total = 0
  for (const n of state.calls.values()) total += n
  return total
}
