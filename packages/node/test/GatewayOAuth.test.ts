import { assert, describe, it } from "@effect/vitest"
import { Gateway, serveGateway } from "@mcp-bridge/node"
import { TestAuthServer, TestServer } from "@mcp-bridge/testing"
import { Client, ClientCredentialsProvider, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import type { CallToolResult, ClientCapabilities } from "@modelcontextprotocol/client"
import { createHash } from "node:crypto"
import { afterAll, beforeAll } from "vitest"

const tools: ReadonlyArray<TestServer.TestTool> = [
  { name: "echo", annotations: { readOnlyHint: true }, respond: { kind: "echo" } },
  { name: "counter", respond: { kind: "counter" } },
  { name: "secret", respond: { kind: "text", text: "classified" } }
]

const text = (result: CallToolResult) => (result.content[0] as { text: string }).text
const names = (tools: ReadonlyArray<{ readonly name: string }>) =>
  tools.map((t) => t.name).filter((n) => !n.endsWith("__stats")).sort()

const connect = async (url: string, headers: Record<string, string>, mode: "auto" | "legacy" = "auto") => {
  const client = new Client(
    { name: "oauth-test", version: "1.0.0" },
    mode === "auto" ? { versionNegotiation: { mode: "auto" } } : {}
  )
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } })
  await client.connect(transport)
  return { client, transport }
}

// One JSON-RPC request with the given Authorization (none when undefined): the status, challenge and body.
const post = async (url: string, authorization: string | undefined, extra: Record<string, string> = {}) => {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(authorization === undefined ? {} : { authorization }),
      ...extra
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })
  })
  return {
    status: response.status,
    challenge: response.headers.get("www-authenticate") ?? "",
    body: await response.text()
  }
}

describe("GatewayOAuth", () => {
  let as: TestAuthServer.TestAuthServer
  let upstream: TestServer.HttpTestServer
  let gateway: Awaited<ReturnType<typeof serveGateway>>
  let metadataUrl: string
  const apiKey = "k-oauth-and-keys-1"

  beforeAll(async () => {
    as = await TestAuthServer.start({
      jwtAccessTokens: true,
      clients: [{ clientId: "agent", clientSecret: "agent-secret-1", grants: ["client_credentials"] }]
    })
    upstream = await TestServer.startHttp({ name: "up", tools, era: "legacy" })
    gateway = await serveGateway({
      mcpServers: {
        up: {
          url: upstream.url,
          bridge: {
            protocol: "legacy",
            // One upstream session per identity, and results cached per identity.
            pool: { max: 1, isolation: "per-identity" },
            tools: { counter: { cache: "10 minutes" } }
          }
        }
      },
      gateway: {
        apiKeys: [{ principal: "robot", sha256: createHash("sha256").update(apiKey).digest("hex") }],
        oauth: {
          issuer: as.issuer,
          requiredScopes: ["mcp"],
          scopes: { mcp: ["echo", "counter"], "tools:all": ["*"] },
          adminScope: "gateway:admin",
          jwksRefetchInterval: "1 second"
        }
      }
    }, { port: 0 })
    // The gateway is the resource tokens are asked for (RFC 8707).
    as.acceptResource(gateway.url)
    metadataUrl = gateway.url.replace(/\/mcp$/, "/.well-known/oauth-protected-resource/mcp")
  }, 60_000)

  afterAll(async () => {
    await gateway?.close()
    await upstream?.close()
    await as?.close()
  })

  // An SDK v2 client with the SDK's client-credentials provider: it finds the authorization server from the gateway's
  // 401, and asks for more scopes on a 403 `insufficient_scope`.
  const credentialsClient = async () => {
    const provider = new ClientCredentialsProvider({
      clientId: "agent",
      clientSecret: "agent-secret-1",
      expectedIssuer: as.issuer
    })
    const client = new Client({ name: "oauth-test", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } })
    await client.connect(new StreamableHTTPClientTransport(new URL(gateway.url), { authProvider: provider }))
    return client
  }

  const token = (claims: Record<string, unknown>, options?: Parameters<TestAuthServer.TestAuthServer["signJwt"]>[1]) =>
    as.signJwt({ aud: gateway.url, scope: "mcp", ...claims }, options)

  it("serves its protected resource metadata (RFC 9728), at the root and for /mcp", async () => {
    for (const url of [metadataUrl, gateway.url.replace(/\/mcp$/, "/.well-known/oauth-protected-resource")]) {
      const response = await fetch(url)
      assert.strictEqual(response.status, 200)
      const document = await response.json() as Record<string, unknown>
      assert.strictEqual(document.resource, gateway.url)
      assert.deepStrictEqual(document.authorization_servers, [as.issuer])
      assert.deepStrictEqual(document.bearer_methods_supported, ["header"])
      assert.deepStrictEqual([...(document.scopes_supported as Array<string>)].sort(), [
        "gateway:admin",
        "mcp",
        "tools:all"
      ])
    }
    assert.strictEqual(
      (await fetch(gateway.url.replace(/\/mcp$/, "/.well-known/oauth-protected-resource/x"))).status,
      404
    )
  })

  it("answers a request without a token with 401 and a challenge naming the metadata and the scope", async () => {
    const { challenge, status } = await post(gateway.url, undefined)
    assert.strictEqual(status, 401)
    assert.strictEqual(challenge, `Bearer scope="mcp", resource_metadata="${metadataUrl}"`)
  })

  it("refuses an expired, foreign, forged or unknown token with 401 invalid_token, and never echoes it", async () => {
    const now = Math.floor(Date.now() / 1000)
    const cases: ReadonlyArray<readonly [string, string, string]> = [
      ["expired", token({ sub: "alice", iat: now - 7200, exp: now - 3600 }), "expired"],
      ["wrong audience", token({ sub: "alice", aud: "http://127.0.0.1:1/mcp" }), "not issued for this resource"],
      ["wrong issuer", token({ sub: "alice", iss: "http://127.0.0.1:1" }), "untrusted issuer"],
      ["bad signature", token({ sub: "alice" }, { foreignKey: true }), "signature"],
      ["unknown kid", token({ sub: "alice" }, { kid: "no-such-key" }), "No key"],
      ["not yet valid", token({ sub: "alice", nbf: now + 3600 }), "not valid yet"],
      ["no subject", token({ sub: undefined }), "has no"],
      ["not a JWT", "opaque-token-123", "invalid"]
    ]
    for (const [name, jwt, why] of cases) {
      const { body, challenge, status } = await post(gateway.url, `Bearer ${jwt}`)
      assert.strictEqual(status, 401, name)
      assert.match(
        challenge,
        /^Bearer error="invalid_token", error_description="(?:[^"\\]|\\.)+", resource_metadata="/,
        name
      )
      assert.include(challenge, `resource_metadata="${metadataUrl}"`, name)
      assert.include(challenge + body, why, name)
      for (const part of jwt.split(".")) assert.notInclude(challenge + body, part, name)
    }
  })

  it("refuses a token that lacks the required scope with 403 insufficient_scope and the scopes to ask for", async () => {
    const { challenge, status } = await post(gateway.url, `Bearer ${token({ sub: "alice", scope: "profile" })}`)
    assert.strictEqual(status, 403)
    assert.include(challenge, "Bearer error=\"insufficient_scope\"")
    assert.include(challenge, "scope=\"profile mcp\"")
    assert.include(challenge, `resource_metadata="${metadataUrl}"`)
  })

  it("lets an SDK client with client credentials find the authorization server from the 401 and call", async () => {
    const client = await credentialsClient()
    // The scope `mcp` sees the tools it maps to, not `secret`.
    assert.deepStrictEqual(names((await client.listTools()).tools), ["counter", "echo"])
    const result = await client.callTool({ name: "echo", arguments: { via: "oauth" } }) as CallToolResult
    assert.deepStrictEqual(JSON.parse(text(result)), { via: "oauth" })
    await client.close()
    const grants = as.events().filter((e) => e.kind === "token" && e.grant === "client_credentials")
    assert.strictEqual(grants.length, 1)
    assert.deepStrictEqual(grants.map((e) => e.kind === "token" && [e.ok, e.resource, e.scope]), [[
      true,
      gateway.url,
      "mcp"
    ]])
  })

  it("runs each user's calls as its own identity: its own upstream session and cache partition", async () => {
    const sessions = upstream.sessionsOpened()
    const alice = await connect(gateway.url, { authorization: `Bearer ${token({ sub: "alice" })}` })
    const bob = await connect(gateway.url, { authorization: `Bearer ${token({ sub: "bob" })}` })
    const count = async (client: Client) =>
      JSON.parse(text(await client.callTool({ name: "counter", arguments: {} }) as CallToolResult))
    const first = await count(alice.client)
    assert.deepStrictEqual(await count(alice.client), first) // cached for alice
    assert.strictEqual(upstream.calls("counter"), 1)
    // Bob's call is neither alice's cached result nor a call on alice's upstream session.
    assert.deepStrictEqual(await count(bob.client), first)
    assert.strictEqual(upstream.calls("counter"), 2)
    assert.isAtLeast(upstream.sessionsOpened() - sessions, 2)
    await alice.client.close()
    await bob.client.close()
  })

  it("shows each caller the tools its scopes map to", async () => {
    const all = await connect(gateway.url, {
      authorization: `Bearer ${token({ sub: "carol", scope: "mcp tools:all" })}`
    })
    assert.deepStrictEqual(names((await all.client.listTools()).tools), ["counter", "echo", "secret"])
    assert.strictEqual(
      text(await all.client.callTool({ name: "secret", arguments: {} }) as CallToolResult),
      "classified"
    )
    await all.client.close()
    // A tool outside the token's scopes that another scope shows: 403 `insufficient_scope` naming that scope (in both
    // eras); a name no scope shows stays an unknown tool.
    for (const mode of ["auto", "legacy"] as const) {
      const some = await connect(gateway.url, { authorization: `Bearer ${token({ sub: "carol" })}` }, mode)
      const refused = await some.client.callTool({ name: "secret", arguments: {} }).then(() => "called", String)
      assert.include(refused, "InsufficientScopeError", mode)
      const unknown = await some.client.callTool({ name: "nope", arguments: {} }).then(() => "called", String)
      assert.include(unknown, "Unknown tool", mode)
      await some.client.close()
    }
  })

  it("asks a client to step up to the scope a tool needs, and a client with credentials does and calls it", async () => {
    const client = await credentialsClient()
    const before = as.events().length
    const result = await client.callTool({ name: "secret", arguments: {} }) as CallToolResult
    assert.strictEqual(text(result), "classified")
    const grants = as.events().slice(before).filter((e) => e.kind === "token" && e.grant === "client_credentials")
    assert.deepStrictEqual(grants.map((e) => e.kind === "token" && [e.ok, e.scope]), [[true, "mcp tools:all"]])
    await client.close()
  })

  it("serves a 2025-era session only to the user that opened it", async () => {
    const alice = await connect(gateway.url, { authorization: `Bearer ${token({ sub: "alice" })}` }, "legacy")
    const session = alice.transport.sessionId!
    const bob = await post(gateway.url, `Bearer ${token({ sub: "bob" })}`, {
      "mcp-session-id": session,
      "mcp-protocol-version": "2025-11-25"
    })
    assert.strictEqual(bob.status, 404)
    assert.deepStrictEqual(names((await alice.client.listTools()).tools), ["counter", "echo"])
    await alice.client.close()
  })

  it("takes API keys beside access tokens", async () => {
    for (const headers of [{ authorization: `Bearer ${apiKey}` }, { "x-api-key": apiKey }]) {
      const { client } = await connect(gateway.url, headers)
      assert.deepStrictEqual(names((await client.listTools()).tools), ["counter", "echo", "secret"])
      await client.close()
    }
    const wrong = await post(gateway.url, undefined, { "x-api-key": "k-wrong" })
    assert.strictEqual(wrong.status, 401)
    assert.include(wrong.challenge, `error="invalid_token"`)
    assert.include(wrong.challenge, `resource_metadata="${metadataUrl}"`)
  })

  it("opens the dashboard to the admin scope only", async () => {
    const page = gateway.url.replace(/\/mcp$/, "/")
    assert.strictEqual((await fetch(page)).status, 401)
    const user = await fetch(page, { headers: { authorization: `Bearer ${token({ sub: "alice" })}` } })
    assert.strictEqual(user.status, 401)
    const admin = await fetch(page, {
      headers: { authorization: `Bearer ${token({ sub: "ops", scope: "gateway:admin" })}` }
    })
    assert.strictEqual(admin.status, 200)
  })

  it("fetches a rotated key once, and an unknown key id at most once per interval", async () => {
    // The JWKS was fetched by the tests before; the refetch interval (1 s) must pass before a new key id refetches.
    const before = as.jwksFetches()
    assert.isAbove(before, 0)
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    as.rotateSigningKey()
    const rotated = await connect(gateway.url, { authorization: `Bearer ${token({ sub: "alice" })}` })
    assert.deepStrictEqual(names((await rotated.client.listTools()).tools), ["counter", "echo"])
    await rotated.client.close()
    assert.strictEqual(as.jwksFetches(), before + 1)
    // A burst of unknown key ids: each refused, at most one more fetch between them.
    const forged = await Promise.all(
      Array.from({ length: 5 }, () => post(gateway.url, `Bearer ${token({ sub: "mallory" }, { kid: "forged" })}`))
    )
    assert.deepStrictEqual(forged.map((r) => r.status), [401, 401, 401, 401, 401])
    assert.isAtMost(as.jwksFetches(), before + 2)
  })

  it("refuses an oauth entry that cannot work, naming the field", async () => {
    // What the schema refuses is a configuration error; what it cannot see (plain http off loopback), the gateway's.
    for (
      const [oauth, tag, field] of [
        [{ issuer: "http://auth.example.com" }, "GatewayError", "gateway.oauth.issuer"],
        [{ issuer: as.issuer, jwksUri: "http://keys.example.com/jwks" }, "GatewayError", "gateway.oauth.jwksUri"],
        [{ issuer: "ftp://auth.example.com" }, "BridgeConfigError", "gateway.oauth.issuer"],
        [{ issuer: as.issuer, algorithms: ["HS256"] }, "BridgeConfigError", "gateway.oauth.algorithms"],
        [{ issuer: as.issuer, requiredScopes: ["a b"] }, "BridgeConfigError", "gateway.oauth.requiredScopes"],
        [{ issuer: as.issuer, jwksRefetchInterval: "soon" }, "BridgeConfigError", "gateway.oauth.jwksRefetchInterval"]
      ] as const
    ) {
      const error = await serveGateway({ mcpServers: {}, gateway: { oauth } }, { port: 0, dashboard: false }).then(
        () => undefined,
        (e: unknown) => e as { readonly _tag: string; readonly message: string }
      )
      assert.strictEqual(error?._tag, tag, error?.message)
      assert.include(error?.message, field)
      if (error instanceof Gateway.GatewayError) assert.strictEqual(error.reason._tag, "InvalidSettings")
    }
  })
})

describe("GatewayOAuth upstream login", () => {
  let login: TestAuthServer.TestAuthServer
  let gateway: Awaited<ReturnType<typeof serveGateway>>
  const digest = (k: string) => createHash("sha256").update(k).digest("hex")

  beforeAll(async () => {
    login = await TestAuthServer.start({})
    gateway = await serveGateway({
      mcpServers: { login: { url: login.url, auth: {} } },
      gateway: {
        apiKeys: [
          { principal: "alice", sha256: digest("k-alice-1") },
          { principal: "bob", sha256: digest("k-bob-22") },
          { principal: "carol", sha256: digest("k-carol-3") },
          { principal: "dave", sha256: digest("k-dave-44") },
          { principal: "erin", sha256: digest("k-erin-55") },
          { principal: "frank", sha256: digest("k-frank-6"), tools: ["who*"] }
        ]
      }
    }, { port: 0, dashboard: false })
  }, 60_000)

  afterAll(async () => {
    await gateway?.close()
    await login?.close()
  })

  // A 2025-era client that opens URL-mode elicitations in its "browser" as `user`.
  const user = async (key: string, name: string) => {
    const asked: Array<string> = []
    const client = new Client({ name: "login-test", version: "1.0.0" }, { capabilities: { elicitation: { url: {} } } })
    client.setRequestHandler("elicitation/create", async (request) => {
      if (request.params.mode !== "url") return { action: "decline" as const }
      asked.push(request.params.url)
      const back = await TestAuthServer.approveAs(name)({ url: new URL(request.params.url), identity: undefined })
      const page = await fetch(back)
      await page.text()
      return { action: "accept" as const }
    })
    await client.connect(
      new StreamableHTTPClientTransport(new URL(gateway.url), { requestInit: { headers: { "x-api-key": key } } })
    )
    return { client, asked }
  }

  it("asks each user to sign in to the upstream with a URL-mode elicitation, once, and calls as that user", async () => {
    const alice = await user("k-alice-1", "alice")
    const first = await alice.client.callTool({ name: "whoami", arguments: {} }) as CallToolResult
    assert.strictEqual(JSON.parse(text(first)).user, "alice", text(first))
    assert.strictEqual(alice.asked.length, 1)
    // The authorization page of the upstream's server, coming back to the gateway.
    const asked = new URL(alice.asked[0]!)
    assert.strictEqual(`${asked.origin}${asked.pathname}`, `${login.issuer}/authorize`)
    assert.strictEqual(asked.searchParams.get("redirect_uri"), gateway.url.replace(/\/mcp$/, "/oauth/callback"))
    const again = await alice.client.callTool({ name: "whoami", arguments: {} }) as CallToolResult
    assert.strictEqual(JSON.parse(text(again)).user, "alice")
    assert.strictEqual(alice.asked.length, 1)
    const bob = await user("k-bob-22", "bob")
    const his = await bob.client.callTool({ name: "whoami", arguments: {} }) as CallToolResult
    assert.strictEqual(JSON.parse(text(his)).user, "bob", text(his))
    assert.strictEqual(bob.asked.length, 1)
    await alice.client.close()
    await bob.client.close()
  })

  // A 2026-07-28 request has no server→client channel, and a `tools/list` no rounds: the login is offered as a tool.
  const modern = async (key: string, capabilities: ClientCapabilities, name: string) => {
    const client = new Client({ name: "login-test-2026", version: "1.0.0" }, {
      capabilities,
      versionNegotiation: { mode: "auto" }
    })
    const asked: Array<string> = []
    if (capabilities.elicitation !== undefined) {
      client.setRequestHandler("elicitation/create", async (request) => {
        if (request.params.mode !== "url") return { action: "decline" as const }
        asked.push(request.params.url)
        const back = await TestAuthServer.approveAs(name)({ url: new URL(request.params.url), identity: undefined })
        await (await fetch(back)).text()
        return { action: "accept" as const }
      })
    }
    await client.connect(
      new StreamableHTTPClientTransport(new URL(gateway.url), { requestInit: { headers: { "x-api-key": key } } })
    )
    assert.strictEqual(client.getNegotiatedProtocolVersion(), "2026-07-28")
    return { client, asked }
  }

  it("offers a 2026-07-28 client a sign-in tool that asks in an input_required round, then lists the server", async () => {
    const carol = await modern("k-carol-3", { elicitation: { url: {} } }, "carol")
    const before = (await carol.client.listTools()).tools
    assert.deepStrictEqual(before.map((t) => t.name), ["login_sign_in"])
    assert.strictEqual(carol.asked.length, 0)
    const signedIn = await carol.client.callTool({ name: "login_sign_in", arguments: {} }) as CallToolResult
    assert.notStrictEqual(signedIn.isError, true, text(signedIn))
    assert.strictEqual(carol.asked.length, 1)
    const url = new URL(carol.asked[0]!)
    assert.strictEqual(`${url.origin}${url.pathname}`, `${login.issuer}/authorize`)
    assert.strictEqual(url.searchParams.get("redirect_uri"), gateway.url.replace(/\/mcp$/, "/oauth/callback"))
    const after = (await carol.client.listTools()).tools.map((t) => t.name)
    assert.include(after, "whoami")
    assert.notInclude(after, "login_sign_in")
    const result = await carol.client.callTool({ name: "whoami", arguments: {} }) as CallToolResult
    assert.strictEqual(JSON.parse(text(result)).user, "carol", text(result))
    assert.strictEqual(carol.asked.length, 1)
    await carol.client.close()
  })

  it("reports a sign-in the user declined as a tool error, and offers it again", async () => {
    const client = new Client({ name: "login-test-2026", version: "1.0.0" }, {
      capabilities: { elicitation: { url: {} } },
      versionNegotiation: { mode: "auto" }
    })
    client.setRequestHandler("elicitation/create", async () => ({ action: "decline" as const }))
    await client.connect(
      new StreamableHTTPClientTransport(new URL(gateway.url), {
        requestInit: { headers: { "x-api-key": "k-erin-55" } }
      })
    )
    const declined = await client.callTool({ name: "login_sign_in", arguments: {} }) as CallToolResult
    assert.strictEqual(declined.isError, true)
    assert.include(text(declined), "declined")
    assert.deepStrictEqual((await client.listTools()).tools.map((t) => t.name), ["login_sign_in"])
    await client.close()
  })

  it("lists tools for a 2026-07-28 client without URL-mode elicitation, without the server it cannot sign in to", async () => {
    const { client } = await modern("k-dave-44", {}, "dave")
    assert.deepStrictEqual((await client.listTools()).tools, [])
    await client.close()
    // A key whose tools the sign-in tool's name is not one of neither sees nor calls it.
    const frank = await modern("k-frank-6", { elicitation: { url: {} } }, "frank")
    assert.deepStrictEqual((await frank.client.listTools()).tools, [])
    const refused = await frank.client.callTool({ name: "login_sign_in", arguments: {} }).catch((e: unknown) => e)
    assert.instanceOf(refused, Error)
    assert.include((refused as Error).message, "Unknown tool")
    await frank.client.close()
  })
})
