import { fromJsonSchema, McpServer } from "@modelcontextprotocol/server"
import type { CallToolResult, InputRequiredResult, JsonSchemaType, ServerContext } from "@modelcontextprotocol/server"
import { interact } from "./interact.ts"
import type { Respond, TestTool } from "./spec.ts"
import { changed, recordCall } from "./state.ts"
import type { ServerState } from "./state.ts"
import { addPrompt, addResource, capabilitiesOf, registerSurface, updateResource } from "./surface.ts"

/** The name of the built-in statistics tool every test server exposes. */
export const STATS_TOOL = "__stats"

/** How one McpServer instance reaches the world around it (which depends on how it is served). */
export interface InstanceHooks {
  /** increments and returns the "counter" state this instance sees (per session, or per principal over HTTP) */
  readonly counter: () => number
  /** the "crash" respond kind: kill the process / the HTTP server / the in-memory transport */
  readonly crash: (exitCode: number | undefined) => void
  /** open sessions, reported by `__stats` */
  readonly sessions: () => number
  /** whether this instance lives for a whole session (so a runtime addTool must reach it) */
  readonly longLived: boolean
}

type Args = Record<string, unknown>

const objectSchema = (schema: Record<string, unknown> | undefined) =>
  fromJsonSchema<Args>((schema ?? { type: "object" }) as JsonSchemaType)

const text = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }] })

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const json = (value: unknown): CallToolResult =>
  isRecord(value)
    ? { content: [{ type: "text", text: JSON.stringify(value) }], structuredContent: value }
    : text(JSON.stringify(value))

const echo = (args: Args, ctx: ServerContext): CallToolResult => ({
  content: [{ type: "text", text: JSON.stringify(args) }],
  structuredContent: { arguments: args, meta: ctx.mcpReq._meta ?? {} }
})

const abortError = (signal: AbortSignal): unknown => signal.reason ?? new Error("aborted")

/** Resolves after `ms`, or rejects as soon as `signal` aborts (the timer never outlives the request). */
const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal))
    const onAbort = () => {
      clearTimeout(timer)
      reject(abortError(signal))
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort)
      resolve()
    }, ms)
    signal.addEventListener("abort", onAbort, { once: true })
  })

/** Waits until the test releases this call (`release`), or rejects as soon as `signal` aborts. */
const hold = (state: ServerState, tool: string, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal))
    let waiting = state.held.get(tool)
    if (waiting === undefined) state.held.set(tool, waiting = [])
    const queue = waiting
    const go = () => {
      signal.removeEventListener("abort", onAbort)
      resolve()
    }
    const onAbort = () => {
      const i = queue.indexOf(go)
      if (i >= 0) queue.splice(i, 1)
      reject(abortError(signal))
    }
    signal.addEventListener("abort", onAbort, { once: true })
    queue.push(go)
    changed(state)
  })

/** Never settles unless `signal` aborts. Holds no handle, so it keeps no process alive. */
const never = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => {
    if (signal.aborted) return reject(abortError(signal))
    signal.addEventListener("abort", () => reject(abortError(signal)), { once: true })
  })

const registerEcho = (server: McpServer, name: string): void => {
  server.registerTool(
    name,
    { description: `echo tool added at runtime: ${name}`, inputSchema: objectSchema(undefined) },
    async (args, ctx) => echo(args, ctx)
  )
}

const addTool = (state: ServerState, name: string): void => {
  if (name === STATS_TOOL || state.addedTools.includes(name) || state.spec.tools.some((t) => t.name === name)) return
  state.addedTools.push(name)
  // registerTool on a connected McpServer makes the SDK send notifications/tools/list_changed
  for (const server of state.live) registerEcho(server, name)
  for (const listener of state.toolsChangedListeners) listener()
  changed(state)
}

const respond = async (
  state: ServerState,
  hooks: InstanceHooks,
  server: McpServer,
  tool: TestTool,
  respond: Respond,
  args: Args,
  ctx: ServerContext
): Promise<CallToolResult | InputRequiredResult> => {
  switch (respond.kind) {
    case "echo":
      return echo(args, ctx)
    case "text":
      return text(respond.text)
    case "json":
      return json(respond.value)
    case "filter": {
      const wanted = args[respond.field]
      const items = wanted === undefined
        ? respond.items
        : respond.items.filter((item) => item[respond.field] === wanted)
      return json({ items, count: items.length })
    }
    case "isError":
      return { ...text(respond.message), isError: true }
    case "payload":
      return text("x".repeat(Math.max(0, respond.bytes)))
    case "counter":
      return text(String(hooks.counter()))
    case "crash":
      hooks.crash(respond.exitCode)
      return never(ctx.mcpReq.signal)
    case "hang":
      return never(ctx.mcpReq.signal)
    case "flaky": {
      const n = (state.flaky.get(tool.name) ?? 0) + 1
      state.flaky.set(tool.name, n)
      return n <= respond.failures ? { ...text(`flaky failure ${n}`), isError: true } : echo(args, ctx)
    }
    case "addTool":
      addTool(state, respond.name)
      return text("added")
    case "addResource":
      addResource(state, { uri: respond.uri, name: respond.name, text: respond.text ?? "added" })
      return text("added")
    case "addPrompt":
      addPrompt(state, { name: respond.name, text: respond.text ?? "added" })
      return text("added")
    case "updateResource":
      updateResource(state, respond.uri)
      return text("updated")
    case "elicit":
    case "elicitUrl":
    case "sample":
    case "roots":
    case "progress":
    case "log":
    case "capabilities":
      return interact(server, respond, ctx)
  }
}

const delayFor = (tool: TestTool): number =>
  (tool.latencyMs ?? 0) + (tool.jitterMs !== undefined && tool.jitterMs > 0 ? Math.random() * tool.jitterMs : 0)

/**
 * Builds one McpServer instance serving `state.spec` (plus `__stats` and any tools added at runtime). Every
 * serving entry (serveStdio, createMcpHandler, a stateful legacy HTTP session, plain connect) calls this.
 */
export const buildServer = (state: ServerState, hooks: InstanceHooks): McpServer => {
  const { spec } = state
  const server = new McpServer(
    { name: spec.name ?? "test-server", version: spec.version ?? "1.0.0" },
    {
      capabilities: {
        tools: { listChanged: true },
        ...capabilitiesOf(spec),
        ...(spec.tools.some((tool) => tool.respond.kind === "log") ? { logging: {} } : {})
      },
      ...(spec.toolsListCacheHint !== undefined ? { cacheHints: { "tools/list": { ...spec.toolsListCacheHint } } } : {})
    }
  )
  for (const tool of spec.tools) {
    server.registerTool(
      tool.name,
      {
        ...(tool.description !== undefined ? { description: tool.description } : {}),
        ...(tool.annotations !== undefined ? { annotations: tool.annotations } : {}),
        inputSchema: objectSchema(tool.inputSchema)
      },
      async (args, ctx) => {
        recordCall(state, tool.name, ctx.mcpReq._meta as Readonly<Record<string, unknown>> | undefined)
        state.inFlight++
        state.peakInFlight = Math.max(state.peakInFlight, state.inFlight)
        const signal = ctx.mcpReq.signal
        const onAbort = () => {
          state.cancelled++
          changed(state)
        }
        signal.addEventListener("abort", onAbort, { once: true })
        changed(state)
        try {
          const ms = delayFor(tool)
          if (ms > 0) await sleep(ms, signal)
          if (tool.hold === true) await hold(state, tool.name, signal)
          return await respond(state, hooks, server, tool, tool.respond, args, ctx)
        } finally {
          state.inFlight--
          signal.removeEventListener("abort", onAbort)
          changed(state)
        }
      }
    )
  }
  for (const name of state.addedTools) registerEcho(server, name)
  registerSurface(state, server)
  server.registerTool(
    STATS_TOOL,
    {
      description: "Statistics of this test server: upstream calls per tool, process id, open sessions",
      annotations: { readOnlyHint: true },
      inputSchema: objectSchema(undefined)
    },
    async () =>
      json({
        calls: Object.fromEntries(state.calls),
        pid: process.pid,
        sessions: hooks.sessions(),
        inFlight: state.inFlight,
        cancelled: state.cancelled,
        rootsListChanged: state.rootsListChanged
      })
  )
  // Clients of the 2025 era say when their roots change.
  server.server.setNotificationHandler("notifications/roots/list_changed", () => {
    state.rootsListChanged++
    changed(state)
  })
  if (hooks.longLived) {
    state.live.add(server)
    const previous = server.server.onclose
    server.server.onclose = () => {
      state.live.delete(server)
      previous?.()
    }
  }
  return server
}

/** A fresh per-instance counter for the "counter" respond kind. */
export const instanceCounter = (): () => number => {
  let n = 0
  return () => ++n
}
