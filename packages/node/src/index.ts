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
 * @since 0.1.0
 */
export * as Gateway from "./Gateway.ts"

/**
 * @since 0.1.0
 */
export { serveGateway } from "./Gateway.ts"
