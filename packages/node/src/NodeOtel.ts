/**
 * OpenTelemetry as apps run it: the bridge's spans and metrics go to the tracer provider and meter provider the app
 * registered globally (the OpenTelemetry JS SDK, `@opentelemetry/auto-instrumentations-node`), as those of any other
 * instrumented library do. Spans are children of the app's active span; the W3C context reaches the server in the
 * request `_meta` (`traceparent` of the bridge's wire span, with the app's `tracestate`).
 *
 * Built on `@effect/opentelemetry`: `OtelTracer` makes the bridge's Effect spans OpenTelemetry spans of the global
 * tracer provider, and a `MetricProducer` of `OtelMetrics` over the bridge's own registry joins each reader of the
 * global meter provider. `createBridge` does all of it by itself when the app has registered a provider
 * (`openTelemetry: "auto"`); Effect programs compose `layerGlobal()` over `McpBridge.layer`. Without a registered SDK
 * none of it runs, and nothing beyond `@opentelemetry/api` is loaded: the SDK packages are needed only by apps that
 * run the SDK. `TelemetryExport.layerOtlp` (of `@mcp-bridge/core`) exports over OTLP without any SDK.
 *
 * @since 0.1.0
 */
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import type { BridgeClient } from "@mcp-bridge/core"
import { MetricsRecorder } from "@mcp-bridge/core"
import { context, isSpanContextValid, metrics, ProxyTracerProvider, trace } from "@opentelemetry/api"
import { Duration, Effect, Layer, Tracer } from "effect"
import * as OtelMetrics from "./internal/otelMetrics.ts"

/**
 * Which global OpenTelemetry providers the app has registered.
 *
 * @since 0.1.0
 */
export interface Registered {
  /** A tracer provider (`NodeSDK.start()`, `provider.register()`, `trace.setGlobalTracerProvider`). */
  readonly tracerProvider: boolean
  /** A meter provider (`NodeSDK.start()`, `metrics.setGlobalMeterProvider`). */
  readonly meterProvider: boolean
}

const noopTracerProvider = new ProxyTracerProvider().getDelegate()

const isNoop = (provider: unknown, name: string) =>
  provider === noopTracerProvider ||
  (provider as { readonly constructor?: { readonly name?: string } } | undefined)?.constructor?.name === name

/**
 * Whether the app has registered a global tracer provider and a meter provider now, i.e. the global one is not
 * OpenTelemetry's no-op (for traces: the API's proxy with no delegate). Register the SDK before `createBridge`, as
 * OpenTelemetry asks of any instrumented library.
 *
 * @since 0.1.0
 */
export const registered = (): Registered => {
  const provider = trace.getTracerProvider() as { readonly getDelegate?: () => unknown }
  const delegate = typeof provider.getDelegate === "function" ? provider.getDelegate() : provider
  return {
    tracerProvider: !isNoop(delegate, "NoopTracerProvider"),
    meterProvider: !OtelMetrics.isNoopMeterProvider(metrics.getMeterProvider())
  }
}

/**
 * The trace context of OpenTelemetry's active span (`context.active()`), for `BridgeClient.Options.traceContext`:
 * the parent of the bridge's call span, with its trace flags and `tracestate`. `undefined` outside any span.
 *
 * @since 0.1.0
 */
export const traceContext = (): BridgeClient.TraceContext | undefined => {
  const span = trace.getSpanContext(context.active())
  if (span === undefined || !isSpanContextValid(span)) return undefined
  const parent = OtelTracer.makeExternalSpan({
    traceId: span.traceId,
    spanId: span.spanId,
    traceFlags: span.traceFlags,
    traceState: span.traceState
  })
  const tracestate = span.traceState?.serialize()
  return tracestate === undefined || tracestate === "" ? { parent } : { parent, tracestate }
}

/**
 * Options of {@link layerGlobal}: which of the bridge's signals go to the app's global OpenTelemetry providers, and
 * how long closing waits for the last metrics collection.
 *
 * @since 0.1.0
 */
export interface Options {
  /** The bridge's spans to the global tracer provider. @default true */
  readonly traces?: boolean | undefined
  /** The bridge's metrics to the readers of the global meter provider. @default true */
  readonly metrics?: boolean | undefined
  /**
   * The instrumentation scope of the spans: every Effect span of the fibers the layer is provided to goes through it.
   * @default "effect" (as `OtelTracer.layerGlobal`)
   */
  readonly tracerName?: string | undefined
  /** How long closing waits for the last collection of the bridge's metrics by each reader. @default 3 seconds */
  readonly flushTimeout?: Duration.Input | undefined
}

/**
 * The bridge on the app's global OpenTelemetry providers: the Effect tracer of the fibers it is provided to becomes
 * `@effect/opentelemetry`'s `OtelTracer` over the global tracer provider (Effect spans are children of the active
 * OpenTelemetry span when they have no Effect parent), and the bridge's metrics (its own registry, from its
 * `MetricsRecorder`) join every reader of the global SDK meter provider until the layer closes, after a last flush.
 * Register the SDK first: each half looks for its provider when the layer is built, and without it leaves things
 * as they are (Effect's tracer, whose spans the bridge skips, and no producer), so that no invalid trace context
 * reaches a server. A meter provider that is not the SDK's is left alone, with a warning on OpenTelemetry's `diag`
 * logger.
 *
 * @example
 * ```ts
 * import { NodeSDK } from "@opentelemetry/sdk-node"
 * new NodeSDK({ traceExporter, metricReader }).start()
 *
 * const Live = NodeOtel.layerGlobal().pipe(
 *   Layer.provideMerge(McpBridge.layer(config, { transport: NodeTransport.layer() }))
 * )
 * program.pipe(Effect.provide(Live)) // its calls' spans and the bridge's metrics go to the SDK's exporters
 * ```
 *
 * @since 0.1.0
 */
export const layerGlobal = (options: Options = {}): Layer.Layer<never, never, MetricsRecorder.MetricsRecorder> => {
  const tracer = Layer.effect(Tracer.Tracer, OtelTracer.make).pipe(
    Layer.provide(
      options.tracerName === undefined
        ? OtelTracer.layerGlobalTracer
        : Layer.sync(OtelTracer.OtelTracer, () => trace.getTracerProvider().getTracer(options.tracerName!))
    )
  )
  const flushTimeout = Duration.fromInputUnsafe(options.flushTimeout ?? "3 seconds")
  const producers = Layer.effectDiscard(
    MetricsRecorder.MetricsRecorder.use((recorder) =>
      recorder.enabled ? OtelMetrics.register(recorder.registry, { flushTimeout }) : Effect.void
    )
  )
  return Layer.unwrap(Effect.sync(() => {
    const found = registered()
    return Layer.mergeAll(
      options.traces === false || !found.tracerProvider ? Layer.empty : tracer,
      options.metrics === false || !found.meterProvider ? Layer.empty : producers
    )
  }))
}
