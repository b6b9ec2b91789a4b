// The layering rule of the source tree, checked in CI (`npm run layers`).
//
// 1. An area's internals (`<area>/internal/*`) never import their own area's public modules (`<area>/*.ts`) as
//    values: calls fall one way, from the public module down to its machinery. Type-only imports are allowed, as in
//    Effect's own sources (an internal implements the public module's interface).
// 2. An area's internals are private: no module outside `<area>/` imports `<area>/internal/*`. Core's top-level
//    `internal/` holds the small helpers every area shares and imports nothing of ours but errors.
// 3. Core's areas are ordered; a module imports (values or types) only from its own area or from areas below it:
//    errors < internal < auth < config < telemetry < session < pipeline < pool < bridge < index.ts.
// 4. No package reaches into another package's sources by a relative path: packages import each other by name.
//
// It also prints the depth of core's import graph (the longest chain of source files) and the count of imports
// from an `internal` folder back to its own area, so both can be watched.
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..")
const packages = ["core", "node", "testing", "bench"]
const coreSrc = path.join(repo, "packages/core/src")
const order = ["errors", "internal", "auth", "config", "telemetry", "session", "pipeline", "pool", "bridge", "index.ts"]

const walk = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : walk(full)
    return entry.name.endsWith(".ts") ? [full] : []
  })

const importsOf = (file) => {
  const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, false)
  const found = []
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      const spec = node.moduleSpecifier.text
      const typeOnly = ts.isImportDeclaration(node)
        ? node.importClause?.isTypeOnly === true ||
          (node.importClause !== undefined && node.importClause.name === undefined &&
            node.importClause.namedBindings !== undefined && ts.isNamedImports(node.importClause.namedBindings) &&
            node.importClause.namedBindings.elements.length > 0 &&
            node.importClause.namedBindings.elements.every((e) => e.isTypeOnly))
        : node.isTypeOnly
      found.push({ spec, typeOnly })
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments
      if (arg && ts.isStringLiteral(arg)) found.push({ spec: arg.text, typeOnly: false })
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found.filter((i) => i.spec.startsWith(".")).map((i) => ({
    ...i,
    target: path.resolve(path.dirname(file), i.spec)
  }))
}

const problems = []
const rel = (file) => path.relative(repo, file)
let backImports = { value: 0, type: 0 }

for (const name of packages) {
  const root = path.join(repo, "packages", name)
  const files = ["src", "test", "faults", "examples"].flatMap((d) =>
    fs.existsSync(path.join(root, d)) ? walk(path.join(root, d)) : []
  )
  for (const file of files) {
    for (const imp of importsOf(file)) {
      // Rule 4
      if (!imp.target.startsWith(root + path.sep)) {
        problems.push(`${rel(file)}: imports ${rel(imp.target)} of another package by path; import the package by name`)
        continue
      }
      if (!file.startsWith(path.join(root, "src") + path.sep)) continue
      const fileDir = path.dirname(file)
      // Rule 1: <area>/internal/x.ts importing <area>/Public.ts
      if (path.basename(fileDir) === "internal") {
        const area = path.dirname(fileDir)
        if (path.dirname(imp.target) === area) {
          backImports[imp.typeOnly ? "type" : "value"]++
          if (!imp.typeOnly) {
            problems.push(`${rel(file)}: internal module imports its own area's public ${rel(imp.target)}`)
          }
        }
      }
      // Rule 2: <area>/internal/* imported from outside <area>/ (core's top-level internal/ is shared)
      const targetDir = path.dirname(imp.target)
      if (path.basename(targetDir) === "internal") {
        const owner = path.dirname(targetDir)
        const shared = owner === path.join(root, "src")
        if (!shared && !file.startsWith(owner + path.sep)) {
          problems.push(`${rel(file)}: imports ${rel(imp.target)}, private to ${rel(owner)}`)
        }
      }
      // Rule 3 (core only)
      if (name === "core") {
        const rank = (f) => order.indexOf(path.relative(coreSrc, f).split(path.sep)[0])
        const from = rank(file)
        const to = rank(imp.target)
        if (from === -1) problems.push(`${rel(file)}: not in a known area of core (${order.join(", ")})`)
        else if (to > from) {
          problems.push(`${rel(file)}: imports ${rel(imp.target)}, which is above it (${order.join(" < ")})`)
        }
      }
    }
  }
}

// Depth of core's import graph: the longest chain of source files.
const coreFiles = walk(coreSrc)
const edges = new Map(
  coreFiles.map((f) => [f, importsOf(f).map((i) => i.target.endsWith(".ts") ? i.target : i.target + ".ts")])
)
const memo = new Map()
const depth = (file, stack = new Set()) => {
  if (memo.has(file)) return memo.get(file)
  if (stack.has(file)) return 0
  stack.add(file)
  const d = 1 + Math.max(0, ...(edges.get(file) ?? []).filter((t) => edges.has(t)).map((t) => depth(t, stack)))
  stack.delete(file)
  memo.set(file, d)
  return d
}
const longest = Math.max(...coreFiles.map((f) => depth(f)))
const largest =
  packages.flatMap((n) =>
    fs.existsSync(path.join(repo, "packages", n, "src")) ? walk(path.join(repo, "packages", n, "src")) : []
  )
    .map((f) => [rel(f), fs.readFileSync(f, "utf8").split("\n").length]).sort((a, b) => b[1] - a[1])[0]
console.log(
  `layers: core's longest import chain ${longest} files; internal -> own area imports: ${backImports.value} value, ` +
    `${backImports.type} type-only; largest module ${largest[0]} (${largest[1]} lines)`
)
if (problems.length > 0) {
  console.error(problems.join("\n"))
  console.error(`layers: ${problems.length} problem(s)`)
  process.exit(1)
}
