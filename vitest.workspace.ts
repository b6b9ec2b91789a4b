// The one root test config: every package is a project. `npm test` runs `vitest run --config vitest.workspace.ts`.
// Tests run from sources: the `@mcp-bridge/source` export condition (first in each package's `exports`) resolves
// `@mcp-bridge/*` to `src/index.ts`. The other two are Vitest's own defaults for Node (Vite's server conditions
// without "module"), which setting `conditions` replaces. Vitest also passes them to its workers as `--conditions`.
import { tmpdir } from "node:os"
import { join } from "node:path"
import { defineConfig } from "vitest/config"

// Every Node process the tests start from sources (the CLI, `serve`, stdio test servers) reuses the code the previous
// ones compiled: Node's module compile cache, keyed by each file's content, shared through the environment.
process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), "mcp-bridge-node-compile-cache")

const conditions = ["@mcp-bridge/source", "node", "development|production"]

export default defineConfig({
  test: {
    projects: ["core", "node", "testing", "bench"].map((name) => ({
      ssr: { resolve: { conditions } },
      test: {
        name,
        root: `./packages/${name}`,
        include: ["test/**/*.test.ts"],
        // The README blocks `test/readme.test.ts` writes and runs under a Vitest of their own.
        exclude: ["**/node_modules/**", "test/.readme/**"],
        testTimeout: 30_000,
        hookTimeout: 30_000
      }
    }))
  }
})
