import { assert, describe, it } from "@effect/vitest"
import { Client, SSEClientTransport, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import type { CallToolResult, Transport } from "@modelcontextprotocol/client"
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio"
import { Effect } from "effect"
import { TestServer } from "../src/index.ts"

const LEGACY = "2025-11-25"
const MODERN = "2026-07-28"

const spec: TestServer.TestServerSpec = {
  name: "fixture",
  tools: [
    { name: "echo", respond: { kind: "echo" }, annotations: { readOnlyHint: true } },
    { name: "text", respond: { kind: "text", text: "hello" } },
    { name: "json", respond: { kind: "json", value: { a: 1, b: [1, 2] } } },
    { name: "fail", respond: { kind: "isError", message: "boom" } },
    { name: "payload", respond: { kind: "payload", bytes: 10_000 } },
    { name: "counter", respond: { kind: "counter" } },
    { name: "crash", respond: { kind: "crash", exitCode: 3 } },
    { name: "hang", respond: { kind: "hang" } },
    { name: "flaky", respond: { kind: "flaky", failures: 2 } },
    { name: "slow", latencyMs: 40, respond: { kind: "text", text: "slow" } },
    { name: "add", respond: { kind: "addTool", name: "added_echo" } },
    { name: "held", hold: true, respond: { kind: "echo" } }
  ]
}

const newClient = (mode: "legacy" | "auto" = "legacy", options: ConstructorParameters<typeof Client>[1] = {}) =>
  new Client(
    { name: "test-client", version: "1.0.0" },
    mode === "auto" ? { ...options, versionNegotiation: { mode: "auto" } } : options
  )

const connected = async (transport: Transport, mode: "legacy" | "auto" = "legacy") => {
  const client = newClient(mode)
  await client.connect(transport)
  return client
}

const call = (client: Client, name: string, args: Record<string, unknown> = {}) =>
  client.callTool({ name, arguments: args }) as Promise<CallToolResult>

const firstText = (result: CallToolResult): string => {
  const block = result.content[0]
  assert.strictEqual(block?.type, "text")
  return block?.type === "text" ? block.text : ""
}

const stats = async (client: Client) =>
  (await call(client, "__stats")).structuredContent as { calls: Record<string, number>; pid: number; sessions: number }

// For state outside a server's own `until` (a client's onclose, a child's exit): checked every 10 ms, bounded.
const waitFor = async (predicate: () => boolean, timeoutMs = 5_000): Promise<void> => {
  const start = performance.now()
  while (!predicate()) {
    if (performance.now() - start > timeoutMs) throw new Error("timed out waiting")
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe("TestServer in memory", () => {
  it("serves a legacy client (2025-11-25) with every respond kind", async () => {
    const server = TestServer.make(spec)
    const client = await connected(await server.connect())
    try {
      assert.strictEqual(client.getNegotiatedProtocolVersion(), LEGACY)
      const tools = (await client.listTools()).tools
      assert.includeMembers(tools.map((t) => t.name), ["echo", "counter", "__stats"])
      assert.strictEqual(tools.find((t) => t.name === "__stats")?.annotations?.readOnlyHint, true)
      assert.strictEqual(tools.find((t) => t.name === "echo")?.annotations?.readOnlyHint, true)

      const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
      const echoed = await client.callTool({ name: "echo", arguments: { x: 1 }, _meta: { traceparent } })
      assert.strictEqual(firstText(echoed as CallToolResult), JSON.stringify({ x: 1 }))
      assert.deepStrictEqual(echoed.structuredContent, { arguments: { x: 1 }, meta: { traceparent } })

      assert.strictEqual(firstText(await call(client, "text")), "hello")
      const json = await call(client, "json")
      assert.deepStrictEqual(json.structuredContent, { a: 1, b: [1, 2] })
      assert.strictEqual(firstText(json), JSON.stringify({ a: 1, b: [1, 2] }))
      const fail = await call(client, "fail")
      assert.strictEqual(fail.isError, true)
      assert.strictEqual(firstText(fail), "boom")
      assert.strictEqual(firstText(await call(client, "payload")).length, 10_000)

      const flaky = [await call(client, "flaky"), await call(client, "flaky"), await call(client, "flaky", { ok: 1 })]
      assert.deepStrictEqual(flaky.map((r) => r.isError === true), [true, true, false])
      assert.strictEqual(firstText(flaky[1]!), "flaky failure 2")
      assert.strictEqual(firstText(flaky[2]!), JSON.stringify({ ok: 1 }))

      // The latency is applied: the call is at the server, not answered, until it has passed.
      const slow = call(client, "slow")
      await server.until(() => server.inFlight() === 1)
      assert.strictEqual(firstText(await slow), "slow")

      assert.strictEqual(server.calls("flaky"), 3)
      assert.strictEqual(server.calls(), 9)
      const s = await stats(client)
      assert.strictEqual(s.calls["flaky"], 3)
      assert.strictEqual(s.calls["__stats"], undefined)
      assert.strictEqual(s.pid, process.pid)
      assert.strictEqual(s.sessions, 1)
    } finally {
      await client.close()
      await server.close()
    }
  })

  it("serves a negotiating client on 2026-07-28, with per-session counters", async () => {
    const server = TestServer.make(spec)
    const a = await connected(await server.connect(), "auto")
    const b = await connected(await server.connect(), "legacy")
    try {
      assert.strictEqual(a.getNegotiatedProtocolVersion(), MODERN)
      assert.strictEqual(b.getNegotiatedProtocolVersion(), LEGACY)
      assert.strictEqual(server.openSessions(), 2)
      const echoed = await a.callTool({ name: "echo", arguments: { y: 2 }, _meta: { traceparent: "00-abc-def-01" } })
      assert.deepStrictEqual(echoed.structuredContent, { arguments: { y: 2 }, meta: { traceparent: "00-abc-def-01" } })
      assert.deepStrictEqual(
        [firstText(await call(a, "counter")), firstText(await call(a, "counter")), firstText(await call(b, "counter"))],
        ["1", "2", "1"]
      )
      await a.close()
      await server.until(() => server.openSessions() === 1)
    } finally {
      await a.close()
      await b.close()
      await server.close()
    }
    assert.strictEqual(server.openSessions(), 0)
  })

  it("era legacy: a negotiating client falls back to 2025-11-25", async () => {
    const server = TestServer.make({ ...spec, era: "legacy" })
    const client = await connected(await server.connect(), "auto")
    try {
      assert.strictEqual(client.getNegotiatedProtocolVersion(), LEGACY)
      assert.strictEqual(firstText(await call(client, "counter")), "1")
    } finally {
      await client.close()
      await server.close()
    }
  })

  it("hang answers nothing until the call is aborted", async () => {
    const server = TestServer.make(spec)
    const client = await connected(await server.connect(), "auto")
    try {
      const controller = new AbortController()
      let settled = false
      const pending = client.callTool({ name: "hang", arguments: {} }, { signal: controller.signal }).then(
        () => "answered",
        () => "failed"
      ).finally(() => {
        settled = true
      })
      await server.until(() => server.inFlight() === 1)
      assert.isFalse(settled)
      controller.abort()
      assert.strictEqual(await pending, "failed")
      await server.until(() => server.cancelled() === 1 && server.inFlight() === 0)
      assert.strictEqual(firstText(await call(client, "text")), "hello")
    } finally {
      await client.close()
      await server.close()
    }
  })

  it("crash closes the client's transport", async () => {
    const server = TestServer.make(spec)
    const client = newClient()
    let closed = false
    client.onclose = () => {
      closed = true
    }
    await client.connect(await server.connect())
    const pending = call(client, "crash")
    assert.strictEqual(await pending.then(() => "answered", () => "failed"), "failed")
    await waitFor(() => closed)
    assert.strictEqual(server.openSessions(), 0)
    await server.close()
  })

  it("addTool sends tools/list_changed to a legacy client", async () => {
    const server = TestServer.make(spec)
    let changed: ReadonlyArray<string> | undefined
    const client = newClient("legacy", {
      listChanged: {
        tools: {
          debounceMs: 0,
          onChanged: (error, tools) => {
            if (error === null && tools !== null) changed = tools.map((t) => t.name)
          }
        }
      }
    })
    await client.connect(await server.connect())
    try {
      assert.strictEqual(firstText(await call(client, "add")), "added")
      await waitFor(() => changed !== undefined)
      assert.isTrue(changed?.includes("added_echo"))
      const echoed = await call(client, "added_echo", { z: 3 })
      assert.strictEqual(firstText(echoed), JSON.stringify({ z: 3 }))
      // later sessions see the added tool too
      const other = await connected(await server.connect())
      assert.include((await other.listTools()).tools.map((t) => t.name), "added_echo")
      await other.close()
    } finally {
      await client.close()
      await server.close()
    }
  })

  it("hold: calls wait at the server until released, oldest first; held counts them; cancelling ends the wait", async () => {
    const server = TestServer.make(spec)
    const client = await connected(await server.connect(), "auto")
    try {
      const order: Array<number> = []
      const calls = [1, 2, 3].map((n) =>
        call(client, "held", { n }).then((r) => order.push(JSON.parse(firstText(r)).n))
      )
      await server.until(() => server.held("held") === 3)
      assert.deepStrictEqual([server.held(), server.inFlight(), order], [3, 3, []])
      assert.strictEqual(server.release("held", 1), 1)
      await server.until(() => server.inFlight() === 2)
      assert.strictEqual(server.release(), 2)
      await Promise.all(calls)
      assert.deepStrictEqual([order[0], order.slice(1).sort()], [1, [2, 3]])
      assert.strictEqual(server.release(), 0)
      // A held call whose request is cancelled leaves the hold.
      const controller = new AbortController()
      const cancelled = client.callTool({ name: "held", arguments: {} }, { signal: controller.signal }).then(
        () => "answered",
        () => "failed"
      )
      await server.until(() => server.held("held") === 1)
      controller.abort()
      assert.strictEqual(await cancelled, "failed")
      await server.until(() => server.held() === 0 && server.cancelled() === 1)
    } finally {
      await client.close()
      await server.close()
    }
  })

  it("until resolves at once when the condition holds, and rejects when it never does", async () => {
    const server = TestServer.make(spec)
    await server.until(() => server.calls() === 0)
    const error = await server.until(() => server.calls() === 1, 50).then(() => undefined, (e: Error) => e.message)
    assert.include(error, "did not hold within 50 ms")
  })

  it("demo workos server filters tasks by status", async () => {
    const server = TestServer.make(TestServer.demoServers.workos)
    const client = await connected(await server.connect(), "auto")
    try {
      const names = (await client.listTools()).tools.map((t) => t.name)
      assert.includeMembers(names, ["get_tasks", "get_today_metrics", "get_clients", "create_task"])
      const todo = (await call(client, "get_tasks", { status: "todo" })).structuredContent as {
        items: Array<{ status: string }>
        count: number
      }
      assert.isAbove(todo.count, 0)
      assert.isTrue(todo.items.every((t) => t.status === "todo"))
      const all = (await call(client, "get_tasks")).structuredContent as { count: number }
      assert.isAbove(all.count, todo.count)
      const created = await call(client, "create_task", { title: "Write tests" })
      assert.strictEqual(firstText(created), JSON.stringify({ title: "Write tests" }))
    } finally {
      await client.close()
      await server.close()
    }
  })
})

const delay = <A>(ms: number, value: A): Promise<A> => new Promise((resolve) => setTimeout(() => resolve(value), ms))

const stdioTransport = (s: TestServer.TestServerSpec) => {
  const { command, args } = TestServer.stdioCommand(s)
  return new StdioClientTransport({ command, args: [...args], stderr: "pipe" })
}

describe("TestServer: tools that ask the client", () => {
  const asking: TestServer.TestServerSpec = {
    tools: [
      { name: "elicit", respond: { kind: "elicit", rounds: 2, requestState: "s\u00e9" } },
      { name: "url", respond: { kind: "elicitUrl", url: "https://example.com/consent" } },
      { name: "sample", respond: { kind: "sample", prompt: "2+2?" } },
      { name: "roots", respond: { kind: "roots" } },
      { name: "progress", respond: { kind: "progress", steps: 3 } },
      { name: "log", respond: { kind: "log", levels: ["debug", "warning", "error"] } },
      { name: "capabilities", respond: { kind: "capabilities" } }
    ]
  }
  const capabilities = {
    elicitation: { form: { applyDefaults: true }, url: {} },
    sampling: {},
    roots: { listChanged: true }
  }
  // An SDK client that answers everything (on 2026-07-28 it fulfils `input_required` itself), and what it saw.
  const answering = (mode: "legacy" | "auto") => {
    const seen: Array<string> = []
    const client = newClient(mode, { capabilities })
    client.setRequestHandler("elicitation/create", async (request) => {
      seen.push(`elicit ${request.params.mode ?? "form"}: ${request.params.message}`)
      return request.params.mode === "url" ? { action: "accept" } : { action: "accept", content: { name: "Ada" } }
    })
    client.setRequestHandler("sampling/createMessage", async () => ({
      role: "assistant",
      model: "m",
      content: { type: "text", text: "4" }
    }))
    client.setRequestHandler("roots/list", async () => ({ roots: [{ uri: "file:///w", name: "w" }] }))
    client.setNotificationHandler("notifications/message", (n) => void seen.push(`log ${n.params.level}`))
    return { client, seen }
  }
  const json = async (client: Client, name: string, meta?: Record<string, unknown>) =>
    (await client.callTool({ name, arguments: {}, ...(meta === undefined ? {} : { _meta: meta }) }))
      .structuredContent as Record<string, any>

  for (const [mode, era] of [["legacy", "legacy"], ["auto", "modern"]] as const) {
    it(`answers each in the ${era} era`, async () => {
      const server = TestServer.make(asking)
      const { client, seen } = answering(mode)
      await client.connect(await server.connect())
      try {
        const elicited = await json(client, "elicit")
        assert.strictEqual(elicited.era, era)
        const content = { name: "Ada", confirm: true, count: 3, color: "green" }
        assert.deepStrictEqual(elicited.answers, [{ action: "accept", content }, { action: "accept", content }])
        if (era === "modern") {
          assert.strictEqual(elicited.requestState, JSON.stringify(["s\u00e9", 2, process.pid, [elicited.answers[0]]]))
          assert.isTrue(elicited.intact)
          assert.strictEqual(elicited.askedBy, process.pid)
        }
        assert.deepStrictEqual(await json(client, "url"), { era, action: "accept" })
        assert.deepStrictEqual(await json(client, "sample"), { era, text: "4", model: "m", role: "assistant" })
        assert.deepStrictEqual(await json(client, "roots"), { era, roots: [{ uri: "file:///w", name: "w" }] })
        const progress: Array<unknown> = []
        await client.callTool({ name: "progress", arguments: {} }, { onprogress: (p) => progress.push(p) })
        assert.includeDeepMembers(
          progress,
          [1, 2, 3].map((i) => ({ progress: i, total: 3, message: `step ${i} of 3` }))
        )
        if (era === "legacy") await client.setLoggingLevel("warning")
        const logged = await json(
          client,
          "log",
          era === "modern" ? { "io.modelcontextprotocol/logLevel": "warning" } : {}
        )
        assert.deepStrictEqual(logged.levels, ["debug", "warning", "error"])
        await waitFor(() => seen.filter((s) => s.startsWith("log")).length === 2)
        assert.deepStrictEqual(seen.filter((s) => s.startsWith("log")), ["log warning", "log error"])
        assert.deepStrictEqual(seen.filter((s) => s.startsWith("elicit")), [
          "elicit form: Please fill in the form (1 of 2)",
          "elicit form: Please fill in the form (2 of 2)",
          "elicit url: Open the URL to go on"
        ])
        assert.deepStrictEqual(await json(client, "capabilities"), { era, capabilities })
        // Each 2026-07-28 round is a call of its own.
        assert.strictEqual(server.calls("elicit"), era === "modern" ? 3 : 1)
        if (era === "legacy") {
          await client.sendRootsListChanged()
          await server.until(() => server.rootsListChanged() === 1)
        }
      } finally {
        await client.close()
        await server.close()
      }
    })
  }

  it("over legacy Streamable HTTP, answers over SSE: what the server sends mid-call reaches the client", async () => {
    const server = await TestServer.startHttp({ ...asking, era: "legacy" })
    const { client, seen } = answering("legacy")
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url)))
    try {
      assert.strictEqual((await json(client, "elicit")).action, "accept")
      assert.deepStrictEqual((await json(client, "sample")).text, "4")
      assert.strictEqual(seen.length, 2)
    } finally {
      await client.close()
      await server.close()
    }
  })
})

describe("TestServer over stdio", () => {
  it("serves echo, counter and __stats from a child process that exits when stdin closes", async () => {
    const client = await connected(stdioTransport(spec))
    let pid = 0
    try {
      assert.strictEqual(client.getNegotiatedProtocolVersion(), LEGACY)
      assert.strictEqual(firstText(await call(client, "echo", { q: "x" })), JSON.stringify({ q: "x" }))
      assert.deepStrictEqual(
        [firstText(await call(client, "counter")), firstText(await call(client, "counter"))],
        ["1", "2"]
      )
      const s = await stats(client)
      pid = s.pid
      assert.notStrictEqual(pid, process.pid)
      assert.deepStrictEqual(s.calls, { echo: 1, counter: 2 })
      assert.strictEqual(s.sessions, 1)
      // a hanging call must not keep the child alive once the client goes away
      void call(client, "hang").catch(() => undefined)
      let inFlight = 0
      for (let i = 0; i < 250 && inFlight === 0; i++) {
        inFlight = ((await call(client, "__stats")).structuredContent as { inFlight: number }).inFlight
      }
      assert.strictEqual(inFlight, 1)
    } finally {
      await client.close()
    }
    await waitFor(() => !isAlive(pid))
  })

  it("negotiates 2026-07-28 with an auto client", async () => {
    const client = await connected(stdioTransport(spec), "auto")
    try {
      assert.strictEqual(client.getNegotiatedProtocolVersion(), MODERN)
      assert.strictEqual(firstText(await call(client, "counter")), "1")
      assert.deepStrictEqual((await stats(client)).calls, { counter: 1 })
    } finally {
      await client.close()
    }
  })

  it("crash exits the child mid-call; the client sees the call fail and onclose", async () => {
    const transport = stdioTransport(spec)
    const client = newClient()
    let closed = false
    client.onclose = () => {
      closed = true
    }
    await client.connect(transport)
    const pid = (await stats(client)).pid
    const outcome = await call(client, "crash").then(() => "answered", (e: unknown) => `failed: ${String(e)}`)
    assert.match(outcome, /^failed/)
    await waitFor(() => closed)
    await waitFor(() => !isAlive(pid))
    await client.close()
  })
})

describe("TestServer over HTTP", () => {
  it("stateful: legacy sessions are opened and terminated; modern requests are served too", async () => {
    const server = await TestServer.startHttp(spec)
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/)
      const transport = new StreamableHTTPClientTransport(new URL(server.url))
      const legacy = await connected(transport)
      assert.strictEqual(legacy.getNegotiatedProtocolVersion(), LEGACY)
      assert.isString(transport.sessionId)
      assert.strictEqual(server.sessionsOpened(), 1)
      assert.strictEqual(server.openSessions(), 1)
      assert.deepStrictEqual(
        [firstText(await call(legacy, "counter")), firstText(await call(legacy, "counter"))],
        ["1", "2"]
      )

      const legacy2 = await connected(new StreamableHTTPClientTransport(new URL(server.url)))
      assert.strictEqual(firstText(await call(legacy2, "counter")), "1")
      assert.strictEqual(server.sessionsOpened(), 2)
      assert.strictEqual((await stats(legacy2)).sessions, 2)
      await legacy2.close()

      const modern = await connected(new StreamableHTTPClientTransport(new URL(server.url)), "auto")
      assert.strictEqual(modern.getNegotiatedProtocolVersion(), MODERN)
      const echoed = await modern.callTool({ name: "echo", arguments: { m: 1 }, _meta: { traceparent: "00-1-2-01" } })
      assert.deepStrictEqual(echoed.structuredContent, { arguments: { m: 1 }, meta: { traceparent: "00-1-2-01" } })
      await modern.close()
      assert.strictEqual(server.sessionsOpened(), 2)

      await transport.terminateSession()
      assert.strictEqual(server.sessionsTerminated(), 1)
      await legacy.close()
      assert.strictEqual(server.openSessions(), 1)
      assert.strictEqual(server.calls("counter"), 3)
      assert.strictEqual(server.calls("echo"), 1)
    } finally {
      await server.close()
    }
  })

  it("stateless: both eras are served per request", async () => {
    const server = await TestServer.startHttp(spec, { mode: "stateless" })
    try {
      const legacy = await connected(new StreamableHTTPClientTransport(new URL(server.url)))
      const modern = await connected(new StreamableHTTPClientTransport(new URL(server.url)), "auto")
      assert.strictEqual(legacy.getNegotiatedProtocolVersion(), LEGACY)
      assert.strictEqual(modern.getNegotiatedProtocolVersion(), MODERN)
      assert.strictEqual(firstText(await call(legacy, "echo", { a: 1 })), JSON.stringify({ a: 1 }))
      assert.strictEqual(firstText(await call(modern, "echo", { b: 2 })), JSON.stringify({ b: 2 }))
      assert.strictEqual(server.calls("echo"), 2)
      assert.strictEqual(server.sessionsOpened(), 0)
      await legacy.close()
      await modern.close()
    } finally {
      await server.close()
    }
  })

  it("era legacy (stateful): a negotiating client falls back to 2025-11-25", async () => {
    const server = await TestServer.startHttp({ ...spec, era: "legacy" })
    try {
      const client = await connected(new StreamableHTTPClientTransport(new URL(server.url)), "auto")
      assert.strictEqual(client.getNegotiatedProtocolVersion(), LEGACY)
      assert.strictEqual(firstText(await call(client, "text")), "hello")
      await client.close()
    } finally {
      await server.close()
    }
  })

  it("crash drops the connection; the server can be restarted on the same port", async () => {
    const server = await TestServer.startHttp(spec)
    const client = await connected(new StreamableHTTPClientTransport(new URL(server.url)))
    const outcome = await call(client, "crash").then(() => "answered", () => "failed")
    assert.strictEqual(outcome, "failed")
    await client.close()
    await server.close()

    const again = await TestServer.startHttp(spec, { port: server.port })
    try {
      assert.strictEqual(again.url, server.url)
      const fresh = await connected(new StreamableHTTPClientTransport(new URL(again.url)))
      assert.strictEqual(firstText(await call(fresh, "text")), "hello")
      await fresh.close()
    } finally {
      await again.close()
    }
  })

  it("close() fails in-flight calls promptly instead of leaving them pending", async () => {
    const server = await TestServer.startHttp(spec)
    const client = await connected(new StreamableHTTPClientTransport(new URL(server.url)))
    client.onerror = () => undefined
    const pending = call(client, "hang").then(() => "answered", () => "failed")
    await server.until(() => server.inFlight() === 1)
    await server.close()
    assert.strictEqual(await Promise.race([pending, delay(2_000, "still pending")]), "failed")
    await client.close()
  })

  it("httpScoped closes the server with its scope", async () => {
    const url = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function*() {
          const server = yield* TestServer.httpScoped(spec)
          const client = yield* Effect.promise(() => connected(new StreamableHTTPClientTransport(new URL(server.url))))
          const text = yield* Effect.promise(() => call(client, "text"))
          assert.strictEqual(firstText(text), "hello")
          yield* Effect.promise(() => client.close())
          return server.url
        })
      )
    )
    const refused = await fetch(url, { method: "POST" }).then(() => false, () => true)
    assert.isTrue(refused)
  })
})

describe("TestServer over legacy HTTP+SSE", () => {
  it("serves a legacy client over an event stream; closing the client ends its session", async () => {
    const server = await TestServer.startSse(spec)
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/sse$/)
      const client = await connected(new SSEClientTransport(new URL(server.url)))
      assert.strictEqual(client.getNegotiatedProtocolVersion(), LEGACY)
      assert.deepStrictEqual([server.sessionsOpened(), server.openSessions()], [1, 1])
      assert.includeMembers((await client.listTools()).tools.map((t) => t.name), ["echo", "hang", "__stats"])
      assert.strictEqual(firstText(await call(client, "echo", { s: 1 })), JSON.stringify({ s: 1 }))
      assert.strictEqual((await call(client, "fail")).isError, true)
      assert.deepStrictEqual(
        [firstText(await call(client, "counter")), firstText(await call(client, "counter"))],
        ["1", "2"]
      )
      assert.strictEqual(server.calls("echo"), 1)
      await client.close()
      await server.until(() => server.openSessions() === 0)
      assert.strictEqual(server.sessionsTerminated(), 1)
    } finally {
      await server.close()
    }
  })

  it("a cancelled call is cancelled at the server; crash drops every stream", async () => {
    const server = await TestServer.startSse(spec)
    const client = await connected(new SSEClientTransport(new URL(server.url)))
    client.onerror = () => undefined
    try {
      const controller = new AbortController()
      const hang = client.callTool({ name: "hang", arguments: {} }, { signal: controller.signal }).then(
        () => "answered",
        () => "failed"
      )
      await server.until(() => server.inFlight() === 1)
      controller.abort()
      assert.strictEqual(await hang, "failed")
      await server.until(() => server.cancelled() === 1 && server.inFlight() === 0)
      void call(client, "crash").catch(() => undefined)
      await server.until(() => server.openSessions() === 0)
      const refused = await fetch(server.url).then(() => false, () => true)
      assert.isTrue(refused)
    } finally {
      await client.close()
      await server.close()
    }
  })
})
