/**
 * The call pipeline: one ordered list of named stages over the bottom of the pipeline (a leased session's
 * `tools/call`). Every stage is a `ToolCaller.Stage`, which wraps the caller below it.
 *
 * The built-in stages, top to bottom: `telemetry`, `cache`, `coalescing`, `resilience`, `throttle` (resilience sits
 * above the throttler, so that every attempt, retries included, takes its own rate-limit token). A stage is switched
 * off one way: its `layerDisabled`, a pass-through (`McpBridge.layer(config, { cache: false })` provides it). Users
 * insert stages of their own (access control, a quota, an audit log) at a named place with
 * `McpBridge.layer(config, { stages: [...] })`; a stage of theirs refuses a call with `McpBridgeError` reason
 * `Rejected` (`Pipeline.reject`).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { type BridgeConfigError, invalid } from "../errors/BridgeConfigError.ts"
import { McpBridgeError, Rejected } from "../errors/McpBridgeError.ts"
import type { CallRequest, Stage, ToolCaller } from "./ToolCaller.ts"

/**
 * The names of the built-in stages, top to bottom.
 *
 * @since 0.1.0
 */
export const builtInStages = ["telemetry", "cache", "coalescing", "resilience", "throttle"] as const

/**
 * The name of a built-in stage.
 *
 * @since 0.1.0
 */
export type BuiltInStage = typeof builtInStages[number]

/**
 * A stage with its name, as it stands in the pipeline.
 *
 * @since 0.1.0
 */
export interface NamedStage<E = never> {
  readonly name: string
  readonly stage: Stage<E>
}

/**
 * A stage of the user's and its place: directly above (`before`) or below (`after`) a named stage, built-in or
 * inserted earlier in the same list. Without either it goes right below `telemetry` (so its refusals are counted
 * and traced, and nothing below runs for a call it refuses).
 *
 * @example
 * ```ts
 * const acl: Pipeline.Insertion = {
 *   name: "acl",
 *   before: "cache",
 *   stage: {
 *     wrap: (next) => (request) =>
 *       request.tool.startsWith("admin_") ? Pipeline.reject(request, "acl", "admin tools are off") : next(request)
 *   }
 * }
 * McpBridge.layer(config, { stages: [acl] })
 * ```
 *
 * @since 0.1.0
 */
export interface Insertion extends NamedStage<McpBridgeError> {
  readonly before?: string | undefined
  readonly after?: string | undefined
}

/**
 * Places the user's stages among the built-in ones. Fails with `BridgeConfigError` (path `stages.<i>`) when a place
 * is unknown, a name is taken, or both `before` and `after` are given.
 *
 * @since 0.1.0
 */
export const arrange = (
  base: ReadonlyArray<NamedStage<any>>,
  insertions: ReadonlyArray<Insertion>
): Effect.Effect<ReadonlyArray<NamedStage<any>>, BridgeConfigError> =>
  Effect.suspend(() => {
    const stages = [...base]
    for (const [i, insertion] of insertions.entries()) {
      const fail = (detail: string) => Effect.fail(invalid(["stages", String(i)], detail))
      if (typeof insertion.name !== "string" || insertion.name === "") return fail("a stage needs a name")
      if (typeof insertion.stage?.wrap !== "function") return fail(`"${insertion.name}" has no wrap function`)
      if (stages.some((stage) => stage.name === insertion.name)) {
        return fail(`a stage named "${insertion.name}" is already in the pipeline`)
      }
      if (insertion.before !== undefined && insertion.after !== undefined) {
        return fail(`"${insertion.name}": give before or after, not both`)
      }
      const anchor = insertion.before ?? insertion.after ?? "telemetry"
      const index = stages.findIndex((stage) => stage.name === anchor)
      if (index === -1) {
        return fail(
          `no stage "${anchor}" to place "${insertion.name}" ${insertion.before !== undefined ? "before" : "after"}; ` +
            `the pipeline has ${stages.map((stage) => stage.name).join(", ")}`
        )
      }
      stages.splice(insertion.before !== undefined ? index : index + 1, 0, {
        name: insertion.name,
        stage: insertion.stage
      })
    }
    return Effect.succeed(stages)
  })

/**
 * The pipeline's caller: each stage wraps the one below it, the last one wraps `bottom`.
 *
 * @since 0.1.0
 */
export const compose = <E>(stages: ReadonlyArray<NamedStage<any>>, bottom: ToolCaller<E>): ToolCaller<E> =>
  stages.reduceRight<ToolCaller<any>>((next, { stage }) => stage.wrap(next), bottom)

/**
 * Refuses a call from a stage of the user's: fails with `McpBridgeError` reason `Rejected`, naming the stage.
 *
 * @since 0.1.0
 */
export const reject = (request: CallRequest, stage: string, detail: string): Effect.Effect<never, McpBridgeError> =>
  Effect.fail(
    new McpBridgeError({ reason: new Rejected({ server: request.server.name, tool: request.tool, stage, detail }) })
  )
