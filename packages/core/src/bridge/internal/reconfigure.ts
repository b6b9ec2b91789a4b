/**
 * What a new configuration changes: the servers it adds, removes and changes, and those it leaves as they are. Two
 * resolved servers are the same when every setting is (secrets compared by value, durations by length, functions by
 * identity), so that an unchanged server keeps its sessions, pools and caches.
 *
 * @internal
 */
import { Duration, Redacted } from "effect"
import type { ResolvedServer } from "../../config/BridgeConfig.ts"

/** @internal */
export interface Diff {
  readonly added: ReadonlyArray<string>
  readonly removed: ReadonlyArray<string>
  readonly changed: ReadonlyArray<string>
  readonly unchanged: ReadonlyArray<string>
}

// A canonical form of a setting: object keys sorted, maps as sorted entries, secrets and durations by value, functions
// by a number of their own (the in-memory transport's `connect`).
const canonical = (value: unknown, functions: Map<Function, number>): unknown => {
  if (Redacted.isRedacted(value)) return { redacted: canonical(Redacted.value(value), functions) }
  if (Duration.isDuration(value)) return { millis: Duration.toMillis(value) }
  if (typeof value === "function") {
    let id = functions.get(value)
    if (id === undefined) functions.set(value, id = functions.size)
    return { function: id }
  }
  if (value instanceof Map) {
    return Array.from(value.entries(), ([k, v]) => [String(k), canonical(v, functions)] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  }
  if (Array.isArray(value)) return value.map((v) => canonical(v, functions))
  if (typeof value === "object" && value !== null) {
    return Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k], functions)])
  }
  return value
}

/** @internal */
export const sameServer = (a: ResolvedServer, b: ResolvedServer): boolean => {
  const functions = new Map<Function, number>()
  return JSON.stringify(canonical(a, functions)) === JSON.stringify(canonical(b, functions))
}

/** @internal */
export const diff = (
  current: ReadonlyMap<string, ResolvedServer>,
  next: ReadonlyMap<string, ResolvedServer>
): Diff => {
  const added: Array<string> = []
  const removed: Array<string> = []
  const changed: Array<string> = []
  const unchanged: Array<string> = []
  for (const [name, server] of next) {
    const before = current.get(name)
    if (before === undefined) added.push(name)
    else if (sameServer(before, server)) unchanged.push(name)
    else changed.push(name)
  }
  for (const name of current.keys()) if (!next.has(name)) removed.push(name)
  return { added, removed, changed, unchanged }
}
