/**
 * Canonical JSON of tool arguments: object keys sorted at every depth, no whitespace, numbers as JavaScript prints
 * them. Two argument objects that mean the same call (keys in another order, `1.0` vs `1`) give the same text, so it
 * keys the result cache and the coalescing of identical calls.
 *
 * @internal
 */

// Strings are built by concatenation (V8 ropes), which is faster than collecting parts for these small values.
const write = (value: unknown): string => {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value)
    case "number":
      // as JSON.stringify: NaN and the infinities read as null, -0 as 0
      return Number.isFinite(value) ? String(value) : "null"
    case "boolean":
      return value ? "true" : "false"
    case "bigint":
      return value.toString()
    case "object": {
      if (value === null) return "null"
      if (Array.isArray(value)) {
        let out = "["
        for (let i = 0; i < value.length; i++) out += (i > 0 ? "," : "") + write(value[i])
        return out + "]"
      }
      const record = value as Record<string, unknown>
      const keys = Object.keys(record).sort()
      let out = "{"
      let first = true
      for (let i = 0; i < keys.length; i++) {
        const item = record[keys[i]!]
        // like JSON.stringify, a property whose value is undefined is left out
        if (item === undefined) continue
        out += (first ? "" : ",") + JSON.stringify(keys[i]) + ":" + write(item)
        first = false
      }
      return out + "}"
    }
    default:
      // `undefined`, functions and symbols have no JSON form: like JSON.stringify, they read as null in arrays.
      return "null"
  }
}

/** @internal */
export const canonicalJson = (value: unknown): string => write(value)

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
