/**
 * OAuth state the replicas of a gateway share through Redis: a `TokenStore` whose values (tokens, registered
 * clients, DPoP keys) are sealed at rest, and a `RefreshLock`, so that one replica at a time renews a caller's
 * tokens and the others use what it got (a refresh token is often good for one refresh only).
 *
 * Sealing: AES-256-GCM, a random nonce, the entry's Redis key as additional data (a value copied under another
 * caller's key does not open), and a key id in the clear: `k1.<key id>.<base64url(nonce | ciphertext | tag)>`. The
 * keys are the replicas' session keys (`keys`, else `MCP_BRIDGE_SESSION_KEYS`, else the one agreed through Redis),
 * each turned into a key of this store's own by HKDF-SHA256, so that no key serves two purposes. Rotation: values are
 * sealed with the newest key and opened with any; one that does not open (its key rotated out, or altered) is absent,
 * so its user logs in again, and a warning without any secret is logged once per entry.
 *
 * Layout under `prefix`: `tok:<entry>` values, `refresh:<entry>` locks (`SET NX PX`, released by a compare-and-delete
 * script), `session-key` the shared key. Built on Effect's `Redis` service (`send`, `Redis.script`) and `node:crypto`.
 *
 * @since 0.1.0
 */
import { McpAuthError, RefreshLock, TokenStore } from "@mcp-bridge/core"
import { Context, Duration, Effect, Layer, Redacted, Schedule } from "effect"
import { Redis } from "effect/persistence"
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, randomUUID } from "node:crypto"
import * as RedisGuard from "./internal/redisGuard.ts"
import * as SessionKeys from "./internal/sessionKeys.ts"
import { InvalidKey, SessionSealError } from "./SessionSeal.ts"

/**
 * Options of `make`.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Prefix of every key: the replicas' prefix (`RedisStores.layerReplicas` passes its own).
   * @default "mcpgw:"
   */
  readonly prefix?: string | undefined
  /**
   * The replicas' session keys, newest first (see `SessionSeal.Options.keys`); this store derives its own from them.
   * @default `MCP_BRIDGE_SESSION_KEYS`, else the key shared through Redis at `<prefix>session-key`
   */
  readonly keys?: ReadonlyArray<Redacted.Redacted<string | Uint8Array>> | undefined
  /**
   * How long one command may wait for Redis; a store command over it fails with `McpAuthError` (`StoreFailed`).
   * @default "1 second"
   */
  readonly commandTimeout?: Duration.Input | undefined
  /**
   * How long a refresh lock is held at most, should its holder die before releasing it.
   * @default "30 seconds"
   */
  readonly lockTimeToLive?: Duration.Input | undefined
  /**
   * How long a replica waits for a lock another holds before renewing anyway.
   * @default "30 seconds"
   */
  readonly lockWait?: Duration.Input | undefined
}

const VERSION = "k1"
const NONCE = 12
const TAG = 16

interface Key {
  readonly id: string
  readonly bytes: Buffer
}

const deriveKey = (key: Redacted.Redacted<string | Uint8Array>, index: number) =>
  Effect.gen(function*() {
    const value = Redacted.value(key)
    const raw = typeof value === "string" ? Buffer.from(value, "base64") : Buffer.from(value)
    if (raw.length !== 32) {
      return yield* new SessionSealError({
        reason: new InvalidKey({ index, detail: `expected 32 bytes, got ${raw.length}` })
      })
    }
    const bytes = Buffer.from(hkdfSync("sha256", raw, Buffer.alloc(0), "mcp-bridge token store", 32))
    const id = createHash("sha256").update("mcp-bridge token key").update(bytes).digest().subarray(0, 4)
      .toString("base64url")
    return { id, bytes } satisfies Key
  })

const seal = (key: Key, plain: string, aad: string): string => {
  const header = `${VERSION}.${key.id}.`
  const nonce = randomBytes(NONCE)
  const cipher = createCipheriv("aes-256-gcm", key.bytes, nonce)
  cipher.setAAD(Buffer.from(header + aad))
  const body = Buffer.concat([nonce, cipher.update(plain, "utf8"), cipher.final(), cipher.getAuthTag()])
  return header + body.toString("base64url")
}

// The plain text, or `undefined` when the value is not ours, its key is not held, or it does not authenticate.
const open = (keys: ReadonlyMap<string, Key>, sealed: string, aad: string): string | undefined => {
  const parts = sealed.split(".")
  if (parts.length !== 3 || parts[0] !== VERSION) return undefined
  const key = keys.get(parts[1]!)
  if (key === undefined) return undefined
  const body = Buffer.from(parts[2]!, "base64url")
  if (body.length < NONCE + TAG) return undefined
  try {
    const decipher = createDecipheriv("aes-256-gcm", key.bytes, body.subarray(0, NONCE))
    decipher.setAAD(Buffer.from(`${VERSION}.${key.id}.${aad}`))
    decipher.setAuthTag(body.subarray(body.length - TAG))
    return Buffer.concat([decipher.update(body.subarray(NONCE, body.length - TAG)), decipher.final()]).toString("utf8")
  } catch {
    return undefined
  }
}

// KEYS: lock. ARGV: token. Deletes the lock only while it is still the caller's.
const releaseScript = Redis.script(
  (key: string, token: string) => [key, token],
  {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`
  }
).withReturnType<number>()

/**
 * The shared token store and refresh lock over the `Redis` service in context. Fails with `SessionSealError`
 * (`InvalidKey`) for an unusable key, or `RedisError` when the shared key cannot be read at start.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const redis = yield* Redis.Redis
  const prefix = options.prefix ?? "mcpgw:"
  const keys = yield* Effect.forEach(yield* SessionKeys.resolve(redis, prefix, options.keys), deriveKey)
  if (keys.length === 0) {
    return yield* new SessionSealError({ reason: new InvalidKey({ index: 0, detail: "no keys" }) })
  }
  const newest = keys[0]!
  const byId = new Map(keys.map((k) => [k.id, k] as const))
  const guard = yield* RedisGuard.tracked("tokens", "token store", {
    commandTimeout: options.commandTimeout ?? "1 second",
    pause: "1 second"
  })
  const lockTtl = Math.max(
    1,
    Math.floor(Duration.toMillis(Duration.fromInputUnsafe(options.lockTimeToLive ?? "30 seconds")))
  )
  const lockWait = Duration.fromInputUnsafe(options.lockWait ?? "30 seconds")
  const evalRelease = redis.eval(releaseScript)
  const unopened = new Set<string>()

  const run = <A>(key: TokenStore.StoreKey, effect: Effect.Effect<A, Redis.RedisError>) =>
    guard.run(effect).pipe(
      Effect.mapError((failure) =>
        new McpAuthError.McpAuthError({
          reason: new McpAuthError.StoreFailed({ server: key.server, detail: failure.message })
        })
      )
    )
  const entry = (key: TokenStore.StoreKey) => Effect.map(TokenStore.keyString(key), (k) => `${prefix}tok:${k}`)

  const store: TokenStore.TokenStore.Service = {
    get: (key) =>
      Effect.gen(function*() {
        const name = yield* entry(key)
        const sealed = yield* run(key, redis.send<string | null>("GET", name))
        if (sealed === null || sealed === undefined) return undefined
        const plain = open(byId, sealed, name)
        if (plain !== undefined) return Redacted.make(plain)
        if (!unopened.has(name)) {
          unopened.add(name)
          yield* Effect.logWarning(
            `token store: a stored ${key.kind} entry of server "${key.server}" does not open (sealed with a key no ` +
              "longer held, or altered); it counts as absent"
          )
        }
        return undefined
      }),
    set: (key, value) =>
      Effect.flatMap(entry(key), (name) => {
        unopened.delete(name)
        return run(key, redis.send("SET", name, seal(newest, Redacted.value(value), name)))
      }).pipe(Effect.asVoid),
    remove: (key) => Effect.flatMap(entry(key), (name) => run(key, redis.send("DEL", name))).pipe(Effect.asVoid)
  }

  // Polls until the lock is free (SET NX answers), at most `lockWait`; `undefined` when it was not taken.
  const acquire = (name: string, token: string) =>
    guard.run(redis.send<string | null>("SET", name, token, "NX", "PX", String(lockTtl))).pipe(
      Effect.flatMap((reply) => reply === "OK" ? Effect.succeed(true) : Effect.fail("held" as const)),
      Effect.retry({
        while: (failure) => failure === "held",
        schedule: Schedule.exponential("20 millis", 1.5).pipe(
          Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(250))))
        )
      }),
      Effect.timeoutOrElse({
        duration: lockWait,
        orElse: () =>
          Effect.as(
            Effect.logWarning(
              `token store: a refresh lock was still held after ${Duration.format(lockWait)}; renewing without it`
            ),
            false
          )
      }),
      Effect.orElseSucceed(() => false)
    )

  const lock: RefreshLock.RefreshLock.Service = {
    withLock: (key, effect) =>
      Effect.gen(function*() {
        const name = `${prefix}refresh:${yield* TokenStore.keyString({ ...key, kind: "tokens" })}`
        const token = randomUUID()
        // The wait stays interruptible; once the lock is held, its release is sure.
        return yield* Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(restore(acquire(name, token)), (held) =>
            held
              ? restore(effect).pipe(Effect.ensuring(guard.run(evalRelease(name, token)).pipe(Effect.ignore)))
              : restore(effect))
        )
      })
  }

  return { store, lock }
})

/**
 * The shared `TokenStore` and `RefreshLock` over the `Redis` service in context: give them to `McpAuth.layer()`.
 * `RedisStores.layerReplicas` provides them.
 *
 * @example
 * ```ts
 * const Auth = McpAuth.layer().pipe(
 *   Layer.provide(RedisTokenStore.layer()),
 *   Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options = {}
): Layer.Layer<
  TokenStore.TokenStore | RefreshLock.RefreshLock,
  SessionSealError | Redis.RedisError,
  Redis.Redis
> =>
  Layer.effectContext(
    Effect.map(make(options), ({ lock, store }) =>
      Context.make(TokenStore.TokenStore, store).pipe(Context.add(RefreshLock.RefreshLock, lock)))
  )
