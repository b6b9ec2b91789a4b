/**
 * The gateway as an OAuth 2.1 resource server: `Authorization: Bearer <JWT>` access tokens checked against the
 * issuer's JWKS, RFC 9728 protected resource metadata, and the RFC 6750 challenges that let a client find the
 * authorization server and ask for the scopes it lacks.
 *
 * - Signature, algorithm allow-list, `iss`, `aud` (the gateway's RFC 8707 resource), `exp`, `nbf` (with a leeway) are
 *   checked by `jose` (`jwtVerify`); the JWKS comes from `jwksUri` or the issuer's metadata (RFC 8414, else OpenID
 *   discovery) and is `jose`'s `createRemoteJWKSet`: cached, refetched when it grows old, and refetched for a key id it
 *   lacks at most once per `jwksRefetchInterval` (a key rotation is picked up, a flood of forged key ids is not).
 * - The caller's identity is `<iss>#<sub>` (the issuer is a URL without a fragment, so `#` separates unambiguously).
 * - A token verified once is remembered (by its SHA-256, never itself) until it expires, at most `VERIFIED_TTL_MILLIS`:
 *   a signature check costs hundreds of microseconds, a lookup a few.
 * - A token, or any part of one, never reaches a log, an error or a response: refusals carry fixed descriptions.
 *
 * @internal
 */
import type { BridgeConfigSchema } from "@mcp-bridge/core"
import type { AuthInfo } from "@modelcontextprotocol/server"
import { getOAuthProtectedResourceMetadataUrl } from "@modelcontextprotocol/server"
import { Duration } from "effect"
import { createRemoteJWKSet, errors as JoseErrors, jwtVerify } from "jose"
import type { JWTPayload, JWTVerifyGetKey } from "jose"
import { createHash } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"

/** A field of `gateway.oauth` that cannot work, and why. @internal */
export interface Invalid {
  readonly path: ReadonlyArray<string>
  readonly detail: string
}

/** @internal */
export interface OAuthGate {
  /**
   * The caller of a request that carries an access token, or the refusal to answer (401 with a challenge, 403
   * `insufficient_scope`, 503 while the issuer's keys cannot be had). `apiKey`, when API keys are configured too,
   * answers requests that carry one of those instead (an `X-API-Key`, or a bearer value that is not a JWT).
   */
  readonly authenticate: (
    request: Request,
    apiKey: ((request: Request) => AuthInfo | Response | undefined) | undefined
  ) => Promise<AuthInfo | Response>
  /** Serves the protected resource metadata (RFC 9728): `true` when `req` asked for it. */
  readonly serveMetadata: (req: IncomingMessage, res: ServerResponse) => boolean
  /** Whether a request carries a valid access token with the admin scope (the dashboard). */
  readonly isAdmin: (req: IncomingMessage) => Promise<boolean>
  /**
   * The 403 `insufficient_scope` answer to a call of `tool`, which `scope` would let the caller make: the challenge
   * asks for the token's scopes and that one (RFC 6750 §3.1), so that a client can step up and call again.
   */
  readonly insufficientScope: (authInfo: AuthInfo, tool: string, scope: string) => Response
}

/** The algorithms accepted when the configuration names none. */
const DEFAULT_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]

/** How long a verified token is taken without checking it again (and how many are remembered). */
const VERIFIED_TTL_MILLIS = 60_000
const VERIFIED_MAX = 10_000

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

const isLoopback = (host: string) => host === "localhost" || host === "127.0.0.1" || host === "[::1]"

/** Checks what the schema cannot: URLs fit for their role. @internal */
export const validate = (settings: BridgeConfigSchema.OAuthSettings): Invalid | undefined => {
  const issuer = new URL(settings.issuer)
  if (issuer.protocol !== "https:" && !isLoopback(issuer.hostname)) {
    return { path: ["oauth", "issuer"], detail: "the issuer must be an https URL (http only on a loopback address)" }
  }
  if (issuer.hash !== "" || issuer.search !== "") {
    return { path: ["oauth", "issuer"], detail: "the issuer must have no query and no fragment" }
  }
  if (settings.jwksUri !== undefined) {
    const jwks = new URL(settings.jwksUri)
    if (jwks.protocol !== "https:" && !isLoopback(jwks.hostname)) {
      return {
        path: ["oauth", "jwksUri"],
        detail: "the JWKS must be fetched over https (http only on a loopback address)"
      }
    }
  }
  if (settings.resource !== undefined && new URL(settings.resource).hash !== "") {
    return { path: ["oauth", "resource"], detail: "the resource must have no fragment (RFC 8707)" }
  }
  return undefined
}

/**
 * The tools (globs of served names) an access token's scopes let its caller see: the union of its scopes' entries in
 * `scopes`; `undefined` (no restriction) without a `scopes` map, or for a caller that did not present a token.
 *
 * @internal
 */
export const toolsOf = (
  settings: BridgeConfigSchema.OAuthSettings,
  authInfo: AuthInfo | undefined
): ReadonlyArray<string> | undefined => {
  const scopeTools = settings.scopes
  if (scopeTools === undefined || authInfo?.extra?.issuer !== settings.issuer) return undefined
  return [...new Set(authInfo.scopes.flatMap((scope) => scopeTools[scope] ?? []))]
}

type Verdict =
  | { readonly _tag: "Ok"; readonly authInfo: AuthInfo }
  | { readonly _tag: "Invalid"; readonly description: string }
  | { readonly _tag: "Unavailable" }

// A fixed description per failure: never the token, never a claim's value.
const describe = (error: unknown): Verdict => {
  if (error instanceof JoseErrors.JWTExpired) return { _tag: "Invalid", description: "The token has expired" }
  if (error instanceof JoseErrors.JWTClaimValidationFailed) {
    const description = error.reason === "missing"
      ? `The token has no "${error.claim}" claim`
      : error.claim === "iss"
      ? "The token was issued by an untrusted issuer"
      : error.claim === "aud"
      ? "The token was not issued for this resource"
      : error.claim === "nbf"
      ? "The token is not valid yet"
      : "The token's claims are invalid"
    return { _tag: "Invalid", description }
  }
  if (error instanceof JoseErrors.JWSSignatureVerificationFailed) {
    return { _tag: "Invalid", description: "The token's signature is invalid" }
  }
  if (error instanceof JoseErrors.JWKSNoMatchingKey) {
    return { _tag: "Invalid", description: "No key of the issuer matches the token" }
  }
  if (error instanceof JoseErrors.JOSEAlgNotAllowed) {
    return { _tag: "Invalid", description: "The token's signature algorithm is not accepted" }
  }
  if (
    error instanceof JoseErrors.JWTInvalid || error instanceof JoseErrors.JWSInvalid ||
    error instanceof JoseErrors.JOSENotSupported || error instanceof JoseErrors.JWKSMultipleMatchingKeys
  ) {
    return { _tag: "Invalid", description: "The token is malformed" }
  }
  return { _tag: "Unavailable" }
}

const quoted = (value: string) => `"${value.replace(/[\\"]/g, "\\$&")}"`

const scopesOf = (payload: JWTPayload): ReadonlyArray<string> => {
  const scope = payload.scope
  if (typeof scope === "string") return scope.split(" ").filter((s) => s.length > 0)
  const scp = payload.scp
  if (Array.isArray(scp)) return scp.filter((s): s is string => typeof s === "string")
  if (typeof scp === "string") return scp.split(" ").filter((s) => s.length > 0)
  return []
}

/**
 * The resource server for `settings`; `resource` is the gateway's MCP URL when the configuration names none (it is
 * known once the gateway listens, so it is asked for when first needed).
 *
 * @internal
 */
export const make = (
  settings: BridgeConfigSchema.OAuthSettings,
  options: {
    readonly resource: () => string
    readonly views: ReadonlyArray<string>
    readonly onError: (error: Error) => void
  }
): OAuthGate => {
  const issuer = settings.issuer
  const millis = (input: Duration.Duration | undefined, fallback: Duration.Input) =>
    Duration.toMillis(input ?? Duration.fromInputUnsafe(fallback))
  const refetchMillis = millis(settings.jwksRefetchInterval, "30 seconds")
  const maxAgeMillis = millis(settings.jwksMaxAge, "10 minutes")
  const toleranceSeconds = Math.ceil(millis(settings.clockTolerance, "30 seconds") / 1000)
  const algorithms = [...(settings.algorithms ?? DEFAULT_ALGORITHMS)]
  const required = settings.requiredScopes ?? []
  const supported = [
    ...new Set([
      ...required,
      ...Object.keys(settings.scopes ?? {}),
      ...(settings.adminScope ? [settings.adminScope] : [])
    ])
  ]

  let resolved:
    | { readonly resource: string; readonly audience: Array<string>; readonly metadataUrl: string }
    | undefined
  const resourceInfo = () => {
    if (resolved !== undefined) return resolved
    const resource = settings.resource ?? options.resource()
    const audience = settings.audience === undefined
      ? [...new Set([resource, resource.replace(/\/$/, ""), `${resource.replace(/\/$/, "")}/`])]
      : typeof settings.audience === "string"
      ? [settings.audience]
      : [...settings.audience]
    resolved = { resource, audience, metadataUrl: getOAuthProtectedResourceMetadataUrl(new URL(resource)) }
    return resolved
  }

  // The issuer's keys: `jwksUri`, or found once in its metadata; a failed discovery is retried after the refetch
  // interval, not on every request.
  let keys: JWTVerifyGetKey | undefined
  let discovering: Promise<JWTVerifyGetKey | undefined> | undefined
  let failedAt = Number.NEGATIVE_INFINITY
  const remote = (url: string) =>
    createRemoteJWKSet(new URL(url), { cooldownDuration: refetchMillis, cacheMaxAge: maxAgeMillis })
  if (settings.jwksUri !== undefined) keys = remote(settings.jwksUri)
  const discover = async (): Promise<string> => {
    const url = new URL(issuer)
    const path = url.pathname === "/" ? "" : url.pathname.replace(/\/$/, "")
    const candidates = [
      `${url.origin}/.well-known/oauth-authorization-server${path}`,
      `${url.origin}/.well-known/openid-configuration${path}`,
      `${url.origin}${path}/.well-known/openid-configuration`
    ]
    for (const candidate of candidates) {
      const response = await fetch(candidate, {
        headers: { accept: "application/json" },
        signal: AbortSignal.timeout(5_000)
      })
      if (!response.ok) {
        await response.body?.cancel()
        continue
      }
      const metadata = await response.json() as { issuer?: unknown; jwks_uri?: unknown }
      // RFC 8414 §3.3: the document must name the issuer it was asked for.
      if (metadata.issuer !== issuer) throw new Error(`the metadata at ${candidate} names another issuer`)
      if (typeof metadata.jwks_uri !== "string") throw new Error(`the metadata at ${candidate} has no jwks_uri`)
      return metadata.jwks_uri
    }
    throw new Error(`no authorization server metadata found for ${issuer}`)
  }
  const keysNow = async (): Promise<JWTVerifyGetKey | undefined> => {
    if (keys !== undefined) return keys
    if (discovering !== undefined) return discovering
    if (performance.now() - failedAt < refetchMillis) return undefined
    discovering = discover().then(
      (jwksUri) => (keys = remote(jwksUri)),
      (error: unknown) => {
        failedAt = performance.now()
        options.onError(new Error(`gateway oauth: ${error instanceof Error ? error.message : String(error)}`))
        return undefined
      }
    ).finally(() => (discovering = undefined))
    return discovering
  }

  // Tokens verified lately, by digest, in insertion order (the oldest is dropped first).
  const verified = new Map<string, { readonly authInfo: AuthInfo; readonly until: number }>()
  const verify = async (token: string): Promise<Verdict> => {
    const digest = createHash("sha256").update(token).digest("base64url")
    const known = verified.get(digest)
    if (known !== undefined) {
      if (Date.now() < known.until) return { _tag: "Ok", authInfo: known.authInfo }
      verified.delete(digest)
    }
    const verdict = await check(token)
    if (verdict._tag === "Ok") {
      if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!)
      const until = Math.min(verdict.authInfo.expiresAt! * 1000, Date.now() + VERIFIED_TTL_MILLIS)
      verified.set(digest, { authInfo: verdict.authInfo, until })
    }
    return verdict
  }
  const check = async (token: string): Promise<Verdict> => {
    const getKey = await keysNow()
    if (getKey === undefined) return { _tag: "Unavailable" }
    const { audience, resource } = resourceInfo()
    try {
      const { payload } = await jwtVerify(token, getKey, {
        issuer,
        audience,
        algorithms,
        clockTolerance: toleranceSeconds,
        requiredClaims: ["exp", "sub"]
      })
      const clientId = typeof payload.client_id === "string"
        ? payload.client_id
        : typeof payload.azp === "string"
        ? payload.azp
        : undefined
      return {
        _tag: "Ok",
        authInfo: {
          // The token itself is not kept: nothing downstream of the gate needs it, and nothing can leak it.
          token: "",
          clientId: `${issuer}#${payload.sub!}`,
          scopes: [...scopesOf(payload)],
          expiresAt: payload.exp!,
          resource: new URL(resource),
          extra: { issuer, subject: payload.sub!, ...(clientId === undefined ? {} : { oauthClientId: clientId }) }
        }
      }
    } catch (error) {
      const verdict = describe(error)
      if (verdict._tag === "Unavailable") {
        options.onError(
          new Error(`gateway oauth: cannot check tokens now (${error instanceof Error ? error.name : "error"})`)
        )
      }
      return verdict
    }
  }

  const challenge = (
    status: 401 | 403,
    error: string | undefined,
    description: string,
    scope: ReadonlyArray<string>
  ) => {
    const { metadataUrl } = resourceInfo()
    let header = "Bearer"
    const params: Array<string> = []
    if (error !== undefined) params.push(`error=${quoted(error)}`, `error_description=${quoted(description)}`)
    if (scope.length > 0) params.push(`scope=${quoted(scope.join(" "))}`)
    params.push(`resource_metadata=${quoted(metadataUrl)}`)
    header += ` ${params.join(", ")}`
    return Response.json(
      error === undefined ? { error: "unauthorized", error_description: description } : {
        error,
        error_description: description
      },
      { status, headers: { "www-authenticate": header, "cache-control": "no-store" } }
    )
  }

  const bearerOf = (authorization: string | null | undefined): string | undefined => {
    if (authorization === null || authorization === undefined) return undefined
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization)
    return match === null ? undefined : match[1]
  }

  const authenticate = async (
    request: Request,
    apiKey: ((request: Request) => AuthInfo | Response | undefined) | undefined
  ): Promise<AuthInfo | Response> => {
    const bearer = bearerOf(request.headers.get("authorization"))
    const isJwt = bearer !== undefined && JWT_SHAPE.test(bearer)
    if (apiKey !== undefined && !isJwt && (bearer !== undefined || request.headers.has("x-api-key"))) {
      const byKey = apiKey(request)
      if (byKey !== undefined && !(byKey instanceof Response)) return byKey
      return challenge(401, "invalid_token", "The access token or API key is invalid", [])
    }
    if (bearer === undefined) return challenge(401, undefined, "An access token is required", required)
    if (!isJwt) return challenge(401, "invalid_token", "The token is malformed", [])
    const verdict = await verify(bearer)
    if (verdict._tag === "Unavailable") {
      return Response.json(
        { error: "temporarily_unavailable", error_description: "The authorization server's keys cannot be had now" },
        { status: 503, headers: { "retry-after": String(Math.max(1, Math.ceil(refetchMillis / 1000))) } }
      )
    }
    if (verdict._tag === "Invalid") return challenge(401, "invalid_token", verdict.description, [])
    const missing = required.filter((s) => !verdict.authInfo.scopes.includes(s))
    if (missing.length > 0) {
      // RFC 6750 §3.1: the scope the request needs; the token's own are kept, so a client can ask for both at once.
      const wanted = [...new Set([...verdict.authInfo.scopes, ...required])]
      return challenge(403, "insufficient_scope", "The token lacks a scope this gateway requires", wanted)
    }
    return verdict.authInfo
  }

  const metadata = () => {
    const { resource } = resourceInfo()
    return JSON.stringify({
      resource,
      authorization_servers: [issuer],
      bearer_methods_supported: ["header"],
      ...(supported.length === 0 ? {} : { scopes_supported: supported }),
      resource_name: "mcp-bridge"
    })
  }
  const metadataPaths = () => {
    const paths = new Set(["", "/mcp", ...options.views.map((view) => `/mcp/${view}`)])
    const own = new URL(resourceInfo().resource).pathname.replace(/\/$/, "")
    if (own !== "") paths.add(own)
    return paths
  }
  const PREFIX = "/.well-known/oauth-protected-resource"
  const serveMetadata = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? "/").split("?", 1)[0]!
    if (!path.startsWith(PREFIX)) return false
    if (!metadataPaths().has(path.slice(PREFIX.length).replace(/\/$/, ""))) return false
    if (req.method === "OPTIONS") {
      res.writeHead(204, { "access-control-allow-origin": "*", "access-control-allow-methods": "GET, HEAD, OPTIONS" })
      res.end()
      return true
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD, OPTIONS" })
      res.end()
      return true
    }
    const body = metadata()
    res.writeHead(200, {
      "content-type": "application/json",
      "access-control-allow-origin": "*",
      "cache-control": "max-age=300"
    })
    res.end(req.method === "HEAD" ? undefined : body)
    return true
  }

  const isAdmin = async (req: IncomingMessage): Promise<boolean> => {
    if (settings.adminScope === undefined) return false
    const bearer = bearerOf(req.headers.authorization)
    if (bearer === undefined || !JWT_SHAPE.test(bearer)) return false
    const verdict = await verify(bearer)
    return verdict._tag === "Ok" && verdict.authInfo.scopes.includes(settings.adminScope)
  }

  const insufficientScope = (authInfo: AuthInfo, tool: string, scope: string) =>
    challenge(
      403,
      "insufficient_scope",
      `The token lacks the scope the tool ${JSON.stringify(tool)} needs`,
      [...new Set([...authInfo.scopes, scope])]
    )

  return { authenticate, serveMetadata, isAdmin, insufficientScope }
}
