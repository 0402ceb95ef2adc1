// What `lag` adds to a stuck verdict when nothing moved in its window: the error findings of `stacks`'
// analysis (the waits that cannot complete, with their await sites), read from the agent's own records
// or from a heap snapshot, and why they are missing when they could not be read.
import type {Finding} from './findings.js'
import type {HeapCostFigures} from './heap-cost.js'

/** The estimate shown before lag's heap snapshot: the cost figures and the heap they were computed for. */
export interface HeapCostEstimate extends HeapCostFigures {
  usedHeapBytes: number
}

/**
 * read: `findings` are what stacks' analysis concluded from `route`;
 * not-confirmed: a heap snapshot was needed but not accepted (no --heap --yes outside a terminal, or
 *   declined at the terminal): nothing was taken;
 * refused: the estimate is above the --heap-max ceiling or the host's available memory (`problem` says
 *   which): nothing was taken;
 * failed: reading failed (the target went away, the snapshot timed out: `problem`).
 */
export type StuckWaitsState = 'read' | 'not-confirmed' | 'refused' | 'failed'

/**
 * agent-records: the agent's own records (a ferrydiag/runtime pipeline) named the stuck tasks, no heap
 * snapshot was taken; heap-snapshot: a V8 heap snapshot (merged with the agent's records when there are
 * any); none: nothing was read.
 */
export type StuckWaitsRoute = 'agent-records' | 'heap-snapshot' | 'none'

export interface LagStuckWaits {
  route: StuckWaitsRoute
  state: StuckWaitsState
  /**
   * Error findings of the stacks analysis (kinds such as never-resumes, uninitialized-channel-send,
   * stalled-stream-write, deadlock; the same shape as `stacks --json` findings), each with its await sites
   * in evidence.sites ("file:line:col", innermost first). Empty unless state is read.
   */
  findings: Finding[]
  /** Suspended tasks the route saw (agent records or heap); null when nothing was read. */
  tasksSeen: number | null
  /** The cost shown before the heap snapshot; null when the heap route was not considered. */
  heapEstimate: HeapCostEstimate | null
  /** Wall time of the heap snapshot, ms (the target's JavaScript is stopped for most of it); null when none was taken. */
  heapSnapshotMs: number | null
  /** With refused or failed: the error (code as in `ferrydiag`'s exit table, one-line message, what to try). */
  problem: {code: string; message: string; suggestion: string} | null
}
