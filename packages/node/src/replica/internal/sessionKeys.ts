// The replicas' session keys, newest first: `MCP_BRIDGE_SESSION_KEYS` (comma-separated base64url), else one key the
// first replica stores in Redis (`SET NX`) and every other replica reads, so replicas agree without setup.
import { Effect, Redacted } from "effect"
import type { Redis } from "effect/persistence"
import { randomBytes } from "node:crypto"

/** The keys of `MCP_BRIDGE_SESSION_KEYS`, when it is set. */
export const keysFromEnv = (): ReadonlyArray<Redacted.Redacted<string>> | undefined => {
  const raw = process.env["MCP_BRIDGE_SESSION_KEYS"]
  if (raw === undefined || raw.trim() === "") return undefined
  return raw.split(",").map((k) => Redacted.make(k.trim())).filter((k) => Redacted.value(k) !== "")
}

/** One key for every replica, at `<prefix>session-key`, created by whichever starts first. */
export const sharedKey = (redis: Redis.Redis["Service"], prefix: string) =>
  Effect.gen(function*() {
    const key = `${prefix}session-key`
    yield* redis.send("SET", key, randomBytes(32).toString("base64url"), "NX")
    const value = yield* redis.send<string | null>("GET", key)
    return Redacted.make(value ?? "")
  })

/** `keys`, else `MCP_BRIDGE_SESSION_KEYS`, else the key shared through Redis. */
export const resolve = (
  redis: Redis.Redis["Service"],
  prefix: string,
  keys: ReadonlyArray<Redacted.Redacted<string | Uint8Array>> | undefined
) =>
  keys !== undefined ? Effect.succeed(keys) : Effect.suspend(() => {
    const env = keysFromEnv()
    return env !== undefined ? Effect.succeed(env) : Effect.map(sharedKey(redis, prefix), (key) => [key])
  })
