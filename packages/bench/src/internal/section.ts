/**
 * The shape of a bench section: a function that measures its variants in interleaved rounds and returns a markdown
 * table plus the JSON that goes in `.bench/results.json`.
 */

export interface Context {
  readonly quick: boolean
  /** measured rounds per cell */
  readonly rounds: number
  readonly log: (line: string) => void
}

export interface SectionResult {
  readonly title: string
  readonly markdown: string
  readonly json: unknown
}

export type Section = (context: Context) => Promise<SectionResult>
