/**
 * The `fetch` of the Node transports' HTTP sessions: `node:http` and `node:https` with keep-alive agents, answering
 * the web-standard `Response` the SDK's client transports read.
 *
 * Node's global `fetch` (undici) runs the whole Fetch algorithm per request: a `Request` and its signal, resource
 * timing entries, body streams on both sides. For an MCP session's small JSON-RPC requests that is most of what a
 * call costs its client: measured with the SDK v2 client alone against one server, about 0.3 ms of CPU a call of
 * 0.8 ms (`npm run bench -- --only gateway` shows what it does to the gateway's hop). This one sends the body as
 * one write and hands back an event stream as it arrives, any other answer whole.
 *
 * It keeps the global `fetch`'s contract where the SDK and the bridge read it: a network failure rejects with
 * `TypeError("fetch failed")` whose `cause` carries the socket's `code` (`ECONNREFUSED`...), an aborted request
 * rejects with the signal's reason, compressed answers are decompressed. It serves the requests of the SDK's
 * Streamable HTTP transport, which ask for `redirect: "manual"` (the SDK follows redirects itself); any other request
 * (one that lets `fetch` follow redirects, as OAuth discovery does, a body that is not a string, a `Request` object, a
 * URL that is not `http:` or `https:`) goes to the global `fetch`.
 *
 * @internal
 */
import { Agent as HttpAgent, request as httpRequest } from "node:http"
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http"
import { Agent as HttpsAgent, request as httpsRequest } from "node:https"
import { Readable } from "node:stream"
import { StringDecoder } from "node:string_decoder"
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib"

const nullBodyStatus = new Set([101, 103, 204, 205, 304])

const decoded = (res: IncomingMessage): Readable => {
  switch ((res.headers["content-encoding"] ?? "").trim().toLowerCase()) {
    case "gzip":
    case "x-gzip":
      return res.pipe(createGunzip())
    case "deflate":
      return res.pipe(createInflate())
    case "br":
      return res.pipe(createBrotliDecompress())
    default:
      return res
  }
}

const headersOf = (res: IncomingMessage, decompressed: boolean): Headers => {
  const headers = new Headers()
  const raw = res.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    if (decompressed && (name === "content-encoding" || name === "content-length")) continue
    headers.append(raw[i]!, raw[i + 1]!)
  }
  return headers
}

const fetchFailed = (cause: unknown) => new TypeError("fetch failed", { cause })

/** `stream` as the body of an answer, handed over as it arrives; the request's signal is released when it closes. */
const streamed = (stream: Readable, init: ResponseInit, release: () => void): Response => {
  stream.once("close", release)
  return new Response(Readable.toWeb(stream) as ReadableStream<Uint8Array>, init)
}

/** How long a held event stream may stay open after its answer before it is handed over as a stream. */
const endGraceMillis = 10

/**
 * One complete event of an event stream (its text without the blank line that ends it): its `data` (lines joined by
 * `\n`; `""` when it has none), or `undefined` when it is anything but a plain message event (a `retry:` field, an
 * unknown field, an `event:` other than `message`), which ends the holding.
 */
const eventData = (event: string): string | undefined => {
  const data: Array<string> = []
  for (const line of event.split(/\r\n|\r|\n/)) {
    if (line === "" || line.startsWith(":")) continue
    const colon = line.indexOf(":")
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? "" : line.slice(line.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1)
    if (field === "data") data.push(value)
    else if (field === "event") {
      if (value !== "message") return undefined
    } else if (field !== "id") return undefined
  }
  return data.join("\n")
}

/** The first blank line (the end of an event) in `text` from `from` on. */
const nextBoundary = (text: string, from: number): RegExpExecArray | undefined => {
  const boundary = /\r\n\r\n|\n\n|\r\r/g
  boundary.lastIndex = from
  return boundary.exec(text) ?? undefined
}

/** Whether `data` is one JSON-RPC response (a result or an error with an id), the answer of a POSTed request. */
const isResponse = (data: string): boolean => {
  try {
    const message = JSON.parse(data) as unknown
    return typeof message === "object" && message !== null && !Array.isArray(message) && !("method" in message) &&
      "id" in message && ("result" in message || "error" in message)
  } catch {
    return false
  }
}

/**
 * A POSTed request's event stream, held until it shows what it carries. Most such streams carry the request's
 * answer and end (a priming event without data may come first): that one is handed to the SDK as an
 * `application/json` answer, which its client reads with one `JSON.parse`, instead of through a chain of web streams
 * (`TextDecoderStream`, an event-source parser), a tenth of a gateway's CPU per upstream call in its profile. Anything
 * else is handed over as the event stream it is, the bytes held so far first, at once: a notification or a request
 * (progress, an elicitation the user must answer), a second message, a field other than `id`, `event: message` and
 * `data`, a stream still open `endGraceMillis` after its answer, a stream that ends without one (the SDK resumes it
 * from its last event id), or one that breaks (likewise).
 */
const held = (
  stream: Readable,
  init: { readonly status: number; readonly headers: Headers },
  release: () => void,
  resolve: (response: Response) => void
): void => {
  const chunks: Array<Buffer> = []
  const decoder = new StringDecoder("utf8")
  let text = ""
  let answer: string | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let scanned = 0
  const bytes = () => chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
  const stop = () => {
    clearTimeout(timer)
    stream.removeListener("data", onData)
    stream.removeListener("end", onEnd)
    stream.removeListener("error", onError)
  }
  // Hands the stream over as it is: the held bytes go back to its head.
  const handOver = () => {
    stop()
    stream.pause()
    if (chunks.length > 0) stream.unshift(bytes())
    resolve(streamed(stream, init, release))
  }
  const onData = (chunk: Buffer) => {
    chunks.push(chunk)
    text += decoder.write(chunk)
    for (let found = nextBoundary(text, scanned); found !== undefined; found = nextBoundary(text, 0)) {
      const data = eventData(text.slice(0, found.index))
      text = text.slice(found.index + found[0].length)
      scanned = 0
      if (data === "") continue
      if (data === undefined || answer !== undefined || !isResponse(data)) return handOver()
      answer = data
      timer = setTimeout(handOver, endGraceMillis)
    }
    // A long event arrives in many chunks: the next search starts where this one could not match.
    scanned = Math.max(0, text.length - 3)
  }
  const onEnd = () => {
    stop()
    release()
    if (answer !== undefined && (text + decoder.end()).trim() === "") {
      init.headers.set("content-type", "application/json")
      return resolve(new Response(answer, init))
    }
    resolve(new Response(bytes() as Uint8Array<ArrayBuffer>, init))
  }
  const onError = (error: unknown) => {
    stop()
    release()
    // What was held, then the break: a `ReadableStream` errored at once would drop its queue.
    const held = bytes()
    let given = chunks.length === 0
    resolve(
      new Response(
        new ReadableStream<Uint8Array>({
          pull: (controller) => {
            if (given) return controller.error(error)
            given = true
            controller.enqueue(held)
          }
        }),
        init
      )
    )
  }
  stream.on("data", onData)
  stream.once("end", onEnd)
  stream.once("error", onError)
}

const proxyVariables = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]

/**
 * A `fetch` over `node:http` and `node:https` with agents of its own (see the module header); the global `fetch` when
 * the environment names a proxy (`HTTP_PROXY`, `HTTPS_PROXY`), which Node's own `fetch` can be told to use and these
 * agents would not.
 *
 * @internal
 */
export const make = (env: Readonly<Record<string, string | undefined>> = process.env): typeof globalThis.fetch => {
  if (proxyVariables.some((name) => (env[name] ?? "") !== "")) return globalThis.fetch
  const http = new HttpAgent({ keepAlive: true })
  const https = new HttpsAgent({ keepAlive: true })
  const fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const body = init?.body
    if (
      input instanceof Request || init?.redirect !== "manual" ||
      (body !== undefined && body !== null && typeof body !== "string")
    ) {
      return globalThis.fetch(input, init)
    }
    const url = typeof input === "string" ? new URL(input) : input
    const secure = url.protocol === "https:"
    if (!secure && url.protocol !== "http:") return globalThis.fetch(input, init)
    const signal = init?.signal ?? undefined
    if (signal?.aborted) return Promise.reject(signal.reason)
    const method = (init?.method ?? "GET").toUpperCase()
    const headers: OutgoingHttpHeaders = {}
    new Headers(init?.headers).forEach((value, name) => {
      headers[name] = value
    })
    if (typeof body === "string") headers["content-length"] = Buffer.byteLength(body)
    return new Promise<Response>((resolve, reject) => {
      // Settled once: by the answer, a failure, or the signal; the signal's listener goes when the request is done.
      let settled = false
      const settle = (outcome: () => void) => {
        if (settled) return
        settled = true
        outcome()
      }
      const release = () => signal?.removeEventListener("abort", onAbort)
      const fail = (error: unknown) => {
        release()
        settle(() => reject(fetchFailed(error)))
      }
      const onAbort = () => {
        settle(() => reject(signal!.reason))
        request.destroy()
      }
      const request = (secure ? httpsRequest : httpRequest)(
        url,
        { method, headers, agent: secure ? https : http },
        (res) => {
          const status = res.statusCode ?? 0
          const valid = status >= 200 && status <= 599
          const bodiless = !valid || nullBodyStatus.has(status) || method === "HEAD"
          const stream = bodiless ? res : decoded(res)
          const init = { status: valid ? status : 502, headers: headersOf(res, stream !== res) }
          if (bodiless) {
            res.resume()
            release()
            return settle(() => resolve(new Response(null, init)))
          }
          // A POST's event stream is held until it shows what it carries (see `held`); any other event stream is
          // handed over as it arrives (the signal still ends it); any other answer is read whole.
          if ((res.headers["content-type"] ?? "").includes("text/event-stream")) {
            if (method === "POST") return held(stream, init, release, (response) => settle(() => resolve(response)))
            return settle(() => resolve(streamed(stream, init, release)))
          }
          const chunks: Array<Buffer> = []
          stream.on("data", (chunk: Buffer) => chunks.push(chunk))
          stream.once("end", () => {
            release()
            const whole = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
            settle(() => resolve(new Response(whole as Uint8Array<ArrayBuffer>, init)))
          })
          stream.once("error", fail)
        }
      )
      request.once("error", fail)
      signal?.addEventListener("abort", onAbort, { once: true })
      request.end(body ?? undefined)
    })
  }
  return fetch as typeof globalThis.fetch
}
