/**
 * The stdio era probe without a clock: `server/discover` is followed on the wire by a `ping`, which every era answers
 * before `initialize`. A stdio server reads its input in order, so a server that answers the ping and not the probe
 * ignores the probe: it is legacy, known at once, however slow the machine. A second ping after the first answer
 * gives an asynchronous probe handler one more measured round trip before that verdict.
 *
 * The transport is wrapped, not changed: a `Proxy` keeps the SDK's view of it (prototype, fields, handlers) and only
 * sends the pings and swallows their answers; the probe's own answer passes through untouched.
 *
 * @internal
 */
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client"

/** @internal */
export interface ProbeRace {
  /** The transport to connect: the original, with the pings beside the probe. */
  readonly transport: Transport
  /** True once the probe had its answer (the server's, or legacy by the pings) before its window ended. */
  readonly answered: () => boolean
}

const isProbe = (message: JSONRPCMessage): message is JSONRPCMessage & { readonly id: string } =>
  "method" in message && message.method === "server/discover" && "id" in message &&
  typeof message.id === "string" && message.id.startsWith("server-discover-probe-")

const idOf = (message: JSONRPCMessage): unknown => "id" in message && !("method" in message) ? message.id : undefined

/** @internal */
export const wrap = (transport: Transport): ProbeRace => {
  let probeId: string | undefined
  let answered = false
  // Our ping ids: the first one, then the second sent once the first is answered.
  const pings = new Map<string, "first" | "second">()
  let pingCount = 0
  let deliver: Transport["onmessage"] = transport.onmessage
  const send: Transport["send"] = (message, options) => transport.send(message, options)
  // The ping carries the probe's own `params` (its 2026-07-28 `_meta` envelope): a dual-era server that answered the
  // probe keeps serving this connection on 2026-07-28, and a legacy server ignores the envelope.
  let params: Readonly<Record<string, unknown>> | undefined
  const ping = (which: "first" | "second") => {
    const id = `mcp-bridge-probe-ping-${++pingCount}`
    pings.set(id, which)
    void send({ jsonrpc: "2.0", id, method: "ping", ...(params === undefined ? {} : { params }) }).catch(() =>
      undefined
    )
  }
  transport.onmessage = (message, extra) => {
    const id = idOf(message)
    if (typeof id === "string" && pings.has(id)) {
      const which = pings.get(id)
      pings.delete(id)
      if (probeId === undefined || answered) return
      if (which === "first") return ping("second")
      // Both pings answered, the probe not: the server ignores `server/discover`.
      answered = true
      return deliver?.({
        jsonrpc: "2.0",
        id: probeId,
        error: { code: -32601, message: "server/discover unanswered: the server answered ping before it" }
      }, extra)
    }
    if (id !== undefined && id === probeId) {
      // A late answer after the verdict by the pings: nobody waits for it.
      if (answered) return
      answered = true
    }
    deliver?.(message, extra)
  }
  const proxy = new Proxy(transport, {
    get(target, property) {
      if (property === "onmessage") return deliver
      if (property === "send") {
        return (message: JSONRPCMessage, options?: Parameters<Transport["send"]>[1]) => {
          if (!isProbe(message)) return send(message, options)
          probeId = message.id
          params = "params" in message ? message.params : undefined
          answered = false
          return send(message, options).then(() => ping("first"))
        }
      }
      const value = Reflect.get(target, property, target)
      // Methods run on the transport itself, whose own `onmessage` is the filter above.
      return typeof value === "function" && !Object.prototype.hasOwnProperty.call(target, property)
        ? value.bind(target)
        : value
    },
    set(target, property, value) {
      if (property === "onmessage") {
        deliver = value
        return true
      }
      return Reflect.set(target, property, value, target)
    }
  })
  return { transport: proxy, answered: () => answered }
}
