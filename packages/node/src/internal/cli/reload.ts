/**
 * `mcp-bridge serve` reloads its configuration file when it changes (watched through its directory, so that an
 * editor's write-and-rename counts too; events within `debounce` of each other make one reload) and on `SIGHUP`. Each
 * reload is one `Gateway.reload`, logged on stderr: what changed, what needs a restart, or why the new file was
 * refused (the previous configuration keeps serving), and when the servers it removed or replaced have drained.
 *
 * Built on a sliding `Queue` of one (a burst of triggers is one pending reload) taken by a scoped fiber; the watcher
 * and the signal handler are released with the scope.
 *
 * @internal
 */
import { Duration, Effect, type FileSystem, type Path, Queue, type Scope } from "effect"
import { watch } from "node:fs"
import { basename, dirname } from "node:path"
import type * as Gateway from "../../Gateway.ts"
import * as ConfigFile from "./configFile.ts"

/** @internal */
export interface Options {
  /** The configuration file, as given to `--config`. */
  readonly path: string
  /** The file's absolute path. */
  readonly file: string
  /** What the running process was started with, for settings only a restart applies (`redis`). */
  readonly started: { readonly redis?: unknown }
  readonly gateway: Gateway.Gateway.Service
  /** Writes lines to stderr (scrubbed of the configuration's secrets). */
  readonly log: (...lines: ReadonlyArray<string>) => Effect.Effect<void>
  /** @default 200 millis */
  readonly debounce?: Duration.Input | undefined
}

const list = (names: ReadonlyArray<string>) => names.length === 0 ? "none" : names.join(", ")

/** Watches the file and `SIGHUP`, reloading the gateway on each, until the scope closes. @internal */
export const watchAndReload = (
  options: Options
): Effect.Effect<void, never, Scope.Scope | FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const triggers = yield* Queue.sliding<"file" | "signal">(1)
    const name = basename(options.file)
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const watcher = watch(dirname(options.file), (_event, changed) => {
          if (changed === null || changed === name) Queue.offerUnsafe(triggers, "file")
        })
        // A directory that goes away ends the watching, not the gateway (SIGHUP still reloads).
        watcher.on("error", () => watcher.close())
        const onSignal = () => void Queue.offerUnsafe(triggers, "signal")
        process.on("SIGHUP", onSignal)
        return { watcher, onSignal }
      }),
      ({ onSignal, watcher }) =>
        Effect.sync(() => {
          watcher.close()
          process.off("SIGHUP", onSignal)
        })
    )
    const debounce = Duration.fromInputUnsafe(options.debounce ?? "200 millis")

    const reloadOnce = (why: "file" | "signal") =>
      Effect.gen(function*() {
        const read = yield* ConfigFile.read(options.path)
        const applied = yield* options.gateway.reload(read.served)
        const needsRestart = JSON.stringify(read.served.redis) === JSON.stringify(options.started.redis)
          ? applied.needsRestart
          : [...applied.needsRestart, "redis"]
        yield* options.log(
          `mcp-bridge: reloaded ${options.file} (${why === "signal" ? "SIGHUP" : "file changed"}): added ${
            list(applied.added)
          }; removed ${list(applied.removed)}; changed ${list(applied.changed)}; ${applied.unchanged.length} unchanged`
        )
        if (needsRestart.length > 0) {
          yield* options.log(
            `mcp-bridge: ${needsRestart.join(", ")} changed: needs a restart (kept as started until then)`
          )
        }
        const gone = [...applied.removed, ...applied.changed]
        if (gone.length > 0) {
          yield* Effect.forkScoped(
            Effect.andThen(applied.drained, options.log(`mcp-bridge: drained ${gone.join(", ")}`))
          )
        }
      }).pipe(
        Effect.catchTags({
          BridgeConfigError: (error) =>
            options.log(
              `mcp-bridge: reload refused, still serving the previous configuration: BridgeConfigError: ${
                error.reason._tag === "Invalid" ? `${options.file}: ` : ""
              }${error.message}`
            ),
          GatewayError: (error) =>
            options.log(
              `mcp-bridge: reload refused, still serving the previous configuration: GatewayError: ${error.message}`
            )
        })
      )

    yield* Effect.forkScoped(Effect.forever(
      Effect.gen(function*() {
        const why = yield* Queue.take(triggers)
        // A save is often several events (truncate, write, rename): wait for them to settle, then reload once.
        if (why === "file") yield* Effect.sleep(debounce)
        const more = yield* Queue.clear(triggers)
        yield* reloadOnce(more.includes("signal") ? "signal" : why)
      })
    ))
  })
