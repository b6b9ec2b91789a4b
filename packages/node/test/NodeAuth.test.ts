import { assert, describe, it } from "@effect/vitest"
import { McpAuth, McpBridge } from "@mcp-bridge/core"
import { createBridge, NodeAuth } from "@mcp-bridge/node"
import { TestAuthServer } from "@mcp-bridge/testing"
import { Effect, Layer } from "effect"
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const whoami = McpBridge.McpBridge.use((bridge) => bridge.callTool("s.whoami", {})).pipe(
  Effect.map((result) => (result.structuredContent as { user: string }).user)
)

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "mcp-bridge-auth-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

// The loopback interaction's "browser": open the authorization URL and follow its redirect to 127.0.0.1.
const browser = (request: McpAuth.AuthorizationRequest) =>
  Effect.promise(async () => {
    const url = new URL(request.url)
    url.searchParams.set("test_user", "carol")
    const response = await fetch(url, { redirect: "follow" })
    await response.text()
  })

describe("NodeAuth", () => {
  it.live("loopback redirect: the code comes back to 127.0.0.1 and the call succeeds", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped()
      const auth = McpAuth.layerMemory().pipe(Layer.provide(NodeAuth.layerLoopback({ open: browser })))
      const config = { mcpServers: { s: { url: server.url, auth: {} } } }
      assert.strictEqual(yield* whoami.pipe(Effect.provide(McpBridge.layer(config, { auth }))), "carol")
      const [registration] = server.events().filter((e) => e.kind === "register")
      assert.match(
        (registration as { readonly redirectUris: ReadonlyArray<string> }).redirectUris[0]!,
        /^http:\/\/127\.0\.0\.1:\d+\/callback$/
      )
    }).pipe(Effect.scoped))

  it.live("file store: tokens survive the bridge, in a directory only the user can open", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped()
      const dir = join(yield* tempDir, "tokens")
      const auth = McpAuth.layer().pipe(
        Layer.provide([NodeAuth.layerFileStore(dir), NodeAuth.layerLoopback({ open: browser })])
      )
      const config = { mcpServers: { s: { url: server.url, auth: {} } } }
      // Two bridges one after the other, the second one finds the tokens of the first.
      yield* whoami.pipe(Effect.provide(McpBridge.layer(config, { auth })))
      yield* whoami.pipe(Effect.provide(McpBridge.layer(config, { auth })))
      assert.strictEqual(server.events().filter((e) => e.kind === "authorize").length, 1)
      assert.strictEqual(statSync(dir).mode & 0o777, 0o700)
      const files = readdirSync(dir)
      assert.sameMembers(files.map(decodeURIComponent), ["client/s", "tokens/s/anonymous"])
      assert.include(readFileSync(join(dir, files.find((f) => f.startsWith("tokens"))!), "utf8"), "access_token")
    }).pipe(Effect.scoped))

  it.live("the Promise facade: onAuthorization gets the URL and returns the redirect", () =>
    Effect.gen(function*() {
      const server = yield* TestAuthServer.scoped()
      const seen: Array<string> = []
      const bridge = yield* Effect.promise(() =>
        createBridge({ mcpServers: { s: { url: server.url, auth: {} } } }, {
          onAuthorization: async (request) => {
            seen.push(`${request.server}:${request.identity ?? "-"}`)
            return TestAuthServer.approveAs("dave")(request)
          }
        })
      )
      const result = yield* Effect.promise(() => bridge.callTool("s.whoami", {}, { identity: "dave" }))
      yield* Effect.promise(() => bridge.close())
      assert.strictEqual((result.structuredContent as { user: string }).user, "dave")
      assert.deepStrictEqual(seen, ["s:dave"])
    }).pipe(Effect.scoped))
})
