/**
 * Child-process entry of the stdio fault server: `node fault-server.ts '<FaultServerSpec as JSON>'`.
 * Serves the spec over this process's stdin/stdout and exits as soon as stdin closes.
 */
import { appendFileSync } from "node:fs"
import type { FaultServerSpec } from "../FaultServer.ts"

const spec = JSON.parse(process.argv[2] ?? "{\"tools\":[]}") as FaultServerSpec
// Logged before the SDK loads, so that a process killed while it boots is counted too.
if (spec.pidLog !== undefined) appendFileSync(spec.pidLog, `start ${process.pid}\n`)
const { run } = await import("../internal/faultStdio.ts")
await run(spec)
