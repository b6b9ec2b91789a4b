/**
 * @since 0.1.0
 */
export * as FaultServer from "./FaultServer.ts"

/**
 * A local OAuth authorization server and a protected MCP server on 127.0.0.1, for tests of OAuth flows.
 *
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
