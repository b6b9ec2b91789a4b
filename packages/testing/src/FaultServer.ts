/**
 * MCP servers that misbehave on command, for fault tests against real processes and real sockets.
 *
 * - A stdio server (a child process serving MCP with the official SDK server on the normal path) that, per tool or
 *   per call, crashes mid-call (also once several calls are in flight), never answers the handshake or a call,
 *   writes a garbage line, writes half a line (and the rest later, or never), answers with a wrong JSON-RPC id,
 *   answers with an oversized result, or echoes its environment to stderr (e.g. so that a secret straddles the edge
 *   of the bridge's stderr window). Faulty output is written as raw bytes on the process's stdout.
 * - A Streamable HTTP test server in a child process, that can be killed (SIGKILL: the kernel resets its sockets) and
 *   restarted on the same port, answering in JSON or SSE.
 * - An HTTP server that answers 401 to everything and echoes the request's headers in its error body.
 *
 * Freezing a child (SIGSTOP/SIGCONT) is left to the test: every answer of the stdio server carries its `pid`.
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { createServer, type IncomingMessage } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { fileURLToPath } from "node:url"
import type { TestServerSpec } from "./TestServer.ts"

// -----------------------------------------------------------------------------
// stdio fault server
// -----------------------------------------------------------------------------

/**
 * What goes wrong with one call.
 *
 * - `crash`: the process exits (code `exitCode`, default 1) without answering: at once, `afterMs` after the call
 *   arrived, or as soon as `whenInFlight` calls (of any tool) are in flight at once (the calls before that wait);
 * - `hang`: the call is never answered (the process keeps answering everything else);
 * - `garbage`: a line that is not JSON (`line`, default `"this is not JSON-RPC"`) is written first, then the normal
 *   answer;
 * - `halfLine`: the first half of the answer's line is written; the rest follows `restAfterMs` later (other answers
 *   wait behind it, as behind a slow writer), or never (later answers are written right after the half line);
 * - `wrongId`: the answer carries a JSON-RPC id no request has;
 * - `oversized`: the answer is a text result of `bytes` bytes (e.g. 11 MiB, over the SDK's 10 MiB stdio buffer);
 * - `stderr`: `text` and/or `NAME=value` of each variable in `env` are written to stderr, followed by `padBytes`
 *   bytes of padding and a newline, then the call is answered normally (or, with `exitCode`, the process exits).
 *
 * @since 0.1.0
 */
export type Fault =
  | {
    readonly kind: "crash"
    readonly exitCode?: number | undefined
    readonly afterMs?: number | undefined
    readonly whenInFlight?: number | undefined
  }
  | { readonly kind: "hang" }
  | { readonly kind: "garbage"; readonly line?: string | undefined }
  | { readonly kind: "halfLine"; readonly restAfterMs?: number | undefined }
  | { readonly kind: "wrongId" }
  | { readonly kind: "oversized"; readonly bytes: number }
  | ({ readonly kind: "stderr"; readonly exitCode?: number | undefined } & StderrEcho)

/**
 * Text written to stderr: `text`, then `NAME=value` for each variable of `env`, then `padBytes` bytes of `.`, then a
 * newline. With `padBytes = window - 1 - k`, only the last `k` characters of the last value fall inside a stderr
 * window of `window` bytes (the newline is the window's last byte).
 *
 * @since 0.1.0
 */
export interface StderrEcho {
  readonly text?: string | undefined
  readonly env?: ReadonlyArray<string> | undefined
  readonly padBytes?: number | undefined
}

/**
 * One tool of a fault server. Its normal answer is json `{ tool, pid, call, arguments }` (text and
 * structuredContent), where `call` counts this tool's calls in this process.
 *
 * A call's arguments may carry `__fault` (a {@link Fault}): it overrides the tool's fault for that call only.
 *
 * @since 0.1.0
 */
export interface FaultTool {
  readonly name: string
  readonly description?: string | undefined
  readonly annotations?: {
    readonly readOnlyHint?: boolean | undefined
    readonly idempotentHint?: boolean | undefined
    readonly destructiveHint?: boolean | undefined
  } | undefined
  /** delay before answering (aborted with the request) */
  readonly latencyMs?: number | undefined
  /** the fault of this tool's calls */
  readonly fault?: Fault | undefined
  /** which calls of this tool get `fault` (1-based, counted per process); default every call */
  readonly faultOn?: ReadonlyArray<number> | undefined
}

/**
 * A stdio fault server. Every server also answers `__stats` (read-only): json `{ pid, calls, callTimes, inFlight }`
 * (`callTimes`: the `Date.now()` of each call per tool, in this process).
 *
 * @since 0.1.0
 */
export interface FaultServerSpec {
  /** default "fault-server" */
  readonly name?: string | undefined
  readonly tools: ReadonlyArray<FaultTool>
  /** `"never"`: the process reads stdin and never answers anything (no `initialize`, no `server/discover`) */
  readonly handshake?: "answer" | "never" | undefined
  /** written to stderr before serving; with `exitCode`, the process then exits */
  readonly startup?: (StderrEcho & { readonly exitCode?: number | undefined }) | undefined
  /** a file each process appends `start <pid>` and `exit <pid> <code>` lines to (see {@link readPidLog}) */
  readonly pidLog?: string | undefined
  /**
   * A JSON file `{ "<tool>": Fault | null }` read at every call (missing file: no overrides), so a test can change
   * faults at run time, across process restarts ({@link writeControl}). `null` clears the tool's own fault.
   */
  readonly control?: string | undefined
}

const faultServerPath = fileURLToPath(new URL("./bin/fault-server.ts", import.meta.url))
const httpServerPath = fileURLToPath(new URL("./bin/http-server.ts", import.meta.url))

/**
 * The command line of a child process serving `spec` over stdio (an `mcpServers` entry's `command` and `args`). The
 * child exits when its stdin closes.
 *
 * @since 0.1.0
 */
export const stdioCommand = (
  spec: FaultServerSpec
): { readonly command: string; readonly args: ReadonlyArray<string> } => ({
  command: process.execPath,
  args: [faultServerPath, JSON.stringify(spec)]
})

/**
 * Sets the run-time faults of a server whose spec names `control` (read by the server at every call).
 *
 * @since 0.1.0
 */
export const writeControl = (path: string, faults: Readonly<Record<string, Fault | null>>): void =>
  writeFileSync(path, JSON.stringify(faults))

/**
 * The processes a `pidLog` recorded: every pid started, and those that exited (with their exit code).
 *
 * @since 0.1.0
 */
export const readPidLog = (path: string): {
  readonly started: ReadonlyArray<number>
  readonly exited: ReadonlyMap<number, number | null>
} => {
  let text = ""
  try {
    text = readFileSync(path, "utf8")
  } catch {
    // no process started yet
  }
  const started: Array<number> = []
  const exited = new Map<number, number | null>()
  for (const line of text.split("\n")) {
    const [what, pid, code] = line.split(" ")
    if (what === "start") started.push(Number(pid))
    else if (what === "exit") exited.set(Number(pid), code === undefined || code === "" ? null : Number(code))
  }
  return { started, exited }
}

// -----------------------------------------------------------------------------
// Killable Streamable HTTP server
// -----------------------------------------------------------------------------

/**
 * A Streamable HTTP test server (`TestServer` spec) in a child process.
 *
 * @since 0.1.0
 */
export interface KillableHttpServer {
  /** `http://127.0.0.1:PORT/mcp` (the same across restarts) */
  readonly url: string
  readonly port: number
  /** the pid of the serving process, `undefined` while killed */
  readonly pid: () => number | undefined
  /** SIGKILL: the process dies, the kernel resets its connections. Resolves once it exited. Idempotent. */
  readonly kill: () => Promise<void>
  /** Starts a fresh process on the same port (after `kill`). */
  readonly restart: () => Promise<void>
  /** Kills the process for good. */
  readonly close: () => Promise<void>
}

/**
 * Options of {@link startKillableHttp}.
 *
 * @since 0.1.0
 */
export interface KillableHttpOptions {
  /** default 0 (an ephemeral port, kept across restarts) */
  readonly port?: number | undefined
  /** answer 2025-era POSTs over SSE streams instead of JSON bodies. @default false */
  readonly sse?: boolean | undefined
  /** default "stateful" */
  readonly mode?: "stateful" | "stateless" | undefined
}

/**
 * Starts a Streamable HTTP test server serving `spec` in a child process, which can be killed and restarted on the
 * same port.
 *
 * @since 0.1.0
 */
export const startKillableHttp = async (
  spec: TestServerSpec,
  options: KillableHttpOptions = {}
): Promise<KillableHttpServer> => {
  let port = options.port ?? 0
  let child: ReturnType<typeof spawn> | undefined
  let exited: Promise<void> = Promise.resolve()

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const proc = spawn(process.execPath, [
        httpServerPath,
        JSON.stringify({ spec, port, sse: options.sse === true, mode: options.mode ?? "stateful" })
      ], { stdio: ["ignore", "pipe", "inherit"] })
      child = proc
      exited = new Promise<void>((done) => proc.once("exit", () => done()))
      let out = ""
      const onData = (chunk: Buffer) => {
        out += chunk.toString("utf8")
        const match = /listening (\d+)\n/.exec(out)
        if (match !== null) {
          proc.stdout?.off("data", onData)
          port = Number(match[1])
          resolve()
        }
      }
      proc.stdout?.on("data", onData)
      proc.once("exit", (code) => reject(new Error(`HTTP test server exited with ${code} before listening: ${out}`)))
    })

  const kill = async () => {
    const proc = child
    child = undefined
    if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL")
    await exited
  }

  await start()
  return {
    get url() {
      return `http://127.0.0.1:${port}/mcp`
    },
    get port() {
      return port
    },
    pid: () => child?.pid,
    kill,
    restart: async () => {
      await kill()
      // The port may linger for a moment after the kill: try again briefly.
      for (let attempt = 0;; attempt++) {
        try {
          return await start()
        } catch (error) {
          if (attempt >= 20) throw error
          await new Promise((r) => setTimeout(r, 50))
        }
      }
    },
    close: kill
  }
}

// -----------------------------------------------------------------------------
// 401 server
// -----------------------------------------------------------------------------

/**
 * An HTTP server that answers every request with 401 and a JSON body echoing the request's headers.
 *
 * @since 0.1.0
 */
export interface UnauthorizedServer {
  readonly url: string
  /** requests answered so far */
  readonly requests: () => number
  readonly close: () => Promise<void>
}

/**
 * Starts an HTTP server on 127.0.0.1 that answers 401 to everything, echoing every request header (secrets
 * included) in its error body, as a careless server would.
 *
 * @since 0.1.0
 */
export const startUnauthorized = async (): Promise<UnauthorizedServer> => {
  let requests = 0
  const sockets = new Set<Socket>()
  const server = createServer((req: IncomingMessage, res) => {
    requests++
    req.resume()
    req.on("end", () => {
      const body = JSON.stringify({
        error: "unauthorized",
        message: `invalid credentials: ${JSON.stringify(req.headers)}`,
        received: req.headers
      })
      res.writeHead(401, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
      res.end(body)
    })
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}
