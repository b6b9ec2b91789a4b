/**
 * @since 0.1.0
 */
export * as TestAuthServer from "./TestAuthServer.ts"

/**
 * @since 0.1.0
 */
export * as TestBridge from "./TestBridge.ts"

/**
 * @since 0.1.0
 */
export * as TestServer from "./TestServer.ts"

/**
 * @since 0.1.0
 */
export * as TestTracer from "./TestTracer.ts"
