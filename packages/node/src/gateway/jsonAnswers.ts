/**
 * A 2025-era session's answers as plain JSON when nothing else goes with them.
 *
 * The SDK's Streamable HTTP server transport answers every request of a session either as an event stream (its
 * default: a priming event, then the answer) or, with `enableJsonResponse`, always as JSON, where what the server
 * sends about a request before its answer (progress, a log line, an elicitation or sampling request relayed from an
 * upstream) is dropped. The spec lets a server choose per request. The gateway cannot know beforehand whether a call
 * will send anything before its answer, so it lets the transport answer with a stream, and holds that stream's
 * headers back until the first thing the session sends about the request:
 *
 * - the answer itself: the client gets it as `application/json`, in one write (the stream, with its copy of the
 *   answer, is dropped unread);
 * - anything else (progress, a relayed request, a log line), or nothing for `streamAfterMillis`: the client gets the
 *   stream as the transport made it, priming event first, which it can resume as before.
 *
 * A JSON answer costs the client no event-stream parsing and the gateway no stream: in the `gateway` section of
 * `npm run bench`, most of the difference between the gateway and a direct call.
 *
 * This is a `Transport` between the SDK's `Server` and its `WebStandardStreamableHTTPServerTransport`: it sees what
 * the server sends, and passes everything on unchanged.
 *
 * @internal
 */
import type {
  JSONRPCMessage,
  MessageExtraInfo,
  Transport,
  TransportSendOptions,
  WebStandardStreamableHTTPServerTransport
} from "@modelcontextprotocol/server"
import * as NodeHttp from "./nodeHttp.ts"

/** How long a request's answer may take before its stream is sent anyway (headers, priming event). @internal */
export const streamAfterMillis = 1_000

type RequestId = string | number

const isAnswer = (message: JSONRPCMessage): message is JSONRPCMessage & { readonly id: RequestId } =>
  ("result" in message || "error" in message) && "id" in message

/** The id of a body that is one JSON-RPC request other than `initialize`, or `undefined`. @internal */
export const singleRequestId = (body: unknown): RequestId | undefined => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined
  const { id, method } = body as { readonly id?: unknown; readonly method?: unknown }
  if (typeof method !== "string" || method === "initialize") return undefined
  return typeof id === "string" || typeof id === "number" ? id : undefined
}

/** @internal */
export class JsonAnswers implements Transport {
  onmessage?: ((message: JSONRPCMessage, extra?: MessageExtraInfo) => void) | undefined
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  private readonly waiting = new Map<RequestId, (first: JSONRPCMessage | "stream") => void>()

  readonly inner: WebStandardStreamableHTTPServerTransport

  constructor(inner: WebStandardStreamableHTTPServerTransport) {
    this.inner = inner
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId
  }

  start(): Promise<void> {
    const inner = this.inner
    const closed = inner.onclose
    const failed = inner.onerror
    inner.onmessage = (message, extra) => this.onmessage?.(message, extra)
    inner.onclose = () => {
      closed?.()
      for (const settle of this.waiting.values()) settle("stream")
      this.waiting.clear()
      this.onclose?.()
    }
    inner.onerror = (error) => {
      failed?.(error)
      this.onerror?.(error)
    }
    return inner.start()
  }

  close(): Promise<void> {
    return this.inner.close()
  }

  setSupportedProtocolVersions(versions: Array<string>): void {
    this.inner.setSupportedProtocolVersions(versions)
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const related = options?.relatedRequestId
    if (related !== undefined && !isAnswer(message)) this.settle(related, "stream")
    await this.inner.send(message, options as Parameters<WebStandardStreamableHTTPServerTransport["send"]>[1])
    // Settled once the transport has written the answer to its stream too (and forgotten the request).
    if (isAnswer(message)) this.settle(message.id, message)
  }

  private settle(id: RequestId, first: JSONRPCMessage | "stream") {
    const settle = this.waiting.get(id)
    if (settle === undefined) return
    this.waiting.delete(id)
    settle(first)
  }

  /**
   * Serves a POST of one request (`id`) of this session: the transport's answer, or, when the request's answer is the
   * first thing sent about it, that answer as JSON.
   */
  async handle(
    request: Request,
    options: Parameters<WebStandardStreamableHTTPServerTransport["handleRequest"]>[1],
    id: RequestId
  ): Promise<Response> {
    // A client that reuses an id still in flight gets the transport's own answer.
    if (this.waiting.has(id)) return this.inner.handleRequest(request, options)
    let settle!: (first: JSONRPCMessage | "stream") => void
    const first = new Promise<JSONRPCMessage | "stream">((resolve) => (settle = resolve))
    this.waiting.set(id, settle)
    let response: Response
    try {
      response = await this.inner.handleRequest(request, options)
    } catch (error) {
      this.waiting.delete(id)
      throw error
    }
    if (response.status !== 200 || !(response.headers.get("content-type") ?? "").includes("text/event-stream")) {
      this.waiting.delete(id)
      return response
    }
    const timer = setTimeout(() => this.settle(id, "stream"), streamAfterMillis)
    const answer = await first
    clearTimeout(timer)
    if (answer === "stream") return response
    response.body?.cancel().catch(() => undefined)
    const headers: Record<string, string> = { "content-type": "application/json" }
    const session = response.headers.get("mcp-session-id")
    if (session !== null) headers["mcp-session-id"] = session
    return NodeHttp.answer(JSON.stringify(answer), { status: 200, headers })
  }
}
