/**
 * The respond kinds that talk to the client in the middle of a call: elicitation (form and URL), sampling, roots,
 * progress and log messages, and the client's declared capabilities.
 *
 * Each works in both eras, with the SDK server's own APIs: a 2026-07-28 request is answered with an `input_required`
 * result (`inputRequired(...)`) and the client's retry read back with `inputResponse` / `ctx.mcpReq.requestState()`;
 * a 2025-era request sends real server→client requests on the session (`ctx.mcpReq.elicitInput`,
 * `ctx.mcpReq.requestSampling`, `server.listRoots`), related to the call so that Streamable HTTP carries them on the
 * call's stream. The era is the request's: a 2026-07-28 request carries the protocol version in its `_meta` envelope.
 *
 * @internal
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  inputRequired,
  inputResponse,
  LOG_LEVEL_META_KEY,
  PROTOCOL_VERSION_META_KEY
} from "@modelcontextprotocol/server"
import type {
  CallToolResult,
  ElicitRequestFormParams,
  InputRequest,
  InputRequiredResult,
  LoggingLevel,
  McpServer,
  ServerContext
} from "@modelcontextprotocol/server"
import type { Respond } from "./spec.ts"

/** The respond kinds of this module. */
export type InteractiveRespond = Extract<
  Respond,
  { readonly kind: "elicit" | "elicitUrl" | "sample" | "roots" | "progress" | "log" | "capabilities" }
>

/** The kinds that send the client something mid-call (over legacy Streamable HTTP they need SSE responses). */
export const talksToClient = (respond: Respond): boolean =>
  ["elicit", "elicitUrl", "sample", "roots", "progress", "log"].includes(respond.kind)

type Era = "modern" | "legacy"

const eraOf = (ctx: ServerContext): Era =>
  (ctx.mcpReq.envelope as Record<string, unknown> | undefined)?.[PROTOCOL_VERSION_META_KEY] === undefined
    ? "legacy"
    : "modern"

const json = (value: Record<string, unknown>): CallToolResult => ({
  content: [{ type: "text", text: JSON.stringify(value) }],
  structuredContent: value
})

const failed = (message: string): CallToolResult => ({ content: [{ type: "text", text: message }], isError: true })

/** The form an `elicit` tool asks for unless its spec gives one: a required field and three with defaults. */
export const defaultForm: ElicitRequestFormParams["requestedSchema"] = {
  type: "object",
  properties: {
    name: { type: "string", title: "Name" },
    confirm: { type: "boolean", title: "Confirm", default: true },
    count: { type: "integer", title: "Count", default: 3 },
    color: { type: "string", title: "Color", enum: ["red", "green", "blue"], default: "green" }
  },
  required: ["name"]
}

/**
 * The `requestState` an `elicit` tool sends (2026-07-28): the spec's text (default `defaultRequestState`), the round,
 * the pid of the process that minted it, and the answers so far. The tool re-mints it from its parts on the retry:
 * a state the client changed in any byte is not `intact`.
 */
export const defaultRequestState = "opaque state: \"quotes\", \\backslash, ünïcödé ✓, tabs\tand  spaces"

const mint = (text: string, round: number, pid: number, answers: ReadonlyArray<Answer>): string =>
  JSON.stringify([text, round, pid, answers])

const unmint = (
  state: string
):
  | { readonly text: string; readonly round: number; readonly pid: number; readonly answers: Array<Answer> }
  | undefined =>
{
  try {
    const parts = JSON.parse(state) as unknown
    if (!Array.isArray(parts) || parts.length !== 4) return undefined
    const [text, round, pid, answers] = parts as [unknown, unknown, unknown, unknown]
    if (typeof text !== "string" || typeof round !== "number" || typeof pid !== "number" || !Array.isArray(answers)) {
      return undefined
    }
    return { text, round, pid, answers: answers as Array<Answer> }
  } catch {
    return undefined
  }
}

interface Answer {
  readonly action: "accept" | "decline" | "cancel"
  readonly content?: Record<string, unknown> | undefined
}

// The server→client requests of a 2025-era call go on the call's own stream.
const related = (ctx: ServerContext) => ({ relatedRequestId: ctx.mcpReq.id, signal: ctx.mcpReq.signal })

const elicit = async (
  respond: Extract<Respond, { readonly kind: "elicit" }>,
  ctx: ServerContext
): Promise<CallToolResult | InputRequiredResult> => {
  const rounds = Math.max(1, respond.rounds ?? 1)
  const text = respond.requestState ?? defaultRequestState
  const message = (round: number) => `${respond.message ?? "Please fill in the form"} (${round} of ${rounds})`
  const requestedSchema = (respond.requestedSchema ?? defaultForm) as ElicitRequestFormParams["requestedSchema"]
  if (eraOf(ctx) === "legacy") {
    const answers: Array<Answer> = []
    for (let round = 1; round <= rounds; round++) {
      const result = await ctx.mcpReq.elicitInput(
        { mode: "form", message: message(round), requestedSchema },
        related(ctx)
      )
      answers.push({ action: result.action, ...(result.content === undefined ? {} : { content: result.content }) })
      if (result.action !== "accept") break
    }
    const last = answers[answers.length - 1]!
    return json({ era: "legacy", action: last.action, content: last.content ?? null, answers, pid: process.pid })
  }
  const ask = (round: number, answers: ReadonlyArray<Answer>) =>
    inputRequired({
      inputRequests: { form: inputRequired.elicit({ mode: "form", message: message(round), requestedSchema }) },
      requestState: mint(text, round, process.pid, answers)
    })
  const state = ctx.mcpReq.requestState<string>()
  if (state === undefined) return ask(1, [])
  const parsed = unmint(state)
  if (parsed === undefined) return failed(`the client sent back a requestState that is not ours: ${state}`)
  const view = inputResponse(ctx.mcpReq.inputResponses, "form")
  if (view.kind !== "elicit") return failed(`the retry carried no answer to the form (${view.kind})`)
  const answers = [...parsed.answers, {
    action: view.action,
    ...(view.content === undefined ? {} : { content: view.content })
  }]
  if (view.action === "accept" && parsed.round < rounds) return ask(parsed.round + 1, answers)
  return json({
    era: "modern",
    action: view.action,
    content: view.content ?? null,
    answers,
    requestState: state,
    intact: parsed.text === text && state === mint(text, parsed.round, parsed.pid, parsed.answers),
    askedBy: parsed.pid,
    pid: process.pid
  })
}

/** A respond kind that talks to the client, in the era of the request. */
export const interact = async (
  server: McpServer,
  respond: InteractiveRespond,
  ctx: ServerContext
): Promise<CallToolResult | InputRequiredResult> => {
  const era = eraOf(ctx)
  switch (respond.kind) {
    case "elicit":
      return elicit(respond, ctx)
    case "elicitUrl": {
      const message = respond.message ?? "Open the URL to go on"
      if (era === "legacy") {
        const result = await ctx.mcpReq.elicitInput(
          { mode: "url", message, url: respond.url, elicitationId: `elicitation-${String(ctx.mcpReq.id)}` },
          related(ctx)
        )
        return json({ era, action: result.action })
      }
      return once(
        ctx,
        "url",
        inputRequired.elicitUrl({ message, url: respond.url }),
        (view) => view.kind === "elicit" ? json({ era, action: view.action }) : undefined
      )
    }
    case "sample": {
      const params = {
        messages: [{ role: "user" as const, content: { type: "text" as const, text: respond.prompt ?? "Say hello" } }],
        maxTokens: respond.maxTokens ?? 100
      }
      const answer = (result: { readonly content: unknown; readonly model: string; readonly role: string }) => {
        const blocks = Array.isArray(result.content) ? result.content : [result.content]
        const text = blocks.map((b: { readonly type?: string; readonly text?: string }) => b.text ?? "").join("")
        return json({ era, text, model: result.model, role: result.role })
      }
      if (era === "legacy") return answer(await ctx.mcpReq.requestSampling(params, related(ctx)))
      return once(
        ctx,
        "sample",
        inputRequired.createMessage(params),
        (view) => view.kind === "sampling" ? answer(view.result) : undefined
      )
    }
    case "roots": {
      if (era === "legacy") {
        const result = await server.server.listRoots(undefined, related(ctx))
        return json({ era, roots: result.roots })
      }
      return once(
        ctx,
        "roots",
        inputRequired.listRoots(),
        (view) => view.kind === "roots" ? json({ era, roots: view.roots }) : undefined
      )
    }
    case "progress": {
      const token = ctx.mcpReq._meta?.progressToken
      const steps = Math.max(0, respond.steps)
      if (token !== undefined) {
        for (let step = 1; step <= steps; step++) {
          await ctx.mcpReq.notify({
            method: "notifications/progress",
            params: { progressToken: token, progress: step, total: steps, message: `step ${step} of ${steps}` }
          })
        }
      }
      return json({ era, steps, progressToken: token ?? null })
    }
    case "log": {
      const levels = respond.levels ?? defaultLogLevels
      for (const level of levels) await ctx.mcpReq.log(level, `${level} message`, respond.logger ?? "test-server")
      const asked = (ctx.mcpReq.envelope as Record<string, unknown> | undefined)?.[LOG_LEVEL_META_KEY]
      return json({ era, levels: [...levels], ...(asked === undefined ? {} : { logLevel: asked }) })
    }
    case "capabilities": {
      const capabilities = era === "modern"
        ? (ctx.mcpReq.envelope as Record<string, unknown> | undefined)?.[CLIENT_CAPABILITIES_META_KEY]
        : server.server.getClientCapabilities()
      return json({ era, capabilities: capabilities ?? {} })
    }
  }
}

/** The levels a `log` tool sends unless its spec says: every level but the three most severe. */
export const defaultLogLevels: ReadonlyArray<LoggingLevel> = ["debug", "info", "notice", "warning", "error"]

// One round of a 2026-07-28 request: ask, then answer from the client's response to `key`.
const once = (
  ctx: ServerContext,
  key: string,
  request: InputRequest,
  answer: (view: ReturnType<typeof inputResponse>) => CallToolResult | undefined
): CallToolResult | InputRequiredResult => {
  if (ctx.mcpReq.inputResponses === undefined) {
    return inputRequired({ inputRequests: { [key]: request }, requestState: key })
  }
  const view = inputResponse(ctx.mcpReq.inputResponses, key)
  return answer(view) ?? failed(`the retry carried no answer to ${key} (${view.kind})`)
}
