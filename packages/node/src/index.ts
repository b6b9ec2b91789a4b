/**
 * @since 0.1.0
 */
export * as NodeBridge from "./NodeBridge.ts"

/**
 * @since 0.1.0
 */
export { createBridge } from "./NodeBridge.ts"

/**
 * @since 0.1.0
 */
export * as NodeTransport from "./NodeTransport.ts"

/**
 * @since 0.1.0
 */
export * as NodeTelemetry from "./NodeTelemetry.ts"

/**
 * @since 0.1.0
 */
export * as NodeAuth from "./NodeAuth.ts"

/**
 * @since 0.1.0
 */
export * as NodeOtel from "./NodeOtel.ts"

/**
 * The gateway: the bridge served as one MCP server (Streamable HTTP at `/mcp`, or stdio).
 *
 * @since 0.1.0
 */
export * as Gateway from "./Gateway.ts"

/**
 * Serves the gateway from a Promise program: `{ url, port, close }`.
 *
 * @since 0.1.0
 */
export { serveGateway } from "./Gateway.ts"

/**
 * The live dashboard page of a bridge: servers, tools, latency, cache, pool and alerts, as a Node request handler.
 *
 * @since 0.1.0
 */
export * as Dashboard from "./Dashboard.ts"

/**
 * The stores replicas share through Redis (result cache, rate limits, circuits of remote servers), for a bridge built
 * with `McpBridge.layer`; `layerReplicas` is what `mcp-bridge serve --redis` runs with.
 *
 * @since 0.1.0
 */
export * as RedisStores from "./replica/RedisStores.ts"
