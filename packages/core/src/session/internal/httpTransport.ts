/**
 * The Streamable HTTP transport of a session: the SDK's `StreamableHTTPClientTransport`, with two things settled for
 * a pool of sessions.
 *
 * - A response stream that breaks before the answer is resumed (`Last-Event-ID`, after the server's `retry:` or a
 *   short backoff, a few times, bounded); when it cannot be resumed (the server sent no event id, or is gone), the
 *   request it carried fails at once with a JSON-RPC error of code `streamEndedCode`, instead of waiting for its
 *   deadline: the session reports it as `Closed`, and the pool replaces the session.
 * - The server's `retry:` is honoured up to `maxRetryDelayMillis`, so that a server cannot park a call for long.
 *
 * - Every `fetch` gets a signal of its own. Without a `requestSignal` (2025-era requests) the SDK hands `fetch` the
 *   transport's long-lived signal, and undici adds an abort listener to it per request that only garbage collection
 *   removes: adding one walks all those before it (~65 µs a call in a gateway's profile). With a `requestSignal` that
 *   never aborts, the SDK passes `AbortSignal.any([transport, request])` instead, a signal per request, which closing
 *   the transport still aborts.
 *
 * Built on the SDK's documented `send` options (`onRequestStreamEnd`, `requestSignal`) and `reconnectionScheduler`.
 *
 * @internal
 */
import type { JSONRPCMessage, StreamableHTTPClientTransportOptions } from "@modelcontextprotocol/client"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/client"

/** The JSON-RPC error code of a request whose response stream ended before the answer. @internal */
export const streamEndedCode = -32098

/** The longest wait before resuming a broken stream, whatever the server's `retry:`. @internal */
export const maxRetryDelayMillis = 5_000

/** A signal that never aborts: see the module header. */
const neverAborted = new AbortController().signal

const isRequest = (message: JSONRPCMessage): message is JSONRPCMessage & { readonly id: string | number } =>
  "method" in message && "id" in message && message.id !== undefined

/** @internal */
export class BridgeHttpTransport extends StreamableHTTPClientTransport {
  constructor(url: URL, options: StreamableHTTPClientTransportOptions = {}) {
    super(url, {
      ...options,
      reconnectionOptions: {
        initialReconnectionDelay: 200,
        reconnectionDelayGrowFactor: 2,
        maxReconnectionDelay: 2_000,
        maxRetries: 3
      },
      reconnectionScheduler: (reconnect, delay) => {
        const timer = setTimeout(reconnect, Math.min(delay, maxRetryDelayMillis))
        return () => clearTimeout(timer)
      }
    })
    // Answers leave `awaiting` on their way to the SDK's client (which sets `onmessage` when it connects).
    let deliver: ((message: JSONRPCMessage, extra?: never) => void) | undefined
    const received = (message: JSONRPCMessage, extra?: never) => {
      if ("id" in message && !("method" in message) && message.id !== undefined && message.id !== null) {
        this.awaiting.delete(message.id)
      }
      deliver?.(message, extra)
    }
    Object.defineProperty(this, "onmessage", {
      configurable: true,
      enumerable: true,
      get: () => deliver === undefined ? undefined : received,
      set: (handler: typeof deliver) => {
        deliver = handler
      }
    })
  }

  /**
   * The ids of requests sent and not yet answered: the SDK reports the end of every response stream, answered or
   * not, and only an unanswered one is failed (an answered id would reach the SDK's client as a response to an
   * unknown request: an `Error` built and reported per call).
   */
  private readonly awaiting = new Set<string | number>()

  override send(
    message: JSONRPCMessage | Array<JSONRPCMessage>,
    options?: Parameters<StreamableHTTPClientTransport["send"]>[1]
  ): Promise<void> {
    const requestSignal = options?.requestSignal ?? neverAborted
    if (Array.isArray(message) || !isRequest(message)) {
      return super.send(message as JSONRPCMessage, { ...options, requestSignal })
    }
    const id = message.id
    this.awaiting.add(id)
    // A request given up (a 2026-07-28 cancellation aborts its signal) is answered by no one.
    options?.requestSignal?.addEventListener("abort", () => this.awaiting.delete(id), { once: true })
    return super.send(message, {
      ...options,
      requestSignal,
      onRequestStreamEnd: () => {
        options?.onRequestStreamEnd?.()
        if (!this.awaiting.delete(id)) return
        this.onmessage?.({
          jsonrpc: "2.0",
          id,
          error: { code: streamEndedCode, message: "the response stream ended before the answer" }
        } as JSONRPCMessage)
      }
    }).catch((error: unknown) => {
      this.awaiting.delete(id)
      throw error
    })
  }

  override close(): Promise<void> {
    this.awaiting.clear()
    return super.close()
  }
}
