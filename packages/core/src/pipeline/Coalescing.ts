/**
 * The coalescing stage: identical in-flight calls that are safe to merge share one upstream call.
 *
 * - MCP has no wire batches (JSON-RPC batching left the spec in 2025-06-18), so what batching buys a bridge is
 *   coalescing: calls with the same server, tool, canonical arguments, partition (the caller's identity unless the
 *   tool's results are `shared`) and deadline, made while one of them is in flight, make one upstream call, whose
 *   result (or failure) every one of them gets. Fan-out of different calls is `McpBridge.callMany`'s job.
 * - Only calls that are safe to merge are coalesced: `readOnly` or `idempotent` by the operator's policy (or by
 *   annotations on a trusted server). Any other call has side effects and reaches the server once per request: it
 *   skips the stage altogether, so it costs nothing here. So does a call that carries `_meta` of its own (a progress
 *   token, the caller's trace context), which would be lost on a shared request. A call whose server asked the user
 *   something (elicitation, sampling, roots: `McpSession.isInteractive`) shares its result with no one: the calls
 *   that joined it make their own.
 * - Each caller keeps its own deadline and `AbortSignal`: a caller that is interrupted leaves the shared call, which
 *   goes on for the others; it is cancelled on the wire only when every caller has left.
 *
 * Built on a plain map of in-flight calls (`internal/flights.ts`), not on `RequestResolver`: with no wire batches, a
 * resolver's batch window only delays calls, and coalescing across batches needs per-key flights and reference
 * counts that the resolver does not keep; the map does exactly that, with one fiber per upstream call.
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Context, Duration, Effect, Layer } from "effect"
import { callKey, partitionOf } from "../internal/canonical.ts"
import * as Flights from "../internal/flights.ts"
import { isInteractive } from "../session/McpSession.ts"
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
    !request.policy.safe || request.meta !== undefined || request.onProgress !== undefined
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
