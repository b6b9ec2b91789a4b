/**
 * The schemas of the bridge's configuration: the Claude-style `{ "mcpServers": { ... } }` JSON that users already
 * have, with an optional `bridge` section per server over global defaults.
 *
 * Built on Effect `Schema`: `BridgeConfig.decode` decodes with these and resolves the result into one typed
 * configuration. Secrets (stdio `env` values and HTTP `headers`) decode into `Redacted` values, so they never print in
 * logs, errors or spans. Use these schemas to validate a configuration of your own, or to extend it.
 *
 * @since 0.1.0
 */
import { Duration, Schema } from "effect"
import { AuthSettings } from "../auth/McpAuth.ts"

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
    !Duration.isGreaterThan(d, Duration.zero)
      ? `Expected a positive duration, got ${Duration.format(d)}`
      : Duration.isGreaterThan(d, maxDuration)
      ? `Expected a duration of at most 24 days, got ${Duration.format(d)}`
      : true
  )
)

const literals = <const L extends ReadonlyArray<string>>(values: L) =>
  Schema.Literals(values).annotate({ expected: `one of ${values.map((v) => JSON.stringify(v)).join(", ")}` })

// The longest delay a timer can hold (2^31 - 1 ms): longer durations in a configuration are refused, not wrapped.
const maxDuration = Duration.millis(2_147_483_647)

// Every count and size has a sane maximum, so that a typo (`1e9`) is a clear error rather than a host that runs out
// of memory or processes.
const count = (max: number, min = 1) => Schema.Int.check(Schema.isBetween({ minimum: min, maximum: max }))

const MiB = 1024 * 1024

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
 * The type of `ProtocolMode`: `"auto"`, `"legacy"` or `"2026-07-28"`, as `bridge.protocol` takes it and
 * `ResolvedServer.protocol` holds it.
 *
 * @since 0.1.0
 */
export type ProtocolMode = typeof ProtocolMode.Type

/**
 * Pool settings of one server (`bridge.pool`). Every field is optional and falls back to the global defaults.
 *
 * @since 0.1.0
 */
export const PoolSettings = Schema.Struct({
  /** At most 1000. */
  min: Schema.optionalKey(count(1000, 0)),
  /** At most 1000. */
  max: Schema.optionalKey(count(1000)),
  /** At most 10000. */
  concurrency: Schema.optionalKey(count(10_000)),
  idleTimeToLive: Schema.optionalKey(DurationInput),
  maxLifetime: Schema.optionalKey(DurationInput),
  healthCheckInterval: Schema.optionalKey(DurationInput),
  acquireTimeout: Schema.optionalKey(DurationInput),
  isolation: Schema.optionalKey(literals(["shared", "per-identity"])),
  /** With per-identity isolation: sessions at most over all identities of the server. */
  maxTotal: Schema.optionalKey(count(10_000))
})

/**
 * The decoded type of `PoolSettings`: a `bridge.pool` section before defaults are applied (`BridgeConfig.ResolvedPool`
 * is the resolved form).
 *
 * @since 0.1.0
 */
export type PoolSettings = typeof PoolSettings.Type

/**
 * How long a tool's results may be cached: a duration, a named class, or `false` (never).
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
 * The decoded type of `CacheTtl`: a `Duration`, `"static"`, `"dynamic"`, `"realtime"` or `false`; `cacheTtlOf` turns it
 * into a TTL.
 *
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
 * The TTL a `CacheTtl` stands for: a duration, a preset's, or `undefined` (never cached: `false`, `"realtime"`).
 *
 * @since 0.1.0
 */
export const cacheTtlOf = (ttl: CacheTtl): Duration.Duration | undefined =>
  ttl === false ? undefined : typeof ttl === "string" ? cachePresets[ttl] : ttl

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
    maxResultBytes: Schema.optionalKey(count(1024 * MiB))
  })
])

/**
 * Rate and concurrency limits (`bridge.throttle`, or per tool).
 *
 * @since 0.1.0
 */
export const ThrottleSettings = Schema.Struct({
  perSecond: Schema.optionalKey(count(100_000)),
  perMinute: Schema.optionalKey(count(1_000_000)),
  /** Calls in flight at most. */
  concurrency: Schema.optionalKey(count(100_000)),
  /** Over the limit, a call waits at most this long for its turn, then fails with `RateLimited`. */
  maxWait: Schema.optionalKey(DurationInput),
  /** `"wait"` for a turn (up to `maxWait`), or `"fail"` at once with `RateLimited`. */
  onLimit: Schema.optionalKey(literals(["wait", "fail"]))
})

/**
 * The decoded type of `ThrottleSettings`: the limits of a server (`ResolvedServer.throttle`), of a tool
 * (`ToolPolicy.throttle`), or the throttler's `defaults` (`Throttler.Options`).
 *
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
    times: Schema.optionalKey(count(100, 0)),
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
    failures: Schema.optionalKey(count(100_000)),
    /** Or opens when the failure rate over the last `window` calls reaches this. */
    failureRate: Schema.optionalKey(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
    window: Schema.optionalKey(count(100_000)),
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
export const ToolSettings = Schema.Struct({
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
 * The decoded type of `ToolSettings`: the operator's policy for one tool, as `ResolvedServer.tools` holds it;
 * `ToolPolicy.resolve` turns it into what the stages do with the tool's calls.
 *
 * @since 0.1.0
 */
export type ToolSettings = typeof ToolSettings.Type

/**
 * The `bridge` section of a server (or the global defaults).
 *
 * @since 0.1.0
 */
export const BridgeSettings = Schema.Struct({
  /** Deadline of one attempt of a tool call on the wire. */
  timeout: Schema.optionalKey(DurationInput),
  /** Overall deadline of one tool call: every wait and every attempt. Default: twice the attempt's `timeout`. */
  deadline: Schema.optionalKey(DurationInput),
  /**
   * Deadline of opening a session (spawn or HTTP handshake, plus negotiation). Default: 15 seconds; 60 seconds for a
   * stdio server started by a package runner (`npx`, `uvx`, `bunx`, `pnpm`, `docker`...), whose first start may
   * download it.
   */
  connectTimeout: Schema.optionalKey(DurationInput),
  /** The least severe log level the server should send (its messages go to `ClientHandlers.log`). */
  logLevel: Schema.optionalKey(
    literals(["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"])
  ),
  /** Largest answer accepted from the server (stdio), in bytes; a larger one fails its request. */
  maxMessageBytes: Schema.optionalKey(count(1024 * MiB, 1024)),
  protocol: Schema.optionalKey(ProtocolMode),
  pool: Schema.optionalKey(PoolSettings),
  /** Trust the server's tool annotations: `readOnlyHint` tools are cached, coalesced and retried. @default false */
  trustAnnotations: Schema.optionalKey(Schema.Boolean),
  cache: Schema.optionalKey(CacheSettings),
  throttle: Schema.optionalKey(ThrottleSettings),
  retry: Schema.optionalKey(RetrySettings),
  circuitBreaker: Schema.optionalKey(CircuitBreakerSettings),
  /** Per-tool policy, by tool name. */
  tools: Schema.optionalKey(Schema.Record(Schema.String, ToolSettings))
})

/**
 * The decoded type of `BridgeSettings`: a server's `bridge` section or the global one, before defaults are applied
 * (`BridgeConfig.ResolvedServer` is the resolved form).
 *
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

const HttpUrl = Schema.String.check(
  Schema.isPattern(/^https?:\/\/[^\s]+$/, { expected: "an http:// or https:// URL" }),
  Schema.makeFilter((url: string) => URL.canParse(url) || `Expected a URL that parses, got ${JSON.stringify(url)}`)
)

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
 * The decoded type of one `mcpServers` entry: a stdio, Streamable HTTP, SSE or in-memory server, with secrets as
 * `Redacted` values and durations as `Duration`s.
 *
 * @since 0.1.0
 */
export type ServerConfig = typeof ServerConfig.Type

/**
 * The JSON form of one `mcpServers` entry, as a configuration file holds it (durations as strings or milliseconds,
 * secrets as plain strings): use it to type a server entry written in code.
 *
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
 * The JWT signature algorithms `gateway.oauth.algorithms` accepts: asymmetric ones only (never `none`, never a
 * shared-secret HMAC).
 *
 * @since 0.1.0
 */
export const JwtAlgorithm = literals([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519"
])

const Scope = Schema.String.check(Schema.isPattern(/^[\x21\x23-\x5B\x5D-\x7E]+$/, {
  expected: "an OAuth scope (printable ASCII, no spaces, quotes or backslashes)"
}))

/**
 * The `gateway.oauth` entry: the gateway as an OAuth 2.1 resource server. `/mcp` then accepts
 * `Authorization: Bearer <JWT>` access tokens issued by `issuer` for the gateway's `resource` (RFC 8707: the token's
 * `aud`), checked against the issuer's JWKS (from its metadata, or `jwksUri`); the token's `iss` and `sub` become the
 * caller's identity. `requiredScopes` are needed for any request (else `403 insufficient_scope`), `scopes` maps each
 * scope to the tools (globs of served names) it lets the caller see, and `adminScope` opens the dashboard.
 *
 * @since 0.1.0
 */
export const OAuthSettings = Schema.Struct({
  /** The authorization server's issuer identifier (its `iss`): https, or http on a loopback address. */
  issuer: HttpUrl,
  /** The gateway's public MCP URL, its resource identifier. @default the URL it listens on */
  resource: Schema.optionalKey(HttpUrl),
  /** The `aud` values accepted. @default the `resource` */
  audience: Schema.optionalKey(Schema.Union([Schema.String, Schema.Array(Schema.String).check(Schema.isMinLength(1))])),
  /** The issuer's JWKS. @default the `jwks_uri` of the issuer's metadata (RFC 8414, else OpenID discovery) */
  jwksUri: Schema.optionalKey(HttpUrl),
  /** Accepted signature algorithms. @default ["RS256", "PS256", "ES256", "EdDSA"] */
  algorithms: Schema.optionalKey(Schema.Array(JwtAlgorithm).check(Schema.isMinLength(1))),
  /** Scopes every request needs. @default none */
  requiredScopes: Schema.optionalKey(Schema.Array(Scope)),
  /**
   * The tools each scope lets a caller see (globs of served names); a caller sees the union of its scopes', and a
   * call of a tool only another scope shows is answered `403 insufficient_scope` naming that scope (step-up).
   */
  scopes: Schema.optionalKey(Schema.Record(Scope, Schema.Array(Schema.String))),
  /** The scope that opens the dashboard. @default none */
  adminScope: Schema.optionalKey(Scope),
  /** Leeway on `exp` and `nbf`. @default "30 seconds" */
  clockTolerance: Schema.optionalKey(DurationInput),
  /** A token signed with a key the cached JWKS lacks refetches it, at most once per this interval. @default "30 seconds" */
  jwksRefetchInterval: Schema.optionalKey(DurationInput),
  /** How long a fetched JWKS is used before it is fetched again. @default "10 minutes" */
  jwksMaxAge: Schema.optionalKey(DurationInput)
})

/**
 * The decoded `gateway.oauth` entry.
 *
 * @since 0.1.0
 */
export type OAuthSettings = typeof OAuthSettings.Type

/**
 * The `gateway` section of a configuration: how `mcp-bridge serve` names the tools it serves (prefix mode, separator,
 * per-server include and exclude globs, per-tool rename and description), named subsets of them served at their own
 * paths (`virtualServers`), and who may call (`apiKeys`, stored as SHA-256 hex digests; `admin: true` also opens the
 * dashboard; `oauth`, access tokens of an OAuth 2.1 authorization server, see `OAuthSettings`). Read by the gateway
 * of `@mcp-bridge/node`; the bridge itself ignores it.
 *
 * @since 0.1.0
 */
export const GatewaySettings = Schema.Struct({
  prefix: Schema.optionalKey(literals(["auto", "always", "never"])),
  separator: Schema.optionalKey(Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{0,8}$/, {
    expected: "a separator of at most 8 letters, digits, '_' or '-'"
  }))),
  servers: Schema.optionalKey(Schema.Record(
    Schema.String,
    Schema.Struct({
      prefix: Schema.optionalKey(Schema.String),
      include: Schema.optionalKey(Schema.Array(Schema.String)),
      exclude: Schema.optionalKey(Schema.Array(Schema.String)),
      tools: Schema.optionalKey(Schema.Record(
        Schema.String,
        Schema.Struct({ name: Schema.optionalKey(Schema.String), description: Schema.optionalKey(Schema.String) })
      ))
    })
  )),
  virtualServers: Schema.optionalKey(Schema.Record(
    Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/, {
      expected: "a virtual server name of 1 to 64 letters, digits, '_' or '-'"
    })),
    Schema.Struct({
      servers: Schema.optionalKey(Schema.Array(Schema.String)),
      tools: Schema.optionalKey(Schema.Array(Schema.String))
    })
  )),
  apiKeys: Schema.optionalKey(Schema.Array(Schema.Struct({
    principal: Schema.String,
    sha256: Schema.String.check(Schema.isPattern(/^[0-9a-f]{64}$/, { expected: "64 lowercase hex digits" })),
    tools: Schema.optionalKey(Schema.Array(Schema.String)),
    admin: Schema.optionalKey(Schema.Boolean)
  }))),
  oauth: Schema.optionalKey(OAuthSettings)
})

/**
 * The `redis` entry of a configuration: the Redis that several `mcp-bridge serve` replicas share (sessions, list
 * changes, result cache, rate limits, circuits of remote servers). A URL (`"redis://:password@host:6379"`), or an
 * object with the URL, a key `prefix`, and what rate limits do while Redis is unreachable (`"refuse"`, or admit a
 * per-replica `share` of each limit). The URL decodes into a `Redacted` value: it may hold a password. Read by the
 * gateway of `@mcp-bridge/node`; the bridge itself ignores it.
 *
 * @since 0.1.0
 */
export const RedisSettings = Schema.Union([
  Schema.RedactedFromValue(Schema.String),
  Schema.Struct({
    url: Schema.RedactedFromValue(Schema.String),
    prefix: Schema.optionalKey(Schema.String),
    onUnreachable: Schema.optionalKey(Schema.Union([
      Schema.Literal("refuse"),
      Schema.Struct({ share: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)) })
    ]))
  })
])

/**
 * The decoded `redis` entry.
 *
 * @since 0.1.0
 */
export type RedisSettings = typeof RedisSettings.Type

/**
 * The whole configuration file.
 *
 * @since 0.1.0
 */
export const ConfigFile = Schema.Struct({
  mcpServers: Schema.Record(ServerName, ServerConfig),
  bridge: Schema.optionalKey(BridgeSettings),
  gateway: Schema.optionalKey(GatewaySettings),
  redis: Schema.optionalKey(RedisSettings)
})

/**
 * The JSON form of a whole configuration (`mcpServers` and the optional global `bridge` section): use it to type a
 * configuration written in code before it goes to `BridgeConfig.decode`, `McpBridge.layer` or `createBridge`.
 *
 * @since 0.1.0
 */
export type ConfigFileEncoded = typeof ConfigFile.Encoded
