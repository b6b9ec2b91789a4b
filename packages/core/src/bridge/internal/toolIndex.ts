/**
 * The tool index: the `tools/list` of every server, kept for routing calls and for listing.
 *
 * A list the server marks `private` (2026-07-28 `cacheScope`) is kept per caller identity, a `public` or legacy one
 * once per server. The router uses a list for its `ttlMs` (else the bridge's `toolListTimeToLive`), then as long
 * again while one background fetch gets the next; a list-changed notification drops it at once, and a fetch started
 * before the notification is never stored.
 *
 * A plain `Map` of lists with single-flight fetches (`flights.ts`) rather than `Cache`: routing reads the list
 * synchronously on every call. The reasoning: docs/design.md, "The tool index".
 *
 * @internal
 */
import type { Tool } from "@modelcontextprotocol/client"
import { Clock, Duration, Effect } from "effect"
import type * as BridgeConfig from "../../config/BridgeConfig.ts"
import * as ToolPolicy from "../../config/ToolPolicy.ts"
import * as Flights from "../../internal/flights.ts"
import * as Metrics from "../../internal/metrics.ts"
import type { McpSession, ToolList } from "../../session/McpSession.ts"

/** @internal */
export interface IndexedList<T> {
  readonly server: string
  readonly tools: ReadonlyArray<T>
  readonly byName: ReadonlyMap<string, Tool>
  readonly policies: ReadonlyMap<string, ToolPolicy.ToolPolicy>
  /** the server's generation when the fetch started */
  readonly generation: number
  readonly isPrivate: boolean
  /** Clock millis until which the router uses the list as it is */
  readonly routeUntil: number
  /** Clock millis until which `list` uses the list without asking the server */
  readonly freshUntil: number
  /** Clock millis until which the router may use it while a refresh runs */
  readonly keepUntil: number
}

/** @internal */
export interface ToolIndex<T, E> {
  /** Subscribes to a session's list changes (once per session). */
  readonly watch: (session: McpSession) => void
  /** The list the router uses now; a list past its time is refreshed in the background. */
  readonly route: (
    server: BridgeConfig.ResolvedServer,
    identity: string | undefined
  ) => Effect.Effect<IndexedList<T>, E>
  /** The list for `listTools`, honouring the server's `ttlMs`. */
  readonly list: (server: BridgeConfig.ResolvedServer, identity: string | undefined) => Effect.Effect<IndexedList<T>, E>
  /** Drops the caller's list and fetches it again (for a tool the index does not know). */
  readonly reload: (
    server: BridgeConfig.ResolvedServer,
    identity: string | undefined
  ) => Effect.Effect<IndexedList<T>, E>
  /** Drops every list of `server` (all identities) at once. */
  readonly invalidate: (server: string) => void
  /** Forgets all it knew of `server` (its lists and their scope): the server was removed or replaced. */
  readonly forget: (server: string) => void
  /**
   * The list the router may use now without any effect (a warm call's fast path), or `undefined`: then use `route`.
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
export const make = <T, E>(options: {
  readonly servers: ReadonlyMap<string, BridgeConfig.ResolvedServer>
  /** lists `server`'s tools on a leased session */
  readonly listTools: (
    server: BridgeConfig.ResolvedServer,
    onSession: (session: McpSession) => void
  ) => Effect.Effect<{ readonly list: ToolList; readonly era: McpSession["era"] }, E>
  /** used when a server gives no positive `ttlMs` */
  readonly timeToLive: Duration.Duration
  readonly present: (server: string, tool: Tool) => T
  /** told of each list stored, and whether it differs from the list it replaced (none: it does not) */
  readonly onFetched?: ((server: string, differs: boolean) => void) | undefined
}) =>
  Effect.gen(function*() {
    const { present, servers } = options
    const scope = yield* Effect.scope
    const ttlMillis = Duration.toMillis(options.timeToLive)
    const scopes = new Map<string, "public" | "private">()
    const generations = new Map<string, number>()
    const lists = new Map<string, IndexedList<T>>()
    const capacity = Math.max(1_024, servers.size * 4)
    const flights = Flights.make<IndexedList<T>, E>()

    // `server` for public lists, `server NUL identity` for private ones (and before the server said which).
    const keyOf = (server: string, identity: string | undefined): string =>
      scopes.get(server) === "public" ? server : `${server}\u0000${identity ?? ""}`

    const generationOf = (server: string) => generations.get(server) ?? 0

    const storeList = (key: string, list: IndexedList<T>) => {
      lists.delete(key)
      lists.set(key, list)
      if (lists.size > capacity) lists.delete(lists.keys().next().value!)
    }

    const invalidate = (server: string): void => {
      generations.set(server, generationOf(server) + 1)
      for (const key of Array.from(lists.keys())) if (serverOfKey(key) === server) lists.delete(key)
      // Fetches already in flight are not stored (generation); callers from now on start a fetch of their own.
      for (const key of flights.keys()) if (serverOfKey(key) === server) flights.forget(key)
    }

    const watched = new WeakSet<McpSession>()
    const watch = (session: McpSession): void => {
      if (watched.has(session)) return
      watched.add(session)
      session.onToolsChanged(() => invalidate(session.server))
    }

    const lookup = (key: string, server: BridgeConfig.ResolvedServer): Effect.Effect<IndexedList<T>, E> =>
      Effect.gen(function*() {
        const name = server.name
        const generation = generationOf(name)
        const { era, list } = yield* options.listTools(server, watch).pipe(
          Effect.withSpan("tools/list", listSpanOptions(name))
        )
        const now = yield* Clock.currentTimeMillis
        const isPrivate = list.cacheScope === "private"
        scopes.set(name, isPrivate ? "private" : "public")
        const hinted = list.ttlMs !== undefined && list.ttlMs > 0
        const routeMillis = hinted ? list.ttlMs! : ttlMillis
        const indexed: IndexedList<T> = {
          server: name,
          tools: list.tools.map((tool) => present(name, tool)),
          byName: new Map(list.tools.map((tool) => [tool.name, tool])),
          policies: new Map(list.tools.map((tool) => [tool.name, ToolPolicy.resolve(server, tool.name, tool)])),
          generation,
          isPrivate,
          routeUntil: now + routeMillis,
          freshUntil: era === "modern" && !hinted ? now : now + routeMillis,
          keepUntil: now + 2 * routeMillis
        }
        // Listed before a change notification: never stored.
        if (generation === generationOf(name)) {
          // A private list is never stored under a shared key; a public one fetched under a per-identity key (before
          // the scope was known) is stored for every caller.
          if (!(isPrivate && key === name)) {
            const storeKey = isPrivate ? key : name
            const previous = lists.get(storeKey)
            storeList(storeKey, indexed)
            options.onFetched?.(
              name,
              previous !== undefined && JSON.stringify(Array.from(previous.byName.values())) !==
                  JSON.stringify(list.tools)
            )
          }
        }
        return indexed
      })

    const fetch = (key: string, server: BridgeConfig.ResolvedServer) => flights.run(key, lookup(key, server))

    // One background refresh per key: marked before the fork starts, so that the calls routed meanwhile add none.
    const refreshing = new Set<string>()
    const revalidate = (key: string, server: BridgeConfig.ResolvedServer): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (flights.has(key) || refreshing.has(key)) return Effect.void
        refreshing.add(key)
        return Effect.asVoid(Effect.forkIn(
          Effect.ignore(fetch(key, server)).pipe(Effect.ensuring(Effect.sync(() => refreshing.delete(key)))),
          scope
        ))
      })

    const usable = (list: IndexedList<T> | undefined, now: number) =>
      list !== undefined && now < list.keepUntil && list.generation === generationOf(list.server)

    const route = (server: BridgeConfig.ResolvedServer, identity: string | undefined) =>
      Effect.clockWith((clock) => {
        const key = keyOf(server.name, identity)
        const list = lists.get(key)
        const now = clock.currentTimeMillisUnsafe()
        if (!usable(list, now)) return fetch(key, server)
        return now >= list!.routeUntil ? Effect.as(revalidate(key, server), list!) : Effect.succeed(list!)
      })

    const peek = (server: string, identity: string | undefined, nowMillis: number) => {
      const list = lists.get(keyOf(server, identity))
      return list !== undefined && nowMillis < list.routeUntil && list.generation === generationOf(server)
        ? list
        : undefined
    }

    const list = (server: BridgeConfig.ResolvedServer, identity: string | undefined) =>
      Effect.clockWith((clock) => {
        const key = keyOf(server.name, identity)
        const cached = lists.get(key)
        const now = clock.currentTimeMillisUnsafe()
        return usable(cached, now) && now < cached!.freshUntil ? Effect.succeed(cached!) : fetch(key, server)
      })

    const reload = (server: BridgeConfig.ResolvedServer, identity: string | undefined) =>
      Effect.suspend(() => {
        const key = keyOf(server.name, identity)
        lists.delete(key)
        return fetch(key, server)
      })

    const forget = (server: string): void => {
      invalidate(server)
      scopes.delete(server)
    }

    return { watch, route, list, reload, invalidate, forget, peek } satisfies ToolIndex<T, E>
  })
