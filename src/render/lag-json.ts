// JSON forms of `ferrydiag lag`'s result: the document --json prints (oclif writes the returned
// LagResult, see src/collect/lag-result.ts for the documented shape) and one-line frames for --watch --json.

import type {LagAssessment} from '../model/lag-result.js'
import {wordLagResult} from './lag-wording.js'

/** One NDJSON line (the full LagResult of the sliding window), newline-terminated. */
export function renderLagJsonLine(result: LagAssessment): string {
  return `${JSON.stringify(wordLagResult(result))}\n`
}
