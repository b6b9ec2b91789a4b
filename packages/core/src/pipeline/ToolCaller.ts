/**
 * The call pipeline's contract. A call travels down the stages of the bridge (see `Pipeline`: telemetry, cache,
 * coalescing, resilience, throttle, and the user's own stages) to the connection pool; each stage offers
 * `wrap(next)`, and `Pipeline.compose` chains them top to bottom.
 *
 * The contract is generic in errors: a `ToolCaller<E>` fails with `E`, and a `Stage<E>` adds `E` to the errors of the
 * caller it wraps. So this module imports no stage, and each stage imports only its own error: the union of every
 * failure a call can end with is assembled at the top, in `McpBridge` (`McpBridge.CallError`).
 *
 * @since 0.1.0
 */
import type { CallToolResult, Progress, Tool } from "@modelcontextprotocol/client"
import type { Duration, Effect } from "effect"
import type { ResolvedServer } from "../config/BridgeConfig.ts"
import type { ToolPolicy } from "../config/ToolPolicy.ts"
import type { ClientRounds } from "../session/McpSession.ts"

/**
 * One resolved tool call on its way down the pipeline. The router builds it once per call; stages read it and pass
 * it on (or a copy with a field changed, e.g. `traced`).
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
  readonly policy: ToolPolicy
  /** The caller's identity (`CallerIdentity`) when the call was made. */
  readonly identity: string | undefined
  /** The deadline of one attempt of this call on the wire (capped by what is left of `deadlineAt`). */
  readonly timeout: Duration.Duration
  /**
   * Clock millis by which the whole call must have ended: every wait (session, connect, rate limit, backoff) and
   * every attempt. A stage that waits bounds its wait by it and fails with `DeadlineExceeded` naming its phase.
   */
  readonly deadlineAt: number
  /** The call's overall deadline, as a length (for error messages). */
  readonly deadlineMillis: number
  /** Request `_meta` to send (e.g. trace context). */
  readonly meta: Readonly<Record<string, unknown>> | undefined
  /** Called with each progress notification of the call (such a call is never coalesced). */
  readonly onProgress?: ((progress: Progress) => void) | undefined
  /**
   * The caller answers a 2026-07-28 server's `input_required` itself (`McpSession.ClientRounds`): such a result comes
   * back to it unfulfilled. A retry (with `inputResponses` or `requestState`) is never served from a cache nor
   * coalesced, and what it answers, like an `input_required` result, is never stored (`McpSession.isInteractive`).
   */
  readonly rounds?: ClientRounds | undefined
  /**
   * Set by the `Telemetry` stage when this call has a span of its own, which is then the current span below it:
   * `"call"`, the stages below annotate it (cache result, retries); `"wire"`, the bottom of the pipeline also traces
   * the session wait and the wire call and sends W3C trace context to the server. Unset: no spans.
   */
  readonly traced?: "call" | "wire" | undefined
}

/**
 * Makes a call. `isError: true` results are successes: the tool ran and reported an error.
 *
 * @since 0.1.0
 */
export type ToolCaller<E = never> = (request: CallRequest) => Effect.Effect<CallToolResult, E>

/**
 * What a pipeline stage offers: `wrap(next)` returns a caller that does the stage's work around `next`, failing with
 * the errors of `next` and the stage's own `E`.
 *
 * @example
 * ```ts
 * const logging: ToolCaller.Stage = {
 *   wrap: (next) => (request) => Effect.tap(next(request), () => Effect.logDebug(`${request.tool} answered`))
 * }
 * ```
 *
 * @since 0.1.0
 */
export interface Stage<E = never> {
  readonly wrap: <E0>(next: ToolCaller<E0>) => ToolCaller<E0 | E>
}
