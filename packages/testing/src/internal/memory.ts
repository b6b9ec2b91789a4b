import { InMemoryTransport } from "@modelcontextprotocol/server"
import type { Transport } from "@modelcontextprotocol/server"
import { serveStdio } from "@modelcontextprotocol/server/stdio"
import { buildServer, instanceCounter } from "./instance.ts"
import { changed, type ServerState } from "./state.ts"

/** One open in-memory session: closing it tears down the server side of the linked pair. */
interface MemorySession {
  readonly close: () => Promise<void>
}

/**
 * Wraps a transport so `onClosed` runs once when it closes, without taking its callbacks away from the serving
 * entry (which assigns `onclose` / `onmessage` / `onerror` on whatever transport it is given).
 */
const observeClose = (inner: Transport, onClosed: () => void): Transport => {
  let fired = false
  const outer: Transport = {
    start: () => inner.start(),
    send: (message, options) => inner.send(message, options),
    close: () => inner.close()
  }
  inner.onmessage = (message, extra) => outer.onmessage?.(message, extra)
  inner.onerror = (error) => outer.onerror?.(error)
  inner.onclose = () => {
    if (!fired) {
      fired = true
      onClosed()
    }
    outer.onclose?.()
  }
  return outer
}

/** In-memory serving of one `ServerState`: every `connect` opens a new session (a new McpServer instance). */
export const makeMemoryServer = (state: ServerState) => {
  const sessions = new Set<MemorySession>()

  const connect = async (): Promise<InMemoryTransport> => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    let session: MemorySession | undefined
    const wire = observeClose(serverSide, () => {
      if (session !== undefined && sessions.delete(session)) changed(state)
    })
    const hooks = {
      counter: instanceCounter(),
      // "crash" in memory: the server side of the pair goes away, the client sees its transport close
      crash: () => void serverSide.close(),
      sessions: () => sessions.size,
      longLived: true
    }
    if ((state.spec.era ?? "dual") === "dual") {
      // serveStdio with a bring-your-own transport serves both eras: 2025 `initialize` and 2026 `server/discover`
      const handle = serveStdio(() => buildServer(state, hooks), { transport: wire })
      session = { close: () => handle.close() }
    } else {
      const server = buildServer(state, hooks)
      await server.connect(wire)
      session = { close: () => server.close() }
    }
    sessions.add(session)
    changed(state)
    return clientSide
  }

  const close = async (): Promise<void> => {
    const all = [...sessions]
    sessions.clear()
    await Promise.all(all.map((s) => s.close().catch(() => undefined)))
    changed(state)
  }

  return { connect, close, openSessions: () => sessions.size }
}
