/**
 * All of MCP besides tools, for the bridge: resources, resource templates, prompts, completion, resource
 * subscriptions, ping, and the stream of what changed.
 *
 * - Lists (`resources/list`, `resources/templates/list`, `prompts/list`, every page) are kept per server (per caller
 *   identity when a 2026-07-28 server marks them `private`) for the server's positive `ttlMs` or the bridge's list TTL,
 *   single flight, and dropped when the server announces a change of that list. A 2026-07-28 list without a positive
 *   `ttlMs` is stale at once, as the hint says.
 * - A resource URI is routed to the server that lists it, else to the first whose template matches it.
 * - Subscriptions are counted per server and URI and held on one session of the server; when that session closes, the
 *   subscription is made again on another.
 * - `changes`: a `PubSub` of this bridge: list changes (deduplicated per server and list until the list is fetched
 *   again, since every session of a server receives the same notification) and `resources/updated`.
 *
 * @internal
 */
import type {
  CompleteRequest,
  CompleteResult,
  GetPromptResult,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplateType
} from "@modelcontextprotocol/client"
import { UriTemplate } from "@modelcontextprotocol/client"
import { Clock, Duration, Effect, PubSub, type Scope, Stream } from "effect"
import { CallerIdentity } from "../../auth/CallerIdentity.ts"
import type * as BridgeConfig from "../../config/BridgeConfig.ts"
import {
  invalidCall,
  McpBridgeError,
  UnknownPrompt,
  UnknownResource,
  UnknownServer,
  Unsupported
} from "../../errors/McpBridgeError.ts"
import { McpSessionError } from "../../errors/McpSessionError.ts"
import * as Flights from "../../internal/flights.ts"
import * as Metrics from "../../internal/metrics.ts"
import type { ClientRounds, Listed, ListKind, McpSession } from "../../session/McpSession.ts"

/** @internal */
export type Change =
  | { readonly _tag: "ListChanged"; readonly server: string; readonly list: ListKind }
  | { readonly _tag: "ResourceUpdated"; readonly server: string; readonly uri: string }

type Kind = "resources" | "templates" | "prompts"

interface Kept<A> {
  readonly items: ReadonlyArray<A>
  /** the server declares the capability the list belongs to */
  readonly supported: boolean
  readonly generation: number
  readonly freshUntil: number
}

/** @internal */
export interface Env<E> {
  readonly servers: ReadonlyMap<string, BridgeConfig.ResolvedServer>
  readonly withSession: <A, E2>(
    server: BridgeConfig.ResolvedServer,
    f: (session: McpSession) => Effect.Effect<A, E2>
  ) => Effect.Effect<A, E2 | E>
  readonly guard: <A, E2>(server: BridgeConfig.ResolvedServer, effect: Effect.Effect<A, E2>) => Effect.Effect<A, E2 | E>
  readonly timeToLive: Duration.Duration
}

const spanOptions = (method: string, server: string) => ({
  kind: "client" as const,
  attributes: { [Metrics.Attr.method]: method, [Metrics.Attr.server]: server }
})

const capabilityOf = (kind: Kind): string => kind === "prompts" ? "prompts" : "resources"

/** @internal */
export const make = <E>(env: Env<E>): Effect.Effect<ReturnType<typeof build<E>>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<Change>(), PubSub.shutdown)
    const scope = yield* Effect.scope
    return build(env, pubsub, scope)
  })

const build = <E>(env: Env<E>, pubsub: PubSub.PubSub<Change>, scope: Scope.Scope) => {
  const { servers } = env
  // The servers in force: `servers` is the bridge's live map (a reconfiguration changes it).
  const names = () => Array.from(servers.keys())
  const ttlMillis = Duration.toMillis(env.timeToLive)
  const publish = (change: Change) => void PubSub.publishUnsafe(pubsub, change)

  // ---------------------------------------------------------------------------
  // What changed
  // ---------------------------------------------------------------------------

  // A list announced as changed and not fetched since: the next announcement (from another session) is the same news.
  const dirty = new Set<string>()
  const changed = (server: string, list: ListKind) => {
    const key = `${list}\u0000${server}`
    if (dirty.has(key)) return
    dirty.add(key)
    publish({ _tag: "ListChanged", server, list })
  }
  const fetched = (server: string, list: ListKind, differs: boolean) => {
    const key = `${list}\u0000${server}`
    if (differs && !dirty.has(key)) publish({ _tag: "ListChanged", server, list })
    dirty.delete(key)
  }

  const generations = new Map<string, number>()
  const generationOf = (key: string) => generations.get(key) ?? 0
  const kept = new Map<string, Kept<unknown>>()
  const scopes = new Map<string, "public" | "private">()
  const flights = Flights.make<Kept<unknown>, unknown>()

  const invalidate = (server: string, kind: Kind) => {
    const prefix = `${kind}\u0000${server}`
    generations.set(prefix, generationOf(prefix) + 1)
    for (const key of Array.from(kept.keys())) {
      if (key === prefix || key.startsWith(`${prefix}\u0000`)) kept.delete(key)
    }
    for (const key of flights.keys()) if (key === prefix || key.startsWith(`${prefix}\u0000`)) flights.forget(key)
  }

  const watched = new WeakSet<McpSession>()
  const watch = (session: McpSession): void => {
    if (watched.has(session)) return
    watched.add(session)
    session.onListChanged((list) => {
      if (list === "resources") {
        invalidate(session.server, "resources")
        invalidate(session.server, "templates")
      } else if (list === "prompts") {
        invalidate(session.server, "prompts")
      }
      changed(session.server, list)
    })
    session.onResourceUpdated((uri) => publish({ _tag: "ResourceUpdated", server: session.server, uri }))
  }

  const onSession = <A, E2>(server: BridgeConfig.ResolvedServer, f: (session: McpSession) => Effect.Effect<A, E2>) =>
    env.withSession(server, (session) => {
      watch(session)
      return f(session)
    })

  // ---------------------------------------------------------------------------
  // Lists
  // ---------------------------------------------------------------------------

  const fetchList = (server: BridgeConfig.ResolvedServer, session: McpSession, kind: Kind) => {
    const timeout = server.timeout
    const listed: Effect.Effect<Listed<unknown>, McpSessionError> = kind === "resources"
      ? session.listResources(timeout)
      : kind === "templates"
      ? session.listResourceTemplates(timeout)
      : session.listPrompts(timeout)
    return Effect.map(listed, (list) => ({
      list,
      era: session.era,
      supported: kind === "prompts"
        ? session.capabilities?.prompts !== undefined
        : session.capabilities?.resources !== undefined
    }))
  }

  const methodOf = (kind: Kind) =>
    kind === "resources" ? "resources/list" : kind === "templates" ? "resources/templates/list" : "prompts/list"

  const keyOf = (kind: Kind, server: string, identity: string | undefined) => {
    const prefix = `${kind}\u0000${server}`
    return scopes.get(prefix) === "public" ? prefix : `${prefix}\u0000${identity ?? ""}`
  }

  const lookup = (server: BridgeConfig.ResolvedServer, kind: Kind, key: string) =>
    Effect.gen(function*() {
      const prefix = `${kind}\u0000${server.name}`
      const generation = generationOf(prefix)
      const { era, list, supported } = yield* env.guard(
        server,
        onSession(server, (session) => fetchList(server, session, kind))
      ).pipe(Effect.withSpan(methodOf(kind), spanOptions(methodOf(kind), server.name)))
      const now = yield* Clock.currentTimeMillis
      const isPrivate = list.cacheScope === "private"
      scopes.set(prefix, isPrivate ? "private" : "public")
      const hinted = list.ttlMs !== undefined && list.ttlMs > 0
      const entry: Kept<unknown> = {
        items: list.items,
        supported,
        generation,
        freshUntil: era === "modern" && !hinted ? now : now + (hinted ? list.ttlMs! : ttlMillis)
      }
      if (generation === generationOf(prefix)) {
        const storeKey = isPrivate ? key : prefix
        if (!(isPrivate && key === prefix)) {
          const previous = kept.get(storeKey)
          kept.set(storeKey, entry)
          fetched(
            server.name,
            kind === "prompts" ? "prompts" : "resources",
            previous !== undefined && JSON.stringify(previous.items) !== JSON.stringify(entry.items)
          )
        }
      }
      return entry
    })

  const listOf = <A>(
    server: BridgeConfig.ResolvedServer,
    kind: Kind,
    fresh = false
  ): Effect.Effect<Kept<A>, McpSessionError | E> =>
    Effect.withFiber((fiber) => {
      const key = keyOf(kind, server.name, fiber.getRef(CallerIdentity))
      const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
      const entry = kept.get(key)
      if (!fresh && entry !== undefined && now < entry.freshUntil) return Effect.succeed(entry as Kept<A>)
      return flights.run(key, lookup(server, kind, key)) as Effect.Effect<Kept<A>, McpSessionError | E>
    })

  const unknownServer = (name: string) =>
    new McpBridgeError({ reason: new UnknownServer({ server: name, available: names() }) })
  const serverOf = (name: string) => {
    const server = servers.get(name)
    return server === undefined ? Effect.fail(unknownServer(name)) : Effect.succeed(server)
  }

  const listServer = <A, B>(kind: Kind, present: (server: string, item: A) => B) => (name: string) =>
    Effect.flatMap(
      serverOf(name),
      (server) => Effect.map(listOf<A>(server, kind), (entry) => entry.items.map((item) => present(name, item)))
    )

  // Every server's list; a server that cannot be reached is left out and logged.
  const listAll =
    <B>(what: string, one: (name: string) => Effect.Effect<ReadonlyArray<B>, McpBridgeError | McpSessionError | E>) =>
    () =>
      Effect.forEach(names(), (name) =>
        one(name).pipe(
          Effect.catch((error) =>
            Effect.logWarning(`MCP server "${name}" left out of the ${what} list: ${(error as Error).message}`).pipe(
              Effect.as([] as ReadonlyArray<B>)
            )
          )
        ), { concurrency: "unbounded" }).pipe(Effect.map((lists) => lists.flat()))

  const presentResource = (server: string, resource: Resource): BridgeResource => ({ server, ...resource })
  const presentTemplate = (server: string, template: ResourceTemplateType): BridgeResourceTemplate => ({
    server,
    ...template
  })
  const presentPrompt = (server: string, prompt: Prompt): BridgePrompt => ({
    qualifiedName: `${server}.${prompt.name}`,
    server,
    ...prompt
  })

  const listServerResources = listServer<Resource, BridgeResource>("resources", presentResource)
  const listServerResourceTemplates = listServer<ResourceTemplateType, BridgeResourceTemplate>(
    "templates",
    presentTemplate
  )
  const listServerPrompts = listServer<Prompt, BridgePrompt>("prompts", presentPrompt)

  // ---------------------------------------------------------------------------
  // Routing a URI
  // ---------------------------------------------------------------------------

  const templates = new Map<string, UriTemplate | null>()
  const matches = (template: string, uri: string): boolean => {
    let compiled = templates.get(template)
    if (compiled === undefined) {
      try {
        compiled = new UriTemplate(template)
      } catch {
        compiled = null
      }
      templates.set(template, compiled)
    }
    return compiled !== null && compiled.match(uri) !== null
  }

  const owns = (server: BridgeConfig.ResolvedServer, uri: string) =>
    Effect.gen(function*() {
      const resources = yield* listOf<Resource>(server, "resources")
      if (resources.items.some((r) => r.uri === uri)) return true
      const list = yield* listOf<ResourceTemplateType>(server, "templates")
      return list.items.some((t) => matches(t.uriTemplate, uri))
    }).pipe(Effect.catch(() => Effect.succeed(false)))

  const route = (uri: string, name: string | undefined): Effect.Effect<BridgeConfig.ResolvedServer, McpBridgeError> => {
    if (typeof uri !== "string" || uri.length === 0) {
      return Effect.fail(invalidCall(["uri"], "must be a non-empty string"))
    }
    if (name !== undefined) return serverOf(name)
    return Effect.gen(function*() {
      for (const server of servers.values()) {
        if (yield* owns(server, uri)) return server
      }
      return yield* new McpBridgeError({ reason: new UnknownResource({ uri }) })
    })
  }

  const unsupported = (server: string, capability: string) =>
    new McpBridgeError({ reason: new Unsupported({ server, capability }) })

  const timeoutOf = (server: BridgeConfig.ResolvedServer, options: RequestOptions | undefined) =>
    options?.timeout === undefined ? server.timeout : Duration.fromInputUnsafe(options.timeout)

  // A server's "no such resource" (JSON-RPC -32002, or -32602 "Resource not found" as SDK servers send it) is the
  // bridge's `UnknownResource`.
  const resourceMissing = (server: string, uri: string) => (error: unknown) =>
    error instanceof McpSessionError && error.reason._tag === "Protocol" &&
      (error.reason.code === -32002 || (error.reason.code === -32602 && /not found/i.test(error.reason.message)))
      ? Effect.fail(new McpBridgeError({ reason: new UnknownResource({ uri, server }) }))
      : Effect.fail(error)

  const readResource = (uri: string, options?: ResourceOptions) =>
    Effect.flatMap(route(uri, options?.server), (server) =>
      env.guard(
        server,
        onSession(server, (session): Effect.Effect<ReadResourceResult, McpBridgeError | McpSessionError> =>
          session.capabilities?.resources === undefined
            ? Effect.fail(unsupported(server.name, "resources"))
            : session.readResource(uri, timeoutOf(server, options), options?.rounds))
      ).pipe(
        Effect.catch(resourceMissing(server.name, uri)),
        Effect.withSpan("resources/read", spanOptions("resources/read", server.name))
      )) as Effect.Effect<ReadResourceResult, McpBridgeError | McpSessionError | E>

  // ---------------------------------------------------------------------------
  // Subscriptions
  // ---------------------------------------------------------------------------

  interface Held {
    count: number
    session: McpSession | undefined
  }
  const held = new Map<string, Held>()

  const subscribeOn = (
    server: BridgeConfig.ResolvedServer,
    uri: string,
    entry: Held,
    timeout: Duration.Duration
  ): Effect.Effect<McpSession, McpBridgeError | McpSessionError | E> =>
    onSession(server, (session): Effect.Effect<McpSession, McpBridgeError | McpSessionError> => {
      if (session.capabilities?.resources?.subscribe !== true) {
        return Effect.fail(unsupported(server.name, "resources.subscribe"))
      }
      return Effect.as(session.subscribeResource(uri, timeout), session)
    }).pipe(
      Effect.tap((session: McpSession) =>
        Effect.sync(() => {
          entry.session = session
        }).pipe(
          // The session closes (retired, died): the subscription moves to another session of the server.
          Effect.andThen(
            Effect.forkIn(
              Effect.andThen(
                session.closed,
                Effect.suspend(() =>
                  held.get(`${server.name}\u0000${uri}`) === entry && entry.session === session
                    ? subscribeOn(server, uri, entry, timeout).pipe(
                      Effect.catch((error) =>
                        Effect.logWarning(
                          `the subscription to "${uri}" of MCP server "${server.name}" ended: ${
                            (error as Error).message
                          }`
                        )
                      )
                    )
                    : Effect.void
                )
              ),
              scope
            )
          )
        )
      )
    )

  const subscribeResource = (uri: string, options?: ResourceOptions) =>
    Effect.flatMap(route(uri, options?.server), (server) =>
      Effect.suspend(() => {
        const key = `${server.name}\u0000${uri}`
        const existing = held.get(key)
        if (existing !== undefined) {
          existing.count++
          return Effect.void
        }
        const entry: Held = { count: 1, session: undefined }
        held.set(key, entry)
        return subscribeOn(server, uri, entry, timeoutOf(server, options)).pipe(
          Effect.asVoid,
          Effect.tapError(() => Effect.sync(() => held.delete(key))),
          Effect.withSpan("resources/subscribe", spanOptions("resources/subscribe", server.name))
        )
      })) as Effect.Effect<void, McpBridgeError | McpSessionError | E>

  const unsubscribeResource = (uri: string, options?: ResourceOptions) =>
    Effect.flatMap(route(uri, options?.server), (server) =>
      Effect.suspend(() => {
        const key = `${server.name}\u0000${uri}`
        const entry = held.get(key)
        if (entry === undefined || --entry.count > 0) return Effect.void
        held.delete(key)
        const session = entry.session
        return session === undefined || !session.isOpen()
          ? Effect.void
          : session.unsubscribeResource(uri, timeoutOf(server, options))
      })) as Effect.Effect<void, McpBridgeError | McpSessionError | E>

  // ---------------------------------------------------------------------------
  // Prompts and completion
  // ---------------------------------------------------------------------------

  const promptTarget = (target: PromptTarget): { server: string; prompt: string } | McpBridgeError => {
    if (typeof target === "string") {
      const dot = target.indexOf(".")
      if (dot <= 0 || dot === target.length - 1) {
        return invalidCall(["prompt"], `must be "server.prompt" or { server, prompt }, got "${target}"`)
      }
      return { server: target.slice(0, dot), prompt: target.slice(dot + 1) }
    }
    if (
      typeof target !== "object" || target === null || typeof target.server !== "string" ||
      typeof target.prompt !== "string"
    ) {
      return invalidCall(["prompt"], "must be \"server.prompt\" or { server, prompt }")
    }
    return target
  }

  const knownPrompt = (server: BridgeConfig.ResolvedServer, prompt: string) =>
    Effect.gen(function*() {
      let list = yield* listOf<Prompt>(server, "prompts")
      if (!list.supported) return yield* unsupported(server.name, "prompts")
      if (list.items.some((p) => p.name === prompt)) return
      // A prompt the list does not have may have just been added: look again once before giving up.
      list = yield* listOf<Prompt>(server, "prompts", true)
      if (list.items.some((p) => p.name === prompt)) return
      return yield* new McpBridgeError({
        reason: new UnknownPrompt({ server: server.name, prompt, available: list.items.map((p) => p.name) })
      })
    })

  const getPrompt = (target: PromptTarget, args?: Readonly<Record<string, string>>, options?: RequestOptions) => {
    const parsed = promptTarget(target)
    if (parsed instanceof McpBridgeError) return Effect.fail(parsed)
    return Effect.gen(function*() {
      const server = yield* serverOf(parsed.server)
      yield* knownPrompt(server, parsed.prompt)
      return yield* env.guard(
        server,
        onSession(
          server,
          (session) =>
            session.getPrompt({ name: parsed.prompt, arguments: args }, timeoutOf(server, options), options?.rounds)
        )
      ).pipe(Effect.withSpan("prompts/get", spanOptions("prompts/get", server.name)))
    }) as Effect.Effect<GetPromptResult, McpBridgeError | McpSessionError | E>
  }

  const complete = (request: CompleteParams, options?: RequestOptions) =>
    Effect.gen(function*() {
      const { argument, context, ref } = request
      let server: BridgeConfig.ResolvedServer
      let wireRef: CompleteRequest["params"]["ref"]
      if (ref.type === "ref/prompt") {
        const parsed = request.server === undefined
          ? promptTarget(ref.name)
          : { server: request.server, prompt: ref.name }
        if (parsed instanceof McpBridgeError) return yield* parsed
        server = yield* serverOf(parsed.server)
        wireRef = { type: "ref/prompt", name: parsed.prompt }
      } else {
        if (request.server !== undefined) {
          server = yield* serverOf(request.server)
        } else {
          let found: BridgeConfig.ResolvedServer | undefined
          for (const candidate of servers.values()) {
            const list = yield* listOf<ResourceTemplateType>(candidate, "templates").pipe(
              Effect.catch(() => Effect.succeed(undefined))
            )
            if (list?.items.some((t) => t.uriTemplate === ref.uri)) {
              found = candidate
              break
            }
          }
          if (found === undefined) return yield* new McpBridgeError({ reason: new UnknownResource({ uri: ref.uri }) })
          server = found
        }
        wireRef = { type: "ref/resource", uri: ref.uri }
      }
      const target = server
      return yield* env.guard(
        target,
        onSession(target, (session): Effect.Effect<CompleteResult, McpBridgeError | McpSessionError> =>
          session.capabilities?.completions === undefined
            ? Effect.fail(unsupported(target.name, "completions"))
            : session.complete(
              { ref: wireRef, argument, ...(context === undefined ? {} : { context }) },
              timeoutOf(target, options)
            ))
      ).pipe(Effect.withSpan("completion/complete", spanOptions("completion/complete", target.name)))
    }) as Effect.Effect<CompleteResult, McpBridgeError | McpSessionError | E>

  const ping = (name: string, options?: RequestOptions) =>
    Effect.flatMap(
      serverOf(name),
      (server) =>
        onSession(server, (session) => session.probe(timeoutOf(server, options))).pipe(
          Effect.withSpan("ping", spanOptions("ping", server.name))
        )
    ) as Effect.Effect<void, McpBridgeError | McpSessionError | E>

  // Whether a list of `server` known now has items (any identity's): what a removal changes for downstream clients.
  const holds = (server: string, list: "resources" | "prompts"): boolean => {
    const kinds: ReadonlyArray<Kind> = list === "resources" ? ["resources", "templates"] : ["prompts"]
    for (const [key, entry] of kept) {
      for (const kind of kinds) {
        const prefix = `${kind}\u0000${server}`
        if ((key === prefix || key.startsWith(`${prefix}\u0000`)) && entry.items.length > 0) return true
      }
    }
    return false
  }

  // A server removed or replaced: its lists, their scopes and pending news are forgotten.
  const forget = (server: string): void => {
    for (const kind of ["resources", "templates", "prompts"] as const) {
      invalidate(server, kind)
      scopes.delete(`${kind}\u0000${server}`)
    }
    for (const list of ["tools", "resources", "prompts"] as const) dirty.delete(`${list}\u0000${server}`)
  }

  return {
    watch,
    forget,
    holds,
    publish,
    toolsFetched: (server: string, differs: boolean) => fetched(server, "tools", differs),
    service: {
      listResources: listAll("resource", listServerResources),
      listServerResources,
      listResourceTemplates: listAll("resource template", listServerResourceTemplates),
      listServerResourceTemplates,
      readResource,
      subscribeResource,
      unsubscribeResource,
      listPrompts: listAll("prompt", listServerPrompts),
      listServerPrompts,
      getPrompt,
      complete,
      ping,
      changes: Stream.fromPubSub(pubsub)
    }
  }
}

/**
 * A resource of one server.
 *
 * @internal
 */
export type BridgeResource = Resource & { readonly server: string }

/** @internal */
export type BridgeResourceTemplate = ResourceTemplateType & { readonly server: string }

/** @internal */
export type BridgePrompt = Prompt & { readonly qualifiedName: string; readonly server: string }

/** @internal */
export type PromptTarget = string | { readonly server: string; readonly prompt: string }

/** @internal */
export interface RequestOptions {
  readonly timeout?: Duration.Input | undefined
  /** `prompts/get` and `resources/read`: the caller answers a 2026-07-28 server's `input_required` itself. */
  readonly rounds?: ClientRounds | undefined
}

/** @internal */
export interface ResourceOptions extends RequestOptions {
  readonly server?: string | undefined
}

/** @internal */
export interface CompleteParams {
  readonly ref:
    | { readonly type: "ref/prompt"; readonly name: string }
    | { readonly type: "ref/resource"; readonly uri: string }
  readonly argument: { readonly name: string; readonly value: string }
  readonly context?: { readonly arguments?: Readonly<Record<string, string>> } | undefined
  readonly server?: string | undefined
}
