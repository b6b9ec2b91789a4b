/**
 * Server log messages through Effect's logger: the default of `ClientHandlers.log`.
 *
 * @internal
 */
import type { LoggingMessageNotification } from "@modelcontextprotocol/client"
import { Effect } from "effect"

/** @internal */
export const logToEffect = (
  message: LoggingMessageNotification["params"],
  origin: { readonly server: string }
): Effect.Effect<void> => {
  const text = typeof message.data === "string" ? message.data : JSON.stringify(message.data)
  const annotations = {
    "mcp_bridge.server": origin.server,
    ...(message.logger === undefined ? {} : { "mcp.logger": message.logger })
  }
  const log = message.level === "debug"
    ? Effect.logDebug(text)
    : message.level === "info" || message.level === "notice"
    ? Effect.logInfo(text)
    : message.level === "warning"
    ? Effect.logWarning(text)
    : Effect.logError(text)
  return Effect.annotateLogs(log, annotations)
}
