/**
 * The OAuth machinery of one server and one caller identity, at the SDK boundary (Promises): an `OAuthClientProvider`
 * for the SDK's `auth()` orchestrator, a single-flight `authorize`, and the `fetch` the session's transport uses.
 *
 * The SDK's `auth()` does discovery (RFC 9728, RFC 8414 / OIDC, the 2025-03-26 fallbacks), registration (pre-registered,
 * client ID metadata document, RFC 7591), PKCE, the resource indicator (RFC 8707), the token and refresh requests and
 * the scope selection (SEP-835, SEP-2207). What is ours: where tokens live (the bridge's `TokenStore`, per identity),
 * the interaction (the code comes back from the `AuthInteraction` while `auth()` waits in `redirectToAuthorization`,
 * then a second `auth()` redeems it), the machine grants (client credentials, cross-app access, a workload's JWT), the
 * retry of the refused request, which the SDK's transports leave to the application, and discovering again when a
 * token is refused (the server may have moved to another authorization server). DPoP: the SDK's `DpopSession` signs
 * the proofs (token endpoint through `auth()`, requests through `withDpop`) and keeps the nonces; its key is ours
 * (internal/dpopKeys.ts), kept in the store per server and identity.
 */
import {
  auth,
  computeScopeUnion,
  createPrivateKeyJwtAuth,
  DpopSession,
  extractWWWAuthenticateParams,
  isStrictScopeSuperset,
  requestJwtAuthorizationGrant,
  UnauthorizedError,
  withDpop
} from "@modelcontextprotocol/client"
import type {
  FetchLike,
  OAuthClientMetadata,
  OAuthClientProvider,
  OAuthDiscoveryState,
  StoredOAuthClientInformation,
  StoredOAuthTokens
} from "@modelcontextprotocol/client"
import * as DpopKeys from "./dpopKeys.ts"

const TypeId = Symbol.for("@mcp-bridge/core/McpAuth/AuthorizationFailed")

/**
 * Thrown by an OAuth-protected `fetch` when a request cannot be authorized. It is an SDK `UnauthorizedError`, so that
 * the SDK (the version negotiation probe included) treats it as an authorization outcome, not a network failure.
 * Its message never holds a token or a secret.
 */
export class AuthorizationFailed extends UnauthorizedError {
  readonly [TypeId] = TypeId
  readonly server: string
  readonly detail: string
  /** The HTTP status that was refused, when the server refused. */
  readonly status: number | undefined
  /** The scope the server asked for (`WWW-Authenticate`), when it named one. */
  readonly requiredScope: string | undefined
  constructor(args: {
    readonly server: string
    readonly detail: string
    readonly status?: number | undefined
    readonly requiredScope?: string | undefined
  }) {
    super(`authorization for MCP server "${args.server}" failed: ${args.detail}`)
    this.server = args.server
    this.detail = args.detail
    this.status = args.status
    this.requiredScope = args.requiredScope
  }
}

export const isAuthorizationFailed = (error: unknown): error is AuthorizationFailed =>
  typeof error === "object" && error !== null && (error as { [TypeId]?: unknown })[TypeId] === TypeId

/** The `auth` settings of a server, secrets behind thunks (revealed only where a request needs them). */
export interface FlowSettings {
  readonly grant: "authorization_code" | "client_credentials" | "jwt_bearer"
  readonly clientId: string | undefined
  readonly clientSecret: (() => string) | undefined
  readonly clientMetadataUrl: string | undefined
  readonly clientName: string
  readonly scope: string | undefined
  readonly redirectUri: string | undefined
  readonly tokenEndpointAuthMethod:
    | "client_secret_basic"
    | "client_secret_post"
    | "private_key_jwt"
    | "none"
    | undefined
  readonly privateKey: (() => string) | undefined
  readonly signingAlgorithm: string
  readonly issuer: string | undefined
  readonly idp: {
    readonly tokenEndpoint: string
    readonly clientId: string
    readonly clientSecret: (() => string) | undefined
    readonly idToken: (() => string) | undefined
  } | undefined
  readonly allowIssuerMismatch: boolean
  /** The algorithm of DPoP proofs when DPoP is on. */
  readonly dpop: DpopKeys.DpopAlgorithm | undefined
}

/** What a flow needs from the world around it (the bridge's services, adapted to Promises). */
export interface FlowEnv {
  readonly server: string
  readonly identity: string | undefined
  readonly url: URL
  readonly settings: FlowSettings
  /** Does the network requests (MCP and authorization server). */
  readonly base: FetchLike
  readonly now: () => Promise<number>
  readonly store: {
    readonly readTokens: () => Promise<string | undefined>
    readonly writeTokens: (json: string) => Promise<void>
    readonly removeTokens: () => Promise<void>
    readonly readClient: () => Promise<string | undefined>
    readonly writeClient: (json: string) => Promise<void>
    readonly removeClient: () => Promise<void>
    readonly readDpopKey: () => Promise<string | undefined>
    readonly writeDpopKey: (json: string) => Promise<void>
  }
  /** The discovery results of the server, shared by its identities. */
  readonly discovery: {
    readonly get: () => OAuthDiscoveryState | undefined
    readonly set: (state: OAuthDiscoveryState) => void
    readonly clear: () => void
  }
  readonly interaction: {
    readonly redirectUri: string
    readonly authorize: (
      url: URL,
      state: string,
      redirectUri: string
    ) => Promise<{ code: string; state: string | undefined; iss: string | undefined }>
  } | undefined
  readonly identityToken: (() => Promise<string>) | undefined
  /** The workload's JWT of the `jwt_bearer` grant (read at each token request), when it has one. */
  readonly assertion: (() => Promise<string>) | undefined
  /** The message of a typed error of the bridge's services (interaction, store), else `undefined`. */
  readonly describeError: (error: unknown) => string | undefined
  /**
   * Runs a renewal of this server's and identity's tokens holding the `RefreshLock` (shared by the processes that
   * share the store), when there is one.
   */
  readonly refreshLock: (<A>(renewal: () => Promise<A>) => Promise<A>) | undefined
}

export interface OAuthFlow {
  readonly fetch: FetchLike
  /** Drops what this flow holds in memory (after sign-out). */
  readonly forget: () => void
}

interface StoredState {
  readonly tokens: StoredOAuthTokens
  /** Clock millis when the tokens were obtained (for `expires_in`). */
  readonly obtainedAt: number
}

interface AuthorizeOptions {
  readonly scope?: string | undefined
  readonly resourceMetadataUrl?: URL | undefined
  readonly force?: boolean | undefined
  /**
   * Discover again (protected resource metadata, then authorization server metadata) instead of using the cached
   * discovery: the server refused a token, and may have moved to another authorization server.
   */
  readonly rediscover?: boolean | undefined
}

const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
// A token this close to its expiry is renewed before use.
const EXPIRY_SKEW_MILLIS = 30_000
const PLACEHOLDER_REDIRECT = "http://127.0.0.1/callback"

const randomState = () => {
  const bytes = new Uint8Array(24)
  crypto.getRandomValues(bytes)
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

const drain = (response: Response) => response.text().then(() => undefined, () => undefined)

/** Waits for `promise`, or rejects when `signal` aborts (the promise itself goes on: others may be waiting for it). */
const untilAborted = <A>(promise: Promise<A>, signal: AbortSignal | null | undefined): Promise<A> => {
  if (signal === undefined || signal === null) return promise
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<A>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener("abort", onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort)
        reject(error)
      }
    )
  })
}

export const makeFlow = (env: FlowEnv): OAuthFlow => {
  const { settings } = env
  const interactive = settings.grant === "authorization_code"
  const redirectUri = settings.redirectUri ?? env.interaction?.redirectUri ?? PLACEHOLDER_REDIRECT

  let loaded: Promise<StoredState | undefined> | undefined
  let current: StoredState | undefined
  let inflight: Promise<void> | undefined
  let codeVerifier: string | undefined
  let expectedState: string | undefined
  let pending: { code: string; iss: string | undefined } | undefined
  let requestedScope: string | undefined
  let resourceUrl: string | undefined
  let authorizationServer: string | undefined
  let presetIssuer: string | undefined
  // The discovery this flow's authorization in progress works with: a snapshot of the server's shared discovery, so
  // that another identity discovering again does not change the authorization server under a redirect in flight.
  let discovery: OAuthDiscoveryState | undefined
  // The workload's JWT last sent (scrubbed from errors), and whether this authorization already sent one: a refused
  // assertion is not sent again by the same authorization (the SDK retries `invalid_grant` once).
  let lastAssertion: string | undefined
  let assertionSent = false

  // Every text that could reach an error message is scrubbed of the secrets this flow knows.
  const secrets = (): Array<string> =>
    [
      settings.clientSecret?.(),
      settings.privateKey?.(),
      settings.idp?.clientSecret?.(),
      settings.idp?.idToken?.(),
      current?.tokens.access_token,
      current?.tokens.refresh_token,
      pending?.code,
      lastAssertion
    ].filter((s): s is string => s !== undefined && s.length >= 4)
  const scrub = (text: string) => secrets().reduce((acc, secret) => acc.split(secret).join("<redacted>"), text)
  const failure = (detail: string, extra: { status?: number; requiredScope?: string | undefined } = {}) =>
    new AuthorizationFailed({ server: env.server, detail: scrub(detail), ...extra })
  const asFailure = (error: unknown): AuthorizationFailed =>
    isAuthorizationFailed(error)
      ? error
      : failure(env.describeError(error) ?? (error instanceof Error ? error.message : String(error)))

  // --- tokens ----------------------------------------------------------------

  // A store that fails fails the request with an authorization error; the next request reads it again.
  const load = (): Promise<StoredState | undefined> =>
    loaded ??= env.store.readTokens().then(
      (json) => {
        if (json === undefined) return undefined
        try {
          return current = JSON.parse(json) as StoredState
        } catch {
          return undefined
        }
      },
      (error: unknown) => {
        loaded = undefined
        throw asFailure(error)
      }
    )

  const save = async (tokens: StoredOAuthTokens) => {
    // RFC 6749 §3.3: a response without `scope` grants the scope that was asked for (or that of the token refreshed).
    const scope = tokens.scope ?? requestedScope ?? current?.tokens.scope
    const state: StoredState = {
      tokens: scope === undefined ? tokens : { ...tokens, scope },
      obtainedAt: await env.now()
    }
    current = state
    loaded = Promise.resolve(state)
    await env.store.writeTokens(JSON.stringify(state)).catch((error: unknown) => {
      throw asFailure(error)
    })
  }

  const dropTokens = async () => {
    current = undefined
    loaded = Promise.resolve(undefined)
    await env.store.removeTokens()
  }

  const expired = async (state: StoredState) =>
    state.tokens.expires_in !== undefined &&
    (await env.now()) >= state.obtainedAt + state.tokens.expires_in * 1000 - EXPIRY_SKEW_MILLIS

  // --- the provider the SDK's auth() drives ----------------------------------

  const presetClient = (): StoredOAuthClientInformation | undefined => {
    if (settings.clientId === undefined) return undefined
    const secret = settings.clientSecret?.()
    const method = settings.tokenEndpointAuthMethod
    const issuer = settings.issuer ?? presetIssuer
    return {
      client_id: settings.clientId,
      ...(secret === undefined ? {} : { client_secret: secret }),
      ...(method === undefined || method === "private_key_jwt" ? {} : { token_endpoint_auth_method: method }),
      ...(settings.grant === "jwt_bearer" && settings.idp !== undefined
        ? { token_endpoint_auth_method: "client_secret_basic" }
        : {}),
      ...(issuer === undefined ? {} : { issuer })
    }
  }

  const clientMetadata: OAuthClientMetadata = interactive
    ? {
      client_name: settings.clientName,
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      ...(settings.tokenEndpointAuthMethod === undefined
        ? {}
        : { token_endpoint_auth_method: settings.tokenEndpointAuthMethod }),
      ...(settings.scope === undefined ? {} : { scope: settings.scope })
    }
    : {
      client_name: settings.clientName,
      redirect_uris: [],
      grant_types: [settings.grant === "jwt_bearer" ? JWT_BEARER : "client_credentials"],
      ...(settings.scope === undefined ? {} : { scope: settings.scope })
    }

  const privateKeyJwt = settings.privateKey !== undefined &&
      (settings.tokenEndpointAuthMethod === undefined || settings.tokenEndpointAuthMethod === "private_key_jwt")
    ? createPrivateKeyJwtAuth({
      issuer: settings.clientId ?? "",
      subject: settings.clientId ?? "",
      privateKey: (() => {
        const key = settings.privateKey!()
        return key.trimStart().startsWith("{") ? JSON.parse(key) as Record<string, unknown> : key
      })(),
      alg: settings.signingAlgorithm
    })
    : undefined

  // --- DPoP: one key per server and identity, restored from the store or made and stored at first use -------

  let dpopSession: Promise<DpopSession> | undefined
  const dpop = (): Promise<DpopSession> | undefined => {
    const alg = settings.dpop
    if (alg === undefined) return undefined
    return dpopSession ??= (async () => {
      let json = await env.store.readDpopKey()
      if (json === undefined || DpopKeys.algorithmOf(json) !== alg) {
        json = await DpopKeys.generate(alg)
        await env.store.writeDpopKey(json)
      }
      return DpopSession.create({ keyPair: await DpopKeys.restore(json) })
    })().catch((error: unknown) => {
      dpopSession = undefined
      throw asFailure(error)
    })
  }

  const provider: OAuthClientProvider = {
    get redirectUrl() {
      return interactive ? redirectUri : undefined
    },
    ...(settings.clientMetadataUrl === undefined ? {} : { clientMetadataUrl: settings.clientMetadataUrl }),
    get clientMetadata() {
      return clientMetadata
    },
    state: () => (expectedState = randomState()),
    // A client belongs to the authorization server that issued it (the SDK compares its `issuer` stamp with the
    // server in use): the pre-registered client serves its own issuer only, and a server that moved to another
    // authorization server gets a registration there, kept in the store in place of the old one.
    clientInformation: async (ctx) => {
      const preset = presetClient()
      if (preset !== undefined && (preset.issuer === undefined || ctx === undefined || preset.issuer === ctx.issuer)) {
        return preset
      }
      const json = await env.store.readClient()
      return json === undefined ? preset : JSON.parse(json) as StoredOAuthClientInformation
    },
    saveClientInformation: async (information) => {
      // The SDK stamps the issuer on a pre-registered client at first use: keep the stamp, not the credentials.
      if (settings.clientId !== undefined && information.client_id === settings.clientId) {
        presetIssuer ??= information.issuer
      } else await env.store.writeClient(JSON.stringify(information))
    },
    tokens: async () => (await load())?.tokens,
    saveTokens: (tokens) => save(tokens),
    redirectToAuthorization: async (url) => {
      if (env.interaction === undefined) throw failure("a user's authorization is needed, and no interaction is set")
      requestedScope = url.searchParams.get("scope") ?? undefined
      const state = expectedState ?? url.searchParams.get("state") ?? ""
      const response = await env.interaction.authorize(url, state, redirectUri)
      if (response.state !== undefined && response.state !== state) {
        throw failure("the redirect's state does not match the request")
      }
      pending = { code: response.code, iss: response.iss }
    },
    saveCodeVerifier: (verifier) => {
      codeVerifier = verifier
    },
    codeVerifier: () => {
      if (codeVerifier === undefined) throw failure("no PKCE code verifier for this authorization")
      return codeVerifier
    },
    ...(privateKeyJwt === undefined ? {} : { addClientAuthentication: privateKeyJwt }),
    ...(settings.dpop === undefined ? {} : { dpop: () => dpop() }),
    prepareTokenRequest: async (scope) => {
      if (interactive) return undefined
      requestedScope = scope
      if (settings.grant === "client_credentials") {
        return new URLSearchParams({ grant_type: "client_credentials", ...(scope ? { scope } : {}) })
      }
      // Workload identity (RFC 7523): the workload's own JWT is the grant.
      if (settings.idp === undefined) {
        if (env.assertion === undefined) {
          throw failure(
            "the jwt_bearer grant needs the workload's JWT (auth.assertion, or McpAuth's assertion option) or an idp"
          )
        }
        if (assertionSent) throw failure("the authorization server refused the workload's JWT (jwt_bearer grant)")
        const assertion = await env.assertion()
        lastAssertion = assertion
        assertionSent = true
        return new URLSearchParams({ grant_type: JWT_BEARER, assertion, ...(scope ? { scope } : {}) })
      }
      // Cross-app access (SEP-990): the caller's ID token becomes an authorization grant at the identity provider.
      const idp = settings.idp
      const idToken = idp.idToken?.() ?? await env.identityToken?.()
      if (idToken === undefined) throw failure("the jwt_bearer grant needs the caller's ID token (idp.idToken)")
      if (authorizationServer === undefined || resourceUrl === undefined) {
        throw failure("the jwt_bearer grant needs the server's protected resource metadata")
      }
      const idpSecret = idp.clientSecret?.()
      const grant = await requestJwtAuthorizationGrant({
        tokenEndpoint: idp.tokenEndpoint,
        audience: authorizationServer,
        resource: resourceUrl,
        idToken,
        clientId: idp.clientId,
        ...(idpSecret === undefined ? {} : { clientSecret: idpSecret }),
        ...(scope ? { scope } : {}),
        fetchFn: env.base
      })
      return new URLSearchParams({ grant_type: JWT_BEARER, assertion: grant.jwtAuthGrant, ...(scope ? { scope } : {}) })
    },
    invalidateCredentials: async (scope) => {
      if (scope === "all" || scope === "tokens") await dropTokens()
      if ((scope === "all" || scope === "client") && settings.clientId === undefined) await env.store.removeClient()
      if (scope === "all" || scope === "verifier") codeVerifier = undefined
      if (scope === "all" || scope === "discovery") {
        discovery = undefined
        env.discovery.clear()
      }
    },
    saveDiscoveryState: (state) => {
      discovery = state
      env.discovery.set(state)
    },
    discoveryState: () => discovery,
    saveResourceUrl: (url) => {
      resourceUrl = url
    },
    resourceUrl: () => resourceUrl,
    saveAuthorizationServerUrl: (url) => {
      authorizationServer = url
    },
    authorizationServerUrl: () => authorizationServer
  }

  // --- authorize: single flight per server and identity ----------------------

  const runAuthorization = async (options: AuthorizeOptions): Promise<void> => {
    const stored = await load()
    if (interactive && env.interaction === undefined && stored?.tokens.refresh_token === undefined) {
      throw failure("a user's authorization is needed, and no interaction is set (McpAuth AuthInteraction)")
    }
    const common = {
      serverUrl: env.url,
      fetchFn: env.base,
      ...(options.resourceMetadataUrl === undefined ? {} : { resourceMetadataUrl: options.resourceMetadataUrl }),
      ...(options.scope === undefined ? {} : { scope: options.scope }),
      ...(settings.allowIssuerMismatch ? { skipIssuerMetadataValidation: true } : {})
    }
    pending = undefined
    requestedScope = options.scope
    assertionSent = false
    if (options.rediscover === true) env.discovery.clear()
    discovery = env.discovery.get()
    try {
      let result = await auth(provider, {
        ...common,
        ...(options.force === true ? { forceReauthorization: true } : {})
      })
      if (result === "REDIRECT") {
        const response = pending as { code: string; iss: string | undefined } | undefined
        pending = undefined
        if (response === undefined) throw failure("the authorization did not come back with a code")
        result = await auth(provider, {
          ...common,
          authorizationCode: response.code,
          ...(response.iss === undefined ? {} : { iss: response.iss })
        })
      }
      if (result !== "AUTHORIZED") throw failure("the authorization did not complete")
    } catch (error) {
      throw asFailure(error)
    } finally {
      codeVerifier = undefined
      expectedState = undefined
    }
  }

  // Returns false when it joined an authorization already in flight (it then counts as no attempt of its own).
  const authorize = async (options: AuthorizeOptions, signal: AbortSignal | null | undefined): Promise<boolean> => {
    const joined = inflight !== undefined
    inflight ??= runAuthorization(options).finally(() => {
      inflight = undefined
    })
    await untilAborted(inflight, signal)
    return !joined
  }

  // --- renewal of an expired token --------------------------------------------

  // With a refresh lock, one renewal at a time across the processes sharing the store: once the lock is held the
  // store is read again, and a token renewed meanwhile by the holder before is used as it is (its refresh token was
  // good for one refresh only). One renewal in flight per flow, which this process's requests join.
  let renewing: Promise<unknown> | undefined
  const renew = (signal: AbortSignal | null | undefined): Promise<unknown> => {
    const lock = env.refreshLock
    if (lock === undefined) return authorize({}, signal)
    renewing ??= lock(async () => {
      loaded = undefined
      const state = await load()
      if (state !== undefined && !(await expired(state))) return
      await authorize({}, undefined)
    }).finally(() => {
      renewing = undefined
    })
    return untilAborted(renewing, signal)
  }

  // A refused token, renewed under the refresh lock too: once it is held the store is read again, and a token another
  // process renewed meanwhile is only retried. A first authorization (no token sent) takes no lock.
  const renewRefused = (
    refused: string | undefined,
    options: AuthorizeOptions,
    signal: AbortSignal | null | undefined
  ): Promise<boolean> => {
    const lock = env.refreshLock
    if (lock === undefined || refused === undefined) return authorize(options, signal)
    return untilAborted(
      lock(async () => {
        loaded = undefined
        const latest = (await load())?.tokens
        if (latest !== undefined && latest.access_token !== refused) return false
        return authorize(options, undefined)
      }),
      signal
    )
  }

  // --- the transport's fetch -------------------------------------------------

  // With DPoP, a `DPoP`-bound token goes out as `Authorization: DPoP` with a fresh proof per request, and the
  // resource's `use_dpop_nonce` challenge is answered once, inline (the SDK's `withDpop`); a Bearer token passes.
  const resourceFetch: FetchLike = settings.dpop === undefined ? env.base : withDpop(
    () => dpop(),
    async () => {
      const tokens = (await load())?.tokens
      return tokens?.token_type?.toLowerCase() === "dpop" ? tokens.access_token : undefined
    }
  )(env.base)

  const fetch: FetchLike = async (input, init) => {
    const signal = init?.signal
    const state = await load()
    // Renew an expired token first when that needs no user (refresh token, machine grant); if it fails, the server
    // has the last word.
    if (state !== undefined && (state.tokens.refresh_token !== undefined || !interactive) && await expired(state)) {
      await renew(signal).catch((error: unknown) => {
        if (signal?.aborted) throw error
      })
    }
    const send = async () => {
      const token = (await load())?.tokens.access_token
      const headers = new Headers(init?.headers)
      if (token !== undefined) headers.set("authorization", `Bearer ${token}`)
      return { response: await resourceFetch(input, { ...init, headers }), token }
    }
    let { response, token } = await send()
    // Each request runs at most one authorization of its own per kind (joining another request's counts as none),
    // and retries a bounded number of times.
    let authorized = false
    let steppedUp = false
    for (let attempt = 0; attempt < 4; attempt++) {
      if (response.status === 401 && !authorized) {
        const challenge = extractWWWAuthenticateParams(response)
        await drain(response)
        // Another request may have renewed the token meanwhile: then only retry.
        const latest = (await load())?.tokens
        if (latest === undefined || latest.access_token === token) {
          authorized = await renewRefused(token, {
            scope: computeScopeUnion(latest?.scope, challenge.scope),
            resourceMetadataUrl: challenge.resourceMetadataUrl,
            // A refused token: the server may have moved to another authorization server (its protected resource
            // metadata names the new one), so discovery starts over; credentials stamped with the old issuer are
            // then not sent to the new one (the SDK's issuer check), and the bridge registers there.
            rediscover: token !== undefined
          }, signal)
        }
        ;({ response, token } = await send())
        continue
      }
      if (response.status === 403 && !steppedUp) {
        const challenge = extractWWWAuthenticateParams(response)
        if (challenge.error === "insufficient_scope") {
          await drain(response)
          const granted = (await load())?.tokens.scope
          const union = computeScopeUnion(granted, challenge.scope)
          // Asking again for scopes already granted cannot succeed: the server's policy is the problem.
          if (!isStrictScopeSuperset(union, granted)) {
            throw failure(
              `the server requires scope "${challenge.scope ?? ""}", which the token already has; access is refused`,
              { status: 403, requiredScope: challenge.scope }
            )
          }
          steppedUp = await authorize({
            scope: union,
            resourceMetadataUrl: challenge.resourceMetadataUrl,
            force: true
          }, signal)
          ;({ response, token } = await send())
          continue
        }
      }
      break
    }
    if (response.status === 401) {
      await drain(response)
      throw failure("the server refused the token obtained by authorization (HTTP 401)", { status: 401 })
    }
    if (response.status === 403 && extractWWWAuthenticateParams(response).error === "insufficient_scope") {
      const required = extractWWWAuthenticateParams(response).scope
      await drain(response)
      throw failure(`the server requires scope "${required ?? ""}" even after step-up authorization (HTTP 403)`, {
        status: 403,
        requiredScope: required
      })
    }
    return response
  }

  return {
    fetch,
    forget: () => {
      current = undefined
      loaded = undefined
    }
  }
}
