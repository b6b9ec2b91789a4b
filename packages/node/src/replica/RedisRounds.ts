/**
 * The gateway's bridged rounds across replicas: a 2026-07-28 client's retry of an `input_required` round the gateway
 * made of a 2025-era upstream's request names a call parked in the replica that made the round (its upstream call is
 * in flight there and cannot move). A retry that reaches another replica is forwarded to that one over Redis pub/sub,
 * answered there as if it had come there, and the answer (the call's result, its next round, or its JSON-RPC error)
 * comes back to the replica the client waits on.
 *
 * Each replica listens on a channel of its own (`<prefix>rounds:<replica>`). `PUBLISH` says how many listened: none,
 * and the replica that held the call is gone (its call with it), so the retry is refused with -32602 at once. The
 * replica that works on a forwarded retry says so every `heartbeat`; a forwarder that hears nothing for three of them
 * gives up with -32603, and a client that cancels cancels the forwarded retry too.
 *
 * Built on Effect's `Redis` service for `PUBLISH` and a dedicated node-redis subscriber (`NodeRedis`), as
 * `RedisEventBus`.
 *
 * @since 0.1.0
 */
import type * as NodeRedis from "@effect/platform-node/NodeRedis"
import { ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/server"
import { Duration, Effect, Scope } from "effect"
import { Redis } from "effect/persistence"
import { randomUUID } from "node:crypto"
import * as Subscriber from "./internal/subscriber.ts"

/**
 * A retry as it travels: the round's sealed `requestState`, the caller and what the round is bound to, and the
 * client's answers.
 *
 * @since 0.1.0
 */
export interface Retry {
  readonly requestState: string
  readonly principal: string | undefined
  readonly tool: string
  readonly inputResponses: Readonly<Record<string, unknown>> | undefined
}

/**
 * Forwarding between replicas.
 *
 * @since 0.1.0
 */
export interface RedisRounds {
  /** This replica's name, sealed into the states of the rounds it parks. */
  readonly replica: string
  /** Whether this replica hears its channel (retries forwarded here, answers to its own). */
  readonly ready: () => boolean
  /** Sends `retry` to `replica` and resolves with its answer; `signal` (the client's request) cancels it there too. */
  readonly forward: (replica: string, retry: Retry, signal: AbortSignal) => Promise<unknown>
  /** Answers the retries other replicas forward here (the last handler set answers). */
  readonly serve: (handler: (retry: Retry, signal: AbortSignal) => Promise<unknown>) => void
}

/**
 * Options of `make`.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Prefix of the channels. @default "mcpgw:" */
  readonly prefix?: string | undefined
  /** How often a replica working on a forwarded retry says so. @default "5 seconds" */
  readonly heartbeat?: Duration.Input | undefined
}

type Message =
  | { readonly t: "retry"; readonly id: string; readonly from: string; readonly retry: Retry }
  | { readonly t: "cancel"; readonly id: string }
  | { readonly t: "alive"; readonly id: string }
  | { readonly t: "done"; readonly id: string; readonly result: unknown }
  | {
    readonly t: "failed"
    readonly id: string
    readonly code: number
    readonly message: string
    readonly data?: unknown
  }

const parse = (raw: string): Message | undefined => {
  try {
    const value = JSON.parse(raw) as Message
    return typeof value === "object" && value !== null && typeof value.t === "string" && typeof value.id === "string"
      ? value
      : undefined
  } catch {
    return undefined
  }
}

const refused = (why: string) => new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid requestState: ${why}`)

/**
 * Forwarding over the `Redis` and `NodeRedis` services of the context, its subscriber in the current scope.
 *
 * @since 0.1.0
 */
export const make = (
  options: Options = {}
): Effect.Effect<RedisRounds, never, Redis.Redis | NodeRedis.NodeRedis | Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const prefix = options.prefix ?? "mcpgw:"
    const heartbeat = Duration.toMillis(Duration.fromInputUnsafe(options.heartbeat ?? "5 seconds"))
    const replica = randomUUID()
    const channelOf = (name: string) => `${prefix}rounds:${name}`
    const run = Effect.runPromiseWith(yield* Effect.context<never>())
    // How many replicas listened (0: none).
    const publish = (to: string, message: Message): Promise<number> =>
      run(
        redis.send<number>("PUBLISH", channelOf(to), JSON.stringify(message)).pipe(
          Effect.timeout("2 seconds"),
          Effect.orElseSucceed(() => -1)
        )
      )

    // Retries this replica forwarded, waiting for their answers.
    interface Waiting {
      readonly settle: (message: Message) => void
    }
    const waiting = new Map<string, Waiting>()
    // Retries other replicas forwarded here, in progress, and their heartbeats.
    const working = new Map<
      string,
      { readonly abort: AbortController; readonly alive: ReturnType<typeof setInterval> }
    >()
    let handler: ((retry: Retry, signal: AbortSignal) => Promise<unknown>) | undefined

    const work = (id: string, from: string, retry: Retry) => {
      const abort = new AbortController()
      const alive = setInterval(() => void publish(from, { t: "alive", id }), heartbeat)
      working.set(id, { abort, alive })
      const answered = handler === undefined
        ? Promise.reject(refused("its call ended or expired"))
        : handler(retry, abort.signal)
      answered.then(
        (result) => publish(from, { t: "done", id, result }),
        (error: unknown) =>
          publish(
            from,
            error instanceof ProtocolError
              ? { t: "failed", id, code: error.code, message: error.message, data: error.data }
              : {
                t: "failed",
                id,
                code: ProtocolErrorCode.InternalError,
                message: error instanceof Error ? error.message : String(error)
              }
          )
      ).finally(() => {
        clearInterval(alive)
        working.delete(id)
      })
    }

    const onMessage = (raw: string) => {
      const message = parse(raw)
      if (message === undefined) return
      if (message.t === "retry") return work(message.id, message.from, message.retry)
      if (message.t === "cancel") {
        return working.get(message.id)?.abort.abort(new Error("the client cancelled the request"))
      }
      waiting.get(message.id)?.settle(message)
    }

    const subscriber = yield* Subscriber.subscribe(channelOf(replica), onMessage)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const { abort, alive } of working.values()) {
          clearInterval(alive)
          abort.abort(new Error("the replica is stopping"))
        }
        working.clear()
      })
    )

    const forward: RedisRounds["forward"] = (to, retry, signal) =>
      new Promise<unknown>((resolve, reject) => {
        const id = randomUUID()
        let quiet: ReturnType<typeof setTimeout> | undefined
        const finish = () => {
          waiting.delete(id)
          if (quiet !== undefined) clearTimeout(quiet)
          signal.removeEventListener("abort", onAbort)
        }
        // Silence for three heartbeats: the replica that took the retry is gone.
        const listen = () => {
          if (quiet !== undefined) clearTimeout(quiet)
          quiet = setTimeout(() => {
            finish()
            reject(
              new ProtocolError(ProtocolErrorCode.InternalError, "the replica that holds the call stopped answering")
            )
          }, heartbeat * 3)
        }
        const onAbort = () => {
          finish()
          void publish(to, { t: "cancel", id })
          reject(signal.reason)
        }
        if (signal.aborted) return reject(signal.reason)
        signal.addEventListener("abort", onAbort, { once: true })
        waiting.set(id, {
          settle: (message) => {
            if (message.t === "alive") return listen()
            finish()
            if (message.t === "done") resolve(message.result)
            else if (message.t === "failed") reject(new ProtocolError(message.code, message.message, message.data))
          }
        })
        listen()
        publish(to, { t: "retry", id, from: replica, retry }).then((listeners) => {
          if (listeners > 0 || !waiting.has(id)) return
          finish()
          reject(
            listeners === 0
              ? refused("its call ended (the replica that held it is gone)")
              : new ProtocolError(ProtocolErrorCode.InternalError, "the replica that holds the call cannot be reached")
          )
        })
      })

    return {
      replica,
      ready: subscriber.subscribed,
      forward,
      serve: (answer) => void (handler = answer)
    } satisfies RedisRounds
  })
