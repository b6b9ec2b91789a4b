// Keeps a store's Redis commands from hanging or flooding the log while Redis is unreachable: each command is
// bounded by a timeout; after a failure the store answers at once ("unreachable") for a short pause instead of
// queueing more commands; the first failure and the recovery are logged once each.
//
// `RedisHealth` gathers the guards of one connection (what `/readyz` and the `mcp_bridge_redis_up` gauge show): it
// marks every guard down when the connection drops, and while any is down it pings Redis until it answers, so that
// a store with no traffic recovers too. Without it in context a guard stands alone.
import type * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Clock, Context, Duration, Effect, Layer, Queue, Schedule } from "effect"
import { Redis } from "effect/persistence"
import { nodeRedisClient } from "./subscriber.ts"

/** Why a guarded command did not answer. */
export interface GuardFailure {
  readonly message: string
  readonly cause?: unknown
  /** `true` when the command was sent and may still run in Redis later (it timed out or the connection dropped). */
  readonly sent?: boolean
}

/** Runs Redis commands under the guard. */
export interface RedisGuard {
  readonly name: string
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, GuardFailure, R>
  /** `false` from a failure until Redis answers again. */
  readonly healthy: () => boolean
  /** Redis is unreachable, learned elsewhere (the connection dropped, a probe failed). */
  readonly markDown: (cause: unknown) => Effect.Effect<void>
  /** Redis answered (a probe): commands go to it again. */
  readonly markUp: Effect.Effect<void>
}

interface GuardOptions {
  readonly commandTimeout: Duration.Input
  readonly pause: Duration.Input
}

/** A guard named `name` in its log lines; `onDown` runs when it goes from healthy to down. */
export const make = (name: string, options: GuardOptions, onDown: () => void = () => {}): RedisGuard => {
  const timeout = Duration.fromInputUnsafe(options.commandTimeout)
  const pauseMillis = Duration.toMillis(Duration.fromInputUnsafe(options.pause))
  let down = false
  let until = 0
  const unreachable = `${name}: Redis unreachable`
  const markDown = (cause: unknown) =>
    Effect.clockWith((clock: Clock.Clock) => {
      until = clock.currentTimeMillisUnsafe() + pauseMillis
      if (down) return Effect.void
      down = true
      onDown()
      return Effect.logWarning(`${unreachable}; degraded until it answers again`, describe(cause))
    })
  const markUp = Effect.suspend(() => {
    if (!down) return Effect.void
    down = false
    until = 0
    return Effect.logInfo(`${name}: Redis answers again`)
  })
  return {
    name,
    healthy: () => !down,
    markDown,
    markUp,
    run: (effect) =>
      Effect.clockWith((clock) => {
        if (down && clock.currentTimeMillisUnsafe() < until) {
          return Effect.fail<GuardFailure>({ message: unreachable })
        }
        return effect.pipe(
          Effect.timeoutOrElse({
            duration: timeout,
            orElse: () => Effect.fail(new Error(`no answer within ${Duration.format(timeout)}`))
          }),
          Effect.matchEffect({
            onFailure: (cause) =>
              Effect.andThen(markDown(cause), Effect.fail<GuardFailure>({ message: unreachable, cause, sent: true })),
            onSuccess: (a) => Effect.as(markUp, a)
          })
        )
      })
  }
}

/** The guards of one Redis connection, and their probe. */
export class RedisHealth extends Context.Service<RedisHealth, {
  /** A guard registered under `store` (the gauge's label). */
  readonly guard: (store: string, name: string, options: GuardOptions) => RedisGuard
  /** Each registered store, and whether Redis answers it. */
  readonly stores: () => ReadonlyArray<{ readonly store: string; readonly up: boolean }>
  /** Pings Redis once (bounded): every guard goes up or down with the answer. */
  readonly check: Effect.Effect<boolean>
  /** Runs `effect` each time Redis answers again after any guard was down (e.g. to restore what a restart lost). */
  readonly onRecovered: (effect: Effect.Effect<void, unknown>) => void
}>()("@mcp-bridge/node/replica/RedisHealth") {}

/** A guard in `RedisHealth` when it is in context, else on its own. */
export const tracked = (store: string, name: string, options: GuardOptions): Effect.Effect<RedisGuard> =>
  Effect.map(
    Effect.serviceOption(RedisHealth),
    (health) => health._tag === "Some" ? health.value.guard(store, name, options) : make(name, options)
  )

/** The health of the connection in context: its guards, its drops, and a probe while any guard is down. */
export const layerHealth = (
  options: { readonly probeEvery?: Duration.Input; readonly probeTimeout?: Duration.Input } = {}
) =>
  Layer.effect(
    RedisHealth,
    Effect.gen(function*() {
      const redis = yield* Redis.Redis
      const client = yield* nodeRedisClient
      const guards = new Map<string, RedisGuard>()
      const wake = yield* Queue.sliding<void>(1)
      const every = Duration.fromInputUnsafe(options.probeEvery ?? "500 millis")
      const probeTimeout = Duration.fromInputUnsafe(options.probeTimeout ?? "1 second")
      const anyDown = () => [...guards.values()].some((g) => !g.healthy())
      const all = (f: (g: RedisGuard) => Effect.Effect<void>) =>
        Effect.forEach([...guards.values()], f, { discard: true })
      const recovered: Array<Effect.Effect<void, unknown>> = []
      const check = redis.send("PING").pipe(
        Effect.timeout(probeTimeout),
        Effect.matchEffect({
          onFailure: (cause) => Effect.as(all((g) => g.markDown(cause)), false),
          onSuccess: () =>
            Effect.suspend(() => {
              const wasDown = anyDown()
              return all((g) => g.markUp).pipe(
                Effect.andThen(
                  wasDown
                    ? Effect.forEach(recovered, (effect) => Effect.ignore(effect), { discard: true })
                    : Effect.void
                ),
                Effect.as(true)
              )
            })
        })
      )
      // While any guard is down: ping until Redis answers (no command at all while every guard is up).
      yield* Queue.take(wake).pipe(
        Effect.andThen(
          Effect.sleep(every).pipe(
            Effect.andThen(check),
            Effect.repeat({ while: () => anyDown(), schedule: Schedule.spaced(every) })
          )
        ),
        Effect.forever,
        Effect.forkScoped
      )
      const runFork = Effect.runForkWith(yield* Effect.context<never>())
      const dropped = (cause: unknown) => void runFork(all((g) => g.markDown(cause)))
      const ended = () => dropped(new Error("connection closed"))
      client.on("error", dropped)
      client.on("end", ended)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          client.off("error", dropped)
          client.off("end", ended)
        })
      )
      return RedisHealth.of({
        guard: (store, name, guardOptions) => {
          const guard = make(name, guardOptions, () => Queue.offerUnsafe(wake, undefined))
          guards.set(store, guard)
          return guard
        },
        stores: () => [...guards].map(([store, g]) => ({ store, up: g.healthy() })),
        check,
        onRecovered: (effect) => void recovered.push(effect)
      })
    })
  )

// A cause as one line, never with the connection options (which may hold a password).
const describe = (cause: unknown): string => {
  const inner = typeof cause === "object" && cause !== null && "cause" in cause
    ? (cause as { cause: unknown }).cause
    : cause
  return inner instanceof Error ? inner.message : String(inner)
}
