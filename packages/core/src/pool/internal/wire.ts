/**
 * The bottom of the pipeline: a leased session's `tools/call`, with the attempt's timeout capped by what is left of
 * the call's overall deadline (an attempt cut short by the deadline fails with `DeadlineExceeded`, phase `call`, not
 * with the session's retryable `Timeout`). When the call is traced to the wire
 * (`CallRequest.traced === "wire"`), the pool traces the wait for a session (only when the caller has to wait), and
 * the call on the wire gets a client span whose W3C `traceparent` (with the caller's `tracestate`) goes to the server
 * in the request `_meta`.
 *
 * @internal
 */
import { Clock, Duration, Effect, type Tracer } from "effect"
import type { ResolvedServer } from "../../config/BridgeConfig.ts"
import type { ConnectionPoolError } from "../../errors/ConnectionPoolError.ts"
import { deadlineExceeded, type McpBridgeError } from "../../errors/McpBridgeError.ts"
import { McpSessionError } from "../../errors/McpSessionError.ts"
import * as Metrics from "../../internal/metrics.ts"
import { traceparent } from "../../pipeline/Telemetry.ts"
import type { CallRequest, ToolCaller } from "../../pipeline/ToolCaller.ts"
import type { CallOptions as McpSessionCallOptions, McpSession } from "../../session/McpSession.ts"

const callOptionsOf = (request: CallRequest): McpSessionCallOptions => ({
  identity: request.identity,
  onProgress: request.onProgress,
  definition: request.definition,
  rounds: request.rounds
})

/** @internal */
export const bottom = (
  pool: {
    readonly withSession: <A, E, R>(
      server: ResolvedServer,
      f: (session: McpSession) => Effect.Effect<A, E, R>,
      call?: CallRequest
    ) => Effect.Effect<A, E | McpSessionError | ConnectionPoolError | McpBridgeError, R>
  },
  onSession: (session: McpSession) => void
): ToolCaller<McpSessionError | ConnectionPoolError | McpBridgeError> => {
  // Span options of the wire call, per session and tool (built once, not per call).
  const wireOptions = new WeakMap<McpSession, Map<string, Tracer.SpanOptionsNoTrace>>()
  const wireSpanOptions = (tool: string, session: McpSession): Tracer.SpanOptionsNoTrace => {
    let byTool = wireOptions.get(session)
    if (byTool === undefined) wireOptions.set(session, byTool = new Map())
    let options = byTool.get(tool)
    if (options === undefined) {
      options = {
        kind: "client",
        attributes: {
          [Metrics.Attr.method]: "tools/call",
          [Metrics.Attr.tool]: tool,
          [Metrics.Attr.server]: session.server,
          [Metrics.Attr.protocolVersion]: session.protocolVersion,
          [Metrics.Attr.transport]: Metrics.networkTransport(session.transport)
        }
      }
      byTool.set(tool, options)
    }
    return options
  }

  const call = (request: CallRequest, session: McpSession, meta: CallRequest["meta"]) =>
    Effect.withFiber((fiber) => {
      const left = request.deadlineAt - fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
      const timeout = Duration.toMillis(request.timeout)
      // The attempt ends before the deadline: its own timeout (`Timeout`, retryable). Else the deadline ends it.
      if (left > timeout) {
        return session.callTool(
          { name: request.tool, arguments: request.arguments, _meta: meta },
          request.timeout,
          callOptionsOf(request)
        )
      }
      if (left <= 0) {
        return Effect.fail(deadlineExceeded(request.server.name, request.tool, request.deadlineMillis, "call"))
      }
      return session.callTool(
        { name: request.tool, arguments: request.arguments, _meta: meta },
        Duration.millis(left),
        callOptionsOf(request)
      )
        .pipe(
          Effect.catchIf(
            (error) => error instanceof McpSessionError && error.reason._tag === "Timeout",
            () => Effect.fail(deadlineExceeded(request.server.name, request.tool, request.deadlineMillis, "call"))
          )
        )
    })

  return (request) =>
    request.traced !== "wire"
      ? pool.withSession(request.server, (session) => {
        onSession(session)
        return call(request, session, request.meta)
      }, request)
      : pool.withSession(
        request.server,
        (session) => {
          onSession(session)
          return Effect.useSpan(
            "mcp_bridge.wire",
            wireSpanOptions(request.tool, session),
            (wire) => call(request, session, { ...request.meta, traceparent: traceparent(wire) })
          )
        },
        request
      )
}
