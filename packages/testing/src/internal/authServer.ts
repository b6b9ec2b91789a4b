import { toNodeHandler } from "@modelcontextprotocol/node"
import type { NodeIncomingMessageLike } from "@modelcontextprotocol/node"
import { createMcpHandler, fromJsonSchema, McpServer } from "@modelcontextprotocol/server"
import type { CallToolResult, JsonSchemaType } from "@modelcontextprotocol/server"
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign as signData,
  verify as verifySignature
} from "node:crypto"
import type { KeyObject } from "node:crypto"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/**
 * A client registered beforehand.
 */
export interface TestClient {
  readonly clientId: string
  /** A confidential client's secret (`client_secret_basic` or `client_secret_post`). */
  readonly clientSecret?: string | undefined
  /** The public key of a `private_key_jwt` client (PEM or `KeyObject`). */
  readonly publicKey?: string | KeyObject | undefined
  /** Accepted redirect URIs (empty: any). */
  readonly redirectUris?: ReadonlyArray<string> | undefined
  readonly grants?: ReadonlyArray<string> | undefined
}

export interface TestAuthServerOptions {
  /** Scope a tool's `tools/call` needs, by tool name (each becomes a tool). */
  readonly toolScopes?: Readonly<Record<string, string>> | undefined
  /** The `scope` of the `401` challenge. @default none */
  readonly challengeScope?: string | undefined
  /** `scopes_supported` of both metadata documents. @default none */
  readonly scopesSupported?: ReadonlyArray<string> | undefined
  /** Lifetime of access tokens. @default 3600 */
  readonly accessTokenTtlSeconds?: number | undefined
  /** Issue refresh tokens with authorization codes. @default true */
  readonly refreshTokens?: boolean | undefined
  readonly clients?: ReadonlyArray<TestClient> | undefined
  /** Offer dynamic client registration. @default true */
  readonly registration?: boolean | undefined
  /** Accept https URLs as client ids (client ID metadata documents). @default false */
  readonly clientIdMetadataDocuments?: boolean | undefined
  /** The prefix of dynamically registered client ids, to tell two servers' clients apart. @default "dyn-" */
  readonly clientIdPrefix?: string | undefined
  /** Users whose authorization is denied (`error=access_denied`). */
  readonly deny?: ((user: string) => boolean) | undefined
  /**
   * The public key (PEM or `KeyObject`) that signs workloads' JWTs: with it, the JWT bearer grant (RFC 7523) is
   * accepted with such a JWT (audience this server, not expired) and issues a token to `workload:<sub>`. @default none
   */
  readonly workloadKey?: string | KeyObject | undefined
  /**
   * Sender-constrained tokens only (DPoP, RFC 9449): the token endpoint wants an ES256 proof and issues `DPoP` tokens
   * bound to its key; the MCP endpoint wants `Authorization: DPoP` and a proof of that key for the request. @default false
   */
  readonly dpop?: boolean | undefined
  /**
   * Access tokens are JWTs (RFC 9068) signed with this server's ES256 key, whose public half its JWKS (`jwks_uri`,
   * `/jwks`) publishes: `iss` this server, `sub` the user, `aud` the grant's resource indicator (else this server's
   * `/mcp`), `client_id`, `scope`, `iat`, `exp`, `jti`. @default false
   */
  readonly jwtAccessTokens?: boolean | undefined
}

/**
 * What the server saw.
 */
export type AuthEvent =
  | { readonly kind: "metadata"; readonly path: string } // `/jwks` too
  | {
    readonly kind: "register"
    readonly clientId: string
    readonly redirectUris: ReadonlyArray<string>
    readonly grantTypes: ReadonlyArray<string>
  }
  | {
    readonly kind: "authorize"
    readonly clientId: string
    readonly user: string
    readonly scope: string | undefined
    readonly resource: string | undefined
    readonly codeChallengeMethod: string | undefined
  }
  | {
    readonly kind: "token"
    readonly grant: string
    readonly clientId: string | undefined
    readonly clientAuth: "client_secret_basic" | "client_secret_post" | "private_key_jwt" | "none"
    readonly resource: string | undefined
    readonly scope: string | undefined
    readonly ok: boolean
    readonly error?: string
  }
  | {
    readonly kind: "mcp"
    readonly method: string | undefined
    readonly status: number
    readonly user: string | undefined
  }

/**
 * A running server.
 */
export interface TestAuthServer {
  /** The MCP endpoint (the protected resource), `http://127.0.0.1:PORT/mcp`. */
  readonly url: string
  /** The authorization server's issuer, `http://127.0.0.1:PORT`. */
  readonly issuer: string
  readonly events: () => ReadonlyArray<AuthEvent>
  /** Token requests (of one grant type), successful or not. */
  readonly tokenRequests: (grant?: string) => number
  /** Every access token now refused with `401` (refresh tokens still work). */
  readonly expireAccessTokens: () => void
  /** Forgets every access and refresh token (a new authorization is needed). */
  readonly revokeAll: () => void
  /** Every code, token and client secret issued so far. */
  readonly issuedSecrets: () => ReadonlyArray<string>
  /**
   * Moves the protected resource to another authorization server (`to`, another `TestAuthServer`), as an operator
   * migrating a server would: from now on its protected resource metadata names `to.issuer`, its `401` challenges
   * stay the same, and it accepts only access tokens `to` issued (its own are refused with `401`). `to` accepts this
   * resource as a resource indicator. Without `to`, the resource goes back to its own authorization server.
   */
  readonly moveTo: (to: TestAuthServer | undefined) => void
  /** The grant behind a valid access token this server issued (user, client, scope), else `undefined`. */
  readonly introspect: (
    accessToken: string
  ) => { readonly user: string; readonly clientId: string; readonly scope: ReadonlyArray<string> } | undefined
  /** Accepts `resource` as a resource indicator besides its own `/mcp` (another server's, after `moveTo`). */
  readonly acceptResource: (resource: string) => void
  /**
   * Signs `claims` as a JWT with this server's current key (or, with `kid`, names another key id; with `foreignKey`,
   * signs with a key its JWKS never publishes, under the current key's id), over defaults `iss` (this server), `iat`, `exp` (the access token
   * lifetime) and `jti`: a claim set to `undefined` is left out. For tests of a resource server's checks.
   */
  readonly signJwt: (
    claims: Readonly<Record<string, unknown>>,
    options?: { readonly kid?: string | undefined; readonly foreignKey?: boolean | undefined }
  ) => string
  /** A new signing key (and `kid`) from now on; the JWKS publishes it beside the old ones. Returns the new `kid`. */
  readonly rotateSigningKey: () => string
  /** Fetches of the JWKS so far. */
  readonly jwksFetches: () => number
  readonly close: () => Promise<void>
}

interface Client {
  readonly clientId: string
  readonly clientSecret: string | undefined
  readonly publicKey: KeyObject | undefined
  readonly redirectUris: ReadonlyArray<string>
  readonly grants: ReadonlyArray<string>
}

interface Grant {
  readonly user: string
  readonly clientId: string
  readonly scope: ReadonlyArray<string>
  /** The resource indicator the grant was asked for (a JWT access token's `aud`). */
  readonly resource?: string | undefined
}

interface Code extends Grant {
  readonly redirectUri: string
  readonly challenge: string
  readonly resource: string | undefined
}

interface AccessToken extends Grant {
  expiresAt: number
  /** The thumbprint of the key the token is bound to (DPoP). */
  readonly jkt?: string | undefined
}

/**
 * Checks a DPoP proof (RFC 9449 §4.3) for `method` on `url` (and, at a resource, its `accessToken`); returns the
 * thumbprint of its key (RFC 7638), or a reason.
 */
const checkDpopProof = (
  proof: string | undefined,
  method: string,
  url: string,
  accessToken?: string
): { readonly jkt: string } | string => {
  if (proof === undefined) return "no DPoP proof"
  const header = JSON.parse(Buffer.from(proof.split(".")[0] ?? "", "base64url").toString("utf8")) as {
    typ?: string
    alg?: string
    jwk?: Record<string, string>
  }
  if (header.typ !== "dpop+jwt" || header.alg !== "ES256" || header.jwk?.kty !== "EC") return "not an ES256 DPoP proof"
  const { crv, kty, x, y } = header.jwk
  const claims = verifyJwt(proof, createPublicKey({ key: { crv, kty, x, y }, format: "jwk" }))
  if (typeof claims === "string") return claims
  if (claims.htm !== method || claims.htu !== url) return "the proof is for another request"
  if (typeof claims.iat !== "number" || Math.abs(claims.iat * 1000 - Date.now()) > 300_000) return "stale proof"
  if (accessToken !== undefined && claims.ath !== createHash("sha256").update(accessToken).digest("base64url")) {
    return "the proof is for another token"
  }
  return { jkt: createHash("sha256").update(JSON.stringify({ crv, kty, x, y })).digest("base64url") }
}

const randomId = (prefix: string) => `${prefix}${randomBytes(18).toString("base64url")}`

const readBody = async (req: IncomingMessage): Promise<string> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of req) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk as Buffer)
  return Buffer.concat(chunks).toString("utf8")
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers })
  res.end(JSON.stringify(body))
}

const scopes = (text: string | null | undefined): Array<string> =>
  text === null || text === undefined ? [] : text.split(" ").filter((s) => s.length > 0)

const text = (value: unknown): CallToolResult => ({
  content: [{ type: "text", text: JSON.stringify(value) }],
  ...(typeof value === "object" && value !== null ? { structuredContent: value as Record<string, unknown> } : {})
})

/** Verifies an RS256/ES256 JWT with `key`; returns its claims, or a reason. */
const verifyJwt = (jwt: string, key: KeyObject): Record<string, unknown> | string => {
  const [head, body, signature] = jwt.split(".")
  if (head === undefined || body === undefined || signature === undefined) return "malformed JWT"
  const header = JSON.parse(Buffer.from(head, "base64url").toString("utf8")) as { alg?: string }
  const data = Buffer.from(`${head}.${body}`)
  const sig = Buffer.from(signature, "base64url")
  const ok = header.alg === "ES256"
    ? verifySignature("sha256", data, { key, dsaEncoding: "ieee-p1363" }, sig)
    : header.alg === "RS256"
    ? verifySignature("sha256", data, key, sig)
    : false
  if (!ok) return `bad signature (alg ${header.alg})`
  return JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Record<string, unknown>
}

export const startAuthServer = async (options: TestAuthServerOptions = {}): Promise<TestAuthServer> => {
  const events: Array<AuthEvent> = []
  const clients = new Map<string, Client>()
  const codes = new Map<string, Code>()
  const accessTokens = new Map<string, AccessToken>()
  const refreshTokens = new Map<string, Grant>()
  const ttlSeconds = options.accessTokenTtlSeconds ?? 3600
  const toolScopes = options.toolScopes ?? {}
  let registered = 0
  // Every secret this server ever handed out, for tests that look for leaks.
  const issued: Array<string> = []
  for (const client of options.clients ?? []) addClient(client)

  const random = (prefix: string) => {
    const value = randomId(prefix)
    issued.push(value)
    return value
  }

  // ES256 signing keys of JWT access tokens, newest last; the JWKS publishes every one.
  const newKey = () => {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" })
    return { kid: randomId("k-"), privateKey: pair.privateKey, publicKey: pair.publicKey }
  }
  const signingKeys = options.jwtAccessTokens === true ? [newKey()] : []
  let foreign: ReturnType<typeof newKey> | undefined
  let jwksFetches = 0
  const signJwt = (
    claims: Readonly<Record<string, unknown>>,
    how: { readonly kid?: string | undefined; readonly foreignKey?: boolean | undefined } = {}
  ): string => {
    const own = signingKeys.at(-1)
    if (own === undefined) throw new Error("signJwt needs a server started with jwtAccessTokens: true")
    const key = how.foreignKey === true ? (foreign ??= newKey()) : own
    const now = Math.floor(Date.now() / 1000)
    const payload: Record<string, unknown> = { iss: origin, iat: now, exp: now + ttlSeconds, jti: randomId("jti-") }
    for (const [name, value] of Object.entries(claims)) {
      if (value === undefined) delete payload[name]
      else payload[name] = value
    }
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
    // A foreign key signs under the current key's id: a forgery that names a key the JWKS has.
    const input = `${encode({ alg: "ES256", typ: "at+jwt", kid: how.kid ?? own.kid })}.${encode(payload)}`
    const signature = signData("sha256", Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" })
    const jwt = `${input}.${signature.toString("base64url")}`
    issued.push(jwt)
    return jwt
  }

  function addClient(client: TestClient) {
    clients.set(client.clientId, {
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      publicKey: client.publicKey === undefined ? undefined : createPublicKey(client.publicKey),
      redirectUris: client.redirectUris ?? [],
      grants: client.grants ?? ["authorization_code", "refresh_token", "client_credentials"]
    })
  }

  const httpServer = createServer()
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve))
  const origin = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`
  const resource = `${origin}/mcp`
  const prmUrl = `${origin}/.well-known/oauth-protected-resource/mcp`
  const resources = new Set([resource])
  // The authorization server the resource uses after `moveTo`, else this one.
  let delegate: TestAuthServer | undefined
  const valid = (bearer: string | undefined): Grant | undefined => {
    if (bearer === undefined) return undefined
    if (delegate !== undefined) return delegate.introspect(bearer)
    const token = accessTokens.get(bearer)
    return token === undefined || token.expiresAt <= Date.now() ? undefined : token
  }

  // --- the MCP server behind the tokens --------------------------------------

  const userOf = (request: Request | undefined) =>
    valid(request?.headers.get("authorization")?.replace(/^(Bearer|DPoP) /i, "") ?? "")
  const mcp = toNodeHandler(createMcpHandler((ctx) => {
    const server = new McpServer({ name: "test-auth-server", version: "1.0.0" })
    const grant = userOf(ctx.requestInfo)
    const schema = fromJsonSchema<Record<string, unknown>>({ type: "object" } as JsonSchemaType)
    server.registerTool(
      "whoami",
      { description: "The caller the token belongs to", inputSchema: schema },
      async () => text({ user: grant?.user, clientId: grant?.clientId, scope: grant?.scope.join(" ") })
    )
    server.registerTool(
      "echo",
      { description: "Echoes its arguments", inputSchema: schema },
      async (args) => text(args)
    )
    for (const tool of Object.keys(toolScopes)) {
      server.registerTool(
        tool,
        { description: `Needs ${toolScopes[tool]}`, inputSchema: schema },
        async () => text({ tool, user: grant?.user })
      )
    }
    return server
  }, { legacy: "stateless" }))

  const challenge = (extra: string) =>
    `Bearer resource_metadata="${prmUrl}"${options.challengeScope ? `, scope="${options.challengeScope}"` : ""}${extra}`

  const handleMcp = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = req.method === "POST" ? await readBody(req) : ""
    const body = raw.length > 0 ? JSON.parse(raw) as { method?: string; params?: { name?: string } } : undefined
    const method = body?.method
    const presented = /^(Bearer|DPoP) (.+)$/i.exec(req.headers.authorization ?? "")
    const bearer = presented?.[2]
    let token = valid(bearer)
    if (token !== undefined && options.dpop === true) {
      // A DPoP-bound token counts only under the DPoP scheme, with a proof of its key for this very request.
      const proof = checkDpopProof(
        typeof req.headers.dpop === "string" ? req.headers.dpop : undefined,
        req.method ?? "",
        `${origin}${(req.url ?? "").split("?")[0]}`,
        bearer
      )
      const bound = (token as AccessToken).jkt
      if (presented?.[1] !== "DPoP" || typeof proof === "string" || bound === undefined || proof.jkt !== bound) {
        token = undefined
      }
    }
    if (token === undefined) {
      events.push({ kind: "mcp", method, status: 401, user: undefined })
      return json(res, 401, { error: "invalid_token" }, { "www-authenticate": challenge("") })
    }
    const required = method === "tools/call" ? toolScopes[body?.params?.name ?? ""] : undefined
    if (required !== undefined && !token.scope.includes(required)) {
      events.push({ kind: "mcp", method, status: 403, user: token.user })
      const wanted = [...new Set([...token.scope, required])].join(" ")
      return json(res, 403, { error: "insufficient_scope" }, {
        "www-authenticate": `Bearer error="insufficient_scope", scope="${wanted}", resource_metadata="${prmUrl}"`
      })
    }
    events.push({ kind: "mcp", method, status: 200, user: token.user })
    return mcp(req as NodeIncomingMessageLike, res, body)
  }

  // --- the authorization server ------------------------------------------------

  const metadata = () => ({
    issuer: origin,
    authorization_endpoint: `${origin}/authorize`,
    token_endpoint: `${origin}/token`,
    ...(options.registration === false ? {} : { registration_endpoint: `${origin}/register` }),
    response_types_supported: ["code"],
    grant_types_supported: [
      "authorization_code",
      "refresh_token",
      "client_credentials",
      ...(options.workloadKey === undefined ? [] : ["urn:ietf:params:oauth:grant-type:jwt-bearer"])
    ],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
    token_endpoint_auth_signing_alg_values_supported: ["ES256", "RS256"],
    authorization_response_iss_parameter_supported: true,
    ...(options.dpop === true ? { dpop_signing_alg_values_supported: ["ES256"] } : {}),
    ...(options.jwtAccessTokens === true ? { jwks_uri: `${origin}/jwks` } : {}),
    ...(options.scopesSupported === undefined ? {} : { scopes_supported: options.scopesSupported }),
    ...(options.clientIdMetadataDocuments === true ? { client_id_metadata_document_supported: true } : {})
  })

  const clientOf = (clientId: string | null): Client | undefined => {
    if (clientId === null) return undefined
    const client = clients.get(clientId)
    if (client !== undefined) return client
    // A client ID metadata document URL: accepted as a public client (the document is not fetched here).
    return options.clientIdMetadataDocuments === true && clientId.startsWith("https://")
      ? { clientId, clientSecret: undefined, publicKey: undefined, redirectUris: [], grants: ["authorization_code"] }
      : undefined
  }

  const authorize = (url: URL, res: ServerResponse) => {
    const q = url.searchParams
    const client = clientOf(q.get("client_id"))
    const redirectUri = q.get("redirect_uri") ?? ""
    if (client === undefined) return json(res, 400, { error: "invalid_client" })
    if (client.redirectUris.length > 0 && !client.redirectUris.includes(redirectUri)) {
      return json(res, 400, { error: "invalid_request", error_description: "unregistered redirect_uri" })
    }
    const user = q.get("test_user") ?? "user"
    const scope = scopes(q.get("scope"))
    events.push({
      kind: "authorize",
      clientId: client.clientId,
      user,
      scope: q.get("scope") ?? undefined,
      resource: q.get("resource") ?? undefined,
      codeChallengeMethod: q.get("code_challenge_method") ?? undefined
    })
    const back = new URL(redirectUri)
    const fail = (error: string) => {
      back.searchParams.set("error", error)
      if (q.get("state")) back.searchParams.set("state", q.get("state")!)
      res.writeHead(302, { location: back.href })
      res.end()
    }
    if (q.get("response_type") !== "code") return fail("unsupported_response_type")
    if (q.get("code_challenge_method") !== "S256" || !q.get("code_challenge")) return fail("invalid_request")
    if (q.get("resource") !== null && !resources.has(q.get("resource")!)) return fail("invalid_target")
    if (options.deny?.(user) === true) return fail("access_denied")
    const code = random("code_")
    codes.set(code, {
      user,
      clientId: client.clientId,
      scope,
      redirectUri,
      challenge: q.get("code_challenge")!,
      resource: q.get("resource") ?? undefined
    })
    back.searchParams.set("code", code)
    if (q.get("state")) back.searchParams.set("state", q.get("state")!)
    back.searchParams.set("iss", origin)
    res.writeHead(302, { location: back.href })
    res.end()
  }

  /** The thumbprint of the token request's DPoP key (when the server wants DPoP). */
  let requestJkt: string | undefined
  const issue = (res: ServerResponse, grant: Grant, withRefresh: boolean) => {
    const accessToken = options.jwtAccessTokens === true
      ? signJwt({
        sub: grant.user,
        aud: grant.resource ?? resource,
        client_id: grant.clientId,
        scope: grant.scope.join(" ")
      })
      : random("at_")
    const jkt = requestJkt
    accessTokens.set(accessToken, {
      ...grant,
      expiresAt: Date.now() + ttlSeconds * 1000,
      ...(jkt === undefined ? {} : { jkt })
    })
    let refreshToken: string | undefined
    if (withRefresh && options.refreshTokens !== false) {
      refreshToken = random("rt_")
      refreshTokens.set(refreshToken, grant)
    }
    json(res, 200, {
      access_token: accessToken,
      token_type: jkt === undefined ? "Bearer" : "DPoP",
      expires_in: ttlSeconds,
      scope: grant.scope.join(" "),
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken })
    })
  }

  const token = async (req: IncomingMessage, res: ServerResponse) => {
    const form = new URLSearchParams(await readBody(req))
    const grantType = form.get("grant_type") ?? ""
    // Client authentication: HTTP Basic, POST body, private_key_jwt assertion, or a public client's client_id.
    let method: "client_secret_basic" | "client_secret_post" | "private_key_jwt" | "none" = "none"
    let client: Client | undefined
    let authError: string | undefined
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "")?.[1]
    if (basic !== undefined) {
      method = "client_secret_basic"
      const decoded = Buffer.from(basic, "base64").toString("utf8")
      const colon = decoded.indexOf(":")
      client = clientOf(decodeURIComponent(decoded.slice(0, colon)))
      if (client?.clientSecret !== decodeURIComponent(decoded.slice(colon + 1))) authError = "bad client secret"
    } else if (form.get("client_assertion") !== null) {
      method = "private_key_jwt"
      const assertion = form.get("client_assertion")!
      const claims = JSON.parse(Buffer.from(assertion.split(".")[1] ?? "", "base64url").toString("utf8")) as {
        iss?: string
        sub?: string
        aud?: string | Array<string>
        exp?: number
      }
      client = clientOf(claims.iss ?? null)
      const verified = client?.publicKey === undefined ? "unknown client key" : verifyJwt(assertion, client.publicKey)
      const audience = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
      if (typeof verified === "string") authError = verified
      else if (claims.sub !== claims.iss) authError = "sub must be the client_id"
      else if (!audience.some((aud) => aud === origin || aud === `${origin}/token`)) authError = "bad audience"
      else if ((claims.exp ?? 0) * 1000 < Date.now()) authError = "expired assertion"
    } else if (form.get("client_secret") !== null) {
      method = "client_secret_post"
      client = clientOf(form.get("client_id"))
      if (client?.clientSecret !== form.get("client_secret")) authError = "bad client secret"
    } else {
      client = clientOf(form.get("client_id"))
      if (client?.clientSecret !== undefined) authError = "a confidential client must authenticate"
    }
    const record = (ok: boolean, error?: string) =>
      events.push({
        kind: "token",
        grant: grantType,
        clientId: client?.clientId,
        clientAuth: method,
        resource: form.get("resource") ?? undefined,
        scope: form.get("scope") ?? undefined,
        ok,
        ...(error === undefined ? {} : { error })
      })
    const refuse = (status: number, error: string, description: string) => {
      record(false, error)
      json(res, status, { error, error_description: description })
    }
    if (client === undefined || authError !== undefined) {
      return refuse(401, "invalid_client", authError ?? "unknown client")
    }
    requestJkt = undefined
    if (options.dpop === true) {
      const proof = checkDpopProof(
        typeof req.headers.dpop === "string" ? req.headers.dpop : undefined,
        "POST",
        `${origin}/token`
      )
      if (typeof proof === "string") return refuse(400, "invalid_dpop_proof", proof)
      requestJkt = proof.jkt
    }
    if (form.get("resource") !== null && !resources.has(form.get("resource")!)) {
      return refuse(400, "invalid_target", "unknown resource")
    }
    switch (grantType) {
      case "authorization_code": {
        const code = codes.get(form.get("code") ?? "")
        codes.delete(form.get("code") ?? "")
        const verifier = form.get("code_verifier") ?? ""
        const challenge = createHash("sha256").update(verifier).digest("base64url")
        if (code === undefined || code.clientId !== client.clientId) return refuse(400, "invalid_grant", "bad code")
        if (code.redirectUri !== form.get("redirect_uri")) return refuse(400, "invalid_grant", "redirect_uri mismatch")
        if (code.challenge !== challenge) return refuse(400, "invalid_grant", "PKCE verification failed")
        if (code.resource !== (form.get("resource") ?? undefined)) {
          return refuse(400, "invalid_grant", "resource mismatch")
        }
        record(true)
        return issue(res, code, true)
      }
      case "refresh_token": {
        const grant = refreshTokens.get(form.get("refresh_token") ?? "")
        if (grant === undefined || grant.clientId !== client.clientId) {
          return refuse(400, "invalid_grant", "unknown refresh token")
        }
        refreshTokens.delete(form.get("refresh_token")!)
        const asked = scopes(form.get("scope"))
        if (asked.some((s) => !grant.scope.includes(s))) return refuse(400, "invalid_scope", "wider than granted")
        record(true)
        return issue(res, asked.length > 0 ? { ...grant, scope: asked } : grant, true)
      }
      case "client_credentials": {
        if (method === "none") return refuse(401, "invalid_client", "client credentials need a confidential client")
        record(true)
        return issue(res, {
          user: `client:${client.clientId}`,
          clientId: client.clientId,
          scope: scopes(form.get("scope")),
          resource: form.get("resource") ?? undefined
        }, false)
      }
      case "urn:ietf:params:oauth:grant-type:jwt-bearer": {
        if (options.workloadKey === undefined) return refuse(400, "unsupported_grant_type", grantType)
        const assertion = form.get("assertion") ?? ""
        const key = typeof options.workloadKey === "string"
          ? createPublicKey(options.workloadKey)
          : options.workloadKey
        const claims = verifyJwt(assertion, key)
        if (typeof claims === "string") return refuse(400, "invalid_grant", claims)
        const audience = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
        if (!audience.some((aud) => aud === origin || aud === `${origin}/token`)) {
          return refuse(400, "invalid_grant", "bad audience")
        }
        if (typeof claims.exp !== "number" || claims.exp * 1000 < Date.now()) {
          return refuse(400, "invalid_grant", "expired assertion")
        }
        record(true)
        return issue(res, {
          user: `workload:${String(claims.sub)}`,
          clientId: client.clientId,
          scope: scopes(form.get("scope"))
        }, false)
      }
      default:
        return refuse(400, "unsupported_grant_type", grantType)
    }
  }

  const register = async (req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.parse(await readBody(req)) as {
      client_name?: string
      redirect_uris?: Array<string>
      grant_types?: Array<string>
      token_endpoint_auth_method?: string
    }
    const method = body.token_endpoint_auth_method ?? "client_secret_basic"
    const client: TestClient = {
      clientId: `${options.clientIdPrefix ?? "dyn-"}${++registered}`,
      ...(method === "none" ? {} : { clientSecret: random("secret_") }),
      redirectUris: body.redirect_uris ?? []
    }
    addClient(client)
    events.push({
      kind: "register",
      clientId: client.clientId,
      redirectUris: body.redirect_uris ?? [],
      grantTypes: body.grant_types ?? []
    })
    json(res, 201, {
      ...body,
      client_id: client.clientId,
      ...(client.clientSecret === undefined ? {} : { client_secret: client.clientSecret }),
      token_endpoint_auth_method: method
    })
  }

  httpServer.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", origin)
    const route = async () => {
      if (url.pathname === "/mcp") return handleMcp(req, res)
      if (url.pathname === "/.well-known/oauth-protected-resource/mcp") {
        events.push({ kind: "metadata", path: url.pathname })
        return json(res, 200, {
          resource,
          authorization_servers: [delegate?.issuer ?? origin],
          bearer_methods_supported: ["header"],
          ...(options.scopesSupported === undefined ? {} : { scopes_supported: options.scopesSupported })
        })
      }
      if (url.pathname === "/.well-known/oauth-authorization-server") {
        events.push({ kind: "metadata", path: url.pathname })
        return json(res, 200, metadata())
      }
      if (url.pathname === "/jwks" && signingKeys.length > 0) {
        jwksFetches++
        events.push({ kind: "metadata", path: url.pathname })
        return json(res, 200, {
          keys: signingKeys.map((k) => ({
            ...k.publicKey.export({ format: "jwk" }),
            kid: k.kid,
            alg: "ES256",
            use: "sig"
          }))
        })
      }
      if (url.pathname === "/authorize" && req.method === "GET") return authorize(url, res)
      if (url.pathname === "/token" && req.method === "POST") return token(req, res)
      if (url.pathname === "/register" && req.method === "POST" && options.registration !== false) {
        return register(req, res)
      }
      return json(res, 404, { error: "not_found" })
    }
    route().catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { error: "server_error", error_description: String(error) })
      else res.end()
    })
  })

  return {
    url: resource,
    issuer: origin,
    events: () => events,
    tokenRequests: (grant) =>
      events.filter((e) => e.kind === "token" && (grant === undefined || e.grant === grant)).length,
    expireAccessTokens: () => {
      for (const token of accessTokens.values()) token.expiresAt = 0
    },
    revokeAll: () => {
      accessTokens.clear()
      refreshTokens.clear()
    },
    issuedSecrets: () => [...issued],
    moveTo: (to) => {
      delegate = to
      to?.acceptResource(resource)
    },
    introspect: (accessToken) => {
      const token = accessTokens.get(accessToken)
      return token === undefined || token.expiresAt <= Date.now() ? undefined : token
    },
    acceptResource: (other) => void resources.add(other),
    signJwt,
    rotateSigningKey: () => {
      const key = newKey()
      signingKeys.push(key)
      return key.kid
    },
    jwksFetches: () => jwksFetches,
    close: () =>
      new Promise<void>((resolve) => {
        httpServer.close(() => resolve())
        httpServer.closeAllConnections()
      })
  }
}
