/**
 * The call pipeline's contract. A call travels down the stages of the bridge (telemetry, cache, batcher, throttler,
 * resilience) to the connection pool; each stage is a service offering `wrap(next)`, and `McpBridge.layer` chains
 * whichever stages are in its context. A stage that is not provided is a pass-through.
 *
 * @since 0.1.0
 */
import type { CallToolResult, Tool } from "@modelcontextprotocol/client"
import type { Duration, Effect } from "effect"
import type { ResolvedServer, ResolvedToolPolicy } from "./BridgeConfig.ts"
import type { ConnectionPoolError } from "./ConnectionPool.ts"
import type { McpSessionError } from "./McpSession.ts"
import type { ResilienceError } from "./Resilience.ts"
import type { ThrottlerError } from "./Throttler.ts"

/**
 * One resolved tool call on its way down the pipeline.
 *
 * @since 0.1.0
 */
export interface CallRequest {
  readonly server: ResolvedServer
  readonly tool: string
  readonly arguments: Readonly<Record<string, unknown>>
  /** The tool's definition from `tools/list` (annotations, schemas), when the router knows it. */
  readonly definition: Tool | undefined
  /** What the bridge may do with this call (cache, coalesce, retry), from the operator's policy. */
  readonly policy: ResolvedToolPolicy
  /** The caller's identity (`CallerIdentity`) when the call was made. */
  readonly identity: string | undefined
  /** The deadline of this call. */
  readonly timeout: Duration.Duration
  /** Request `_meta` to send (e.g. trace context). */
  readonly meta: Readonly<Record<string, unknown>> | undefined
}

/**
 * The failures a call can end with below the router.
 *
 * @since 0.1.0
 */
export type CallError = McpSessionError | ConnectionPoolError | ThrottlerError | ResilienceError

/**
 * Makes a call. `isError: true` results are successes: the tool ran and reported an error.
 *
 * @since 0.1.0
 */
export type ToolCaller = (request: CallRequest) => Effect.Effect<CallToolResult, CallError>

/**
 * What a pipeline stage offers.
 *
 * @since 0.1.0
 */
export interface Stage {
  readonly wrap: (next: ToolCaller) => ToolCaller
}
