// Before the active probe writes anything: how the pipeline writes its batches (one statement per row or
// multi-row statements), read from the probes' batch samples as they arrive, so the probe's batches cost
// what the pipeline's do.

import type {InspectorSession} from '../attach/session.js'
import {observedWriteShape, withObservedBatchSize} from '../analyze/tune-batch.js'
import type {AgentSnapshot} from '../model/snapshot.js'
import {sleepUnlessAborted} from './sleep.js'

export interface ObservedWrites {
  shape: 'row-per-statement' | 'multi-row'
  /** Median events of the batches seen (the pipeline's batch size as it writes now). */
  batchSize: number | null
  /** Median write statements per batch (a writer with one INSERT per table issues several). */
  statementsPerBatch: number
}

/**
 * Reads the probes every 250 ms until a batch with a statement count was seen, for at most `budgetMs`.
 * null when none was seen in time (a writer that is stuck or idle, or one writing no batches).
 */
export async function observeWriteShape(
  session: InspectorSession,
  readSnapshot: (session: InspectorSession, budgetMs: number) => Promise<AgentSnapshot | null>,
  budgetMs: number,
  signal: AbortSignal,
): Promise<ObservedWrites | null> {
  const deadline = performance.now() + budgetMs
  for (;;) {
    const snapshot = await readSnapshot(session, 5000).catch(() => null)
    const samples = snapshot?.samples.recent ?? []
    const shape = observedWriteShape(samples)
    if (shape !== null) {
      const counted = samples.filter((s) => s.ok && typeof s.statements === 'number')
      const statements = counted.map((s) => s.statements!).sort((a, b) => a - b)
      return {
        shape,
        batchSize: withObservedBatchSize({value: null, from: 'unknown', writable: false}, counted).value,
        statementsPerBatch: statements[Math.floor((statements.length - 1) / 2)] ?? 1,
      }
    }
    if (signal.aborted || performance.now() >= deadline) return null
    await sleepUnlessAborted(250, signal)
  }
}
