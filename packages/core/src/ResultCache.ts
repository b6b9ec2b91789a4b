/**
 * The result cache stage: repeat calls to read-only tools are answered from memory.
 *
 * What is cached is the operator's decision (`bridge.cache`, `bridge.tools.<tool>.cache`, see
 * `BridgeConfig.toolPolicy`): the stage reads `request.policy.cacheable` and steps aside for every other call, so a
 * tool that is not cacheable costs one property read here (plus, for a tool that is not read-only, dropping its
 * server's entries once the call ends: `invalidateOnWrite`).
 *
 * A cached result is keyed by server, tool, canonical arguments (key order, whitespace and number formatting do not
 * matter) and partition: the caller's `CallerIdentity`, unless the tool is `shared: true`. One caller never gets
 * another caller's result.
 *
 * Built on Effect's `Cache`, which gives single flight (concurrent identical misses share one lookup, so one
 * upstream call), a time-to-live per `Exit` (failures, `isError: true` results and results over the size limit get
 * a zero TTL, so they are never stored) and lazy expiry. `Cache` has no byte accounting, no hit or eviction counters,
 * and evicts by count without telling anyone, so this module keeps its own recency-ordered index of the stored
 * entries (with their sizes) next to it: the `Cache` runs with no capacity of its own, and eviction by entries and by
 * bytes happens in the index, which removes the key from the `Cache` too. The same index serves invalidation by
 * server, tool, key and predicate, and the per-server `stats()`. Hits, misses, evictions (by reason) and the size also
 * go to the metrics registry (`mcp_bridge.cache.*`), where the Telemetry stage and its exporters read them.
 *
 * The `Cache` is keyed by the call's key string (the cheapest key for its hash map); the request a lookup needs
 * travels in a slot of the calling fiber, which the lookup function reads synchronously inside that fiber's
 * `Cache.get`.
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Cache, Clock, Context, Duration, Effect, type Exit, Fiber, Layer, MutableHashMap } from "effect"
import { callKey, canonicalJson, partitionOf } from "./internal/canonical.ts"
import * as Metrics from "./internal/metrics.ts"
import type { CallError, CallRequest, ToolCaller } from "./ToolCaller.ts"

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
export class ResultCache extends Context.Service<ResultCache, {
  readonly wrap: (next: ToolCaller) => ToolCaller
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
}>()("@mcp-bridge/core/ResultCache") {}

/**
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
  readonly entries: Set<Entry>
}

// One lookup, and once it succeeded and was stored, one stored result. The `Cache` holds it as its value.
interface Entry {
  readonly key: string
  readonly server: string
  readonly tool: string
  readonly partition: string
  /** where the canonical arguments start in `key` (see `callKey`) */
  readonly argumentsAt: number
  readonly ttl: Duration.Duration
  readonly maxResultBytes: number
  readonly counters: Counters
  result: CallToolResult | undefined
  bytes: number
  /** in the index (stored, not yet dropped) */
  stored: boolean
  /** invalidated while in flight: never stored */
  stale: boolean
}

// What a caller hands the lookup it may trigger. `Cache` looks keys up by value only, so the request travels in a
// slot of the calling fiber: the lookup function runs synchronously inside that fiber's `Cache.get`.
interface Slot {
  request: CallRequest | undefined
  next: ToolCaller | undefined
  partition: string
  missed: boolean
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
 * Builds the cache. Its size is reported to the metrics registry (`mcp_bridge.cache.entries`, `.size`) until the scope
 * closes.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const capacity = Math.max(1, options.capacity ?? 5_000)
  const maxBytes = Math.max(1, options.maxBytes ?? 64 * 1024 * 1024)
  const maxResultBytes = options.maxResultBytes ?? 1024 * 1024
  const defaultTtl = Duration.fromInputUnsafe(options.defaultTimeToLive ?? "30 minutes")

  /** stored entries, least recently used first */
  const index = new Map<string, Entry>()
  /** the latest lookup of each key in flight */
  const inflight = new Map<string, Entry>()
  const servers = new Map<string, Counters>()
  const slots = new WeakMap<Fiber.Fiber<unknown, unknown>, Slot>()
  let totalBytes = 0
  let evictions = 0

  const countersOf = (server: string): Counters => {
    let counters = servers.get(server)
    if (counters === undefined) {
      counters = { hits: 0, misses: 0, evictions: 0, bytes: 0, entries: new Set() }
      servers.set(server, counters)
    }
    return counters
  }

  // `cache` is assigned below; `lookup` and `drop` only run after that.
  let cache: Cache.Cache<string, Entry, CallError>

  const drop = (entry: Entry): void => {
    if (!entry.stored) return
    entry.stored = false
    index.delete(entry.key)
    entry.counters.entries.delete(entry)
    entry.counters.bytes -= entry.bytes
    totalBytes -= entry.bytes
    MutableHashMap.remove(cache.map, entry.key)
  }

  // Records what left the cache, per server, in the metrics registry.
  const recordDropped = (dropped: ReadonlyArray<Entry>, reason: Metrics.EvictionReason): Effect.Effect<void> => {
    if (dropped.length === 0) return Effect.void
    const perServer = new Map<string, number>()
    for (const entry of dropped) perServer.set(entry.server, (perServer.get(entry.server) ?? 0) + 1)
    return Effect.forEach(perServer, ([server, n]) => Metrics.cacheEviction(server, reason, n), { discard: true })
  }

  // Indexes a result to be stored and evicts the least recently used beyond the limits. The result is not stored if
  // it is an `isError` result or too large (its `Cache` entry then gets a zero TTL, see `timeToLive`).
  const store = (entry: Entry, result: CallToolResult): Effect.Effect<void> => {
    if (entry.stale || result.isError === true) return Effect.void
    const size = resultBytes(result)
    if (size > entry.maxResultBytes || size + entry.key.length > maxBytes) return Effect.void
    entry.bytes = size + entry.key.length
    entry.stored = true
    deepFreeze(result)
    index.set(entry.key, entry)
    entry.counters.entries.add(entry)
    entry.counters.bytes += entry.bytes
    totalBytes += entry.bytes
    if (index.size <= capacity && totalBytes <= maxBytes) return Effect.void
    const evicted: Array<Entry> = []
    while (index.size > capacity || totalBytes > maxBytes) {
      const oldest = index.values().next().value!
      if (oldest === entry) break
      drop(oldest)
      oldest.counters.evictions++
      evictions++
      evicted.push(oldest)
    }
    return recordDropped(evicted, "capacity")
  }

  // Runs synchronously inside the `Cache.get` of the calling fiber, which left its request in its slot.
  const lookup = (key: string): Effect.Effect<Entry, CallError> => {
    const slot = slots.get(Fiber.getCurrent()!)
    const request = slot?.request
    if (slot === undefined || request === undefined || slot.next === undefined) {
      return Effect.die(new Error("ResultCache: a lookup outside a call"))
    }
    slot.request = undefined
    slot.missed = true
    const entry: Entry = {
      key,
      server: request.server.name,
      tool: request.tool,
      partition: slot.partition,
      argumentsAt: request.server.name.length + request.tool.length + slot.partition.length + 3,
      ttl: request.policy.cacheTtl ?? defaultTtl,
      maxResultBytes: request.server.cache.maxResultBytes ?? maxResultBytes,
      counters: countersOf(request.server.name),
      result: undefined,
      bytes: 0,
      stored: false,
      stale: false
    }
    inflight.set(key, entry)
    // An expired result of this key may still be indexed: this lookup replaces it.
    const previous = index.get(key)
    if (previous !== undefined) drop(previous)
    const upstream = slot.next(request).pipe(
      Effect.flatMap((result) => {
        entry.result = result
        return Effect.as(store(entry, result), entry)
      }),
      Effect.onExit(() =>
        Effect.sync(() => {
          if (inflight.get(key) === entry) inflight.delete(key)
        })
      )
    )
    return previous === undefined ? upstream : Effect.andThen(recordDropped([previous], "expired"), upstream)
  }

  // Only stored results live on in the `Cache`: failures, `isError` results, results over the limits and results of
  // lookups invalidated while in flight get a zero TTL.
  const timeToLive = (exit: Exit.Exit<Entry, CallError>): Duration.Duration =>
    exit._tag === "Success" && exit.value.stored ? exit.value.ttl : Duration.zero

  cache = yield* Cache.makeWith(lookup, { capacity: Number.POSITIVE_INFINITY, timeToLive })
  yield* Metrics.observeCacheSize(() => ({ entries: index.size, bytes: totalBytes }))

  const touch = (entry: Entry): void => {
    if (!entry.stored) return
    index.delete(entry.key)
    index.set(entry.key, entry)
  }

  const wrap = (next: ToolCaller): ToolCaller => (request) => {
    const policy = request.policy
    if (!policy.cacheable) {
      return policy.readOnly || !request.server.cache.invalidateOnWrite
        ? next(request)
        : Effect.onExit(next(request), () => Effect.suspend(() => dropServer(request.server.name)))
    }
    const partition = partitionOf(policy.shared, request.identity)
    const key = callKey(request.server.name, request.tool, partition, request.arguments)
    return Effect.withFiber((fiber) => {
      let slot = slots.get(fiber)
      if (slot === undefined) {
        slot = { request, next, partition, missed: false }
        slots.set(fiber, slot)
      } else {
        slot.request = request
        slot.next = next
        slot.partition = partition
        slot.missed = false
      }
      const own = slot
      return Cache.get(cache, key).pipe(
        Effect.onExit((exit) => {
          const counters = countersOf(request.server.name)
          const hit = !own.missed && exit._tag === "Success"
          own.missed = false
          own.request = undefined
          if (hit) {
            counters.hits++
            touch(exit.value)
          } else {
            counters.misses++
          }
          const result = hit ? "hit" : "miss"
          return Effect.andThen(
            Metrics.cacheRequest(request.server.name, request.tool, result),
            Metrics.annotateCacheResult(result)
          )
        }),
        Effect.map((entry) => entry.result!)
      )
    })
  }

  // Drops the stored entries for which `matches` holds, among `candidates`, and marks matching lookups in flight so
  // that they are not stored (and new callers do not join them). Returns how many stored entries it dropped.
  const dropWhere = (candidates: Iterable<Entry>, matches: (entry: Entry) => boolean): Effect.Effect<number> =>
    Effect.suspend(() => {
      const dropped: Array<Entry> = []
      for (const entry of Array.from(candidates)) {
        if (matches(entry)) {
          drop(entry)
          dropped.push(entry)
        }
      }
      for (const entry of inflight.values()) {
        if (!entry.stale && matches(entry)) {
          entry.stale = true
          drop(entry)
          MutableHashMap.remove(cache.map, entry.key)
        }
      }
      return Effect.as(recordDropped(dropped, "invalidated"), dropped.length)
    })

  const always = () => true
  const dropServer = (server: string): Effect.Effect<number> => {
    const counters = servers.get(server)
    if (counters === undefined || (counters.entries.size === 0 && inflight.size === 0)) return Effect.succeed(0)
    return dropWhere(counters.entries, (entry) => entry.server === server)
  }
  const entriesOf = (server: string): Iterable<Entry> => servers.get(server)?.entries ?? []

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

  return ResultCache.of({
    wrap,
    invalidateServer: (server) => Effect.suspend(() => dropServer(server)),
    invalidateTool: (server, tool) =>
      dropWhere(entriesOf(server), (entry) => entry.server === server && entry.tool === tool),
    invalidateKey: (selector) =>
      Effect.suspend(() => {
        const args = canonicalJson(selector.arguments ?? {})
        const partitions = "identity" in selector ? [partitionOf(false, selector.identity), "*"] : undefined
        return dropWhere(
          entriesOf(selector.server),
          (entry) =>
            entry.server === selector.server && entry.tool === selector.tool &&
            (partitions === undefined || partitions.includes(entry.partition)) &&
            entry.key.slice(entry.argumentsAt) === args
        )
      }),
    invalidateWhen: (predicate) => Effect.suspend(() => dropWhere(index.values(), (entry) => predicate(view(entry)))),
    invalidateAll: Effect.suspend(() => dropWhere(index.values(), always)),
    stats: Effect.gen(function*() {
      // Expiry is lazy in `Cache`: drop what has expired so that size and bytes count live results only.
      const now = yield* Clock.currentTimeMillis
      const expired: Array<Entry> = []
      for (const entry of Array.from(index.values())) {
        const cached = MutableHashMap.get(cache.map, entry.key)
        const expiresAt = cached._tag === "Some" ? cached.value.expiresAt : 0
        if (expiresAt !== undefined && now >= expiresAt) {
          drop(entry)
          expired.push(entry)
        }
      }
      yield* recordDropped(expired, "expired")
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
  })
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
export const layerDisabled: Layer.Layer<ResultCache> = Layer.succeed(
  ResultCache,
  ResultCache.of({
    wrap: (next) => next,
    invalidateServer: () => Effect.succeed(0),
    invalidateTool: () => Effect.succeed(0),
    invalidateKey: () => Effect.succeed(0),
    invalidateWhen: () => Effect.succeed(0),
    invalidateAll: Effect.succeed(0),
    stats: Effect.succeed(emptyStats)
  })
)
