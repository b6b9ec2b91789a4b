/**
 * Who is calling: the identity that keeps pooled sessions (and, later, cached results) of one caller away from
 * another's. A `Context.Reference` with no identity by default; provide one per request, e.g. a tenant id or a hash
 * of the caller's token (never the token itself: it appears in stats and span attributes).
 *
 * @since 0.1.0
 */
import { Context } from "effect"

/**
 * The current caller's identity, or `undefined` for an anonymous caller.
 *
 * @example
 * ```ts
 * bridge.callTool("crm.get_account", { id }).pipe(Effect.provideService(CallerIdentity, "tenant-42"))
 * ```
 *
 * @since 0.1.0
 */
export const CallerIdentity = Context.Reference<string | undefined>("@mcp-bridge/core/CallerIdentity", {
  defaultValue: () => undefined
})
