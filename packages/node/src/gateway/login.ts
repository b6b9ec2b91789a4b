/**
 * Logins to upstream servers that need the user's own authorization, asked of the user through the gateway: an
 * `AuthInteraction` for the bridge's `McpAuth` that sends the downstream client of the call in flight (found in the
 * relay's registry by caller and server) a URL-mode elicitation to open the authorization server's page, and takes the
 * redirect at the gateway's own `/oauth/callback`. The token is then the bridge's, kept per caller identity (the
 * `TokenStore`), so each user signs in once per server.
 *
 * Built on `Deferred` (the callback completes the pending authorization its `state` names) raced against the
 * elicitation: a client that declines, or lacks URL-mode elicitation, or a call that is not in flight, fails the
 * login at once with an error saying why. The code never reaches a log or a page.
 *
 * A 2026-07-28 `tools/list` has neither a server→client channel nor rounds (and 2026-07-28 has no -32042
 * `URLElicitationRequiredError`): a server that needs its user's login is listed as a sign-in tool instead (see
 * `Gateway.ts`), whose call asks for the login in an `input_required` round; `pendingOf` names the servers whose login
 * waits for the user, which such a list does not wait for.
 *
 * @internal
 */
import { McpAuth, McpAuthError } from "@mcp-bridge/core"
import { Deferred, Effect } from "effect"
import { randomUUID } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Relay } from "./relay.ts"

/** Where the authorization server sends the user's browser back. @internal */
export const CALLBACK_PATH = "/oauth/callback"

/** @internal */
export interface Login {
  /** Asks the downstream client of the caller's call in flight to open the authorization URL. */
  readonly interaction: McpAuth.AuthInteraction.Service
  /** Serves `/oauth/callback`: `true` when `req` was one. */
  readonly callback: (req: IncomingMessage, res: ServerResponse) => boolean
  /** The gateway's public origin, once it listens: the redirect URI is on it. */
  readonly listening: (origin: string) => void
  /** Those of `servers` whose login for `identity` waits for the user to come back. */
  readonly pendingOf: (identity: string | undefined, servers: ReadonlyArray<string>) => ReadonlyArray<string>
}

const page = (res: ServerResponse, status: number, text: string) => {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer"
  })
  res.end(`<!doctype html><meta charset="utf-8"><title>mcp-bridge</title><p>${text}</p>\n`)
}

/** @internal */
export const make = (relay: Relay): Login => {
  // Unset until an HTTP gateway serves the callback (a stdio gateway never does: its logins fail at once).
  let origin: string | undefined
  interface Pending {
    readonly identity: string | undefined
    readonly server: string
    readonly complete: (url: URL) => void
  }
  const pending = new Map<string, Pending>()

  const authorize = (request: McpAuth.AuthorizationRequest) =>
    Effect.gen(function*() {
      const refused = (detail: string) =>
        new McpAuthError.McpAuthError({
          reason: new McpAuthError.AuthorizationDenied({ server: request.server, detail })
        })
      if (origin === undefined) return yield* refused("no HTTP gateway serves the login callback")
      const back = yield* Deferred.make<URL>()
      pending.set(request.state, {
        identity: request.identity,
        server: request.server,
        complete: (url) => Deferred.doneUnsafe(back, Effect.succeed(url))
      })
      const asked = relay.handlers.elicit!({
        mode: "url",
        message: `"${request.server}" needs you to sign in: open the link, then come back.`,
        url: request.url.href,
        elicitationId: randomUUID()
      }, { server: request.server, tool: undefined, identity: request.identity }).pipe(
        Effect.mapError((error) => refused(error instanceof Error ? error.message : String(error))),
        // Accepted: the user went to the page; the redirect ends the login.
        Effect.flatMap((result) =>
          result.action === "accept" ? Effect.never : Effect.fail(refused("the user declined"))
        )
      )
      const url = yield* Effect.raceFirst(Deferred.await(back), asked)
      return yield* McpAuth.parseCallbackResult(request, url)
    }).pipe(Effect.ensuring(Effect.sync(() => pending.delete(request.state))))

  const interaction: McpAuth.AuthInteraction.Service = {
    get redirectUri() {
      return `${origin ?? "http://127.0.0.1"}${CALLBACK_PATH}`
    },
    authorize
  }

  const callback = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? "/", "http://gateway")
    if (url.pathname !== CALLBACK_PATH) return false
    const complete = pending.get(url.searchParams.get("state") ?? "")?.complete
    if (req.method !== "GET" || complete === undefined) {
      page(res, 400, "This sign-in link is not expected (it expired, or was already used).")
      return true
    }
    complete(new URL(`${url.pathname}${url.search}`, origin))
    page(
      res,
      200,
      url.searchParams.has("error")
        ? "Sign-in was refused. You can close this window."
        : "Signed in. You can close this window."
    )
    return true
  }

  const pendingOf = (identity: string | undefined, servers: ReadonlyArray<string>) => {
    const out = new Set<string>()
    for (const entry of pending.values()) {
      if (entry.identity === identity && servers.includes(entry.server)) out.add(entry.server)
    }
    return [...out]
  }

  return { interaction, callback, listening: (at) => void (origin = at), pendingOf }
}
