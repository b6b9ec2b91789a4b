/**
 * The SDK's `ServerEventBus` over Redis pub/sub: list changes and `resources/updated` published on one replica reach
 * the listeners of every replica (`createMcpHandler`'s `subscriptions/listen` streams, and the 2025-era sessions'
 * GET streams through `LegacySessions`).
 *
 * `publish` delivers to this replica's listeners at once (synchronously, as the in-memory bus does) and owes the
 * event to the others: a publisher fiber sends it on the channel and keeps it owed until Redis acknowledges it, so an
 * event published while Redis is down goes out when Redis returns (events are idempotent: owed ones are merged by
 * kind and URI). A replica skips its own messages. When the subscriber reconnects after a gap, this replica's
 * listeners get one of each list change, since messages sent during the gap are lost to it: clients list again.
 * `subscribeRemote` hears only what came from other replicas (e.g. to drop this replica's own tool lists).
 *
 * Built on Effect's `Redis` service for `PUBLISH` and a dedicated node-redis subscriber (`NodeRedis`), whose
 * `ready` events mark the gaps; one scoped fiber per direction.
 *
 * @since 0.1.0
 */
import type * as NodeRedis from "@effect/platform-node/NodeRedis"
import type { ServerEvent, ServerEventBus } from "@modelcontextprotocol/server"
import { Duration, Effect, Queue, Schedule, Scope } from "effect"
import { Redis } from "effect/persistence"
import { randomUUID } from "node:crypto"
import * as Subscriber from "./internal/subscriber.ts"

/**
 * Options of `make`.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * The pub/sub channel; replicas that serve the same clients share it.
   * @default "mcpgw:events"
   */
  readonly channel?: string | undefined
  /**
   * How long one `PUBLISH` may take before it is retried.
   * @default "2 seconds"
   */
  readonly commandTimeout?: Duration.Input | undefined
}

/**
 * A `ServerEventBus` shared by replicas, with its state for `/readyz` and metrics.
 *
 * @since 0.1.0
 */
export interface RedisEventBus extends ServerEventBus {
  /** `true` while the subscriber is connected and nothing is owed to the other replicas. */
  readonly healthy: () => boolean
  /** Events published here that Redis has not acknowledged yet. */
  readonly owed: () => number
  /** How many times the subscriber reconnected after a gap (each time, the listeners got one of each list change). */
  readonly resyncs: () => number
  /**
   * Listens to the events that come from other replicas (and the list changes of a resync) only: what this replica
   * did not learn itself. Returns the function that stops listening.
   */
  readonly subscribeRemote: (listener: (event: ServerEvent) => void) => () => void
}

interface Envelope {
  readonly o: string
  readonly e: ServerEvent
}

const listChanges: ReadonlyArray<ServerEvent> = [
  { kind: "tools_list_changed" },
  { kind: "prompts_list_changed" },
  { kind: "resources_list_changed" }
]

const keyOf = (event: ServerEvent) => event.kind === "resource_updated" ? `${event.kind}:${event.uri}` : event.kind

const isEvent = (value: unknown): value is Envelope =>
  typeof value === "object" && value !== null && typeof (value as Envelope).o === "string" &&
  typeof (value as Envelope).e === "object" && (value as Envelope).e !== null &&
  typeof (value as Envelope).e.kind === "string"

/**
 * The bus over the `Redis` and `NodeRedis` services of the context, its fibers and subscriber in the current scope.
 *
 * @example
 * ```ts
 * const bus = yield* RedisEventBus.make()
 * const handler = createMcpHandler(factory, { legacy: "reject", bus })
 * bus.publish({ kind: "tools_list_changed" }) // every replica's listen streams
 * ```
 *
 * @since 0.1.0
 */
export const make = (
  options: Options = {}
): Effect.Effect<RedisEventBus, never, Redis.Redis | NodeRedis.NodeRedis | Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const channel = options.channel ?? "mcpgw:events"
    const timeout = Duration.fromInputUnsafe(options.commandTimeout ?? "2 seconds")
    const origin = randomUUID()
    const listeners = new Set<(event: ServerEvent) => void>()
    const remoteListeners = new Set<(event: ServerEvent) => void>()
    const owed = new Map<string, { readonly event: ServerEvent; generation: number }>()
    let generation = 0
    let resyncs = 0

    const deliver = (event: ServerEvent, remote = false) => {
      for (const listener of remote ? [...remoteListeners, ...listeners] : [...listeners]) {
        try {
          listener(event)
        } catch {
          // A throwing listener does not stop delivery to the others.
        }
      }
    }

    // Publisher: sends what is owed, oldest first; what fails stays owed and is retried with a capped backoff.
    const wake = yield* Queue.sliding<void>(1)
    const sendOwed = Effect.gen(function*() {
      for (const [key, entry] of [...owed]) {
        const sent = entry.generation
        yield* redis.send("PUBLISH", channel, JSON.stringify({ o: origin, e: entry.event } satisfies Envelope)).pipe(
          Effect.timeout(timeout)
        )
        if (owed.get(key)?.generation === sent) owed.delete(key)
      }
    })
    yield* Queue.take(wake).pipe(
      Effect.andThen(
        sendOwed.pipe(
          Effect.retry(Schedule.min([Schedule.exponential("50 millis"), Schedule.spaced("1 second")])),
          Effect.ignore
        )
      ),
      Effect.forever,
      Effect.forkScoped
    )

    // Subscriber: a connection of its own; node-redis re-subscribes after a reconnect, and each `ready` after the
    // first marks a gap: this replica's listeners get one of each list change.
    const onMessage = (raw: string) => {
      let envelope: unknown
      try {
        envelope = JSON.parse(raw)
      } catch {
        return
      }
      if (isEvent(envelope) && envelope.o !== origin) deliver(envelope.e, true)
    }
    const subscriber = yield* Subscriber.subscribe(channel, onMessage)
    let readies = 0
    subscriber.connection.on("ready", () => {
      if (++readies > 1) {
        resyncs++
        for (const event of listChanges) deliver(event, true)
      }
    })

    const bus: RedisEventBus = {
      publish: (event) => {
        deliver(event)
        owed.set(keyOf(event), { event, generation: ++generation })
        Queue.offerUnsafe(wake, undefined)
      },
      subscribe: (listener) => {
        const wrapped = (event: ServerEvent) => listener(event)
        listeners.add(wrapped)
        return () => {
          listeners.delete(wrapped)
        }
      },
      subscribeRemote: (listener) => {
        const wrapped = (event: ServerEvent) => listener(event)
        remoteListeners.add(wrapped)
        return () => {
          remoteListeners.delete(wrapped)
        }
      },
      healthy: () => subscriber.subscribed() && owed.size === 0,
      owed: () => owed.size,
      resyncs: () => resyncs
    }
    return bus
  })
