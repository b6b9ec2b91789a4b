/**
 * Every public export of the packages' sources has a doc block that says something besides its tags (`@since`,
 * `@category`...): what it is and when to use it. Prints each export that has none and exits 1 when there are any.
 *
 * `node scripts/check-docs.mjs` (part of `npm run lint`).
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

const roots = ["packages/core/src", "packages/node/src", "packages/testing/src"]
const files = roots.flatMap((root) =>
  readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts") && entry.name !== "index.ts")
    .map((entry) => join(root, entry.name))
)

const exportLine =
  /^\s*export (?:declare )?(?:const|class|interface|type|function|namespace|async function|abstract class) (\w+)/
const missing = []
for (const file of files) {
  const lines = readFileSync(file, "utf8").split("\n")
  for (let i = 0; i < lines.length; i++) {
    const match = exportLine.exec(lines[i])
    if (match === null) continue
    // The doc block just above the export (if any).
    let end = i - 1
    if (end < 0 || !lines[end].trim().endsWith("*/")) {
      missing.push(`${file}:${i + 1} ${match[1]}: no doc block`)
      continue
    }
    let start = end
    while (start > 0 && !lines[start].trim().startsWith("/**")) start--
    const text = lines.slice(start, end + 1)
      .map((line) => line.replace(/^\s*\/?\*+\/?/, "").replace(/\*\/\s*$/, "").trim())
      .filter((line) => line.length > 0 && !line.startsWith("@"))
      .join(" ")
    if (text.length === 0) missing.push(`${file}:${i + 1} ${match[1]}: only tags`)
  }
}
for (const line of missing) console.log(line)
console.log(`${missing.length} public exports without a description`)
process.exit(missing.length === 0 ? 0 : 1)
