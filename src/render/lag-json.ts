// JSON forms of `ferrydiag lag`'s result: the document --json prints (oclif writes the returned
// LagResult, see src/collect/lag-result.ts for the documented shape) and one-line frames for --watch --json.

import type {LagResult} from '../model/lag-result.js'

/** One NDJSON line (the full LagResult of the sliding window), newline-terminated. */
export function renderLagJsonLine(result: LagResult): string {
  return `${JSON.stringify(result)}\n`
}
