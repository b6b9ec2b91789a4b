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
