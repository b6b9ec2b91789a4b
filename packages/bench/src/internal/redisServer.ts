/**
 * A redis-server of the bench's own on a free loopback port (no persistence), stopped with the section, and what
 * Redis itself says it ran: `redis-cli MONITOR` read line by line, each command with the client that sent it (an
 * address, or `lua` for a command a script ran).
 *
 * Waits on the server's own "Ready to accept connections" line, never on time.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { createInterface } from "node:readline"

/** A running redis-server. */
export interface RedisServer {
  readonly url: string
  readonly port: number
  readonly stop: () => Promise<void>
}

/** A free TCP port on 127.0.0.1. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as { port: number }).port
      probe.close(() => resolve(port))
    })
  })

const exited = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once("exit", () => resolve())
  })

/** Starts redis-server (from `PATH`) on a free loopback port. */
export const startRedis = async (): Promise<RedisServer> => {
  const port = await freePort()
  const child = spawn("redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no"
  ], { stdio: ["ignore", "pipe", "pipe"] })
  await new Promise<void>((resolve, reject) => {
    let out = ""
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes("Ready to accept connections")) {
        child.stdout!.off("data", onData)
        child.stdout!.resume()
        resolve()
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.resume()
    child.once("error", (error) => reject(new Error(`redis-server did not start (is it installed?): ${error.message}`)))
    child.once("exit", (code) => reject(new Error(`redis-server exited (${code}) before it was ready: ${out}`)))
  })
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      child.kill("SIGKILL")
      await exited(child)
    }
  }
}

/** One command as MONITOR shows it. */
export interface Monitored {
  /** `lua` for a command run by a script, else the sending client's address */
  readonly client: string
  readonly command: string
  readonly args: ReadonlyArray<string>
}

const parseMonitorLine = (line: string): Monitored | undefined => {
  const match = /^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line)
  if (match === null) return undefined
  const words: Array<string> = []
  const re = /"((?:[^"\\]|\\.)*)"/g
  for (let m = re.exec(match[2]!); m !== null; m = re.exec(match[2]!)) words.push(m[1]!)
  if (words.length === 0) return undefined
  return { client: match[1]!, command: words[0]!.toUpperCase(), args: words.slice(1) }
}

/** A `redis-cli MONITOR` on `port`: every command Redis runs from now on, until `stop`. */
export const monitor = async (port: number): Promise<{
  readonly seen: Array<Monitored>
  /** resolves once MONITOR has printed a command whose arguments include `marker` */
  readonly waitFor: (marker: string) => Promise<void>
  readonly stop: () => Promise<void>
}> => {
  const child = spawn("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "monitor"], {
    stdio: ["ignore", "pipe", "ignore"]
  })
  const seen: Array<Monitored> = []
  const waiting: Array<{ marker: string; resolve: () => void }> = []
  const lines = createInterface({ input: child.stdout! })
  const ready = new Promise<void>((resolve) => lines.once("line", () => resolve()))
  lines.on("line", (line) => {
    const parsed = parseMonitorLine(line)
    if (parsed === undefined) return
    seen.push(parsed)
    for (let i = waiting.length - 1; i >= 0; i--) {
      if (parsed.args.includes(waiting[i]!.marker)) waiting.splice(i, 1)[0]!.resolve()
    }
  })
  await ready
  return {
    seen,
    waitFor: (marker) =>
      seen.some((m) => m.args.includes(marker))
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiting.push({ marker, resolve })),
    stop: async () => {
      child.kill("SIGTERM")
      await exited(child)
    }
  }
}
