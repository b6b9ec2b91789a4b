/**
 * The one place secrets leave their `Redacted` wrapper: a transport reveals a server's `env` or `headers` when it
 * starts the process or sends the request, and nowhere else.
 *
 * @internal
 */
import { Redacted } from "effect"

/** @internal */
export const revealAll = (secrets: Readonly<Record<string, Redacted.Redacted<string>>> | undefined) =>
  secrets === undefined
    ? undefined
    : Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, Redacted.value(v)]))
