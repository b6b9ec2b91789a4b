/**
 * What a call's arguments and `_meta` may hold: JSON values (null, booleans, finite numbers, strings, arrays and plain
 * objects; a property whose value is `undefined` is left out, as `JSON.stringify` does). Anything else (a BigInt, a
 * function, a symbol, `NaN`, a class instance, a cycle) cannot reach a server intact or key the result cache, so it
 * is refused before the call is made, with the path of the first offending value.
 *
 * @internal
 */

import type { Progress } from "@modelcontextprotocol/client"
import { Duration, Option } from "effect"
import { invalidCall, type McpBridgeError } from "../errors/McpBridgeError.ts"

/** @internal */
export interface Problem {
  readonly path: ReadonlyArray<string>
  readonly detail: string
}

const describe = (value: unknown): string =>
  typeof value === "bigint"
    ? "a BigInt"
    : typeof value === "function"
    ? "a function"
    : typeof value === "symbol"
    ? "a symbol"
    : typeof value === "number"
    ? String(value)
    : value === undefined
    ? "undefined"
    : `an instance of ${(value as object).constructor?.name ?? "a class"}`

/** How deep arguments and `_meta` may nest: deeper values are refused before anything recurses over them. @internal */
export const maxJsonDepth = 256

/** The first value under `value` that is not JSON (or nests deeper than `maxJsonDepth`), or `undefined`. @internal */
export const jsonProblem = (value: unknown, path: Array<string>): Problem | undefined => {
  const seen = new Set<object>()
  const base = path.length
  const visit = (v: unknown): Problem | undefined => {
    if (path.length - base > maxJsonDepth) {
      return {
        path: [...path.slice(0, base + 3), "…"],
        detail: `must be JSON nested at most ${maxJsonDepth} levels deep`
      }
    }
    switch (typeof v) {
      case "string":
      case "boolean":
        return undefined
      case "number":
        return Number.isFinite(v) ? undefined : { path: [...path], detail: `must be JSON, got ${describe(v)}` }
      case "object": {
        if (v === null) return undefined
        if (seen.has(v)) return { path: [...path], detail: "must be JSON, got a circular reference" }
        if (Array.isArray(v)) {
          seen.add(v)
          for (let i = 0; i < v.length; i++) {
            path.push(String(i))
            const p = v[i] === undefined
              ? { path: [...path], detail: "must be JSON, got undefined in an array" }
              : visit(v[i])
            path.pop()
            if (p !== undefined) return p
          }
          seen.delete(v)
          return undefined
        }
        const proto = Object.getPrototypeOf(v)
        if (proto !== Object.prototype && proto !== null) {
          return { path: [...path], detail: `must be JSON, got ${describe(v)}` }
        }
        seen.add(v)
        for (const key of Object.keys(v)) {
          const item = (v as Record<string, unknown>)[key]
          if (item === undefined) continue
          path.push(key)
          const p = visit(item)
          path.pop()
          if (p !== undefined) return p
        }
        seen.delete(v)
        return undefined
      }
      default:
        return { path: [...path], detail: `must be JSON, got ${describe(v)}` }
    }
  }
  return visit(value)
}

/** @internal */
export const splitTarget = (target: unknown): { server: string; tool: string } | undefined => {
  if (typeof target === "object" && target !== null && !Array.isArray(target)) {
    const { server, tool } = target as { readonly server?: unknown; readonly tool?: unknown }
    return typeof server === "string" && server.length > 0 && typeof tool === "string" && tool.length > 0
      ? { server, tool }
      : undefined
  }
  if (typeof target !== "string") return undefined
  const dot = target.indexOf(".")
  return dot <= 0 || dot === target.length - 1
    ? undefined
    : { server: target.slice(0, dot), tool: target.slice(dot + 1) }
}

/** @internal */
export const shown = (value: unknown): string => {
  try {
    const text = typeof value === "bigint" ? `${value}n` : JSON.stringify(value) ?? String(value)
    return text.length > 80 ? `${text.slice(0, 77)}...` : text
  } catch {
    return typeof value
  }
}

/** @internal */
export const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * Checks a call's target, arguments and options: the parsed target, the decoded `timeout` and the `meta`, or the
 * `InvalidCall` naming what is wrong.
 *
 * @internal
 */
export const checkCall = (
  target: unknown,
  args: unknown,
  options: unknown
):
  | McpBridgeError
  | {
    readonly parsed: { readonly server: string; readonly tool: string }
    readonly timeout: Duration.Duration | undefined
    readonly meta: Readonly<Record<string, unknown>> | undefined
    readonly onProgress: ((progress: Progress) => void) | undefined
  } =>
{
  const parsed = splitTarget(target)
  if (parsed === undefined) {
    const object = isRecord(target)
    const path = !object
      ? ["name"]
      : typeof target.server !== "string" || target.server.length === 0
      ? ["name", "server"]
      : ["name", "tool"]
    return invalidCall(
      path,
      object
        ? `must be a non-empty string, got ${shown(target[path[1]!])}`
        : `expected "server.tool" or { server, tool }, got ${shown(target)}`
    )
  }
  if (!isRecord(args)) {
    return (invalidCall(["arguments"], `must be an object, got ${shown(args)}`, parsed.server, parsed.tool))
  }
  const argsProblem = jsonProblem(args, ["arguments"])
  if (argsProblem !== undefined) {
    return (invalidCall(argsProblem.path, argsProblem.detail, parsed.server, parsed.tool))
  }
  if (!isRecord(options)) {
    return (invalidCall(["options"], `must be an object, got ${shown(options)}`, parsed.server, parsed.tool))
  }
  let timeout: Duration.Duration | undefined
  if (options.timeout !== undefined) {
    const decoded = typeof options.timeout === "string" || typeof options.timeout === "number" ||
        Duration.isDuration(options.timeout)
      ? Duration.fromInput(options.timeout as Duration.Input)
      : Option.none()
    if (
      Option.isNone(decoded) || !Duration.isGreaterThan(decoded.value, Duration.zero) ||
      !Duration.isFinite(decoded.value)
    ) {
      return (
        invalidCall(
          ["options", "timeout"],
          `must be a positive duration, got ${shown(options.timeout)}`,
          parsed.server,
          parsed.tool
        )
      )
    }
    timeout = decoded.value
  }
  if (options.meta !== undefined) {
    const metaProblem = isRecord(options.meta)
      ? jsonProblem(options.meta, ["options", "meta"])
      : { path: ["options", "meta"], detail: `must be an object, got ${shown(options.meta)}` }
    if (metaProblem !== undefined) {
      return (invalidCall(metaProblem.path, metaProblem.detail, parsed.server, parsed.tool))
    }
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== "function") {
    return invalidCall(
      ["options", "onProgress"],
      `must be a function, got ${shown(options.onProgress)}`,
      parsed.server,
      parsed.tool
    )
  }
  return {
    parsed,
    timeout,
    meta: options.meta as Readonly<Record<string, unknown>> | undefined,
    onProgress: options.onProgress as ((progress: Progress) => void) | undefined
  }
}
