/**
 * The stdio era probe settled by order (internal/probeRace.ts): against a scripted server that reads its input in
 * order, as a stdio server does. No timer decides: every verdict below comes from what the server answered first.
 */
import { assert, describe, it } from "@effect/vitest"
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client"
import * as ProbeRace from "../src/session/internal/probeRace.ts"

type Answer = (request: { readonly id: string | number; readonly method: string }) => JSONRPCMessage | undefined

/** A transport whose server answers each request with `answer` (or ignores it), in the order received. */
const scripted = (answer: Answer) => {
  const sent: Array<JSONRPCMessage> = []
  const transport: Transport = {
    start: async () => {},
    close: async () => {},
    send: async (message) => {
      sent.push(message)
      if (!("method" in message) || !("id" in message)) return
      const reply = answer({ id: message.id, method: message.method })
      if (reply !== undefined) queueMicrotask(() => transport.onmessage?.(reply))
    }
  }
  return { transport, sent }
}

const probe: JSONRPCMessage = {
  jsonrpc: "2.0",
  id: "server-discover-probe-1",
  method: "server/discover",
  params: { _meta: { "io.modelcontextprotocol/protocolVersion": "2026-07-28" } }
}

/** Sends the probe through the race, and the first message the SDK's side receives. */
const run = (answer: Answer) =>
  new Promise<{ readonly first: JSONRPCMessage; readonly sent: Array<JSONRPCMessage>; readonly answered: boolean }>(
    (resolve) => {
      const { sent, transport } = scripted(answer)
      const race = ProbeRace.wrap(transport)
      race.transport.onmessage = (message) => resolve({ first: message, sent, answered: race.answered() })
      void race.transport.send(probe)
    }
  )

const pong = (id: string | number): JSONRPCMessage => ({ jsonrpc: "2.0", id, result: {} })

describe("ProbeRace", () => {
  it("a server that answers the probe: its answer passes through, untouched", async () => {
    const discover: JSONRPCMessage = { jsonrpc: "2.0", id: probe.id, result: { supportedVersions: ["2026-07-28"] } }
    const { answered, first, sent } = await run((r) => r.method === "ping" ? pong(r.id) : discover)
    assert.deepStrictEqual(first, discover)
    assert.isTrue(answered)
    // The ping after the probe carries the probe's envelope: a dual-era server keeps the connection on 2026-07-28.
    const ping = sent.find((m) => "method" in m && m.method === "ping")
    assert.deepStrictEqual(ping && "params" in ping ? ping.params : undefined, (probe as { params: unknown }).params)
  })

  it("a server that ignores the probe and answers ping: legacy once two pings came back, the pings unseen", async () => {
    const { answered, first, sent } = await run((r) => r.method === "ping" ? pong(r.id) : undefined)
    assert.deepStrictEqual(first, {
      jsonrpc: "2.0",
      id: probe.id,
      error: { code: -32601, message: "server/discover unanswered: the server answered ping before it" }
    })
    assert.isTrue(answered)
    assert.deepStrictEqual(sent.map((m) => "method" in m ? m.method : "?"), ["server/discover", "ping", "ping"])
  })

  it("a server silent to both: nothing is decided, the SDK's window is what ends the probe", async () => {
    const { sent, transport } = scripted(() => undefined)
    const race = ProbeRace.wrap(transport)
    const seen: Array<JSONRPCMessage> = []
    race.transport.onmessage = (message) => seen.push(message)
    await race.transport.send(probe)
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepStrictEqual(seen, [])
    assert.isFalse(race.answered())
    assert.strictEqual(sent.length, 2)
  })
})
