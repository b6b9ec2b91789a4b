/**
 * The one place the conformance client takes the Promise facade from: `createBridge` lives in `@mcp-bridge/core`
 * today and moves to `@mcp-bridge/node` with the same shape; only this import changes then.
 */
export { createBridge } from "@mcp-bridge/core"
