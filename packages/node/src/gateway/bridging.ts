/**
 * Calls (and `prompts/get`, `resources/read`) of 2026-07-28 downstream clients whose upstream asks with 2025-era
 * requests (elicitation, sampling, roots):
 * the eras bridged with the gateway's own `input_required` rounds. The upstream's request is parked, the call goes on
 * upstream, and the downstream request is answered with an `input_required` result carrying the parked requests and
 * a `requestState` of the gateway's own, sealed with AES-256-GCM under a key of this process (it names the parked
 * call, its caller and tool; a state that does not open, or names another caller or tool, is refused with -32602).
 * The client's retry hands its `inputResponses` to the upstream's requests, and is answered with the call's result,
 * or with the next round.
 *
 * A parked call lives in the process that parked it, for as long as its upstream call (its deadline) and at most
 * `maxIdle` between rounds; a retry that finds none (expired) is refused with -32602. Replicas seal with keys they
 * share and name the replica in the state: a retry that reaches another replica is `Remote`, for the gateway to
 * forward to the one that holds the call (see `RedisRounds`).
 * A state that is not the gateway's (a 2026-07-28 upstream's own) is not touched: the retry goes upstream.
 *
 * @internal
 */
import type { ClientCapabilities, InputRequest, InputRequiredResult } from "@modelcontextprotocol/server"
import { ProtocolError, ProtocolErrorCode } from "@modelcontextprotocol/server"
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto"
import type { Target } from "./relay.ts"

const PREFIX = "mcp-bridge.r1."
const NONCE = 12
const TAG = 16

interface Ask {
  readonly request: InputRequest
  readonly resolve: (value: unknown) => void
  readonly reject: (error: Error) => void
}

type Outcome =
  | { readonly _tag: "Done"; readonly result: unknown }
  | { readonly _tag: "Failed"; readonly error: unknown }

/** One downstream call whose upstream may ask: parked between rounds. @internal */
export interface Call {
  /** What the relay gives the upstream's requests during the call. */
  readonly target: (capabilities: ClientCapabilities, log: Target["log"]) => Target
  /** Aborted when the call is abandoned (no retry in time) or cancelled by its client. */
  readonly signal: AbortSignal
  /** Hands the call's outcome (its result, or a 2026-07-28 upstream's own `input_required`) to the rounds. */
  readonly settle: (call: Promise<unknown>) => void
}

/** A retry whose call another replica holds. @internal */
export interface Remote {
  readonly _tag: "Remote"
  readonly replica: string
}

/** How the states are sealed: keys shared by the replicas (the first seals), and this replica's name. @internal */
export interface Options {
  readonly keys?: ReadonlyArray<Uint8Array> | undefined
  readonly replica?: string | undefined
}

/** The parked calls of a gateway (every view: `tool` names the view too). @internal */
export interface Bridging {
  /**
   * A new call of `principal` to `tool` (a served tool's name; `prompts/get <name>` or `resources/read <uri>` for the
   * other requests bridged the same way).
   */
  readonly start: (principal: string | undefined, tool: string) => Call
  /**
   * The parked call a retry's `requestState` names, its answers handed over: `undefined` when the state is not the
   * gateway's, `Remote` when another replica holds the call. Throws -32602 for a state of the gateway's that does not
   * open, names another caller or tool, or whose call is gone.
   */
  readonly resume: (
    requestState: string,
    principal: string | undefined,
    tool: string,
    inputResponses: Readonly<Record<string, unknown>> | undefined
  ) => Call | Remote | undefined
  /** The call's result, or the next round when its upstream asked first; `signal` (the downstream request's) ends it. */
  readonly next: <R>(call: Call, signal: AbortSignal) => Promise<R | InputRequiredResult>
  /** Ends every call (the gateway stops): their upstream calls are cancelled, their states open no more. */
  readonly close: () => void
}

interface State {
  readonly call: Call
  /** Given when the call is first parked. */
  id: string
  readonly principal: string | undefined
  readonly tool: string
  readonly abort: AbortController
  readonly asks: Map<string, Ask>
  count: number
  outcome: Outcome | undefined
  wake: (() => void) | undefined
  idle: ReturnType<typeof setTimeout> | undefined
}

/** A new registry; parked calls idle at most `maxIdleMillis` between rounds. @internal */
export const make = (maxIdleMillis: number, options: Options = {}): Bridging => {
  const keys = options.keys !== undefined && options.keys.length > 0 ? options.keys : [randomBytes(32)]
  const replica = options.replica ?? null
  const parked = new Map<string, State>()
  const states = new WeakMap<Call, State>()
  // The calls not settled yet (parked or running): `close` ends them.
  const live = new Set<State>()

  const seal = (state: State): string => {
    const nonce = randomBytes(NONCE)
    const cipher = createCipheriv("aes-256-gcm", keys[0]!, nonce)
    const plain = Buffer.from(JSON.stringify([state.id, state.principal ?? null, state.tool, replica]))
    return PREFIX +
      Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]).toString("base64url")
  }

  type Sealed = [id: string, principal: string | null, tool: string, replica: string | null]
  const openWith = (key: Uint8Array, body: Buffer): Sealed | undefined => {
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, body.subarray(0, NONCE))
      decipher.setAuthTag(body.subarray(body.length - TAG))
      const plain = Buffer.concat([decipher.update(body.subarray(NONCE, body.length - TAG)), decipher.final()])
      const parts = JSON.parse(plain.toString("utf8")) as unknown
      return Array.isArray(parts) && parts.length === 4 ? parts as Sealed : undefined
    } catch {
      return undefined
    }
  }
  const open = (text: string): Sealed | undefined => {
    const body = Buffer.from(text.slice(PREFIX.length), "base64url")
    if (body.length < NONCE + TAG) return undefined
    for (const key of keys) {
      const opened = openWith(key, body)
      if (opened !== undefined) return opened
    }
    return undefined
  }

  const refused = (why: string) => new ProtocolError(ProtocolErrorCode.InvalidParams, `Invalid requestState: ${why}`)

  const forget = (state: State) => {
    parked.delete(state.id)
    if (state.idle !== undefined) clearTimeout(state.idle)
    state.idle = undefined
  }

  const abandon = (state: State, why: string) => {
    forget(state)
    const error = new Error(why)
    for (const ask of state.asks.values()) ask.reject(error)
    state.asks.clear()
    state.abort.abort(error)
  }

  const start = (principal: string | undefined, tool: string): Call => {
    const abort = new AbortController()
    let state!: State
    const call: Call = {
      signal: abort.signal,
      target: (capabilities, log) => {
        const ask = (request: InputRequest, signal: AbortSignal) =>
          new Promise<unknown>((resolve, reject) => {
            if (signal.aborted) return reject(signal.reason)
            const name = `${request.method.replace(/\W/g, "_")}_${++state.count}`
            const onAbort = () => {
              state.asks.delete(name)
              reject(signal.reason)
            }
            signal.addEventListener("abort", onAbort, { once: true })
            state.asks.set(name, {
              request,
              resolve: (value) => {
                signal.removeEventListener("abort", onAbort)
                resolve(value)
              },
              reject: (error) => {
                signal.removeEventListener("abort", onAbort)
                reject(error)
              }
            })
            state.wake?.()
          })
        return {
          capabilities,
          elicit: (params, signal) =>
            ask({ method: "elicitation/create", params } as InputRequest, signal) as ReturnType<Target["elicit"]>,
          sample: (params, signal) =>
            ask({ method: "sampling/createMessage", params } as InputRequest, signal) as ReturnType<Target["sample"]>,
          listRoots: (signal) =>
            ask({ method: "roots/list", params: {} } as InputRequest, signal) as ReturnType<Target["listRoots"]>,
          log
        }
      },
      settle: (promise) => {
        promise.then(
          (result) => (state.outcome = { _tag: "Done", result }),
          (error: unknown) => (state.outcome = { _tag: "Failed", error })
        ).finally(() => {
          forget(state)
          live.delete(state)
          state.wake?.()
        })
      }
    }
    state = {
      call,
      id: "",
      principal,
      tool,
      abort,
      asks: new Map(),
      count: 0,
      outcome: undefined,
      wake: undefined,
      idle: undefined
    }
    states.set(call, state)
    live.add(state)
    return call
  }

  const resume: Bridging["resume"] = (requestState, principal, tool, inputResponses) => {
    if (!requestState.startsWith(PREFIX)) return undefined
    const opened = open(requestState)
    if (opened === undefined) throw refused("it failed verification")
    const [id, owner, named, holder] = opened
    if (owner !== (principal ?? null) || named !== tool) throw refused("it belongs to another caller or tool")
    if (holder !== replica && holder !== null) return { _tag: "Remote", replica: holder }
    const state = parked.get(id)
    if (state === undefined) throw refused("its call ended or expired")
    // One retry per round: the same state sent again meanwhile finds nothing (the next round parks it again).
    forget(state)
    for (const [name, value] of Object.entries(inputResponses ?? {})) {
      const ask = state.asks.get(name)
      if (ask === undefined) continue
      state.asks.delete(name)
      ask.resolve(value)
    }
    return state.call
  }

  const next = <R>(call: Call, signal: AbortSignal) => {
    const state = states.get(call)!
    return new Promise<R | InputRequiredResult>((resolve, reject) => {
      let timer: ReturnType<typeof setImmediate> | undefined
      const finish = () => {
        state.wake = undefined
        signal.removeEventListener("abort", onAbort)
        if (timer !== undefined) clearImmediate(timer)
      }
      const onAbort = () => {
        finish()
        abandon(state, "the downstream client cancelled the call")
        reject(signal.reason)
      }
      const check = () => {
        const outcome = state.outcome
        if (outcome !== undefined) {
          finish()
          return outcome._tag === "Done" ? resolve(outcome.result as R) : reject(outcome.error)
        }
        // Requests the upstream sends at once go in one round: answered on the next turn of the event loop.
        if (state.asks.size > 0 && timer === undefined) {
          timer = setImmediate(() => {
            timer = undefined
            if (state.outcome !== undefined || state.asks.size === 0) return check()
            finish()
            if (state.id === "") state.id = randomBytes(16).toString("base64url")
            parked.set(state.id, state)
            state.idle = setTimeout(() => abandon(state, "the client did not answer in time"), maxIdleMillis)
            state.idle.unref?.()
            const inputRequests: Record<string, InputRequest> = {}
            for (const [name, ask] of state.asks) inputRequests[name] = ask.request
            resolve({ resultType: "input_required", inputRequests, requestState: seal(state) })
          })
        }
      }
      if (signal.aborted) return onAbort()
      signal.addEventListener("abort", onAbort, { once: true })
      state.wake = check
      check()
    })
  }

  const close = () => {
    for (const state of live) abandon(state, "the gateway is stopping")
    live.clear()
  }

  return { start, resume, next, close }
}

/** A retry another replica forwards here: what `resume` takes. @internal */
export interface Forwarded {
  readonly requestState: string
  readonly principal: string | undefined
  readonly tool: string
  readonly inputResponses: Readonly<Record<string, unknown>> | undefined
}

/** Answers a retry forwarded by another replica: the call's result or next round, as for one that came here. @internal */
export const answer = <R>(bridging: Bridging, retry: Forwarded, signal: AbortSignal) => {
  const call = bridging.resume(retry.requestState, retry.principal, retry.tool, retry.inputResponses)
  if (call === undefined || "_tag" in call) {
    throw new ProtocolError(ProtocolErrorCode.InvalidParams, "Invalid requestState: its call ended or expired")
  }
  return bridging.next<R>(call, signal)
}
