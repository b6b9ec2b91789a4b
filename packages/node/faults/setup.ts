// After every scenario: nothing of ours may keep running into the next one (the scenario itself counts and asserts
// what it left behind; this only cleans up after a failed or timed-out one).
import { afterEach } from "vitest"
import { descendants, reap } from "./harness.ts"

afterEach(() => {
  reap(descendants())
})
