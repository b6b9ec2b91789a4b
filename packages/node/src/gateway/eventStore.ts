/**
 * The SDK's `EventStore` for one 2025-era downstream session of a single gateway process, in memory: what makes its
 * SSE streams resumable (SEP-1699). With a store the SDK's transport opens each stream with a priming event (an id
 * and no data) and numbers the events after it; a client whose stream dropped reconnects with `Last-Event-ID` and is
 * replayed what followed. The events of a session sit in one bounded FIFO (the oldest are forgotten first), and go
 * with the session. Replicas use the Redis store instead (`replica/RedisEventStore.ts`), so that another replica can
 * replay them.
 *
 * @internal
 */
import type { EventStore, JSONRPCMessage } from "@modelcontextprotocol/server"

const SEPARATOR = "."

interface Stored {
  readonly streamId: string
  readonly id: string
  readonly message: JSONRPCMessage
}

/** A store for one session that keeps its last `maxEvents` events, of all its streams together. @internal */
export const make = (maxEvents = 1000): EventStore => {
  // A ring: storing an event is O(1) however many the session has sent.
  const ring: Array<Stored | undefined> = []
  // Events stored so far: the next one's slot in the ring, and its number in its id.
  let stored = 0
  const streamOf = (eventId: string) => {
    const at = eventId.lastIndexOf(SEPARATOR)
    return at > 0 ? eventId.slice(0, at) : undefined
  }
  // The events kept, oldest first.
  const kept = function*(): Generator<Stored> {
    for (let i = Math.max(0, stored - maxEvents); i < stored; i++) yield ring[i % maxEvents]!
  }
  return {
    storeEvent: (streamId, message) => {
      const id = `${streamId}${SEPARATOR}${stored.toString(36)}`
      ring[stored++ % maxEvents] = { streamId, id, message }
      return Promise.resolve(id)
    },
    getStreamIdForEventId: (eventId) => Promise.resolve(streamOf(eventId)),
    replayEventsAfter: async (lastEventId, { send }) => {
      const streamId = streamOf(lastEventId)
      if (streamId === undefined) throw new Error("Invalid event ID format")
      const events = [...kept()]
      const from = events.findIndex((event) => event.id === lastEventId)
      // An event already forgotten: replay what is left of the stream (better a duplicate than a gap).
      for (const event of from < 0 ? events : events.slice(from + 1)) {
        // Priming events only carried an id; the client already holds a later one.
        if (event.streamId === streamId && "jsonrpc" in event.message) await send(event.id, event.message)
      }
      return streamId
    }
  }
}
