/**
 * Single flight: callers of the same key while a call of that key is in flight share its result instead of making
 * their own call. Used by the result cache (identical misses make one upstream call) and the coalescing (identical safe
 * calls coalesce).
 *
 * A plain map of in-flight `Deferred`s rather than `RequestResolver` or `Cache`: the first caller runs the call in its
 * own fiber (no fork, nothing scheduled), later callers wait on its `Deferred`. If the first caller is interrupted
 * while others wait, the call is interrupted with it, and one of the waiters makes it again: only calls that are safe
 * to repeat go through here, and the others get their answer instead of an interruption they did not ask for.
 * A result that `shareable` refuses (one that depends on what the caller's user answered, see
 * `McpSession.isInteractive`) is the first caller's own: each waiter makes its call again, as if it had come later.
 *
 * @internal
 */
import { Cause, Deferred, Effect, Exit } from "effect"

interface Flight<A, E> {
  // `undefined`: the caller that ran the call left before it ended; a waiter runs it again.
  readonly done: Deferred.Deferred<Exit.Exit<A, E> | undefined>
}

/** @internal */
export interface Flights<A, E> {
  /** Runs `effect` for `key`, or joins the call of `key` in flight. */
  readonly run: <R>(key: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** True while a call of `key` is in flight (a caller now would join it). */
  readonly has: (key: string) => boolean
  /** Makes the call of `key` in flight private to its current callers: later callers start a call of their own. */
  readonly forget: (key: string) => void
  /** Calls in flight. */
  readonly size: () => number
  /** The keys of the calls in flight. */
  readonly keys: () => ReadonlyArray<string>
}

/** @internal */
export const make = <A, E>(shareable: (a: A) => boolean = () => true): Flights<A, E> => {
  const inFlight = new Map<string, Flight<A, E>>()

  const run = <R>(key: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      const current = inFlight.get(key)
      if (current !== undefined) {
        return Effect.flatMap(
          Deferred.await(current.done),
          (exit): Effect.Effect<A, E, R> =>
            exit === undefined || (Exit.isSuccess(exit) && !shareable(exit.value)) ? run(key, effect) : exit
        )
      }
      const flight: Flight<A, E> = { done: Deferred.makeUnsafe() }
      inFlight.set(key, flight)
      return Effect.onExit(effect, (exit) => {
        if (inFlight.get(key) === flight) inFlight.delete(key)
        const interrupted = Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
        Deferred.doneUnsafe(flight.done, Exit.succeed(interrupted ? undefined : exit))
        return Effect.void
      })
    })

  return {
    run,
    has: (key) => inFlight.has(key),
    forget: (key) => {
      inFlight.delete(key)
    },
    size: () => inFlight.size,
    keys: () => Array.from(inFlight.keys())
  }
}
