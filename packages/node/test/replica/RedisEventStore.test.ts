import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { TestRedis } from "@mcp-bridge/testing"
import type { JSONRPCMessage } from "@modelcontextprotocol/server"
import { Effect, Layer, Schedule } from "effect"
import { randomUUID } from "node:crypto"
import { afterAll, beforeAll } from "vitest"
import * as RedisEventStore from "../../src/replica/RedisEventStore.ts"

let redis: TestRedis.RedisServer
beforeAll(async () => {
  redis = await TestRedis.start()
})
afterAll(() => redis?.stop())

const redisLayer = () => Layer.suspend(() => NodeRedis.layer({ url: redis.url }))
const note = (n: number): JSONRPCMessage => ({ jsonrpc: "2.0", method: "notifications/message", params: { n } })

const replay = (store: RedisEventStore.RedisEventStore, session: string, lastEventId: string) =>
  Effect.promise(async () => {
    const sent: Array<[string, JSONRPCMessage]> = []
    const streamId = await store.forSession(session).replayEventsAfter(lastEventId, {
      send: async (id, message) => {
        sent.push([id, message])
      }
    })
    return { streamId, sent }
  })

/** Waits until `check` holds, polling the store's own counters (an event, not a duration). */
const until = (check: () => boolean) =>
  Effect.suspend(() => check() ? Effect.void : Effect.fail("not yet")).pipe(
    Effect.retry(Schedule.spaced("20 millis")),
    Effect.timeout("20 seconds")
  )

describe("RedisEventStore", () => {
  it.live("replays on another replica what follows the last event id, priming events left out, per session", () =>
    Effect.gen(function*() {
      const prefix = `test:${randomUUID()}:`
      const a = yield* RedisEventStore.make({ prefix })
      const b = yield* RedisEventStore.make({ prefix })
      const session = randomUUID()
      const events = a.forSession(session)
      const priming = yield* Effect.promise(() => events.storeEvent("_GET_stream", {} as JSONRPCMessage))
      const first = yield* Effect.promise(() => events.storeEvent("_GET_stream", note(1)))
      yield* Effect.promise(() => events.storeEvent("_GET_stream", note(2)))
      yield* Effect.promise(() => events.storeEvent("other", note(99)))
      yield* Effect.promise(() => a.forSession(randomUUID()).storeEvent("_GET_stream", note(100)))
      yield* Effect.promise(() => events.storeEvent("_GET_stream", note(3)))
      yield* until(() => a.pending() === 0)

      assert.strictEqual(
        yield* Effect.promise(() => b.forSession(session).getStreamIdForEventId!(first)),
        "_GET_stream"
      )
      const fromPriming = yield* replay(b, session, priming)
      assert.strictEqual(fromPriming.streamId, "_GET_stream")
      assert.deepStrictEqual(fromPriming.sent.map(([, m]) => (m as any).params.n), [1, 2, 3])
      const fromFirst = yield* replay(b, session, first)
      assert.deepStrictEqual(fromFirst.sent.map(([, m]) => (m as any).params.n), [2, 3])
      assert.deepStrictEqual(fromFirst.sent.map(([id]) => id), fromPriming.sent.slice(1).map(([id]) => id))
      // The same replica replays its own queued writes too (it waits for them first).
      const last = yield* Effect.promise(() => events.storeEvent("_GET_stream", note(4)))
      const own = yield* replay(a, session, first)
      assert.deepStrictEqual(own.sent.map(([, m]) => (m as any).params.n), [2, 3, 4])
      assert.deepStrictEqual((yield* replay(a, session, last)).sent, [])
    }).pipe(Effect.scoped, Effect.provide(redisLayer())))

  it.live("never waits for Redis: a paused Redis leaves storeEvent immediate; writes resume when it returns", () =>
    Effect.gen(function*() {
      const prefix = `test:${randomUUID()}:`
      const store = yield* RedisEventStore.make({ prefix, commandTimeout: "300 millis" })
      const session = randomUUID()
      const events = store.forSession(session)
      const first = yield* Effect.promise(() => events.storeEvent("s", note(1)))
      yield* until(() => store.pending() === 0)
      redis.pause()
      try {
        for (let n = 2; n <= 5; n++) yield* Effect.promise(() => events.storeEvent("s", note(n)))
        yield* until(() => store.dropped() > 0 || store.pending() === 0)
      } finally {
        redis.resume()
      }
      // After Redis returns, new events are stored and replayed.
      yield* Effect.promise(() => events.storeEvent("s", note(6)))
      yield* until(() => store.pending() === 0)
      const after = yield* replay(store, session, first)
      const seen = after.sent.map(([, m]) => (m as any).params.n as number)
      assert.include(seen, 6)
      assert.deepStrictEqual(seen, [...seen].sort((x, y) => x - y))
    }).pipe(Effect.scoped, Effect.provide(redisLayer())))
})
