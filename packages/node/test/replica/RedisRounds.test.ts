import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { TestRedis } from "@mcp-bridge/testing"
import { ProtocolError } from "@modelcontextprotocol/server"
import { Effect, Exit, Fiber, Layer, Schedule, Scope } from "effect"
import { randomUUID } from "node:crypto"
import { afterAll, beforeAll } from "vitest"
import * as RedisRounds from "../../src/replica/RedisRounds.ts"

let redis: TestRedis.RedisServer
beforeAll(async () => {
  redis = await TestRedis.start()
})
afterAll(() => redis?.stop())

/** One replica's forwarding, with its own Redis connection, in a scope of its own (closed: the replica is gone). */
const replica = (prefix: string) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(NodeRedis.layer({ url: redis.url }), scope)
    const rounds = yield* RedisRounds.make({ prefix, heartbeat: "250 millis" }).pipe(
      Effect.provide(context),
      Scope.provide(scope)
    )
    yield* until(rounds.ready)
    return { rounds, stop: Scope.close(scope, Exit.void) }
  })

const until = (check: () => boolean) =>
  Effect.suspend(() => check() ? Effect.void : Effect.fail("not yet")).pipe(
    Effect.retry(Schedule.spaced("20 millis")),
    Effect.timeout("20 seconds")
  )

const retry: RedisRounds.Retry = {
  requestState: "mcp-bridge.r1.x",
  principal: "alice",
  tool: "\u0000elicit",
  inputResponses: { a: { action: "accept" } }
}

const forward = (from: RedisRounds.RedisRounds, to: string, signal = new AbortController().signal) =>
  Effect.promise(() => from.forward(to, retry, signal).then((value) => ({ value }), (error: unknown) => ({ error })))

describe("RedisRounds", () => {
  it.live("a retry forwarded to the replica that holds its call is answered there, its errors as sent", () =>
    Effect.gen(function*() {
      const prefix = `test:${randomUUID()}:`
      const a = yield* replica(prefix)
      const b = yield* replica(prefix)
      const heard: Array<RedisRounds.Retry> = []
      let fail = false
      a.rounds.serve(async (got) => {
        heard.push(got)
        // Four heartbeats, longer than the three of silence a forwarder waits: it keeps waiting while the holder works.
        await new Promise((resolve) => setTimeout(resolve, 1_000))
        if (fail) throw new ProtocolError(-32602, "Invalid requestState: its call ended or expired", { why: "x" })
        return { content: [{ type: "text", text: "done" }] }
      })
      const done = yield* forward(b.rounds, a.rounds.replica)
      assert.deepStrictEqual(done, { value: { content: [{ type: "text", text: "done" }] } })
      assert.deepStrictEqual(heard, [retry])
      fail = true
      const failed = (yield* forward(b.rounds, a.rounds.replica)) as { error: unknown }
      assert.instanceOf(failed.error, ProtocolError)
      assert.strictEqual((failed.error as ProtocolError).code, -32602)
      assert.deepStrictEqual((failed.error as ProtocolError).data, { why: "x" })
      yield* a.stop
      yield* b.stop
    }))

  it.live("a retry for a replica that is gone is refused at once; one whose replica stops answering, after 3 beats", () =>
    Effect.gen(function*() {
      const prefix = `test:${randomUUID()}:`
      const a = yield* replica(prefix)
      const b = yield* replica(prefix)
      const gone = (yield* forward(b.rounds, randomUUID())) as { error: unknown }
      assert.instanceOf(gone.error, ProtocolError)
      assert.strictEqual((gone.error as ProtocolError).code, -32602)
      assert.include((gone.error as ProtocolError).message, "gone")
      // A holder that takes the retry, then stops without an answer.
      let taken = false
      a.rounds.serve(() => {
        taken = true
        return new Promise(() => undefined)
      })
      const fiber = yield* Effect.forkChild(forward(b.rounds, a.rounds.replica))
      yield* until(() => taken)
      yield* a.stop
      const silent = (yield* Fiber.join(fiber)) as { error: unknown }
      assert.instanceOf(silent.error, ProtocolError)
      assert.strictEqual((silent.error as ProtocolError).code, -32603)
      yield* b.stop
    }))

  it.live("a forwarded retry the client cancels is cancelled on the replica that holds it", () =>
    Effect.gen(function*() {
      const prefix = `test:${randomUUID()}:`
      const a = yield* replica(prefix)
      const b = yield* replica(prefix)
      let cancelled = false
      let taken = false
      a.rounds.serve((_retry, signal) => {
        taken = true
        return new Promise((_, reject) =>
          signal.addEventListener("abort", () => {
            cancelled = true
            reject(signal.reason)
          })
        )
      })
      const abort = new AbortController()
      const fiber = yield* Effect.forkChild(forward(b.rounds, a.rounds.replica, abort.signal))
      yield* until(() => taken)
      abort.abort(new Error("cancelled by the client"))
      const result = (yield* Fiber.join(fiber)) as { error: unknown }
      assert.strictEqual((result.error as Error).message, "cancelled by the client")
      yield* until(() => cancelled)
      yield* a.stop
      yield* b.stop
    }))
})
