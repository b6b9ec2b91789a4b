/**
 * Where cached tool results live, apart from the cache's algorithm (policy, single flight, metrics): get and set with
 * a TTL, invalidation by server, tool, call or predicate, and a short fill lease so that identical misses on several
 * replicas make one upstream call.
 *
 * An entry is keyed by server, tool, partition (the caller's identity, or `*` for shared results) and canonical
 * arguments. Each server has a generation that every invalidation of that server moves on; a lease remembers the
 * generation it was taken at, and a `set` under a lease whose server was invalidated meanwhile stores nothing (a
 * result invalidated while in flight is never stored, across replicas too).
 *
 * `layerMemory` is the embedded default: a recency-ordered `Map` with size and byte bounds, timed by Effect's
 * `Clock`. The Redis implementation is in `@mcp-bridge/node`.
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/client"
import { Clock, Context, Duration, Effect, Layer, Option, Schema } from "effect"

/**
 * The identity of a cached result. `arguments` is canonical JSON (see the result cache).
 *
 * @since 0.1.0
 */
export interface Key {
  readonly server: string
  readonly tool: string
  /** `*` for a shared result, `""` for anonymous callers, `id:<identity>` for one caller. */
  readonly partition: string
  readonly arguments: string
}

/**
 * What to drop: every result of `server`, or of one `tool` there, or of one call (`arguments`, canonical JSON), for
 * the given `partitions` only when present.
 *
 * @since 0.1.0
 */
export interface Selector {
  readonly server: string
  readonly tool?: string | undefined
  readonly arguments?: string | undefined
  readonly partitions?: ReadonlyArray<string> | undefined
}

/**
 * The right to fill one key, for a short time: taken by the replica that calls upstream for a miss.
 *
 * @since 0.1.0
 */
export interface Lease {
  readonly token: string
  /** The server's generation when the lease was taken. */
  readonly generation: string
}

/**
 * How `set` stores a result: its TTL, its size (bytes, counted against the store's bounds), and the lease it was
 * filled under, if any.
 *
 * @since 0.1.0
 */
export interface SetOptions {
  readonly timeToLive: Duration.Input
  readonly bytes: number
  readonly lease?: Lease | undefined
}

/**
 * Entries and bytes stored now, in total and per server.
 *
 * @since 0.1.0
 */
export interface Usage {
  readonly entries: number
  readonly bytes: number
  readonly servers: Readonly<Record<string, { readonly entries: number; readonly bytes: number }>>
}

/**
 * The store could not be reached or answered nonsense (only shared stores fail; the memory store never does).
 *
 * @since 0.1.0
 */
export class ResultStoreError extends Schema.TaggedError<ResultStoreError>()("ResultStoreError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/**
 * The results the `ResultCache` stage serves.
 *
 * @since 0.1.0
 */
export class ResultStore extends Context.Service<ResultStore, ResultStore.Service>()("@mcp-bridge/core/ResultStore") {}

/**
 * The type of the store service, `ResultStore.Service`.
 *
 * @since 0.1.0
 */
export declare namespace ResultStore {
  /**
   * Get, set, lease and invalidate. Every `invalidate*` returns how many stored results it dropped, and moves the
   * generation of the servers it touched on (so leases taken before it store nothing).
   *
   * @since 0.1.0
   */
  export interface Service {
    /** The stored result of `key`, unless absent or expired. */
    readonly get: (key: Key) => Effect.Effect<Option.Option<CallToolResult>, ResultStoreError>
    /** Stores `result`; `false` when it was not stored (its lease lapsed or its server was invalidated). */
    readonly set: (key: Key, result: CallToolResult, options: SetOptions) => Effect.Effect<boolean, ResultStoreError>
    /** Takes the fill lease of `key` for `duration`, unless another caller holds it. */
    readonly lease: (key: Key, duration: Duration.Input) => Effect.Effect<Option.Option<Lease>, ResultStoreError>
    /** Gives a lease back early (a `set` under it gives it back too). */
    readonly release: (key: Key, lease: Lease) => Effect.Effect<void, ResultStoreError>
    readonly invalidate: (selector: Selector) => Effect.Effect<number, ResultStoreError>
    /** Drops the results for which `predicate` holds (given each one's key and size). */
    readonly invalidateWhere: (
      predicate: (key: Key, bytes: number) => boolean
    ) => Effect.Effect<number, ResultStoreError>
    readonly invalidateAll: Effect.Effect<number, ResultStoreError>
    /** What is stored now (expired entries not counted). */
    readonly usage: Effect.Effect<Usage, ResultStoreError>
  }
}

/**
 * Options of the memory store.
 *
 * @since 0.1.0
 */
export interface MemoryOptions {
  /** Most results kept (least recently used dropped first). @default 5000 */
  readonly capacity?: number | undefined
  /** Most bytes kept, over all results (least recently used dropped first). @default 64 MiB */
  readonly maxBytes?: number | undefined
  /** Told which servers lost how many results to the bounds, or to expiry. @default nothing */
  readonly onDropped?: ((server: string, reason: "capacity" | "expired", count: number) => void) | undefined
}

/**
 * One string for a key: its parts separated by NUL, which cannot appear in server or tool names.
 *
 * @since 0.1.0
 */
export const keyString = (key: Key): string =>
  `${key.server}\u0000${key.tool}\u0000${key.partition}\u0000${key.arguments}`

/**
 * Whether `selector` selects `key`.
 *
 * @since 0.1.0
 */
export const selects = (selector: Selector, key: Key): boolean =>
  key.server === selector.server &&
  (selector.tool === undefined || key.tool === selector.tool) &&
  (selector.arguments === undefined || key.arguments === selector.arguments) &&
  (selector.partitions === undefined || selector.partitions.includes(key.partition))

interface Entry {
  readonly id: string
  readonly key: Key
  readonly result: CallToolResult
  readonly bytes: number
  readonly expiresAt: number
}

/**
 * Builds a memory store.
 *
 * @since 0.1.0
 */
export const makeMemory = (options: MemoryOptions = {}): Effect.Effect<ResultStore.Service> =>
  Effect.sync(() => makeMemoryUnsafe(options).service)

/**
 * Builds a memory store outside of an effect, with a synchronous view of its usage (for gauges read when metrics are
 * collected).
 *
 * @since 0.1.0
 */
export const makeMemoryUnsafe = (
  options: MemoryOptions = {}
): { readonly service: ResultStore.Service; readonly usageUnsafe: () => Usage } => {
  {
    const capacity = Math.max(1, options.capacity ?? 5_000)
    const maxBytes = Math.max(1, options.maxBytes ?? 64 * 1024 * 1024)
    const onDropped = options.onDropped
    /** stored entries, least recently used first */
    const index = new Map<string, Entry>()
    const servers = new Map<string, { entries: number; bytes: number; generation: number }>()
    const leases = new Map<string, { readonly token: string; readonly until: number }>()
    let totalBytes = 0
    let nextToken = 0

    const serverOf = (server: string) => {
      let s = servers.get(server)
      if (s === undefined) servers.set(server, s = { entries: 0, bytes: 0, generation: 0 })
      return s
    }
    const drop = (entry: Entry): void => {
      index.delete(entry.id)
      const s = serverOf(entry.key.server)
      s.entries--
      s.bytes -= entry.bytes
      totalBytes -= entry.bytes
    }
    const report = (dropped: ReadonlyArray<Entry>, reason: "capacity" | "expired") => {
      if (onDropped === undefined || dropped.length === 0) return
      const perServer = new Map<string, number>()
      for (const entry of dropped) perServer.set(entry.key.server, (perServer.get(entry.key.server) ?? 0) + 1)
      for (const [server, n] of perServer) onDropped(server, reason, n)
    }
    const dropWhere = (matches: (key: Key, bytes: number) => boolean): number => {
      let n = 0
      const touched = new Set<string>()
      for (const entry of Array.from(index.values())) {
        if (matches(entry.key, entry.bytes)) {
          drop(entry)
          touched.add(entry.key.server)
          n++
        }
      }
      for (const server of touched) serverOf(server).generation++
      return n
    }
    const now = (clock: Clock.Clock) => clock.currentTimeMillisUnsafe()

    const service: ResultStore.Service = {
      get: (key) =>
        Effect.clockWith((clock) =>
          Effect.sync(() => {
            const id = keyString(key)
            const entry = index.get(id)
            if (entry === undefined) return Option.none()
            if (now(clock) >= entry.expiresAt) {
              drop(entry)
              report([entry], "expired")
              return Option.none()
            }
            index.delete(id)
            index.set(id, entry)
            return Option.some(entry.result)
          })
        ),
      set: (key, result, setOptions) =>
        Effect.clockWith((clock) =>
          Effect.sync(() => {
            const id = keyString(key)
            const at = now(clock)
            const s = serverOf(key.server)
            if (setOptions.lease !== undefined) {
              const held = leases.get(id)
              if (held?.token === setOptions.lease.token) leases.delete(id)
              if (String(s.generation) !== setOptions.lease.generation) return false
            }
            const ttl = Duration.toMillis(Duration.fromInputUnsafe(setOptions.timeToLive))
            const bytes = setOptions.bytes
            if (ttl <= 0 || bytes > maxBytes) return false
            const previous = index.get(id)
            if (previous !== undefined) drop(previous)
            const entry: Entry = { id, key, result, bytes, expiresAt: at + ttl }
            index.set(id, entry)
            s.entries++
            s.bytes += bytes
            totalBytes += bytes
            if (index.size <= capacity && totalBytes <= maxBytes) return true
            const evicted: Array<Entry> = []
            while (index.size > capacity || totalBytes > maxBytes) {
              const oldest = index.values().next().value!
              if (oldest === entry) break
              drop(oldest)
              evicted.push(oldest)
            }
            report(evicted, "capacity")
            return true
          })
        ),
      lease: (key, duration) =>
        Effect.clockWith((clock) =>
          Effect.sync(() => {
            const id = keyString(key)
            const at = now(clock)
            const held = leases.get(id)
            if (held !== undefined && held.until > at) return Option.none()
            const token = String(++nextToken)
            leases.set(id, { token, until: at + Duration.toMillis(Duration.fromInputUnsafe(duration)) })
            return Option.some({ token, generation: String(serverOf(key.server).generation) })
          })
        ),
      release: (key, lease) =>
        Effect.sync(() => {
          const id = keyString(key)
          if (leases.get(id)?.token === lease.token) leases.delete(id)
        }),
      invalidate: (selector) =>
        Effect.sync(() => {
          serverOf(selector.server).generation++
          return dropWhere((key) => selects(selector, key))
        }),
      invalidateWhere: (predicate) => Effect.sync(() => dropWhere(predicate)),
      invalidateAll: Effect.sync(() => {
        for (const s of servers.values()) s.generation++
        return dropWhere(() => true)
      }),
      usage: Effect.clockWith((clock) =>
        Effect.sync(() => {
          const at = now(clock)
          const expired: Array<Entry> = []
          for (const entry of Array.from(index.values())) {
            if (at >= entry.expiresAt) {
              drop(entry)
              expired.push(entry)
            }
          }
          report(expired, "expired")
          return usageUnsafe()
        })
      )
    }
    const usageUnsafe = (): Usage => {
      const perServer: Record<string, { entries: number; bytes: number }> = {}
      for (const [server, s] of servers) perServer[server] = { entries: s.entries, bytes: s.bytes }
      return { entries: index.size, bytes: totalBytes, servers: perServer }
    }
    return { service, usageUnsafe }
  }
}

/**
 * The memory store with these bounds: the embedded default, one per bridge.
 *
 * @since 0.1.0
 */
export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<ResultStore> =>
  Layer.effect(ResultStore, makeMemory(options))
