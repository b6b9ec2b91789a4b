import { TestServer } from "@mcp-bridge/testing"
import { Effect } from "effect"
import { isAlive } from "./helpers.ts"
import { suiteSpec, transportSuite } from "./transportSuite.ts"

const spec: TestServer.TestServerSpec = suiteSpec

/** Waits (bounded) until `predicate` holds, checking every 20 ms: for state outside this process (child pids). */
const eventually = (predicate: () => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 250 && !predicate(); i++) yield* Effect.sleep("20 millis")
    if (!predicate()) return yield* Effect.die(new Error(`still not true after 5 seconds: ${what}`))
  })

/** An HTTP (or SSE) test server for one test, restarted on its port after a crash, closed with the scope. */
const inProcess = (start: (port?: number) => Promise<TestServer.HttpTestServer>) =>
  Effect.gen(function*() {
    let current = yield* Effect.promise(() => start())
    yield* Effect.addFinalizer(() => Effect.promise(() => current.close()))
    return {
      url: current.url,
      restart: Effect.promise(async () => {
        await current.close()
        current = await start(current.port)
      }),
      untilNothingOpen: Effect.promise(() =>
        current.until(() => current.openSessions() === 0 && current.sessionsTerminated() === current.sessionsOpened())
      )
    }
  })

transportSuite("stdio (NodeTransport)", () =>
  Effect.succeed({
    entry: { ...TestServer.stdioCommand(spec), args: [...TestServer.stdioCommand(spec).args] },
    protocolVersion: "2026-07-28" as const,
    sharedStats: false,
    restart: Effect.void,
    untilNothingOpen: (pids) =>
      Effect.gen(function*() {
        if (new Set(pids).size !== 3) return yield* Effect.die(new Error(`expected three child processes: ${pids}`))
        yield* eventually(() => !pids.some(isAlive), `children still alive: ${pids.filter(isAlive)}`)
      })
  }))

transportSuite(
  "Streamable HTTP, 2025-11-25 sessions",
  () =>
    Effect.map(
      inProcess((port) => TestServer.startHttp({ ...spec, era: "legacy" }, port === undefined ? {} : { port })),
      (server) => ({
        entry: { url: server.url },
        protocolVersion: "2025-11-25" as const,
        sharedStats: true,
        restart: server.restart,
        untilNothingOpen: () => server.untilNothingOpen
      })
    )
)

transportSuite(
  "Streamable HTTP, 2026-07-28",
  () =>
    Effect.map(inProcess((port) => TestServer.startHttp(spec, port === undefined ? {} : { port })), (server) => ({
      entry: { url: server.url },
      protocolVersion: "2026-07-28" as const,
      sharedStats: true,
      restart: server.restart,
      untilNothingOpen: () => server.untilNothingOpen
    }))
)

transportSuite(
  "legacy HTTP+SSE",
  () =>
    Effect.map(inProcess((port) => TestServer.startSse(spec, port === undefined ? {} : { port })), (server) => ({
      entry: { type: "sse", url: server.url },
      protocolVersion: "2025-11-25" as const,
      sharedStats: true,
      restart: server.restart,
      untilNothingOpen: () => server.untilNothingOpen
    }))
)

transportSuite("in-memory", () =>
  Effect.gen(function*() {
    const server = TestServer.make(spec)
    yield* Effect.addFinalizer(() => Effect.promise(() => server.close()))
    return {
      entry: { type: "memory" },
      protocolVersion: "2026-07-28" as const,
      transport: { memory: { s: server.connect } },
      sharedStats: true,
      restart: Effect.void,
      untilNothingOpen: () => Effect.promise(() => server.until(() => server.openSessions() === 0))
    }
  }))
