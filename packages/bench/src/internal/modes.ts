/**
 * The common shape of a warm-call section: a few bridge variants ("modes") measured side by side in interleaved rounds
 * at each concurrency, one summary per (mode, concurrency) cell, and the cells' JSON for `.bench/results.json`.
 */
import { interleave, round3, summarize } from "./measure.ts"
import type { Call, Summary } from "./measure.ts"

/** What one variant at one concurrency measured. */
export interface Cell<Mode extends string> {
  readonly mode: Mode
  readonly concurrency: number
  readonly summary: Summary
  readonly firstError: string | undefined
}

/**
 * Measures every mode at each concurrency, interleaved, `total(concurrency)` calls per mode, after a warm-up of
 * `max(500, 20 × concurrency)` calls (at most `total`).
 */
export const measureModes = async <Mode extends string>(options: {
  readonly modes: ReadonlyArray<Mode>
  readonly concurrencies: ReadonlyArray<number>
  readonly rounds: number
  readonly total: (concurrency: number) => number
  readonly call: (mode: Mode) => Call
  readonly log: (line: string) => void
}): Promise<Array<Cell<Mode>>> => {
  const cells: Array<Cell<Mode>> = []
  for (const concurrency of options.concurrencies) {
    const total = options.total(concurrency)
    options.log(`  c=${concurrency}: ${total} calls per variant × ${options.modes.length} variants...`)
    const results = await interleave(
      options.modes.map((mode) => ({
        name: mode,
        total,
        warmup: Math.min(total, Math.max(500, concurrency * 20)),
        call: options.call(mode)
      })),
      { concurrency, rounds: options.rounds }
    )
    for (const mode of options.modes) {
      const samples = results.get(mode)!
      cells.push({ mode, concurrency, summary: summarize(samples), firstError: samples.firstError })
    }
  }
  return cells
}

/** The summary of `mode` at `concurrency`. */
export const summaryOf = <Mode extends string>(
  cells: ReadonlyArray<Cell<Mode>>,
  mode: Mode,
  concurrency: number
): Summary => cells.find((x) => x.mode === mode && x.concurrency === concurrency)!.summary

/** One line per cell that saw an error, to append to the section's markdown. */
export const errorLines = <Mode extends string>(cells: ReadonlyArray<Cell<Mode>>): Array<string> =>
  cells.filter((c) => c.firstError !== undefined).map((c) =>
    `\nerrors in ${c.mode} c=${c.concurrency}: ${c.firstError}`
  )

/** A cell for `.bench/results.json`. */
export const cellJson = <Mode extends string>(cell: Cell<Mode>) => ({
  mode: cell.mode,
  concurrency: cell.concurrency,
  calls: cell.summary.calls,
  errors: cell.summary.errors,
  p50Millis: round3(cell.summary.p50),
  p95Millis: round3(cell.summary.p95),
  callsPerSecond: Math.round(cell.summary.callsPerSecond)
})
