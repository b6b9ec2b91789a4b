/**
 * A `tools/call` at the SDK's request level: `client.request({ method: "tools/call", params }, schema, options)`, the
 * public overload with a result schema, instead of `Client.callTool`.
 *
 * `callTool` costs 5 to 10 µs a call that the bridge does not need: without a schema, `request` probes the era codec
 * for the method's result validator by running a zod parse that fails and formatting its error, on every call; then
 * it parses the result with zod's `CallToolResult` (on 2026-07-28 after the wire codec has already parsed it); and
 * `callTool` looks the tool up in the SDK's response cache for its output schema. At the request level the SDK keeps
 * everything else: the era gate and 2026-07-28 `_meta` envelope, the wire codec's `decodeResult` (`input_required`
 * included), progress, cancellation, the timeout, and every connect, negotiation, notification and auth path.
 *
 * What `callTool` did that a call still needs is here, once per tool definition (the bridge's tool index holds them):
 * - the output schema: compiled once (`fromJsonSchema`, the SDK's own JSON Schema validator), a result with
 *   `structuredContent` checked against it, with the SDK's errors (`InvalidParams`, `InvalidRequest`);
 * - SEP-2243 `x-mcp-header` mirroring into `Mcp-Param-*` headers (2026-07-28): a tool whose input schema declares one
 *   still goes through `callTool` with its `toolDefinition`, which does it.
 *
 * @internal
 */
import type { CallToolResult, StandardSchemaV1, Tool } from "@modelcontextprotocol/client"
import { fromJsonSchema, ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/client"

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

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
