/**
 * A live dashboard for a running bridge: one page (`/`) that shows every server with its state (connected,
 * connecting, failing with the typed reason, circuit open with the time left, rate-limited), transport and negotiated
 * protocol version; its tools with calls, success rate and p50/p95; the cache's hit rate and size; the pools; the
 * alert rules and which fire; the last errors, scrubbed of secrets; and a chart of calls and p95 over the last minutes.
 * The page updates itself over server-sent events (`/dashboard/events`); `/dashboard/state` is the same JSON once.
 *
 * A `node:http` request handler, so that any server mounts it (the gateway at `/`, or your own): it answers its own
 * paths and returns `false` for every other. Built on a scoped fiber that samples `McpBridge.metrics()` and
 * `BridgeStatus.read` once an `interval` (one sample shared by every open page; with no page open, only the chart's
 * history is kept) and ends, with the page streams, when the scope closes. The page is a static string in this package: no build step, no library, no request leaves it.
 *
 * With replicas sharing state through Redis (`RedisStats` and a `SharedCircuitStore` in context, as `serve --redis`
 * runs), the page also shows the shared view beside this replica's own figures: the cache's entries and hit rate
 * over every replica, each rate limit's use of its window and each remote server's circuit, as Redis holds them.
 * Redis is asked only while a page is open (at most once a `sharedInterval`): the page asks every replica for its
 * counts and reads the shared view; nothing is sent per call, nor while no page is open.
 *
 * @since 0.1.0
 */
import { AlertRules, BridgeConfig, BridgeStatus, ConnectionPool, McpBridge, SharedCircuitStore } from "@mcp-bridge/core"
import { Clock, Context, Duration, Effect, Option, Schedule, type Scope } from "effect"
import { createHash } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import { hostname } from "node:os"
import { page, script } from "./dashboard/page.ts"
import * as DashboardState from "./dashboard/state.ts"
import * as RedisStats from "./replica/RedisStats.ts"

/**
 * A request handler: answers the dashboard's paths (`true`), leaves every other request alone (`false`).
 *
 * @since 0.1.0
 */
export type Handler = (req: IncomingMessage, res: ServerResponse) => boolean

/**
 * Options of the dashboard.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * Decides whether a request may see the dashboard (the gateway passes its API-key check with an admin scope). A
   * refusal answers 401 with a `Basic` challenge, so that a browser asks for the key (any user name, the key as the
   * password; see `presentedKey`).
   * @default every request may
   */
  readonly authorize?: ((req: IncomingMessage) => boolean | Promise<boolean>) | undefined
  /** Which replica this is, shown on the page (several replicas behind one address). @default none shown */
  readonly replica?: string | { readonly id: string; readonly name?: string | undefined } | undefined
  /** How often the page is updated (and the chart sampled). @default 1 second */
  readonly interval?: Duration.Input | undefined
  /** How far back the chart goes. @default 10 minutes */
  readonly history?: Duration.Input | undefined
  /** The alert thresholds to show: pass the `alerts` the bridge's telemetry was given. @default AlertRules.defaults */
  readonly alerts?: AlertRules.AlertOptions | undefined
  /**
   * With replicas sharing state (`RedisStats` in context): how often an open page asks the replicas for their counts
   * and reads the shared view.
   * @default 2 seconds
   */
  readonly sharedInterval?: Duration.Input | undefined
}

const securityHeaders = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer"
} as const

// The page's one inline script, allowed by its hash and nothing else (no inline handler, no other origin).
const scriptHash = createHash("sha256").update(script).digest("base64")
const pageHeaders = {
  ...securityHeaders,
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": `default-src 'none'; script-src 'sha256-${scriptHash}'; style-src 'unsafe-inline'; ` +
    `connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`
}

/**
 * The key a request presents: `Authorization: Bearer <key>`, `X-API-Key: <key>`, or the password of
 * `Authorization: Basic` (what a browser sends after the dashboard's challenge). For an `authorize` hook.
 *
 * @example
 * ```ts
 * Dashboard.make({ authorize: (req) => Dashboard.presentedKey(req) === process.env.ADMIN_KEY })
 * ```
 *
 * @since 0.1.0
 */
export const presentedKey = (req: IncomingMessage): string | undefined => {
  const auth = req.headers.authorization
  if (auth !== undefined) {
    const space = auth.indexOf(" ")
    const scheme = auth.slice(0, space).toLowerCase()
    const value = auth.slice(space + 1).trim()
    if (scheme === "bearer") return value
    if (scheme === "basic") {
      const decoded = Buffer.from(value, "base64").toString("utf8")
      const colon = decoded.indexOf(":")
      return colon === -1 ? undefined : decoded.slice(colon + 1)
    }
  }
  const key = req.headers["x-api-key"]
  return typeof key === "string" ? key : undefined
}

/**
 * A handler that answers nothing: the dashboard switched off (`make(false)`).
 *
 * @since 0.1.0
 */
export const disabled: Handler = () => false

const paths = new Set(["/", "/index.html", "/dashboard/state", "/dashboard/events"])

/**
 * Starts the dashboard over the `McpBridge` in context (and, when present, its `BridgeConfig`, `ConnectionPool` and
 * `MetricsRecorder`, for the servers' states) and returns its request handler; `false` returns `disabled`. The
 * sampling fiber and the open page streams end with the scope.
 *
 * @example
 * ```ts
 * const handler = yield* Dashboard.make({ replica: "eu-1" })
 * const server = http.createServer((req, res) => {
 *   if (!handler(req, res)) res.writeHead(404).end()
 * })
 * ```
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(
  options: Options | false = {}
): Effect.fn.Return<Handler, never, McpBridge.McpBridge | Scope.Scope> {
  if (options === false) return disabled
  const bridge = yield* McpBridge.McpBridge
  const config = yield* Effect.serviceOption(BridgeConfig.BridgeConfig)
  const pool = yield* Effect.serviceOption(ConnectionPool.ConnectionPool)
  const context = yield* Effect.context<never>()
  const intervalMillis = Math.max(100, Duration.toMillis(Duration.fromInputUnsafe(options.interval ?? "1 second")))
  const historyMillis = Duration.toMillis(Duration.fromInputUnsafe(options.history ?? "10 minutes"))
  const replica = options.replica === undefined
    ? undefined
    : typeof options.replica === "string"
    ? { id: options.replica, name: undefined }
    : { id: options.replica.id, name: options.replica.name }
  const builder = DashboardState.makeBuilder({
    replica,
    intervalMillis,
    historyPoints: Math.max(10, Math.ceil(historyMillis / intervalMillis)),
    alertOptions: options.alerts ?? {}
  })

  // Without the pool and configuration in context (a bridge assembled by hand), states come from the metrics alone.
  const status: Effect.Effect<BridgeStatus.Status> = Option.isSome(config) && Option.isSome(pool)
    ? BridgeStatus.read.pipe(
      Effect.provideContext(
        Context.make(BridgeConfig.BridgeConfig, config.value).pipe(
          Context.add(ConnectionPool.ConnectionPool, pool.value),
          Context.merge(context)
        )
      )
    )
    : Effect.clockWith((clock) =>
      Effect.succeed({
        at: clock.currentTimeMillisUnsafe(),
        servers: bridge.servers.map((server) => ({
          server,
          transport: "http" as const,
          state: "idle" as const,
          protocolVersion: undefined,
          reason: undefined,
          circuit: undefined,
          sessions: { open: 0, inUse: 0, connecting: 0, waiting: 0 },
          lastSuccessAt: undefined,
          rateLimitedAt: undefined
        })),
        failures: []
      })
    )

  const streams = new Set<ServerResponse>()
  let latest: string | undefined

  const shared = yield* makeShared({ bridge, config, replica, options })
  const current = (refreshShared: boolean) =>
    Effect.gen(function*() {
      const metrics = yield* bridge.metrics()
      const s = yield* status
      const view = shared === undefined ? null : yield* shared(refreshShared)
      return { metrics, status: s, shared: view }
    })

  const sample = Effect.gen(function*() {
    // No page open: the chart's history only (the state is built when a page connects).
    if (streams.size === 0) {
      const metrics = yield* bridge.metrics()
      builder.tick(metrics, yield* Clock.currentTimeMillis)
      latest = undefined
      return
    }
    const { metrics, shared: view, status: s } = yield* current(true)
    builder.tick(metrics, s.at)
    latest = JSON.stringify(builder.build(metrics, s, view))
    const frame = `data: ${latest}\n\n`
    for (const res of streams) res.write(frame)
  })
  yield* sample.pipe(
    Effect.catchCause((cause) => Effect.logWarning("dashboard: a sample failed", cause)),
    Effect.repeat(Schedule.spaced(Duration.millis(intervalMillis))),
    Effect.forkScoped
  )
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const res of streams) res.end()
      streams.clear()
    })
  )

  const run = Effect.runPromiseWith(context)

  const answer = (req: IncomingMessage, res: ServerResponse, path: string) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { ...securityHeaders, allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" })
      res.end("method not allowed\n")
      return
    }
    if (path === "/" || path === "/index.html") {
      res.writeHead(200, pageHeaders)
      res.end(req.method === "HEAD" ? undefined : page)
      return
    }
    if (path === "/dashboard/state") {
      run(
        Effect.map(
          current(true),
          ({ metrics, shared: view, status: s }) => JSON.stringify(builder.build(metrics, s, view))
        )
      ).then(
        (body) => {
          res.writeHead(200, { ...securityHeaders, "content-type": "application/json; charset=utf-8" })
          res.end(body)
        },
        () => {
          res.writeHead(500, { ...securityHeaders, "content-type": "text/plain; charset=utf-8" })
          res.end("the dashboard could not read the bridge's state\n")
        }
      )
      return
    }
    // `/dashboard/events`: the latest sample now, then one per interval.
    res.writeHead(200, {
      ...securityHeaders,
      "content-type": "text/event-stream; charset=utf-8",
      connection: "keep-alive",
      "x-accel-buffering": "no"
    })
    res.write(`retry: 2000\n\n`)
    if (latest !== undefined) {
      res.write(`data: ${latest}\n\n`)
    } else {
      // The first page after none: its first state now rather than at the next tick.
      run(
        Effect.map(
          current(true),
          ({ metrics, shared: view, status: s }) => JSON.stringify(builder.build(metrics, s, view))
        )
      ).then((body) => {
        if (!res.writableEnded) res.write(`data: ${body}\n\n`)
      }, () => undefined)
    }
    streams.add(res)
    res.on("close", () => streams.delete(res))
  }

  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? "/").split("?", 1)[0]!
    if (!paths.has(path)) return false
    const authorize = options.authorize
    if (authorize === undefined) {
      answer(req, res, path)
      return true
    }
    Promise.resolve().then(() => authorize(req)).then(
      (allowed) => {
        if (allowed) return answer(req, res, path)
        res.writeHead(401, {
          ...securityHeaders,
          "content-type": "text/plain; charset=utf-8",
          "www-authenticate": "Basic realm=\"mcp-bridge dashboard\", charset=\"UTF-8\""
        })
        res.end("unauthorized: the dashboard needs an admin key\n")
      },
      () => {
        res.writeHead(500, { ...securityHeaders, "content-type": "text/plain; charset=utf-8" })
        res.end("the dashboard's authorization failed\n")
      }
    )
    return true
  }
})

// The shared view, when replicas share state: this replica answers every replica's asks with its counts, and a reader
// asks and reads Redis at most once a `sharedInterval` (the last view in between), and only when asked to refresh.
const makeShared = Effect.fnUntraced(function*(input: {
  readonly bridge: McpBridge.McpBridge.Service
  readonly config: Option.Option<BridgeConfig.BridgeConfig.Service>
  readonly replica: DashboardState.Replica | undefined
  readonly options: Options
}) {
  const stats = Option.getOrUndefined(yield* Effect.serviceOption(RedisStats.RedisStats))
  const circuits = Option.getOrUndefined(yield* Effect.serviceOption(SharedCircuitStore.SharedCircuitStore))
  if (stats === undefined && circuits === undefined) return undefined
  const { bridge, config, options, replica } = input
  const self = replica?.id ?? `${hostname()}:${process.pid}`
  const everyMillis = Math.max(100, Duration.toMillis(Duration.fromInputUnsafe(options.sharedInterval ?? "2 seconds")))

  // The rate limits and remote circuits the configuration names, in the stores' keys (read each time: a reload
  // changes the servers in force).
  const configured = () => {
    const limits: Array<DashboardState.LimitRow> = []
    const remote: Array<string> = []
    if (Option.isNone(config)) return { limits, remote }
    for (const server of config.value.servers.values()) {
      const push = (tool: string | undefined, throttle: BridgeConfig.ResolvedServer["throttle"]) => {
        const base = tool === undefined ? server.name : `${server.name}\u0000${tool}`
        if (throttle?.perSecond !== undefined) {
          limits.push({
            server: server.name,
            tool,
            window: "second",
            limit: throttle.perSecond,
            key: `${base}\u0000second`,
            windowMillis: 1_000
          })
        }
        if (throttle?.perMinute !== undefined) {
          limits.push({
            server: server.name,
            tool,
            window: "minute",
            limit: throttle.perMinute,
            key: `${base}\u0000minute`,
            windowMillis: 60_000
          })
        }
      }
      push(undefined, server.throttle)
      for (const [tool, settings] of server.tools) push(tool, settings.throttle)
      const kind = BridgeConfig.transportKind(server.transport)
      if (server.circuitBreaker !== false && (kind === "http" || kind === "sse")) remote.push(server.name)
    }
    return { limits, remote }
  }

  if (stats !== undefined) {
    yield* stats.serve(
      self,
      Effect.map(bridge.metrics(), (metrics) => {
        const servers: Record<string, { calls: number; hits: number; misses: number }> = {}
        for (const s of metrics.servers) {
          servers[s.server] = { calls: s.calls, hits: s.cache.hits, misses: s.cache.misses }
        }
        return { ...(replica?.name === undefined ? {} : { name: replica.name }), servers }
      })
    )
  }

  const readCircuits = (remote: ReadonlyArray<string>) =>
    circuits === undefined ? Effect.succeed([]) : Effect.forEach(
      remote,
      (server) =>
        circuits.state(server).pipe(
          Effect.map((state): DashboardState.CircuitRow => ({
            server,
            state: state._tag === "Closed" ? "closed" : state._tag === "Open" ? "open" : "half_open",
            retryAfterMillis: state._tag === "Open" ? Duration.toMillis(state.retryAfter) : null
          })),
          Effect.orElseSucceed((): DashboardState.CircuitRow => ({ server, state: null, retryAfterMillis: null }))
        ),
      { concurrency: "unbounded" }
    )
  const read = Effect.gen(function*() {
    const at = yield* Clock.currentTimeMillis
    const { limits, remote } = configured()
    const limitKeys = limits.map((l) => ({ key: l.key, window: Duration.millis(l.windowMillis) }))
    const [result, circuitRows] = yield* Effect.all([
      stats === undefined
        ? Effect.succeed(undefined)
        : Effect.result(Effect.andThen(Effect.ignore(stats.ask), stats.read(limitKeys))),
      readCircuits(remote)
    ], { concurrency: "unbounded" })
    return DashboardState.sharedView({
      at,
      self,
      read: result?._tag === "Success" ? result.success : undefined,
      error: result?._tag === "Failure" ? result.failure.message : undefined,
      limits: stats === undefined ? [] : limits,
      circuits: circuitRows
    })
  })

  let last: { readonly at: number; readonly view: DashboardState.Shared } | undefined
  return (refresh: boolean): Effect.Effect<DashboardState.Shared | null> =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      if (refresh && (last === undefined || now - last.at >= everyMillis)) {
        last = { at: now, view: yield* read }
      }
      return last?.view ?? null
    })
})
