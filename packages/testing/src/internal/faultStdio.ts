/**
 * The stdio fault server's process: an SDK `McpServer` (dual-era, through `serveStdio`) over a hand-written stdio
 * transport, which frames lines itself so that faults can write raw bytes on stdout (garbage, half lines, wrong ids)
 * in order with the normal answers.
 */
import { fromJsonSchema, McpServer } from "@modelcontextprotocol/server"
import type {
  CallToolResult,
  JSONRPCMessage,
  JsonSchemaType,
  ServerContext,
  Transport
} from "@modelcontextprotocol/server"
import { serveStdio } from "@modelcontextprotocol/server/stdio"
import { appendFileSync, readFileSync } from "node:fs"
import type { Fault, FaultServerSpec, FaultTool, StderrEcho } from "../FaultServer.ts"

type Args = Record<string, unknown>
type RequestId = string | number

const STATS_TOOL = "__stats"

const log = (spec: FaultServerSpec, line: string) => {
  if (spec.pidLog !== undefined) appendFileSync(spec.pidLog, `${line}\n`)
}

const echoText = (echo: StderrEcho): string => {
  let text = echo.text ?? ""
  for (const name of echo.env ?? []) text += `${name}=${process.env[name] ?? ""}`
  return text + ".".repeat(Math.max(0, echo.padBytes ?? 0)) + "\n"
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener("abort", onAbort, { once: true })
  })

/** Never settles unless `signal` aborts; holds no handle, so it keeps no process alive. */
const never = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => {
    signal.addEventListener("abort", () => reject(signal.reason), { once: true })
  })

/**
 * Line-framed JSON-RPC over this process's stdin/stdout. Outgoing lines go through one ordered queue, so that a
 * half line written now and completed later keeps every later answer behind it.
 */
class FaultWire implements Transport {
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  onmessage?: (<T extends JSONRPCMessage>(message: T) => void) | undefined
  /** answers to rewrite, by the id of their request */
  readonly answerFaults = new Map<RequestId, Fault>()
  private buffer: Buffer = Buffer.alloc(0)
  private queue: Promise<void> = Promise.resolve()
  private readonly mute: boolean

  constructor(mute: boolean) {
    this.mute = mute
  }

  start(): Promise<void> {
    process.stdin.on("data", (chunk: Buffer) => {
      if (this.mute) return
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
      for (;;) {
        const index = this.buffer.indexOf(10)
        if (index === -1) break
        const line = this.buffer.toString("utf8", 0, index).replace(/\r$/, "")
        this.buffer = this.buffer.subarray(index + 1)
        if (line.trim() === "") continue
        let message: JSONRPCMessage
        try {
          message = JSON.parse(line) as JSONRPCMessage
        } catch (error) {
          this.onerror?.(error as Error)
          continue
        }
        this.onmessage?.(message)
      }
    })
    return Promise.resolve()
  }

  /** Writes raw text on stdout, in order with the answers. */
  write(text: string): Promise<void> {
    this.queue = this.queue.then(() =>
      new Promise<void>((resolve) => {
        if (process.stdout.write(text)) resolve()
        else process.stdout.once("drain", () => resolve())
      })
    )
    return this.queue
  }

  /** Holds every later write for `ms`. */
  pause(ms: number): void {
    this.queue = this.queue.then(() => sleep(ms))
  }

  send(message: JSONRPCMessage): Promise<void> {
    const id = "id" in message && ("result" in message || "error" in message) ? message.id as RequestId : undefined
    const fault = id === undefined ? undefined : this.answerFaults.get(id)
    if (id !== undefined) this.answerFaults.delete(id)
    if (fault?.kind === "wrongId") {
      const wrong = typeof id === "number" ? id + 1_000_000 : `${String(id)}-wrong`
      return this.write(JSON.stringify({ ...message, id: wrong }) + "\n")
    }
    const line = JSON.stringify(message) + "\n"
    if (fault?.kind === "halfLine") {
      const half = Math.floor(line.length / 2)
      const sent = this.write(line.slice(0, half))
      if (fault.restAfterMs === undefined) return sent
      this.pause(fault.restAfterMs)
      return this.write(line.slice(half))
    }
    return this.write(line)
  }

  close(): Promise<void> {
    this.onclose?.()
    return Promise.resolve()
  }
}

interface State {
  readonly spec: FaultServerSpec
  readonly wire: FaultWire
  readonly calls: Map<string, number>
  readonly callTimes: Map<string, Array<number>>
  inFlight: number
  /** calls waiting to crash the process once enough calls are in flight */
  readonly crashers: Array<{ readonly whenInFlight: number; readonly exitCode: number }>
}

const readControl = (spec: FaultServerSpec): Record<string, Fault | null> => {
  if (spec.control === undefined) return {}
  try {
    return JSON.parse(readFileSync(spec.control, "utf8")) as Record<string, Fault | null>
  } catch {
    return {}
  }
}

const faultOf = (state: State, tool: FaultTool, call: number, args: Args): Fault | undefined => {
  const perCall = args.__fault
  if (typeof perCall === "object" && perCall !== null) return perCall as Fault
  const control = readControl(state.spec)
  if (tool.name in control) return control[tool.name] ?? undefined
  if (tool.faultOn !== undefined && !tool.faultOn.includes(call)) return undefined
  return tool.fault
}

const exit = (code: number): never => process.exit(code)

const checkCrashers = (state: State) => {
  for (const crasher of state.crashers) {
    if (state.inFlight >= crasher.whenInFlight) exit(crasher.exitCode)
  }
}

const json = (value: Record<string, unknown>): CallToolResult => ({
  content: [{ type: "text", text: JSON.stringify(value) }],
  structuredContent: value
})

const answer = async (
  state: State,
  tool: FaultTool,
  call: number,
  args: Args,
  ctx: ServerContext
): Promise<CallToolResult> => {
  const fault = faultOf(state, tool, call, args)
  const signal = ctx.mcpReq.signal
  if (tool.latencyMs !== undefined && tool.latencyMs > 0) await sleep(tool.latencyMs, signal)
  const { __fault: _, ...plain } = args
  const normal = () => json({ tool: tool.name, pid: process.pid, call, arguments: plain })
  if (fault === undefined) return normal()
  switch (fault.kind) {
    case "crash": {
      const exitCode = fault.exitCode ?? 1
      if (fault.whenInFlight !== undefined) {
        state.crashers.push({ whenInFlight: fault.whenInFlight, exitCode })
        checkCrashers(state)
        return never(signal)
      }
      if (fault.afterMs !== undefined) await sleep(fault.afterMs)
      return exit(exitCode)
    }
    case "hang":
      return never(signal)
    case "garbage":
      await state.wire.write(`${fault.line ?? "this is not JSON-RPC"}\n`)
      return normal()
    case "halfLine":
    case "wrongId":
      state.wire.answerFaults.set(ctx.mcpReq.id, fault)
      return normal()
    case "oversized":
      return { content: [{ type: "text", text: "x".repeat(Math.max(0, fault.bytes)) }] }
    case "stderr": {
      const text = echoText(fault)
      await new Promise<void>((resolve) => process.stderr.write(text, () => resolve()))
      if (fault.exitCode !== undefined) return exit(fault.exitCode)
      return normal()
    }
  }
}

const buildServer = (state: State): McpServer => {
  const server = new McpServer(
    { name: state.spec.name ?? "fault-server", version: "1.0.0" },
    { capabilities: { tools: {} } }
  )
  const inputSchema = fromJsonSchema<Args>({ type: "object" } as JsonSchemaType)
  for (const tool of state.spec.tools) {
    server.registerTool(
      tool.name,
      {
        ...(tool.description !== undefined ? { description: tool.description } : {}),
        ...(tool.annotations !== undefined ? { annotations: { ...tool.annotations } } : {}),
        inputSchema
      },
      async (args, ctx) => {
        const call = (state.calls.get(tool.name) ?? 0) + 1
        state.calls.set(tool.name, call)
        const times = state.callTimes.get(tool.name) ?? []
        times.push(Date.now())
        state.callTimes.set(tool.name, times)
        state.inFlight++
        checkCrashers(state)
        try {
          return await answer(state, tool, call, args, ctx)
        } finally {
          state.inFlight--
        }
      }
    )
  }
  server.registerTool(
    STATS_TOOL,
    { description: "pid, calls and call times of this process", annotations: { readOnlyHint: true }, inputSchema },
    async () =>
      json({
        pid: process.pid,
        calls: Object.fromEntries(state.calls),
        callTimes: Object.fromEntries(state.callTimes),
        inFlight: state.inFlight
      })
  )
  return server
}

/** Runs the fault server of `spec` on this process's stdio (the entry has logged its start already). */
export const run = async (spec: FaultServerSpec): Promise<void> => {
  process.on("exit", (code) => log(spec, `exit ${process.pid} ${code}`))
  // The client going away (stdin EOF) ends the process, even with hanging calls pending.
  process.stdin.once("end", () => exit(0))
  process.stdin.once("close", () => exit(0))
  process.on("SIGTERM", () => exit(143))

  if (spec.startup !== undefined) {
    const text = echoText(spec.startup)
    await new Promise<void>((resolve) => process.stderr.write(text, () => resolve()))
    if (spec.startup.exitCode !== undefined) exit(spec.startup.exitCode)
  }
  const wire = new FaultWire(spec.handshake === "never")
  const state: State = { spec, wire, calls: new Map(), callTimes: new Map(), inFlight: 0, crashers: [] }
  if (spec.handshake === "never") {
    await wire.start()
    return
  }
  serveStdio(() => buildServer(state), {
    transport: wire,
    onerror: (error) => process.stderr.write(`fault server: ${error.message}\n`)
  })
}
