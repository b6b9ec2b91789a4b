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
