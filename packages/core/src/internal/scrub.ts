/**
 * Scrubbing of secrets (a server's `env` values, header values) from text that reaches an error, a span or a log:
 * every whole occurrence, and a part of a secret (at least 4 characters) cut off at either end of the text (a server
 * that echoed a secret in a body the SDK truncated, a window cut through one).
 *
 * @internal
 */

const redacted = "<redacted>"
const minFragment = 4

/** @internal */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string => {
  if (secrets.length === 0 || text.length === 0) return text
  let out = text
  for (const secret of secrets) {
    if (secret.length < minFragment) continue
    if (out.includes(secret)) out = out.split(secret).join(redacted)
  }
  for (const secret of secrets) {
    if (secret.length < minFragment) continue
    // The end of the text is the start of a secret, or its start the end of one.
    for (let k = Math.min(secret.length - 1, out.length); k >= minFragment; k--) {
      if (out.endsWith(secret.slice(0, k))) {
        out = out.slice(0, out.length - k) + redacted
        break
      }
    }
    for (let k = Math.min(secret.length - 1, out.length); k >= minFragment; k--) {
      if (out.startsWith(secret.slice(secret.length - k))) {
        out = redacted + out.slice(k)
        break
      }
    }
  }
  return out
}
