// The fault suite: real stdio children and HTTP servers that crash, freeze, restart and misbehave.
// `npm run faults` runs it; it is not part of `npm test`. One file at a time (2 cores, timing-sensitive scenarios),
// each in its own forked process, so that the children a scenario counts are its own.
import { tmpdir } from "node:os"
import { join } from "node:path"
import { defineConfig } from "vitest/config"

// Node's module compile cache for the processes the scenarios start, as in vitest.workspace.ts.
process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), "mcp-bridge-node-compile-cache")

// Sources, as in vitest.workspace.ts.
const conditions = ["@mcp-bridge/source", "node", "development|production"]

export default defineConfig({
  test: {
    projects: [{
      ssr: { resolve: { conditions } },
      test: {
        name: "faults",
        root: "./packages/node",
        include: ["faults/**/*.test.ts"],
        pool: "forks",
        fileParallelism: false,
        testTimeout: 60_000,
        hookTimeout: 30_000,
        setupFiles: ["./faults/setup.ts"],
        globalSetup: ["./faults/globalSetup.ts"]
      }
    }]
  }
})
