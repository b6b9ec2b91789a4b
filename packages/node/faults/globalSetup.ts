// Collects the one-line figure of every scenario (`FAULT <name>: ...`) and prints them together at the end.
import { mkdirSync, readFileSync, rmSync } from "node:fs"
import { join } from "node:path"

const file = join(process.cwd(), ".vitest", "faults.txt")

export const setup = () => {
  mkdirSync(join(process.cwd(), ".vitest"), { recursive: true })
  rmSync(file, { force: true })
}

export const teardown = () => {
  let text = ""
  try {
    text = readFileSync(file, "utf8")
  } catch {
    return
  }
  process.stdout.write(`\nFault suite figures (also in ${file}):\n${text}`)
}
