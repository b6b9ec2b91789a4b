/**
 * Timing, percentiles, load generation and table formatting shared by the bench sections and the demo.
 *
 * Latencies are milliseconds from `performance.now()`.
 */

/** What one measured cell (a variant at a concurrency) produced. */
export interface Samples {
  /** latency of every completed call, ms */
  readonly latencies: Array<number>
  /** wall time of the measured chunks, summed, ms */
  wallMillis: number
  /** calls that threw or answered `isError` */
  errors: number
  /** the first error seen, for the report */
  firstError: string | undefined
}

/** The summary of a cell. */
export interface Summary {
  readonly calls: number
  readonly errors: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly mean: number
  readonly min: number
  readonly max: number
  /** completed calls / wall time */
  readonly callsPerSecond: number
  readonly wallMillis: number
}

export const emptySamples = (): Samples => ({ latencies: [], wallMillis: 0, errors: 0, firstError: undefined })

/** Percentile by linear interpolation between closest ranks; `sorted` ascending, `p` in 0..100. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number => {
  if (sorted.length === 0) return Number.NaN
  const rank = (p / 100) * (sorted.length - 1)
  const lo = Math.floor(rank)
  const hi = Math.ceil(rank)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo)
}

/** The median of `xs`, non-finite values left out (`NaN` when none is left). */
export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const summarize = (samples: Samples): Summary => {
  const sorted = [...samples.latencies].sort((a, b) => a - b)
  const sum = sorted.reduce((acc, x) => acc + x, 0)
  return {
    calls: sorted.length,
    errors: samples.errors,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    mean: sorted.length > 0 ? sum / sorted.length : Number.NaN,
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
    callsPerSecond: samples.wallMillis > 0 ? (sorted.length / samples.wallMillis) * 1000 : Number.NaN,
    wallMillis: samples.wallMillis
  }
}

/** Decimals that give 3 significant digits, but never finer than a microsecond (0.001 ms). */
const millisDecimals = (ms: number): number =>
  ms === 0 ? 0 : Math.min(3, Math.max(0, 2 - Math.floor(Math.log10(Math.abs(ms)))))

/** Rounds milliseconds to 3 significant digits, µs precision at most (for JSON). */
export const round3 = (ms: number): number => Number.isFinite(ms) ? Number(ms.toFixed(millisDecimals(ms))) : ms

/** A millisecond value for a table: 3 significant digits, µs precision at most. */
export const formatMillis = (ms: number): string => Number.isFinite(ms) ? ms.toFixed(millisDecimals(ms)) : "–"

/** A rate or count: 3 significant digits below 100, whole numbers with thousands separators above. */
export const formatRate = (x: number): string => {
  if (!Number.isFinite(x)) return "–"
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString("en-US")
  return x.toPrecision(3)
}

export const formatRatio = (x: number): string => Number.isFinite(x) ? `${formatRate(x)}×` : "–"

/** A millisecond value in µs, one decimal (no sign, no unit). */
export const micros = (ms: number): string => Number.isFinite(ms) ? (ms * 1000).toFixed(1) : "–"

export const formatMicros = (ms: number): string => {
  if (!Number.isFinite(ms)) return "–"
  const us = ms * 1000
  return `${us >= 0 ? "+" : ""}${Math.abs(us) >= 100 ? Math.round(us).toLocaleString("en-US") : us.toPrecision(3)} µs`
}

/** A markdown table; numeric-looking columns are right-aligned. */
export const markdownTable = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  align: ReadonlyArray<"left" | "right"> = []
): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)))
  const pad = (cell: string, i: number) => align[i] === "right" ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map((c, i) => pad(c, i)).join(" | ")} |`
  const rule = `|${widths.map((w, i) => align[i] === "right" ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2)).join("|")}|`
  return [line(headers), rule, ...rows.map(line)].join("\n")
}

/** One call of a workload: resolves when done; a thrown error or `false` counts as an error. */
export type Call = (index: number) => Promise<boolean | void>

const describeError = (error: unknown): string => {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return text.split("\n")[0]!.slice(0, 200)
}

/**
 * Runs `total` calls with `concurrency` workers, each calling in a loop until the total is reached, and adds each
 * call's latency and the wall time to `into` (when given).
 */
export const runLoad = async (
  options: { readonly total: number; readonly concurrency: number; readonly call: Call },
  into?: Samples
): Promise<Samples> => {
  const out = into ?? emptySamples()
  let next = 0
  const worker = async () => {
    while (next < options.total) {
      const index = next++
      const started = performance.now()
      try {
        const ok = await options.call(index)
        out.latencies.push(performance.now() - started)
        if (ok === false) {
          out.errors++
          out.firstError ??= "isError result"
        }
      } catch (error) {
        out.errors++
        out.firstError ??= describeError(error)
      }
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: Math.min(options.concurrency, options.total) }, worker))
  out.wallMillis += performance.now() - started
  return out
}

/** A variant measured in interleaved rounds. */
export interface Variant {
  readonly name: string
  /** calls measured in total, over every round */
  readonly total: number
  /** calls run before the first measured round (not recorded) */
  readonly warmup: number
  readonly call: Call
}

/**
 * Measures several variants at one concurrency in `rounds` interleaved rounds (round 1: A, B, C; round 2: B, C, A;
 * ...), pooling each variant's samples, so that every variant sees the same machine conditions. A variant whose
 * total is too small to give every worker a call in each round runs in fewer rounds.
 */
export const interleave = async (
  variants: ReadonlyArray<Variant>,
  options: { readonly concurrency: number; readonly rounds: number }
): Promise<Map<string, Samples>> => {
  const results = new Map<string, Samples>(variants.map((v) => [v.name, emptySamples()]))
  for (const v of variants) {
    if (v.warmup > 0) await runLoad({ total: v.warmup, concurrency: options.concurrency, call: v.call })
  }
  const plan = variants.map((v) => {
    const rounds = Math.max(1, Math.min(options.rounds, Math.floor(v.total / options.concurrency)))
    const sizes = Array.from(
      { length: rounds },
      (_, i) => Math.floor(v.total / rounds) + (i < v.total % rounds ? 1 : 0)
    )
    return { variant: v, sizes }
  })
  for (let round = 0; round < options.rounds; round++) {
    for (let k = 0; k < plan.length; k++) {
      const { sizes, variant } = plan[(k + round) % plan.length]!
      const size = sizes[round]
      if (size === undefined || size === 0) continue
      await runLoad({ total: size, concurrency: options.concurrency, call: variant.call }, results.get(variant.name))
    }
  }
  return results
}

/** `performance.now()` around a promise. */
export const timed = async <A>(f: () => Promise<A>): Promise<{ value: A; millis: number }> => {
  const started = performance.now()
  const value = await f()
  return { value, millis: performance.now() - started }
}
