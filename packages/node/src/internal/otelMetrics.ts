/**
 * The bridge's metrics on the readers of the app's global meter provider: one `MetricProducer` of
 * `@effect/opentelemetry` (`OtelMetrics.makeProducer`) over the bridge's own registry per reader, so that each
 * collection of the app's reader (its exporter's interval, a Prometheus scrape) includes the bridge's series.
 *
 * The OpenTelemetry JS SDK has no public way to add a producer to a running `MeterProvider` (producers are given to a
 * reader when the app constructs it, `metricProducers`). A reader of `@opentelemetry/sdk-metrics` keeps them in its
 * `_metricProducers` list and merges their output into every collection, so the producer is added to that list, and
 * removed (after a last flush) when the bridge closes. A meter provider of another shape is left alone, with a warning
 * on OpenTelemetry's `diag` logger.
 *
 * `@effect/opentelemetry/OtelMetrics` loads `@opentelemetry/sdk-metrics`, which only apps that run the SDK have: it is
 * imported when a reader is found, never at start-up.
 *
 * @internal
 */
import { diag, metrics } from "@opentelemetry/api"
import { Duration, Effect, Metric, type Scope } from "effect"

interface Producer {
  collect(options?: unknown): Promise<unknown>
}

interface Reader {
  readonly _metricProducers: Array<Producer>
  readonly selectAggregationTemporality?: (instrumentType: string) => number
  readonly forceFlush?: (options?: { readonly timeoutMillis?: number }) => Promise<void>
}

const isReader = (value: unknown): value is Reader =>
  typeof value === "object" && value !== null && Array.isArray((value as Reader)._metricProducers)

/** The readers of an SDK `MeterProvider` (`@opentelemetry/sdk-metrics` 1.x and 2.x), else `undefined`. */
const readersOf = (provider: unknown): ReadonlyArray<Reader> | undefined => {
  const collectors = (provider as { readonly _sharedState?: { readonly metricCollectors?: unknown } } | undefined)
    ?._sharedState?.metricCollectors
  if (!Array.isArray(collectors)) return undefined
  return collectors.map((collector) => (collector as { readonly _metricReader?: unknown })?._metricReader).filter(
    isReader
  )
}

/** @internal */
export const isNoopMeterProvider = (provider: unknown): boolean =>
  (provider as { readonly constructor?: { readonly name?: string } } | undefined)?.constructor?.name ===
    "NoopMeterProvider"

interface Collected {
  readonly resourceMetrics?: {
    readonly scopeMetrics?: ReadonlyArray<
      { readonly metrics?: ReadonlyArray<{ readonly descriptor?: { unit: string } }> }
    >
  }
}

// The bridge's units in UCUM, as OpenTelemetry's semantic conventions and Effect's OTLP exporter write them.
const ucumUnits = new Map([["seconds", "s"], ["bytes", "By"]])

// The producer's collections with UCUM units (`@effect/opentelemetry` passes the `unit` attribute on as it is).
const withUcumUnits = (producer: Producer): Producer => ({
  collect: (options) =>
    producer.collect(options).then((result) => {
      for (const scope of (result as Collected).resourceMetrics?.scopeMetrics ?? []) {
        for (const metric of scope.metrics ?? []) {
          const unit = metric.descriptor === undefined ? undefined : ucumUnits.get(metric.descriptor.unit)
          if (unit !== undefined) metric.descriptor!.unit = unit
        }
      }
      return result
    })
})

// `AggregationTemporality.DELTA` of `@opentelemetry/sdk-metrics`, for `InstrumentType.COUNTER`.
const DELTA = 0

/**
 * Adds a producer over `registry` to each reader of the global meter provider, for the life of the scope. Returns how
 * many readers it reached (0: no SDK meter provider).
 *
 * @internal
 */
export const register = (
  registry: Metric.MetricRegistry,
  options: { readonly flushTimeout: Duration.Duration }
): Effect.Effect<number, never, Scope.Scope> =>
  Effect.gen(function*() {
    const provider = metrics.getMeterProvider()
    if (isNoopMeterProvider(provider)) return 0
    const readers = readersOf(provider)
    if (readers === undefined) {
      diag.warn(
        "@mcp-bridge/node: the global meter provider is not an SDK MeterProvider; the bridge's metrics stay out"
      )
      return 0
    }
    if (readers.length === 0) return 0
    const modules = yield* Effect.tryPromise(() =>
      Promise.all([import("@effect/opentelemetry/OtelMetrics"), import("@effect/opentelemetry/Resource")])
    ).pipe(Effect.option)
    if (modules._tag === "None") {
      diag.warn("@mcp-bridge/node: @effect/opentelemetry could not load @opentelemetry/sdk-metrics; no bridge metrics")
      return 0
    }
    const [OtelMetrics, Resource] = modules.value
    for (const reader of readers) {
      const temporality = reader.selectAggregationTemporality?.("COUNTER") === DELTA ? "delta" : "cumulative"
      const producer = withUcumUnits(
        yield* OtelMetrics.makeProducer(temporality).pipe(
          Effect.provide(Resource.layerEmpty),
          Effect.provideService(Metric.MetricRegistry, registry)
        )
      )
      yield* Effect.acquireRelease(
        Effect.sync(() => reader._metricProducers.push(producer)),
        () =>
          // A last collection, so that the calls since the reader's last export are not lost, then out of its list.
          Effect.tryPromise(() => reader.forceFlush?.() ?? Promise.resolve()).pipe(
            Effect.ignore,
            Effect.timeoutOption(options.flushTimeout),
            Effect.ensuring(Effect.sync(() => {
              const index = reader._metricProducers.indexOf(producer)
              if (index >= 0) reader._metricProducers.splice(index, 1)
            }))
          )
      )
    }
    return readers.length
  })
