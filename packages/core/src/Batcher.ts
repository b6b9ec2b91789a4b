/**
 * The batcher stage: identical in-flight calls that are safe to merge share one upstream call, and calls are grouped per server with bounded fan-out, built on Effect's `Request` / `RequestResolver`.
 *
 * @since 0.1.0
 */
import { Context, Layer } from "effect"
import type { Stage } from "./ToolCaller.ts"

/**
 * @since 0.1.0
 */
export class Batcher extends Context.Service<Batcher, Stage>()("@mcp-bridge/core/Batcher") {}

/**
 * @since 0.1.0
 */
export interface Options {}

/**
 * A pass-through stage.
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<Batcher> = Layer.succeed(Batcher, Batcher.of({ wrap: (next) => next }))

/**
 * @since 0.1.0
 */
export const layer = (_options: Options = {}): Layer.Layer<Batcher> => layerDisabled
