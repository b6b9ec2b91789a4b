/**
 * A `tools/call` at the SDK's request level (`client.request` with a result schema) rather than `Client.callTool`,
 * which does work on every call that the bridge does not need.
 *
 * What `callTool` did that a call still needs is here, once per tool definition: the output schema compiled once
 * and checked, and `x-mcp-header` mirroring (through `callTool` for the tools that declare one). And what the bridge
 * adds: the rounds of a 2026-07-28 `input_required` result fulfilled with the application's handlers on the same
 * session, progress through a token of the session's own, the per-request log level.
 *
 * The reasoning: docs/design.md, "The wire call".
 *
 * @internal
 */
import type {
  CallToolResult,
  Client,
  LoggingLevel,
  Progress,
  StandardSchemaV1,
  Tool
} from "@modelcontextprotocol/client"
import {
  fromJsonSchema,
  isInputRequiredResult,
  LOG_LEVEL_META_KEY,
  ProtocolError,
  ProtocolErrorCode,
  SdkError,
  SdkErrorCode
} from "@modelcontextprotocol/client"
import { isRecord } from "../../internal/validate.ts"
import type * as ClientHandlers from "../ClientHandlers.ts"
import * as Interaction from "./interaction.ts"
import * as Rounds from "./rounds.ts"

// The shape a `tools/call` result must have to be used: the wire codec has decoded it already (and, on 2026-07-28,
// validated it against the wire schema).
const problemOf = (value: unknown): string | undefined => {
  if (!isRecord(value)) return "the result is not an object"
  if (!Array.isArray(value.content)) return "`content` is not an array"
  for (const block of value.content) {
    if (!isRecord(block) || typeof block.type !== "string") return "a `content` block has no `type`"
  }
  if (value.isError !== undefined && typeof value.isError !== "boolean") return "`isError` is not a boolean"
  if (value.structuredContent !== undefined && !isRecord(value.structuredContent)) {
    return "`structuredContent` is not an object"
  }
  return undefined
}

/** The result schema of the bridge's `tools/call` requests. @internal */
export const callResultSchema: StandardSchemaV1<unknown, CallToolResult> = {
  "~standard": {
    version: 1,
    vendor: "mcp-bridge",
    validate: (value) => {
      const problem = problemOf(value)
      return problem === undefined ? { value: value as CallToolResult } : { issues: [{ message: problem }] }
    }
  }
}

type Validator = (value: unknown) => string | undefined | Promise<string | undefined>

interface Compiled {
  readonly validator: Validator | undefined
  readonly compileError: string | undefined
  readonly mirrorsHeaders: boolean
}

const compiled = new WeakMap<Tool, Compiled>()

const compile = (tool: Tool): Compiled => {
  const mirrorsHeaders = JSON.stringify(tool.inputSchema ?? {}).includes("\"x-mcp-header\"")
  if (tool.outputSchema === undefined) return { validator: undefined, compileError: undefined, mirrorsHeaders }
  try {
    const schema = fromJsonSchema(tool.outputSchema as Parameters<typeof fromJsonSchema>[0])["~standard"]
    const problem = (result: StandardSchemaV1.Result<unknown>) =>
      result.issues === undefined ? undefined : result.issues.map((issue) => issue.message).join("; ") || "invalid"
    const validator: Validator = (value) => {
      const result = schema.validate(value)
      return result instanceof Promise ? result.then(problem) : problem(result)
    }
    return { validator, compileError: undefined, mirrorsHeaders }
  } catch (error) {
    return {
      validator: undefined,
      compileError: (error instanceof Error ? error.message : String(error)).slice(0, 200),
      mirrorsHeaders
    }
  }
}

const compiledOf = (tool: Tool): Compiled => {
  let entry = compiled.get(tool)
  if (entry === undefined) compiled.set(tool, entry = compile(tool))
  return entry
}

/**
 * True when the tool's input schema declares `x-mcp-header` (SEP-2243): on 2026-07-28 its call goes through
 * `Client.callTool` with the definition, which mirrors those arguments into headers. @internal
 */
export const mirrorsHeaders = (tool: Tool | undefined): boolean => tool !== undefined && compiledOf(tool).mirrorsHeaders

/** Fails before the call when the tool's output schema does not compile, as `callTool` does. @internal */
export const assertCompiles = (name: string, tool: Tool | undefined): void => {
  const error = tool === undefined ? undefined : compiledOf(tool).compileError
  if (error !== undefined) {
    throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Tool '${name}' has an invalid outputSchema: ${error}`)
  }
}

/** Checks a result against the tool's output schema, with the errors `callTool` throws. @internal */
export const checkOutput = async (name: string, tool: Tool | undefined, result: CallToolResult): Promise<void> => {
  const validator = tool === undefined ? undefined : compiledOf(tool).validator
  if (validator === undefined || result.isError === true) return
  if (result.structuredContent === undefined) {
    throw new ProtocolError(
      ProtocolErrorCode.InvalidRequest,
      `Tool ${name} has an output schema but did not return structured content`
    )
  }
  const problem = await validator(result.structuredContent)
  if (problem !== undefined) {
    throw new ProtocolError(
      ProtocolErrorCode.InvalidParams,
      `Structured content does not match the tool's output schema: ${problem}`
    )
  }
}

/** Rounds of `input_required` one call may take. @internal */
export const maxInputRounds = 10

/** A call in flight on a session, for the attribution of what a 2025-era server asks. @internal */
export interface InFlightCall {
  readonly tool: string
  readonly identity: string | undefined
  /** The server asked the client something while the call ran: its result may depend on the user's answer. */
  asked: boolean
}

/** What a session's `tools/call` works with. @internal */
export interface CallerEnv {
  readonly client: Client
  readonly era: "legacy" | "modern"
  readonly server: string
  readonly sessionId: number
  readonly logLevel: LoggingLevel | undefined
  readonly handlers: ClientHandlers.ClientHandlers.Service
  readonly run: Interaction.Run
  readonly inFlight: Map<number, InFlightCall>
  readonly progressOf: Map<string, (progress: Progress) => void>
  readonly markInteractive: (result: CallToolResult) => void
}

interface CallParams {
  readonly name: string
  readonly arguments?: Readonly<Record<string, unknown>> | undefined
  readonly _meta?: Readonly<Record<string, unknown>> | undefined
}

interface CallOptions {
  readonly identity?: string | undefined
  readonly onProgress?: ((progress: Progress) => void) | undefined
  readonly definition?: Tool | undefined
  readonly rounds?: Rounds.ClientRounds | undefined
}

/** The session's `tools/call` (see the module header). @internal */
export const makeCallTool = (env: CallerEnv) => {
  const { client, era, handlers, inFlight, logLevel, markInteractive, progressOf, run, server, sessionId } = env
  let nextCall = 0
  return async (
    params: CallParams,
    signal: AbortSignal,
    timeoutMillis: number,
    callOptions: CallOptions | undefined
  ): Promise<CallToolResult> => {
    const definition = callOptions?.definition
    assertCompiles(params.name, definition)
    const key = nextCall++
    const call = { tool: params.name, identity: callOptions?.identity, asked: false }
    inFlight.set(key, call)
    const progressToken = callOptions?.onProgress === undefined ? undefined : `${sessionId}.${key}`
    if (progressToken !== undefined) progressOf.set(progressToken, callOptions!.onProgress!)
    try {
      const meta = era === "modern" && logLevel !== undefined
        ? { ...params._meta, [LOG_LEVEL_META_KEY]: logLevel }
        : params._meta
      const withProgress = progressToken === undefined ? meta : { ...meta, progressToken }
      const rounds = callOptions?.rounds
      const base: Record<string, unknown> = Rounds.params(
        era,
        rounds,
        withProgress === params._meta ? { ...params } : { ...params, _meta: withProgress }
      )
      const viaCallTool = era === "modern" && mirrorsHeaders(definition)
      const send = (request: Record<string, unknown>, timeout: number): Promise<CallToolResult> => {
        const options = { signal, timeout, allowInputRequired: true }
        return viaCallTool
          ? client.callTool(request as Parameters<Client["callTool"]>[0], { ...options, toolDefinition: definition! })
            .then((result) => result as CallToolResult)
          : client.request({ method: "tools/call", params: request }, callResultSchema, options)
      }
      let result = await send(base, timeoutMillis)
      if (Rounds.passesThrough(era, rounds)) {
        // The caller answers the rounds itself: what the server sent goes back to it, and the answer to a retry is
        // its own as well.
        if (
          isInputRequiredResult(result) || rounds!.inputResponses !== undefined || rounds!.requestState !== undefined
        ) {
          markInteractive(result)
        }
        if (isInputRequiredResult(result)) return result
      } else if (isInputRequiredResult(result)) {
        const deadline = Date.now() + timeoutMillis
        const left = () => {
          const millis = deadline - Date.now()
          if (millis <= 0) throw new SdkError(SdkErrorCode.RequestTimeout, "Request timed out")
          return millis
        }
        for (let round = 1; isInputRequiredResult(result); round++) {
          if (round > maxInputRounds) {
            throw new ProtocolError(-32603, `the server asked for input more than ${maxInputRounds} times`)
          }
          const asked: ClientHandlers.Origin = {
            server,
            tool: params.name,
            identity: callOptions?.identity
          }
          const inputResponses = await Interaction.fulfil(result.inputRequests ?? {}, handlers, asked, run, {
            signal,
            timeoutMillis: left()
          })
          result = await send({
            ...base,
            inputResponses,
            ...(result.requestState === undefined ? {} : { requestState: result.requestState })
          }, left())
        }
        markInteractive(result)
      } else if (call.asked) {
        // A 2025-era server asked the client (elicitation, sampling, roots) during the call.
        markInteractive(result)
      }
      if (!viaCallTool) await checkOutput(params.name, definition, result)
      return result
    } finally {
      inFlight.delete(key)
      if (progressToken !== undefined) progressOf.delete(progressToken)
    }
  }
}
