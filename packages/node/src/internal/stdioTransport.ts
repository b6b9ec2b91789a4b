/**
 * The stdio transport of a session: a child process speaking newline-delimited JSON-RPC, as an SDK `Transport` built
 * from the SDK's own message handling, with what `StdioClientTransport` lacks: framing that recovers from a
 * half-written line, a size limit per message (`maxMessageBytes`, failing only that request), stderr kept as a
 * bounded tail with the server's secrets scrubbed, and `kill()` for a frozen process.
 *
 * It is stdio-shaped for the SDK (`stderr`, `pid`), so version negotiation probes in place on this process.
 * More: docs/design.md, "The stdio transport".
 *
 * @internal
 */
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client"
import { deserializeMessage, serializeMessage } from "@modelcontextprotocol/client"
import { getDefaultEnvironment } from "@modelcontextprotocol/client/stdio"
import { type ChildProcess, spawn } from "node:child_process"
import { PassThrough } from "node:stream"

/** The JSON-RPC error code of an answer dropped for its size (implementation-defined server error range). */
export const messageTooLargeCode = -32099

/** @internal */
export interface StdioOptions {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  readonly cwd?: string | undefined
  /** Largest message accepted from the server, in bytes. */
  readonly maxMessageBytes: number
  /** How much of stderr to keep (after scrubbing), in characters. */
  readonly stderrTailBytes: number
  /** Values that must never show in the stderr tail. */
  readonly secrets: ReadonlyArray<string>
}

const redacted = "<redacted>"
const minSecretLength = 4

// Besides the SDK's default environment (HOME, PATH, USER...), what a child needs to reach the network and read text
// as its parent does: proxies, extra CA certificates (a TLS-inspecting proxy), npm's registry and cache settings (for
// `npx -y`), locale and temporary directory. Nothing that holds a credential: npm settings naming an auth or a token
// are left out, and proxy URLs are passed as they are (a proxy's credentials are the parent's to share).
const inheritedNames = [
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "REQUESTS_CA_BUNDLE",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "TMPDIR",
  "XDG_CACHE_HOME",
  "XDG_CONFIG_HOME",
  "XDG_DATA_HOME"
]
const npmSettings =
  /^npm_config_(registry|cache|prefer_offline|prefer_online|offline|proxy|https_proxy|noproxy|userconfig)$/i

const networkEnvironment = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const name of inheritedNames) {
    const value = process.env[name]
    if (value !== undefined) env[name] = value
  }
  // npm's settings by name (none of them holds a credential: `_auth`, `_authToken`, `cafile`... are left out).
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && npmSettings.test(name)) env[name] = value
  }
  return env
}

/**
 * Scrubs secrets from a stream of text as it arrives: whole secrets are replaced, and the end of each chunk that
 * could be the start of a secret is held back until the next chunk says whether it is one.
 */
export class StreamScrubber {
  private readonly secrets: ReadonlyArray<string>
  private carry = ""
  constructor(secrets: ReadonlyArray<string>) {
    this.secrets = secrets.filter((s) => s.length >= minSecretLength).sort((a, b) => b.length - a.length)
  }
  /** The scrubbed text that is safe to keep so far. */
  push(chunk: string): string {
    let text = this.scrubWhole(this.carry + chunk)
    let hold = 0
    for (const secret of this.secrets) {
      for (let k = Math.min(secret.length - 1, text.length); k > hold; k--) {
        if (text.endsWith(secret.slice(0, k))) {
          hold = k
          break
        }
      }
    }
    this.carry = text.slice(text.length - hold)
    text = text.slice(0, text.length - hold)
    return text
  }
  /** The rest, at the end of the stream: a held-back start of a secret is scrubbed too. */
  flush(): string {
    const rest = this.carry
    this.carry = ""
    return rest.length >= minSecretLength && this.secrets.some((s) => s.startsWith(rest)) ? redacted : rest
  }
  private scrubWhole(text: string): string {
    let out = text
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(redacted)
    return out
  }
}

/**
 * The `id` of the message whose first and last bytes are `head` and `tail` (serializers put `id` first or last),
 * when it has one at the top level of either end.
 */
const idOf = (head: string, tail: string): string | number | undefined => {
  const atStart = /^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)/.exec(head)
  const atEnd = /"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)\s*(?:,\s*"jsonrpc"\s*:\s*"2\.0"\s*)?\}\s*$/.exec(tail)
  const match = atStart ?? atEnd
  if (match === null) return undefined
  try {
    return JSON.parse(match[1]!) as string | number
  } catch {
    return undefined
  }
}

/** @internal */
export class StdioTransport implements Transport {
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  onmessage?: (<T extends JSONRPCMessage>(message: T) => void) | undefined

  private child: ChildProcess | undefined
  private exited = false
  private closed = false
  private readonly options: StdioOptions
  private readonly scrubber: StreamScrubber
  private readonly stderrStream = new PassThrough()
  private tail = ""
  // stdout framing: the chunks of the current line, and whether the rest of an oversized line is being skipped
  private chunks: Array<Buffer> = []
  private pending = 0
  // an oversized line being skipped: its first bytes and the last bytes seen so far
  private skipped: { head: string; tail: string; bytes: number } | undefined

  constructor(options: StdioOptions) {
    this.options = options
    this.scrubber = new StreamScrubber(options.secrets)
  }

  /** The child's stderr (piped), for the SDK's stdio detection and for callers that want the raw stream. */
  get stderr() {
    return this.stderrStream
  }

  get pid(): number | null {
    return this.child?.pid ?? null
  }

  /** The last lines the server wrote to stderr, secrets scrubbed. */
  stderrTail(): string {
    return this.tail.trim()
  }

  start(): Promise<void> {
    if (this.child !== undefined) return Promise.reject(new Error("StdioTransport already started"))
    return new Promise((resolve, reject) => {
      const child = spawn(this.options.command, [...this.options.args], {
        env: { ...getDefaultEnvironment(), ...networkEnvironment(), ...this.options.env },
        stdio: ["pipe", "pipe", "pipe"],
        shell: process.platform === "win32",
        windowsHide: true,
        ...(this.options.cwd === undefined ? {} : { cwd: this.options.cwd })
      })
      this.child = child
      let spawned = false
      child.on("error", (error) => {
        if (!spawned) reject(error)
        this.onerror?.(error)
      })
      child.on("spawn", () => {
        spawned = true
        resolve()
      })
      child.on("exit", () => {
        this.exited = true
      })
      child.on("close", () => {
        this.exited = true
        this.keepStderr(this.scrubber.flush())
        this.closed = true
        this.onclose?.()
      })
      child.stdin?.on("error", (error) => this.onerror?.(error))
      child.stdout?.on("data", (chunk: Buffer) => this.read(chunk))
      child.stdout?.on("error", (error) => this.onerror?.(error))
      child.stderr?.on("data", (chunk: Buffer) => {
        this.keepStderr(this.scrubber.push(chunk.toString("utf8")))
        this.stderrStream.write(chunk)
      })
    })
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      const stdin = this.child?.stdin
      if (stdin === undefined || stdin === null || this.exited || stdin.destroyed) {
        reject(new Error("Not connected: the server process has exited"))
        return
      }
      if (stdin.write(serializeMessage(message))) resolve()
      else stdin.once("drain", resolve)
    })
  }

  /** Ends the process gracefully: stdin closed, then SIGTERM, then SIGKILL. */
  async close(): Promise<void> {
    const child = this.child
    if (child === undefined || this.closed) return
    const closed = new Promise<void>((resolve) => child.once("close", () => resolve()))
    const wait = (ms: number) => Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, ms).unref())])
    try {
      child.stdin?.end()
    } catch {
      // already closed
    }
    await wait(1_000)
    if (!this.exited) {
      child.kill("SIGTERM")
      await wait(1_000)
    }
    if (!this.exited) this.kill()
    await wait(1_000)
  }

  /** Ends the process at once (SIGKILL), also when it is stopped or frozen. */
  kill(): void {
    const child = this.child
    if (child === undefined || this.exited) return
    try {
      child.kill("SIGKILL")
    } catch {
      // gone already
    }
  }

  private keepStderr(text: string): void {
    if (text.length === 0) return
    this.tail = (this.tail + text).slice(-this.options.stderrTailBytes)
  }

  private read(chunk: Buffer): void {
    let start = 0
    while (start < chunk.length) {
      const newline = chunk.indexOf(10, start)
      const end = newline === -1 ? chunk.length : newline
      const piece = chunk.subarray(start, end)
      if (this.skipped !== undefined) {
        this.skipped.bytes += piece.length
        this.skipped.tail = (this.skipped.tail + piece.subarray(Math.max(0, piece.length - 256)).toString("utf8"))
          .slice(-256)
        if (newline !== -1) this.skippedLine()
      } else {
        this.chunks.push(piece)
        this.pending += piece.length
        if (this.pending > this.options.maxMessageBytes) this.tooLarge()
        else if (newline !== -1) this.line()
      }
      start = newline === -1 ? chunk.length : newline + 1
    }
  }

  // A message over the limit: skip the rest of its line, then fail its request (when its id can be read).
  private tooLarge(): void {
    const all = Buffer.concat(this.chunks, this.pending)
    this.skipped = {
      head: all.subarray(0, 256).toString("utf8"),
      tail: all.subarray(Math.max(0, all.length - 256)).toString("utf8"),
      bytes: this.pending
    }
    this.chunks = []
    this.pending = 0
  }

  private skippedLine(): void {
    const skipped = this.skipped!
    this.skipped = undefined
    const limit = this.options.maxMessageBytes
    this.onerror?.(new Error(`a message of ${skipped.bytes} bytes from the server was dropped (limit ${limit} bytes)`))
    const id = idOf(skipped.head, skipped.tail)
    if (id === undefined) return
    this.onmessage?.({
      jsonrpc: "2.0",
      id,
      error: {
        code: messageTooLargeCode,
        message: `the answer is larger than maxMessageBytes (${limit} bytes)`,
        data: { limitBytes: limit, receivedBytes: skipped.bytes }
      }
    } as JSONRPCMessage)
  }

  private line(): void {
    const text = Buffer.concat(this.chunks, this.pending).toString("utf8").replace(/\r$/, "")
    this.chunks = []
    this.pending = 0
    if (text.trim().length === 0) return
    const message = this.parse(text)
    if (message !== undefined) this.onmessage?.(message)
  }

  // A line, or the JSON-RPC message at its end when it starts with the remains of a line that was never finished.
  private parse(text: string): JSONRPCMessage | undefined {
    const whole = tryParse(text)
    if (whole !== undefined) return whole
    // Only where a JSON-RPC message can start: an object whose first key is one of a message's top-level keys.
    messageStart.lastIndex = 1
    let tries = 0
    for (let match = messageStart.exec(text); match !== null && tries < 64; match = messageStart.exec(text)) {
      tries++
      const tailMessage = tryParse(text.slice(match.index))
      if (tailMessage !== undefined) {
        this.onerror?.(new Error("the server wrote a partial line; the message behind it was recovered"))
        return tailMessage
      }
    }
    this.onerror?.(new Error("the server wrote a line that is not JSON-RPC; it was dropped"))
    return undefined
  }
}

const messageStart = /\{\s*"(?:jsonrpc|id|result|error|method|params)"\s*:/g

const tryParse = (text: string): JSONRPCMessage | undefined => {
  try {
    return deserializeMessage(text)
  } catch {
    return undefined
  }
}
