/**
 * The errors of OAuth: an authorization the user or the server refused, an interaction that is missing or timed out,
 * a token store that failed. One `Schema.TaggedError` with a tagged `reason`, `server` in every reason. A session of
 * such a server fails with `McpSessionError` reason `Unauthorized`, whose detail carries this error's message.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The server needs a user's authorization, and no `AuthInteraction` was provided to ask one.
 *
 * @since 0.1.0
 */
export class InteractionRequired extends Schema.TaggedClass<InteractionRequired>()("InteractionRequired", {
  server: Schema.String
}) {}

/**
 * The user or the authorization server refused, or the answer did not belong to the request (`state` mismatch).
 *
 * @since 0.1.0
 */
export class AuthorizationDenied extends Schema.TaggedClass<AuthorizationDenied>()("AuthorizationDenied", {
  server: Schema.String,
  detail: Schema.String
}) {}

/**
 * The user did not complete the authorization within `interactionTimeout`.
 *
 * @since 0.1.0
 */
export class InteractionTimeout extends Schema.TaggedClass<InteractionTimeout>()("InteractionTimeout", {
  server: Schema.String,
  timeoutMillis: Schema.Finite
}) {}

/**
 * The token store failed to read or write.
 *
 * @since 0.1.0
 */
export class StoreFailed extends Schema.TaggedClass<StoreFailed>()("StoreFailed", {
  server: Schema.String,
  detail: Schema.String
}) {}

/**
 * The workload's JWT of the `jwt_bearer` grant could not be read: a missing or empty file or environment variable, or
 * the `assertion` function failed. The assertion itself is never in `detail`.
 *
 * @since 0.1.0
 */
export class AssertionUnavailable extends Schema.TaggedClass<AssertionUnavailable>()("AssertionUnavailable", {
  server: Schema.String,
  source: Schema.Literals(["file", "env", "function"]),
  detail: Schema.String
}) {}

/**
 * A failure of the interaction or of the token store. A session of the server then fails with `McpSessionError`
 * reason `Unauthorized`, whose detail carries this message.
 *
 * @since 0.1.0
 */
export class McpAuthError extends Schema.TaggedError<McpAuthError>()("McpAuthError", {
  reason: Schema.Union([
    InteractionRequired,
    AuthorizationDenied,
    InteractionTimeout,
    StoreFailed,
    AssertionUnavailable
  ])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "InteractionRequired":
        return `MCP server "${r.server}" needs a user's authorization: provide an AuthInteraction ` +
          `(McpAuth.layer, NodeAuth.layerLoopback, or createBridge's onAuthorization)`
      case "AuthorizationDenied":
        return `authorization for MCP server "${r.server}" was denied: ${r.detail}`
      case "InteractionTimeout":
        return `authorization for MCP server "${r.server}" was not completed within ${r.timeoutMillis} ms`
      case "StoreFailed":
        return `token store of MCP server "${r.server}" failed: ${r.detail}`
      case "AssertionUnavailable":
        return `the workload identity assertion of MCP server "${r.server}" is unavailable (${r.source}): ${r.detail}`
    }
  }
}
