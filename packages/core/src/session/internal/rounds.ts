/**
 * Requests of a caller that answers a 2026-07-28 server's `input_required` results itself (`McpSession.ClientRounds`):
 * the caller's client capabilities go in the request's `_meta` (keys given there win over the SDK's own envelope),
 * its `inputResponses` and `requestState` in the params as received, and the SDK is told to hand an `input_required`
 * result back instead of fulfilling it. On a 2025-era session nothing changes.
 *
 * @internal
 */
import type { ClientCapabilities, InputResponses } from "@modelcontextprotocol/client"
import { CLIENT_CAPABILITIES_META_KEY } from "@modelcontextprotocol/client"

/** `McpSession.ClientRounds`, as this module reads it. @internal */
export interface ClientRounds {
  readonly clientCapabilities: ClientCapabilities
  readonly inputResponses?: InputResponses | undefined
  readonly requestState?: string | undefined
}

/** The params of a request with `rounds` (unchanged when there are none, or on a 2025-era session). @internal */
export const params = <const P extends object>(
  era: "legacy" | "modern",
  rounds: ClientRounds | undefined,
  base: P
): P => {
  if (era !== "modern" || rounds === undefined) return base
  const meta = (base as { readonly _meta?: Readonly<Record<string, unknown>> | undefined })._meta
  return {
    ...base,
    _meta: { ...meta, [CLIENT_CAPABILITIES_META_KEY]: rounds.clientCapabilities },
    ...(rounds.inputResponses === undefined ? {} : { inputResponses: rounds.inputResponses }),
    ...(rounds.requestState === undefined ? {} : { requestState: rounds.requestState })
  }
}

/** True when an `input_required` result of the request goes back to its caller. @internal */
export const passesThrough = (era: "legacy" | "modern", rounds: ClientRounds | undefined): boolean =>
  era === "modern" && rounds !== undefined
