/**
 * A `redis-server` of a test's own (or a benchmark's) on a free loopback port, without persistence, with the faults
 * tests inject (pause, resume, kill, restart on the same port), and a `redis-cli MONITOR` to see what Redis itself ran.
 * It waits on the server's own "Ready to accept connections" line, never on time. `redis-server` and `redis-cli` come
 * from `PATH` (Debian's `redis-server` package).
 *
 * @since 0.1.0
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { createInterface } from "node:readline"

/**
 * A running `redis-server`.
 *
 * @since 0.1.0
 */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered. */
  readonly pause: () => void
  /** Thaws a paused server (SIGCONT). */
  readonly resume: () => void
  /** Kills the server (SIGKILL): what it held is gone. */
  readonly kill: () => Promise<void>
  /** Starts a new, empty server on the same port (after `kill`). */
  readonly restart: () => Promise<void>
  /** Ends the server, paused or not. */
  readonly stop: () => Promise<void>
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const launch = (port: number) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "no"
    ], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes("Ready to accept connections")) {
        child.stdout!.off("data", onData)
        child.stdout!.resume()
        resolve(child)
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.resume()
    child.once("error", (error) => reject(new Error(`redis-server did not start (is it installed?): ${error.message}`)))
    child.once("exit", (code) => reject(new Error(`redis-server exited (${code}) before it was ready: ${out}`)))
  })

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once("exit", () => resolve())
  })

/**
 * Starts `redis-server` on a free loopback port.
 *
 * @since 0.1.0
 */
export const start = async (): Promise<RedisServer> => {
  const port = await freePort()
  let child = await launch(port)
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pause: () => void child.kill("SIGSTOP"),
    resume: () => void child.kill("SIGCONT"),
    kill: async () => {
      child.kill("SIGKILL")
      await exited(child)
    },
    restart: async () => {
      child = await launch(port)
    },
    stop: async () => {
      child.kill("SIGCONT")
      child.kill("SIGKILL")
      await exited(child)
    }
  }
}

/**
 * One command as `MONITOR` shows it.
 *
 * @since 0.1.0
 */
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

/**
 * A `redis-cli MONITOR` of the server on `port`: every command Redis runs from now on, until `stop`.
 *
 * @since 0.1.0
 */
export const monitor = async (port: number): Promise<{
  readonly seen: Array<Monitored>
  /** Resolves once MONITOR has printed a command whose arguments include `marker`. */
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
