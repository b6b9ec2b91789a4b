/**
 * A recording `Tracer` for tests: every span the code under test opens is kept, in order, so a test can assert on
 * names, parents, attributes and status. Installing it counts as "a tracer is installed" for `telemetry.spans: "auto"`.
 *
 * @since 0.1.0
 */
import { Context, Layer, Tracer } from "effect"

/**
 * A tracer and the spans it has made so far (a live array: it grows as spans open).
 *
 * @since 0.1.0
 */
export interface Recording {
  readonly tracer: Tracer.Tracer
  readonly spans: ReadonlyArray<Tracer.NativeSpan>
}

/**
 * The recording installed by `TestTracer.layer`, to read the spans back.
 *
 * @since 0.1.0
 */
export class TestTracer extends Context.Service<TestTracer, Recording>()("@mcp-bridge/testing/TestTracer") {}

/**
 * A fresh recording tracer. Provide `tracer` as `Tracer.Tracer` and read `spans` afterwards.
 *
 * @example
 * ```ts
 * const { spans, tracer } = TestTracer.make()
 * yield* program.pipe(Effect.provideService(Tracer.Tracer, tracer))
 * assert.isTrue(spans.some((s) => s.name === "tools/call echo"))
 * ```
 *
 * @since 0.1.0
 */
export const make = (): Recording => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { tracer, spans }
}

/**
 * Installs a fresh recording tracer as `Tracer.Tracer` and provides it as `TestTracer` to read the spans.
 *
 * @example
 * ```ts
 * Effect.gen(function*() {
 *   yield* program
 *   const { spans } = yield* TestTracer.TestTracer
 * }).pipe(Effect.provide(TestTracer.layer))
 * ```
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<TestTracer> = Layer.syncContext(() => {
  const recording = make()
  return Context.make(TestTracer, recording).pipe(Context.add(Tracer.Tracer, recording.tracer))
})
