/**
 * An OAuth-protected MCP server for tests, on 127.0.0.1: one HTTP server that is both the authorization server and the
 * protected resource, so that a bridge can be driven through the whole MCP authorization flow with real HTTP.
 *
 * - Protected resource metadata at `/.well-known/oauth-protected-resource/mcp` (RFC 9728), named in the `401`
 *   challenge; authorization server metadata at `/.well-known/oauth-authorization-server` (RFC 8414), with
 *   `authorization_response_iss_parameter_supported` (RFC 9207).
 * - Dynamic client registration (RFC 7591), pre-registered clients (secret, or a public key for `private_key_jwt`),
 *   and, optionally, client ID metadata document URLs.
 * - `/authorize` approves at once (the test's "browser" follows its redirect): PKCE S256 and the resource indicator
 *   are required; the user is the `test_user` query parameter (default `"user"`), so that a test can play several.
 * - `/token`: authorization code (PKCE verified), refresh token (rotated), client credentials; client authentication
 *   by HTTP Basic, POST body or `private_key_jwt` (ES256, RS256).
 * - `/mcp` (both protocol eras, stateless): every request needs a valid bearer token; `tools/call` of a tool in
 *   `toolScopes` needs that scope, else `403 insufficient_scope`. Tools: `whoami` (the token's user, client and
 *   scope), `echo`, and one per `toolScopes` entry.
 *
 * - With `jwtAccessTokens`, access tokens are ES256 JWTs (RFC 9068) its JWKS (`/jwks`, the metadata's `jwks_uri`)
 *   verifies, for testing a resource server: `signJwt` mints any claims (or a key id, or a key the JWKS lacks),
 *   `rotateSigningKey` moves to a new key.
 *
 * Everything it sees is recorded in `events()`; every secret it issued is in `issuedSecrets()`.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import { startAuthServer } from "./internal/authServer.ts"
import type { TestAuthServer, TestAuthServerOptions } from "./internal/authServer.ts"

export type {
  /**
   * What the server saw.
   *
   * @since 0.1.0
   */
  AuthEvent,
  /**
   * A running server.
   *
   * @since 0.1.0
   */
  TestAuthServer,
  /**
   * @since 0.1.0
   */
  TestAuthServerOptions,
  /**
   * A client registered beforehand.
   *
   * @since 0.1.0
   */
  TestClient
} from "./internal/authServer.ts"

/**
 * Starts a server on an ephemeral port of 127.0.0.1.
 *
 * @since 0.1.0
 */
export const start = (options: TestAuthServerOptions = {}): Promise<TestAuthServer> => startAuthServer(options)

/**
 * {@link start} as a scoped resource.
 *
 * @since 0.1.0
 */
export const scoped = (options: TestAuthServerOptions = {}): Effect.Effect<TestAuthServer, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => start(options)), (server) => Effect.promise(() => server.close()))

/**
 * The user's side of an authorization against this server: follows the authorization URL (as the given user) to its
 * redirect and returns the redirect URL. Use it as the facade's `onAuthorization` or with `McpAuth.layerInteraction`.
 *
 * @example
 * ```ts
 * McpAuth.layerInteraction(TestAuthServer.approveAs((request) => request.identity ?? "anonymous"))
 * ```
 *
 * @since 0.1.0
 */
export const approveAs = (
  user: string | ((request: { readonly identity: string | undefined }) => string)
) =>
async (request: { readonly url: URL; readonly identity: string | undefined }): Promise<string> => {
  const url = new URL(request.url)
  url.searchParams.set("test_user", typeof user === "string" ? user : user(request))
  const response = await fetch(url, { redirect: "manual" })
  await response.text()
  const location = response.headers.get("location")
  if (location === null) throw new Error(`authorization endpoint answered ${response.status} without a redirect`)
  return location
}
