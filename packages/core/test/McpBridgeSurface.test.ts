import { assert, describe, it } from "@effect/vitest"
import { McpBridge, McpBridgeError } from "@mcp-bridge/core"
import { TestBridge, TestServer } from "@mcp-bridge/testing"
import { Effect, Fiber, Stream } from "effect"
import { until } from "./fixtures.ts"

const spec = (era: "dual" | "legacy"): TestServer.TestServerSpec => ({
  era,
  tools: [
    { name: "echo", respond: { kind: "echo" } },
    { name: "add_resource", respond: { kind: "addResource", uri: "memo://added", name: "added", text: "new" } },
    { name: "add_prompt", respond: { kind: "addPrompt", name: "added", text: "new prompt" } },
    { name: "touch", respond: { kind: "updateResource", uri: "memo://notes" } }
  ],
  resources: [
    { uri: "memo://notes", name: "notes", description: "Notes", text: "the notes" },
    { uri: "memo://todo", name: "todo", text: "the todo list" }
  ],
  resourceTemplates: [{
    uriTemplate: "file:///{path}",
    name: "files",
    complete: { path: ["a.txt", "b.txt", "ab.md"] }
  }],
  prompts: [{
    name: "greet",
    description: "Greets",
    arguments: [{ name: "who", required: true, complete: ["world", "wide"] }],
    text: "Hello, {who}!"
  }]
})

const bare: TestServer.TestServerSpec = { tools: [{ name: "echo", respond: { kind: "echo" } }] }

const withBridge = <A, E>(
  servers: Record<string, TestServer.TestServerSpec | TestServer.TestServer>,
  f: (bridge: McpBridge.McpBridge.Service) => Effect.Effect<A, E, any>
) => Effect.flatMap(McpBridge.McpBridge, f).pipe(Effect.provide(TestBridge.layerTest(servers)))

const reasonOf = (error: unknown) => (error as McpBridgeError.McpBridgeError).reason

describe("McpBridge: resources, prompts, completion", () => {
  for (const era of ["dual", "legacy"] as const) {
    describe(era === "dual" ? "2026-07-28" : "2025-11-25", () => {
      it.effect("lists resources, templates and prompts of every server; reads and gets them", () =>
        withBridge({ docs: spec(era), plain: bare }, (bridge) =>
          Effect.gen(function*() {
            const resources = yield* bridge.listResources()
            assert.deepStrictEqual(resources.map((r) => [r.server, r.uri]), [["docs", "memo://notes"], [
              "docs",
              "memo://todo"
            ]])
            assert.strictEqual(resources[0]!.description, "Notes")
            const templates = yield* bridge.listResourceTemplates()
            assert.deepStrictEqual(templates.map((t) => [t.server, t.uriTemplate]), [["docs", "file:///{path}"]])
            const prompts = yield* bridge.listPrompts()
            assert.deepStrictEqual(prompts.map((p) => p.qualifiedName), ["docs.greet"])
            assert.deepStrictEqual(prompts[0]!.arguments?.map((a) => [a.name, a.required]), [["who", true]])
            assert.deepStrictEqual(yield* bridge.listServerPrompts("plain"), [])

            const read = yield* bridge.readResource("memo://todo")
            assert.deepStrictEqual(read.contents.map((c) => "text" in c ? c.text : ""), ["the todo list"])
            const templated = yield* bridge.readResource("file:///readme.md")
            assert.deepStrictEqual(JSON.parse((templated.contents[0] as { text: string }).text), { path: "readme.md" })
            const addressed = yield* bridge.readResource("memo://notes", { server: "docs" })
            assert.strictEqual((addressed.contents[0] as { text: string }).text, "the notes")

            const prompt = yield* bridge.getPrompt("docs.greet", { who: "world" })
            assert.deepStrictEqual(prompt.messages, [{
              role: "user",
              content: { type: "text", text: "Hello, world!" }
            }])
            const byParts = yield* bridge.getPrompt({ server: "docs", prompt: "greet" }, { who: "you" })
            assert.strictEqual((byParts.messages[0]!.content as { text: string }).text, "Hello, you!")

            const completed = yield* bridge.complete({
              ref: { type: "ref/prompt", name: "docs.greet" },
              argument: { name: "who", value: "w" }
            })
            assert.deepStrictEqual(completed.completion.values, ["world", "wide"])
            const paths = yield* bridge.complete({
              ref: { type: "ref/resource", uri: "file:///{path}" },
              argument: { name: "path", value: "a" }
            })
            assert.deepStrictEqual(paths.completion.values, ["a.txt", "ab.md"])
            yield* bridge.ping("docs")
          })))

      it.effect("typed errors name what was wrong: unknown resource, unknown prompt, a capability the server lacks", () =>
        withBridge({ docs: spec(era), plain: bare }, (bridge) =>
          Effect.gen(function*() {
            const unknownUri = reasonOf(yield* Effect.flip(bridge.readResource("memo://nothing")))
            assert.deepStrictEqual([unknownUri._tag, (unknownUri as { uri: string }).uri], [
              "UnknownResource",
              "memo://nothing"
            ])
            const addressed = reasonOf(yield* Effect.flip(bridge.readResource("memo://nothing", { server: "docs" })))
            assert.strictEqual(addressed._tag, "UnknownResource")
            const unknownPrompt = reasonOf(yield* Effect.flip(bridge.getPrompt("docs.nope")))
            assert.strictEqual(unknownPrompt._tag, "UnknownPrompt")
            assert.deepStrictEqual((unknownPrompt as McpBridgeError.UnknownPrompt).available, ["greet"])
            const noPrompts = reasonOf(yield* Effect.flip(bridge.getPrompt("plain.greet")))
            assert.deepStrictEqual([noPrompts._tag, (noPrompts as McpBridgeError.Unsupported).capability], [
              "Unsupported",
              "prompts"
            ])
            const noResources = reasonOf(yield* Effect.flip(bridge.readResource("memo://notes", { server: "plain" })))
            assert.deepStrictEqual([noResources._tag, (noResources as McpBridgeError.Unsupported).capability], [
              "Unsupported",
              "resources"
            ])
            const unknownServer = reasonOf(yield* Effect.flip(bridge.listServerResources("nope")))
            assert.strictEqual(unknownServer._tag, "UnknownServer")
          })))

      it.effect("lists are kept per server and dropped on the server's list_changed, which changes reports", () =>
        Effect.gen(function*() {
          const server = TestServer.make(spec(era))
          yield* withBridge({ docs: server }, (bridge) =>
            Effect.gen(function*() {
              assert.strictEqual((yield* bridge.listResources()).length, 2)
              assert.strictEqual((yield* bridge.listPrompts()).length, 1)
              const changes = yield* bridge.changes.pipe(
                Stream.take(2),
                Stream.runCollect,
                Effect.forkChild({ startImmediately: true })
              )
              yield* bridge.callTool("docs.add_resource")
              yield* bridge.callTool("docs.add_prompt")
              const seen = yield* Fiber.join(changes)
              assert.deepStrictEqual(
                Array.from(seen).map((c) => c._tag === "ListChanged" ? c.list : c._tag).sort(),
                ["prompts", "resources"]
              )
              assert.deepStrictEqual((yield* bridge.listResources()).map((r) => r.uri), [
                "memo://notes",
                "memo://todo",
                "memo://added"
              ])
              assert.deepStrictEqual((yield* bridge.listPrompts()).map((p) => p.name), ["greet", "added"])
              const added = yield* bridge.getPrompt("docs.added")
              assert.strictEqual((added.messages[0]!.content as { text: string }).text, "new prompt")
            }))
        }))

      it.effect("subscribe: resources/updated of the subscribed URI reaches changes; unsubscribe ends it", () =>
        Effect.gen(function*() {
          const server = TestServer.make(spec(era))
          yield* withBridge({ docs: server }, (bridge) =>
            Effect.gen(function*() {
              yield* bridge.subscribeResource("memo://notes")
              if (era === "legacy") yield* until(server, () => server.subscriptions("memo://notes") === 1)
              const updated = yield* bridge.changes.pipe(
                Stream.filter((c) => c._tag === "ResourceUpdated"),
                Stream.take(1),
                Stream.runCollect,
                Effect.forkChild({ startImmediately: true })
              )
              yield* bridge.callTool("docs.touch")
              const seen = Array.from(yield* Fiber.join(updated))
              assert.deepStrictEqual(seen, [{ _tag: "ResourceUpdated", server: "docs", uri: "memo://notes" }])
              yield* bridge.unsubscribeResource("memo://notes")
              if (era === "legacy") yield* until(server, () => server.subscriptions() === 0)
            }))
        }))
    })
  }
})
