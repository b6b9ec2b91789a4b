/**
 * What the bridge may do with calls to one tool: cache their results, coalesce identical calls, retry them, and with
 * which deadline and limits. Decided once per tool (the router keeps it with the tool's definition) from the
 * operator's policy (`bridge.tools.<tool>`, the server's `bridge.cache`) and, on a server whose annotations are
 * trusted (`trustAnnotations`), the tool's annotations. Annotations are hints the spec says not to trust from unknown
 * servers: alone, they never make a tool cacheable or retried on a server that is not trusted.
 *
 * A plain function over the resolved configuration: no Effect primitive.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"
import type { ResolvedServer } from "./BridgeConfig.ts"
import { cacheTtlOf, type ThrottleSettings } from "./BridgeConfigSchema.ts"

/**
 * The resolved policy of one tool. The stages read it from `CallRequest.policy`.
 *
 * @since 0.1.0
 */
export interface ToolPolicy {
  /** No side effects. */
  readonly readOnly: boolean
  /** Safe to repeat: read-only or idempotent. Such calls may be coalesced and retried. */
  readonly safe: boolean
  /** Results may be cached. */
  readonly cacheable: boolean
  /** TTL of cached results: `undefined` for the `ResultCache` layer's default. */
  readonly cacheTtl: Duration.Duration | undefined
  /** Cached results are shared across caller identities. */
  readonly shared: boolean
  /** Deadline of one call to the tool, when the policy sets one. */
  readonly timeout: Duration.Duration | undefined
  /** Limits of this tool on top of the server's. */
  readonly throttle: ThrottleSettings | undefined
}

/**
 * The annotations `resolve` reads from a tool's definition (a `Tool` from `tools/list` fits).
 *
 * @since 0.1.0
 */
export interface Annotated {
  readonly annotations?: {
    readonly readOnlyHint?: boolean | undefined
    readonly idempotentHint?: boolean | undefined
  } | undefined
}

/**
 * The policy for calls to `tool` on `server`. `definition` is the tool as the server listed it (for annotations).
 * Use it to see what the bridge will do with a tool, e.g. in a test of your configuration.
 *
 * @example
 * ```ts
 * const config = yield* BridgeConfig.decode({ mcpServers: { crm: { url, bridge: { tools: { get: { cache: "static" } } } } } })
 * ToolPolicy.resolve(config.servers.get("crm")!, "get").cacheable // true
 * ```
 *
 * @since 0.1.0
 */
export const resolve = (server: ResolvedServer, tool: string, definition?: Annotated): ToolPolicy => {
  const policy = server.tools.get(tool)
  const hints = server.trustAnnotations ? definition?.annotations : undefined
  const explicitTtl = policy?.cache === undefined ? undefined : cacheTtlOf(policy.cache)
  const readOnly = policy?.readOnly ?? (explicitTtl !== undefined || hints?.readOnlyHint === true)
  const idempotent = policy?.idempotent ?? hints?.idempotentHint === true
  let cacheable = false
  let cacheTtl: Duration.Duration | undefined
  if (server.cache.enabled && readOnly && policy?.cache !== false && policy?.cache !== "realtime") {
    if (explicitTtl !== undefined) {
      cacheable = true
      cacheTtl = explicitTtl
    } else if (server.cache.ttl === undefined || Duration.isGreaterThan(server.cache.ttl, Duration.zero)) {
      cacheable = true
      cacheTtl = server.cache.ttl
    }
  }
  return {
    readOnly,
    safe: readOnly || idempotent,
    cacheable,
    cacheTtl,
    shared: policy?.shared ?? false,
    timeout: policy?.timeout,
    throttle: policy?.throttle
  }
}
