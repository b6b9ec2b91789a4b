import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { TestClock } from "effect/testing"
import * as SessionSeal from "../../src/replica/SessionSeal.ts"

const state: SessionSeal.SessionState = {
  initialize: {
    protocolVersion: "2025-11-25",
    capabilities: { elicitation: {}, roots: { listChanged: true } },
    clientInfo: { name: "client", version: "1.0.0" }
  },
  principal: "alice"
}

const reasonOf = (effect: Effect.Effect<unknown, SessionSeal.SessionSealError>) =>
  Effect.map(Effect.flip(effect), (e) => e.reason)

describe("SessionSeal", () => {
  it.effect("opens what it sealed, and each seal is a different visible-ASCII id", () =>
    Effect.gen(function*() {
      const codec = yield* SessionSeal.make({ keys: [SessionSeal.generateKey()] })
      const a = yield* codec.seal(state)
      const b = yield* codec.seal(state)
      assert.notStrictEqual(a, b)
      assert.match(a, /^[\x21-\x7e]+$/)
      assert.deepStrictEqual(yield* codec.open(a), state)
      assert.deepStrictEqual(yield* codec.open(b), state)
    }))

  it.effect("rotation: an old key still opens ids sealed before; a dropped key does not", () =>
    Effect.gen(function*() {
      const oldKey = SessionSeal.generateKey()
      const newKey = SessionSeal.generateKey()
      const before = yield* SessionSeal.make({ keys: [oldKey] })
      const during = yield* SessionSeal.make({ keys: [newKey, oldKey] })
      const after = yield* SessionSeal.make({ keys: [newKey] })
      const oldId = yield* before.seal(state)
      const newId = yield* during.seal(state)
      assert.deepStrictEqual(yield* during.open(oldId), state)
      assert.deepStrictEqual(yield* after.open(newId), state)
      // Ids sealed during rotation are sealed with the newest key, so the old replicas (not yet rotated) refuse them
      // until they receive the new list: roll the list out before the key order changes.
      assert.strictEqual((yield* reasonOf(before.open(newId)))._tag, "UnknownKey")
      assert.strictEqual((yield* reasonOf(after.open(oldId)))._tag, "UnknownKey")
    }))

  it.effect("refuses altered, truncated and foreign ids", () =>
    Effect.gen(function*() {
      const codec = yield* SessionSeal.make({ keys: [SessionSeal.generateKey()] })
      const id = yield* codec.seal(state)
      const [v, kid, body] = id.split(".") as [string, string, string]
      const flipped = body.slice(0, 20) + (body[20] === "A" ? "B" : "A") + body.slice(21)
      assert.strictEqual((yield* reasonOf(codec.open(`${v}.${kid}.${flipped}`)))._tag, "Tampered")
      assert.strictEqual((yield* reasonOf(codec.open(`${v}.${kid}.${body.slice(0, -4)}`)))._tag, "Tampered")
      assert.strictEqual((yield* reasonOf(codec.open("3f0c1d2e-uuid")))._tag, "Malformed")
      assert.strictEqual((yield* reasonOf(codec.open(`${v}.${kid}.abc`)))._tag, "Malformed")
      assert.strictEqual((yield* reasonOf(codec.open(`s9.${kid}.${body}`)))._tag, "Malformed")
      // Another deployment's key with the same key id (forged header) does not authenticate.
      const other = yield* SessionSeal.make({ keys: [SessionSeal.generateKey()] })
      const foreign = (yield* other.seal(state)).split(".")[2]!
      assert.strictEqual((yield* reasonOf(codec.open(`${v}.${kid}.${foreign}`)))._tag, "Tampered")
    }))

  it.effect("expires after maxAge, by the Clock", () =>
    Effect.gen(function*() {
      const codec = yield* SessionSeal.make({ keys: [SessionSeal.generateKey()], maxAge: "1 hour" })
      const id = yield* codec.seal(state)
      yield* TestClock.adjust("59 minutes")
      assert.deepStrictEqual(yield* codec.open(id), state)
      yield* TestClock.adjust("2 minutes")
      const reason = yield* reasonOf(codec.open(id))
      assert.strictEqual(reason._tag, "Expired")
      if (reason._tag === "Expired") assert.strictEqual(reason.maxAgeMillis, 3_600_000)
    }))

  it.effect("refuses keys that are not 32 bytes, and an empty list; never shows a key", () =>
    Effect.gen(function*() {
      const short = yield* reasonOf(SessionSeal.make({ keys: [Redacted.make("c2hvcnQ")] }))
      assert.strictEqual(short._tag, "InvalidKey")
      const none = yield* reasonOf(SessionSeal.make({ keys: [] }))
      assert.strictEqual(none._tag, "InvalidKey")
      const key = SessionSeal.generateKey()
      const codec = yield* SessionSeal.make({ keys: [key] })
      const error = yield* Effect.flip(codec.open("s1.AAAAAA.AAAA"))
      assert.notInclude(`${error.message} ${JSON.stringify(error)}`, Redacted.value(key) as string)
    }))
})
