/**
 * The glue between a session's SDK `Client` and the application's `ClientHandlers`: the capabilities to advertise
 * (only for the handlers there are), the server→client request handlers of 2025-era sessions, the fulfilment of
 * 2026-07-28 `input_required` results, and server log messages.
 *
 * @internal
 */
import type {
  Client,
  ClientCapabilities,
  ElicitResult,
  InputRequests,
  InputResponses,
  LoggingLevel
} from "@modelcontextprotocol/client"
import { SdkError, SdkErrorCode } from "@modelcontextprotocol/client"
import { Effect } from "effect"
import type { ClientHandlers, Origin } from "../ClientHandlers.ts"
import { logToEffect } from "./logs.ts"

/** Runs a handler's effect for the SDK (with the session's context). @internal */
export type Run = <A>(effect: Effect.Effect<A, unknown>) => Promise<A>

/** The capabilities a client with these handlers advertises. @internal */
export const capabilitiesOf = (handlers: ClientHandlers.Service): ClientCapabilities => ({
  ...(handlers.elicit === undefined
    ? {}
    : { elicitation: { form: { applyDefaults: true }, ...(handlers.elicitUrl === true ? { url: {} } : {}) } }),
  ...(handlers.sample === undefined ? {} : { sampling: {} }),
  ...(handlers.roots === undefined ? {} : { roots: { listChanged: handlers.roots.changes !== undefined } })
})

/**
 * Registers the 2025-era request handlers and the log handler on `client`. `asked` is told of each request the
 * server sends (the calls in flight may now depend on the answer). @internal
 */
export const register = (
  client: Client,
  handlers: ClientHandlers.Service,
  origin: () => Origin,
  run: Run,
  asked: () => void
): void => {
  const elicit = handlers.elicit
  if (elicit !== undefined) {
    client.setRequestHandler("elicitation/create", (request) => {
      asked()
      return run(elicit(request.params, origin()))
    })
  }
  const sample = handlers.sample
  if (sample !== undefined) {
    client.setRequestHandler("sampling/createMessage", (request) => {
      asked()
      return run(sample(request.params, origin()))
    })
  }
  const roots = handlers.roots
  if (roots !== undefined) {
    client.setRequestHandler("roots/list", () => {
      asked()
      return run(Effect.map(roots.list(origin()), (list) => ({ roots: [...list] })))
    })
  }
  const log = handlers.log ?? logToEffect
  client.setNotificationHandler("notifications/message", (notification) => {
    void run(log(notification.params, origin())).catch(() => undefined)
  })
}

/** Answers each embedded request of an `input_required` result with the handlers. @internal */
export const fulfil = (
  requests: InputRequests,
  handlers: ClientHandlers.Service,
  origin: Origin,
  run: Run,
  bound: { readonly signal: AbortSignal; readonly timeoutMillis: number }
): Promise<InputResponses> =>
  new Promise<InputResponses>((resolve, reject) => {
    // The handlers (a user answering a form) take from the call's time, and stop with it.
    const timer = setTimeout(
      () => reject(new SdkError(SdkErrorCode.RequestTimeout, "Request timed out while the client answered the server")),
      bound.timeoutMillis
    )
    const onAbort = () => reject(bound.signal.reason)
    bound.signal.addEventListener("abort", onAbort, { once: true })
    fulfilAll(requests, handlers, origin, run).then(resolve, reject).finally(() => {
      clearTimeout(timer)
      bound.signal.removeEventListener("abort", onAbort)
    })
  })

const fulfilAll = async (
  requests: InputRequests,
  handlers: ClientHandlers.Service,
  origin: Origin,
  run: Run
): Promise<InputResponses> => {
  const responses: InputResponses = {}
  for (const [key, request] of Object.entries(requests)) {
    switch (request.method) {
      case "elicitation/create": {
        if (handlers.elicit === undefined) throw new Error("the server asked for elicitation, and no handler is given")
        const params = request.params
        if (params.mode === "url" && handlers.elicitUrl !== true) {
          throw new Error("the server asked for a URL-mode elicitation, and the client supports form mode only")
        }
        const result = await answer("elicitation/create", run, handlers.elicit(params, origin))
        if (!isElicitResult(result)) {
          throw new Error("the elicitation handler answered no { action: \"accept\" | \"decline\" | \"cancel\" }")
        }
        if (params.mode !== "url" && result.action === "accept" && result.content !== undefined) {
          const content = structuredClone(result.content)
          applyDefaults(params.requestedSchema, content)
          responses[key] = { ...result, content }
        } else {
          responses[key] = result
        }
        break
      }
      case "sampling/createMessage": {
        if (handlers.sample === undefined) throw new Error("the server asked for sampling, and no handler is given")
        responses[key] = await answer("sampling/createMessage", run, handlers.sample(request.params, origin))
        break
      }
      case "roots/list": {
        const roots = handlers.roots
        if (roots === undefined) throw new Error("the server asked for roots, and no handler is given")
        responses[key] = { roots: [...await answer("roots/list", run, roots.list(origin))] }
        break
      }
    }
  }
  return responses
}

const isElicitResult = (value: unknown): value is ElicitResult =>
  typeof value === "object" && value !== null &&
  ["accept", "decline", "cancel"].includes((value as { readonly action?: unknown }).action as string)

/**
 * SEP-1034: the schema's `default`s fill what an accepted form left out, as the SDK does for 2025-era requests
 * (`elicitation.form.applyDefaults`; its helper is not exported), nested objects and `anyOf`/`oneOf` branches too.
 */
const applyDefaults = (schema: unknown, data: unknown): void => {
  if (typeof schema !== "object" || schema === null || typeof data !== "object" || data === null) return
  const s = schema as {
    readonly type?: unknown
    readonly properties?: Readonly<Record<string, unknown>>
    readonly anyOf?: unknown
    readonly oneOf?: unknown
  }
  if (s.type === "object" && typeof s.properties === "object" && s.properties !== null) {
    const object = data as Record<string, unknown>
    for (const [key, property] of Object.entries(s.properties)) {
      if (object[key] === undefined && typeof property === "object" && property !== null && "default" in property) {
        object[key] = (property as { readonly default: unknown }).default
      }
      if (object[key] !== undefined) applyDefaults(property, object[key])
    }
  }
  for (const branches of [s.anyOf, s.oneOf]) {
    if (Array.isArray(branches)) { for (const branch of branches) applyDefaults(branch, data) }
  }
}

/** A handler of the application failed answering an embedded request (`McpSessionError` reason `HandlerFailed`). @internal */
export class HandlerFailure extends Error {
  readonly method: string
  constructor(method: string, cause: unknown) {
    super(
      cause instanceof Error ? cause.message : typeof cause === "string" ? cause : JSON.stringify(cause) ?? "failed",
      {
        cause
      }
    )
    this.method = method
  }
}

const answer = <A>(method: string, run: Run, effect: Effect.Effect<A, unknown>): Promise<A> =>
  run(effect).catch((cause: unknown) => {
    throw new HandlerFailure(method, cause)
  })

/** The levels, least severe first (RFC 5424 order, as MCP uses them). @internal */
export const logLevels: ReadonlyArray<LoggingLevel> = [
  "debug",
  "info",
  "notice",
  "warning",
  "error",
  "critical",
  "alert",
  "emergency"
]
