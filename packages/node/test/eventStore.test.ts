import { assert, describe, it } from "@effect/vitest"
import type { JSONRPCMessage } from "@modelcontextprotocol/server"
import * as EventStore from "../src/gateway/eventStore.ts"

const note = (n: number): JSONRPCMessage => ({ jsonrpc: "2.0", method: "notifications/message", params: { n } })

const replay = async (store: ReturnType<typeof EventStore.make>, after: string) => {
  const sent: Array<number> = []
  const stream = await store.replayEventsAfter(after, {
    send: async (_id, message) => void sent.push((message as unknown as { params: { n: number } }).params.n)
  })
  return { stream, sent }
}

describe("eventStore", () => {
  it("replays what followed an event on its own stream, and forgets the oldest beyond its bound", async () => {
    const store = EventStore.make(4)
    const ids: Array<string> = []
    for (let n = 0; n < 6; n++) ids.push(await store.storeEvent(n % 2 === 0 ? "a" : "b", note(n)))
    // Kept: 2, 3, 4, 5 (0 and 1 forgotten).
    assert.deepStrictEqual(await replay(store, ids[2]!), { stream: "a", sent: [4] })
    assert.deepStrictEqual(await replay(store, ids[3]!), { stream: "b", sent: [5] })
    // A forgotten id: what is left of its stream.
    assert.deepStrictEqual(await replay(store, ids[0]!), { stream: "a", sent: [2, 4] })
    assert.strictEqual(await store.getStreamIdForEventId!(ids[5]!), "b")
  })
})
