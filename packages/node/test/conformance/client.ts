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
const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? "{}") as Readonly<Record<string, string | undefined>>

/** The client ID metadata document URL the suite's authorization servers accept (it need not resolve). */
const CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"

/** The server entry's `auth` section for a scenario: what an operator would write for such a server. */
const authFor = (name: string): Record<string, unknown> | undefined => {
  if (!name.startsWith("auth/")) return undefined
  switch (name) {
    case "auth/pre-registration":
      return { clientId: context.client_id, clientSecret: context.client_secret }
    case "auth/client-credentials-basic":
      return { grant: "client_credentials", clientId: context.client_id, clientSecret: context.client_secret }
    case "auth/client-credentials-jwt":
      return {
        grant: "client_credentials",
        clientId: context.client_id,
        tokenEndpointAuthMethod: "private_key_jwt",
        privateKey: context.private_key_pem,
        signingAlgorithm: context.signing_algorithm ?? "ES256"
      }
    case "auth/cross-app-access-complete-flow":
      return {
        grant: "jwt_bearer",
        clientId: context.client_id,
        clientSecret: context.client_secret,
        idp: {
          tokenEndpoint: context.idp_token_endpoint,
          clientId: context.idp_client_id,
          idToken: context.idp_id_token
        }
      }
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

/** What to call once the tools are listed: a tool name and its arguments, per scenario (default: the first tool). */
const calls: Readonly<Record<string, { readonly tool: string; readonly arguments: Record<string, unknown> }>> = {
  tools_call: { tool: "add_numbers", arguments: { a: 5, b: 3 } },
  "elicitation-sep1034-client-defaults": { tool: "test_client_elicitation_defaults", arguments: {} },
  "sse-retry": { tool: "test_reconnection", arguments: {} }
}

/** Scenarios that only check the handshake and the tool list. */
const listOnly = new Set(["initialize"])

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
          // Deadlines well inside the suite's 30 s client timeout, so that a failing scenario ends with our error.
          connectTimeout: "10 seconds",
          timeout: "10 seconds",
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
    const call = calls[scenario] ?? (tools[0] === undefined ? undefined : { tool: tools[0].name, arguments: {} })
    if (call === undefined) {
      console.error("the server listed no tool to call")
      return 1
    }
    const result = await bridge.callTool(`conformance.${call.tool}`, call.arguments)
    console.log(`${call.tool}: ${JSON.stringify(result.content)}`)
    return result.isError === true ? 1 : 0
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
