/**
 * The fixture server of the official MCP conformance suite's *server* scenarios: the tools, resources and prompts
 * that `conformance server --url ...` calls by name (`test_simple_text`, `test://static-text`, `test_simple_prompt`,
 * ...), with the answers the scenarios check, written from the scenarios themselves. Served over Streamable HTTP on
 * 127.0.0.1 in both protocol eras (2026-07-28 per request, 2025-era clients with sessions), built on the official SDK
 * v2 `McpServer`.
 *
 * Put a gateway in front of it (one server, no prefix) to run the suite's server scenarios through the gateway.
 *
 * @since 0.1.0
 */
import { NodeStreamableHTTPServerTransport, toNodeHandler, toWebRequest } from "@modelcontextprotocol/node"
import type { NodeIncomingMessageLike } from "@modelcontextprotocol/node"
import {
  CLIENT_CAPABILITIES_META_KEY,
  createMcpHandler,
  fromJsonSchema,
  hostHeaderValidationResponse,
  inputRequired,
  inputResponse,
  isInitializeRequest,
  isLegacyRequest,
  localhostAllowedHostnames,
  LOG_LEVEL_META_KEY,
  McpServer,
  MissingRequiredClientCapabilityError,
  originValidationResponse,
  PROTOCOL_VERSION_META_KEY,
  ProtocolError,
  ProtocolErrorCode,
  ResourceTemplate
} from "@modelcontextprotocol/server"
import type {
  CallToolResult,
  InputRequest,
  InputRequiredResult,
  JsonSchemaType,
  ServerContext
} from "@modelcontextprotocol/server"
import { createHmac, randomBytes, randomUUID } from "node:crypto"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import { closeAll, listenLoopback } from "./internal/loopback.ts"

/**
 * A running conformance fixture server.
 *
 * @since 0.1.0
 */
export interface ConformanceServer {
  /** The MCP endpoint, `http://127.0.0.1:<port>/mcp`. */
  readonly url: string
  /** Stops the server and closes every session. */
  readonly close: () => Promise<void>
}

/** A 1×1 PNG, base64. */
const IMAGE = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
/** A minimal WAV file, base64. */
const AUDIO = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

type Args = Record<string, unknown>

const schema = (json: Record<string, unknown>) => fromJsonSchema<Args>(json as JsonSchemaType)
const empty = schema({ type: "object", properties: {} })
const text = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }] })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const modern = (ctx: ServerContext): boolean =>
  (ctx.mcpReq.envelope as Record<string, unknown> | undefined)?.[PROTOCOL_VERSION_META_KEY] !== undefined

const envelope = (ctx: ServerContext, key: string): unknown =>
  (ctx.mcpReq.envelope as Record<string, unknown> | undefined)?.[key]

// The server→client requests of a 2025-era call go on the call's own stream.
const related = (ctx: ServerContext) => ({ relatedRequestId: ctx.mcpReq.id, signal: ctx.mcpReq.signal })

const sep1034Form = {
  type: "object",
  properties: {
    name: { type: "string", description: "User name", default: "John Doe" },
    age: { type: "integer", description: "User age", default: 30 },
    score: { type: "number", description: "User score", default: 95.5 },
    status: { type: "string", description: "User status", enum: ["active", "inactive", "pending"], default: "active" },
    verified: { type: "boolean", description: "Verification status", default: true }
  },
  required: []
} as const

const sep1330Form = {
  type: "object",
  properties: {
    untitledSingle: { type: "string", description: "Select one option", enum: ["option1", "option2", "option3"] },
    titledSingle: {
      type: "string",
      description: "Select one option with titles",
      oneOf: [
        { const: "value1", title: "First Option" },
        { const: "value2", title: "Second Option" },
        { const: "value3", title: "Third Option" }
      ]
    },
    legacyEnum: {
      type: "string",
      description: "Select one option (legacy)",
      enum: ["opt1", "opt2", "opt3"],
      enumNames: ["Option One", "Option Two", "Option Three"]
    },
    untitledMulti: {
      type: "array",
      description: "Select multiple options",
      minItems: 1,
      maxItems: 3,
      items: { type: "string", enum: ["option1", "option2", "option3"] }
    },
    titledMulti: {
      type: "array",
      description: "Select multiple options with titles",
      minItems: 1,
      maxItems: 3,
      items: {
        anyOf: [
          { const: "value1", title: "First Choice" },
          { const: "value2", title: "Second Choice" },
          { const: "value3", title: "Third Choice" }
        ]
      }
    }
  },
  required: []
} as const

/** The tool whose input schema uses JSON Schema 2020-12 features (`$schema`, `$defs`, `additionalProperties`). */
const schema2020 = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  $defs: { address: { type: "object", properties: { street: { type: "string" }, city: { type: "string" } } } },
  properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } },
  additionalProperties: false
}

/** What every instance shares: the toggles the `test_trigger_*` tools flip, and the instances to notify. */
interface Shared {
  readonly servers: Set<McpServer>
  readonly onToolsChanged: Set<() => void>
  readonly onPromptsChanged: Set<() => void>
}

const elicitForm = async (
  ctx: ServerContext,
  message: string,
  requestedSchema: Record<string, unknown>,
  label: string
): Promise<CallToolResult | InputRequiredResult> => {
  const answered = (result: { readonly action: string; readonly content?: unknown }) =>
    text(`${label}: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`)
  // A 2026-07-28 request (a gateway's upstream session) asks with `input_required`.
  if (modern(ctx)) {
    const view = inputResponse(ctx.mcpReq.inputResponses, "form")
    return view.kind === "elicit"
      ? answered(view)
      : inputRequired({ inputRequests: { form: elicitRequest(message, requestedSchema) } })
  }
  try {
    const result = await ctx.mcpReq.elicitInput(
      { mode: "form", message, requestedSchema: requestedSchema as never },
      related(ctx)
    )
    return answered(result)
  } catch (error) {
    return text(`Elicitation not supported or error: ${error instanceof Error ? error.message : String(error)}`)
  }
}

const nameForm = { type: "object", properties: { name: { type: "string" } }, required: ["name"] }

const elicitRequest = (message: string, requestedSchema: Record<string, unknown>): InputRequest =>
  ({ method: "elicitation/create", params: { mode: "form", message, requestedSchema } }) as InputRequest
const samplingRequest = (prompt: string, maxTokens: number): InputRequest =>
  ({
    method: "sampling/createMessage",
    params: { messages: [{ role: "user", content: { type: "text", text: prompt } }], maxTokens }
  }) as InputRequest
const rootsRequest: InputRequest = { method: "roots/list", params: {} } as InputRequest

const accepted = (ctx: ServerContext, key: string, field: string): string | undefined => {
  const view = inputResponse(ctx.mcpReq.inputResponses, key)
  const value = view.kind === "elicit" ? view.content?.[field] : undefined
  return value === undefined ? undefined : String(value)
}

// `requestState` comes back from the client: the fixture signs it and refuses a state that fails the check.
const stateKey = randomBytes(32)
const sign = (value: Record<string, unknown>): string => {
  const body = JSON.stringify(value)
  return JSON.stringify({ body, mac: createHmac("sha256", stateKey).update(body).digest("hex") })
}
const verify = (ctx: ServerContext): Record<string, unknown> | undefined => {
  const raw = ctx.mcpReq.requestState<string>()
  if (raw === undefined) return undefined
  try {
    const { body, mac } = JSON.parse(raw) as { body: string; mac: string }
    if (createHmac("sha256", stateKey).update(body).digest("hex") === mac) return JSON.parse(body)
  } catch {
    // falls through to the rejection
  }
  throw new ProtocolError(ProtocolErrorCode.InvalidParams, "requestState failed verification")
}

type Register = (
  name: string,
  description: string,
  handler: (args: Args, ctx: ServerContext) => CallToolResult | InputRequiredResult | Promise<CallToolResult>
) => void

/** The multi round-trip (`input_required`) tools and prompt of the 2026-07-28 scenarios. */
const registerInputRequired = (server: McpServer, tool: Register) => {
  const legacy = text("this tool needs a 2026-07-28 request")
  tool("test_input_required_result_elicitation", "Asks for a name (input_required)", (_args, ctx) => {
    if (!modern(ctx)) return legacy
    const name = accepted(ctx, "user_name", "name")
    return name !== undefined
      ? text(`Hello, ${name}!`)
      : inputRequired({ inputRequests: { user_name: elicitRequest("What is your name?", nameForm) } })
  })
  tool("test_input_required_result_sampling", "Asks the client's model (input_required)", (_args, ctx) => {
    if (!modern(ctx)) return legacy
    const view = inputResponse(ctx.mcpReq.inputResponses, "sample_request")
    if (view.kind !== "sampling") {
      return inputRequired({
        inputRequests: { sample_request: samplingRequest("What is the capital of France?", 100) }
      })
    }
    const content = view.result.content as { readonly text?: string }
    return text(`Sampling result: ${content.text ?? "no response"}`)
  })
  tool("test_input_required_result_list_roots", "Asks for the client's roots (input_required)", (_args, ctx) => {
    if (!modern(ctx)) return legacy
    const view = inputResponse(ctx.mcpReq.inputResponses, "roots_request")
    return view.kind === "roots"
      ? text(`Found ${view.roots.length} root(s)`)
      : inputRequired({ inputRequests: { roots_request: rootsRequest } })
  })
  const confirmed = (ctx: ServerContext, kind: string) => {
    const state = verify(ctx)
    const view = inputResponse(ctx.mcpReq.inputResponses, "confirm")
    return state?.["kind"] === kind && view.kind === "elicit" && view.content?.["ok"] === true
  }
  const confirm = (kind: string) =>
    inputRequired({
      inputRequests: {
        confirm: elicitRequest("Please confirm", {
          type: "object",
          properties: { ok: { type: "boolean" } },
          required: ["ok"]
        })
      },
      requestState: sign({ kind, nonce: randomUUID() })
    })
  tool("test_input_required_result_request_state", "Round-trips a requestState (input_required)", (_args, ctx) => {
    if (!modern(ctx)) return legacy
    return confirmed(ctx, "request-state") ? text("state-ok: requestState validated") : confirm("request-state")
  })
  tool("test_input_required_result_tampered_state", "Refuses a changed requestState (input_required)", (_args, ctx) => {
    if (!modern(ctx)) return legacy
    return confirmed(ctx, "tampered-state") ? text("state-ok: requestState validated") : confirm("tampered-state")
  })
  tool("test_input_required_result_multiple_inputs", "Asks three things at once (input_required)", (_args, ctx) => {
    if (!modern(ctx)) return legacy
    const state = verify(ctx)
    const name = accepted(ctx, "user_name", "name")
    const greeting = inputResponse(ctx.mcpReq.inputResponses, "greeting")
    const roots = inputResponse(ctx.mcpReq.inputResponses, "client_roots")
    if (state?.["kind"] === "multiple-inputs" && name !== undefined && greeting.kind === "sampling") {
      const said = (greeting.result.content as { readonly text?: string }).text ?? "Hello there!"
      return text(`Name: ${name}; Greeting: ${said}; Roots: ${roots.kind === "roots" ? roots.roots.length : 0}`)
    }
    return inputRequired({
      inputRequests: {
        user_name: elicitRequest("What is your name?", nameForm),
        greeting: samplingRequest("Generate a greeting", 50),
        client_roots: rootsRequest
      },
      requestState: sign({ kind: "multiple-inputs", nonce: randomUUID() })
    })
  })
  tool(
    "test_input_required_result_multi_round",
    "Asks twice, one round after the other (input_required)",
    (_args, ctx) => {
      if (!modern(ctx)) return legacy
      const state = verify(ctx)
      const step1 = () =>
        inputRequired({
          inputRequests: { step1: elicitRequest("Step 1: What is your name?", nameForm) },
          requestState: sign({ round: 1, nonce: randomUUID() })
        })
      if (state === undefined) return step1()
      const name = accepted(ctx, "step1", "name")
      if (state["round"] === 1 && name !== undefined) {
        return inputRequired({
          inputRequests: {
            step2: elicitRequest("Step 2: What is your favorite color?", {
              type: "object",
              properties: { color: { type: "string" } },
              required: ["color"]
            })
          },
          requestState: sign({ round: 2, name, nonce: randomUUID() })
        })
      }
      const color = accepted(ctx, "step2", "color")
      if (state["round"] === 2 && color !== undefined) {
        return text(`Multi-round complete for ${String(state["name"])} who likes ${color}`)
      }
      return step1()
    }
  )
  tool(
    "test_input_required_result_capabilities",
    "Asks only for what the client declared (input_required)",
    (_args, ctx) => {
      if (!modern(ctx)) return legacy
      const declared = envelope(ctx, CLIENT_CAPABILITIES_META_KEY) as Record<string, unknown> | undefined
      const asked = Object.keys(ctx.mcpReq.inputResponses ?? {}).length > 0
      if (asked) return text("thank you")
      const requests: Record<string, InputRequest> = {}
      if (declared?.["elicitation"] !== undefined) requests["user_name"] = elicitRequest("What is your name?", nameForm)
      if (declared?.["sampling"] !== undefined) requests["greeting"] = samplingRequest("Generate a greeting", 50)
      if (Object.keys(requests).length === 0) {
        throw new MissingRequiredClientCapabilityError({ requiredCapabilities: { elicitation: {} } })
      }
      return inputRequired({ inputRequests: requests })
    }
  )
  server.registerPrompt("test_input_required_result_prompt", {
    description: "Asks for context before it answers (input_required)"
  }, (ctx) => {
    const context = accepted(ctx, "user_context", "context")
    if (context !== undefined) {
      return { messages: [{ role: "user", content: { type: "text", text: `Prompt with context: ${context}` } }] }
    }
    return inputRequired({
      inputRequests: {
        user_context: elicitRequest("What context should the prompt use?", {
          type: "object",
          properties: { context: { type: "string" } },
          required: ["context"]
        })
      }
    }) as never
  })
}

const build = (shared: Shared): McpServer => {
  const server = new McpServer(
    { name: "mcp-bridge-conformance-fixture", version: "1.0.0" },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {}
      }
    }
  )
  shared.servers.add(server)
  const tool = (
    name: string,
    description: string,
    handler: (
      args: Args,
      ctx: ServerContext
    ) => CallToolResult | InputRequiredResult | Promise<CallToolResult | InputRequiredResult>,
    inputSchema: ReturnType<typeof schema> = empty
  ) => void server.registerTool(name, { description, inputSchema }, handler)

  tool("test_simple_text", "Answers with one text block", () => text("This is a simple text response for testing."))
  tool("test_image_content", "Answers with an image", () => ({
    content: [{ type: "image", data: IMAGE, mimeType: "image/png" }]
  }))
  tool("test_audio_content", "Answers with audio", () => ({
    content: [{ type: "audio", data: AUDIO, mimeType: "audio/wav" }]
  }))
  tool("test_embedded_resource", "Answers with an embedded resource", () => ({
    content: [{
      type: "resource",
      resource: {
        uri: "test://embedded-resource",
        mimeType: "text/plain",
        text: "This is an embedded resource content."
      }
    }]
  }))
  tool("test_multiple_content_types", "Answers with text, an image and a resource", () => ({
    content: [
      { type: "text", text: "Multiple content types test:" },
      { type: "image", data: IMAGE, mimeType: "image/png" },
      {
        type: "resource",
        resource: {
          uri: "test://mixed-content-resource",
          mimeType: "application/json",
          text: JSON.stringify({ test: "data", value: 123 })
        }
      }
    ]
  }))
  tool("test_tool_with_logging", "Sends three log messages while it runs", async (_args, ctx) => {
    for (const [i, data] of ["Tool execution started", "Tool processing data", "Tool execution completed"].entries()) {
      if (i > 0) await sleep(50)
      await ctx.mcpReq.log("info", data)
    }
    return text("Tool with logging executed successfully")
  })
  tool("test_tool_with_progress", "Reports progress 0, 50, 100", async (_args, ctx) => {
    const progressToken = ctx.mcpReq._meta?.progressToken ?? 0
    for (const progress of [0, 50, 100]) {
      if (progress > 0) await sleep(50)
      await ctx.mcpReq.notify({
        method: "notifications/progress",
        params: { progressToken, progress, total: 100, message: `Completed step ${progress} of 100` }
      })
    }
    return text(String(progressToken))
  })
  tool("test_error_handling", "Always fails", () => {
    throw new Error("This tool intentionally returns an error for testing")
  })
  tool("test_reconnection", "Closes its SSE stream mid-call, then answers", async (_args, ctx) => {
    ctx.http?.closeSSE?.()
    await sleep(100)
    return text("Reconnection test completed successfully.")
  })
  tool("test_sampling", "Asks the client's model", async (args, ctx) => {
    const prompt = String(args["prompt"] ?? "")
    const reply = (result: { readonly content: unknown }) => {
      const content = result.content as { readonly text?: string } | ReadonlyArray<{ readonly text?: string }>
      const said = Array.isArray(content) ? content[0]?.text : (content as { readonly text?: string }).text
      return text(`LLM response: ${said ?? "No response"}`)
    }
    // A 2026-07-28 request (a gateway's upstream session) asks with `input_required`.
    if (modern(ctx)) {
      const view = inputResponse(ctx.mcpReq.inputResponses, "sample")
      return view.kind === "sampling"
        ? reply(view.result)
        : inputRequired({ inputRequests: { sample: samplingRequest(prompt, 100) } })
    }
    try {
      return reply(
        await ctx.mcpReq.requestSampling({
          messages: [{ role: "user", content: { type: "text", text: prompt } }],
          maxTokens: 100
        }, related(ctx))
      )
    } catch (error) {
      return text(`Sampling not supported or error: ${error instanceof Error ? error.message : String(error)}`)
    }
  }, schema({ type: "object", properties: { prompt: { type: "string" } }, required: ["prompt"] }))
  tool(
    "test_elicitation",
    "Asks the user",
    (args, ctx) =>
      elicitForm(ctx, String(args["message"] ?? ""), {
        type: "object",
        properties: { response: { type: "string", description: "User's response" } },
        required: ["response"]
      }, "User response"),
    schema({ type: "object", properties: { message: { type: "string" } }, required: ["message"] })
  )
  tool(
    "test_elicitation_sep1034_defaults",
    "Asks the user with defaults (SEP-1034)",
    (_args, ctx) =>
      elicitForm(ctx, "Please review and update the form fields with defaults", sep1034Form, "Elicitation completed")
  )
  tool(
    "test_elicitation_sep1330_enums",
    "Asks the user with enums (SEP-1330)",
    (_args, ctx) => elicitForm(ctx, "Please select options from the enum fields", sep1330Form, "Elicitation completed")
  )
  tool(
    "json_schema_2020_12_tool",
    "Has a JSON Schema 2020-12 input schema (SEP-1613)",
    (args) => text(`JSON Schema 2020-12 tool called with: ${JSON.stringify(args)}`),
    schema(schema2020)
  )
  // 2026-07-28 diagnostics.
  tool("test_missing_capability", "Needs the client's sampling capability", (_args, ctx) => {
    const capabilities = envelope(ctx, CLIENT_CAPABILITIES_META_KEY) as Record<string, unknown> | undefined
    if (modern(ctx) && capabilities?.["sampling"] === undefined) {
      throw new MissingRequiredClientCapabilityError({ requiredCapabilities: { sampling: {} } })
    }
    return text("the client declared sampling")
  })
  tool("test_logging_tool", "Logs at info when the request asks for a log level", async (_args, ctx) => {
    if (!modern(ctx) || envelope(ctx, LOG_LEVEL_META_KEY) !== undefined) await ctx.mcpReq.log("info", "a log message")
    return text("logged")
  })
  tool(
    "test_streaming_elicitation",
    "Asks the user: input_required on 2026-07-28, a request on 2025",
    (_args, ctx) =>
      modern(ctx)
        ? inputResponse(ctx.mcpReq.inputResponses, "answer").kind === "elicit"
          ? text("answered")
          : inputRequired({ inputRequests: { answer: elicitRequest("Anything to add?", nameForm) } })
        : elicitForm(ctx, "Anything to add?", nameForm, "User response")
  )
  tool(
    "test_custom_header",
    "Has an argument mirrored in an Mcp-Param header (SEP-2243)",
    (args) => text(`region: ${String(args["region"])}`),
    schema({
      type: "object",
      properties: { region: { type: "string", "x-mcp-header": "Region" }, query: { type: "string" } },
      required: ["region"]
    })
  )
  registerInputRequired(server, tool)
  tool("test_trigger_tool_change", "Tells clients the tool list changed", () => {
    for (const notify of shared.onToolsChanged) notify()
    return text("tools list changed")
  })
  tool("test_trigger_prompt_change", "Tells clients the prompt list changed", () => {
    for (const notify of shared.onPromptsChanged) notify()
    return text("prompts list changed")
  })

  server.registerResource("static-text", "test://static-text", {
    title: "Static Text Resource",
    description: "A static text resource",
    mimeType: "text/plain"
  }, () => ({
    contents: [{
      uri: "test://static-text",
      mimeType: "text/plain",
      text: "This is the content of the static text resource."
    }]
  }))
  server.registerResource("static-binary", "test://static-binary", {
    title: "Static Binary Resource",
    description: "A static binary resource (a PNG)",
    mimeType: "image/png"
  }, () => ({ contents: [{ uri: "test://static-binary", mimeType: "image/png", blob: IMAGE }] }))
  server.registerResource("template", new ResourceTemplate("test://template/{id}/data", { list: undefined }), {
    title: "Resource Template",
    description: "A resource template with parameter substitution",
    mimeType: "application/json"
  }, (uri, variables) => ({
    contents: [{
      uri: uri.toString(),
      mimeType: "application/json",
      text: JSON.stringify({ id: variables["id"], templateTest: true, data: `Data for ID: ${variables["id"]}` })
    }]
  }))
  server.registerResource("watched-resource", "test://watched-resource", {
    title: "Watched Resource",
    description: "A resource clients may subscribe to",
    mimeType: "text/plain"
  }, () => ({
    contents: [{ uri: "test://watched-resource", mimeType: "text/plain", text: "Watched resource content" }]
  }))
  server.server.setRequestHandler("resources/subscribe", () => ({}))
  server.server.setRequestHandler("resources/unsubscribe", () => ({}))

  server.registerPrompt("test_simple_prompt", {
    title: "Simple Test Prompt",
    description: "A prompt without arguments"
  }, () => ({
    messages: [{ role: "user", content: { type: "text", text: "This is a simple prompt for testing." } }]
  }))
  server.registerPrompt("test_prompt_with_arguments", {
    title: "Prompt With Arguments",
    description: "A prompt with required arguments",
    argsSchema: schema({
      type: "object",
      properties: {
        arg1: { type: "string", description: "First test argument" },
        arg2: { type: "string", description: "Second test argument" }
      },
      required: ["arg1", "arg2"]
    })
  }, (args) => ({
    messages: [{
      role: "user",
      content: { type: "text", text: `Prompt with arguments: arg1='${args["arg1"]}', arg2='${args["arg2"]}'` }
    }]
  }))
  server.registerPrompt("test_prompt_with_embedded_resource", {
    title: "Prompt With Embedded Resource",
    description: "A prompt that embeds a resource",
    argsSchema: schema({
      type: "object",
      properties: { resourceUri: { type: "string", description: "URI of the resource to embed" } },
      required: ["resourceUri"]
    })
  }, (args) => ({
    messages: [
      {
        role: "user",
        content: {
          type: "resource",
          resource: {
            uri: String(args["resourceUri"]),
            mimeType: "text/plain",
            text: "Embedded resource content for testing."
          }
        }
      },
      { role: "user", content: { type: "text", text: "Please process the embedded resource above." } }
    ]
  }))
  server.registerPrompt("test_prompt_with_image", {
    title: "Prompt With Image",
    description: "A prompt with an image"
  }, () => ({
    messages: [
      { role: "user", content: { type: "image", data: IMAGE, mimeType: "image/png" } },
      { role: "user", content: { type: "text", text: "Please analyze the image above." } }
    ]
  }))
  server.server.setRequestHandler("completion/complete", (request) => {
    const value = request.params.argument.value
    const values = ["paris", "park", "party"].filter((v) => v.startsWith(value))
    return { completion: { values, total: values.length, hasMore: false } }
  })
  // The SDK's `McpServer` turns whatever a tool handler throws into a tool error result; the scenarios want protocol
  // errors for an undeclared client capability and a tampered `requestState`, so those are checked before it.
  const registered = (server.server as unknown as {
    readonly _getRequestHandler: (method: string) => (request: unknown, ctx: ServerContext) => unknown
  })._getRequestHandler("tools/call")
  server.server.setRequestHandler("tools/call", (request, ctx) => {
    const name = request.params.name
    if (name === "test_missing_capability" && modern(ctx)) {
      const declared = envelope(ctx, CLIENT_CAPABILITIES_META_KEY) as Record<string, unknown> | undefined
      if (declared?.["sampling"] === undefined) {
        throw new MissingRequiredClientCapabilityError({ requiredCapabilities: { sampling: {} } })
      }
    }
    if (name.startsWith("test_input_required_result_") && modern(ctx)) verify(ctx)
    return registered(request, ctx) as ReturnType<typeof registered> & Promise<CallToolResult>
  })
  server.server.onclose = () => {
    shared.servers.delete(server)
  }
  return server
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

const readBody = async (req: IncomingMessage): Promise<string> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of req) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer))
  return Buffer.concat(chunks).toString("utf8")
}

const jsonRpcError = (res: ServerResponse, status: number, code: number, message: string): void => {
  if (res.headersSent) return void res.end()
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }))
}

/**
 * Starts the fixture on 127.0.0.1 (an ephemeral port unless `port` is given), serving both protocol eras at `/mcp`.
 *
 * @example
 * ```ts
 * const fixture = await ConformanceServer.startHttp()
 * // conformance server --url <a gateway in front of fixture.url>
 * await fixture.close()
 * ```
 *
 * @since 0.1.0
 */
export const startHttp = async (options: { readonly port?: number | undefined } = {}): Promise<ConformanceServer> => {
  const shared: Shared = { servers: new Set(), onToolsChanged: new Set(), onPromptsChanged: new Set() }
  const sessions = new Map<
    string,
    { readonly transport: NodeStreamableHTTPServerTransport; readonly server: McpServer }
  >()
  const handler = createMcpHandler(() => build(shared), { legacy: "reject" })
  const modernHandler = toNodeHandler(handler)
  shared.onToolsChanged.add(() => handler.notify.toolsChanged())
  shared.onPromptsChanged.add(() => handler.notify.promptsChanged())
  shared.onToolsChanged.add(() => {
    for (const { server } of sessions.values()) server.sendToolListChanged()
  })
  shared.onPromptsChanged.add(() => {
    for (const { server } of sessions.values()) server.sendPromptListChanged()
  })

  const open = async (): Promise<NodeStreamableHTTPServerTransport> => {
    const server = build(shared)
    const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, { transport, server }),
      onsessionclosed: (id) => void sessions.delete(id)
    })
    await server.connect(transport)
    return transport
  }

  const http = createServer((req, res) => {
    const handle = async () => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1")
      if (url.pathname !== "/mcp") return jsonRpcError(res, 404, -32000, "Not found")
      let body: unknown = undefined
      if (req.method === "POST") {
        const raw = await readBody(req)
        try {
          body = raw.length > 0 ? JSON.parse(raw) : undefined
        } catch {
          return jsonRpcError(res, 400, -32700, "Parse error")
        }
      }
      const nodeReq = req as NodeIncomingMessageLike
      const web = await toWebRequest(nodeReq, body)
      const rejected = hostHeaderValidationResponse(web, localhostAllowedHostnames()) ??
        originValidationResponse(web, localhostAllowedHostnames())
      if (rejected !== undefined) {
        res.writeHead(rejected.status, { "content-type": rejected.headers.get("content-type") ?? "application/json" })
        return void res.end(await rejected.text())
      }
      const sessionId = header(req, "mcp-session-id")
      if (sessionId !== undefined) {
        const session = sessions.get(sessionId)
        if (session === undefined) return jsonRpcError(res, 404, -32001, "Session not found")
        return session.transport.handleRequest(req, res, body)
      }
      if (!(await isLegacyRequest(web, body))) return modernHandler(nodeReq, res, body)
      if (req.method === "POST" && isInitializeRequest(body)) return (await open()).handleRequest(req, res, body)
      return jsonRpcError(res, 400, -32000, "Bad Request: No valid session ID provided")
    }
    handle().catch((error: unknown) =>
      jsonRpcError(res, 500, -32603, error instanceof Error ? error.message : "Internal error")
    )
  })
  const port = await listenLoopback(http, options.port)
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: async () => {
      const all = [...sessions.values()]
      sessions.clear()
      await Promise.all(all.map((s) => s.server.close().catch(() => undefined)))
      await handler.close().catch(() => undefined)
      await closeAll(http)
    }
  }
}
