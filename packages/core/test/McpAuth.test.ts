import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import { CallerIdentity, ConnectionPool, McpAuth, McpBridge, McpSessionError, TokenStore } from "@mcp-bridge/core"
import { TestAuthServer, TestTracer } from "@mcp-bridge/testing"
import { ConfigProvider, Effect, Exit, Layer, Logger, Redacted } from "effect"
import { KeyValueStore } from "effect/persistence"
import { generateKeyPairSync, sign } from "node:crypto"
import type { KeyObject } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

// OAuth end to end: the bridge against TestAuthServer (authorization server and protected MCP server on 127.0.0.1).

const interactive = (user: Parameters<typeof TestAuthServer.approveAs>[0] = "alice") =>
  McpAuth.layerMemory({ interaction: McpAuth.interactionFromCallback(TestAuthServer.approveAs(user)) })

const oneServer = (url: string, auth: object = {}, bridge: object = {}) => ({
  mcpServers: { s: { url, auth, bridge: { retry: false, cache: false, ...bridge } } }
})

interface Who {
  readonly user: string
  readonly clientId: string
  readonly scope: string
}

const call = (tool: string, server = "s") =>
  McpBridge.McpBridge.use((bridge) => bridge.callTool(`${server}.${tool}`, {}))
const whoami = (server = "s") =>
  Effect.map(call("whoami", server), (result) => result.structuredContent as unknown as Who)
const as = (identity: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, CallerIdentity, identity)

const events = <K extends TestAuthServer.AuthEvent["kind"]>(server: TestAuthServer.TestAuthServer, kind: K) =>
  server.events().filter((e): e is Extract<TestAuthServer.AuthEvent, { kind: K }> => e.kind === kind)

/** A workload's JWT (as a Kubernetes service-account token is one), ES256, valid for five minutes. */
const workloadJwt = (key: KeyObject, sub: string, aud: string): string => {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url")
  const now = Math.floor(Date.now() / 1000)
  const input = `${part({ alg: "ES256", typ: "JWT" })}.${
    part({ iss: "https://kubernetes.default.svc", sub, aud, iat: now, exp: now + 300 })
  }`
  return `${input}.${sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" }).toString("base64url")}`
}

const unauthorized = (exit: Exit.Exit<unknown, unknown>) => {
  assert.isTrue(Exit.isFailure(exit))
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
  assert.instanceOf(error, McpSessionError.McpSessionError)
  const e = error as McpSessionError.McpSessionError
  assert.strictEqual(e.reason._tag, "Unauthorized")
  return e
}

describe("McpAuth", () => {
  it.live("authorization code with PKCE: discovery, registration, resource indicator, then the call", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped()
      const who = yield* whoami().pipe(Effect.provide(McpBridge.layer(oneServer(server.url), { auth: interactive() })))
      assert.strictEqual(who.user, "alice")
      const paths = events(server, "metadata").map((e) => e.path)
      assert.includeMembers(paths, [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server"
      ])
      assert.strictEqual(events(server, "register").length, 1)
      const [authorization] = events(server, "authorize")
      assert.strictEqual(authorization?.codeChallengeMethod, "S256")
      assert.strictEqual(authorization?.resource, server.url)
      const tokens = events(server, "token")
      assert.deepStrictEqual(tokens.map((t) => [t.grant, t.ok, t.resource]), [["authorization_code", true, server.url]])
    }).pipe(Effect.scoped))

  it.live("tokens are per identity: one caller's token never serves another", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped()
      const layer = McpBridge.layer(oneServer(server.url), { auth: interactive((r) => r.identity ?? "anonymous") })
      yield* Effect.gen(function*() {
        assert.strictEqual((yield* whoami().pipe(as("alice"))).user, "alice")
        assert.strictEqual((yield* whoami().pipe(as("bob"))).user, "bob")
        assert.strictEqual((yield* whoami().pipe(as("alice"))).user, "alice")
        assert.strictEqual((yield* whoami()).user, "anonymous")
        // One authorization per identity, and one pool (so sessions) per identity.
        assert.deepStrictEqual(events(server, "authorize").map((e) => e.user), ["alice", "bob", "anonymous"])
        const pools = yield* ConnectionPool.ConnectionPool.use((pool) => pool.stats)
        assert.sameMembers(pools.map((p) => p.identity), ["alice", "bob", undefined])
        const users = new Set(events(server, "mcp").filter((e) => e.status === 200).map((e) => e.user))
        assert.sameMembers([...users], ["alice", "bob", "anonymous"])
      }).pipe(Effect.provide(layer))
    }).pipe(Effect.scoped))

  it.live("one authorization for concurrent first calls of one identity (single flight)", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped()
      const layer = McpBridge.layer(oneServer(server.url, {}, { pool: { concurrency: 1, max: 4 } }), {
        auth: interactive()
      })
      const users = yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => whoami(), { concurrency: "unbounded" }).pipe(
        Effect.provide(layer)
      )
      assert.deepStrictEqual(new Set(users.map((u) => u.user)), new Set(["alice"]))
      assert.strictEqual(events(server, "authorize").length, 1)
      assert.strictEqual(server.tokenRequests("authorization_code"), 1)
    }).pipe(Effect.scoped))

  it.live("a login outlives the call that started it: the next call uses its token", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped()
      const approve = TestAuthServer.approveAs("alice")
      // The user takes longer than the session's connect deadline.
      const slowUser = McpAuth.interactionFromCallback(async (request) => {
        await new Promise((resolve) => setTimeout(resolve, 600))
        return approve(request)
      })
      const layer = McpBridge.layer(
        oneServer(server.url, {}, { connectTimeout: "300 millis", circuitBreaker: false }),
        { auth: McpAuth.layerMemory({ interaction: slowUser }) }
      )
      yield* Effect.gen(function*() {
        const first = yield* Effect.exit(whoami())
        assert.isTrue(Exit.isFailure(first))
        yield* Effect.sleep("700 millis")
        assert.strictEqual((yield* whoami()).user, "alice")
        assert.strictEqual(events(server, "authorize").length, 1)
      }).pipe(Effect.provide(layer))
    }).pipe(Effect.scoped))

  it.live("refresh: a refused access token is refreshed without asking the user again", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped()
      yield* Effect.gen(function*() {
        yield* whoami()
        server.expireAccessTokens()
        assert.strictEqual((yield* whoami()).user, "alice")
        assert.strictEqual(events(server, "authorize").length, 1)
        assert.deepStrictEqual(events(server, "token").map((t) => t.grant), ["authorization_code", "refresh_token"])
      }).pipe(Effect.provide(McpBridge.layer(oneServer(server.url), { auth: interactive() })))
    }).pipe(Effect.scoped))

  it.live("refresh: a token past its expires_in is renewed before it is sent", () =>
    Effect.gen(function*() {
      // 30 s is within the renewal margin: every request renews first, and the server never sees an expired token.
      const server = yield* TestAuthServer.scoped({ accessTokenTtlSeconds: 30 })
      yield* Effect.gen(function*() {
        yield* whoami()
        const before = events(server, "mcp").filter((e) => e.status === 401).length
        yield* whoami()
        assert.strictEqual(events(server, "mcp").filter((e) => e.status === 401).length, before)
        assert.isAtLeast(server.tokenRequests("refresh_token"), 1)
        assert.strictEqual(events(server, "authorize").length, 1)
      }).pipe(Effect.provide(McpBridge.layer(oneServer(server.url), { auth: interactive() })))
    }).pipe(Effect.scoped))

  it.live("a revoked grant starts a new authorization", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped()
      yield* Effect.gen(function*() {
        yield* whoami()
        server.revokeAll()
        assert.strictEqual((yield* whoami()).user, "alice")
        assert.strictEqual(events(server, "authorize").length, 2)
      }).pipe(Effect.provide(McpBridge.layer(oneServer(server.url), { auth: interactive() })))
    }).pipe(Effect.scoped))

  it.live("a server that moves to another authorization server: discover again, register there, sign in there", () =>
    Effect.gen(function*() {
      const first = yield* TestAuthServer.scoped({ clientIdPrefix: "first-" })
      const second = yield* TestAuthServer.scoped({ clientIdPrefix: "second-" })
      yield* Effect.gen(function*() {
        assert.strictEqual((yield* whoami()).user, "alice")
        const [old] = events(first, "register")
        assert.strictEqual(old?.clientId, "first-1")
        const before = first.events().length
        // Mid-session: the pooled session stays; its next request is refused (the old token) and the resource's
        // metadata now names the second authorization server.
        first.moveTo(second)
        const who = yield* whoami()
        assert.strictEqual(who.user, "alice")
        assert.strictEqual(who.clientId, "second-1")
        assert.deepStrictEqual(events(second, "register").map((e) => e.clientId), ["second-1"])
        assert.deepStrictEqual(events(second, "authorize").map((e) => [e.clientId, e.resource]), [[
          "second-1",
          first.url
        ]])
        assert.deepStrictEqual(events(second, "token").map((e) => [e.grant, e.clientId, e.ok]), [
          ["authorization_code", "second-1", true]
        ])
        // Nothing of the old authorization server's went to the new one, and the old one saw no token request.
        assert.isFalse(JSON.stringify(second.events()).includes("first-"))
        assert.strictEqual(
          first.events().slice(before).filter((e) => e.kind === "token" || e.kind === "authorize").length,
          0
        )
        // The next calls use the new token without another authorization.
        yield* whoami()
        assert.strictEqual(events(second, "authorize").length, 1)
      }).pipe(Effect.provide(McpBridge.layer(oneServer(first.url), { auth: interactive() })))
    }).pipe(Effect.scoped))

  it.live("step-up: 403 insufficient_scope authorizes again for the union of the scopes, once", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped({ challengeScope: "mcp:read", toolScopes: { write: "mcp:write" } })
      yield* Effect.gen(function*() {
        const result = yield* call("write")
        assert.deepStrictEqual(result.structuredContent, { tool: "write", user: "alice" })
        assert.deepStrictEqual(events(server, "authorize").map((e) => e.scope), ["mcp:read", "mcp:read mcp:write"])
        // The wider token serves the next calls.
        yield* call("write")
        assert.strictEqual(events(server, "authorize").length, 2)
      }).pipe(Effect.provide(McpBridge.layer(oneServer(server.url), { auth: interactive() })))
    }).pipe(Effect.scoped))

  it.live("scope: the challenge's, else scopes_supported", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped({ scopesSupported: ["files:read", "files:list"] })
      yield* whoami().pipe(Effect.provide(McpBridge.layer(oneServer(server.url), { auth: interactive() })))
      assert.deepStrictEqual(events(server, "authorize").map((e) => e.scope), ["files:read files:list"])
    }).pipe(Effect.scoped))

  it.live("client credentials: client_secret_basic and private_key_jwt, no user involved", () =>
    Effect.gen(function*() {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
      const server = yield* TestAuthServer.scoped({
        clients: [
          { clientId: "svc", clientSecret: "svc-secret-1234" },
          { clientId: "jwt-svc", publicKey: publicKey.export({ type: "spki", format: "pem" }).toString() }
        ]
      })
      const config = {
        mcpServers: {
          basic: {
            url: server.url,
            auth: { grant: "client_credentials", clientId: "svc", clientSecret: "svc-secret-1234" }
          },
          jwt: {
            url: server.url,
            auth: {
              grant: "client_credentials",
              clientId: "jwt-svc",
              privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
              signingAlgorithm: "ES256"
            }
          }
        }
      }
      yield* Effect.gen(function*() {
        assert.strictEqual((yield* whoami("basic")).user, "client:svc")
        assert.strictEqual((yield* whoami("jwt")).user, "client:jwt-svc")
      }).pipe(Effect.provide(McpBridge.layer(config, { auth: McpAuth.layerMemory() })))
      const tokens = events(server, "token")
      assert.sameDeepMembers(tokens.map((t) => [t.clientId, t.clientAuth, t.ok, t.resource]), [
        ["svc", "client_secret_basic", true, server.url],
        ["jwt-svc", "private_key_jwt", true, server.url]
      ])
      assert.strictEqual(events(server, "authorize").length, 0)
    }).pipe(Effect.scoped))

  it.live("workload identity: the jwt_bearer grant with the workload's JWT from a file (read again), a variable, a function", () =>
    Effect.gen(function*() {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
      const server = yield* TestAuthServer.scoped({ clients: [{ clientId: "wl" }], workloadKey: publicKey })
      const audience = server.issuer
      const dir = mkdtempSync(join(tmpdir(), "mcp-bridge-wif-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const file = join(dir, "token")
      writeFileSync(file, `${workloadJwt(privateKey, "pod-1", audience)}\n`)
      const settings = (assertion: object) => ({ grant: "jwt_bearer", clientId: "wl", ...assertion })
      const config = {
        mcpServers: {
          file: { url: server.url, auth: settings({ assertion: { file } }) },
          env: { url: server.url, auth: settings({ assertion: { env: "WORKLOAD_JWT" } }) },
          fn: { url: server.url, auth: settings({}) },
          unset: { url: server.url, auth: settings({ assertion: { env: "NO_SUCH_VARIABLE" } }) }
        }
      }
      const layer = McpBridge.layer(config, {
        auth: McpAuth.layerMemory({
          assertion: ({ server }) => Effect.succeed(Redacted.make(workloadJwt(privateKey, `fn-${server}`, audience)))
        }).pipe(
          Layer.provide([
            NodeFileSystem.layer,
            ConfigProvider.layer(
              ConfigProvider.fromUnknown({ WORKLOAD_JWT: workloadJwt(privateKey, "env-pod", audience) })
            )
          ])
        )
      })
      yield* Effect.gen(function*() {
        assert.strictEqual((yield* whoami("file")).user, "workload:pod-1")
        assert.strictEqual((yield* whoami("env")).user, "workload:env-pod")
        assert.strictEqual((yield* whoami("fn")).user, "workload:fn-fn")
        // The token rotates: the next token request reads the file again.
        writeFileSync(file, workloadJwt(privateKey, "pod-2", audience))
        server.expireAccessTokens()
        assert.strictEqual((yield* whoami("file")).user, "workload:pod-2")
        const error = unauthorized(yield* Effect.exit(whoami("unset")))
        assert.include(error.message, "NO_SUCH_VARIABLE is not set")
      }).pipe(Effect.provide(layer))
      const tokens = events(server, "token")
      assert.deepStrictEqual(
        tokens.map((t) => [t.grant, t.ok]),
        Array.from({ length: 4 }, () => ["urn:ietf:params:oauth:grant-type:jwt-bearer", true])
      )
      assert.strictEqual(events(server, "authorize").length, 0)
    }).pipe(Effect.scoped))

  it.live("DPoP: tokens bound to the bridge's key, a proof at the token endpoint and on every request; no Bearer", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped({
        dpop: true,
        clients: [{ clientId: "svc", clientSecret: "svc-secret-1234" }]
      })
      const machine = { grant: "client_credentials", clientId: "svc", clientSecret: "svc-secret-1234" }
      const config = {
        mcpServers: {
          user: { url: server.url, auth: { dpop: true }, bridge: { retry: false } },
          svc: { url: server.url, auth: { ...machine, dpop: true }, bridge: { retry: false } },
          bearer: { url: server.url, auth: machine, bridge: { retry: false } }
        }
      }
      yield* Effect.gen(function*() {
        assert.strictEqual((yield* whoami("user").pipe(as("alice"))).user, "alice")
        assert.strictEqual((yield* whoami("svc")).user, "client:svc")
        // Two calls, two fresh proofs: the second is accepted too.
        assert.strictEqual((yield* whoami("svc")).user, "client:svc")
        // Without DPoP the token request carries no proof: refused.
        unauthorized(yield* Effect.exit(whoami("bearer")))
      }).pipe(Effect.provide(McpBridge.layer(config, { auth: interactive("alice") })))
      const tokens = events(server, "token")
      assert.sameMembers(tokens.filter((t) => t.ok).map((t) => t.grant), ["authorization_code", "client_credentials"])
      assert.isTrue(tokens.some((t) => !t.ok && t.error === "invalid_dpop_proof"))
    }).pipe(Effect.scoped))

  it.live("without an interaction, an interactive server fails with Unauthorized saying what is missing", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped()
      const exit = yield* Effect.exit(whoami().pipe(Effect.provide(McpBridge.layer(oneServer(server.url)))))
      const error = unauthorized(exit)
      assert.include(error.message, "no interaction")
      assert.strictEqual(events(server, "register").length, 0)
    }).pipe(Effect.scoped))

  it.live("a denied authorization is an Unauthorized error", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped({ deny: (user) => user === "mallory" })
      const exit = yield* Effect.exit(
        whoami().pipe(Effect.provide(McpBridge.layer(oneServer(server.url), { auth: interactive("mallory") })))
      )
      assert.include(unauthorized(exit).message, "access_denied")
    }).pipe(Effect.scoped))

  it.live("static headers keep working beside OAuth", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped({ clients: [{ clientId: "svc", clientSecret: "svc-secret-1234" }] })
      const token = yield* Effect.promise(async () => {
        const response = await fetch(`${server.issuer}/token`, {
          method: "POST",
          headers: { authorization: `Basic ${btoa("svc:svc-secret-1234")}` },
          body: new URLSearchParams({ grant_type: "client_credentials" })
        })
        return (await response.json() as { access_token: string }).access_token
      })
      const config = { mcpServers: { s: { url: server.url, headers: { Authorization: `Bearer ${token}` } } } }
      const who = yield* whoami().pipe(Effect.provide(McpBridge.layer(config)))
      assert.strictEqual(who.user, "client:svc")
    }).pipe(Effect.scoped))

  it.live("no token, code or secret in any log, error, span or metric", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped({
        toolScopes: { write: "mcp:write" },
        clients: [{ clientId: "svc", clientSecret: "svc-secret-1234" }]
      })
      const logs: Array<string> = []
      const collector = Logger.make((options) => logs.push(`${String(options.message)} ${JSON.stringify(options)}`))
      const console = globalThis.console
      const captured: Array<string> = []
      const capture = (...args: Array<unknown>) => captured.push(args.map(String).join(" "))
      globalThis.console = { ...console, log: capture, warn: capture, error: capture, info: capture, debug: capture }
      const config = {
        mcpServers: {
          s: { url: server.url, auth: {}, bridge: { retry: false } },
          svc: {
            url: server.url,
            auth: { grant: "client_credentials", clientId: "svc", clientSecret: "svc-secret-1234" }
          },
          wrong: {
            url: server.url,
            auth: { grant: "client_credentials", clientId: "svc", clientSecret: "not-the-secret" }
          }
        }
      }
      const errors: Array<unknown> = []
      const layer = McpBridge.layer(config, { auth: interactive() }).pipe(
        Layer.provideMerge(Layer.merge(TestTracer.layer, Logger.layer([collector])))
      )
      const snapshot = yield* Effect.gen(function*() {
        yield* whoami()
        yield* call("write")
        server.expireAccessTokens()
        yield* whoami()
        yield* whoami("svc")
        yield* Effect.flip(whoami("wrong")).pipe(Effect.tap((error) => Effect.sync(() => errors.push(error))))
        server.revokeAll()
        yield* whoami().pipe(as("bob"))
        const bridge = yield* McpBridge.McpBridge
        const { spans } = yield* TestTracer.TestTracer
        return { metrics: yield* bridge.metrics(), spans: spans.map((s) => [s.name, [...s.attributes], s.events]) }
      }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => (globalThis.console = console))))
      assert.isAbove(errors.length, 0)
      const texts = [
        ...logs,
        ...captured,
        ...errors.map((e) => `${(e as Error).message} ${JSON.stringify(e)}`),
        JSON.stringify(snapshot.metrics),
        JSON.stringify(snapshot.spans)
      ].join("\n")
      const secrets = [...server.issuedSecrets(), "svc-secret-1234"]
      assert.isAbove(secrets.length, 5)
      for (const secret of secrets) assert.notInclude(texts, secret)
      assert.isTrue(snapshot.spans.length > 0)
    }).pipe(Effect.scoped))
})

describe("McpAuth secrets", () => {
  it.live("no DPoP key or workload assertion in any log, error or span", () =>
    Effect.gen(function*() {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
      const server = yield* TestAuthServer.scoped({
        dpop: true,
        workloadKey: publicKey,
        clients: [{ clientId: "wl" }]
      })
      const assertion = workloadJwt(privateKey, "pod-1", server.issuer)
      const refused = workloadJwt(privateKey, "pod-1", "https://elsewhere.example.com")
      const stored: Array<string> = []
      const recording = Layer.effect(
        TokenStore.TokenStore,
        Effect.map(TokenStore.TokenStore, (inner) =>
          TokenStore.TokenStore.of({
            ...inner,
            set: (key, value) => {
              if (key.kind === "dpop") stored.push(Redacted.value(value))
              return inner.set(key, value)
            }
          }))
      ).pipe(Layer.provide(TokenStore.layerMemory))
      const logs: Array<string> = []
      const collector = Logger.make((options) => logs.push(`${String(options.message)} ${JSON.stringify(options)}`))
      const auth = (value: string) => ({ grant: "jwt_bearer", clientId: "wl", assertion: { value }, dpop: true })
      const config = {
        mcpServers: {
          ok: { url: server.url, auth: auth(assertion), bridge: { retry: false } },
          refused: { url: server.url, auth: auth(refused), bridge: { retry: false } }
        }
      }
      const layer = McpBridge.layer(config, { auth: McpAuth.layer().pipe(Layer.provide(recording)) }).pipe(
        Layer.provideMerge(Layer.merge(TestTracer.layer, Logger.layer([collector])))
      )
      const { error, spans } = yield* Effect.gen(function*() {
        assert.strictEqual((yield* whoami("ok")).user, "workload:pod-1")
        const error = yield* Effect.flip(whoami("refused"))
        const { spans } = yield* TestTracer.TestTracer
        return { error, spans: spans.map((s) => [s.name, [...s.attributes], s.events]) }
      }).pipe(Effect.provide(layer))
      // The private part of each DPoP key the bridge made.
      const keys = stored.flatMap((json) => [...json.matchAll(/"d":"([^"]+)"/g)].map((match) => match[1]!))
      assert.isAbove(keys.length, 0)
      const texts = [...logs, `${error.message} ${JSON.stringify(error)}`, JSON.stringify(spans)].join("\n")
      for (const secret of [...keys, assertion, refused, ...server.issuedSecrets()]) assert.notInclude(texts, secret)
      assert.isAbove(spans.length, 0)
    }).pipe(Effect.scoped))
})

describe("TokenStore", () => {
  it.effect("keys hold the server and a digest of the identity, never the identity", () =>
    Effect.gen(function*() {
      const key = yield* TokenStore.keyString({ kind: "tokens", server: "crm", identity: "alice@example.com" })
      assert.match(key, /^tokens\/crm\/[0-9a-f]{40}$/)
      assert.notInclude(key, "alice")
      assert.strictEqual(
        yield* TokenStore.keyString({ kind: "tokens", server: "crm", identity: undefined }),
        "tokens/crm/anonymous"
      )
      assert.strictEqual(
        yield* TokenStore.keyString({ kind: "client", server: "crm", identity: undefined }),
        "client/crm"
      )
    }))

  it.effect("values are Redacted in and out", () =>
    Effect.gen(function*() {
      const store = yield* TokenStore.TokenStore
      const key = { kind: "tokens", server: "s", identity: "a" } as const
      yield* store.set(key, Redacted.make("{\"access_token\":\"x\"}"))
      const value = yield* store.get(key)
      assert.isTrue(Redacted.isRedacted(value))
      assert.strictEqual(String(value), "<redacted>")
      yield* store.remove(key)
      assert.isUndefined(yield* store.get(key))
      const raw = yield* KeyValueStore.KeyValueStore
      assert.strictEqual(yield* raw.size, 0)
    }).pipe(Effect.provide(TokenStore.layer.pipe(Layer.provideMerge(KeyValueStore.layerMemory)))))
})
