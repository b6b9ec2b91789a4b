import { assert, describe, it } from "@effect/vitest"
import { createServer } from "node:http"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { gzipSync } from "node:zlib"
import * as NodeFetch from "../src/internal/nodeFetch.ts"

const listen = async (
  handler: (req: IncomingMessage, res: ServerResponse) => void
): Promise<{ readonly url: string; readonly server: Server }> => {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })

const manual = { redirect: "manual" } as const

describe("nodeFetch", () => {
  it("sends the body and headers, and answers status, headers and body as the global fetch does", async () => {
    const { server, url } = await listen((req, res) => {
      let body = ""
      req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")))
      req.on("end", () => {
        res.writeHead(201, { "content-type": "application/json", "mcp-session-id": "s-1" })
        res.end(
          JSON.stringify({ method: req.method, got: body === "" ? null : JSON.parse(body), accept: req.headers.accept })
        )
      })
    })
    try {
      const fetch = NodeFetch.make()
      const response = await fetch(`${url}/mcp`, {
        ...manual,
        method: "POST",
        headers: new Headers({ accept: "application/json, text/event-stream", "content-type": "application/json" }),
        body: JSON.stringify({ é: "ü" })
      })
      assert.strictEqual(response.status, 201)
      assert.strictEqual(response.headers.get("mcp-session-id"), "s-1")
      assert.deepStrictEqual(await response.json(), {
        method: "POST",
        got: { é: "ü" },
        accept: "application/json, text/event-stream"
      })
      const empty = await fetch(`${url}/mcp`, { ...manual, method: "DELETE" })
      assert.strictEqual(empty.status, 201)
      assert.deepStrictEqual(await empty.json(), { method: "DELETE", got: null })
    } finally {
      await close(server)
    }
  })

  it("hands an event stream over as it arrives, decompresses, and leaves redirects alone when asked", async () => {
    let finish: (() => void) | undefined
    const { server, url } = await listen((req, res) => {
      if (req.url === "/sse") {
        res.writeHead(200, { "content-type": "text/event-stream" })
        res.write("data: one\n\n")
        finish = () => res.end("data: two\n\n")
      } else if (req.url === "/gzip") {
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" })
        res.end(gzipSync(JSON.stringify({ zipped: true })))
      } else if (req.url === "/moved") {
        res.writeHead(307, { location: "/gzip" })
        res.end()
      } else {
        res.writeHead(204)
        res.end()
      }
    })
    try {
      const fetch = NodeFetch.make()
      const stream = await fetch(`${url}/sse`, manual)
      const reader = stream.body!.getReader()
      // The first event is read while the server still holds the stream open.
      const first = await reader.read()
      assert.strictEqual(new TextDecoder().decode(first.value), "data: one\n\n")
      finish!()
      let rest = ""
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        rest += new TextDecoder().decode(chunk.value)
      }
      assert.strictEqual(rest, "data: two\n\n")

      const zipped = await fetch(`${url}/gzip`, manual)
      assert.deepStrictEqual(await zipped.json(), { zipped: true })
      assert.isNull(zipped.headers.get("content-encoding"))

      const moved = await fetch(`${url}/moved`, manual)
      assert.strictEqual(moved.status, 307)
      assert.strictEqual(moved.headers.get("location"), "/gzip")
      // Without `redirect: "manual"` the request is the global fetch's, which follows.
      const followed = await fetch(`${url}/moved`)
      assert.strictEqual(followed.status, 200)

      const none = await fetch(`${url}/none`, manual)
      assert.strictEqual(none.status, 204)
      assert.isNull(none.body)
    } finally {
      await close(server)
    }
  })

  it("leaves a proxied environment to the global fetch", () => {
    assert.strictEqual(NodeFetch.make({ HTTPS_PROXY: "http://proxy.internal:3128" }), globalThis.fetch)
    assert.notStrictEqual(NodeFetch.make({}), globalThis.fetch)
  })

  it("rejects a refused connection as the global fetch does, and an aborted request with the signal's reason", async () => {
    const { server, url } = await listen(() => {
      // Never answers.
    })
    try {
      const fetch = NodeFetch.make()
      const controller = new AbortController()
      const pending = fetch(url, { ...manual, signal: controller.signal })
      const reason = new Error("caller left")
      controller.abort(reason)
      const aborted = await pending.then(() => undefined, (error: unknown) => error)
      assert.strictEqual(aborted, reason)
    } finally {
      await close(server)
    }
    const refused = await NodeFetch.make()(url, manual).then(() => undefined, (error: unknown) => error)
    assert.instanceOf(refused, TypeError)
    assert.strictEqual((refused as TypeError).message, "fetch failed")
    assert.strictEqual(((refused as TypeError).cause as { code?: string }).code, "ECONNREFUSED")
  })
})
