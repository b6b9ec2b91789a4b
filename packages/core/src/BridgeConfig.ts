/**
 * The bridge's configuration: the Claude-style `{ "mcpServers": { ... } }` JSON that users already have, with an
 * optional `bridge` section per server over global defaults.
 *
 * Everything is decoded with Effect `Schema` into one typed {@link BridgeConfig}. Bad input fails with a
 * {@link BridgeConfigError} whose message names the server and the field. Secrets (stdio `env` values and HTTP
 * `headers`) are decoded into `Redacted` values, so they never print in logs, errors or spans.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, FileSystem, Layer, Redacted, Schema, SchemaIssue } from "effect"
import { AuthSettings } from "./McpAuth.ts"

// -----------------------------------------------------------------------------
// Durations
// -----------------------------------------------------------------------------

/**
 * A duration in configuration: a string `Duration` understands (`"30 seconds"`, `"5 minutes"`, `"250 millis"`) or a
 * number of milliseconds.
 *
 * @since 0.1.0
 */
export const DurationInput: Schema.Codec<Duration.Duration, string | number> = Schema.Union([
  Schema.DurationFromString,
  Schema.DurationFromMillis
]).annotate({ expected: "a duration such as \"30 seconds\" or a number of milliseconds" }).check(
  Schema.makeFilter((d: Duration.Duration) =>
    Duration.isGreaterThan(d, Duration.zero) || `Expected a positive duration, got ${Duration.format(d)}`
  )
)

const literals = <const L extends ReadonlyArray<string>>(values: L) =>
  Schema.Literals(values).annotate({ expected: `one of ${values.map((v) => JSON.stringify(v)).join(", ")}` })

const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

// -----------------------------------------------------------------------------
// Per-server bridge settings
// -----------------------------------------------------------------------------

/**
 * Which MCP protocol era a session speaks.
 *
 * - `"auto"`: probe with `server/discover` and use 2026-07-28 if the server speaks it, else the legacy handshake.
 * - `"legacy"`: the 2025 `initialize` handshake only (no probe; one process spawn fewer per stdio session).
 * - `"2026-07-28"`: the modern era only; fail if the server does not offer it.
 *
 * @since 0.1.0
 */
export const ProtocolMode = literals(["auto", "legacy", "2026-07-28"])

/**
 * @since 0.1.0
 */
export type ProtocolMode = typeof ProtocolMode.Type

/**
 * Pool settings of one server (`bridge.pool`). Every field is optional and falls back to the global defaults.
 *
 * @since 0.1.0
 */
export const PoolSettings = Schema.Struct({
  min: Schema.optionalKey(NonNegativeInt),
  max: Schema.optionalKey(PositiveInt),
  concurrency: Schema.optionalKey(PositiveInt),
  idleTimeToLive: Schema.optionalKey(DurationInput),
  maxLifetime: Schema.optionalKey(DurationInput),
  healthCheckInterval: Schema.optionalKey(DurationInput),
  acquireTimeout: Schema.optionalKey(DurationInput),
  isolation: Schema.optionalKey(literals(["shared", "per-identity"]))
})

/**
 * @since 0.1.0
 */
export type PoolSettings = typeof PoolSettings.Type

/**
 * How long a tool's results may be cached: a duration, one of the seed's named classes, or `false` (never).
 *
 * - `"static"`: 1 hour (reference data, schemas, documentation);
 * - `"dynamic"`: 5 minutes (listings, search results);
 * - `"realtime"`: never cached (prices, metrics, anything that must be fresh).
 *
 * @since 0.1.0
 */
export const CacheTtl = Schema.Union([
  literals(["static", "dynamic", "realtime"]),
  Schema.Literal(false),
  DurationInput
]).annotate({ expected: "a duration, \"static\", \"dynamic\", \"realtime\" or false" })

/**
 * @since 0.1.0
 */
export type CacheTtl = typeof CacheTtl.Type

/**
 * The TTL of each named cache class (`undefined`: never cached).
 *
 * @since 0.1.0
 */
export const cachePresets: Readonly<Record<"static" | "dynamic" | "realtime", Duration.Duration | undefined>> = {
  static: Duration.hours(1),
  dynamic: Duration.minutes(5),
  realtime: undefined
}

/**
 * Result cache settings of one server (`bridge.cache`), or `false` to cache nothing from it.
 *
 * @since 0.1.0
 */
export const CacheSettings = Schema.Union([
  Schema.Literal(false),
  Schema.Struct({
    /** TTL of the server's cacheable tools that have no TTL of their own. */
    ttl: Schema.optionalKey(CacheTtl),
    /** A call to a tool that is not read-only drops the server's cached results. */
    invalidateOnWrite: Schema.optionalKey(Schema.Boolean),
    /** Results larger than this (bytes of JSON) are not stored. */
    maxResultBytes: Schema.optionalKey(PositiveInt)
  })
])

/**
 * Rate and concurrency limits (`bridge.throttle`, or per tool).
 *
 * @since 0.1.0
 */
export const ThrottleSettings = Schema.Struct({
  perSecond: Schema.optionalKey(PositiveInt),
  perMinute: Schema.optionalKey(PositiveInt),
  /** Calls in flight at most. */
  concurrency: Schema.optionalKey(PositiveInt),
  /** Over the limit, a call waits at most this long for its turn, then fails with `RateLimited`. */
  maxWait: Schema.optionalKey(DurationInput),
  /** `"wait"` for a turn (up to `maxWait`), or `"fail"` at once with `RateLimited`. */
  onLimit: Schema.optionalKey(literals(["wait", "fail"]))
})

/**
 * @since 0.1.0
 */
export type ThrottleSettings = typeof ThrottleSettings.Type

/**
 * Retries of calls that are safe to repeat (`bridge.retry`), or `false` for none.
 *
 * @since 0.1.0
 */
export const RetrySettings = Schema.Union([
  Schema.Literal(false),
  Schema.Struct({
    /** Retries at most per call. */
    times: Schema.optionalKey(NonNegativeInt),
    /** First backoff delay (doubles each time, with jitter). */
    base: Schema.optionalKey(DurationInput),
    /** Longest backoff delay, before the ±20 % jitter. */
    maxDelay: Schema.optionalKey(DurationInput),
    /** Retries may add at most this fraction of the server's calls (a retry budget), e.g. 0.2. */
    budget: Schema.optionalKey(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 })))
  })
])

/**
 * The circuit breaker of a server (`bridge.circuitBreaker`), or `false` for none.
 *
 * @since 0.1.0
 */
export const CircuitBreakerSettings = Schema.Union([
  Schema.Literal(false),
  Schema.Struct({
    /** Opens after this many consecutive failures. */
    failures: Schema.optionalKey(PositiveInt),
    /** Or opens when the failure rate over the last `window` calls reaches this. */
    failureRate: Schema.optionalKey(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
    window: Schema.optionalKey(PositiveInt),
    /** How long the circuit stays open before a half-open probe. */
    openFor: Schema.optionalKey(DurationInput)
  })
])

/**
 * The operator's policy for one tool (`bridge.tools.<name>`). It overrides the tool's annotations, which are hints
 * that the spec says not to trust from unknown servers.
 *
 * @since 0.1.0
 */
export const ToolPolicy = Schema.Struct({
  /** Cache this tool's results for this long (implies `readOnly: true`), or `false` to never cache them. */
  cache: Schema.optionalKey(CacheTtl),
  /** The tool has no side effects: its results may be cached, and calls coalesced and retried. */
  readOnly: Schema.optionalKey(Schema.Boolean),
  /** Repeating a call has no further effect: it may be coalesced and retried. */
  idempotent: Schema.optionalKey(Schema.Boolean),
  /** Cached results are shared by every caller (the result does not depend on who asks). */
  shared: Schema.optionalKey(Schema.Boolean),
  /** Deadline of one call to this tool. */
  timeout: Schema.optionalKey(DurationInput),
  /** Limits for this tool on top of the server's. */
  throttle: Schema.optionalKey(ThrottleSettings)
})

/**
 * @since 0.1.0
 */
export type ToolPolicy = typeof ToolPolicy.Type

/**
 * The `bridge` section of a server (or the global defaults).
 *
 * @since 0.1.0
 */
export const BridgeSettings = Schema.Struct({
  /** Deadline of one tool call. */
  timeout: Schema.optionalKey(DurationInput),
  /** Deadline of opening a session (spawn or HTTP handshake, plus negotiation). */
  connectTimeout: Schema.optionalKey(DurationInput),
  protocol: Schema.optionalKey(ProtocolMode),
  pool: Schema.optionalKey(PoolSettings),
  /** Trust the server's tool annotations: `readOnlyHint` tools are cached, coalesced and retried. @default false */
  trustAnnotations: Schema.optionalKey(Schema.Boolean),
  cache: Schema.optionalKey(CacheSettings),
  throttle: Schema.optionalKey(ThrottleSettings),
  retry: Schema.optionalKey(RetrySettings),
  circuitBreaker: Schema.optionalKey(CircuitBreakerSettings),
  /** Per-tool policy, by tool name. */
  tools: Schema.optionalKey(Schema.Record(Schema.String, ToolPolicy))
})

/**
 * @since 0.1.0
 */
export type BridgeSettings = typeof BridgeSettings.Type

// -----------------------------------------------------------------------------
// Servers
// -----------------------------------------------------------------------------

const SecretMap = Schema.Record(Schema.String, Schema.RedactedFromValue(Schema.String))

/**
 * A server started as a child process that speaks MCP over stdin/stdout.
 *
 * @since 0.1.0
 */
export const StdioServer = Schema.Struct({
  type: Schema.optionalKey(Schema.Literal("stdio")),
  command: Schema.NonEmptyString,
  args: Schema.optionalKey(Schema.Array(Schema.String)),
  env: Schema.optionalKey(SecretMap),
  cwd: Schema.optionalKey(Schema.NonEmptyString),
  bridge: Schema.optionalKey(BridgeSettings)
})

const HttpUrl = Schema.String.check(Schema.isPattern(/^https?:\/\/[^\s]+$/, {
  expected: "an http:// or https:// URL"
}))

/**
 * A server reached over Streamable HTTP.
 *
 * @since 0.1.0
 */
export const HttpServer = Schema.Struct({
  type: Schema.optionalKey(Schema.Literals(["http", "streamable-http", "streamableHttp"])),
  url: HttpUrl,
  headers: Schema.optionalKey(SecretMap),
  /** OAuth 2.1 authorization (see `McpAuth`). */
  auth: Schema.optionalKey(AuthSettings),
  bridge: Schema.optionalKey(BridgeSettings)
})

/**
 * A server reached over the deprecated HTTP+SSE transport.
 *
 * @since 0.1.0
 */
export const SseServer = Schema.Struct({
  type: Schema.Literal("sse"),
  url: HttpUrl,
  headers: Schema.optionalKey(SecretMap),
  /** OAuth 2.1 authorization (see `McpAuth`). */
  auth: Schema.optionalKey(AuthSettings),
  bridge: Schema.optionalKey(BridgeSettings)
})

/**
 * A server living in the same process, connected through an in-memory transport registered with
 * `McpTransport.layer({ memory: { name: connect } })` (tests and embedded servers).
 *
 * @since 0.1.0
 */
export const MemoryServer = Schema.Struct({
  type: Schema.Literal("memory"),
  bridge: Schema.optionalKey(BridgeSettings)
})

/**
 * One entry of `mcpServers`.
 *
 * @since 0.1.0
 */
export const ServerConfig = Schema.Union([SseServer, MemoryServer, HttpServer, StdioServer])

/**
 * @since 0.1.0
 */
export type ServerConfig = typeof ServerConfig.Type

/**
 * @since 0.1.0
 */
export type ServerConfigEncoded = typeof ServerConfig.Encoded

/**
 * The transport part of a server entry (everything but `bridge`).
 *
 * @since 0.1.0
 */
export type TransportConfig =
  | Omit<typeof StdioServer.Type, "bridge">
  | Omit<typeof HttpServer.Type, "bridge">
  | Omit<typeof SseServer.Type, "bridge">
  | Omit<typeof MemoryServer.Type, "bridge">

/**
 * Server names: letters, digits, `_` and `-`, so that `server.tool` splits at the first dot.
 *
 * @since 0.1.0
 */
export const ServerName = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/, {
  expected: "a server name of 1 to 64 letters, digits, '_' or '-' (no dots)"
}))

/**
 * The whole configuration file.
 *
 * @since 0.1.0
 */
export const ConfigFile = Schema.Struct({
  mcpServers: Schema.Record(ServerName, ServerConfig),
  bridge: Schema.optionalKey(BridgeSettings)
})

// Decoding goes in two steps, so that a bad server entry is reported against the one transport it meant (chosen by
// its `type`, `command` or `url`) rather than against every member of the union.
const ConfigShape = Schema.Struct({
  mcpServers: Schema.Record(Schema.String, Schema.Record(Schema.String, Schema.Unknown)),
  bridge: Schema.optionalKey(BridgeSettings)
})

const variantOf = (entry: Record<string, unknown>) => {
  switch (entry.type) {
    case "sse":
      return SseServer
    case "memory":
      return MemoryServer
    case "stdio":
      return StdioServer
    case "http":
    case "streamable-http":
    case "streamableHttp":
      return HttpServer
    case undefined:
      return "command" in entry ? StdioServer : "url" in entry ? HttpServer : undefined
    default:
      return undefined
  }
}

/**
 * @since 0.1.0
 */
export type ConfigFileEncoded = typeof ConfigFile.Encoded

// -----------------------------------------------------------------------------
// Resolved configuration
// -----------------------------------------------------------------------------

/**
 * Pool settings with every default applied.
 *
 * @since 0.1.0
 */
export interface ResolvedPool {
  /** Sessions kept open from start-up. @default 0 (the production preset uses 2) */
  readonly min: number
  /** Sessions at most. @default 20 */
  readonly max: number
  /** Requests in flight on one session (MCP multiplexes requests). @default 16 for stdio and in-memory, 8 for HTTP */
  readonly concurrency: number
  /** Idle sessions above `min` close after this long. @default 5 minutes */
  readonly idleTimeToLive: Duration.Duration
  /** A session is replaced after this long, used or not. @default 1 hour */
  readonly maxLifetime: Duration.Duration
  /** Idle sessions are probed this often. @default 60 seconds */
  readonly healthCheckInterval: Duration.Duration
  /** A caller waits this long for a free session before `PoolTimeout`. @default 10 seconds */
  readonly acquireTimeout: Duration.Duration
  /**
   * `per-identity`: a caller only gets sessions opened for its identity. @default "shared" (always `per-identity` for
   * a server with user authorization: `auth` with a grant other than `client_credentials`)
   */
  readonly isolation: "shared" | "per-identity"
}

/**
 * One server with its transport settings and every bridge default applied.
 *
 * @since 0.1.0
 */
export interface ResolvedServer {
  readonly name: string
  readonly transport: TransportConfig
  /** Deadline of one tool call. @default 30 seconds */
  readonly timeout: Duration.Duration
  /** Deadline of opening a session. @default 15 seconds */
  readonly connectTimeout: Duration.Duration
  /** @default "auto" */
  readonly protocol: ProtocolMode
  readonly pool: ResolvedPool
  /** Trust tool annotations (`readOnlyHint`, `idempotentHint`). @default false */
  readonly trustAnnotations: boolean
  readonly cache: ResolvedCache
  /** Limits of the server, `undefined` when it has none. */
  readonly throttle: ThrottleSettings | undefined
  readonly retry: ResolvedRetry | false
  readonly circuitBreaker: ResolvedCircuitBreaker | false
  /** The operator's per-tool policies, by tool name. */
  readonly tools: ReadonlyMap<string, ToolPolicy>
}

/**
 * Result cache settings of a server with defaults applied.
 *
 * @since 0.1.0
 */
export interface ResolvedCache {
  /** `false` when the server's `bridge.cache` is `false`. */
  readonly enabled: boolean
  /**
   * TTL of the server's cacheable tools that name none: `undefined` for the `ResultCache` layer's default,
   * `Duration.zero` for "only tools with their own TTL".
   */
  readonly ttl: Duration.Duration | undefined
  /** @default true */
  readonly invalidateOnWrite: boolean
  /** `undefined` for the `ResultCache` layer's limit. */
  readonly maxResultBytes: number | undefined
}

/**
 * @since 0.1.0
 */
export interface ResolvedRetry {
  /** @default 2 */
  readonly times: number
  /** @default 100 millis */
  readonly base: Duration.Duration
  /** @default 2 seconds */
  readonly maxDelay: Duration.Duration
  /** @default 0.2 */
  readonly budget: number
}

/**
 * @since 0.1.0
 */
export interface ResolvedCircuitBreaker {
  /** @default 5 */
  readonly failures: number
  /** `undefined`: trip on consecutive failures only. */
  readonly failureRate: number | undefined
  /** @default 20 */
  readonly window: number
  /** @default 30 seconds */
  readonly openFor: Duration.Duration
}

/**
 * What the bridge may do with calls to one tool, from the operator's policy and (on a trusted server) the tool's
 * annotations. Annotations alone never make a tool cacheable on a server that is not trusted.
 *
 * @since 0.1.0
 */
export interface ResolvedToolPolicy {
  /** No side effects. */
  readonly readOnly: boolean
  /** Safe to repeat: read-only or idempotent. Such calls may be coalesced and retried. */
  readonly safe: boolean
  /** Results may be cached. */
  readonly cacheable: boolean
  /** TTL of cached results: `undefined` for the `ResultCache` layer's default. */
  readonly cacheTtl: Duration.Duration | undefined
  /** Cached results are shared across caller identities. */
  readonly shared: boolean
  /** Deadline of one call to the tool, when the policy sets one. */
  readonly timeout: Duration.Duration | undefined
  /** Limits of this tool on top of the server's. */
  readonly throttle: ThrottleSettings | undefined
}

const cacheTtlOf = (ttl: CacheTtl): Duration.Duration | undefined =>
  ttl === false ? undefined : typeof ttl === "string" ? cachePresets[ttl] : ttl

/**
 * The policy for calls to `tool` on `server`. `definition` is the tool as the server listed it (for annotations).
 *
 * @since 0.1.0
 */
export const toolPolicy = (
  server: ResolvedServer,
  tool: string,
  definition?: {
    readonly annotations?: {
      readonly readOnlyHint?: boolean | undefined
      readonly idempotentHint?: boolean | undefined
    } | undefined
  }
): ResolvedToolPolicy => {
  const policy = server.tools.get(tool)
  const hints = server.trustAnnotations ? definition?.annotations : undefined
  const explicitTtl = policy?.cache === undefined ? undefined : cacheTtlOf(policy.cache)
  const readOnly = policy?.readOnly ?? (explicitTtl !== undefined || hints?.readOnlyHint === true)
  const idempotent = policy?.idempotent ?? hints?.idempotentHint === true
  let cacheable = false
  let cacheTtl: Duration.Duration | undefined
  if (server.cache.enabled && readOnly && policy?.cache !== false && policy?.cache !== "realtime") {
    if (explicitTtl !== undefined) {
      cacheable = true
      cacheTtl = explicitTtl
    } else if (server.cache.ttl === undefined || Duration.isGreaterThan(server.cache.ttl, Duration.zero)) {
      cacheable = true
      cacheTtl = server.cache.ttl
    }
  }
  return {
    readOnly,
    safe: readOnly || idempotent,
    cacheable,
    cacheTtl,
    shared: policy?.shared ?? false,
    timeout: policy?.timeout,
    throttle: policy?.throttle
  }
}

/**
 * The decoded configuration: every server with its settings resolved. Also the service that carries it to the layers
 * of the pipeline.
 *
 * @since 0.1.0
 */
export class BridgeConfig extends Context.Service<BridgeConfig, {
  readonly servers: ReadonlyMap<string, ResolvedServer>
}>()("@mcp-bridge/core/BridgeConfig") {}

/**
 * Kind of transport of a server config.
 *
 * @since 0.1.0
 */
export const transportKind = (config: TransportConfig): "stdio" | "http" | "sse" | "memory" =>
  "command" in config ? "stdio" : config.type === "sse" ? "sse" : config.type === "memory" ? "memory" : "http"

/**
 * The defaults every server starts from.
 *
 * @since 0.1.0
 */
export const defaults = {
  timeout: Duration.seconds(30),
  connectTimeout: Duration.seconds(15),
  protocol: "auto" as ProtocolMode,
  pool: {
    min: 0,
    max: 20,
    idleTimeToLive: Duration.minutes(5),
    maxLifetime: Duration.hours(1),
    healthCheckInterval: Duration.seconds(60),
    acquireTimeout: Duration.seconds(10),
    isolation: "shared" as const
  },
  retry: { times: 2, base: Duration.millis(100), maxDelay: Duration.seconds(2), budget: 0.2 },
  circuitBreaker: { failures: 5, window: 20, openFor: Duration.seconds(30) }
} as const

const resolveServer = (
  name: string,
  server: ServerConfig,
  global: BridgeSettings | undefined
): ResolvedServer => {
  const { bridge, ...transport } = server as ServerConfig & { readonly bridge?: BridgeSettings }
  const kind = transportKind(transport)
  const pool = { ...global?.pool, ...bridge?.pool }
  // A server that users authorize (OAuth) keeps each caller's sessions apart, as their tokens are.
  const userAuth = "auth" in transport && transport.auth !== undefined && transport.auth.grant !== "client_credentials"
  return {
    name,
    transport,
    timeout: bridge?.timeout ?? global?.timeout ?? defaults.timeout,
    connectTimeout: bridge?.connectTimeout ?? global?.connectTimeout ?? defaults.connectTimeout,
    protocol: bridge?.protocol ?? global?.protocol ?? defaults.protocol,
    pool: {
      min: pool.min ?? defaults.pool.min,
      max: Math.max(pool.max ?? defaults.pool.max, pool.min ?? 1),
      concurrency: pool.concurrency ?? (kind === "http" || kind === "sse" ? 8 : 16),
      idleTimeToLive: pool.idleTimeToLive ?? defaults.pool.idleTimeToLive,
      maxLifetime: pool.maxLifetime ?? defaults.pool.maxLifetime,
      healthCheckInterval: pool.healthCheckInterval ?? defaults.pool.healthCheckInterval,
      acquireTimeout: pool.acquireTimeout ?? defaults.pool.acquireTimeout,
      isolation: userAuth ? "per-identity" : pool.isolation ?? defaults.pool.isolation
    },
    trustAnnotations: bridge?.trustAnnotations ?? global?.trustAnnotations ?? false,
    cache: resolveCache(global?.cache, bridge?.cache),
    throttle: global?.throttle === undefined && bridge?.throttle === undefined
      ? undefined
      : { ...global?.throttle, ...bridge?.throttle },
    retry: resolveRetry(global?.retry, bridge?.retry),
    circuitBreaker: resolveBreaker(global?.circuitBreaker, bridge?.circuitBreaker),
    tools: new Map(Object.entries({ ...global?.tools, ...bridge?.tools }))
  }
}

type Settings<K extends keyof BridgeSettings> = NonNullable<BridgeSettings[K]>

// A server's section overrides the global one field by field; `false` in the server's section switches it off, and
// `false` globally is overridden by a server's own object.
const merged = <A extends object>(global: A | false | undefined, server: A | false | undefined): A | false =>
  server === false ? false : server === undefined ? (global ?? {} as A) : { ...(global || {}), ...server }

const resolveCache = (global: Settings<"cache"> | undefined, server: Settings<"cache"> | undefined): ResolvedCache => {
  const cache = merged(global, server)
  if (cache === false) return { enabled: false, ttl: undefined, invalidateOnWrite: true, maxResultBytes: undefined }
  return {
    enabled: true,
    ttl: cache.ttl === undefined ? undefined : cacheTtlOf(cache.ttl) ?? Duration.zero,
    invalidateOnWrite: cache.invalidateOnWrite ?? true,
    maxResultBytes: cache.maxResultBytes
  }
}

const resolveRetry = (global: Settings<"retry"> | undefined, server: Settings<"retry"> | undefined) => {
  const retry = merged(global, server)
  return retry === false ? false : {
    times: retry.times ?? defaults.retry.times,
    base: retry.base ?? defaults.retry.base,
    maxDelay: retry.maxDelay ?? defaults.retry.maxDelay,
    budget: retry.budget ?? defaults.retry.budget
  }
}

const resolveBreaker = (
  global: Settings<"circuitBreaker"> | undefined,
  server: Settings<"circuitBreaker"> | undefined
) => {
  const breaker = merged(global, server)
  return breaker === false ? false : {
    failures: breaker.failures ?? defaults.circuitBreaker.failures,
    failureRate: breaker.failureRate,
    window: breaker.window ?? defaults.circuitBreaker.window,
    openFor: breaker.openFor ?? defaults.circuitBreaker.openFor
  }
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * The configuration could not be read or decoded. `message` names the server and the field, e.g.
 * `mcpServers.github.bridge.timeout: Expected a duration such as "30 seconds" ..., got "soon"`.
 *
 * @since 0.1.0
 */
export class BridgeConfigError extends Schema.TaggedError<BridgeConfigError>()("BridgeConfigError", {
  reason: Schema.Literals(["Invalid", "Unreadable"]),
  /** The path of the first offending field, e.g. `["mcpServers", "github", "url"]`. */
  path: Schema.Array(Schema.String),
  /** The server the problem is in, when it is in one. */
  server: Schema.optionalKey(Schema.String),
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.path.length > 0 ? `${this.path.join(".")}: ` : ""}${this.detail}`
  }
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

// Values under these keys are secrets: an error about them never shows the value.
const secretKeys = new Set(["env", "headers", "clientSecret", "privateKey", "idToken"])

const describeInput = (root: unknown, path: ReadonlyArray<string>): string | undefined => {
  let value = root
  for (const key of path) {
    if (secretKeys.has(key)) return undefined
    if (typeof value !== "object" || value === null || !(key in value)) return undefined
    value = (value as Record<string, unknown>)[key]
  }
  const text = JSON.stringify(value)
  return text === undefined || text.length > 80 ? undefined : text
}

const issueToError = (
  issue: SchemaIssue.Issue,
  prefix: ReadonlyArray<string>,
  root: unknown
): BridgeConfigError => {
  const leaves: Array<{ path: Array<string>; message: string }> = []
  for (const leaf of formatter(issue).issues) {
    const relative = (leaf.path ?? []).map((p) => String(typeof p === "object" && p !== null ? p.key : p))
    const path = [...prefix, ...relative]
    const got = leaf.message.includes(", got ") ? undefined : describeInput(root, relative)
    const message = got === undefined ? leaf.message : `${leaf.message}, got ${got}`
    if (!leaves.some((l) => l.message === message && l.path.join(".") === path.join("."))) {
      leaves.push({ path, message })
    }
  }
  const path = leaves[0]?.path ?? [...prefix]
  return new BridgeConfigError({
    reason: "Invalid",
    path,
    ...(path[0] === "mcpServers" && path[1] !== undefined ? { server: path[1] } : {}),
    detail: leaves.map((leaf, i) => i === 0 ? leaf.message : `${leaf.path.join(".")}: ${leaf.message}`).join("; ")
  })
}

const isServerName = Schema.is(ServerName)
const parseOptions = { onExcessProperty: "error", errors: "all" } as const
const decodeShape = Schema.decodeUnknownEffect(ConfigShape)

const decodeServer = (name: string, entry: Record<string, unknown>) => {
  const variant = variantOf(entry)
  if (variant === undefined) {
    return Effect.fail(
      new BridgeConfigError({
        reason: "Invalid",
        path: ["mcpServers", name, ...("type" in entry ? ["type"] : [])],
        server: name,
        detail: "type" in entry
          ? `Expected type "stdio", "http", "streamable-http", "sse" or "memory", got ${JSON.stringify(entry.type)}`
          : "Expected a \"command\" (stdio server) or a \"url\" (HTTP server)"
      })
    )
  }
  return (Schema.decodeUnknownEffect(variant as Schema.Codec<ServerConfig, unknown>))(entry, parseOptions).pipe(
    Effect.mapError((error) => issueToError(error.issue, ["mcpServers", name], entry))
  )
}

/**
 * Decodes a configuration object (the parsed JSON of an `mcpServers` file).
 *
 * @example
 * ```ts
 * const config = yield* BridgeConfig.decode({ mcpServers: { docs: { url: "http://127.0.0.1:3000/mcp" } } })
 * ```
 *
 * @since 0.1.0
 */
export const decode = (input: unknown): Effect.Effect<BridgeConfig["Service"], BridgeConfigError> =>
  Effect.gen(function*() {
    const file = yield* decodeShape(input, parseOptions).pipe(
      Effect.mapError((error) => issueToError(error.issue, [], input))
    )
    const servers = new Map<string, ResolvedServer>()
    for (const [name, entry] of Object.entries(file.mcpServers)) {
      if (!isServerName(name)) {
        return yield* new BridgeConfigError({
          reason: "Invalid",
          path: ["mcpServers", name],
          server: name,
          detail: `Invalid server name ${JSON.stringify(name)}: use 1 to 64 letters, digits, '_' or '-' (no dots)`
        })
      }
      servers.set(name, resolveServer(name, yield* decodeServer(name, entry), file.bridge))
    }
    return { servers }
  })

/**
 * Loads a configuration: from a JSON file when given a path (needs a `FileSystem`, e.g. from
 * `@effect/platform-node`'s `NodeServices.layer`), or from an object.
 *
 * @since 0.1.0
 */
export const load: {
  (path: string): Effect.Effect<BridgeConfig["Service"], BridgeConfigError, FileSystem.FileSystem>
  (input: object): Effect.Effect<BridgeConfig["Service"], BridgeConfigError>
} = ((input: string | object) =>
  typeof input === "string"
    ? FileSystem.FileSystem.use((fs) => fs.readFileString(input)).pipe(
      Effect.mapError((error) =>
        new BridgeConfigError({ reason: "Unreadable", path: [], detail: `cannot read ${input}: ${error.message}` })
      ),
      Effect.flatMap((text) =>
        Effect.try({
          try: () => JSON.parse(text) as unknown,
          catch: (error) =>
            new BridgeConfigError({ reason: "Unreadable", path: [], detail: `${input} is not JSON: ${String(error)}` })
        })
      ),
      Effect.flatMap(decode)
    )
    : decode(input)) as any

/**
 * Provides the configuration decoded from an object, or loaded from a JSON file path.
 *
 * @since 0.1.0
 */
export const layer: {
  (path: string): Layer.Layer<BridgeConfig, BridgeConfigError, FileSystem.FileSystem>
  (input: object): Layer.Layer<BridgeConfig, BridgeConfigError>
} = ((input: any) => Layer.effect(BridgeConfig, load(input))) as any

/**
 * Provides an already decoded configuration.
 *
 * @since 0.1.0
 */
export const layerResolved = (config: BridgeConfig["Service"]): Layer.Layer<BridgeConfig> =>
  Layer.succeed(BridgeConfig, config)

/**
 * Reveals a secret map for a transport (the one place secrets leave their `Redacted` wrapper).
 *
 * @internal
 */
export const revealAll = (secrets: Readonly<Record<string, Redacted.Redacted<string>>> | undefined) =>
  secrets === undefined
    ? undefined
    : Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, Redacted.value(v)]))
