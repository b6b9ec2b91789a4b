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

/**
 * The values of a server's secrets: its `env` (stdio) and its `headers` (HTTP, SSE), and a header's value without its
 * scheme (`Bearer <token>` may be echoed as the token alone). Structural, so that any area can pass a resolved server.
 *
 * @internal
 */
export const secretValues = (server: {
  readonly transport: object
}): ReadonlyArray<string> => {
  const transport = server.transport as {
    readonly env?: Readonly<Record<string, Redacted.Redacted<string>>>
    readonly headers?: Readonly<Record<string, Redacted.Redacted<string>>>
  }
  const values: Array<string> = []
  for (const map of [transport.env, transport.headers]) {
    if (map === undefined) continue
    for (const value of Object.values(map)) {
      const revealed = Redacted.value(value)
      values.push(revealed)
      const space = revealed.indexOf(" ")
      if (space > 0) values.push(revealed.slice(space + 1))
    }
  }
  return values
}
