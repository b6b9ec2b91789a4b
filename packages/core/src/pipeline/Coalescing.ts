/**
 * The coalescing stage: identical in-flight calls that are safe to merge share one upstream call.
 *
 * Calls with the same server, tool, canonical arguments, partition and deadline, made while one of them is in
 * flight, make one upstream call whose outcome each of them gets. Only calls that are safe to merge (`readOnly` or
 * `idempotent` by policy) take part; a call with `_meta` of its own, one whose server asked the user something, or
 * a retry that answers a server's `input_required`, shares with no one. Each caller keeps its own deadline and `AbortSignal`; the shared call is cancelled on the wire
 * only when every caller has left.
 *
 * Built on a map of in-flight calls (`internal/flights.ts`) rather than `RequestResolver`: MCP has no wire batches.
 * The reasoning: docs/design.md, "Coalescing".
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Context, Duration, Effect, Layer } from "effect"
import { callKey, partitionOf } from "../internal/canonical.ts"
import * as Flights from "../internal/flights.ts"
import { isInteractive, isRetry } from "../session/McpSession.ts"
import type { CallRequest, ToolCaller } from "./ToolCaller.ts"

/**
 * The coalescing stage. `McpBridge.layer` picks it up (on by default); switch it off with `coalescing: false`.
 *
 * @since 0.1.0
 */
export class Coalescing extends Context.Service<Coalescing, Coalescing.Service>()("@mcp-bridge/core/Coalescing") {}

/**
 * The type of the coalescing service, `Coalescing.Service`.
 *
 * @since 0.1.0
 */
export declare namespace Coalescing {
  /**
   * What the coalescing stage offers: `wrap` puts coalescing around the next caller of the pipeline (`McpBridge.make`
   * calls it), and `inFlight` counts the upstream calls that identical calls could join now, e.g. to watch coalescing
   * in a test. `layerDisabled` implements it as a pass-through whose `inFlight` is always 0.
   *
   * @since 0.1.0
   */
  export interface Service {
    readonly wrap: <E>(next: ToolCaller<E>) => ToolCaller<E>
    /** Upstream calls in flight that later identical calls would join. */
    readonly inFlight: Effect.Effect<number>
  }
}

/**
 * The key of a coalescable call: server, tool, partition, canonical arguments and the deadline of one attempt.
 */
const keyOf = (request: CallRequest): string =>
  `${
    callKey(request.server.name, request.tool, partitionOf(request.policy.shared, request.identity), request.arguments)
  }\u0000${Duration.toMillis(request.timeout)}`

/**
 * Builds the stage.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<Coalescing.Service> = Effect.sync(() => {
  // One map of flights for every caller the stage wraps: the keys name the server and tool, so calls of different
  // pipelines never share a key.
  // A result that took the user's answers is the caller's own: the callers that joined its call make their own.
  const flights = Flights.make<CallToolResult, any>((result) => !isInteractive(result))
  const wrap = <E>(next: ToolCaller<E>): ToolCaller<E> => (request: CallRequest) =>
    !request.policy.safe || request.meta !== undefined || request.onProgress !== undefined || isRetry(request.rounds)
      ? next(request)
      : flights.run(keyOf(request), next(request)) as Effect.Effect<CallToolResult, E>
  return { wrap, inFlight: Effect.sync(flights.size) }
})

/**
 * Coalescing of identical in-flight calls that are safe to merge.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Coalescing> = Layer.effect(Coalescing, make)

/**
 * A pass-through stage: every call reaches the server on its own.
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<Coalescing> = Layer.succeed(Coalescing, {
  wrap: (next) => next,
  inFlight: Effect.succeed(0)
})
