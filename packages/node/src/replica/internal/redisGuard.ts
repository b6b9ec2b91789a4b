// Keeps a store's Redis commands from hanging or flooding the log while Redis is unreachable: each command is
// bounded by a timeout; after a failure the store answers at once ("unreachable") for a short pause instead of
// queueing more commands; the first failure and the recovery are logged once each.
import { Clock, Duration, Effect } from "effect"

/** Why a guarded command did not answer. */
export interface GuardFailure {
  readonly message: string
  readonly cause?: unknown
}

/** Runs Redis commands under the guard. */
export interface RedisGuard {
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, GuardFailure, R>
  /** `false` from a failure until the next command that succeeds. */
  readonly healthy: () => boolean
}

/** A guard named `name` in its log lines. */
export const make = (name: string, options: {
  readonly commandTimeout: Duration.Input
  readonly pause: Duration.Input
}): RedisGuard => {
  const timeout = Duration.fromInputUnsafe(options.commandTimeout)
  const pauseMillis = Duration.toMillis(Duration.fromInputUnsafe(options.pause))
  let down = false
  let until = 0
  const failed = (cause: unknown) =>
    Effect.clockWith((clock: Clock.Clock) => {
      until = clock.currentTimeMillisUnsafe() + pauseMillis
      const message = `${name}: Redis unreachable`
      if (down) return Effect.fail<GuardFailure>({ message, cause })
      down = true
      return Effect.andThen(
        Effect.logWarning(`${message}; degraded until it answers again`, describe(cause)),
        Effect.fail<GuardFailure>({ message, cause })
      )
    })
  return {
    healthy: () => !down,
    run: (effect) =>
      Effect.clockWith((clock) => {
        if (down && clock.currentTimeMillisUnsafe() < until) {
          return Effect.fail<GuardFailure>({ message: `${name}: Redis unreachable` })
        }
        return effect.pipe(
          Effect.timeoutOrElse({
            duration: timeout,
            orElse: () => Effect.fail(new Error(`no answer within ${Duration.format(timeout)}`))
          }),
          Effect.matchEffect({
            onFailure: failed,
            onSuccess: (a) => {
              if (!down) return Effect.succeed(a)
              down = false
              return Effect.as(Effect.logInfo(`${name}: Redis answers again`), a)
            }
          })
        )
      })
  }
}

// A cause as one line, never with the connection options (which may hold a password).
const describe = (cause: unknown): string => {
  const inner = typeof cause === "object" && cause !== null && "cause" in cause
    ? (cause as { cause: unknown }).cause
    : cause
  return inner instanceof Error ? inner.message : String(inner)
}
