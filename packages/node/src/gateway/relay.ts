/**
 * What an upstream server asks during a call (elicitation, sampling, roots) and its log messages, relayed to the
 * downstream request that caused the call: the bridge's `ClientHandlers` answer from a registry of the gateway's
 * `tools/call` requests in flight, each entered for its duration under (caller identity, upstream server, upstream
 * tool) with what its SDK request context can send to its own client (related to that request, so on the right
 * stream).
 *
 * A 2026-07-28 downstream request has no server→client channel: its entry's target parks what is asked and answers
 * the client with `input_required` rounds of the gateway's own (see `bridging.ts`).
 *
 * A handler looks up the entries matching its `Origin` (identity and server; and tool when the bridge knows it): the
 * oldest one answers (several match only when one client, or several under one identity, run the same tool of the
 * same server at once, or when a 2025-era upstream session carries calls of different tools; calls of different
 * callers on one 2025-era upstream session match none, since its request names no call). No entry, or a
 * downstream client that did not declare the capability (elicitation form or URL mode, sampling, roots), refuses the
 * upstream with an error naming why; such a client is never sent the request. A log message goes to the matching
 * request's client (the SDK drops it below the level that client set with `logging/setLevel`), else to Effect's logger.
 *
 * @internal
 */
import { ClientHandlers } from "@mcp-bridge/core"
import type {
  ClientCapabilities,
  CreateMessageResult,
  ElicitResult,
  ListRootsResult
} from "@modelcontextprotocol/client"
import { Effect } from "effect"

/** What one downstream `tools/call` request can send to its client. @internal */
export interface Target {
  /** The capabilities the downstream client declared; `undefined` when it cannot be asked anything on this request. */
  readonly capabilities: ClientCapabilities | undefined
  readonly elicit: (params: ClientHandlers.ElicitParams, signal: AbortSignal) => Promise<ElicitResult>
  readonly sample: (params: ClientHandlers.SampleParams, signal: AbortSignal) => Promise<CreateMessageResult>
  readonly listRoots: (signal: AbortSignal) => Promise<ListRootsResult>
  readonly log: (message: ClientHandlers.LogMessage) => Promise<void>
}

/** One downstream `tools/call` in flight. @internal */
export interface Entry {
  readonly identity: string | undefined
  readonly server: string
  readonly tool: string
  readonly target: Target
}

/** The registry and the handlers that answer from it. @internal */
export interface Relay {
  /** Enters a downstream call for its duration: call the returned function when it ends. */
  readonly register: (entry: Entry) => () => void
  /** The bridge's handlers (elicitation in both modes, sampling, roots, logs). */
  readonly handlers: ClientHandlers.Handlers
}

/** The upstream asked for something the relay refuses (no downstream request to ask, or one lacking the capability). */
class Refused extends Error {
  override readonly name = "RelayRefused"
}

const describe = (origin: ClientHandlers.Origin) =>
  `"${origin.server}"${origin.tool === undefined ? "" : ` (tool "${origin.tool}")`}`

/** A new relay with an empty registry. @internal */
export const make = (): Relay => {
  // Insertion order: the first match is the oldest call.
  const entries = new Set<Entry>()
  const find = (origin: ClientHandlers.Origin): Entry | undefined => {
    for (const entry of entries) {
      if (
        entry.identity === origin.identity && entry.server === origin.server &&
        (origin.tool === undefined || entry.tool === origin.tool)
      ) return entry
    }
    return undefined
  }
  const relay = <A>(
    what: string,
    origin: ClientHandlers.Origin,
    allowed: (capabilities: ClientCapabilities) => boolean,
    send: (target: Target, signal: AbortSignal) => Promise<A>
  ): Effect.Effect<A, Refused> => {
    const entry = find(origin)
    if (entry === undefined) {
      // No call, or calls of several callers on one 2025-era upstream session (its request names none of them).
      return Effect.fail(
        new Refused(`${describe(origin)} asked for ${what}, and no downstream call in flight matches it (caller, tool)`)
      )
    }
    const capabilities = entry.target.capabilities
    if (capabilities === undefined || !allowed(capabilities)) {
      return Effect.fail(
        new Refused(`${describe(origin)} asked for ${what}, which the downstream client did not declare it supports`)
      )
    }
    return Effect.tryPromise({
      try: (signal) => send(entry.target, signal),
      catch: (error) => new Refused(error instanceof Error ? error.message : String(error))
    })
  }
  const handlers: ClientHandlers.Handlers = {
    elicit: (params, origin) =>
      params.mode === "url"
        ? relay(
          "a URL-mode elicitation",
          origin,
          (c) => c.elicitation?.url !== undefined,
          (t, s) => t.elicit(params, s)
        )
        : relay(
          "an elicitation",
          origin,
          // A bare `elicitation: {}` is form support (the rule before modes).
          (c) => c.elicitation !== undefined && (c.elicitation.form !== undefined || c.elicitation.url === undefined),
          (t, s) => t.elicit(params, s)
        ),
    elicitUrl: true,
    sample: (params, origin) =>
      relay("sampling", origin, (c) => c.sampling !== undefined, (t, s) => t.sample(params, s)),
    roots: {
      list: (origin) =>
        relay("roots", origin, (c) => c.roots !== undefined, (t, s) => t.listRoots(s)).pipe(
          Effect.map((result) => result.roots)
        )
    },
    log: (message, origin) => {
      const entry = find(origin)
      if (entry === undefined) return ClientHandlers.logToEffect(message, origin)
      return Effect.promise(() => entry.target.log(message).catch(() => undefined))
    }
  }
  return {
    register: (entry) => {
      entries.add(entry)
      return () => void entries.delete(entry)
    },
    handlers
  }
}
