// For `lag`: when its window ended with nothing moving, reads the stuck waits with stacks' own collection
// and analysis: the agent's records when they already name them (no heap snapshot), else a heap snapshot
// under the same cost gate as `stacks --heap`. Never throws: what could not be read is said in the result.

import {stuckWaitFindings} from '../analyze/lag-stuck-waits.js'
import type {InspectorSession} from '../attach/session.js'
import {isFerrydiagError} from '../errors.js'
import type {Finding} from '../model/findings.js'
import type {HeapCostEstimate, LagStuckWaits, StuckWaitsRoute} from '../model/lag-stuck-waits.js'
import type {StackFrame} from '../model/snapshot.js'
import {buildCollectedStacksDump, collectStacks, type CollectedStacks, type HeapEstimate} from './stacks-source.js'

export interface CollectStuckWaitsOptions {
  /** The window read the agent's own stages (a ferrydiag/runtime pipeline): try its records first. */
  agentRecords: boolean
  /** --heap: the heap snapshot was asked for; `confirmHeap` decides (ceiling, --yes or a terminal). */
  heap: boolean
  confirmHeap: (estimate: HeapEstimate) => Promise<boolean>
  /** Without --heap: offered unasked (at a terminal only); absent or false: not taken. */
  offerHeap?: (estimate: HeapEstimate) => Promise<boolean>
  /** A wait at least this long may be called stuck by stacks' analysis, ms. */
  stuckAfterMs: number
  budgetMs?: number
  observeMs?: number
  heapTimeoutMs?: number
  mapLocation?: (frame: StackFrame) => StackFrame
}

/** Reads the stuck waits of a target whose lag window saw nothing move. */
export async function collectStuckWaits(session: InspectorSession, options: CollectStuckWaitsOptions): Promise<LagStuckWaits> {
  const analyse = (collected: CollectedStacks): {findings: Finding[]; tasksSeen: number} => {
    const dump = buildCollectedStacksDump(collected, {stuckAfterMs: options.stuckAfterMs, mapLocation: options.mapLocation})
    return {findings: stuckWaitFindings(dump.findings), tasksSeen: dump.taskCount}
  }

  if (options.agentRecords) {
    try {
      const read = analyse(await collectStacks(session, {heap: false, inject: false, budgetMs: options.budgetMs}))
      if (read.findings.length > 0) return {...nothingRead('agent-records'), state: 'read', ...read}
    } catch (error) {
      if (!session.attached) return failed('agent-records', error, null)
      // Otherwise the heap route below may still see them.
    }
  }

  let estimate: HeapCostEstimate | null = null
  const decide = options.heap ? options.confirmHeap : (options.offerHeap ?? (async () => false))
  try {
    const collected = await collectStacks(session, {
      heap: true,
      inject: false,
      budgetMs: options.budgetMs,
      observeMs: options.observeMs,
      heapTimeoutMs: options.heapTimeoutMs,
      confirmHeap: async (cost) => {
        estimate = costOf(cost)
        return decide(cost)
      },
    })
    return {
      ...nothingRead('heap-snapshot'),
      state: 'read',
      ...analyse(collected),
      heapEstimate: estimate,
      heapSnapshotMs: collected.heapStats?.snapshotMs ?? null,
    }
  } catch (error) {
    if (isFerrydiagError(error) && error.code === 'heapDeclined') return {...nothingRead('none'), state: 'not-confirmed', heapEstimate: estimate}
    if (isFerrydiagError(error) && error.code === 'heapTooLarge') return {...failed('none', error, estimate), state: 'refused'}
    return failed(estimate === null ? 'none' : 'heap-snapshot', error, estimate)
  }
}

function nothingRead(route: StuckWaitsRoute): LagStuckWaits {
  return {route, state: 'failed', findings: [], tasksSeen: null, heapEstimate: null, heapSnapshotMs: null, problem: null}
}

function failed(route: StuckWaitsRoute, error: unknown, estimate: HeapCostEstimate | null): LagStuckWaits {
  const problem = isFerrydiagError(error)
    ? {code: error.code, message: error.message, suggestion: error.suggestion}
    : {code: 'unexpected', message: error instanceof Error ? error.message : String(error), suggestion: 'Run `ferrydiag stacks --heap` on the same target.'}
  return {...nothingRead(route), state: 'failed', heapEstimate: estimate, problem}
}

/** The model's copy of the estimate (only the figures shown to the user). */
function costOf(cost: HeapEstimate): HeapCostEstimate {
  return {
    usedHeapBytes: cost.usedHeapBytes,
    stallMs: cost.stallMs,
    stallMsLow: cost.stallMsLow,
    stallMsHigh: cost.stallMsHigh,
    extraMemoryBytes: cost.extraMemoryBytes,
    extraMemoryBytesLow: cost.extraMemoryBytesLow,
    extraMemoryBytesHigh: cost.extraMemoryBytesHigh,
  }
}
