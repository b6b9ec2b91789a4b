/**
 * Processes that serve MCP for the bench (echo servers, `mcp-bridge serve`, the Node tools it is compared with), and
 * warm SDK v2 client sessions on them: shared by the `gateway` and `replicas` sections and the gateway profile.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { readFileSync } from "node:fs"
import { createServer } from "node:net"
import { createInterface } from "node:readline"

/** A running process serving MCP at `url`. */
export interface Served {
  readonly url: string
  readonly pid: number
  readonly close: () => Promise<void>
}

/** A free port on the loopback, for a tool that takes one on its command line. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as { port: number }).port
      probe.close(() => resolve(port))
    })
  })

/** Ends `child`: `SIGTERM`, then `SIGKILL` after 5 s. */
export const stop = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
  await exited
  clearTimeout(timer)
}

/**
 * Spawns `args` under this Node and resolves once a line of its output matches `ready`: its URL is `url` of the match
 * (by default group 1). Rejects when it exits first, or after 60 s.
 */
export const spawnServing = async (
  args: ReadonlyArray<string>,
  ready: RegExp,
  url: (match: RegExpMatchArray) => string = (match) => match[1]!
): Promise<Served> => {
  const child = spawn(process.execPath, [...args], { stdio: ["pipe", "pipe", "pipe"] })
  const seen: Array<string> = []
  const found = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready in 60 s: ${seen.slice(-5).join(" | ")}`)), 60_000)
    for (const input of [child.stdout!, child.stderr!]) {
      createInterface({ input }).on("line", (line) => {
        if (seen.length < 50) seen.push(line)
        const match = line.match(ready)
        if (match !== null) {
          clearTimeout(timer)
          resolve(url(match))
        }
      })
    }
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`exited (${code}) before serving: ${seen.slice(-5).join(" | ")}`))
    })
  })
  return { url: found, pid: child.pid!, close: () => stop(child) }
}

/** CPU time (user + system, ms) the process has used, from `/proc` (Linux; `NaN` elsewhere). */
export const cpuMillis = (pid: number): number => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    // utime and stime, in clock ticks of 10 ms (USER_HZ = 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return Number.NaN
  }
}

/** A warm SDK v2 client session. */
export interface Session {
  /** Calls `name` with `args`; `false` when the result is a tool error. */
  readonly call: (name: string, args: Record<string, unknown>) => Promise<boolean>
  readonly close: () => Promise<void>
}

/**
 * A warm SDK v2 client session on `url` (2025-era, or negotiating 2026-07-28), retried while the server finishes
 * starting (50 tries, 200 ms apart).
 */
export const openSession = async (url: string, era: "2025" | "2026" = "2025"): Promise<Session> => {
  let lastError: unknown
  for (let attempt = 0; attempt < 50; attempt++) {
    const client = new Client(
      { name: "mcp-bridge-bench", version: "0.1.0" },
      era === "2026" ? { versionNegotiation: { mode: "auto" } } : {}
    )
    const transport = new StreamableHTTPClientTransport(new URL(url))
    try {
      await client.connect(transport)
      return {
        call: async (name, args) =>
          (await client.callTool({ name, arguments: args }) as { isError?: boolean }).isError !== true,
        close: async () => {
          await transport.terminateSession().catch(() => undefined)
          await client.close().catch(() => undefined)
        }
      }
    } catch (error) {
      lastError = error
      await client.close().catch(() => undefined)
      await new Promise((r) => setTimeout(r, 200))
    }
  }
  throw lastError
}
