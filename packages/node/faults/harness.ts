/**
 * Shared machinery of the fault suite: child-process accounting, figures, bridges over real servers, time bounds.
 */
import { ConnectionPool, McpBridge } from "@mcp-bridge/core"
import { NodeTransport } from "@mcp-bridge/node"
import { FaultServer } from "@mcp-bridge/testing"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"

// -----------------------------------------------------------------------------
// Child processes
// -----------------------------------------------------------------------------

const parentOf = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ")"
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return fields[0] === "Z" ? undefined : Number(fields[1])
  } catch {
    return undefined
  }
}

/** Every live (non-zombie) descendant of this process. */
export const descendants = (root: number = process.pid): Array<number> => {
  const parents = new Map<number, number>()
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry)
    if (!Number.isInteger(pid)) continue
    const ppid = parentOf(pid)
    if (ppid !== undefined) parents.set(pid, ppid)
  }
  const out: Array<number> = []
  const frontier = [root]
  while (frontier.length > 0) {
    const parent = frontier.pop()!
    for (const [pid, ppid] of parents) {
      if (ppid === parent) {
        out.push(pid)
        frontier.push(pid)
      }
    }
  }
  return out
}

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return parentOf(pid) !== undefined
  } catch {
    return false
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Waits up to `timeoutMs` for every child process of this test process to be gone, and returns how many are left.
 * Those left are then ended (SIGCONT, SIGKILL: they are this process's own children), so that the next scenario
 * starts clean; the caller reports and asserts the count.
 */
export const processesLeft = async (timeoutMs = 5_000): Promise<number> => {
  const until = performance.now() + timeoutMs
  let left = descendants()
  while (left.length > 0 && performance.now() < until) {
    await sleep(50)
    left = descendants()
  }
  reap(left)
  return left.length
}

/** Ends the given processes of ours (a frozen one is continued first so that it can die). */
export const reap = (pids: ReadonlyArray<number>): void => {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGCONT")
      process.kill(pid, "SIGKILL")
    } catch {
      // gone already
    }
  }
}

// -----------------------------------------------------------------------------
// Figures
// -----------------------------------------------------------------------------

const figuresFile = join(process.cwd(), ".vitest", "faults.txt")

/** Prints a scenario's figure on one line, `FAULT <name>: <text>`, and keeps it for the suite's summary. */
export const figure = (name: string, text: string): void => {
  const line = `FAULT ${name}: ${text}`
  console.log(line)
  try {
    mkdirSync(join(process.cwd(), ".vitest"), { recursive: true })
    appendFileSync(figuresFile, line + "\n")
  } catch {
    // the summary is a convenience
  }
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`

export const now = (): number => performance.now()

// -----------------------------------------------------------------------------
// Servers and bridges
// -----------------------------------------------------------------------------

let scratch: string | undefined

/** A fresh path in this process's scratch directory. */
export const tempPath = (name: string): string => {
  if (scratch === undefined) scratch = mkdtempSync(join(tmpdir(), "mcp-bridge-faults-"))
  return join(scratch, `${name}-${Math.random().toString(36).slice(2, 8)}`)
}

/** An `mcpServers` entry running a fault server over stdio. */
export const stdio = (
  spec: FaultServer.FaultServerSpec,
  extra: { readonly bridge?: Record<string, unknown>; readonly env?: Record<string, string> } = {}
) => {
  const { args, command } = FaultServer.stdioCommand(spec)
  return {
    command,
    args: [...args],
    ...(extra.env === undefined ? {} : { env: extra.env }),
    ...(extra.bridge === undefined ? {} : { bridge: extra.bridge })
  }
}

/** The Effect API bridge over the Node transports (stdio, HTTP). */
export const bridgeLayer = (config: object, options: Omit<McpBridge.LayerOptions, "transport"> = {}) =>
  McpBridge.layer(config, { ...options, transport: NodeTransport.layer() })

/**
 * Runs `f` with a bridge built from `config` (and its connection pool, to read stats); the bridge and its child
 * processes are closed after.
 */
export const withBridge = <A, E>(
  config: object,
  f: (bridge: McpBridge.McpBridge["Service"], pool: ConnectionPool.ConnectionPool["Service"]) => Effect.Effect<A, E>,
  options: Omit<McpBridge.LayerOptions, "transport"> = {}
) =>
  Effect.gen(function*() {
    const bridge = yield* McpBridge.McpBridge
    const pool = yield* ConnectionPool.ConnectionPool
    return yield* f(bridge, pool)
  }).pipe(Effect.provide(Layer.fresh(bridgeLayer(config, options))))

let measured: number | undefined

/**
 * This machine's unit of time, measured once per test file: how long a fresh bridge takes to spawn a stdio fault
 * server, connect and answer one call. Time bounds are set in this unit (a deadline plus one connect, say), so that
 * they hold on a slow or loaded machine as on a fast one.
 */
export const connectMillis: Effect.Effect<number> = Effect.orDie(
  Effect.suspend(() =>
    measured !== undefined ? Effect.succeed(measured) : withBridge(
      { mcpServers: { unit: stdio({ tools: [{ name: "echo" }] }) } },
      (bridge) => Effect.map(timed(bridge.callTool("unit.echo", {})), ({ ms }) => (measured = ms))
    )
  )
)

/**
 * How long a call or a bridge's creation may take before a test calls it hung: five seconds, or four connects on a
 * machine where a connect takes longer.
 */
export const hangMillis: Effect.Effect<number> = Effect.map(connectMillis, (unit) => Math.max(5_000, 4 * unit))

/** A port on 127.0.0.1 where nothing listens now. */
export const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const probe = createServer()
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as { port: number }).port
      probe.close(() => resolve(port))
    })
  })

// -----------------------------------------------------------------------------
// Outcomes
// -----------------------------------------------------------------------------

/** The typed error of a failed exit, else the defect, else `"interrupted"`; `undefined` for a success. */
export const failureOf = (exit: Exit.Exit<unknown, unknown>): unknown => {
  if (Exit.isSuccess(exit)) return undefined
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isSome(error)) return error.value
  const die = exit.cause.reasons.find((r) => r._tag === "Die")
  return die !== undefined && die._tag === "Die" ? die.defect : "interrupted"
}

/** `Tag/ReasonTag` of an error (`"ok"` for none), to count outcomes. */
export const kindOf = (error: unknown): string => {
  if (error === undefined) return "ok"
  if (typeof error !== "object" || error === null) return `untyped(${typeof error}: ${String(error).slice(0, 60)})`
  const e = error as { _tag?: unknown; reason?: unknown; name?: unknown; message?: unknown }
  if (typeof e._tag !== "string") return `untyped(${String(e.name)}: ${String(e.message).slice(0, 60)})`
  const reason = e.reason as { _tag?: unknown } | string | undefined
  const reasonTag = typeof reason === "string" ? reason : reason?._tag
  return typeof reasonTag === "string" ? `${e._tag}/${reasonTag}` : e._tag
}

/** Counts of each outcome kind, e.g. `{ ok: 3, "McpSessionError/Closed": 2 }`, printed compactly. */
export const tally = (kinds: ReadonlyArray<string>): string => {
  const counts = new Map<string, number>()
  for (const k of kinds) counts.set(k, (counts.get(k) ?? 0) + 1)
  return [...counts].map(([k, n]) => `${n} ${k}`).join(", ")
}

export const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)

/** Times an effect: its exit and the milliseconds it took. */
export const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const start = now()
    return Effect.map(Effect.exit(effect), (exit) => ({ exit, ms: now() - start }))
  })

/** Rejects with a clear error when `promise` takes longer than `ms` (it is left running). */
export const within = <A>(ms: number, promise: Promise<A>, what = "operation"): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error) => {
        clearTimeout(timer)
        reject(error)
      }
    )
  })

/** The most timestamps in any window `[t, t + windowMs)`. */
export const slidingPeak = (times: ReadonlyArray<number>, windowMs: number): number => {
  const sorted = [...times].sort((a, b) => a - b)
  let peak = 0
  let start = 0
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++
    peak = Math.max(peak, end - start + 1)
  }
  return peak
}

/** The `__stats` answer of a fault server, through the bridge. */
export const statsOf = (structured: unknown) =>
  structured as {
    readonly pid: number
    readonly calls: Record<string, number>
    readonly callTimes: Record<string, Array<number>>
    readonly inFlight: number
  }

/** The pid a fault server's normal answer names. */
export const pidOf = (structured: unknown): number => (structured as { readonly pid: number }).pid
