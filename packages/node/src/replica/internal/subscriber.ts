// A pub/sub subscriber of a replica: a node-redis connection of its own, duplicated from the `NodeRedis` client in
// context, that never gives up reconnecting (the shared client's default stops on a connect timeout, e.g. under load)
// and re-subscribes after each reconnect (node-redis does), its first connection retried in the background so that
// a layer never fails on it. node-redis is loaded when a subscriber is made, not by importing this package.
import type * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Effect, Schedule } from "effect"
import type { Scope } from "effect"

type Client = NodeRedis.NodeRedis["Service"]["client"]

/** A subscriber on one channel. */
export interface Subscriber {
  /** The connection, for its `ready` events (the first, then one after each gap). */
  readonly connection: ReturnType<Client["duplicate"]>
  /** Whether the channel is heard now. */
  readonly subscribed: () => boolean
}

/** The node-redis client of the `NodeRedis` service in context. */
export const nodeRedisClient: Effect.Effect<Client, never, NodeRedis.NodeRedis> = Effect.flatMap(
  Effect.promise(() => import("@effect/platform-node/NodeRedis")),
  (module) => Effect.map(Effect.service(module.NodeRedis), (service) => service.client)
)

/** Subscribes `onMessage` to `channel` on a connection of its own, closed with the scope. */
export const subscribe = (
  channel: string,
  onMessage: (raw: string) => void
): Effect.Effect<Subscriber, never, NodeRedis.NodeRedis | Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* nodeRedisClient
    const socket = (client as { readonly options?: { readonly socket?: object } }).options?.socket
    const connection = client.duplicate(
      {
        socket: { ...socket, reconnectStrategy: (retries: number) => Math.min(2 ** retries * 50, 2000) }
      } as Parameters<
        typeof client.duplicate
      >[0]
    )
    let subscribed = false
    let readies = 0
    connection.on("error", () => {
      subscribed = false
    })
    connection.on("end", () => {
      subscribed = false
    })
    // After a gap node-redis has re-subscribed the channel on the new connection.
    connection.on("ready", () => {
      if (++readies > 1) subscribed = true
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        subscribed = false
        if (connection.isOpen) connection.destroy()
      })
    )
    yield* Effect.tryPromise(async () => {
      if (!connection.isOpen) await connection.connect()
      await connection.subscribe(channel, onMessage)
      subscribed = true
    }).pipe(
      Effect.retry(Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("2 seconds")])),
      Effect.ignore,
      Effect.forkScoped
    )
    return { connection, subscribed: () => subscribed && connection.isReady }
  })
