/**
 * The client under test of the official MCP conformance suite (`@modelcontextprotocol/conformance`): a program that
 * uses nothing but the bridge's Promise facade.
 *
 * `conformance client --command "node client.ts"` starts a scripted server for one scenario, then runs this program
 * with the server's URL as its last argument, the scenario's name in `MCP_CONFORMANCE_SCENARIO` and, for scenarios
 * that hand the client credentials, a JSON object in `MCP_CONFORMANCE_CONTEXT`. The program puts the URL in a one-server
 * configuration, lists the tools, calls the scenario's tool, and exits 0 on success and 1 on any failure (printing the
 * bridge's typed error). The suite judges the wire traffic, not the exit code, except where a scenario expects the
 * client to give up.
 *
 * Run every scenario with `npm run conformance` (see `run.ts`).
 */
import { createBridge } from "./facade.ts"

const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? ""
const url = process.argv.at(-1) ?? ""
/** What a scenario hands the client: credentials, and for some the tool calls to make (`toolCalls`). */
const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? "{}") as Readonly<Record<string, unknown>>
const text = (key: string): string | undefined => typeof context[key] === "string" ? context[key] as string : undefined

/** The client ID metadata document URL the suite's authorization servers accept (it need not resolve). */
const CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"

/** The server entry's `auth` section for a scenario: what an operator would write for such a server. */
const authFor = (name: string): Record<string, unknown> | undefined => {
  if (!name.startsWith("auth/")) return undefined
  switch (name) {
    case "auth/pre-registration":
      return { clientId: text("client_id"), clientSecret: text("client_secret") }
    case "auth/client-credentials-basic":
      return { grant: "client_credentials", clientId: text("client_id"), clientSecret: text("client_secret") }
    case "auth/client-credentials-jwt":
      return {
        grant: "client_credentials",
        clientId: text("client_id"),
        tokenEndpointAuthMethod: "private_key_jwt",
        privateKey: text("private_key_pem"),
        signingAlgorithm: text("signing_algorithm") ?? "ES256"
      }
    // Enterprise-managed authorization (SEP-990): named cross-app access in 0.1.16.
    case "auth/cross-app-access-complete-flow":
    case "auth/enterprise-managed-authorization":
      return {
        grant: "jwt_bearer",
        clientId: text("client_id"),
        clientSecret: text("client_secret"),
        idp: {
          tokenEndpoint: text("idp_token_endpoint"),
          clientId: text("idp_client_id"),
          idToken: text("idp_id_token")
        }
      }
    // Workload identity (SEP-1933): the workload's JWT as the jwt-bearer assertion, here from a variable as a
    // deployment would hand it over (a Kubernetes pod would name its projected token's file instead).
    case "auth/wif-jwt-bearer":
      process.env.WORKLOAD_JWT = text("valid_jwt") ?? ""
      return { grant: "jwt_bearer", clientId: text("client_id"), assertion: { env: "WORKLOAD_JWT" } }
    // Sender-constrained tokens (SEP-1932).
    case "auth/dpop":
    case "auth/dpop-nonce":
      return { clientMetadataUrl: CLIENT_METADATA_URL, dpop: true }
    case "auth/2025-03-26-oauth-metadata-backcompat":
      // In 0.1.16 this scenario's authorization server serves its metadata at the root well-known URL with the issuer
      // "<origin>/oauth", which RFC 8414 §3.3 (a MUST of the MCP spec, enforced by the SDK v2) rejects; the suite fixed
      // its mock after 0.1.16 (modelcontextprotocol/conformance#359). An operator facing such a server sets the
      // server's documented escape hatch, as here.
      return { clientMetadataUrl: CLIENT_METADATA_URL, allowIssuerMismatch: true }
    default:
      return { clientMetadataUrl: CLIENT_METADATA_URL }
  }
}

/**
 * The user's side of an authorization: the suite's authorization servers approve at once and redirect to the
 * redirect URI, so the "browser" follows the authorization URL to its redirect and hands that URL back.
 */
const onAuthorization = async ({ url: authorizationUrl }: { readonly url: URL }): Promise<string> => {
  const response = await fetch(authorizationUrl, { redirect: "manual" })
  const location = response.headers.get("location")
  if (location === null) throw new Error(`the authorization endpoint answered ${response.status} without a redirect`)
  return location
}

interface Call {
  readonly tool: string
  readonly arguments: Record<string, unknown>
}

interface ListedTool {
  readonly name: string
  readonly inputSchema: unknown
}

/**
 * What to call once the tools are listed: the scenario's own `toolCalls` when it hands some, else a scenario's calls
 * here, else every listed tool without arguments.
 */
const callsFor = (tools: ReadonlyArray<ListedTool>): ReadonlyArray<Call> => {
  if (Array.isArray(context.toolCalls)) {
    return (context.toolCalls as Array<{ name: string; arguments?: Record<string, unknown> }>).map((call) => ({
      tool: call.name,
      arguments: call.arguments ?? {}
    }))
  }
  switch (scenario) {
    case "tools_call":
      return [{ tool: "add_numbers", arguments: { a: 5, b: 3 } }]
    case "json-schema-2020-12-preservation": {
      // Echo the input schema of the 2020-12 tool as the bridge lists it: the scenario checks what survived.
      const focal = tools.find((tool) => tool.name === "json_schema_2020_12_tool")
      return focal === undefined ? [] : [{ tool: "json_schema_echo", arguments: { schema: focal.inputSchema } }]
    }
    default:
      return tools.map((tool) => ({ tool: tool.name, arguments: {} }))
  }
}

/**
 * Scenarios that only check the handshake and the tool list: their servers list no tool, or answer no `tools/call`.
 */
const listOnly = new Set(["initialize", "request-metadata", "json-schema-ref-no-deref"])

const main = async (): Promise<number> => {
  if (!/^https?:\/\//.test(url)) {
    console.error(`usage: MCP_CONFORMANCE_SCENARIO=<scenario> node client.ts <server-url> (got ${JSON.stringify(url)})`)
    return 2
  }
  const bridge = await createBridge({
    mcpServers: {
      conformance: {
        url,
        ...(authFor(scenario) === undefined ? {} : { auth: authFor(scenario) }),
        bridge: {
          // Deadlines well inside the client timeout run.ts gives the suite (120 s), so that a failing scenario ends
          // with our error, and long enough for a loaded machine.
          connectTimeout: "30 seconds",
          timeout: "30 seconds",
          retry: false,
          circuitBreaker: false,
          cache: false
        }
      }
    }
  }, {
    onAuthorization,
    redirectUri: "http://localhost:3000/callback",
    // The user accepts every form and fills in nothing: the schema's defaults fill the rest (SEP-1034).
    onElicitation: () => ({ action: "accept", content: {} })
  })
  try {
    const tools = await bridge.listTools()
    console.log(`tools: ${tools.map((tool) => tool.name).join(", ") || "(none)"}`)
    if (listOnly.has(scenario)) return 0
    const calls = callsFor(tools)
    if (calls.length === 0) {
      console.error("the server listed no tool to call")
      return 1
    }
    let code = 0
    for (const call of calls) {
      const result = await bridge.callTool(`conformance.${call.tool}`, call.arguments)
      console.log(`${call.tool}: ${JSON.stringify(result.content)}`)
      if (result.isError === true) code = 1
    }
    return code
  } finally {
    await bridge.close()
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    const e = error as {
      readonly _tag?: string
      readonly reason?: { readonly _tag?: string }
      readonly message?: string
    }
    console.error(`${e._tag ?? "Error"}${e.reason?._tag ? `/${e.reason._tag}` : ""}: ${e.message ?? String(error)}`)
    process.exit(1)
  }
)
