/**
 * The Node parts of OAuth for MCP servers (see `McpAuth` in `@mcp-bridge/core`): tokens kept in files, and the
 * loopback redirect (RFC 8252 §7.3) that receives the authorization code of an interactive login.
 *
 * The file store is Effect's `KeyValueStore.layerFileSystem` under a directory only the user can open (mode 0700):
 * one file per server and caller identity (the identity hashed, see `TokenStore.keyString`), holding the token JSON.
 * The loopback interaction is a `node:http` server on 127.0.0.1 that lives as long as its layer: each authorization
 * waits for the redirect carrying its own `state`, so that concurrent logins (several servers, several identities)
 * do not mix.
 *
 * @since 0.1.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import { McpAuth, McpAuthError, TokenStore } from "@mcp-bridge/core"
import { Deferred, Effect, FileSystem, Layer } from "effect"
import { KeyValueStore } from "effect/persistence"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

/**
 * Tokens (and registered clients) in files under `directory`, created with mode 0700 (an existing one is narrowed to
 * it). The directory belongs to the store: `KeyValueStore.clear` would remove it. A directory that cannot be prepared
 * is a defect when the layer is built (like a configuration error, it needs the operator); failed reads and writes
 * later are `McpAuthError`s (`StoreFailed`).
 *
 * @example
 * ```ts
 * McpAuth.layer().pipe(Layer.provide(NodeAuth.layerFileStore(`${os.homedir()}/.mcp-bridge/tokens`)))
 * ```
 *
 * @since 0.1.0
 */
export const layerFileStore = (directory: string): Layer.Layer<TokenStore.TokenStore> =>
  TokenStore.layer.pipe(
    Layer.provide(Layer.unwrap(Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      yield* fs.makeDirectory(directory, { recursive: true, mode: 0o700 })
      yield* fs.chmod(directory, 0o700)
      return KeyValueStore.layerFileSystem(directory)
    }))),
    Layer.provide(Layer.merge(NodeFileSystem.layer, NodePath.layer)),
    Layer.orDie
  )

/**
 * Options of `layerLoopback`: the port and path of the redirect URI on 127.0.0.1, and how the authorization URL is
 * shown to the user. Set a fixed `port` when the redirect URI must be known in advance, e.g. registered with a
 * pre-registered client.
 *
 * @since 0.1.0
 */
export interface LoopbackOptions {
  /** The port on 127.0.0.1. @default 0 (an ephemeral port, the same for the layer's life) */
  readonly port?: number | undefined
  /** The path of the redirect URI. @default "/callback" */
  readonly path?: string | undefined
  /**
   * Shows the authorization URL to the user (opens a browser, prints it...).
   * @default logs it at level Info
   */
  readonly open?: ((request: McpAuth.AuthorizationRequest) => Effect.Effect<void>) | undefined
}

const page = (title: string, text: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head>` +
  `<body style="font-family:sans-serif;margin:4em"><h1>${title}</h1><p>${text}</p></body></html>`

/**
 * An `AuthInteraction` that receives the redirect on 127.0.0.1: the redirect URI is
 * `http://127.0.0.1:<port><path>`; the server listens from the layer's start to its end.
 *
 * @example
 * ```ts
 * const auth = McpAuth.layerMemory().pipe(Layer.provide(NodeAuth.layerLoopback({ port: 8765 })))
 * ```
 *
 * @since 0.1.0
 */
export const layerLoopback = (options: LoopbackOptions = {}): Layer.Layer<McpAuth.AuthInteraction> =>
  Layer.effect(
    McpAuth.AuthInteraction,
    Effect.gen(function*() {
      const path = options.path ?? "/callback"
      const waiting = new Map<string, Deferred.Deferred<McpAuth.CallbackResult, McpAuthError.McpAuthError>>()
      const server = yield* Effect.acquireRelease(
        Effect.callback<ReturnType<typeof createServer>>((resume) => {
          const http = createServer((req, res) => {
            const url = new URL(req.url ?? "/", "http://127.0.0.1")
            const state = url.searchParams.get("state")
            const waiter = state === null ? undefined : waiting.get(state)
            if (url.pathname !== path || waiter === undefined) {
              res.writeHead(400, { "content-type": "text/html; charset=utf-8" })
              res.end(page("Unknown authorization", "This authorization is not awaited (expired or already done)."))
              return
            }
            waiting.delete(state!)
            // The whole redirect URL goes to `parseCallbackResult` (code, state, iss, error); none of it is echoed.
            Deferred.doneUnsafe(waiter, Effect.succeed(url))
            res.writeHead(200, { "content-type": "text/html; charset=utf-8" })
            res.end(page("Authorization complete", "You can close this window and return to the application."))
          })
          http.once("error", (error) => resume(Effect.die(error)))
          http.listen(options.port ?? 0, "127.0.0.1", () => resume(Effect.succeed(http)))
        }),
        (http) =>
          Effect.callback<void>((resume) => {
            http.close(() => resume(Effect.void))
            http.closeAllConnections()
          })
      )
      const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`
      const open = options.open ??
        ((request: McpAuth.AuthorizationRequest) =>
          Effect.logInfo(`To authorize MCP server "${request.server}", open ${request.url.href}`))
      return McpAuth.AuthInteraction.of({
        redirectUri,
        authorize: (request) =>
          Effect.gen(function*() {
            const deferred = yield* Deferred.make<McpAuth.CallbackResult, McpAuthError.McpAuthError>()
            waiting.set(request.state, deferred)
            yield* open(request)
            const result = yield* Deferred.await(deferred)
            return yield* McpAuth.parseCallbackResult(request, result)
          }).pipe(Effect.ensuring(Effect.sync(() => waiting.delete(request.state))))
      })
    })
  )
