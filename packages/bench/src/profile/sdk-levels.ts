/**
 * What the SDK v2 client does per `tools/call`, measured by level: each level below `Client.callTool` skips some of
 * its per-call work and stays on the SDK's `Client` (its connect, negotiation, notifications, auth) and transports.
 *
 * `node packages/bench/src/profile/sdk-levels.ts [--calls 20000] [--rounds 5] [--no-stdio]`
 *
 * Levels, one warm session each, measured sequentially (c=1) in interleaved rounds (median of the rounds' means):
 *
 * - `callTool`: `client.callTool({ name, arguments })`, after `listTools()` (the SDK's response cache holds the list);
 * - `callTool, list bypassed`: the same, the list fetched with `cacheMode: "bypass"` as the bridge does today;
 * - `callTool + toolDefinition`: `callTool(params, { toolDefinition })`, the tool passed in (no cache probe);
 * - `request (spec)`: `client.request({ method: "tools/call", params })`, the spec-method overload;
 * - `request + schema`: `client.request(..., specTypeSchemas.CallToolResult)`, an explicit result schema;
 * - `request + no-op schema`: `client.request(..., passThrough)`, a Standard Schema that accepts the value as is;
 * - `transport`: `client.transport.send()` of the JSON-RPC request with a string id, its response taken from the
 *   transport before the `Protocol` sees it (everything else still goes to the `Protocol`);
 * - `floor`: the bare transport round trip, no client at all (in-memory only).
 *
 * Figures are this process's CPU time per call (robust to a loaded machine) and wall time. In memory the server is a hand-written responder on an `InMemoryTransport` pair (answers on a microtask), so the
 * figures are the client's own CPU; over stdio it is the `peers` section's SDK v1 server. Then the parts of the
 * per-call work in isolation (ns per operation), and a check of output-schema validation at each level.
 */
import { TestServer } from "@mcp-bridge/testing"
import { Client, InMemoryTransport, specTypeSchemas } from "@modelcontextprotocol/client"
import type { CallToolResult, JSONRPCMessage, StandardSchemaV1, Tool, Transport } from "@modelcontextprotocol/client"
import { deserializeMessage, isJSONRPCResultResponse } from "@modelcontextprotocol/client"
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "20000" },
    rounds: { type: "string", default: "5" },
    "no-stdio": { type: "boolean", default: false }
  }
})
const calls = Number(values.calls)
const rounds = Number(values.rounds)

const echoTool: Tool = { name: "echo", inputSchema: { type: "object" } }
const typedTool: Tool = {
  name: "typed",
  inputSchema: { type: "object" },
  outputSchema: { type: "object", properties: { n: { type: "number" } }, required: ["n"] }
}

/** A minimal server on the other end of an in-memory pair: answers on a microtask, no SDK server code. */
const fakeServer = async (transport: Transport): Promise<void> => {
  transport.onmessage = (message: JSONRPCMessage) => {
    if (!("method" in message) || !("id" in message)) return
    const reply = (result: Record<string, unknown>) =>
      queueMicrotask(() => void transport.send({ jsonrpc: "2.0", id: message.id, result } as JSONRPCMessage))
    const params = (message.params ?? {}) as Record<string, unknown>
    switch (message.method) {
      case "initialize":
        return reply({
          protocolVersion: params.protocolVersion,
          capabilities: { tools: {} },
          serverInfo: { name: "fake", version: "1.0.0" }
        })
      case "tools/list":
        return reply({ tools: [echoTool, typedTool] })
      case "tools/call":
        return params.name === "typed"
          ? reply({ content: [{ type: "text", text: "{}" }], structuredContent: { n: "not a number" } })
          : reply({ content: [{ type: "text", text: JSON.stringify(params.arguments ?? {}) }] })
      default:
        return queueMicrotask(() =>
          void transport.send({
            jsonrpc: "2.0",
            id: message.id,
            error: { code: -32601, message: "Method not found" }
          } as JSONRPCMessage)
        )
    }
  }
  await transport.start()
}

const serverPath = fileURLToPath(new URL("../bin/peer-echo-server.ts", import.meta.url))

type Kind = "memory" | "modern" | "stdio"

/** The testing package's SDK v2 server, in memory, for the 2026-07-28 era. */
const modernServer = TestServer.make({ name: "levels", tools: [{ name: "echo", respond: { kind: "echo" } }] })

const connect = async (kind: Kind, list: "cached" | "bypass"): Promise<Client> => {
  const client = new Client(
    { name: "sdk-levels", version: "0.1.0" },
    kind === "modern" ? { versionNegotiation: { mode: { pin: "2026-07-28" } } } : {}
  )
  if (kind === "modern") {
    await client.connect(await modernServer.connect())
  } else if (kind === "memory") {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    await fakeServer(serverSide)
    await client.connect(clientSide)
  } else {
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [serverPath, "stdio"] }))
  }
  await client.listTools(undefined, list === "bypass" ? { cacheMode: "bypass" } : {})
  return client
}

const passThrough: StandardSchemaV1<unknown, CallToolResult> = {
  "~standard": { version: 1, vendor: "bench", validate: (value) => ({ value: value as CallToolResult }) }
}

/**
 * Requests on the transport itself, with string ids the `Protocol` never uses; their responses never reach it. On a
 * 2026-07-28 session each request carries the SDK's per-request `_meta` envelope (taken from the client, once).
 */
const transportCaller = (client: Client) => {
  const transport = client.transport!
  const envelope = (client as unknown as { _outboundMetaEnvelope: () => Record<string, unknown> | undefined })
    ._outboundMetaEnvelope()
  const pending = new Map<string, (message: JSONRPCMessage) => void>()
  const next = transport.onmessage!
  transport.onmessage = (message, extra) => {
    const id = (message as { id?: unknown }).id
    if (typeof id === "string") {
      const resolve = pending.get(id)
      if (resolve !== undefined) {
        pending.delete(id)
        return resolve(message)
      }
    }
    next(message, extra)
  }
  let n = 0
  return (params: Record<string, unknown>): Promise<CallToolResult> =>
    new Promise((resolve, reject) => {
      const id = `bridge-${n++}`
      pending.set(id, (message) => {
        if ("result" in message) resolve(message.result as CallToolResult)
        else reject((message as { error: unknown }).error)
      })
      const withMeta = envelope === undefined ? params : { ...params, _meta: envelope }
      transport.send({ jsonrpc: "2.0", id, method: "tools/call", params: withMeta } as JSONRPCMessage).catch(reject)
    })
}

type Level = readonly [name: string, call: (i: number) => Promise<unknown>, close: () => Promise<void>]

const levels = async (kind: Kind): Promise<Array<Level>> => {
  const out: Array<Level> = []
  const add = async (
    name: string,
    list: "cached" | "bypass",
    f: (client: Client) => (i: number) => Promise<unknown>
  ) => {
    const client = await connect(kind, list)
    out.push([name, f(client), () => client.close()])
  }
  await add("callTool", "cached", (c) => (i) => c.callTool({ name: "echo", arguments: { i } }))
  await add("callTool, list bypassed", "bypass", (c) => (i) => c.callTool({ name: "echo", arguments: { i } }))
  await add(
    "callTool + toolDefinition",
    "bypass",
    (c) => (i) => c.callTool({ name: "echo", arguments: { i } }, { toolDefinition: echoTool })
  )
  await add(
    "request (spec)",
    "bypass",
    (c) => (i) => c.request({ method: "tools/call", params: { name: "echo", arguments: { i } } })
  )
  await add(
    "request + schema",
    "bypass",
    (c) => (i) =>
      c.request({ method: "tools/call", params: { name: "echo", arguments: { i } } }, specTypeSchemas.CallToolResult)
  )
  await add(
    "request + no-op schema",
    "bypass",
    (c) => (i) => c.request({ method: "tools/call", params: { name: "echo", arguments: { i } } }, passThrough)
  )
  await add("transport", "bypass", (c) => {
    const call = transportCaller(c)
    return (i) => call({ name: "echo", arguments: { i } })
  })
  if (kind === "memory") {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    await fakeServer(serverSide)
    const pending = new Map<number, () => void>()
    clientSide.onmessage = (message) => pending.get((message as { id: number }).id)?.()
    await clientSide.start()
    let n = 0
    out.push([
      "floor",
      (i) =>
        new Promise<void>((resolve) => {
          const id = n++
          pending.set(id, () => {
            pending.delete(id)
            resolve()
          })
          void clientSide.send({
            jsonrpc: "2.0",
            id,
            method: "tools/call",
            params: { name: "echo", arguments: { i } }
          } as JSONRPCMessage)
        }),
      () => clientSide.close()
    ])
  }
  return out
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** Per level: this process's CPU time per call (user + system, µs) and the wall time per call, medians of the rounds. */
const measureLevels = async (kind: Kind, n: number): Promise<Array<readonly [string, number, number]>> => {
  const all = await levels(kind)
  const cpu = new Map<string, Array<number>>(all.map(([name]) => [name, []]))
  const wall = new Map<string, Array<number>>(all.map(([name]) => [name, []]))
  try {
    for (const [, call] of all) for (let i = 0; i < Math.min(n, 3_000); i++) await call(i)
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < all.length; k++) {
        const [name, call] = all[(k + round) % all.length]!
        const started = performance.now()
        const usage = process.cpuUsage()
        for (let i = 0; i < n; i++) await call(i)
        const used = process.cpuUsage(usage)
        wall.get(name)!.push(((performance.now() - started) * 1000) / n)
        cpu.get(name)!.push((used.user + used.system) / n)
      }
    }
  } finally {
    for (const [, , close] of all) await close()
  }
  return all.map(([name]) => [name, median(cpu.get(name)!), median(wall.get(name)!)] as const)
}

const levelTable = (rows: ReadonlyArray<readonly [string, number, number]>, digits: number): string => {
  const base = rows[0]![1]
  const delta = (x: number) => `${x - base >= 0 ? "+" : ""}${(x - base).toFixed(digits)}`
  return [
    "| level | CPU µs/call | vs callTool | wall µs/call |",
    "|---|---:|---:|---:|",
    ...rows.map(([name, c, w]) => `| ${name} | ${c.toFixed(digits)} | ${delta(c)} | ${w.toFixed(digits)} |`)
  ].join("\n")
}

/** ns per operation of a synchronous function, median of 5 runs of `n`. */
const nsPerOp = (n: number, f: (i: number) => unknown): number => {
  const runs: Array<number> = []
  for (let r = 0; r < 6; r++) {
    const started = performance.now()
    for (let i = 0; i < n; i++) f(i)
    if (r > 0) runs.push(((performance.now() - started) * 1e6) / n)
  }
  return median(runs)
}

const parts = async (): Promise<Array<readonly [string, number]>> => {
  const client = await connect("memory", "cached")
  // The SDK's internals, reached for measurement only.
  const internal = client as unknown as {
    _resolveOutboundCodec: (method: string) => {
      validateResult: (method: string, raw: unknown) => { ok: boolean; message?: string }
      decodeResult: (method: string, raw: unknown) => unknown
    }
    _cache: {
      outputValidator: (name: string, compile: (tool: Tool) => unknown) => Promise<unknown>
      _partitionFor: (scope: string) => string
    }
    _compileOutputValidator: (tool: Tool) => unknown
  }
  const codec = internal._resolveOutboundCodec("tools/call")
  const result = { content: [{ type: "text", text: "{\"i\":1}" }] }
  const response = { jsonrpc: "2.0", id: 7, result }
  const line = JSON.stringify(response)
  const out: Array<readonly [string, number]> = [
    [
      "spec overload's probe: validateResult(method, undefined) (a failed zod parse, its error stringified)",
      nsPerOp(20_000, () => codec.validateResult("tools/call", undefined))
    ],
    [
      "result validation: validateResult(method, result) (zod CallToolResult)",
      nsPerOp(100_000, () => codec.validateResult("tools/call", result))
    ],
    [
      "specTypeSchemas.CallToolResult validate(result)",
      nsPerOp(100_000, () => specTypeSchemas.CallToolResult["~standard"].validate(result))
    ],
    [
      "isJSONRPCResultResponse(response) (zod safeParse; twice per response)",
      nsPerOp(100_000, () => isJSONRPCResultResponse(response))
    ],
    [
      "stdio: deserializeMessage(line) (JSON.parse + zod JSONRPCMessage parse)",
      nsPerOp(100_000, () => deserializeMessage(line))
    ],
    ["stdio: JSON.parse(line) alone", nsPerOp(100_000, () => JSON.parse(line))],
    [
      "response cache key: _partitionFor (JSON.stringify; twice per callTool)",
      nsPerOp(100_000, () => internal._cache._partitionFor("private"))
    ],
    [
      "_compileOutputValidator(tool with outputSchema) (ajv compile, cached by schema object)",
      nsPerOp(20_000, () => internal._compileOutputValidator(typedTool))
    ],
    [
      "setTimeout + clearTimeout (the request timer)",
      nsPerOp(100_000, () => clearTimeout(setTimeout(() => {}, 60_000)))
    ],
    [
      "AbortController + add/removeEventListener",
      nsPerOp(100_000, () => {
        const c = new AbortController()
        const f = () => {}
        c.signal.addEventListener("abort", f, { once: true })
        c.signal.removeEventListener("abort", f)
      })
    ]
  ]
  // async: the response cache probe of `callTool` (awaits included)
  const n = 50_000
  let started = performance.now()
  for (let i = 0; i < n; i++) {
    await internal._cache.outputValidator("echo", (tool) => internal._compileOutputValidator(tool))
  }
  out.push([
    "callTool's output-validator lookup: await _cache.outputValidator(name) (store probe)",
    ((performance.now() - started) * 1e6) / n
  ])
  started = performance.now()
  for (let i = 0; i < n; i++) await Promise.resolve()
  out.push(["(for scale: one await of a resolved promise)", ((performance.now() - started) * 1e6) / n])
  await client.close()
  return out
}

/** Does each level reject a `structuredContent` that does not match the tool's `outputSchema`? */
const outputSchemaCheck = async (): Promise<Array<readonly [string, string]>> => {
  const attempt = async (name: string, list: "cached" | "bypass", f: (c: Client) => Promise<unknown>) => {
    const client = await connect("memory", list)
    try {
      await f(client)
      return [name, "accepted (not validated)"] as const
    } catch (error) {
      return [name, `rejected: ${String((error as Error).message).slice(0, 90)}`] as const
    } finally {
      await client.close()
    }
  }
  const params = { name: "typed", arguments: {} }
  return [
    await attempt("callTool after listTools()", "cached", (c) => c.callTool(params)),
    await attempt(
      "callTool after listTools({ cacheMode: \"bypass\" }) (the bridge today)",
      "bypass",
      (c) => c.callTool(params)
    ),
    await attempt("callTool + toolDefinition", "bypass", (c) => c.callTool(params, { toolDefinition: typedTool })),
    await attempt("request (spec)", "bypass", (c) => c.request({ method: "tools/call", params }))
  ]
}

const table = (headers: readonly [string, string], rows: ReadonlyArray<readonly [string, string]>) =>
  [`| ${headers[0]} | ${headers[1]} |`, "|---|---:|", ...rows.map(([a, b]) => `| ${a} | ${b} |`)].join("\n")

const main = async () => {
  const memory = await measureLevels("memory", calls)
  console.log(`## SDK v2 per-call levels, in memory (fake responder), c=1, median of ${rounds} rounds of ${calls}\n`)
  console.log(levelTable(memory, 2))
  const modernCalls = Math.floor(calls / 2)
  const modern = await measureLevels("modern", modernCalls)
  console.log(
    `\n## 2026-07-28 in memory (the testing package's SDK v2 server, its CPU included), median of ${rounds} rounds of ${modernCalls}\n`
  )
  console.log(levelTable(modern, 2))
  if (!values["no-stdio"]) {
    const stdioCalls = Math.max(1_000, Math.floor(calls / 4))
    const stdio = await measureLevels("stdio", stdioCalls)
    console.log(
      `\n## The same over stdio (SDK v1 echo server; CPU is this process's), median of ${rounds} rounds of ${stdioCalls}\n`
    )
    console.log(levelTable(stdio, 1))
  }
  console.log("\n## Parts of the per-call work, in isolation\n")
  console.log(table(["operation", "ns/op"], (await parts()).map(([n, ns]) => [n, ns.toFixed(0)])))
  console.log("\n## Output-schema validation (a tool with `outputSchema`, a non-matching `structuredContent`)\n")
  console.log(table(["level", "outcome"], await outputSchemaCheck()))
  await modernServer.close()
}

await main()
