/**
 * What a test server serves besides tools: resources, resource templates, prompts and completions, and the
 * notifications about them (list changes, `resources/updated` for subscribed URIs), in both eras.
 *
 * A 2025-era session subscribes with `resources/subscribe` (handled here, per instance); a 2026-07-28 client opens a
 * `subscriptions/listen` stream, which the SDK's serving entries hold and filter themselves.
 *
 * @internal
 */
import { fromJsonSchema, ProtocolError, ProtocolErrorCode, ResourceTemplate } from "@modelcontextprotocol/server"
import type {
  CompleteResult,
  JsonSchemaType,
  McpServer,
  ServerCapabilities,
  ServerContext
} from "@modelcontextprotocol/server"
import type { TestPrompt, TestServerSpec } from "./spec.ts"
import { changed, type ServerState } from "./state.ts"

const changesLists = (spec: TestServerSpec, kinds: ReadonlyArray<string>): boolean =>
  spec.tools.some((tool) => kinds.includes(tool.respond.kind))

/** The capabilities the spec's resources, prompts and completions need. */
export const capabilitiesOf = (spec: TestServerSpec): ServerCapabilities => {
  const resources = spec.resources !== undefined || spec.resourceTemplates !== undefined ||
    changesLists(spec, ["addResource", "updateResource"])
  const prompts = spec.prompts !== undefined || changesLists(spec, ["addPrompt"])
  return {
    ...(resources ? { resources: { subscribe: true, listChanged: true } } : {}),
    ...(prompts ? { prompts: { listChanged: true } } : {}),
    ...(resources || prompts ? { completions: {} } : {})
  }
}

// The subscriptions of each 2025-era instance.
const subscribedOf = new WeakMap<McpServer, Set<string>>()

const isModern = (server: McpServer): boolean =>
  server.server.getNegotiatedProtocolVersion()?.startsWith("2026") === true

const fill = (text: string, args: Readonly<Record<string, string | undefined>> | undefined): string =>
  text.replace(/\{(\w+)\}/g, (whole, name: string) => args?.[name] ?? whole)

// `text`, after asking the client `ask` (a 2025-era session), ended with what it answered.
const asking = async (server: McpServer, ctx: ServerContext, ask: string | undefined, text: string) => {
  if (ask === undefined || isModern(server)) return text
  try {
    const asked = await ctx.mcpReq.elicitInput({
      mode: "form",
      message: ask,
      requestedSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] }
    })
    return `${text} (${asked.action}: ${JSON.stringify(asked.content ?? {})})`
  } catch (error) {
    return `${text} (${error instanceof Error ? error.message : String(error)})`
  }
}

const registerPrompt = (server: McpServer, prompt: TestPrompt): void => {
  const args = prompt.arguments ?? []
  const schema = {
    type: "object",
    properties: Object.fromEntries(
      args.map((arg) => [arg.name, { type: "string", ...(arg.description ? { description: arg.description } : {}) }])
    ),
    required: args.filter((arg) => arg.required === true).map((arg) => arg.name)
  }
  const answer = async (values: Readonly<Record<string, string | undefined>> | undefined, ctx: ServerContext) => {
    const text = await asking(server, ctx, prompt.ask, fill(prompt.text, values))
    return {
      ...(prompt.description ? { description: prompt.description } : {}),
      messages: [{ role: "user" as const, content: { type: "text" as const, text } }]
    }
  }
  if (args.length === 0) {
    server.registerPrompt(
      prompt.name,
      prompt.description ? { description: prompt.description } : {},
      (ctx) => answer({}, ctx)
    )
  } else {
    server.registerPrompt(
      prompt.name,
      {
        ...(prompt.description ? { description: prompt.description } : {}),
        argsSchema: fromJsonSchema<Record<string, string>>(schema as JsonSchemaType)
      },
      (values, ctx) => answer(values, ctx)
    )
  }
}

const registerText = (
  server: McpServer,
  resource: {
    readonly uri: string
    readonly name: string
    readonly text: string
    readonly description?: string
    readonly mimeType?: string
    readonly ask?: string
  }
) => {
  server.registerResource(
    resource.name,
    resource.uri,
    {
      ...(resource.description ? { description: resource.description } : {}),
      mimeType: resource.mimeType ?? "text/plain"
    },
    async (uri, ctx) => ({
      contents: [{
        uri: uri.toString(),
        mimeType: resource.mimeType ?? "text/plain",
        text: await asking(server, ctx, resource.ask, resource.text)
      }]
    })
  )
}

const completeFrom = (values: ReadonlyArray<string> | undefined, typed: string): CompleteResult => {
  const matching = (values ?? []).filter((value) => value.startsWith(typed))
  return { completion: { values: matching.slice(0, 100), total: matching.length, hasMore: matching.length > 100 } }
}

/** Registers the spec's resources, templates, prompts, completions and subscriptions on one instance. */
export const registerSurface = (state: ServerState, server: McpServer): void => {
  const { spec } = state
  for (const resource of spec.resources ?? []) registerText(server, resource)
  for (const resource of state.addedResources) registerText(server, resource)
  for (const template of spec.resourceTemplates ?? []) {
    server.registerResource(
      template.name,
      new ResourceTemplate(template.uriTemplate, { list: undefined }),
      template.description ? { description: template.description } : {},
      (uri, variables) => ({ contents: [{ uri: uri.toString(), text: JSON.stringify(variables) }] })
    )
  }
  for (const prompt of spec.prompts ?? []) registerPrompt(server, prompt)
  for (const prompt of state.addedPrompts) registerPrompt(server, { name: prompt.name, text: prompt.text })
  const capabilities = server.server.getCapabilities()
  if (capabilities.completions !== undefined) {
    server.server.setRequestHandler("completion/complete", (request) => {
      const { argument, ref } = request.params
      if (ref.type === "ref/prompt") {
        const prompt = spec.prompts?.find((p) => p.name === ref.name)
        if (prompt === undefined) {
          throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Prompt ${ref.name} not found`)
        }
        const values = prompt.arguments?.find((a) => a.name === argument.name)?.complete
        return completeFrom(values, argument.value)
      }
      const template = spec.resourceTemplates?.find((t) => t.uriTemplate === ref.uri)
      if (template === undefined) {
        throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Resource template ${ref.uri} not found`)
      }
      return completeFrom(template.complete?.[argument.name], argument.value)
    })
  }
  if (capabilities.resources?.subscribe === true) {
    const subscribed = new Set<string>()
    subscribedOf.set(server, subscribed)
    const count = (uri: string, by: number) => {
      const n = (state.subscriptions.get(uri) ?? 0) + by
      if (n <= 0) state.subscriptions.delete(uri)
      else state.subscriptions.set(uri, n)
      changed(state)
    }
    server.server.setRequestHandler("resources/subscribe", (request) => {
      if (!subscribed.has(request.params.uri)) {
        subscribed.add(request.params.uri)
        count(request.params.uri, 1)
      }
      return {}
    })
    server.server.setRequestHandler("resources/unsubscribe", (request) => {
      if (subscribed.delete(request.params.uri)) count(request.params.uri, -1)
      return {}
    })
    const previous = server.server.onclose
    server.server.onclose = () => {
      for (const uri of subscribed) count(uri, -1)
      subscribed.clear()
      previous?.()
    }
  }
}

/** The "addResource" respond kind: every open session is told (a list change), later instances serve it too. */
export const addResource = (
  state: ServerState,
  resource: { readonly uri: string; readonly name: string; readonly text: string }
): void => {
  if (state.addedResources.some((r) => r.uri === resource.uri)) return
  state.addedResources.push(resource)
  // registerResource on a connected McpServer makes the SDK send notifications/resources/list_changed
  for (const server of state.live) registerText(server, resource)
  for (const listener of state.notifyListeners) listener({ kind: "resources" })
  changed(state)
}

/** The "addPrompt" respond kind. */
export const addPrompt = (state: ServerState, prompt: { readonly name: string; readonly text: string }): void => {
  if (state.addedPrompts.some((p) => p.name === prompt.name)) return
  state.addedPrompts.push(prompt)
  for (const server of state.live) registerPrompt(server, prompt)
  for (const listener of state.notifyListeners) listener({ kind: "prompts" })
  changed(state)
}

/**
 * The "updateResource" respond kind: `notifications/resources/updated` to the 2025-era sessions that subscribed to
 * `uri`, and to the 2026-07-28 listen streams (whose entry forwards it only to those that named the URI).
 */
export const updateResource = (state: ServerState, uri: string): void => {
  for (const server of state.live) {
    if (isModern(server) || subscribedOf.get(server)?.has(uri) === true) {
      void server.server.sendResourceUpdated({ uri }).catch(() => undefined)
    }
  }
  for (const listener of state.notifyListeners) listener({ kind: "resourceUpdated", uri })
}
