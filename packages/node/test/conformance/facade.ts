/**
 * The one place the conformance client takes the Promise facade from.
 */
export { createBridge } from "@mcp-bridge/node"
