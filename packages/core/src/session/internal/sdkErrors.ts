/**
 * The SDK boundary of a session: what the official SDK throws (`SdkHttpError`, `SdkError`, `ProtocolError`, network
 * errors, the OAuth fetch's `UnauthorizedError`) mapped into the reasons of `McpSessionError`.
 *
 * @internal
 */
import { ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from "@modelcontextprotocol/client"
import { isAuthorizationFailure } from "../../auth/McpAuth.ts"
import {
  Closed,
  HandlerFailed,
  MessageTooLarge,
  Protocol,
  type Reason,
  Timeout,
  Unauthorized
} from "../../errors/McpSessionError.ts"
import { streamEndedCode } from "./httpTransport.ts"
import { HandlerFailure } from "./interaction.ts"

/** The JSON-RPC error code of an answer dropped for its size (`McpTransport.messageTooLargeCode`). @internal */
export const messageTooLargeCode = -32099

const transientNetworkCodes = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ENOTFOUND", "UND_ERR_SOCKET"])

const causeCode = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let i = 0; i < 4 && typeof current === "object" && current !== null; i++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

const causeChain = (error: unknown): Array<unknown> => {
  const chain: Array<unknown> = []
  for (let current = error, i = 0; i < 4 && current !== undefined && current !== null; i++) {
    chain.push(current)
    current = typeof current === "object" ? (current as { cause?: unknown }).cause : undefined
  }
  return chain
}

/** Maps what the SDK threw into a reason of `server` (re-exported by `McpSession`). @internal */
export const reasonFromSdk = (
  server: string,
  error: unknown,
  operation: string,
  timeoutMillis: number,
  stderr?: string
): Reason => {
  const withStderr = stderr ? { stderr } : {}
  if (error instanceof HandlerFailure) {
    return new HandlerFailed({ server, request: error.method, message: error.message })
  }
  const denied = causeChain(error).find(isAuthorizationFailure)
  if (denied !== undefined) {
    return new Unauthorized({
      server,
      detail: denied.detail,
      ...(denied.status === undefined ? {} : { status: denied.status }),
      ...(denied.requiredScope === undefined ? {} : { requiredScope: denied.requiredScope })
    })
  }
  if (error instanceof SdkHttpError) {
    return error.status === 404 || error.status === 410
      ? new Closed({
        server,
        message: `HTTP ${error.status}: the server no longer knows this session`,
        notExecuted: true,
        ...withStderr
      })
      : error.status >= 500
      ? new Protocol({ server, code: error.status, message: `HTTP ${error.status} ${error.statusText ?? ""}`.trim() })
      : new Protocol({ server, code: error.status, message: error.message })
  }
  if (error instanceof SdkError) {
    switch (error.code) {
      case SdkErrorCode.RequestTimeout:
        return new Timeout({ server, operation, timeoutMillis })
      case SdkErrorCode.ConnectionClosed:
      case SdkErrorCode.NotConnected:
      case SdkErrorCode.SendFailed:
        return new Closed({ server, message: error.message, ...withStderr })
      default: {
        // A failure the SDK wraps keeps the code of its network cause: "Version negotiation probe failed: fetch
        // failed" says nothing of a server that is down; "(ECONNREFUSED)" does.
        const code = causeCode(error.cause)
        return new Protocol({
          server,
          code: -1,
          message: code !== undefined && transientNetworkCodes.has(code) && !error.message.includes(code)
            ? `${error.message} (${code})`
            : error.message
        })
      }
    }
  }
  if (error instanceof ProtocolError) {
    const limit = (error.data as { readonly limitBytes?: unknown } | undefined)?.limitBytes
    return error.code === messageTooLargeCode && typeof limit === "number"
      ? new MessageTooLarge({ server, operation, limitBytes: limit })
      : error.code === streamEndedCode
      ? new Closed({ server, message: "the response stream broke before the answer (the server is gone)" })
      : new Protocol({
        server,
        code: error.code,
        message: error.message,
        ...(error.data === undefined ? {} : { data: error.data })
      })
  }
  const code = causeCode(error)
  if (code !== undefined && transientNetworkCodes.has(code)) {
    return new Closed({
      server,
      message: `${code}: ${error instanceof Error ? error.message : String(error)}`,
      ...withStderr
    })
  }
  if (error instanceof TypeError && /fetch failed|network/i.test(error.message)) {
    return new Closed({ server, message: error.message, ...withStderr })
  }
  return new Protocol({ server, code: -1, message: error instanceof Error ? error.message : String(error) })
}
