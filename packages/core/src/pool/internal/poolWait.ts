/**
 * How a caller waits for a session when none is free: in `Pool`'s own FIFO queue, bounded by `acquireTimeout` and by
 * the call's overall deadline (`PoolTimeout`, which says whether sessions were busy or being opened, or
 * `DeadlineExceeded` phase `queue`/`connect`); a wait for a pool's first session is bounded by its connect instead.
 * The bound is on the wait only: once a session is leased, the timer's side never completes. And the growth rule's
 * wait for a lease to end (see `ConnectionPool`).
 *
 * @internal
 */
import { Clock, Deferred, Duration, Effect, Exit, Pool } from "effect"
import type { ResolvedServer } from "../../config/BridgeConfig.ts"
import { ConnectionPoolError, PoolTimeout } from "../../errors/ConnectionPoolError.ts"
import { deadlineExceeded, type McpBridgeError } from "../../errors/McpBridgeError.ts"
import type { McpSessionError } from "../../errors/McpSessionError.ts"
import * as Metrics from "../../internal/metrics.ts"
import type { CallRequest } from "../../pipeline/ToolCaller.ts"
import type { McpSession } from "../../session/McpSession.ts"

// Made only when a traced call has to wait (a slow path already).
const waitSpanOptions = (server: string) => ({
  kind: "internal" as const,
  attributes: { [Metrics.Attr.server]: server }
})

/** Waits for a session of `pool` and runs `run` on it. @internal */
export const waitThenUse = <A, E, R>(
  server: ResolvedServer,
  pool: Pool.Pool<McpSession, McpSessionError>,
  run: (session: McpSession) => Effect.Effect<A, E, R>,
  call: CallRequest | undefined,
  counts: {
    readonly open: () => number
    readonly connecting: () => number
    /** When the wait last made progress: a queue ahead of it moved, or its session started opening. */
    readonly movedAt: () => number
    /** The server's total cap over identities, when it has one. */
    readonly cap?: (() => { readonly cap: number; readonly held: number; readonly waiting: number }) | undefined
  }
): Effect.Effect<A, E | McpSessionError | ConnectionPoolError | McpBridgeError, R> =>
  Effect.withFiber((fiber) => {
    const clock = fiber.getRef(Clock.Clock)
    const start = clock.currentTimeMillisUnsafe()
    // With no session open yet, the wait is for a connect, which `connectTimeout` bounds (its failure is what the
    // caller then gets): a cold `npx -y` server may take longer to start than a free session takes to come.
    const acquireMillis = counts.open() === 0
      ? Math.max(Duration.toMillis(server.pool.acquireTimeout), Duration.toMillis(server.connectTimeout) + 1_000)
      : Duration.toMillis(server.pool.acquireTimeout)
    const deadlineAt = call === undefined ? Infinity : call.deadlineAt
    let leased = false
    // The wait is bounded by the call's deadline, and by `acquireMillis` without progress: a caller queued behind
    // other identities' cold starts under the total cap waits while the queue moves, not a fixed time from arrival.
    const timeout: Effect.Effect<never, ConnectionPoolError | McpBridgeError> = Effect.suspend(() => {
      const now = clock.currentTimeMillisUnsafe()
      const poolAt = Math.max(start, counts.movedAt()) + acquireMillis
      const at = Math.min(poolAt, deadlineAt)
      if (now < at) return Effect.andThen(Effect.sleep(Duration.millis(at - now)), timeout)
      if (leased) return Effect.never
      const connecting = counts.connecting()
      if (deadlineAt <= poolAt) {
        return Effect.fail(
          deadlineExceeded(server.name, call!.tool, call!.deadlineMillis, connecting > 0 ? "connect" : "queue")
        )
      }
      const cap = counts.cap?.()
      return Effect.fail(
        new ConnectionPoolError({
          reason: new PoolTimeout({
            server: server.name,
            max: server.pool.max,
            concurrency: server.pool.concurrency,
            waitedMillis: now - start,
            open: counts.open(),
            connecting,
            ...(cap !== undefined && cap.held >= cap.cap ? { maxTotal: cap.cap, queued: cap.waiting } : {})
          })
        })
      )
    })
    const traced = call?.traced === "wire"
    if (!traced) {
      return Effect.raceFirst(
        Pool.use(pool, (session) => {
          leased = true
          return run(session)
        }),
        timeout
      )
    }
    return Effect.flatMap(Effect.makeSpan("mcp_bridge.session.wait", waitSpanOptions(server.name)), (wait) =>
      Effect.raceFirst(
        Pool.use(pool, (session) => {
          leased = true
          wait.end(clock.currentTimeNanosUnsafe(), Exit.void)
          return run(session)
        }),
        timeout
      ).pipe(Effect.onExit((exit) =>
        Effect.sync(() => leased || wait.end(clock.currentTimeNanosUnsafe(), exit))
      )))
  })

/** Completes when a lease of the pool ends (one of `waiters` is called), or after `millis`. @internal */
export const releaseOrAfter = (waiters: Array<() => void>, millis: number): Effect.Effect<void> =>
  Effect.suspend(() => {
    const released = Deferred.makeUnsafe<void>()
    const wake = () => Deferred.doneUnsafe(released, Exit.void)
    waiters.push(wake)
    return Effect.raceFirst(Deferred.await(released), Effect.sleep(Duration.millis(millis))).pipe(
      Effect.ensuring(Effect.sync(() => {
        const i = waiters.indexOf(wake)
        if (i >= 0) waiters.splice(i, 1)
      }))
    )
  })
