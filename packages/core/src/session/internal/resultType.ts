/**
 * A 2026-07-28 result without `resultType` is a complete result (SEP-2322: a client MUST assume `"complete"` when the
 * field is absent). The SDK's 2026-07-28 codec rejects such a result, so a server that leaves the field out would
 * fail every call; here the transport of a session fills it in before the SDK decodes the answer.
 *
 * Only answers to requests sent with the 2026-07-28 envelope (`_meta["io.modelcontextprotocol/protocolVersion"]`)
 * are touched: the ids of those requests are remembered until their answer (a
 * request that never gets one is forgotten with its transport). A result that
 * says `input_required` is left alone.
 *
 * @internal
 */
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client"

const PROTOCOL_VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion"

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The id of a request that carries the 2026-07-28 envelope, else undefined. */
const modernRequestId = (message: JSONRPCMessage): string | number | undefined => {
  const candidate = message as { readonly method?: unknown; readonly id?: unknown; readonly params?: unknown }
  if (typeof candidate.method !== "string") return undefined
  if (typeof candidate.id !== "string" && typeof candidate.id !== "number") return undefined
  const meta = isObject(candidate.params) ? candidate.params._meta : undefined
  return isObject(meta) && PROTOCOL_VERSION_META_KEY in meta ? candidate.id : undefined
}

type OnMessage = NonNullable<Transport["onmessage"]>

/**
 * Makes `transport` (in place, and returns it) fill in `resultType: "complete"` in the answers to its 2026-07-28
 * requests that have none. @internal
 */
export const completeByDefault = <T extends Transport>(transport: T): T => {
  const pending = new Set<string | number>()
  const patch = (message: JSONRPCMessage): JSONRPCMessage => {
    const response = message as { readonly id?: unknown; readonly result?: unknown; readonly error?: unknown }
    if (typeof response.id !== "string" && typeof response.id !== "number") return message
    if (!("result" in response) && !("error" in response)) return message
    if (!pending.delete(response.id)) return message
    if (!isObject(response.result) || "resultType" in response.result) return message
    return { ...message, result: { ...response.result, resultType: "complete" } } as JSONRPCMessage
  }
  const send = transport.send.bind(transport)
  transport.send = (message, options) => {
    const id = modernRequestId(message)
    if (id !== undefined) pending.add(id)
    return send(message, options)
  }
  // The SDK chains handlers (it reads `onmessage` and sets its own that calls the previous one): each read returns a
  // wrapper of the handler set at that time, and patching is idempotent (an id is patched once).
  let handler: OnMessage | undefined = transport.onmessage
  Object.defineProperty(transport, "onmessage", {
    configurable: true,
    enumerable: true,
    get: (): OnMessage | undefined => {
      const current = handler
      return current === undefined ? undefined : (message, extra) => current(patch(message), extra)
    },
    set: (value: OnMessage | undefined) => {
      handler = value
    }
  })
  return transport
}
