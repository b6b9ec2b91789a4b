/**
 * Where OAuth tokens and registered clients are kept: a `Context.Service` over any `KeyValueStore` of
 * `effect/persistence` (memory here; files with `NodeAuth.layerFileStore` in `@mcp-bridge/node`; Redis or SQL
 * through their `KeyValueStore` layers). Entries are keyed by server and caller identity (the identity hashed), and
 * values are `Redacted` JSON documents, so that one caller's token never serves another and no token is ever shown.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Redacted } from "effect"
import { KeyValueStore } from "effect/persistence"
import { McpAuthError, StoreFailed } from "../errors/McpAuthError.ts"

/**
 * What one entry of the token store holds: the tokens of one server for one caller identity, the DPoP signing key
 * those tokens are bound to (`"dpop"`, a private JWK: as secret as the tokens), or the client a server's authorization
 * server registered for the bridge (shared by every identity).
 *
 * @since 0.1.0
 */
export interface StoreKey {
  readonly kind: "tokens" | "client" | "dpop"
  readonly server: string
  /** `undefined`: the anonymous caller (always `undefined` for `"client"`). */
  readonly identity: string | undefined
}

/**
 * Where tokens and registered clients are kept. Values are JSON documents, `Redacted`.
 *
 * @since 0.1.0
 */
export class TokenStore extends Context.Service<TokenStore, TokenStore.Service>()("@mcp-bridge/core/TokenStore") {}

/**
 * The type of the token store service, `TokenStore.Service`.
 *
 * @since 0.1.0
 */
export declare namespace TokenStore {
  /**
   * What a token store does: get, set and remove one entry (`StoreKey`), failing with `McpAuthError` (`StoreFailed`)
   * when the storage fails. `make` builds one over any `KeyValueStore`; implement it yourself only for storage that is
   * not one.
   *
   * @since 0.1.0
   */
  export interface Service {
    readonly get: (key: StoreKey) => Effect.Effect<Redacted.Redacted<string> | undefined, McpAuthError>
    readonly set: (key: StoreKey, value: Redacted.Redacted<string>) => Effect.Effect<void, McpAuthError>
    readonly remove: (key: StoreKey) => Effect.Effect<void, McpAuthError>
  }
}

const hex = (bytes: ArrayBuffer) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("")

/**
 * The string key of an entry in a `KeyValueStore`: `tokens/<server>/<identity digest>` (`dpop/...` alike) or
 * `client/<server>`. The
 * identity is hashed (SHA-256), so that file names and database keys never hold it.
 *
 * @since 0.1.0
 */
export const keyString = (key: StoreKey): Effect.Effect<string> =>
  key.kind === "client" || key.identity === undefined
    ? Effect.succeed(`${key.kind}/${key.server}${key.kind === "client" ? "" : "/anonymous"}`)
    : Effect.promise(() => crypto.subtle.digest("SHA-256", new TextEncoder().encode(key.identity))).pipe(
      Effect.map((digest) => `${key.kind}/${key.server}/${hex(digest).slice(0, 40)}`)
    )

/**
 * A token store over any `KeyValueStore` (memory, files, Redis, SQL...).
 *
 * @since 0.1.0
 */
export const make = (kv: KeyValueStore.KeyValueStore): TokenStore.Service => {
  const failed = (key: StoreKey) => (error: { readonly message: string }) =>
    new McpAuthError({ reason: new StoreFailed({ server: key.server, detail: error.message }) })
  return {
    get: (key) =>
      Effect.flatMap(keyString(key), (k) => kv.get(k)).pipe(
        Effect.map((value) => value === undefined ? undefined : Redacted.make(value)),
        Effect.mapError(failed(key))
      ),
    set: (key, value) =>
      Effect.flatMap(keyString(key), (k) => kv.set(k, Redacted.value(value))).pipe(Effect.mapError(failed(key))),
    remove: (key) => Effect.flatMap(keyString(key), (k) => kv.remove(k)).pipe(Effect.mapError(failed(key)))
  }
}

/**
 * The token store over the `KeyValueStore` in context.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<TokenStore, never, KeyValueStore.KeyValueStore> = Layer.effect(
  TokenStore,
  Effect.gen(function*() {
    return make(yield* KeyValueStore.KeyValueStore)
  })
)

/**
 * Tokens in memory: they last as long as the layer.
 *
 * @since 0.1.0
 */
export const layerMemory: Layer.Layer<TokenStore> = layer.pipe(
  Layer.provide(KeyValueStore.layerMemory)
)
