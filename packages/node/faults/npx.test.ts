/**
 * A package runner's first start: `npx -y` with an empty npm cache downloads and installs the
 * server before it can answer, which takes seconds, over the network. The bridge passes the parent's npm cache
 * setting (and proxies, extra CA certificates) to the child, gives package runners a longer connect, and must not
 * start the server twice while it negotiates the era. Needs the npm registry; one start.
 */
import { assert, describe, it } from "@effect/vitest"
import { mkdirSync, readdirSync, realpathSync, rmSync } from "node:fs"
import * as Expect from "./expect.ts"
import { figure, now, processesLeft, seconds, tempPath, within } from "./harness.ts"

const server = "@modelcontextprotocol/server-filesystem@2026.8.31"

describe("npx", () => {
  it(
    "cold-npx: with an empty npm cache, createBridge on npx -y server-filesystem lists its tools and calls one",
    async () => {
      const cache = tempPath("npm-cache")
      const allowed = tempPath("allowed")
      mkdirSync(cache)
      mkdirSync(allowed)
      const saved = process.env.npm_config_cache
      // The parent's setting, as a user's would be: the bridge hands it to the child.
      process.env.npm_config_cache = cache
      const started = now()
      const bridge = await Expect.createBridge({
        mcpServers: { files: { command: "npx", args: ["-y", server, allowed] } }
      })
      try {
        const tools = await within(120_000, bridge.listTools(), "listTools")
        const listedMs = now() - started
        const callStarted = now()
        const result = await within(30_000, bridge.callTool("files.list_allowed_directories", {}), "call")
        const callMs = now() - callStarted
        const text = result.content.map((block) => (block as { readonly text?: string }).text ?? "").join("\n")
        const stats = await bridge.stats()
        const downloaded = readdirSync(cache).length > 0
        figure(
          "cold-npx",
          `${server} from an empty cache: ${tools.length} tools listed ${seconds(listedMs)} after createBridge ` +
            `(download, install, start, negotiation), then list_allowed_directories in ${seconds(callMs)}; ` +
            `${stats[0]?.created ?? 0} session, ${stats[0]?.connectFailures ?? 0} failed connects; ` +
            `the download went to the fresh cache: ${downloaded}`
        )
        const names = tools.map((tool) => tool.name)
        assert.includeMembers(names, ["list_allowed_directories", "read_text_file", "write_file"])
        assert.notStrictEqual(result.isError, true, text)
        assert.include(text, realpathSync(allowed))
        assert.isTrue(downloaded, "the child used the npm cache of the parent's environment")
        assert.strictEqual(stats[0]?.created, 1)
        assert.strictEqual(stats[0]?.connectFailures, 0)
      } finally {
        await bridge.close()
        if (saved === undefined) delete process.env.npm_config_cache
        else process.env.npm_config_cache = saved
        const left = await processesLeft()
        rmSync(cache, { recursive: true, force: true })
        assert.strictEqual(left, 0)
      }
    },
    180_000
  )
})
