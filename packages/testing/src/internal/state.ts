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
  /** `notifications/roots/list_changed` received */
  rootsListChanged: number
  /** calls seen so far per "flaky" tool */
  readonly flaky: Map<string, number>
  /** echo tools added at runtime by the "addTool" respond kind; every later instance registers them too */
  readonly addedTools: Array<string>
  /** long-lived (per-session) instances, so a runtime addTool reaches every open session */
  readonly live: Set<McpServer>
  /** extra listeners told about runtime tool-list changes (e.g. the modern HTTP handler's notifier) */
  readonly toolsChangedListeners: Set<() => void>
  /** resources and prompts added at runtime ("addResource", "addPrompt"); every later instance registers them too */
  readonly addedResources: Array<{ readonly uri: string; readonly name: string; readonly text: string }>
  readonly addedPrompts: Array<{ readonly name: string; readonly text: string }>
  /** extra listeners told about other runtime changes (the modern HTTP handler's notifier) */
  readonly notifyListeners: Set<(event: Notify) => void>
  /** resource subscriptions open now: `resources/subscribe` of 2025-era sessions, by URI */
  readonly subscriptions: Map<string, number>
  /** calls of `hold: true` tools waiting to be released, by tool name, in arrival order */
  readonly held: Map<string, Array<() => void>>
  /** told about every change of the state above (and of the sessions), for `until` */
  readonly changeListeners: Set<() => void>
}

/** A runtime change the serving entries announce (besides tool-list changes). */
export type Notify =
  | { readonly kind: "resources" }
  | { readonly kind: "prompts" }
  | { readonly kind: "resourceUpdated"; readonly uri: string }

export const makeState = (spec: TestServerSpec): ServerState => ({
  spec,
  calls: new Map(),
  metas: [],
  inFlight: 0,
  peakInFlight: 0,
  cancelled: 0,
  rootsListChanged: 0,
  flaky: new Map(),
  addedTools: [],
  live: new Set(),
  toolsChangedListeners: new Set(),
  addedResources: [],
  addedPrompts: [],
  notifyListeners: new Set(),
  subscriptions: new Map(),
  held: new Map(),
  changeListeners: new Set()
})

/** Tells every `until` waiter that the state changed. */
export const changed = (state: ServerState): void => {
  for (const listener of Array.from(state.changeListeners)) listener()
}

/**
 * Resolves once `predicate` holds, checked now and after every change of the server's state (a call arriving,
 * ending, cancelled or held, a session opening or closing): an event, never a poll. Rejects after `timeoutMs` (a
 * bound, so that a test that waits for something that never happens fails instead of hanging).
 */
export const until = (state: ServerState, predicate: () => boolean, timeoutMs = 10_000): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    if (predicate()) return resolve()
    const check = () => {
      if (!predicate()) return
      cleanup()
      resolve()
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`TestServer.until: the condition did not hold within ${timeoutMs} ms`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      state.changeListeners.delete(check)
    }
    state.changeListeners.add(check)
  })

/** Calls of `tool` (all tools if omitted) waiting at their hold now. */
export const heldCalls = (state: ServerState, tool?: string): number => {
  if (tool !== undefined) return state.held.get(tool)?.length ?? 0
  let total = 0
  for (const waiting of state.held.values()) total += waiting.length
  return total
}

/** Lets `count` (default: all) of the calls of `tool` (all tools if omitted) waiting at their hold go on, oldest first. */
export const release = (state: ServerState, tool?: string, count = Number.POSITIVE_INFINITY): number => {
  let released = 0
  for (const [name, waiting] of state.held) {
    if (tool !== undefined && name !== tool) continue
    while (waiting.length > 0 && released < count) {
      waiting.shift()!()
      released++
    }
  }
  if (released > 0) changed(state)
  return released
}

export const recordCall = (state: ServerState, tool: string, meta?: Readonly<Record<string, unknown>>): void => {
  state.calls.set(tool, (state.calls.get(tool) ?? 0) + 1)
  state.metas.push({ tool, meta: meta ?? {} })
  // Bounded, so that a long benchmark run does not grow without end (trimmed in chunks: O(1) amortized per call).
  if (state.metas.length >= 20_000) state.metas.splice(0, state.metas.length - 10_000)
  changed(state)
}

export const receivedMeta = (state: ServerState, tool?: string): ReadonlyArray<Readonly<Record<string, unknown>>> =>
  state.metas.filter((m) => tool === undefined || m.tool === tool).map((m) => m.meta)

export const countCalls = (state: ServerState, tool?: string): number => {
  if (tool !== undefined) return state.calls.get(tool) ?? 0
  let total = 0
  for (const n of state.calls.values()) total += n
  return total
}

/** What every kind of test server reports of its state (`TestServer`, `HttpTestServer`). */
export const observe = (state: ServerState) => ({
  calls: (tool?: string) => countCalls(state, tool),
  receivedMeta: (tool?: string) => receivedMeta(state, tool),
  inFlight: () => state.inFlight,
  peakInFlight: () => state.peakInFlight,
  cancelled: () => state.cancelled,
  held: (tool?: string) => heldCalls(state, tool),
  release: (tool?: string, count?: number) => release(state, tool, count),
  until: (predicate: () => boolean, timeoutMs?: number) => until(state, predicate, timeoutMs),
  rootsListChanged: () => state.rootsListChanged,
  subscriptions: (uri?: string) => {
    if (uri !== undefined) return state.subscriptions.get(uri) ?? 0
    let total = 0
    for (const n of state.subscriptions.values()) total += n
    return total
  }
})
