/**
 * Canonical JSON of tool arguments: object keys sorted at every depth, no whitespace, numbers as JavaScript prints
 * them. Two argument objects that mean the same call (keys in another order, `1.0` vs `1`) give the same text, so it
 * keys the result cache and the coalescing of identical calls.
 *
 * @internal
 */

const write = (value: unknown, out: Array<string>): void => {
  if (value === null || typeof value !== "object") {
    // `undefined`, functions and symbols have no JSON form: like JSON.stringify, they read as null in arrays.
    out.push(typeof value === "bigint" ? value.toString() : JSON.stringify(value) ?? "null")
    return
  }
  if (Array.isArray(value)) {
    out.push("[")
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(",")
      write(value[i], out)
    }
    out.push("]")
    return
  }
  const record = value as Record<string, unknown>
  const keys = Object.keys(record).filter((key) => record[key] !== undefined).sort()
  out.push("{")
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) out.push(",")
    out.push(JSON.stringify(keys[i]), ":")
    write(record[keys[i]!], out)
  }
  out.push("}")
}

/** @internal */
export const canonicalJson = (value: unknown): string => {
  const out: Array<string> = []
  write(value, out)
  return out.join("")
}

/**
 * The partition of a call: `"*"` for results shared by every caller, else the caller's identity (`""` for anonymous
 * callers, who share with each other).
 *
 * @internal
 */
export const partitionOf = (shared: boolean, identity: string | undefined): string =>
  shared ? "*" : identity === undefined ? "" : `id:${identity}`

/**
 * The identity of a call: server, tool, partition and canonical arguments. The NUL separators cannot appear in server
 * names or tool names.
 *
 * @internal
 */
export const callKey = (server: string, tool: string, partition: string, args: unknown): string =>
  `${server}\u0000${tool}\u0000${partition}\u0000${canonicalJson(args)}`
