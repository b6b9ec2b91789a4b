import { describe } from "@effect/vitest"
import { RateLimitStore, ResultStore } from "../src/index.ts"
import { rateLimitStoreSuite, resultStoreSuite } from "./storeSuites.ts"

describe("RateLimitStore.layerMemory", () => rateLimitStoreSuite(RateLimitStore.layerMemory))
describe("ResultStore.layerMemory", () => resultStoreSuite(ResultStore.layerMemory()))
