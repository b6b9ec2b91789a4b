/**
 * The tool index: the `tools/list` of every server, cached on Effect's `Cache`, for routing calls and for listing.
 *
 * - Scope (2026-07-28 `cacheScope`): a list the server marks `private` is kept per caller identity (one caller never
 *   routes with, or lists, another caller's tools); a `public` list, or one from a legacy server (no hint), is kept
 *   once per server. Until a server's first answer says which, lists are kept per identity (the safe side).
 * - Freshness (2026-07-28 `ttlMs`): a positive `ttlMs` is how long the list is used, for routing and listing alike.
 *   `ttlMs` 0 or absent from a 2026-07-28 server means "stale at once": `listTools` asks the server again every time,
 *   as the hint says. Routing does not: a round trip before every call would double the cost of a warm call, and the
 *   router only needs names, definitions and policies, which a list-changed notification (legacy notification or
 *   `subscriptions/listen`) invalidates at once; a tool the index does not know makes it look again before failing.
 *   So the router uses a list for `ttlMs`, or for the bridge's `toolListTimeToLive` when the server gave none.
 * - Past that, the router keeps using the list for as long again while one background `Cache.refresh` fetches the
 *   next (the old list stays in place until the new one arrives), so a busy server's calls never wait for a
 *   `tools/list`; only a list nobody used for that long, or one a notification dropped, is fetched on the call path.
 * - A notification bumps the server's generation: a fetch that started before it is never stored.
 *
 * @internal
 */
import type { Tool } from "@modelcontextprotocol/client"
import { Cache, Clock, Duration, Effect, type Exit, MutableHashMap } from "effect"
import * as BridgeConfig from "../BridgeConfig.ts"
import type { ConnectionPool } from "../ConnectionPool.ts"
import type { McpSession } from "../McpSession.ts"
import type { CallError } from "../ToolCaller.ts"
import * as Metrics from "./metrics.ts"

/** @internal */
export interface IndexedList<T> {
  readonly server: string
  readonly tools: ReadonlyArray<T>
  readonly byName: ReadonlyMap<string, Tool>
  readonly policies: ReadonlyMap<string, BridgeConfig.ResolvedToolPolicy>
  /** the server's generation when the fetch started */
  readonly generation: number
  /** a number that grows with each fetch */
  readonly sequence: number
  readonly isPrivate: boolean
  /** Clock millis until which the router uses the list as it is */
  readonly routeUntil: number
  /** Clock millis until which `listTools` uses the list without asking the server */
  readonly freshUntil: number
  /** how long the `Cache` keeps it: the router's time, and as long again while a refresh runs */
  readonly keep: Duration.Duration
}

/** How a `tools/list` can fail: the session's and the pool's errors, and those of a guard around the pool. */
export type ListError = CallError

/** @internal */
export interface ToolIndex<T> {
  /** Subscribes to a session's list changes (once per session). */
  readonly watch: (session: McpSession) => void
  /** The list the router uses now; a list past its time is refreshed in the background. */
  readonly route: (
    server: BridgeConfig.ResolvedServer,
    identity: string | undefined
  ) => Effect.Effect<IndexedList<T>, ListError>
  /** The list for `listTools`, honouring the server's `ttlMs`. */
  readonly list: (
    server: BridgeConfig.ResolvedServer,
    identity: string | undefined
  ) => Effect.Effect<IndexedList<T>, ListError>
  /** Drops the caller's list and fetches it again (for a tool the index does not know). */
  readonly reload: (
    server: BridgeConfig.ResolvedServer,
    identity: string | undefined
  ) => Effect.Effect<IndexedList<T>, ListError>
  /** Drops every list of `server` (all identities) at once. */
  readonly invalidate: (server: string) => void
  /**
   * The list the router may use now without any effect (a warm call's fast path), or `undefined`: then use `route`.
   * Only lists that `route` already returned within their time are here.
   */
  readonly peek: (server: string, identity: string | undefined, nowMillis: number) => IndexedList<T> | undefined
}

const serverOfKey = (key: string): string => {
  const nul = key.indexOf("\u0000")
  return nul < 0 ? key : key.slice(0, nul)
}

// A `tools/list` is rare (once per server and TTL), so it always gets a client span.
const listSpanOptions = (server: string) => ({
  kind: "client" as const,
  attributes: { [Metrics.Attr.method]: "tools/list", [Metrics.Attr.server]: server }
})

/** @internal */
export const make = <T>(options: {
  readonly servers: ReadonlyMap<string, BridgeConfig.ResolvedServer>
  readonly pool: ConnectionPool["Service"]
  /** used when a server gives no positive `ttlMs` */
  readonly timeToLive: Duration.Duration
  readonly present: (server: string, tool: Tool) => T
}) =>
  Effect.gen(function*() {
    const { pool, present, servers } = options
    const scope = yield* Effect.scope
    const ttlMillis = Duration.toMillis(options.timeToLive)
    const scopes = new Map<string, "public" | "private">()
    const generations = new Map<string, number>()
    const refreshing = new Set<string>()
    let fetches = 0

    // `server` for public lists, `server NUL identity` for private ones (and before the server said which).
    const keyOf = (server: string, identity: string | undefined): string =>
      scopes.get(server) === "public" ? server : `${server}\u0000${identity ?? ""}`

    // The lists `route` returned within their time, for `peek`. Bounded: identities are not (it is only a shortcut).
    const hot = new Map<string, IndexedList<T>>()
    const maxHot = Math.max(1_024, servers.size * 4)

    const invalidate = (server: string): void => {
      generations.set(server, (generations.get(server) ?? 0) + 1)
      for (const key of hot.keys()) if (serverOfKey(key) === server) hot.delete(key)
      for (const key of Array.from(MutableHashMap.keys(lists.map))) {
        if (serverOfKey(key) === server) MutableHashMap.remove(lists.map, key)
      }
    }

    const watched = new WeakSet<McpSession>()
    const watch = (session: McpSession): void => {
      if (watched.has(session)) return
      watched.add(session)
      session.onToolsChanged(() => invalidate(session.server))
    }

    const lookup = (key: string): Effect.Effect<IndexedList<T>, ListError> =>
      Effect.gen(function*() {
        const name = serverOfKey(key)
        const server = servers.get(name)!
        const generation = generations.get(name) ?? 0
        const sequence = ++fetches
        const { era, list } = yield* pool.withSession(server, (session) => {
          watch(session)
          return Effect.map(session.listTools(server.timeout), (list) => ({ era: session.era, list }))
        }).pipe(Effect.withSpan("tools/list", listSpanOptions(name)))
        const now = yield* Clock.currentTimeMillis
        const isPrivate = list.cacheScope === "private"
        scopes.set(name, isPrivate ? "private" : "public")
        const hinted = list.ttlMs !== undefined && list.ttlMs > 0
        const routeMillis = hinted ? list.ttlMs! : ttlMillis
        const indexed: IndexedList<T> = {
          server: name,
          tools: list.tools.map((tool) => present(name, tool)),
          byName: new Map(list.tools.map((tool) => [tool.name, tool])),
          policies: new Map(list.tools.map((tool) => [tool.name, BridgeConfig.toolPolicy(server, tool.name, tool)])),
          generation,
          sequence,
          isPrivate,
          routeUntil: now + routeMillis,
          freshUntil: era === "modern" && !hinted ? now : now + routeMillis,
          keep: Duration.millis(2 * routeMillis)
        }
        // Fetched under a per-identity key before the scope was known, and public: every caller may use it.
        if (!isPrivate && key !== name) yield* Cache.set(lists, name, indexed)
        return indexed
      })

    const timeToLive = (exit: Exit.Exit<IndexedList<T>, ListError>, key: string): Duration.Duration => {
      if (exit._tag === "Failure") return Duration.zero
      const list = exit.value
      // Listed before a change notification, or private under a shared key: never stored.
      if (list.generation !== (generations.get(list.server) ?? 0)) return Duration.zero
      if (list.isPrivate && key === list.server) return Duration.zero
      return list.keep
    }

    const lists: Cache.Cache<string, IndexedList<T>, ListError> = yield* Cache.makeWith(lookup, {
      capacity: Math.max(1_024, servers.size * 4),
      timeToLive
    })

    const revalidate = (key: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (refreshing.has(key)) return Effect.void
        refreshing.add(key)
        return Effect.asVoid(Effect.forkIn(
          Cache.refresh(lists, key).pipe(
            Effect.ignore,
            Effect.ensuring(Effect.sync(() => refreshing.delete(key)))
          ),
          scope
        ))
      })

    const route = (server: BridgeConfig.ResolvedServer, identity: string | undefined) => {
      const key = keyOf(server.name, identity)
      return Effect.flatMap(Cache.get(lists, key), (list) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (now >= list.routeUntil) return Effect.as(revalidate(key), list)
          if (list.generation === (generations.get(list.server) ?? 0)) {
            if (hot.size >= maxHot) hot.clear()
            hot.set(key, list)
          }
          return Effect.succeed(list)
        }))
    }

    const peek = (server: string, identity: string | undefined, nowMillis: number) => {
      const list = hot.get(keyOf(server, identity))
      return list !== undefined && nowMillis < list.routeUntil ? list : undefined
    }

    const list = (server: BridgeConfig.ResolvedServer, identity: string | undefined) =>
      Effect.gen(function*() {
        const key = keyOf(server.name, identity)
        const before = fetches
        const cached = yield* Cache.get(lists, key)
        const now = yield* Clock.currentTimeMillis
        return cached.sequence <= before && now >= cached.freshUntil ? yield* Cache.refresh(lists, key) : cached
      })

    const reload = (server: BridgeConfig.ResolvedServer, identity: string | undefined) =>
      Effect.suspend(() => {
        const key = keyOf(server.name, identity)
        hot.delete(key)
        return Cache.invalidate(lists, key).pipe(Effect.andThen(Cache.get(lists, key)))
      })

    return { watch, route, list, reload, invalidate, peek } satisfies ToolIndex<T>
  })
