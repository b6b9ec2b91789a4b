/**
 * Child-process entry of the stdio fault server: `node fault-server.ts '<FaultServerSpec as JSON>'`.
 * Serves the spec over this process's stdin/stdout and exits as soon as stdin closes.
 */
import type { FaultServerSpec } from "../FaultServer.ts"
import { run } from "../internal/faultStdio.ts"

await run(JSON.parse(process.argv[2] ?? "{\"tools\":[]}") as FaultServerSpec)
