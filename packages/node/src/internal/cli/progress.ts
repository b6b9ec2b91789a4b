/**
 * The progress line on stderr while servers connect: `connecting 2/5... 1.2 s (waiting for github, slack)`.
 *
 * On a terminal it is one line, redrawn as servers answer and every quarter second (the elapsed time), and erased at
 * the end; elsewhere (a pipe, a file) it is one plain line per server that answered, unless `quietUnlessTty`.
 * Built on a forked ticker fiber in the caller's scope.
 *
 * @internal
 */
import { Clock, Effect, type Scope } from "effect"

/**
 * @internal
 */
export interface Progress {
  /** A server answered (or failed). */
  readonly done: (server: string) => Effect.Effect<void>
  /** Erases the line. */
  readonly end: Effect.Effect<void>
}

/**
 * @internal
 */
export interface Options {
  readonly servers: ReadonlyArray<string>
  readonly write: (text: string) => Effect.Effect<void>
  readonly isTty: boolean
  /** Print nothing when stderr is not a terminal (`--json`). */
  readonly quietUnlessTty: boolean
  /** Terminal width, to keep the line on one row. */
  readonly columns: number
}

const clearLine = "\r\x1b[2K"

/**
 * Starts the progress line; the ticker ends with the scope.
 *
 * @internal
 */
export const make = (options: Options): Effect.Effect<Progress, never, Scope.Scope> =>
  Effect.gen(function*() {
    const total = options.servers.length
    const pending = new Set(options.servers)
    const startedAt = yield* Clock.currentTimeMillis
    const silent = total === 0 || (!options.isTty && options.quietUnlessTty)
    let ended = false

    const line = (now: number) => {
      const waiting = [...pending]
      const elapsed = options.isTty ? ` ${((now - startedAt) / 1000).toFixed(1)} s` : ""
      const text = `connecting ${total - pending.size}/${total}...${elapsed}${
        waiting.length > 0 ? ` (waiting for ${waiting.join(", ")})` : ""
      }`
      const max = Math.max(20, options.columns - 1)
      return text.length <= max ? text : `${text.slice(0, max - 1)}…`
    }

    const draw = Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => ended || silent ? Effect.void : options.write(`${clearLine}${line(now)}`)
    )

    if (!silent) {
      if (options.isTty) {
        yield* draw
        yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep("250 millis"), draw)))
      } else {
        yield* options.write(`${line(startedAt)}\n`)
      }
    }

    return {
      done: (server) =>
        Effect.suspend(() => {
          pending.delete(server)
          if (silent || ended || pending.size === 0) return Effect.void
          return options.isTty
            ? draw
            : Effect.flatMap(Clock.currentTimeMillis, (now) => options.write(`${line(now)}\n`))
        }),
      end: Effect.suspend(() => {
        if (ended) return Effect.void
        ended = true
        return options.isTty && !silent ? options.write(clearLine) : Effect.void
      })
    }
  })
