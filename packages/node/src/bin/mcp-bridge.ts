#!/usr/bin/env node
/**
 * The `mcp-bridge` command: `mcp-bridge tools|call|doctor --config FILE [--json]` (see `mcp-bridge --help` and the
 * package README). Installed as the package's `bin`; inside the repository, run it from sources with
 * `node --conditions=@mcp-bridge/source packages/node/src/bin/mcp-bridge.ts`.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"
import { createRequire } from "node:module"
import * as Cli from "../internal/cli/command.ts"

// `../../package.json` from both `src/bin` and `dist/bin`.
const { version } = createRequire(import.meta.url)("../../package.json") as { readonly version: string }

Cli.run(process.argv.slice(2), version).pipe(
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, teardown: Cli.teardown })
)
