import { assert, describe, it } from "@effect/vitest"
import { TestTracer } from "@mcp-bridge/testing"
import { Effect, Tracer } from "effect"

describe("TestTracer", () => {
  it.effect("make: records every span, with its parent, in order", () =>
    Effect.gen(function*() {
      const { spans, tracer } = TestTracer.make()
      yield* Effect.void.pipe(
        Effect.withSpan("child"),
        Effect.withSpan("parent"),
        Effect.provideService(Tracer.Tracer, tracer)
      )
      assert.deepStrictEqual(spans.map((s) => s.name), ["parent", "child"])
      const [parent, child] = spans
      assert.isTrue(child!.parent._tag === "Some" && child!.parent.value === parent)
      assert.isTrue(spans.every((s) => s.status._tag === "Ended"))
    }))

  it.effect("layer: installs a fresh recording tracer and gives it back as TestTracer", () =>
    Effect.gen(function*() {
      yield* Effect.succeed(1).pipe(Effect.withSpan("work", { attributes: { n: 1 } }))
      const recording = yield* TestTracer.TestTracer
      assert.strictEqual(yield* Effect.tracer, recording.tracer)
      assert.deepStrictEqual(recording.spans.map((s) => [s.name, s.attributes.get("n")]), [["work", 1]])
    }).pipe(Effect.provide(TestTracer.layer)))
})
