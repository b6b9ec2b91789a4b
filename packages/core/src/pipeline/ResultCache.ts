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
import { Context, Duration, Effect, Layer, Option } from "effect"
import { canonicalJson, partitionOf } from "../internal/canonical.ts"
import * as Flights from "../internal/flights.ts"
import * as Metrics from "../internal/metrics.ts"
import { isInteractive, isRetry } from "../session/McpSession.ts"
import * as ResultStore from "../stores/ResultStore.ts"
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
  /**
   * How long the caller that fills a missing result holds the key's fill lease in a shared store: identical misses
   * elsewhere wait for its result that long at most, then call upstream themselves. @default 5 seconds
   */
  readonly fillLease?: Duration.Input | undefined
}

// -----------------------------------------------------------------------------
// Internals
// -----------------------------------------------------------------------------

interface Counters {
  hits: number
  misses: number
  evictions: number
  /** lookups of the server in flight here */
  readonly pending: Set<Pending>
}

// One lookup in flight on this replica.
interface Pending {
  readonly flight: string
  readonly key: ResultStore.Key
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
 * Builds the cache over the `ResultStore` in context, or, with none, over a memory store of its own with the
 * options' bounds. It records through the `MetricsRecorder` in context (none: nothing is recorded), and reports its
 * size there until the scope closes. A store that fails is read as a miss (the call goes upstream) and its writes
 * are skipped: the cache fails open.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options: Options = {}) {
  const recorder = Option.getOrElse(yield* Effect.serviceOption(MetricsRecorder), () => noop)
  const maxResultBytes = options.maxResultBytes ?? 1024 * 1024
  const defaultTtlMillis = Duration.toMillis(Duration.fromInputUnsafe(options.defaultTimeToLive ?? "30 minutes"))
  const leaseDuration = Duration.toMillis(Duration.fromInputUnsafe(options.fillLease ?? "5 seconds"))

  const servers = new Map<string, Counters>()
  let evictions = 0
  const countersOf = (server: string): Counters => {
    let counters = servers.get(server)
    if (counters === undefined) {
      counters = { hits: 0, misses: 0, evictions: 0, pending: new Set() }
      servers.set(server, counters)
    }
    return counters
  }

  const shared = yield* Effect.serviceOption(ResultStore.ResultStore)
  let usageNow: (() => ResultStore.Usage) | undefined
  let store: ResultStore.ResultStore.Service
  if (Option.isSome(shared)) {
    store = shared.value
  } else {
    const memory = ResultStore.makeMemoryUnsafe({
      capacity: options.capacity,
      maxBytes: options.maxBytes,
      onDropped: (server, reason, n) => {
        if (reason === "capacity") {
          countersOf(server).evictions += n
          evictions += n
        }
        if (recorder.enabled) recorder.cacheEvicted(server, reason, n)
      }
    })
    store = memory.service
    usageNow = memory.usageUnsafe
    const removeObserver = recorder.observe([
      [Metrics.gaugeOf(Metrics.definitions.cacheEntries, {}), () => memory.usageUnsafe().entries],
      [Metrics.gaugeOf(Metrics.definitions.cacheBytes, {}), () => memory.usageUnsafe().bytes]
    ])
    yield* Effect.addFinalizer(() => Effect.sync(removeObserver))
  }

  // Nor is an interactive result shared with the identical misses that joined its call: each asks for itself.
  const flights = Flights.make<CallToolResult, any>((result) => !isInteractive(result))

  const annotate = (request: CallRequest, result: Metrics.CacheResult) =>
    request.traced === undefined ? Effect.void : Effect.annotateCurrentSpan(Metrics.Attr.cacheResult, result)

  const recordInvalidated = (server: string, n: number): void => {
    if (n > 0 && recorder.enabled) recorder.cacheEvicted(server, "invalidated", n)
  }

  // The store failed: the cache steps aside (a miss, no write), and says so in the log.
  const failOpen = <A>(fallback: A) => (error: ResultStore.ResultStoreError) =>
    Effect.as(Effect.logWarning("result store unavailable; the call goes upstream", error.message), fallback)

  // Stores a result under `lease` unless it must not be stored: `isError`, interactive, too large, TTL zero.
  const put = (
    key: ResultStore.Key,
    result: CallToolResult,
    ttlMillis: number,
    limit: number,
    bytesOfKey: number,
    lease: ResultStore.Lease | undefined
  ) => {
    const skip = lease === undefined ? Effect.void : Effect.ignore(store.release(key, lease))
    if (result.isError === true || ttlMillis <= 0 || isInteractive(result)) return skip
    const size = resultBytes(result)
    if (size > limit) return skip
    deepFreeze(result)
    return store.set(key, result, { timeToLive: Duration.millis(ttlMillis), bytes: size + bytesOfKey, lease }).pipe(
      Effect.asVoid,
      Effect.catch(failOpen(undefined))
    )
  }

  // Waits for the replica holding the fill lease to store its result, polling until the lease would lapse.
  const awaitFill = (key: ResultStore.Key, until: number): Effect.Effect<Option.Option<CallToolResult>> =>
    Effect.clockWith((clock) => {
      if (clock.currentTimeMillisUnsafe() >= until) return Effect.succeed(Option.none())
      return Effect.sleep(Duration.millis(10)).pipe(
        Effect.andThen(store.get(key)),
        Effect.catch(failOpen(Option.none<CallToolResult>())),
        Effect.flatMap((found) => Option.isSome(found) ? Effect.succeed(found) : awaitFill(key, until))
      )
    })

  // A miss: one upstream call (joined by identical misses meanwhile), stored once it succeeds.
  const lookup = <E>(
    request: CallRequest,
    next: ToolCaller<E>,
    key: ResultStore.Key,
    flight: string,
    counters: Counters
  ): Effect.Effect<CallToolResult, E> => {
    const pending: Pending = { flight, key }
    const ttl = request.policy.cacheTtl
    const ttlMillis = ttl === undefined ? defaultTtlMillis : Duration.toMillis(ttl)
    const limit = request.server.cache.maxResultBytes ?? maxResultBytes
    counters.pending.add(pending)
    const upstream = (lease: ResultStore.Lease | undefined) =>
      Effect.tap(next(request), (result) => put(key, result, ttlMillis, limit, flight.length, lease))
    const filled = Effect.flatMap(
      store.lease(key, Duration.millis(leaseDuration)).pipe(
        Effect.map((lease) => ({ ok: true as const, lease })),
        Effect.catch(failOpen({ ok: false as const, lease: Option.none<ResultStore.Lease>() }))
      ),
      ({ lease, ok }): Effect.Effect<CallToolResult, E> => {
        if (!ok) return next(request)
        if (Option.isSome(lease)) {
          return Effect.onExit(
            upstream(lease.value),
            (exit) => exit._tag === "Success" ? Effect.void : Effect.ignore(store.release(key, lease.value))
          )
        }
        // Another replica fills this key: wait for its result, or call upstream (unstored) once its lease lapses.
        return Effect.clockWith((clock) =>
          Effect.flatMap(
            awaitFill(key, clock.currentTimeMillisUnsafe() + leaseDuration),
            (found): Effect.Effect<CallToolResult, E> =>
              Option.isSome(found) ? Effect.succeed(found.value) : next(request)
          )
        )
      }
    )
    return Effect.ensuring(filled, Effect.sync(() => counters.pending.delete(pending)))
  }

  const wrap = <E>(next: ToolCaller<E>): ToolCaller<E> => (request) => {
    const policy = request.policy
    // A caller that follows the call's progress wants the call itself: no stored result, no miss in flight to join.
    if (request.onProgress !== undefined && policy.cacheable) return next(request)
    // A retry that answers a server's `input_required` carries the user's answers: it is the caller's own call.
    if (isRetry(request.rounds) && policy.cacheable) return next(request)
    if (!policy.cacheable) {
      return policy.readOnly || !request.server.cache.invalidateOnWrite
        ? next(request)
        : Effect.onExit(next(request), () => dropServer(request.server.name))
    }
    const partition = partitionOf(policy.shared, request.identity)
    const args = canonicalJson(request.arguments)
    const key: ResultStore.Key = { server: request.server.name, tool: request.tool, partition, arguments: args }
    const flight = ResultStore.keyString(key)
    const counters = countersOf(request.server.name)
    return store.get(key).pipe(
      Effect.catch(failOpen(Option.none<CallToolResult>())),
      Effect.flatMap((stored) => {
        if (Option.isSome(stored)) {
          counters.hits++
          recorder.cacheLookup(request.server.name, request.tool, "hit")
          return Effect.as(annotate(request, "hit"), stored.value)
        }
        // A call that joins an identical miss in flight makes no upstream call of its own: it counts as a hit.
        const joined = flights.has(flight)
        if (joined) counters.hits++
        else counters.misses++
        const result: Metrics.CacheResult = joined ? "hit" : "miss"
        recorder.cacheLookup(request.server.name, request.tool, result)
        return annotate(request, result).pipe(
          Effect.andThen(flights.run(flight, lookup(request, next, key, flight, counters)))
        )
      })
    )
  }

  // Calls in flight here that match are not joined by later callers (the store does not keep their results).
  const forgetPending = (matches: (key: ResultStore.Key) => boolean, server?: string) => {
    const all = server === undefined ? Array.from(servers.values()) : [servers.get(server)]
    for (const counters of all) {
      if (counters === undefined) continue
      for (const pending of counters.pending) if (matches(pending.key)) flights.forget(pending.flight)
    }
  }

  const invalidate = (selector: ResultStore.Selector): Effect.Effect<number> =>
    Effect.suspend(() => {
      forgetPending((key) => ResultStore.selects(selector, key), selector.server)
      return store.invalidate(selector).pipe(
        Effect.tap((n) => Effect.sync(() => recordInvalidated(selector.server, n))),
        Effect.catch(failOpen(0))
      )
    })

  // A write: nothing to drop unless the server's results were ever cached here or something of it is in flight.
  const dropServer = (server: string): Effect.Effect<number> =>
    servers.has(server) ? invalidate({ server }) : Effect.succeed(0)

  const view = (key: ResultStore.Key, bytes: number): CachedCall => ({
    server: key.server,
    tool: key.tool,
    arguments: JSON.parse(key.arguments),
    shared: key.partition === "*",
    identity: identityOf(key.partition),
    bytes
  })

  const snapshot = (counters: {
    readonly hits: number
    readonly misses: number
    readonly evictions: number
  }, usage: { readonly entries: number; readonly bytes: number }): CacheStats => ({
    hits: counters.hits,
    misses: counters.misses,
    hitRate: rate(counters.hits, counters.misses),
    size: usage.entries,
    bytes: usage.bytes,
    evictions: counters.evictions
  })

  const none = { entries: 0, bytes: 0 }
  const service: ResultCache.Service = {
    wrap,
    invalidateServer: (server) => invalidate({ server }),
    invalidateTool: (server, tool) => invalidate({ server, tool }),
    invalidateKey: (selector) =>
      invalidate({
        server: selector.server,
        tool: selector.tool,
        arguments: canonicalJson(selector.arguments ?? {}),
        partitions: "identity" in selector ? [partitionOf(false, selector.identity), "*"] : undefined
      }),
    invalidateWhen: (predicate) =>
      Effect.suspend(() => {
        const perServer = new Map<string, number>()
        const matches = (key: ResultStore.Key, bytes: number) => {
          const hit = predicate(view(key, bytes))
          if (hit) perServer.set(key.server, (perServer.get(key.server) ?? 0) + 1)
          return hit
        }
        forgetPending((key) => predicate(view(key, 0)))
        return store.invalidateWhere(matches).pipe(
          Effect.tap(() => Effect.sync(() => perServer.forEach((n, server) => recordInvalidated(server, n)))),
          Effect.catch(failOpen(0))
        )
      }),
    invalidateAll: Effect.suspend(() => {
      forgetPending(() => true)
      return store.usage.pipe(
        Effect.flatMap((before) =>
          Effect.tap(store.invalidateAll, () =>
            Effect.sync(() => {
              for (const [server, usage] of Object.entries(before.servers)) recordInvalidated(server, usage.entries)
            }))
        ),
        Effect.catch(failOpen(0))
      )
    }),
    stats: Effect.map(
      usageNow === undefined
        ? store.usage.pipe(Effect.catch(failOpen<ResultStore.Usage>({ ...none, servers: {} })))
        : Effect.andThen(store.usage.pipe(Effect.ignore), Effect.sync(usageNow)),
      (usage) => {
        let hits = 0
        let misses = 0
        const perServer: Record<string, CacheStats> = {}
        for (const [server, counters] of servers) {
          hits += counters.hits
          misses += counters.misses
          perServer[server] = snapshot(counters, usage.servers[server] ?? none)
        }
        return { ...snapshot({ hits, misses, evictions }, usage), servers: perServer } satisfies Stats
      }
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
