/**
 * Shared helpers for the end-to-end tests.
 */
import { Effect } from "effect"
import { createServer } from "node:net"

/** A port on 127.0.0.1 that was free a moment ago and where nothing listens now (connections are refused). */
export const freePort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const probe = createServer()
    probe.listen(0, "127.0.0.1", () => {
      const port = (probe.address() as { port: number }).port
      probe.close(() => resolve(port))
    })
  })
)

/** True while process `pid` exists (a negative `pid`: while any process of that process group exists). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
