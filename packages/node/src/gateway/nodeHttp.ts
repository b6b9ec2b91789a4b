/**
 * The gateway's MCP routes between `node:http` and the SDK's web-standard handlers, paid once per request.
 *
 * The SDK's `toNodeHandler` turns a Node request into a `Request` with its body as a stream, which the handler then
 * reads and parses again, and writes every `Response` as a chunked stream (a socket write for the answer and another
 * for the end). Here the body is read from the socket and parsed once (the handlers take it as `parsedBody`; a body
 * that is not JSON goes on as text, so the SDK answers it as before), and an answer that is not an event stream is
 * written whole, with its length, in one write. Event streams are written as they come, with backpressure.
 *
 * @internal
 */
import type { IncomingMessage, ServerResponse } from "node:http"

/** The longest request body read (the SDK's default, 4 MiB); a longer one is answered 413. @internal */
export const maxBodyBytes = 4 * 1024 * 1024

/** A Node request as the SDK's handlers take it. @internal */
export interface Inbound {
  /** The request; its body is there only when it is not JSON (`parsed` is then `undefined`). */
  readonly request: Request
  /** The body parsed as JSON; `undefined` when there is none or it is not JSON. */
  readonly parsed: unknown
}

const single = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof value === "string" ? value : value?.[0]

const readBody = (req: IncomingMessage): Promise<Buffer | "too-large"> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let received = 0
    req.on("data", (chunk: Buffer) => {
      received += chunk.length
      if (received > maxBodyBytes) {
        req.removeAllListeners("data")
        req.resume()
        resolve("too-large")
        return
      }
      chunks.push(chunk)
    })
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
    req.once("error", reject)
  })

/** Reads `req` (its body once), or `"too-large"` when its body is longer than {@link maxBodyBytes}. @internal */
export const inbound = async (req: IncomingMessage, signal: AbortSignal): Promise<Inbound | "too-large"> => {
  const method = (req.method ?? "GET").toUpperCase()
  const headers = new Headers()
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    if (!raw[i]!.startsWith(":")) headers.append(raw[i]!, raw[i + 1]!)
  }
  const url = `http://${single(req.headers.host) ?? "localhost"}${req.url ?? "/"}`
  if (method === "GET" || method === "HEAD") {
    return { request: new Request(url, { method, headers, signal }), parsed: undefined }
  }
  if (Number(single(req.headers["content-length"])) > maxBodyBytes) return "too-large"
  const bytes = await readBody(req)
  if (bytes === "too-large") return bytes
  const text = bytes.toString("utf8")
  let parsed: unknown = undefined
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text)
    } catch {
      parsed = undefined
    }
  }
  if (parsed !== undefined) {
    headers.delete("content-length")
    headers.delete("transfer-encoding")
    return { request: new Request(url, { method, headers, signal }), parsed }
  }
  return {
    request: new Request(url, { method, headers, signal, ...(text.length > 0 ? { body: text } : {}) }),
    parsed: undefined
  }
}

/** The bodies of the answers made by {@link answer}, written as they are. */
const texts = new WeakMap<Response, string>()

/**
 * An answer of the gateway's own whose body is `text`: {@link respond} writes the text without reading a body stream
 * (the `Response` itself carries no body: it is for `respond` only). @internal
 */
export const answer = (text: string, init: { readonly status: number; readonly headers: Record<string, string> }) => {
  const response = new Response(null, init)
  texts.set(response, text)
  return response
}

/** Writes `response` to `res`: whole and in one write, or as an event stream until it ends or `res` closes. @internal */
export const respond = async (response: Response, res: ServerResponse, closed: Promise<void>): Promise<void> => {
  // The client left before its answer: nothing to write (the stream, if any, is released).
  if (res.destroyed) {
    response.body?.cancel().catch(() => undefined)
    return
  }
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    headers[name] = value
  })
  const text = texts.get(response)
  if (text !== undefined) {
    headers["content-length"] = String(Buffer.byteLength(text))
    res.writeHead(response.status, headers)
    res.end(text)
    return
  }
  if (response.body === null) {
    res.writeHead(response.status, headers)
    res.end()
    return
  }
  if (!(headers["content-type"] ?? "").includes("text/event-stream")) {
    const body = Buffer.from(await response.arrayBuffer())
    headers["content-length"] = String(body.length)
    res.writeHead(response.status, headers)
    res.end(body)
    return
  }
  res.writeHead(response.status, headers)
  const reader = response.body.getReader()
  let open = true
  const stop = closed.then(() => {
    open = false
    return { done: true as const, value: undefined }
  })
  try {
    while (open) {
      const chunk = await Promise.race([reader.read(), stop])
      if (chunk.done || !open) break
      if (!res.write(chunk.value)) {
        await Promise.race([new Promise<void>((resolve) => res.once("drain", () => resolve())), closed])
      }
    }
  } catch {
    // The stream failed: the answer ends here, as the SDK's adapter does.
  } finally {
    reader.cancel().catch(() => undefined)
  }
  res.end()
}
