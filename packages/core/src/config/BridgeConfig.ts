/**
 * The bridge's configuration, resolved: every server of a Claude-style `{ "mcpServers": { ... } }` file with its
 * `bridge` settings merged over the global ones and every default applied, as one typed value and the service that
 * carries it to the pipeline.
 *
 * Built on Effect `Schema` (the schemas are in `BridgeConfigSchema`): decoding goes in two steps, so that a bad server
 * entry is reported against the one transport it meant (by its `type`, `command` or `url`) rather than against every
 * member of a union, and every failure is a `BridgeConfigError` naming the server and the field.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, FileSystem, Layer, Schema, SchemaIssue } from "effect"
import { BridgeConfigError, invalid, Unreadable } from "../errors/BridgeConfigError.ts"
import {
  BridgeSettings,
  cacheTtlOf,
  GatewaySettings,
  HttpServer,
  MemoryServer,
  type ProtocolMode,
  RedisSettings,
  type ServerConfig,
  ServerName,
  SseServer,
  StdioServer,
  type ThrottleSettings,
  type ToolSettings,
  type TransportConfig
} from "./BridgeConfigSchema.ts"

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
  /**
   * Requests in flight on one session (MCP multiplexes requests on a session; a new session is opened only when the
   * open ones stay saturated, see `ConnectionPool`). @default 64
   */
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
  /** With per-identity isolation, sessions at most over all identities. @default 20, or `max` if larger */
  readonly maxTotal: number
}

/**
 * One server with its transport settings and every bridge default applied.
 *
 * @since 0.1.0
 */
export interface ResolvedServer {
  readonly name: string
  readonly transport: TransportConfig
  /** Deadline of one attempt of a tool call on the wire. @default 30 seconds */
  readonly timeout: Duration.Duration
  /** Overall deadline of one tool call (waits and attempts). @default twice the attempt's timeout */
  readonly deadline: Duration.Duration | undefined
  /** Deadline of opening a session. @default 15 seconds */
  readonly connectTimeout: Duration.Duration
  /** The least severe log level the server should send. @default none asked for */
  readonly logLevel: "debug" | "info" | "notice" | "warning" | "error" | "critical" | "alert" | "emergency" | undefined
  /** Largest answer accepted from the server (stdio), in bytes. @default 32 MiB */
  readonly maxMessageBytes: number
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
  readonly tools: ReadonlyMap<string, ToolSettings>
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
 * A server's retry settings (its `bridge.retry` over the global one) with every default applied, as
 * `ResolvedServer.retry` holds them (`false` there when retries are off). `Resilience` reads them for calls that are
 * safe to repeat: at most `times` retries, with exponential backoff from `base` capped at `maxDelay` and jittered,
 * within a budget of `budget` retries per call.
 *
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
 * A server's circuit breaker settings (its `bridge.circuitBreaker` over the global one) with every default applied, as
 * `ResolvedServer.circuitBreaker` holds them (`false` there when the server has no breaker). `Resilience` opens the
 * circuit after `failures` consecutive failures, or with `failureRate` when that share of the last `window` calls
 * failed; each open period starts short and doubles up to `openFor`.
 *
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

// -----------------------------------------------------------------------------
// Service and resolution
// -----------------------------------------------------------------------------

/**
 * The decoded configuration: every server with its settings resolved. Also the service that carries it to the layers
 * of the pipeline; provide it with `layer` (from an object or a JSON file) or `layerResolved`.
 *
 * @since 0.1.0
 */
export class BridgeConfig
  extends Context.Service<BridgeConfig, BridgeConfig.Service>()("@mcp-bridge/core/BridgeConfig")
{}

/**
 * The type of the configuration service, `BridgeConfig.Service`.
 *
 * @since 0.1.0
 */
export declare namespace BridgeConfig {
  /**
   * The resolved configuration: what `decode` and `load` return and what `layerResolved` takes. The pool, the stages
   * and the router read each server's settings from `servers`.
   *
   * @since 0.1.0
   */
  export interface Service {
    /**
     * Every configured server, by name, with its settings resolved. The servers in force: a bridge's `reconfigure`
     * changes this map in place.
     */
    readonly servers: ReadonlyMap<string, ResolvedServer>
  }
}

/**
 * The kind of transport of a server entry: `stdio` (a `command`), `http` (Streamable HTTP), `sse` or `memory`.
 *
 * @since 0.1.0
 */
export const transportKind = (config: TransportConfig): "stdio" | "http" | "sse" | "memory" =>
  "command" in config ? "stdio" : config.type === "sse" ? "sse" : config.type === "memory" ? "memory" : "http"

/**
 * The defaults every server starts from, under the global `bridge` section and the server's own.
 *
 * @since 0.1.0
 */
export const defaults = {
  timeout: Duration.seconds(30),
  connectTimeout: Duration.seconds(15),
  maxMessageBytes: 32 * 1024 * 1024,
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

// Commands that may download the server before starting it (a package runner, a container): a first start on a cold
// cache takes seconds to minutes, so their sessions get longer to open.
const packageRunners = new Set(["npx", "pnpx", "bunx", "uvx", "uv", "pipx", "pnpm", "yarn", "deno", "docker", "podman"])
const downloadsFirst = (transport: object): boolean => {
  const command = (transport as { readonly command?: unknown }).command
  if (typeof command !== "string") return false
  const base = command.slice(Math.max(command.lastIndexOf("/"), command.lastIndexOf("\\")) + 1).replace(
    /\.(cmd|exe)$/i,
    ""
  )
  return packageRunners.has(base)
}

/** The `connectTimeout` of stdio servers started by a package runner (`npx -y`, `uvx`, `docker run`...). */
const runnerConnectTimeout = Duration.seconds(60)

const resolveServer = (
  name: string,
  server: ServerConfig,
  global: BridgeSettings | undefined
): ResolvedServer => {
  const { bridge, ...transport } = server as ServerConfig & { readonly bridge?: BridgeSettings }
  const pool = { ...global?.pool, ...bridge?.pool }
  // A server that users authorize (OAuth) keeps each caller's sessions apart, as their tokens are.
  const userAuth = "auth" in transport && transport.auth !== undefined && transport.auth.grant !== "client_credentials"
  return {
    name,
    transport,
    timeout: bridge?.timeout ?? global?.timeout ?? defaults.timeout,
    deadline: bridge?.deadline ?? global?.deadline,
    connectTimeout: bridge?.connectTimeout ?? global?.connectTimeout ??
      (downloadsFirst(transport) ? runnerConnectTimeout : defaults.connectTimeout),
    maxMessageBytes: bridge?.maxMessageBytes ?? global?.maxMessageBytes ?? defaults.maxMessageBytes,
    logLevel: bridge?.logLevel ?? global?.logLevel,
    protocol: bridge?.protocol ?? global?.protocol ?? defaults.protocol,
    pool: {
      min: pool.min ?? defaults.pool.min,
      max: Math.max(pool.max ?? defaults.pool.max, pool.min ?? 1),
      concurrency: pool.concurrency ?? 64,
      idleTimeToLive: pool.idleTimeToLive ?? defaults.pool.idleTimeToLive,
      maxLifetime: pool.maxLifetime ?? defaults.pool.maxLifetime,
      healthCheckInterval: pool.healthCheckInterval ?? defaults.pool.healthCheckInterval,
      acquireTimeout: pool.acquireTimeout ?? defaults.pool.acquireTimeout,
      isolation: userAuth ? "per-identity" : pool.isolation ?? defaults.pool.isolation,
      maxTotal: pool.maxTotal ?? Math.max(20, pool.max ?? defaults.pool.max)
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
// Decoding
// -----------------------------------------------------------------------------

// Decoding goes in two steps, so that a bad server entry is reported against the one transport it meant (chosen by
// its `type`, `command` or `url`) rather than against every member of the union.
const ConfigShape = Schema.Struct({
  mcpServers: Schema.Record(Schema.String, Schema.Record(Schema.String, Schema.Unknown)),
  bridge: Schema.optionalKey(BridgeSettings),
  gateway: Schema.optionalKey(GatewaySettings),
  redis: Schema.optionalKey(RedisSettings)
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
  return invalid(
    path,
    leaves.map((leaf, i) => i === 0 ? leaf.message : `${leaf.path.join(".")}: ${leaf.message}`).join("; ")
  )
}

const isServerName = Schema.is(ServerName)
const parseOptions = { onExcessProperty: "error", errors: "all" } as const
const decodeShape = Schema.decodeUnknownEffect(ConfigShape)

const decodeServer = (name: string, entry: Record<string, unknown>) => {
  const variant = variantOf(entry)
  if (variant === undefined) {
    return Effect.fail(
      invalid(
        ["mcpServers", name, ...("type" in entry ? ["type"] : [])],
        "type" in entry
          ? `Expected type "stdio", "http", "streamable-http", "sse" or "memory", got ${JSON.stringify(entry.type)}`
          : "Expected a \"command\" (stdio server) or a \"url\" (HTTP server)"
      )
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
export const decode = (input: unknown): Effect.Effect<BridgeConfig.Service, BridgeConfigError> =>
  Effect.gen(function*() {
    const file = yield* decodeShape(input, parseOptions).pipe(
      Effect.mapError((error) => issueToError(error.issue, [], input))
    )
    const servers = new Map<string, ResolvedServer>()
    for (const [name, entry] of Object.entries(file.mcpServers)) {
      if (!isServerName(name)) {
        return yield* invalid(
          ["mcpServers", name],
          `Invalid server name ${JSON.stringify(name)}: use 1 to 64 letters, digits, '_' or '-' (no dots)`
        )
      }
      const server = yield* decodeServer(name, entry)
      const own = (server as { readonly bridge?: BridgeSettings }).bridge?.pool
      const min = own?.min ?? file.bridge?.pool?.min
      const max = own?.max ?? file.bridge?.pool?.max
      if (min !== undefined && max !== undefined && min > max) {
        return yield* invalid(
          own?.min !== undefined ? ["mcpServers", name, "bridge", "pool", "min"] : ["bridge", "pool", "min"],
          `Expected pool.min (${min}) to be at most pool.max (${max})`
        )
      }
      servers.set(name, resolveServer(name, server, file.bridge))
    }
    return { servers }
  })

/**
 * Loads a configuration: from a JSON file when given a path (needs a `FileSystem`, e.g. from
 * `@effect/platform-node`'s `NodeServices.layer`), or from an object. A Claude Desktop, Claude Code or Cursor config
 * file works as it is: only its `mcpServers` (and an optional `bridge` section) are read.
 *
 * @since 0.1.0
 */
export const load: {
  (path: string): Effect.Effect<BridgeConfig.Service, BridgeConfigError, FileSystem.FileSystem>
  (input: object): Effect.Effect<BridgeConfig.Service, BridgeConfigError>
} = ((input: string | object) =>
  typeof input === "string"
    ? FileSystem.FileSystem.use((fs) => fs.readFileString(input)).pipe(
      Effect.mapError((error) =>
        new BridgeConfigError({ reason: new Unreadable({ file: input, detail: `cannot read it: ${error.message}` }) })
      ),
      Effect.flatMap((text) =>
        Effect.try({
          try: () => JSON.parse(text) as unknown,
          catch: (error) =>
            new BridgeConfigError({ reason: new Unreadable({ file: input, detail: `not JSON: ${String(error)}` }) })
        })
      ),
      // An application's file holds its other settings next to `mcpServers`: only the bridge's two keys are read.
      Effect.flatMap((json) =>
        decode(
          typeof json === "object" && json !== null && !Array.isArray(json)
            ? Object.fromEntries(
              Object.entries(json).filter(([key]) => key === "mcpServers" || key === "bridge" || key === "gateway")
            )
            : json
        )
      )
    )
    : decode(input)) as any

/**
 * Provides the configuration decoded from an object, or loaded from a JSON file path. `McpBridge.layer` uses it;
 * use it when you compose the pipeline's layers yourself.
 *
 * @since 0.1.0
 */
export const layer: {
  (path: string): Layer.Layer<BridgeConfig, BridgeConfigError, FileSystem.FileSystem>
  (input: object): Layer.Layer<BridgeConfig, BridgeConfigError>
} = ((input: any) => Layer.effect(BridgeConfig, load(input))) as any

/**
 * Provides an already decoded configuration (e.g. one you decoded once and share between several layers, or built in a
 * test).
 *
 * @since 0.1.0
 */
export const layerResolved = (config: BridgeConfig.Service): Layer.Layer<BridgeConfig> =>
  // A map of its own: a bridge's `reconfigure` changes it in place, never the caller's.
  Layer.sync(BridgeConfig, () => ({ ...config, servers: new Map(config.servers) }))
