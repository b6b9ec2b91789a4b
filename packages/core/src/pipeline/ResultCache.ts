/**
 * The result cache stage: repeat calls to read-only tools are answered from memory.
 *
 * What is cached is the operator's decision (`bridge.cache`, `bridge.tools.<tool>.cache`, see `ToolPolicy`): the
 * stage reads `request.policy.cacheable` and steps aside for every other call, so a tool that is not cacheable costs
 * one property read here (plus, for a tool that is not read-only, dropping its server's entries once the call ends,
 * `invalidateOnWrite`, which costs nothing while nothing of that server is cached).
 *
 * A cached result is keyed by server, tool, canonical arguments (key order, whitespace and number formatting do not
 * matter) and partition: the caller's `CallerIdentity`, unless the tool is `shared: true`. One caller never gets
 * another caller's result. Only successes are stored: never failures, `isError: true` results, or results over the
 * size limit. A stored result is frozen, since every caller that hits it shares it.
 *
 * Built on a plain recency-ordered `Map` of entries (with their sizes and expiry on the `Clock`) and single flight for
 * misses (`internal/flights.ts`: concurrent identical misses make one upstream call), rather than on Effect's
 * `Cache`: the stage needs byte accounting, eviction by entries and by bytes with the evicted entries known (for
 * metrics), invalidation by server, tool, key and predicate, results invalidated while in flight never stored, and
 * per-server stats. `Cache` offers none of these, so next to it the stage would keep all of this structure anyway,
 * and `Cache` would add only the single flight and the expiry check, which are a few lines here. A hit is served
 * without running an effect. Hits, misses and evictions (by reason) go to the bridge's `MetricsRecorder`, the size
 * to gauges read when metrics are collected.
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Clock, Context, Duration, Effect, Layer, Option } from "effect"
import { callKey, canonicalJson, partitionOf } from "../internal/canonical.ts"
import * as Flights from "../internal/flights.ts"
import * as Metrics from "../internal/metrics.ts"
import { isInteractive } from "../session/McpSession.ts"
import { MetricsRecorder, noop } from "../telemetry/MetricsRecorder.ts"
import type { CallRequest, ToolCaller } from "./ToolCaller.ts"

// -----------------------------------------------------------------------------
// Model
// -----------------------------------------------------------------------------

/**
 * Counters of one server's cached results, or of all of them.
 *
 * @since 0.1.0
 */
export interface CacheStats {
  /** Calls answered without an upstream call of their own (stored results, and calls that joined a call in flight). */
  readonly hits: number
  /** Calls that went upstream. */
  readonly misses: number
  /** `hits / (hits + misses)`, 0 before the first call. */
  readonly hitRate: number
  /** Results stored now. */
  readonly size: number
  /** Their size: bytes of JSON, plus the key. */
  readonly bytes: number
  /** Results dropped to make room (by entries or by bytes); expiry and invalidation are not evictions. */
  readonly evictions: number
}

/**
 * `stats()`: the totals, and the same counters per server.
 *
 * @since 0.1.0
 */
export interface Stats extends CacheStats {
  readonly servers: Readonly<Record<string, CacheStats>>
}

/**
 * A stored result as `invalidateWhen` sees it.
 *
 * @since 0.1.0
 */
export interface CachedCall {
  readonly server: string
  readonly tool: string
  /** The arguments, as canonical JSON parsed back. */
  readonly arguments: unknown
  /** True for a `shared: true` tool's result, which every caller gets. */
  readonly shared: boolean
  /** The caller the result belongs to (`undefined`: anonymous callers, or a shared result). */
  readonly identity: string | undefined
  readonly bytes: number
}

/**
 * One call to drop from the cache: the results of `tool` on `server` with these arguments. With `identity` present
 * (even as `undefined`, the anonymous caller), only that caller's result and the shared one; without, every caller's.
 *
 * @since 0.1.0
 */
export interface CallSelector {
  readonly server: string
  readonly tool: string
  readonly arguments?: Readonly<Record<string, unknown>> | undefined
  readonly identity?: string | undefined
}

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * The result cache. As a pipeline stage it is picked up by `McpBridge.layer`; the same service invalidates and
 * reports. Each `invalidate*` returns how many stored results it dropped; calls in flight that match are not stored
 * when they complete.
 *
 * @example
 * ```ts
 * const dropped = yield* ResultCache.ResultCache.use((cache) => cache.invalidateTool("crm", "get_account"))
 * const { hitRate } = yield* ResultCache.ResultCache.use((cache) => cache.stats)
 * ```
 *
 * @since 0.1.0
 */
export class ResultCache extends Context.Service<ResultCache, ResultCache.Service>()("@mcp-bridge/core/ResultCache") {}

/**
 * The type of the cache service, `ResultCache.Service`.
 *
 * @since 0.1.0
 */
export declare namespace ResultCache {
  /**
   * What the cache offers: `wrap` (the pipeline stage), invalidation by server, tool, call or predicate, and stats.
   * Invalidate when data changed in a way the bridge cannot see, e.g. through another client of the server.
   *
   * @since 0.1.0
   */
  export interface Service {
    readonly wrap: <E>(next: ToolCaller<E>) => ToolCaller<E>
    /** Drops every result of `server`. */
    readonly invalidateServer: (server: string) => Effect.Effect<number>
    /** Drops every result of `tool` on `server`. */
    readonly invalidateTool: (server: string, tool: string) => Effect.Effect<number>
    /** Drops the results of one call (see `CallSelector`). */
    readonly invalidateKey: (selector: CallSelector) => Effect.Effect<number>
    /** Drops the results for which `predicate` holds. */
    readonly invalidateWhen: (predicate: (call: CachedCall) => boolean) => Effect.Effect<number>
    /** Drops everything. */
    readonly invalidateAll: Effect.Effect<number>
    /** Hits, misses, hit rate, size, bytes and evictions, in total and per server. */
    readonly stats: Effect.Effect<Stats>
  }
}

/**
 * Options of `ResultCache.layer` (the `cache` option of `McpBridge.layer`): the size limits and the default TTL, for
 * every server. Which tools are cached, and for how long when they say, is set in each server's `bridge.cache` and
 * `bridge.tools`.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Most results kept (least recently used dropped first). @default 5000 */
  readonly capacity?: number | undefined
  /** Most bytes kept, over all results (least recently used dropped first). @default 64 MiB */
  readonly maxBytes?: number | undefined
  /** Results larger than this are not stored; a server's `bridge.cache.maxResultBytes` overrides it. @default 1 MiB */
  readonly maxResultBytes?: number | undefined
  /** TTL of cacheable tools whose policy names none (neither the tool's nor the server's). @default 30 minutes */
  readonly defaultTimeToLive?: Duration.Input | undefined
}

// -----------------------------------------------------------------------------
// Internals
// -----------------------------------------------------------------------------

interface Counters {
  hits: number
  misses: number
  evictions: number
  bytes: number
  /** stored entries of the server */
  readonly entries: Set<Entry>
  /** lookups of the server in flight */
  readonly pending: Set<Entry>
}

// One lookup in flight, and once it succeeded and was stored, one stored result.
interface Entry {
  readonly key: string
  readonly server: string
  readonly tool: string
  readonly partition: string
  /** where the canonical arguments start in `key` (see `callKey`) */
  readonly argumentsAt: number
  readonly counters: Counters
  result: CallToolResult | undefined
  bytes: number
  /** Clock millis at which the stored result expires */
  expiresAt: number
  /** in the index (stored, not yet dropped) */
  stored: boolean
  /** invalidated while in flight: never stored */
  stale: boolean
}

const utf8Length = (text: string): number => {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0x80) bytes += code >= 0x800 && (code < 0xd800 || code > 0xdfff) ? 2 : 1
  }
  return bytes
}

// A stored result is shared by every caller that hits it: frozen, so that one caller cannot change another's answer.
const deepFreeze = (value: unknown): void => {
  if (value === null || typeof value !== "object" || Object.isFrozen(value)) return
  Object.freeze(value)
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
}

const resultBytes = (result: CallToolResult): number => {
  try {
    return utf8Length(JSON.stringify(result) ?? "")
  } catch {
    return Number.POSITIVE_INFINITY
  }
}

const rate = (hits: number, misses: number) => hits + misses === 0 ? 0 : hits / (hits + misses)

const identityOf = (partition: string): string | undefined =>
  partition.startsWith("id:") ? partition.slice(3) : undefined

/**
 * Builds the cache. It records through the `MetricsRecorder` in context (none: nothing is recorded), and reports its
 * size there until the scope closes.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const recorder = Option.getOrElse(yield* Effect.serviceOption(MetricsRecorder), () => noop)
  const capacity = Math.max(1, options.capacity ?? 5_000)
  const maxBytes = Math.max(1, options.maxBytes ?? 64 * 1024 * 1024)
  const maxResultBytes = options.maxResultBytes ?? 1024 * 1024
  const defaultTtlMillis = Duration.toMillis(Duration.fromInputUnsafe(options.defaultTimeToLive ?? "30 minutes"))

  /** stored entries, least recently used first */
  const index = new Map<string, Entry>()
  const servers = new Map<string, Counters>()
  // Nor is an interactive result shared with the identical misses that joined its call: each asks for itself.
  const flights = Flights.make<Entry, any>((entry) => entry.result === undefined || !isInteractive(entry.result))
  let totalBytes = 0
  let evictions = 0

  const countersOf = (server: string): Counters => {
    let counters = servers.get(server)
    if (counters === undefined) {
      counters = { hits: 0, misses: 0, evictions: 0, bytes: 0, entries: new Set(), pending: new Set() }
      servers.set(server, counters)
    }
    return counters
  }

  const drop = (entry: Entry): void => {
    if (!entry.stored) return
    entry.stored = false
    index.delete(entry.key)
    entry.counters.entries.delete(entry)
    entry.counters.bytes -= entry.bytes
    totalBytes -= entry.bytes
  }

  // Records what left the cache, per server.
  const recordDropped = (dropped: ReadonlyArray<Entry>, reason: Metrics.EvictionReason): void => {
    if (dropped.length === 0 || !recorder.enabled) return
    const perServer = new Map<string, number>()
    for (const entry of dropped) perServer.set(entry.server, (perServer.get(entry.server) ?? 0) + 1)
    for (const [server, n] of perServer) recorder.cacheEvicted(server, reason, n)
  }

  // Indexes a result and evicts the least recently used beyond the limits. An `isError` result, one too large, or
  // one invalidated while in flight is not stored.
  const store = (entry: Entry, result: CallToolResult, now: number, ttlMillis: number, limit: number): void => {
    entry.result = result
    if (entry.stale || result.isError === true || ttlMillis <= 0 || isInteractive(result)) return
    const size = resultBytes(result)
    if (size > limit || size + entry.key.length > maxBytes) return
    entry.bytes = size + entry.key.length
    entry.expiresAt = now + ttlMillis
    entry.stored = true
    deepFreeze(result)
    index.set(entry.key, entry)
    entry.counters.entries.add(entry)
    entry.counters.bytes += entry.bytes
    totalBytes += entry.bytes
    if (index.size <= capacity && totalBytes <= maxBytes) return
    const evicted: Array<Entry> = []
    while (index.size > capacity || totalBytes > maxBytes) {
      const oldest = index.values().next().value!
      if (oldest === entry) break
      drop(oldest)
      oldest.counters.evictions++
      evictions++
      evicted.push(oldest)
    }
    recordDropped(evicted, "capacity")
  }

  const removeObserver = recorder.observe([
    [Metrics.gaugeOf(Metrics.definitions.cacheEntries, {}), () => index.size],
    [Metrics.gaugeOf(Metrics.definitions.cacheBytes, {}), () => totalBytes]
  ])
  yield* Effect.addFinalizer(() => Effect.sync(removeObserver))

  // A miss: one upstream call (joined by identical misses meanwhile), stored once it succeeds.
  const lookup = <E>(
    request: CallRequest,
    next: ToolCaller<E>,
    key: string,
    partition: string,
    counters: Counters
  ): Effect.Effect<Entry, E> => {
    const entry: Entry = {
      key,
      server: request.server.name,
      tool: request.tool,
      partition,
      argumentsAt: request.server.name.length + request.tool.length + partition.length + 3,
      counters,
      result: undefined,
      bytes: 0,
      expiresAt: 0,
      stored: false,
      stale: false
    }
    const ttl = request.policy.cacheTtl
    const ttlMillis = ttl === undefined ? defaultTtlMillis : Duration.toMillis(ttl)
    const limit = request.server.cache.maxResultBytes ?? maxResultBytes
    counters.pending.add(entry)
    return next(request).pipe(
      Effect.flatMap((result) =>
        Effect.clockWith((clock) => {
          store(entry, result, clock.currentTimeMillisUnsafe(), ttlMillis, limit)
          return Effect.succeed(entry)
        })
      ),
      Effect.ensuring(Effect.sync(() => {
        counters.pending.delete(entry)
      }))
    )
  }

  const annotate = (request: CallRequest, result: Metrics.CacheResult) =>
    request.traced === undefined ? Effect.void : Effect.annotateCurrentSpan(Metrics.Attr.cacheResult, result)

  const wrap = <E>(next: ToolCaller<E>): ToolCaller<E> => (request) => {
    const policy = request.policy
    // A caller that follows the call's progress wants the call itself: no stored result, no miss in flight to join.
    if (request.onProgress !== undefined && policy.cacheable) return next(request)
    if (!policy.cacheable) {
      return policy.readOnly || !request.server.cache.invalidateOnWrite
        ? next(request)
        : Effect.onExit(next(request), () => Effect.sync(() => dropServer(request.server.name)))
    }
    const partition = partitionOf(policy.shared, request.identity)
    const key = callKey(request.server.name, request.tool, partition, request.arguments)
    return Effect.withFiber((fiber) => {
      const counters = countersOf(request.server.name)
      const stored = index.get(key)
      if (stored !== undefined) {
        if (fiber.getRef(Clock.Clock).currentTimeMillisUnsafe() < stored.expiresAt) {
          counters.hits++
          index.delete(key)
          index.set(key, stored)
          recorder.cacheLookup(request.server.name, request.tool, "hit")
          return Effect.as(annotate(request, "hit"), stored.result!)
        }
        drop(stored)
        recordDropped([stored], "expired")
      }
      // A call that joins an identical miss in flight makes no upstream call of its own: it counts as a hit.
      const joined = flights.has(key)
      if (joined) counters.hits++
      else counters.misses++
      const result: Metrics.CacheResult = joined ? "hit" : "miss"
      recorder.cacheLookup(request.server.name, request.tool, result)
      return annotate(request, result).pipe(
        Effect.andThen(flights.run(key, lookup(request, next, key, partition, counters))),
        Effect.map((entry) => entry.result!)
      )
    })
  }

  // Drops the stored entries for which `matches` holds, among `candidates`, and marks matching lookups in flight so
  // that they are not stored (and new callers do not join them). Returns how many stored entries it dropped.
  const dropWhere = (candidates: Iterable<Entry>, matches: (entry: Entry) => boolean, pending: Iterable<Entry>) => {
    const dropped: Array<Entry> = []
    for (const entry of Array.from(candidates)) {
      if (matches(entry)) {
        drop(entry)
        dropped.push(entry)
      }
    }
    for (const entry of pending) {
      if (!entry.stale && matches(entry)) {
        entry.stale = true
        flights.forget(entry.key)
      }
    }
    recordDropped(dropped, "invalidated")
    return dropped.length
  }

  const allPending = function*() {
    for (const counters of servers.values()) yield* counters.pending
  }
  const always = () => true
  const dropServer = (server: string): number => {
    const counters = servers.get(server)
    if (counters === undefined || (counters.entries.size === 0 && counters.pending.size === 0)) return 0
    return dropWhere(counters.entries, always, counters.pending)
  }
  const entriesOf = (server: string): Iterable<Entry> => servers.get(server)?.entries ?? []
  const pendingOf = (server: string): Iterable<Entry> => servers.get(server)?.pending ?? []

  const view = (entry: Entry): CachedCall => ({
    server: entry.server,
    tool: entry.tool,
    arguments: JSON.parse(entry.key.slice(entry.argumentsAt)),
    shared: entry.partition === "*",
    identity: identityOf(entry.partition),
    bytes: entry.bytes
  })

  const snapshot = (counters: {
    readonly hits: number
    readonly misses: number
    readonly evictions: number
    readonly bytes: number
  }, size: number): CacheStats => ({
    hits: counters.hits,
    misses: counters.misses,
    hitRate: rate(counters.hits, counters.misses),
    size,
    bytes: counters.bytes,
    evictions: counters.evictions
  })

  const service: ResultCache.Service = {
    wrap,
    invalidateServer: (server) => Effect.sync(() => dropServer(server)),
    invalidateTool: (server, tool) =>
      Effect.sync(() => dropWhere(entriesOf(server), (entry) => entry.tool === tool, pendingOf(server))),
    invalidateKey: (selector) =>
      Effect.sync(() => {
        const args = canonicalJson(selector.arguments ?? {})
        const partitions = "identity" in selector ? [partitionOf(false, selector.identity), "*"] : undefined
        return dropWhere(
          entriesOf(selector.server),
          (entry) =>
            entry.tool === selector.tool &&
            (partitions === undefined || partitions.includes(entry.partition)) &&
            entry.key.slice(entry.argumentsAt) === args,
          pendingOf(selector.server)
        )
      }),
    invalidateWhen: (predicate) =>
      Effect.sync(() => dropWhere(index.values(), (entry) => predicate(view(entry)), allPending())),
    invalidateAll: Effect.sync(() => dropWhere(index.values(), always, allPending())),
    stats: Effect.clockWith((clock) =>
      Effect.sync(() => {
        // Expiry is checked on access: drop what has expired so that size and bytes count live results only.
        const now = clock.currentTimeMillisUnsafe()
        const expired: Array<Entry> = []
        for (const entry of Array.from(index.values())) {
          if (now >= entry.expiresAt) {
            drop(entry)
            expired.push(entry)
          }
        }
        recordDropped(expired, "expired")
        let hits = 0
        let misses = 0
        const perServer: Record<string, CacheStats> = {}
        for (const [server, counters] of servers) {
          hits += counters.hits
          misses += counters.misses
          perServer[server] = snapshot(counters, counters.entries.size)
        }
        return {
          ...snapshot({ hits, misses, evictions, bytes: totalBytes }, index.size),
          servers: perServer
        } satisfies Stats
      })
    )
  }
  return service
})

/**
 * The result cache with these limits.
 *
 * @example
 * ```ts
 * const Bridge = McpBridge.layer(config, { cache: { capacity: 10_000, maxBytes: 128 * 1024 * 1024 } })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<ResultCache> => Layer.effect(ResultCache, make(options))

const emptyStats: Stats = { hits: 0, misses: 0, hitRate: 0, size: 0, bytes: 0, evictions: 0, servers: {} }

/**
 * A pass-through stage: nothing is cached, every invalidation drops nothing, stats stay at zero.
 *
 * @since 0.1.0
 */
export const layerDisabled: Layer.Layer<ResultCache> = Layer.succeed(ResultCache, {
  wrap: (next) => next,
  invalidateServer: () => Effect.succeed(0),
  invalidateTool: () => Effect.succeed(0),
  invalidateKey: () => Effect.succeed(0),
  invalidateWhen: () => Effect.succeed(0),
  invalidateAll: Effect.succeed(0),
  stats: Effect.succeed(emptyStats)
})
