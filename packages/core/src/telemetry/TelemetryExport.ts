/**
 * Export of the bridge's telemetry: OTLP/HTTP traces and metrics with the exporters of `effect/observability`
 * (configured from the standard `OTEL_*` variables), and the names and definitions exporters and dashboards need
 * (Prometheus names after OpenTelemetry's compatibility rules). The Prometheus `/metrics` endpoint is
 * `NodeTelemetry.layerPrometheus` in `@mcp-bridge/node`.
 *
 * The bridge's metrics live in its own registry (see `MetricsRecorder`): the export layers read that registry, so they
 * need the bridge's `MetricsRecorder` (provide them with `Layer.provideMerge(bridgeLayer)`). Spans go to the tracer of
 * the fibers that call the bridge, so the OTLP tracer reaches them when the resulting layer is provided to the program.
 *
 * @since 0.1.0
 */
import { Config, ConfigProvider, Effect, Layer, Metric } from "effect"
import { FetchHttpClient, type HttpClient } from "effect/http"
import { type OtlpExporter, OtlpMetrics, OtlpSerialization, OtlpTracer } from "effect/observability"
import * as Metrics from "../internal/metrics.ts"
import { MetricsRecorder } from "./MetricsRecorder.ts"

const defs = Metrics.definitions

/**
 * Options of `layerOtlp`: the resource that names the service in the exported data, and the HTTP client that sends it.
 * Endpoints, protocol, headers and intervals come from the `OTEL_*` variables.
 *
 * @since 0.1.0
 */
export interface OtlpOptions {
  /** `service.name` etc. (else from `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`). */
  readonly resource?: {
    readonly serviceName?: string | undefined
    readonly serviceVersion?: string | undefined
    readonly attributes?: Record<string, unknown>
  } | undefined
  /** The HTTP client of the exporters. @default FetchHttpClient.layer */
  readonly httpClient?: Layer.Layer<HttpClient.HttpClient> | undefined
}

/**
 * Exports traces and metrics over OTLP/HTTP with the exporters of `effect/observability`, configured from the
 * standard OpenTelemetry environment variables:
 *
 * - `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`): nothing is
 *   exported without one;
 * - `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (default) or `http/json`;
 * - `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER`: `otlp` (default here, as in the OpenTelemetry SDKs) or `none`;
 * - `OTEL_SDK_DISABLED`, `OTEL_EXPORTER_OTLP_HEADERS`, `..._COMPRESSION`, `..._TIMEOUT`, `OTEL_METRIC_EXPORT_INTERVAL`,
 *   `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`, `OTEL_SERVICE_NAME`,
 *   `OTEL_RESOURCE_ATTRIBUTES`.
 *
 * Build it over the bridge's layer (it reads the bridge's metric registry) and provide the result to the program that
 * uses the bridge (the tracer applies to the fibers it is provided to); pending data is flushed when the layer closes.
 *
 * @example
 * ```ts
 * // OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
 * const Live = TelemetryExport.layerOtlp({ resource: { serviceName: "agent" } }).pipe(
 *   Layer.provideMerge(McpBridge.layer(config))
 * )
 * program.pipe(Effect.provide(Live)) // the program's calls are traced, the bridge's metrics exported
 * ```
 *
 * @since 0.1.0
 */
export const layerOtlp = (
  options: OtlpOptions = {}
): Layer.Layer<OtlpExporter.Flusher, never, MetricsRecorder> =>
  Layer.unwrap(
    Effect.gen(function*() {
      const protocol = yield* Config.String("OTEL_EXPORTER_OTLP_PROTOCOL").pipe(Config.withDefault("http/protobuf"))
      const serialization = protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf
      const exporters = Layer.mergeAll(
        OtlpTracer.layerFromConfig({ resource: options.resource }),
        // The metrics exporter reads the bridge's own registry.
        OtlpMetrics.layerFromConfig({ resource: options.resource }).pipe(Layer.provide(bridgeRegistry))
      )
      return exporters.pipe(
        Layer.provide(serialization),
        Layer.provide(options.httpClient ?? FetchHttpClient.layer),
        // OpenTelemetry's default exporter is `otlp`; Effect's layers only export when it is named.
        Layer.provide(
          ConfigProvider.layerAdd(
            ConfigProvider.fromUnknown({ OTEL_TRACES_EXPORTER: "otlp", OTEL_METRICS_EXPORTER: "otlp" })
          )
        )
      )
    }).pipe(Effect.orDie)
  )

/**
 * The bridge's metric registry (from its `MetricsRecorder`) as the `Metric.MetricRegistry` of a layer: provide it to
 * an exporter of your own so that it reads the bridge's metrics.
 *
 * @since 0.1.0
 */
export const bridgeRegistry: Layer.Layer<never, never, MetricsRecorder> = Layer.effect(
  Metric.MetricRegistry,
  MetricsRecorder.use((recorder) => Effect.succeed(recorder.registry))
) as Layer.Layer<never, never, MetricsRecorder>

const mapPrometheusName = (name: string): string => {
  const def = Object.values(defs).find((d) => d.name === name)
  if (def === undefined && name !== Metrics.windowSummaryName) return name
  const unit = name === Metrics.windowSummaryName || def?.unit === "seconds"
    ? "_seconds"
    : def?.unit === "bytes"
    ? "_bytes"
    : ""
  const total = def?.kind === "counter" ? "_total" : ""
  return `${name.replace(/\./g, "_")}${unit}${total}`
}

// The bridge's own names, mapped once (a read-only table: other names map as they are).
const prometheusNames: ReadonlyMap<string, string> = new Map(
  [...Object.values(defs).map((d) => d.name), Metrics.windowSummaryName].map((name) => [name, mapPrometheusName(name)])
)

/**
 * The Prometheus name of a bridge metric, following OpenTelemetry's Prometheus compatibility rules: dots become
 * underscores, the unit is a suffix (`_seconds`, `_bytes`), counters end in `_total`
 * (`mcp.client.operation.duration` → `mcp_client_operation_duration_seconds`, `mcp_bridge.calls` →
 * `mcp_bridge_calls_total`). Other names are left as they are.
 *
 * @since 0.1.0
 */
export const prometheusName = (name: string): string => prometheusNames.get(name) ?? name

/**
 * The metric definitions of the bridge (name, kind, unit, description, attributes), for dashboards and docs.
 *
 * @since 0.1.0
 */
export const metricDefinitions: ReadonlyArray<Metrics.Definition> = Object.values(defs)

/**
 * The attribute keys of the bridge's metrics and spans.
 *
 * @since 0.1.0
 */
export const Attributes = Metrics.Attr
