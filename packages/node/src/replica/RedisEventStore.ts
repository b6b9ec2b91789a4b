/**
 * The SDK's `EventStore` (resumable Streamable HTTP streams, `Last-Event-ID`) on Redis Streams, so that a 2025-era
 * client that reconnects to another replica is replayed what its stream missed.
 *
 * One Redis stream per SSE stream of a session: `<prefix>ev:{<session id>}:<stream id>` (the hash tag keeps a
 * session's streams in one Cluster slot), bounded by `XADD MAXLEN ~` and an idle `PEXPIRE`. Event ids are made
 * here (`<stream id>.<replica tag><counter>`), so storing an event never waits for Redis: writes go through a
 * bounded queue that one fiber drains in order, a batch per round trip. When Redis is slow or down the queue drops
 * (those events cannot be replayed; the live stream is unaffected) and calls go on. A replay first waits for this
 * replica's queued writes of that stream, then reads the stream with `XRANGE` and sends what follows the last id.
 *
 * Built on Effect's `Redis` service (`effect/persistence`), a `Queue` and one scoped fiber.
 *
 * @since 0.1.0
 */
import type { EventStore, JSONRPCMessage } from "@modelcontextprotocol/server"
import { Deferred, Duration, Effect, Queue, Scope } from "effect"
import { Redis } from "effect/persistence"
import { randomBytes } from "node:crypto"

/**
 * Options of `make`.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Prefix of every key.
   * @default "mcpgw:"
   */
  readonly prefix?: string | undefined
  /**
   * Events kept per stream (approximately: `MAXLEN ~`).
   * @default 1000
   */
  readonly maxLength?: number | undefined
  /**
   * How long a stream is kept after its last event.
   * @default "1 hour"
   */
  readonly timeToLive?: Duration.Input | undefined
  /**
   * Writes queued while Redis is slow or down; beyond it new events are not stored.
   * @default 10000
   */
  readonly maxPending?: number | undefined
  /**
   * How long one Redis round trip (a batch of writes, a replay's read) may take.
   * @default "2 seconds"
   */
  readonly commandTimeout?: Duration.Input | undefined
}

/**
 * Event stores per session, over one Redis connection and one writer.
 *
 * @since 0.1.0
 */
export interface RedisEventStore {
  /** The `EventStore` of one session: hand it to the session's transport (`eventStore`). */
  readonly forSession: (sessionId: string) => EventStore
  /** Writes accepted and not yet acknowledged by Redis. */
  readonly pending: () => number
  /** Events not stored because the queue was full or Redis failed, since start. */
  readonly dropped: () => number
}

type Write =
  | { readonly _tag: "Event"; readonly key: string; readonly id: string; readonly message: string }
  | { readonly _tag: "Flush"; readonly done: Deferred.Deferred<void> }

const SEPARATOR = "."

/**
 * The store over the `Redis` service of the context, with its writer fiber in the current scope.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<RedisEventStore, never, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const prefix = options.prefix ?? "mcpgw:"
    const maxLength = String(options.maxLength ?? 1000)
    const ttl = String(Duration.toMillis(Duration.fromInputUnsafe(options.timeToLive ?? "1 hour")))
    const timeout = Duration.fromInputUnsafe(options.commandTimeout ?? "2 seconds")
    const tag = randomBytes(4).toString("base64url").replace(/[-_]/g, "x")
    let counter = 0
    let pending = 0
    let dropped = 0

    const queue = yield* Queue.bounded<Write>(options.maxPending ?? 10_000)
    const append = redis.eval(appendScript)

    const writeBatch = (batch: ReadonlyArray<Write>) =>
      Effect.forEach(batch, (write) =>
        write._tag === "Flush"
          ? Deferred.succeed(write.done, undefined).pipe(Effect.asVoid)
          : append(write.key, maxLength, ttl, write.id, write.message).pipe(Effect.asVoid), {
        concurrency: "unbounded",
        discard: true
      })
        .pipe(
          Effect.timeout(timeout),
          Effect.catchCause(() =>
            Effect.sync(() => {
              dropped += batch.filter((w) => w._tag === "Event").length
            }).pipe(
              Effect.andThen(
                Effect.forEach(batch, (w) => w._tag === "Flush" ? Deferred.succeed(w.done, undefined) : Effect.void)
              )
            )
          ),
          Effect.ensuring(Effect.sync(() => {
            pending -= batch.filter((w) => w._tag === "Event").length
          }))
        )

    yield* Queue.takeAll(queue).pipe(
      Effect.flatMap(writeBatch),
      Effect.forever,
      Effect.forkScoped
    )

    const run = Effect.runPromiseWith(yield* Effect.context<never>())

    const keyOf = (sessionId: string, streamId: string) => `${prefix}ev:{${sessionId}}:${streamId}`

    const forSession = (sessionId: string): EventStore => ({
      storeEvent: (streamId: string, message: JSONRPCMessage) => {
        const id = `${streamId}${SEPARATOR}${tag}${(counter++).toString(36)}`
        const write: Write = { _tag: "Event", key: keyOf(sessionId, streamId), id, message: JSON.stringify(message) }
        if (Queue.offerUnsafe(queue, write)) pending++
        else dropped++
        return Promise.resolve(id)
      },
      getStreamIdForEventId: (eventId: string) => {
        const at = eventId.lastIndexOf(SEPARATOR)
        return Promise.resolve(at > 0 ? eventId.slice(0, at) : undefined)
      },
      replayEventsAfter: (lastEventId, { send }) => {
        const at = lastEventId.lastIndexOf(SEPARATOR)
        if (at <= 0) return Promise.reject(new Error("Invalid event ID format"))
        const streamId = lastEventId.slice(0, at)
        return run(Effect.gen(function*() {
          const done = yield* Deferred.make<void>()
          if (Queue.offerUnsafe(queue, { _tag: "Flush", done })) {
            yield* Deferred.await(done).pipe(Effect.timeout(timeout), Effect.ignore)
          }
          const entries = yield* redis.send<ReadonlyArray<[string, ReadonlyArray<string>]>>(
            "XRANGE",
            keyOf(sessionId, streamId),
            "-",
            "+"
          ).pipe(Effect.timeout(timeout))
          let after = false
          for (const [, fields] of entries) {
            const id = fieldOf(fields, "id")
            const raw = fieldOf(fields, "m")
            if (!after) {
              after = id === lastEventId
              continue
            }
            if (id === undefined || raw === undefined) continue
            const message = JSON.parse(raw) as JSONRPCMessage
            // Priming events (`{}`) only carried an id; the client already holds a later one.
            if (!("jsonrpc" in message)) continue
            yield* Effect.promise(() => send(id, message))
          }
          return streamId
        }))
      }
    })

    return {
      forSession,
      pending: () => pending,
      dropped: () => dropped
    } satisfies RedisEventStore
  })

const fieldOf = (fields: ReadonlyArray<string>, name: string) => {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]
  return undefined
}

const appendScript = Redis.script(
  (key: string, maxLength: string, ttl: string, id: string, message: string) => [key, maxLength, ttl, id, message],
  {
    lua: `redis.call("XADD", KEYS[1], "MAXLEN", "~", ARGV[1], "*", "id", ARGV[3], "m", ARGV[4])
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return 1`,
    numberOfKeys: 1
  }
).withReturnType<number>()
