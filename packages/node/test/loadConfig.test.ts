import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { BridgeConfig } from "@mcp-bridge/core"
import { createBridge } from "@mcp-bridge/node"
import { Duration, Effect } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

describe("BridgeConfig.load", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-bridge-config-"))
  const file = (name: string, text: string) => {
    const path = join(dir, name)
    writeFileSync(path, text)
    return path
  }

  it.effect("loads a Claude-style JSON file", () =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.load(file(
        "ok.json",
        JSON.stringify({
          mcpServers: { files: { command: "node", args: ["s.js"] }, docs: { url: "http://127.0.0.1:1/mcp" } }
        })
      ))
      assert.deepStrictEqual([...config.servers.keys()], ["files", "docs"])
    }).pipe(Effect.provide(NodeServices.layer)))

  it.effect("reads only mcpServers and bridge of an application's file (a Claude Desktop file has more)", () =>
    Effect.gen(function*() {
      const config = yield* BridgeConfig.load(file(
        "claude_desktop_config.json",
        JSON.stringify({
          globalShortcut: "",
          mcpServers: { files: { command: "node", args: ["s.js"] } },
          bridge: { timeout: "5 seconds" },
          preferences: { sidebarMode: "chat" }
        })
      ))
      assert.deepStrictEqual([...config.servers.keys()], ["files"])
      assert.strictEqual(Duration.toMillis(config.servers.get("files")!.timeout), 5_000)
    }).pipe(Effect.provide(NodeServices.layer)))

  it.effect("a missing file, bad JSON and bad content are typed errors", () =>
    Effect.gen(function*() {
      const missingPath = join(dir, "nope.json")
      const missing = yield* Effect.flip(BridgeConfig.load(missingPath))
      assert.deepStrictEqual([missing.reason._tag, missing.reason._tag === "Unreadable" && missing.reason.file], [
        "Unreadable",
        missingPath
      ])
      assert.include(missing.message, "cannot read it")
      const badPath = file("bad.json", "{ mcpServers: ")
      const notJson = yield* Effect.flip(BridgeConfig.load(badPath))
      assert.strictEqual(notJson.reason._tag, "Unreadable")
      assert.isTrue(notJson.message.startsWith(`${badPath}: not JSON`))
      const invalid = yield* Effect.flip(
        BridgeConfig.load(file("invalid.json", "{\"mcpServers\":{\"x\":{\"url\":1}}}"))
      )
      assert.strictEqual(invalid.reason._tag, "Invalid")
      if (invalid.reason._tag === "Invalid") {
        assert.strictEqual(invalid.reason.path.join("."), "mcpServers.x.url")
        assert.strictEqual(invalid.reason.server, "x")
      }
      assert.strictEqual(invalid.server, "x")
    }).pipe(Effect.provide(NodeServices.layer)))
})

describe("createBridge with a file path", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-bridge-create-"))

  it("reads a Claude Desktop file as the CLI does, keeping its other settings out", async () => {
    const path = join(dir, "claude_desktop_config.json")
    writeFileSync(
      path,
      JSON.stringify({
        globalShortcut: "Ctrl+Space",
        mcpServers: { docs: { url: "http://127.0.0.1:1/mcp" } },
        bridge: { timeout: "5 seconds" }
      })
    )
    const bridge = await createBridge(path)
    try {
      assert.deepStrictEqual(bridge.servers, ["docs"])
    } finally {
      await bridge.close()
    }
  })

  it("rejects a file that is missing or not JSON with a typed BridgeConfigError naming it", async () => {
    const missing = await createBridge(join(dir, "nope.json")).then(() => undefined, (e) => e)
    assert.strictEqual(missing?._tag, "BridgeConfigError")
    assert.include(missing.message, "nope.json")
    const bad = join(dir, "bad.json")
    writeFileSync(bad, "{ not json")
    const garbled = await createBridge(bad).then(() => undefined, (e) => e)
    assert.strictEqual(garbled?._tag, "BridgeConfigError")
    assert.include(garbled.message, "not JSON")
  })
})
