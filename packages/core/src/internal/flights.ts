/**
 * Single flight: callers of the same key while a call of that key is in flight share its result instead of making
 * their own call. Used by the result cache (identical misses make one upstream call) and the coalescing (identical safe
 * calls coalesce).
 *
 * A plain map of in-flight calls, each a fiber of its own with a `Deferred` of its exit and a count of the callers
 * waiting on it, rather than `RequestResolver` or `Cache`: every caller keeps its own interruption (its own deadline,
 * its own `AbortSignal`), and a caller that leaves only leaves; the call is interrupted (cancelled on the wire) when
 * its last caller has left. A result that `shareable` refuses (one that depends on what the caller's user answered,
 * see `McpSession.isInteractive`) is the first caller's own: each other caller makes its call again, as if it had
 * come later.
 *
 * @internal
 */
import { Deferred, Effect, Exit, Fiber } from "effect"

interface Flight<A, E> {
  readonly done: Deferred.Deferred<Exit.Exit<A, E>>
  callers: number
  fiber: Fiber.Fiber<A, E> | undefined
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
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        let flight = inFlight.get(key)
        const first = flight === undefined
        if (flight === undefined) {
          const started: Flight<A, E> = { done: Deferred.makeUnsafe(), callers: 0, fiber: undefined }
          inFlight.set(key, started)
          flight = started
        }
        const joined = flight
        joined.callers++
        // A caller that leaves (interrupted) only leaves; the last one to leave interrupts the call.
        const leave = Effect.suspend(() => {
          if (--joined.callers > 0 || joined.fiber === undefined) return Effect.void
          if (inFlight.get(key) === joined) inFlight.delete(key)
          return Fiber.interrupt(joined.fiber)
        })
        const wait = Effect.flatMap(
          Effect.onInterrupt(restore(Deferred.await(joined.done)), () => leave),
          (exit): Effect.Effect<A, E, R> => {
            joined.callers--
            return !first && Exit.isSuccess(exit) && !shareable(exit.value) ? restore(run(key, effect)) : exit
          }
        )
        if (!first) return wait
        // The call runs in a fiber of its own (with the first caller's services and span), so that no caller's
        // interruption but the last one's reaches it.
        return Effect.flatMap(
          Effect.forkDetach(
            Effect.onExit(Effect.interruptible(effect), (exit) =>
              Effect.sync(() => {
                if (inFlight.get(key) === joined) inFlight.delete(key)
                Deferred.doneUnsafe(joined.done, Exit.succeed(exit))
              })),
            { startImmediately: true }
          ),
          (fiber) => {
            joined.fiber = fiber
            return wait
          }
        )
      })
    )

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
