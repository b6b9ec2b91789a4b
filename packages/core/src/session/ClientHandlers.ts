/**
 * What the bridge answers when a server asks its client for something: elicitation (a form, or a URL to open),
 * sampling (a completion from the application's model), roots, and what it does with the server's log messages.
 *
 * Each is a handler the application provides; a capability is advertised only for the handlers there are. 2025-era
 * requests and 2026-07-28 `input_required` rounds reach the same handlers, and each handler learns which server, tool
 * and caller identity asked (`Origin`). A `Context.Service` the session reads: `ClientHandlers.layer(handlers)`, or
 * `McpBridge.layer(config, { handlers })`.
 *
 * More: docs/design.md, "Client handlers".
 *
 * @since 0.1.0
 */
import type {
  CreateMessageRequest,
  CreateMessageResult,
  ElicitRequest,
  ElicitResult,
  LoggingLevel,
  LoggingMessageNotification,
  Root
} from "@modelcontextprotocol/client"
import { Context, Effect, Layer, type Stream } from "effect"
import * as Logs from "./internal/logs.ts"

/**
 * Who asked: the server, the tool whose call the request belongs to (when the bridge can tell: always on
 * 2026-07-28 servers; on 2025-era servers when the session has one call in flight, or one of a tool known to ask,
 * whose calls run on a session alone), and the caller's identity.
 *
 * @since 0.1.0
 */
export interface Origin {
  readonly server: string
  readonly tool: string | undefined
  readonly identity: string | undefined
}

/**
 * The parameters of an elicitation: a form (`requestedSchema`) or a URL to open (`mode: "url"`).
 *
 * @since 0.1.0
 */
export type ElicitParams = ElicitRequest["params"]

/**
 * The parameters of a sampling request.
 *
 * @since 0.1.0
 */
export type SampleParams = CreateMessageRequest["params"]

/**
 * A server's log message.
 *
 * @since 0.1.0
 */
export type LogMessage = LoggingMessageNotification["params"]

/**
 * The handlers. Each is optional; a server is told only of those that are here. A handler that fails (or throws)
 * answers the server with an error.
 *
 * @since 0.1.0
 */
export interface Handlers {
  /** Asks the user: `{ action: "accept", content }`, `{ action: "decline" }` or `{ action: "cancel" }`. */
  readonly elicit?: ((params: ElicitParams, origin: Origin) => Effect.Effect<ElicitResult, unknown>) | undefined
  /** Elicitation in URL mode too (credentials, payments: the user opens the URL). @default false */
  readonly elicitUrl?: boolean | undefined
  /** A completion from the application's model. */
  readonly sample?: ((params: SampleParams, origin: Origin) => Effect.Effect<CreateMessageResult, unknown>) | undefined
  /** The roots the server may work in; `changes` tells servers (2025 era) when they change. */
  readonly roots?: {
    readonly list: (origin: Origin) => Effect.Effect<ReadonlyArray<Root>, unknown>
    readonly changes?: Stream.Stream<void> | undefined
  } | undefined
  /** A server's log message. @default logged through Effect's logger at the message's level */
  readonly log?: ((message: LogMessage, origin: Origin) => Effect.Effect<void>) | undefined
  /**
   * The least severe log level servers send, for every server (a server's `bridge.logLevel` wins for it).
   * @default `"info"` when `log` is given (a 2026-07-28 server sends no log unless a level is asked for); else none
   * asked for (a 2025-era server sends what it sends)
   */
  readonly logLevel?: LoggingLevel | undefined
}

/**
 * The handlers of the bridge's sessions.
 *
 * @since 0.1.0
 */
export class ClientHandlers extends Context.Service<ClientHandlers, ClientHandlers.Service>()(
  "@mcp-bridge/core/ClientHandlers"
) {}

/**
 * The type of the client handlers service, `ClientHandlers.Service`.
 *
 * @since 0.1.0
 */
export declare namespace ClientHandlers {
  /**
   * The service is the `Handlers` themselves, read by each session when it opens (an empty object: no handlers).
   * Provide it with `layer(handlers)` or `layerNone`.
   *
   * @since 0.1.0
   */
  export interface Service extends Handlers {}
}

/**
 * Server log messages through Effect's logger, at their level, annotated with the server and the logger name.
 *
 * @since 0.1.0
 */
export const logToEffect: (message: LogMessage, origin: Origin) => Effect.Effect<void> = Logs.logToEffect

/**
 * The handlers, for `McpBridge.layer(config, { handlers })` or to compose by hand.
 *
 * @example
 * ```ts
 * const Handlers = ClientHandlers.layer({
 *   elicit: (params) => Effect.succeed({ action: "accept", content: { confirm: true } }),
 *   roots: { list: () => Effect.succeed([{ uri: "file:///workspace", name: "workspace" }]) }
 * })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (handlers: Handlers): Layer.Layer<ClientHandlers> => Layer.succeed(ClientHandlers, handlers)

/**
 * No handlers: servers are told of no client capability (their requests get "method not found"), and their log
 * messages go to Effect's logger.
 *
 * @since 0.1.0
 */
export const layerNone: Layer.Layer<ClientHandlers> = Layer.succeed(ClientHandlers, {})
