/**
 * Telemetry endpoints for Node: the bridge's metrics as a Prometheus text endpoint (`GET /metrics`), formatted by
 * `effect/observability`'s `PrometheusMetrics` from the bridge's own registry and served on an `HttpRouter` over
 * `NodeHttpServer`.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { MetricsRecorder, TelemetryExport } from "@mcp-bridge/core"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"

/**
 * Options of `layerPrometheus`: where the endpoint listens (`host`, `port`, `path`), and a prefix for every metric
 * name.
 *
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
 * Serves the bridge's metrics (its own registry, from its `MetricsRecorder`) as Prometheus text at
 * `http://host:port/metrics`, with their OpenTelemetry-compatible Prometheus names
 * (`mcp_client_operation_duration_seconds`, `mcp_bridge_calls_total`, ...; see `TelemetryExport.prometheusName`). The
 * server closes with the layer. The layer also provides the `HttpServer` (e.g. to read the bound address when `port`
 * is 0).
 *
 * @example
 * ```ts
 * const Live = NodeTelemetry.layerPrometheus({ port: 9464 }).pipe(Layer.provideMerge(McpBridge.layer(config)))
 * ```
 *
 * @since 0.1.0
 */
export const layerPrometheus = (options: PrometheusOptions = {}) =>
  HttpRouter.serve(
    Layer.effectDiscard(Effect.gen(function*() {
      const router = yield* HttpRouter.HttpRouter
      const recorder = yield* MetricsRecorder.MetricsRecorder
      const format = {
        metricNameMapper: TelemetryExport.prometheusName,
        ...(options.prefix !== undefined ? { prefix: options.prefix } : {})
      }
      yield* router.add(
        "GET",
        options.path ?? "/metrics",
        Effect.sync(() =>
          HttpServerResponse.text(PrometheusMetrics.formatUnsafe(recorder.context, format), {
            contentType: "text/plain; version=0.0.4; charset=utf-8"
          })
        )
      )
    })),
    { disableLogger: true, disableListenLog: true }
  ).pipe(
    Layer.provideMerge(
      NodeHttpServer.layer(createServer, { port: options.port ?? 9464, host: options.host ?? "127.0.0.1" })
    )
  )
