/**
 * The alert rules (error rate, latency, cache hit rate, saturated pool, open circuit) as one engine over the metrics
 * snapshot. Use `rulesFiring` on `McpBridge.metrics()` for reports; configure the scheduled rules through
 * `Telemetry.Options.alerts`.
 *
 * @since 0.1.0
 */
export * as AlertRules from "./telemetry/AlertRules.ts"

/**
 * The pipeline stage that coalesces identical in-flight calls that are safe to repeat. On by default in
 * `McpBridge.layer`.
 *
 * @since 0.1.0
 */
export * as Coalescing from "./pipeline/Coalescing.ts"

/**
 * The runtime-neutral Promise facade (`BridgeClient.make`: HTTP, SSE and in-memory servers). Node users want
 * `createBridge` from `@mcp-bridge/node`, which adds stdio.
 *
 * @since 0.1.0
 */
export * as BridgeClient from "./bridge/BridgeClient.ts"

/**
 * Each server's state as a person reads it (connected, failing with its reason, circuit open, rate-limited), its
 * transport and protocol version, and the recent failures, scrubbed of secrets: `BridgeStatus.read`.
 *
 * @since 0.1.0
 */
export * as BridgeStatus from "./bridge/BridgeStatus.ts"

/**
 * The resolved configuration and the service that carries it: `decode`, `load` (object or JSON file) and `layer`.
 *
 * @since 0.1.0
 */
export * as BridgeConfig from "./config/BridgeConfig.ts"

/**
 * The error a configuration is refused with: a tagged reason naming the file, the server and the field.
 *
 * @since 0.1.0
 */
export * as BridgeConfigError from "./errors/BridgeConfigError.ts"

/**
 * The schemas of a `{ mcpServers, bridge }` configuration: validate or extend a configuration of your own.
 *
 * @since 0.1.0
 */
export * as BridgeConfigSchema from "./config/BridgeConfigSchema.ts"

/**
 * Who is calling: provide it per request so that pooled sessions and cached results of one caller never serve
 * another.
 *
 * @since 0.1.0
 */
export { CallerIdentity } from "./auth/CallerIdentity.ts"

/**
 * What the bridge answers when a server asks its client for something: elicitation, sampling, roots, and what it
 * does with the server's log messages.
 *
 * @since 0.1.0
 */
export * as ClientHandlers from "./session/ClientHandlers.ts"

/**
 * Sessions reused, bounded, health-checked and replaced when they die: the bottom of the pipeline.
 *
 * @since 0.1.0
 */
export * as ConnectionPool from "./pool/ConnectionPool.ts"

/**
 * The error of the connection pool (`PoolTimeout`).
 *
 * @since 0.1.0
 */
export * as ConnectionPoolError from "./errors/ConnectionPoolError.ts"

/**
 * OAuth 2.1 for servers with an `auth` section: discovery, registration, PKCE, client credentials, refresh, step-up;
 * tokens per server and caller identity in a pluggable store.
 *
 * @since 0.1.0
 */
export * as McpAuth from "./auth/McpAuth.ts"

/**
 * The errors of OAuth (interaction missing, refused or timed out, token store failed).
 *
 * @since 0.1.0
 */
export * as McpAuthError from "./errors/McpAuthError.ts"

/**
 * The bridge: list and call the tools of many servers by `server.tool`, with every stage composed by `layer`.
 *
 * @since 0.1.0
 */
export * as McpBridge from "./bridge/McpBridge.ts"

/**
 * The error of a call the bridge refused or ended before it reached a server: `UnknownServer`, `UnknownTool`,
 * `InvalidCall`, `BridgeClosed`, `Aborted`.
 *
 * @since 0.1.0
 */
export * as McpBridgeError from "./errors/McpBridgeError.ts"

/**
 * One MCP session (an SDK client over one transport) as a scoped resource: for code below the pool.
 *
 * @since 0.1.0
 */
export * as McpSession from "./session/McpSession.ts"

/**
 * The failures of a session: `ConnectFailed`, `Timeout`, `Closed`, `Protocol`.
 *
 * @since 0.1.0
 */
export * as McpSessionError from "./errors/McpSessionError.ts"

/**
 * The wire under the sessions (Streamable HTTP, SSE, in-memory): swap it to reach servers of your own.
 *
 * @since 0.1.0
 */
export * as McpTransport from "./session/McpTransport.ts"

/**
 * Where the stages record their metrics, into the bridge's own registry; provided by `Telemetry.layer`.
 *
 * @since 0.1.0
 */
export * as MetricsRecorder from "./telemetry/MetricsRecorder.ts"

/**
 * The per-server metrics view (`McpBridge.metrics()`): calls, success rate, percentiles, cache, pool, throttle.
 *
 * @since 0.1.0
 */
export * as MetricsSnapshot from "./telemetry/MetricsSnapshot.ts"

/**
 * The call pipeline: the ordered list of named stages, and where a stage of your own goes.
 *
 * @since 0.1.0
 */
export * as Pipeline from "./pipeline/Pipeline.ts"

/**
 * One renewal of a caller's tokens at a time, per server and identity, across the processes sharing a `TokenStore`.
 *
 * @since 0.1.0
 */
export * as RefreshLock from "./auth/RefreshLock.ts"

/**
 * The pipeline stage of retries (safe calls, transient failures, a budget) and a circuit breaker per server.
 *
 * @since 0.1.0
 */
export * as Resilience from "./pipeline/Resilience.ts"

/**
 * The pipeline stage that answers repeat calls to read-only tools from memory; invalidation and stats.
 *
 * @since 0.1.0
 */
export * as ResultCache from "./pipeline/ResultCache.ts"

/**
 * Where cached tool results live: get and set with a TTL, invalidation by server and tool, a fill lease across
 * replicas; `layerMemory` is the embedded default.
 *
 * @since 0.1.0
 */
export * as ResultStore from "./stores/ResultStore.ts"

/**
 * Where rate-limit windows live: the sliding log as one atomic "admit, or tell me when" operation.
 *
 * @since 0.1.0
 */
export * as RateLimitStore from "./stores/RateLimitStore.ts"

/**
 * The circuit store shared by replicas, used for remote (HTTP, SSE) servers only.
 *
 * @since 0.1.0
 */
export * as SharedCircuitStore from "./stores/SharedCircuitStore.ts"

/**
 * The pipeline stage of metrics, spans and alert rules for every call.
 *
 * @since 0.1.0
 */
export * as Telemetry from "./pipeline/Telemetry.ts"

/**
 * Export of the bridge's telemetry: OTLP from the `OTEL_*` environment, Prometheus names, metric definitions.
 *
 * @since 0.1.0
 */
export * as TelemetryExport from "./telemetry/TelemetryExport.ts"

/**
 * The pipeline stage of rate and in-flight limits per server and per tool.
 *
 * @since 0.1.0
 */
export * as Throttler from "./pipeline/Throttler.ts"

/**
 * Where OAuth tokens and registered clients are kept, over any `KeyValueStore`.
 *
 * @since 0.1.0
 */
export * as TokenStore from "./auth/TokenStore.ts"

/**
 * The pipeline's contract: `CallRequest`, `ToolCaller`, `Stage`. For writing a stage of your own.
 *
 * @since 0.1.0
 */
export * as ToolCaller from "./pipeline/ToolCaller.ts"

/**
 * What the bridge may do with calls to a tool (cache, coalesce, retry), resolved from the operator's policy.
 *
 * @since 0.1.0
 */
export * as ToolPolicy from "./config/ToolPolicy.ts"
