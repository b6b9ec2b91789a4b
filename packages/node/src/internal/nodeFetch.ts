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
          // An event stream is handed over as it arrives (the signal still ends it); any other answer is read whole.
          if ((res.headers["content-type"] ?? "").includes("text/event-stream")) {
            stream.once("close", release)
            return settle(() => resolve(new Response(Readable.toWeb(stream) as ReadableStream<Uint8Array>, init)))
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
