// The one root test config: every package is a project. `npm test` runs `vitest run --config vitest.workspace.ts`.
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["core", "node", "testing"].map((name) => ({
      test: {
        name,
        root: `./packages/${name}`,
        include: ["test/**/*.test.ts"],
        testTimeout: 30_000,
        hookTimeout: 30_000
      }
    }))
  }
})
