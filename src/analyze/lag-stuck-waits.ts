// When `lag` looks for stuck waits, and which of stacks' findings it keeps as evidence: pure functions
// over the lag report and a stacks dump's findings.
import type {Finding} from '../model/findings.js'
import type {LagReport} from '../model/lag-report.js'

/**
 * True when the window ended with nothing moving: the verdict is stuck, or (short of healthy or idle,
 * which rest on evidence of flow) the pipeline has stages and none of them handled an item in the window.
 * A healthy or idle pipeline never qualifies, so it never pays for a heap snapshot.
 */
export function nothingMoved(report: Pick<LagReport, 'verdict' | 'stages'>): boolean {
  if (report.verdict === 'stuck') return true
  if (report.verdict === 'healthy' || report.verdict === 'idle') return false
  return report.stages.length > 0 && report.stages.every((stage) => stage.itemsHandled === 0)
}

/**
 * The waits stacks' analysis found that cannot complete: its error findings, in its order (root causes
 * first). Warnings (a long wait that may still resolve, a slow sink) and the not-measured marker are not
 * evidence of a stuck pipeline.
 */
export function stuckWaitFindings(findings: readonly Finding[]): Finding[] {
  return findings.filter((finding) => finding.severity === 'error' && finding.kind !== 'not-measured')
}

/**
 * How long a wait must have lasted for stacks' analysis to call it stuck, given how long lag saw nothing
 * move: stacks' own threshold, lowered to what the window showed (the window is the evidence that
 * nothing moved), never below `floorMs`.
 */
export function stuckAfterForWindow(defaultMs: number, windowMs: number, floorMs = 1000): number {
  return Math.max(floorMs, Math.min(defaultMs, windowMs))
}
