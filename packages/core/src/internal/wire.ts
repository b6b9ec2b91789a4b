/**
 * The bottom of the pipeline: a leased session's `tools/call`. When the call is traced to the wire
 * (`CallRequest.traced === "wire"`), the pool traces the wait for a session (only when the caller has to wait), and
 * the call on the wire gets a client span whose W3C `traceparent` (with the caller's `tracestate`) goes to the server
 * in the request `_meta`.
 *
 * @internal
 */
import { Effect, type Tracer } from "effect"
import type * as ConnectionPool from "../ConnectionPool.ts"
import type { McpSession } from "../McpSession.ts"
import type { McpSessionError } from "../McpSessionError.ts"
import { traceparent } from "../Telemetry.ts"
import type { ToolCaller } from "../ToolCaller.ts"
import * as Metrics from "./metrics.ts"

/** @internal */
export const bottom = (
  pool: ConnectionPool.ConnectionPool.Service,
  onSession: (session: McpSession) => void
): ToolCaller<McpSessionError | ConnectionPool.ConnectionPoolError> => {
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

  return (request) =>
    request.traced !== "wire"
      ? pool.withSession(request.server, (session) => {
        onSession(session)
        return session.callTool(
          { name: request.tool, arguments: request.arguments, _meta: request.meta },
          request.timeout
        )
      })
      : pool.withSession(
        request.server,
        (session) => {
          onSession(session)
          return Effect.useSpan(
            "mcp_bridge.wire",
            wireSpanOptions(request.tool, session),
            (wire) =>
              session.callTool(
                {
                  name: request.tool,
                  arguments: request.arguments,
                  _meta: { ...request.meta, traceparent: traceparent(wire) }
                },
                request.timeout
              )
          )
        },
        true
      )
}
