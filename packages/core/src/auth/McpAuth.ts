/**
 * OAuth 2.1 for MCP servers, per the MCP authorization specification, on the official SDK's auth support.
 *
 * A server entry with an `auth` section gets its tokens from here: discovery (protected-resource and authorization
 * server metadata, again when a server moves to a new authorization server), the client (pre-registered, a metadata
 * document, or dynamic registration), the grant (authorization code with PKCE through an `AuthInteraction`, client
 * credentials, JWT bearer with a workload's token), DPoP when asked, refresh, resource indicators and scope step-up.
 * Tokens and DPoP keys live in a `TokenStore`, keyed by server and `CallerIdentity`; secrets stay `Redacted`. With a
 * `RefreshLock` in context, expired tokens are renewed under it (processes sharing a store renew once).
 *
 * Built on the SDK's `auth()` and an `OAuthClientProvider` of ours (`internal/oauthFlow.ts`). The reasoning:
 * docs/design.md, "OAuth".
 *
 * @since 0.1.0
 */
import type { FetchLike } from "@modelcontextprotocol/client"
import { Clock, Config, Context, Duration, Effect, FileSystem, Layer, Option, Redacted, Schema } from "effect"
import {
  AssertionUnavailable,
  AuthorizationDenied,
  InteractionRequired,
  InteractionTimeout,
  McpAuthError
} from "../errors/McpAuthError.ts"
import { CallerIdentity } from "./CallerIdentity.ts"
import { DPOP_ALGORITHMS } from "./internal/dpopKeys.ts"
import {
  AuthorizationFailed,
  type FlowEnv,
  type FlowSettings,
  isAuthorizationFailed,
  makeFlow,
  type OAuthFlow
} from "./internal/oauthFlow.ts"
import * as RefreshLock from "./RefreshLock.ts"
import * as TokenStore from "./TokenStore.ts"

// -----------------------------------------------------------------------------
// Settings (the `auth` section of a server entry)
// -----------------------------------------------------------------------------

const Secret = Schema.RedactedFromValue(Schema.String)

const Url = Schema.String.check(Schema.isPattern(/^https?:\/\/[^\s]+$/, { expected: "an http:// or https:// URL" }))

const HttpsUrl = Schema.String.check(Schema.isPattern(/^https:\/\/[^\s/]+\/[^\s]+$/, {
  expected: "an https:// URL with a path"
}))

/**
 * How the bridge obtains tokens for a server.
 *
 * - `"authorization_code"` (default): a user authorizes in a browser (PKCE), through the `AuthInteraction`;
 * - `"client_credentials"`: the bridge authenticates as itself (`clientId` with `clientSecret` or `privateKey`);
 * - `"jwt_bearer"`: a JWT is the grant (RFC 7523): the workload's own (`assertion`: a Kubernetes service-account
 *   token, a cloud workload identity), or, with `idp`, enterprise-managed cross-app access (SEP-990): the user's ID
 *   token is exchanged at the identity provider for an authorization grant.
 *
 * @since 0.1.0
 */
export const Grant = Schema.Literals(["authorization_code", "client_credentials", "jwt_bearer"]).annotate({
  expected: "one of \"authorization_code\", \"client_credentials\", \"jwt_bearer\""
})

/**
 * The type of `Grant`, as a server's `auth.grant` holds it.
 *
 * @since 0.1.0
 */
export type Grant = typeof Grant.Type

/**
 * The identity provider of the cross-app access grant (`grant: "jwt_bearer"`).
 *
 * @since 0.1.0
 */
export const IdpSettings = Schema.Struct({
  /** The identity provider's token endpoint (RFC 8693 token exchange). */
  tokenEndpoint: Url,
  /** The client id the bridge has at the identity provider. */
  clientId: Schema.NonEmptyString,
  clientSecret: Schema.optionalKey(Secret),
  /** The user's ID token; without it, `AuthInteraction.identityToken` provides one per caller. */
  idToken: Schema.optionalKey(Secret)
})

/**
 * Where the workload's JWT of the `jwt_bearer` grant comes from: a file (`file`, read again at every token request, so
 * that a rotated service-account token is used as soon as it is written), an environment variable (`env`), or the
 * value itself (`value`). A function is `McpAuth`'s `assertion` option.
 *
 * @since 0.1.0
 */
export const AssertionSource = Schema.Union([
  Schema.Struct({ file: Schema.NonEmptyString }),
  Schema.Struct({ env: Schema.NonEmptyString }),
  Schema.Struct({ value: Secret })
]).annotate({ expected: "{ \"file\": path }, { \"env\": variable } or { \"value\": jwt }" })

/**
 * The type of `AssertionSource`.
 *
 * @since 0.1.0
 */
export type AssertionSource = typeof AssertionSource.Type

/**
 * The JWS algorithms of DPoP proofs.
 *
 * @since 0.1.0
 */
export const DpopAlgorithm = Schema.Literals(DPOP_ALGORITHMS)

const AuthFields = Schema.Struct({
  grant: Schema.optionalKey(Grant),
  /** A client registered beforehand (no registration at the authorization server). */
  clientId: Schema.optionalKey(Schema.NonEmptyString),
  clientSecret: Schema.optionalKey(Secret),
  /** The HTTPS URL of the bridge's client ID metadata document, used as its `client_id` where supported. */
  clientMetadataUrl: Schema.optionalKey(HttpsUrl),
  /** `client_name` in dynamic registration. @default "mcp-bridge" */
  clientName: Schema.optionalKey(Schema.NonEmptyString),
  /** Scope to ask for when neither the server's challenge nor its metadata names one (space-separated). */
  scope: Schema.optionalKey(Schema.String),
  /** The redirect URI registered for the client. @default the interaction's */
  redirectUri: Schema.optionalKey(Url),
  /** How the client authenticates at the token endpoint. @default negotiated with the authorization server */
  tokenEndpointAuthMethod: Schema.optionalKey(
    Schema.Literals(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"])
  ),
  /** `private_key_jwt`: the signing key, PKCS#8 PEM or a JWK as JSON. */
  privateKey: Schema.optionalKey(Secret),
  /** `private_key_jwt`: the JWS algorithm. @default "RS256" */
  signingAlgorithm: Schema.optionalKey(Schema.NonEmptyString),
  /** The issuer the pre-registered client belongs to: its credentials are sent to no other authorization server. */
  issuer: Schema.optionalKey(Url),
  idp: Schema.optionalKey(IdpSettings),
  /** The workload's JWT for the `jwt_bearer` grant (workload identity federation, RFC 7523). */
  assertion: Schema.optionalKey(AssertionSource),
  /**
   * Sender-constrained tokens (DPoP, RFC 9449): a proof of a key the bridge holds at the token endpoint and on every
   * request, tokens bound to it. @default McpAuth's `dpop` option (false)
   */
  dpop: Schema.optionalKey(Schema.Boolean),
  /** The JWS algorithm of DPoP proofs. @default "ES256" */
  dpopAlgorithm: Schema.optionalKey(DpopAlgorithm),
  /**
   * Accept authorization server metadata whose `issuer` does not match its URL (RFC 8414 §3.3). Weakens security:
   * only for a known misconfigured authorization server. @default false
   */
  allowIssuerMismatch: Schema.optionalKey(Schema.Boolean)
})

/**
 * The `auth` section of an HTTP or SSE server entry. `{}` is enough for a spec-compliant server and an interactive
 * user: discovery, registration and scopes come from the server.
 *
 * @example
 * ```json
 * { "url": "https://mcp.example.com/mcp", "auth": { "scope": "files:read" } }
 * { "url": "https://api.example.com/mcp", "auth": { "grant": "client_credentials", "clientId": "bridge", "clientSecret": "..." } }
 * ```
 *
 * @since 0.1.0
 */
export const AuthSettings = AuthFields.check(Schema.makeFilter((auth) => {
  const grant = auth.grant ?? "authorization_code"
  if (grant !== "authorization_code" && auth.clientId === undefined) {
    return { path: ["clientId"], issue: `Expected a clientId for the ${grant} grant` }
  }
  if (grant === "client_credentials" && auth.clientSecret === undefined && auth.privateKey === undefined) {
    return { path: ["clientSecret"], issue: "Expected a clientSecret or a privateKey for the client_credentials grant" }
  }
  if (grant === "jwt_bearer" && auth.idp !== undefined && auth.assertion !== undefined) {
    return {
      path: ["assertion"],
      issue: "Expected either an assertion (workload identity) or an idp (cross-app access)"
    }
  }
  if (grant !== "jwt_bearer" && auth.assertion !== undefined) {
    return { path: ["assertion"], issue: "An assertion is the grant of \"jwt_bearer\": set grant to \"jwt_bearer\"" }
  }
  if (auth.tokenEndpointAuthMethod === "private_key_jwt" && auth.privateKey === undefined) {
    return { path: ["privateKey"], issue: "Expected a privateKey for private_key_jwt" }
  }
  return true
}))

/**
 * The decoded type of `AuthSettings`: a server entry's `auth` section with its secrets as `Redacted` values, as
 * `Target.settings` carries it to the OAuth flow.
 *
 * @since 0.1.0
 */
export type AuthSettings = typeof AuthSettings.Type

/**
 * True for the error an OAuth-protected session's `fetch` throws when it cannot authorize a request (the SDK sees an
 * `UnauthorizedError`). `McpSession` maps it to the reason `Unauthorized`.
 *
 * @since 0.1.0
 */
export const isAuthorizationFailure: (error: unknown) => error is AuthorizationFailed = isAuthorizationFailed

// -----------------------------------------------------------------------------
// Interaction
// -----------------------------------------------------------------------------

/**
 * One authorization the user must grant: open `url` (the authorization server's page), then come back with the code.
 *
 * @since 0.1.0
 */
export interface AuthorizationRequest {
  readonly server: string
  /** The caller the authorization is for (`CallerIdentity`). */
  readonly identity: string | undefined
  /** The authorization URL (no secret in it: PKCE sends only the challenge). */
  readonly url: URL
  /** The `state` the authorization server echoes to the redirect URI. */
  readonly state: string
  /** Where the authorization server redirects the user's browser. */
  readonly redirectUri: string
}

/**
 * What came back to the redirect URI.
 *
 * @since 0.1.0
 */
export interface AuthorizationResponse {
  readonly code: Redacted.Redacted<string>
  /** The `state` parameter, checked against the request's when present. */
  readonly state?: string | undefined
  /** The `iss` parameter (RFC 9207), checked against the authorization server's issuer. */
  readonly iss?: string | undefined
}

/**
 * How the bridge asks a user to authorize: shows the URL (browser, chat message, device screen) and waits for the
 * redirect. `NodeAuth.layerLoopback` in `@mcp-bridge/node` listens on 127.0.0.1 for it; `layerInteraction` adapts a
 * Promise callback.
 *
 * @since 0.1.0
 */
export class AuthInteraction
  extends Context.Service<AuthInteraction, AuthInteraction.Service>()("@mcp-bridge/core/AuthInteraction")
{}

/**
 * The type of the interaction service, `AuthInteraction.Service`.
 *
 * @since 0.1.0
 */
export declare namespace AuthInteraction {
  /**
   * What an interaction does: `authorize` shows the user an authorization URL and waits for what comes back to
   * `redirectUri` (`McpAuth` bounds the wait by its `interactionTimeout`); `identityToken` supplies a caller's ID token
   * for the `jwt_bearer` grant. Implement it for a UI of your own; `interactionFromCallback` and
   * `NodeAuth.layerLoopback` are ready-made ones.
   *
   * @since 0.1.0
   */
  export interface Service {
    /** The redirect URI the interaction receives (registered with the client). */
    readonly redirectUri: string
    readonly authorize: (request: AuthorizationRequest) => Effect.Effect<AuthorizationResponse, McpAuthError>
    /** The caller's ID token, for the cross-app access grant (`jwt_bearer`) when the configuration has none. */
    readonly identityToken?:
      | ((request: {
        readonly server: string
        readonly identity: string | undefined
      }) => Effect.Effect<Redacted.Redacted<string>, McpAuthError>)
      | undefined
  }
}

/**
 * What an authorization callback returns: the code, the whole redirect URL (its `code`, `state`, `iss` and `error`
 * are read), or the parts.
 *
 * @since 0.1.0
 */
export type CallbackResult =
  | string
  | URL
  | { readonly code: string; readonly state?: string | undefined; readonly iss?: string | undefined }

/**
 * A Promise callback that shows the authorization URL to the user and resolves with the code or the redirect URL.
 *
 * @since 0.1.0
 */
export type AuthorizationCallback = (request: AuthorizationRequest) => Promise<CallbackResult>

const denied = (server: string, detail: string) =>
  new McpAuthError({ reason: new AuthorizationDenied({ server, detail }) })

/**
 * Reads what a callback returned into an `AuthorizationResponse`: a redirect URL's `error` is a denial, a `state`
 * that is not the request's is a denial.
 *
 * @since 0.1.0
 */
export const parseCallbackResult = (
  request: AuthorizationRequest,
  result: CallbackResult
): Effect.Effect<AuthorizationResponse, McpAuthError> =>
  Effect.suspend(() => {
    let parts: {
      code?: string | null | undefined
      state?: string | null | undefined
      iss?: string | null | undefined
      error?: string | null | undefined
    }
    if (typeof result === "object" && !(result instanceof URL)) parts = result
    else {
      const text = String(result).trim()
      const url = URL.canParse(text) ? new URL(text) : undefined
      parts = url !== undefined && (url.searchParams.has("code") || url.searchParams.has("error"))
        ? {
          code: url.searchParams.get("code"),
          state: url.searchParams.get("state"),
          iss: url.searchParams.get("iss"),
          error: url.searchParams.get("error")
        }
        : { code: text }
    }
    // The error description of a redirect is attacker-controlled (RFC 9207 §2.4): only the error code is kept.
    if (parts.error) return Effect.fail(denied(request.server, `the authorization server answered "${parts.error}"`))
    if (!parts.code) return Effect.fail(denied(request.server, "no authorization code came back"))
    if (parts.state && parts.state !== request.state) {
      return Effect.fail(denied(request.server, "the redirect's state does not match the request"))
    }
    return Effect.succeed({
      code: Redacted.make(parts.code),
      ...(parts.state ? { state: parts.state } : {}),
      ...(parts.iss ? { iss: parts.iss } : {})
    })
  })

/**
 * An interaction from a Promise callback (the Promise facade's `onAuthorization`).
 *
 * @example
 * ```ts
 * McpAuth.interactionFromCallback(async ({ url }) => {
 *   console.log(`open ${url} and paste the address you land on`)
 *   return await readLine()
 * }, { redirectUri: "http://127.0.0.1:8765/callback" })
 * ```
 *
 * @since 0.1.0
 */
export const interactionFromCallback = (
  callback: AuthorizationCallback,
  options: {
    /** @default "http://127.0.0.1/callback" (nothing listens there: the user copies the address or the code) */
    readonly redirectUri?: string | undefined
  } = {}
): AuthInteraction.Service => ({
  redirectUri: options.redirectUri ?? "http://127.0.0.1/callback",
  authorize: (request) =>
    Effect.tryPromise({
      try: () => callback(request),
      catch: (error) =>
        denied(request.server, `the authorization callback failed: ${error instanceof Error ? error.message : "error"}`)
    }).pipe(Effect.flatMap((result) => parseCallbackResult(request, result)))
})

/**
 * {@link interactionFromCallback} as a layer.
 *
 * @since 0.1.0
 */
export const layerInteraction = (
  callback: AuthorizationCallback,
  options: { readonly redirectUri?: string | undefined } = {}
): Layer.Layer<AuthInteraction> => Layer.succeed(AuthInteraction, interactionFromCallback(callback, options))

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * One OAuth-protected server, as a transport sees it.
 *
 * @since 0.1.0
 */
export interface Target {
  readonly server: string
  /** The MCP endpoint (the protected resource). */
  readonly url: string
  readonly settings: AuthSettings
  readonly identity: string | undefined
}

/**
 * The authorization of OAuth-protected servers.
 *
 * @since 0.1.0
 */
export class McpAuth extends Context.Service<McpAuth, McpAuth.Service>()("@mcp-bridge/core/McpAuth") {}

/**
 * The type of the OAuth service, `McpAuth.Service`.
 *
 * @since 0.1.0
 */
export declare namespace McpAuth {
  /**
   * What OAuth offers the transports: `fetch` for the sessions of a protected server, and `signOut` to drop a caller's
   * tokens. `layer` and `layerMemory` provide it; the built-in transports reach it through `withFetch`.
   *
   * @since 0.1.0
   */
  export interface Service {
    /**
     * The `fetch` of a session of `target.server` for `target.identity`: it sends the identity's bearer token,
     * renews an expired one, authorizes on `401` and steps scopes up on `403 insufficient_scope`, then retries the
     * request. `base` does the network requests (default `globalThis.fetch`).
     */
    readonly fetch: (target: Target, base?: FetchLike | undefined) => FetchLike
    /** Forgets the tokens of `server` for `identity` (the next request authorizes again). */
    readonly signOut: (server: string, identity: string | undefined) => Effect.Effect<void, McpAuthError>
  }
}

/**
 * Options of `make`, `layer` and `layerMemory`: who asks users to authorize, how long they have, and the client name
 * sent in dynamic registration. `McpBridge.layer`'s default is `layerMemory()` with no interaction; pass `auth:
 * McpAuth.layerMemory({ interaction })` for user logins.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Asks users to authorize. @default the `AuthInteraction` in context, else none (machine grants only) */
  readonly interaction?: AuthInteraction.Service | undefined
  /** How long a user may take to authorize. @default 5 minutes */
  readonly interactionTimeout?: Duration.Input | undefined
  /** `client_name` in dynamic registration, unless a server's `auth.clientName` says otherwise. @default "mcp-bridge" */
  readonly clientName?: string | undefined
  /**
   * DPoP (sender-constrained tokens) for every server whose `auth` section does not say (`auth.dpop`).
   * @default false
   */
  readonly dpop?: boolean | undefined
  /**
   * The workload's JWT for the `jwt_bearer` grant of servers whose `auth` section names neither an `assertion` nor an
   * `idp`: called at every token request (return a fresh token each time it rotates). Its failure fails the request
   * with reason `AssertionUnavailable`.
   * @default none
   */
  readonly assertion?:
    | ((request: {
      readonly server: string
      readonly identity: string | undefined
    }) => Effect.Effect<Redacted.Redacted<string>, McpAuthError>)
    | undefined
}

const assertionFailed = (server: string, source: "file" | "env" | "function", detail: string) =>
  new McpAuthError({ reason: new AssertionUnavailable({ server, source, detail }) })

/**
 * Reads a workload's JWT from its source, at each token request: a file (needs a `FileSystem`; the text, trimmed), an
 * environment variable (through the `ConfigProvider`), or the value.
 */
const readAssertion = (
  server: string,
  source: AssertionSource,
  fs: Option.Option<FileSystem.FileSystem>
): Effect.Effect<string, McpAuthError> => {
  if ("value" in source) return Effect.succeed(Redacted.value(source.value))
  if ("env" in source) {
    return Config.Redacted(source.env).pipe(
      Effect.map((value) => Redacted.value(value).trim()),
      Effect.mapError(() => assertionFailed(server, "env", `the environment variable ${source.env} is not set`)),
      Effect.filterOrFail(
        (jwt) => jwt.length > 0,
        () => assertionFailed(server, "env", `the environment variable ${source.env} is empty`)
      )
    )
  }
  if (fs._tag === "None") {
    return Effect.fail(
      assertionFailed(server, "file", "reading a file needs a FileSystem (NodeFileSystem.layer; createBridge has one)")
    )
  }
  return fs.value.readFileString(source.file).pipe(
    Effect.map((text) => text.trim()),
    Effect.mapError((error) => assertionFailed(server, "file", `${source.file}: ${error.message}`)),
    Effect.filterOrFail(
      (jwt) => jwt.length > 0,
      () => assertionFailed(server, "file", `${source.file} is empty`)
    )
  )
}

const flowSettings = (settings: AuthSettings, clientName: string, dpop: boolean): FlowSettings => ({
  grant: settings.grant ?? "authorization_code",
  clientId: settings.clientId,
  clientSecret: settings.clientSecret === undefined ? undefined : () => Redacted.value(settings.clientSecret!),
  clientMetadataUrl: settings.clientMetadataUrl,
  clientName: settings.clientName ?? clientName,
  scope: settings.scope,
  redirectUri: settings.redirectUri,
  tokenEndpointAuthMethod: settings.tokenEndpointAuthMethod,
  privateKey: settings.privateKey === undefined ? undefined : () => Redacted.value(settings.privateKey!),
  signingAlgorithm: settings.signingAlgorithm ?? "RS256",
  issuer: settings.issuer,
  idp: settings.idp === undefined ? undefined : {
    tokenEndpoint: settings.idp.tokenEndpoint,
    clientId: settings.idp.clientId,
    clientSecret: settings.idp.clientSecret === undefined
      ? undefined
      : () => Redacted.value(settings.idp!.clientSecret!),
    idToken: settings.idp.idToken === undefined ? undefined : () => Redacted.value(settings.idp!.idToken!)
  },
  allowIssuerMismatch: settings.allowIssuerMismatch ?? false,
  dpop: (settings.dpop ?? dpop) ? settings.dpopAlgorithm ?? "ES256" : undefined
})

/**
 * Builds the service over the `TokenStore` in context.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const store = yield* TokenStore.TokenStore
  const lock = Option.getOrUndefined(yield* Effect.serviceOption(RefreshLock.RefreshLock))
  const interaction = options.interaction ?? Option.getOrUndefined(yield* Effect.serviceOption(AuthInteraction))
  const timeout = Duration.fromInputUnsafe(options.interactionTimeout ?? "5 minutes")
  const clientName = options.clientName ?? "mcp-bridge"
  const fs = yield* Effect.serviceOption(FileSystem.FileSystem)
  const context = yield* Effect.context<never>()
  const run = Effect.runPromiseWith(context)
  const flows = new Map<string, OAuthFlow>()
  const discovery = new Map<string, unknown>()

  const flowOf = (target: Target, base: FetchLike): OAuthFlow => {
    const id = target.identity === undefined ? target.server : `${target.server}\u0000${target.identity}`
    let flow = flows.get(id)
    if (flow !== undefined) return flow
    const tokensKey: TokenStore.StoreKey = { kind: "tokens", server: target.server, identity: target.identity }
    const dpopKey: TokenStore.StoreKey = { kind: "dpop", server: target.server, identity: target.identity }
    const clientKey: TokenStore.StoreKey = { kind: "client", server: target.server, identity: undefined }
    const read = (key: TokenStore.StoreKey) =>
      run(store.get(key).pipe(Effect.map((value) => value === undefined ? undefined : Redacted.value(value))))
    const request = { server: target.server, identity: target.identity }
    const env: FlowEnv = {
      server: target.server,
      identity: target.identity,
      url: new URL(target.url),
      settings: flowSettings(target.settings, clientName, options.dpop ?? false),
      base,
      now: () => run(Clock.currentTimeMillis),
      store: {
        readTokens: () => read(tokensKey),
        writeTokens: (json) => run(store.set(tokensKey, Redacted.make(json))),
        removeTokens: () => run(store.remove(tokensKey)),
        readClient: () => read(clientKey),
        writeClient: (json) => run(store.set(clientKey, Redacted.make(json))),
        removeClient: () => run(store.remove(clientKey)),
        readDpopKey: () => read(dpopKey),
        writeDpopKey: (json) => run(store.set(dpopKey, Redacted.make(json)))
      },
      discovery: {
        get: () => discovery.get(target.server) as ReturnType<FlowEnv["discovery"]["get"]>,
        set: (state) => void discovery.set(target.server, state),
        clear: () => void discovery.delete(target.server)
      },
      interaction: interaction === undefined ? undefined : {
        redirectUri: interaction.redirectUri,
        authorize: (url, state, redirectUri) =>
          run(
            interaction.authorize({ ...request, url, state, redirectUri }).pipe(
              Effect.timeoutOrElse({
                duration: timeout,
                orElse: () =>
                  Effect.fail(
                    new McpAuthError({
                      reason: new InteractionTimeout({
                        server: target.server,
                        timeoutMillis: Duration.toMillis(timeout)
                      })
                    })
                  )
              }),
              Effect.map((response) => ({
                code: Redacted.value(response.code),
                state: response.state,
                iss: response.iss
              }))
            )
          )
      },
      identityToken: interaction?.identityToken === undefined
        ? undefined
        : () => run(Effect.map(interaction.identityToken!(request), Redacted.value)),
      assertion: target.settings.assertion !== undefined
        ? () => run(readAssertion(target.server, target.settings.assertion!, fs))
        : options.assertion === undefined
        ? undefined
        : () =>
          run(
            options.assertion!(request).pipe(
              Effect.map(Redacted.value),
              Effect.mapError((error) => assertionFailed(target.server, "function", error.message))
            )
          ),
      describeError: (error) => error instanceof McpAuthError ? error.message : undefined,
      refreshLock: lock === undefined ?
        undefined :
        (renewal) => run(lock.withLock(request, Effect.tryPromise({ try: renewal, catch: (error) => error })))
    }
    flow = makeFlow(env)
    flows.set(id, flow)
    return flow
  }

  return McpAuth.of({
    fetch: (target, base) => flowOf(target, base ?? ((input, init) => globalThis.fetch(input, init))).fetch,
    signOut: (server, identity) =>
      Effect.suspend(() => {
        flows.get(identity === undefined ? server : `${server}\u0000${identity}`)?.forget()
        return store.remove({ kind: "tokens", server, identity })
      })
  })
})

/**
 * Authorization over the `TokenStore` in context (and the `AuthInteraction`, when there is one).
 *
 * @example
 * ```ts
 * McpBridge.layer(config, {
 *   transport: NodeTransport.layer(),
 *   auth: McpAuth.layer().pipe(Layer.provide([NodeAuth.layerFileStore(".tokens"), NodeAuth.layerLoopback()]))
 * })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<McpAuth, never, TokenStore.TokenStore> =>
  Layer.effect(McpAuth, make(options))

/**
 * Authorization with tokens in memory.
 *
 * @since 0.1.0
 */
export const layerMemory = (options: Options = {}): Layer.Layer<McpAuth> =>
  layer(options).pipe(Layer.provide(TokenStore.layerMemory))

/**
 * Runs `f` with the `fetch` a transport of `server` should use: `base` for a server without `auth`; for one with
 * `auth`, the OAuth fetch of the `McpAuth` in context for the current `CallerIdentity` (without an `McpAuth`, a
 * fetch that fails every request with an authorization error saying so). This is how `McpTransport` opens the
 * transports of OAuth-protected servers.
 *
 * @since 0.1.0
 */
export const withFetch = <A, E, R>(
  server: string,
  transport: object,
  base: FetchLike | undefined,
  f: (fetch: FetchLike | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  const config = transport as { readonly url?: string; readonly auth?: AuthSettings | undefined }
  if (config.auth === undefined || config.url === undefined) return Effect.suspend(() => f(base))
  const { auth: settings, url } = config
  return Effect.gen(function*() {
    const service = yield* Effect.serviceOption(McpAuth)
    const identity = yield* CallerIdentity
    return yield* f(
      service._tag === "Some"
        ? service.value.fetch({ server, url, settings, identity }, base)
        : () =>
          Promise.reject(
            new AuthorizationFailed({
              server,
              detail: "the server has an auth section and no McpAuth service is provided (McpAuth.layerMemory())"
            })
          )
    )
  })
}

export {
  /**
   * The error an OAuth-protected `fetch` throws (an SDK `UnauthorizedError`); see {@link isAuthorizationFailure}.
   *
   * @since 0.1.0
   */
  AuthorizationFailed
}
