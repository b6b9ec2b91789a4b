/**
 * The fixture server of the official MCP conformance suite's server scenarios (the tools, resources and prompts they
 * call by name), over Streamable HTTP on 127.0.0.1 in both protocol eras.
 *
 * @since 0.1.0
 */
export * as ConformanceServer from "./ConformanceServer.ts"

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
 * A `redis-server` of a test's own on a free loopback port, with the faults tests inject, and `MONITOR`.
 *
 * @since 0.1.0
 */
export * as TestRedis from "./TestRedis.ts"

/**
 * @since 0.1.0
 */
export * as TestServer from "./TestServer.ts"

/**
 * @since 0.1.0
 */
export * as TestTracer from "./TestTracer.ts"
