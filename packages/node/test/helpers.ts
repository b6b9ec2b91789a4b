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
