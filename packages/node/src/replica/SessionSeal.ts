/**
 * Sealed session ids for the gateway's 2025-era sessions: the `Mcp-Session-Id` a client receives carries the
 * session's own state (the client's `initialize` parameters and the principal it belongs to), encrypted and
 * authenticated with AES-256-GCM. Any replica holding one of the keys can open it and rebuild the session, so a
 * session outlives the process that created it and no store is consulted on the way.
 *
 * Keys rotate: `keys` lists them newest first; ids are sealed with the first and opened with any (a 4-byte key id
 * in the clear picks the key). Dropping a key from the list ends the sessions sealed with it (their clients get
 * "Session not found" and initialize again). `maxAge` bounds how long an id opens, timed by Effect's `Clock`.
 *
 * Built on `node:crypto` (synchronous AES-GCM, since the SDK's session id generator is synchronous) and `Clock`.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Redacted, Schema } from "effect"
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto"

/**
 * What a sealed id carries: the client's `initialize` parameters, replayed verbatim when another replica rebuilds
 * the session (so negotiation ends the same way), and the principal the session belongs to.
 *
 * @since 0.1.0
 */
export interface SessionState {
  /** The `initialize` request's `params`: `protocolVersion`, `capabilities`, `clientInfo`. */
  readonly initialize: {
    readonly protocolVersion: string
    readonly capabilities: Readonly<Record<string, unknown>>
    readonly clientInfo: Readonly<Record<string, unknown>>
  }
  /** Who opened the session (a principal's stable name), when the gateway authenticates its callers. */
  readonly principal?: string | undefined
}

/**
 * The id is not one of ours: wrong shape, not base64url, or too short to hold a nonce and a tag.
 *
 * @since 0.1.0
 */
export class Malformed extends Schema.TaggedClass<Malformed>()("Malformed", {}) {}

/**
 * The id was sealed with a key that is no longer in the list (rotated out), or with another deployment's key.
 *
 * @since 0.1.0
 */
export class UnknownKey extends Schema.TaggedClass<UnknownKey>()("UnknownKey", {}) {}

/**
 * The id names one of our keys but does not authenticate under it: altered, truncated or forged.
 *
 * @since 0.1.0
 */
export class Tampered extends Schema.TaggedClass<Tampered>()("Tampered", {}) {}

/**
 * The id opened but is older than `maxAge`.
 *
 * @since 0.1.0
 */
export class Expired extends Schema.TaggedClass<Expired>()("Expired", {
  ageMillis: Schema.Number,
  maxAgeMillis: Schema.Number
}) {}

/**
 * A key in `keys` is not 32 bytes (after base64 decoding, for a string).
 *
 * @since 0.1.0
 */
export class InvalidKey extends Schema.TaggedClass<InvalidKey>()("InvalidKey", {
  index: Schema.Number,
  detail: Schema.String
}) {}

/**
 * Why a session id did not open, or why the codec could not be built.
 *
 * @since 0.1.0
 */
export const Reason = Schema.Union([Malformed, UnknownKey, Tampered, Expired, InvalidKey])

/**
 * The type of a `SessionSealError`'s `reason`.
 *
 * @since 0.1.0
 */
export type Reason = typeof Reason.Type

/**
 * A session id did not open (`Malformed`, `UnknownKey`, `Tampered`, `Expired`) or a key is unusable
 * (`InvalidKey`). Never carries the id or a key.
 *
 * @since 0.1.0
 */
export class SessionSealError extends Schema.TaggedError<SessionSealError>()("SessionSealError", {
  reason: Reason
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "Malformed":
        return "Session id is malformed"
      case "UnknownKey":
        return "Session id was sealed with a key this replica does not hold"
      case "Tampered":
        return "Session id does not authenticate"
      case "Expired":
        return `Session id expired (${r.ageMillis} ms old, at most ${r.maxAgeMillis} ms)`
      case "InvalidKey":
        return `Session key ${r.index}: ${r.detail}`
    }
  }
}

/**
 * Options of `make`.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * 32-byte AES-256-GCM keys, newest first: raw bytes, or strings in base64/base64url. Ids are sealed with the
   * first; every key in the list opens them. Share the same list with every replica.
   */
  readonly keys: ReadonlyArray<Redacted.Redacted<string | Uint8Array>>
  /**
   * How long an id opens after it was sealed.
   * @default "7 days"
   */
  readonly maxAge?: Duration.Input | undefined
}

/**
 * Seals and opens session ids.
 *
 * @since 0.1.0
 */
export interface SessionSeal {
  /** A new session id holding `state`, sealed with the newest key; unique per call (random nonce). */
  readonly seal: (state: SessionState) => Effect.Effect<string>
  /** The state inside `id`, when it authenticates under one of the keys and is younger than `maxAge`. */
  readonly open: (id: string) => Effect.Effect<SessionState, SessionSealError>
}

const VERSION = "s1"
const NONCE = 12
const TAG = 16

interface Keyed {
  readonly id: string
  readonly bytes: Buffer
}

const keyId = (bytes: Buffer) =>
  createHash("sha256").update("mcp-bridge session key").update(bytes).digest().subarray(0, 4).toString("base64url")

const toKey = (key: Redacted.Redacted<string | Uint8Array>, index: number) =>
  Effect.gen(function*() {
    const value = Redacted.value(key)
    const bytes = typeof value === "string" ? Buffer.from(value, "base64") : Buffer.from(value)
    if (bytes.length !== 32) {
      return yield* new SessionSealError({
        reason: new InvalidKey({ index, detail: `expected 32 bytes, got ${bytes.length}` })
      })
    }
    return { id: keyId(bytes), bytes } satisfies Keyed
  })

/**
 * A codec over `options.keys`. Fails with `InvalidKey` when the list is empty or a key is not 32 bytes.
 *
 * @example
 * ```ts
 * const codec = yield* SessionSeal.make({ keys: [Redacted.make(process.env.SESSION_KEY!)] })
 * const id = yield* codec.seal({ initialize: params })
 * const state = yield* codec.open(id)
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<SessionSeal, SessionSealError> =>
  Effect.gen(function*() {
    if (options.keys.length === 0) {
      return yield* new SessionSealError({ reason: new InvalidKey({ index: 0, detail: "no keys" }) })
    }
    const keys = yield* Effect.forEach(options.keys, toKey)
    const byId = new Map(keys.map((k) => [k.id, k] as const))
    const newest = keys[0]!
    const maxAgeMillis = Duration.toMillis(Duration.fromInputUnsafe(options.maxAge ?? "7 days"))

    const seal = (state: SessionState) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const header = `${VERSION}.${newest.id}.`
        const nonce = randomBytes(NONCE)
        const cipher = createCipheriv("aes-256-gcm", newest.bytes, nonce)
        cipher.setAAD(Buffer.from(header))
        const plain = Buffer.from(JSON.stringify({ t: now, s: state }))
        const body = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()])
        return header + body.toString("base64url")
      })

    const fail = (reason: Reason) => Effect.fail(new SessionSealError({ reason }))

    const open = (id: string): Effect.Effect<SessionState, SessionSealError> => {
      const parts = id.split(".")
      if (parts.length !== 3 || parts[0] !== VERSION || !/^[A-Za-z0-9_-]+$/.test(parts[2]!)) {
        return fail(new Malformed())
      }
      const key = byId.get(parts[1]!)
      if (key === undefined) return fail(new UnknownKey())
      const body = Buffer.from(parts[2]!, "base64url")
      if (body.length < NONCE + TAG + 2) return fail(new Malformed())
      let opened: { readonly t: number; readonly s: SessionState }
      try {
        const decipher = createDecipheriv("aes-256-gcm", key.bytes, body.subarray(0, NONCE))
        decipher.setAAD(Buffer.from(`${VERSION}.${key.id}.`))
        decipher.setAuthTag(body.subarray(body.length - TAG))
        const plain = Buffer.concat([decipher.update(body.subarray(NONCE, body.length - TAG)), decipher.final()])
        opened = JSON.parse(plain.toString("utf8"))
      } catch {
        return fail(new Tampered())
      }
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const ageMillis = now - opened.t
        return ageMillis > maxAgeMillis
          ? fail(new Expired({ ageMillis, maxAgeMillis }))
          : Effect.succeed(opened.s)
      })
    }

    return { seal, open } satisfies SessionSeal
  })

/**
 * A fresh random 32-byte key in base64url, for `keys` (e.g. `SESSION_KEYS=$(node -e ...)`).
 *
 * @since 0.1.0
 */
export const generateKey = (): Redacted.Redacted<string> => Redacted.make(randomBytes(32).toString("base64url"))
