/**
 * @since 0.1.0
 */
export * as BridgeConfig from "./BridgeConfig.ts"

/**
 * @since 0.1.0
 */
export * as BridgeClient from "./BridgeClient.ts"

/**
 * @since 0.1.0
 */
export { createBridge } from "./BridgeClient.ts"

/**
 * @since 0.1.0
 */
export { CallerIdentity } from "./CallerIdentity.ts"

/**
 * @since 0.1.0
 */
export * as ConnectionPool from "./ConnectionPool.ts"

/**
 * @since 0.1.0
 */
export * as McpAuth from "./McpAuth.ts"

/**
 * @since 0.1.0
 */
export * as McpBridge from "./McpBridge.ts"

/**
 * @since 0.1.0
 */
export * as McpSession from "./McpSession.ts"

/**
 * @since 0.1.0
 */
export * as McpTransport from "./McpTransport.ts"

/**
 * @since 0.1.0
 */
export * as ToolCaller from "./ToolCaller.ts"

/**
 * @since 0.1.0
 */
export * as Batcher from "./Batcher.ts"

/**
 * @since 0.1.0
 */
export * as Resilience from "./Resilience.ts"

/**
 * @since 0.1.0
 */
export * as ResultCache from "./ResultCache.ts"

/**
 * @since 0.1.0
 */
export * as Telemetry from "./Telemetry.ts"

/**
 * @since 0.1.0
 */
export * as Throttler from "./Throttler.ts"
