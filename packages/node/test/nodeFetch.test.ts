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

  describe("a POST's event stream", () => {
    const answer = { jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: "héllo ✓" }] } }
    const progress = { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: 1 } }
    const readAll = async (body: ReadableStream<Uint8Array>): Promise<{ text: string; error: unknown }> => {
      const reader = body.getReader()
      const decoder = new TextDecoder()
      let text = ""
      try {
        for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
          text += decoder.decode(chunk.value, { stream: true })
        }
        return { text, error: undefined }
      } catch (error) {
        return { text, error }
      }
    }
    const post = (fetch: typeof globalThis.fetch, url: string) =>
      fetch(url, { ...manual, method: "POST", body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call" }) })

    it("that carries only its answer is handed over as that answer in JSON, whatever its chunks", async () => {
      const event = Buffer.from(`id: e-1\ndata: ${JSON.stringify(answer)}\n\n`)
      // The answer's multi-byte characters split across writes.
      const cut = event.indexOf(Buffer.from("✓")) + 1
      const { server, url } = await listen((_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream", "mcp-session-id": "s-2" })
        res.write(": priming\r\nid: e-0\r\ndata:\r\n\r\n")
        res.write(event.subarray(0, cut))
        setTimeout(() => res.end(event.subarray(cut)), 5)
      })
      try {
        const response = await post(NodeFetch.make(), url)
        assert.strictEqual(response.headers.get("content-type"), "application/json")
        assert.strictEqual(response.headers.get("mcp-session-id"), "s-2")
        assert.deepStrictEqual(await response.json(), answer)
      } finally {
        await close(server)
      }
    })

    it("that carries a long answer in many chunks is handed over as that answer", async () => {
      const long = { jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: "é✓".repeat(300_000) }] } }
      const event = Buffer.from(`data: ${JSON.stringify(long)}\r\n\r\n`)
      const { server, url } = await listen((_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" })
        // Pieces of 64 KiB and 1 byte: boundaries fall inside characters and inside the blank line.
        const write = (at: number, piece: number): void => {
          if (at >= event.length) return void res.end()
          const size = piece % 2 === 0 ? 65_536 : 1
          res.write(event.subarray(at, at + size), () => write(at + size, piece + 1))
        }
        write(0, 0)
      })
      try {
        const response = await post(NodeFetch.make(), url)
        assert.strictEqual(response.headers.get("content-type"), "application/json")
        assert.deepStrictEqual(await response.json(), long)
      } finally {
        await close(server)
      }
    })

    it("that carries anything before its answer is handed over at once, as the event stream it is", async () => {
      let finish: (() => void) | undefined
      const { server, url } = await listen((req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" })
        if (req.url === "/retry") res.write("retry: 500\n\n")
        else res.write(`data: ${JSON.stringify(progress)}\n\n`)
        finish = () => res.end(`data: ${JSON.stringify(answer)}\n\n`)
      })
      try {
        for (const path of ["/progress", "/retry"]) {
          // Handed over while the server still holds the stream open: the answer is not there yet.
          const response = await post(NodeFetch.make(), `${url}${path}`)
          assert.strictEqual(response.headers.get("content-type"), "text/event-stream")
          finish!()
          const { error, text } = await readAll(response.body!)
          assert.isUndefined(error)
          const first = path === "/retry" ? "retry: 500\n\n" : `data: ${JSON.stringify(progress)}\n\n`
          assert.strictEqual(text, `${first}data: ${JSON.stringify(answer)}\n\n`)
        }
      } finally {
        await close(server)
      }
    })

    it("still open after its answer, or ended without one, or broken, is handed over as an event stream", async () => {
      const held: Array<() => void> = []
      const { server, url } = await listen((req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" })
        res.write("id: e-0\ndata:\n\n")
        if (req.url === "/open") {
          res.write(`data: ${JSON.stringify(answer)}\n\n`)
          held.push(() => res.end())
        } else if (req.url === "/empty") res.end()
        else setTimeout(() => res.destroy(), 5)
      })
      try {
        const fetch = NodeFetch.make()
        // The answer is read although the server never ends the stream.
        const open = await post(fetch, `${url}/open`)
        assert.strictEqual(open.headers.get("content-type"), "text/event-stream")
        const reader = open.body!.getReader()
        let text = ""
        while (!text.includes("result")) text += new TextDecoder().decode((await reader.read()).value)
        assert.strictEqual(text, `id: e-0\ndata:\n\ndata: ${JSON.stringify(answer)}\n\n`)
        held.forEach((end) => end())

        const empty = await readAll((await post(fetch, `${url}/empty`)).body!)
        assert.deepStrictEqual(empty, { text: "id: e-0\ndata:\n\n", error: undefined })

        // The event id before the break is still read (the SDK resumes from it), then the break.
        const broken = await readAll((await post(fetch, `${url}/broken`)).body!)
        assert.strictEqual(broken.text, "id: e-0\ndata:\n\n")
        assert.isDefined(broken.error)
      } finally {
        await close(server)
      }
    })
  })
})
