/**
 * Telemetry endpoints for Node: the bridge's metrics as a Prometheus text endpoint (`GET /metrics`), served by
 * `effect/observability`'s `PrometheusMetrics.layerHttp` on an `HttpRouter` over `NodeHttpServer`.
 *
 * @since 0.1.0
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Telemetry } from "@mcp-bridge/core"
import { Layer } from "effect"
import { HttpRouter } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"

/**
 * @since 0.1.0
 */
export interface PrometheusOptions {
  /** @default 9464 (the OpenTelemetry Prometheus exporter's port); 0 for an ephemeral port */
  readonly port?: number | undefined
  /** @default "127.0.0.1" */
  readonly host?: string | undefined
  /** @default "/metrics" */
  readonly path?: `/${string}` | undefined
  /** A prefix for every metric name. @default none */
  readonly prefix?: string | undefined
}

/**
 * Serves every metric of the current `Metric.MetricRegistry` as Prometheus text at `http://host:port/metrics`.
 * Bridge metrics get their OpenTelemetry-compatible Prometheus names (`mcp_client_operation_duration_seconds`,
 * `mcp_bridge_calls_total`, ...; see `Telemetry.prometheusName`). The server closes with the layer. The layer also
 * provides the `HttpServer` (e.g. to read the bound address when `port` is 0).
 *
 * @example
 * ```ts
 * const Live = Layer.mergeAll(McpBridge.layer(config), NodeTelemetry.layerPrometheus({ port: 9464 }))
 * ```
 *
 * @since 0.1.0
 */
export const layerPrometheus = (options: PrometheusOptions = {}) =>
  HttpRouter.serve(
    PrometheusMetrics.layerHttp({
      path: options.path ?? "/metrics",
      metricNameMapper: Telemetry.prometheusName,
      ...(options.prefix !== undefined ? { prefix: options.prefix } : {})
    }),
    { disableLogger: true, disableListenLog: true }
  ).pipe(
    Layer.provideMerge(
      NodeHttpServer.layer(createServer, { port: options.port ?? 9464, host: options.host ?? "127.0.0.1" })
    )
  )
