import { describe } from "@effect/vitest"
import { rateLimitStoreSuite, resultStoreSuite } from "@mcp-bridge/testing/StoreSuites"
import { RateLimitStore, ResultStore } from "../src/index.ts"

describe("RateLimitStore.layerMemory", () => rateLimitStoreSuite(RateLimitStore.layerMemory))
describe("ResultStore.layerMemory", () => resultStoreSuite(ResultStore.layerMemory()))
