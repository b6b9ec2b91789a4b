/**
 * The batcher stage: identical in-flight calls that are safe to merge share one upstream call, built on Effect's
 * `Request` / `RequestResolver` (one resolver grouped per server, with a batch window and a maximum batch size).
 *
 * - MCP has no wire batches (JSON-RPC batching left the spec in 2025-06-18), so what a batch buys is coalescing:
 *   within a batch, and with the calls of earlier batches still in flight, calls with the same server, tool,
 *   canonical arguments, partition (the caller's identity unless the tool's results are `shared`) and deadline make
 *   one upstream call, whose result (or failure) every one of them gets.
 * - Only calls that are safe to merge are coalesced: `readOnly` or `idempotent` by the operator's policy (or by
 *   annotations on a trusted server). Any other call has side effects and reaches the server once per request: it
 *   skips the resolver altogether, so it costs nothing here. So does a call that carries `_meta` of its own (a
 *   progress token, the caller's trace context), which would be lost on a shared request.
 * - A caller that is interrupted leaves its shared call; the upstream request is cancelled (on the wire) when its last
 *   caller leaves.
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Request, RequestResolver } from "effect"
import { callKey, partitionOf } from "./internal/canonical.ts"
import type { CallError, CallRequest, Stage, ToolCaller } from "./ToolCaller.ts"

/**
 * @since 0.1.0
 */
export class Batcher extends Context.Service<Batcher, Stage>()("@mcp-bridge/core/Batcher") {}

/**
 * @since 0.1.0
 */
export interface Options {
  /**
   * How long a batch collects calls before it runs. Zero runs each batch at once: identical calls made while it is in
   * flight still join it, so nothing is lost for calls made together (e.g. by `callMany`). A longer window also
   * merges calls into a batch before any of them has started, but delays every safe call by it.
   * @default 0
   */
  readonly window?: Duration.Input | undefined
  /** A batch runs as soon as it holds this many calls; later calls start a new batch. @default 256 */
  readonly maxBatchSize?: number | undefined
  /**
   * Upstream calls one batch runs at once (the in-flight limit of a server is the throttler's `concurrency`).
   * @default "unbounded"
   */
  readonly concurrency?: number | "unbounded" | undefined
}

/**
 * One upstream call and the entries (callers) waiting for it.
 */
interface Flight {
  readonly key: string
  readonly entries: Set<Request.Entry<ToolCall>>
  /** Callers still waiting. */
  waiting: number
  fiber: Fiber.Fiber<CallToolResult, CallError> | undefined
  done: boolean
  /** Completed when the flight is done; made when a later batch joins the flight (its entries are completed here). */
  joined: Deferred.Deferred<void> | undefined
  /** The batch that made it. */
  readonly batch: object
}

class ToolCall extends Request.Class<{ readonly call: CallRequest; readonly key: string }, CallToolResult, CallError> {
  /** The flight this call joined, once its batch ran. */
  flight: Flight | undefined = undefined
}

const finish = (flight: Flight, exit: Exit.Exit<CallToolResult, CallError>) => {
  flight.done = true
  for (const entry of flight.entries) entry.completeUnsafe(exit)
  if (flight.joined !== undefined) Deferred.doneUnsafe(flight.joined, Effect.void)
}

/**
 * Builds the stage.
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Stage> =>
  Effect.sync(() => {
    const window = Duration.fromInputUnsafe(options.window ?? Duration.zero)
    const maxBatchSize = options.maxBatchSize ?? 256
    const concurrency = options.concurrency ?? "unbounded"
    const inFlight = new Map<string, Flight>()

    const forget = (flight: Flight) => {
      if (inFlight.get(flight.key) === flight) inFlight.delete(flight.key)
    }

    const leave = (flight: Flight) => {
      flight.waiting--
      if (flight.waiting > 0 || flight.done) return Effect.void
      // The last caller left: nobody wants the answer any more.
      forget(flight)
      finish(flight, Exit.interrupt())
      return flight.fiber === undefined ? Effect.void : Fiber.interrupt(flight.fiber)
    }

    // Runs a flight's upstream call in the context of its first caller (identity, span), then completes its entries.
    const upstream = (next: ToolCaller, flight: Flight) => {
      const first = flight.entries.values().next().value!
      return Effect.provideContext(next(first.request.call), first.context)
    }

    // A flight in a fiber of its own, so that the last caller leaving can cancel it without ending the batch's other
    // calls.
    const runFlight = (next: ToolCaller, flight: Flight): Effect.Effect<void> => {
      if (flight.done) return Effect.void
      return Effect.forkChild(upstream(next, flight)).pipe(
        Effect.flatMap((fiber) => {
          flight.fiber = fiber
          return Fiber.await(fiber)
        }),
        Effect.map((exit) => {
          forget(flight)
          finish(flight, exit)
        })
      )
    }

    // The common case, a batch of one flight, runs in the batch's own fiber: cancelling the flight ends the batch.
    const runAlone = (next: ToolCaller, flight: Flight): Effect.Effect<void> =>
      Effect.withFiber((fiber) => {
        flight.fiber = fiber as Fiber.Fiber<any, any>
        return Effect.map(Effect.exit(upstream(next, flight)), (exit) => {
          forget(flight)
          finish(flight, exit)
        })
      })

    const resolverFor = (next: ToolCaller) =>
      RequestResolver.make<ToolCall>((entries) =>
        Effect.suspend(() => {
          const batch = {}
          const flights: Array<Flight> = []
          let joined: Array<Deferred.Deferred<void>> | undefined
          for (const entry of entries) {
            const request = entry.request
            let flight = inFlight.get(request.key)
            if (flight === undefined) {
              flight = {
                key: request.key,
                entries: new Set(),
                waiting: 0,
                fiber: undefined,
                done: false,
                joined: undefined,
                batch
              }
              inFlight.set(request.key, flight)
              flights.push(flight)
            } else if (flight.batch !== batch) {
              // An identical call of an earlier batch is still in flight: wait for it here.
              flight.joined ??= Deferred.makeUnsafe<void>()
              ;(joined ??= []).push(flight.joined)
            }
            flight.entries.add(entry)
            flight.waiting++
            request.flight = flight
          }
          if (joined === undefined && flights.length === 1) return runAlone(next, flights[0]!)
          const own = Effect.forEach(flights, (flight) => runFlight(next, flight), { concurrency, discard: true })
          return joined === undefined
            ? own
            : Effect.andThen(own, Effect.forEach(joined, Deferred.await, { discard: true }))
        })
      ).pipe(
        // No window: a batch runs as soon as its first call arrives (identical calls made meanwhile join its flight);
        // else it collects calls for `window` on the clock.
        (resolver) =>
          Duration.isZero(window)
            ? RequestResolver.setDelayEffect(resolver, Effect.void)
            : RequestResolver.setDelay(resolver, window),
        RequestResolver.batchN(maxBatchSize),
        RequestResolver.grouped((entry) => entry.request.call.server.name)
      )

    const wrap = (next: ToolCaller): ToolCaller => {
      const resolver = resolverFor(next)
      return (request: CallRequest) => {
        // A call with `_meta` of its own (a progress token, the caller's trace context) is its own request.
        if (!request.policy.safe || request.meta !== undefined) return next(request)
        const call = new ToolCall({
          call: request,
          key: `${
            callKey(
              request.server.name,
              request.tool,
              partitionOf(request.policy.shared, request.identity),
              request.arguments
            )
          }\u0000${Duration.toMillis(request.timeout)}`
        })
        return Effect.request(call, resolver).pipe(
          Effect.onInterrupt(() => call.flight === undefined ? Effect.void : leave(call.flight))
        )
      }
    }

    return { wrap } satisfies Stage
  })

/**
 * Coalescing of identical in-flight calls that are safe to merge.
 *
 * @example
 * ```ts
 * const Bridge = McpBridge.layer(config, { batcher: { window: "2 millis", maxBatchSize: 100 } })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Batcher> => Layer.effect(Batcher, make(options))

/**
 * A pass-through stage.
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<Batcher> = Layer.succeed(Batcher, Batcher.of({ wrap: (next) => next }))
