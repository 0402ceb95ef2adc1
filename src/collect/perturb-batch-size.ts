// --perturb for tune-batch: vary the pipeline's BinlogEventBatchSize setting (exposed through the agent)
// for the window so a saturated writer writes batches of several sizes, then restore it, always.
import type {InspectorSession} from '../attach/index.js'
import {AGENT_GLOBAL_KEY} from '../model/snapshot.js'
import {trace} from '../trace.js'
import {sleepUnlessAborted} from './sleep.js'

export interface PerturbOutcome {
  /** Batch sizes set, in the order used. */
  levels: number[]
  restored: boolean
  restoreError?: string
}

/** Writes a setting through the agent; returns the value read back. */
async function writeSetting(session: InspectorSession, name: string, value: number): Promise<number> {
  return session.evaluate<number>(
    `globalThis[Symbol.for(${JSON.stringify(AGENT_GLOBAL_KEY)})].writeSetting(${JSON.stringify(name)}, ${Number(value)})`,
    {budgetMs: 2000, awaitPromise: false},
  )
}

/**
 * --perturb: holds BinlogEventBatchSize at log-spaced levels from 1 to the current size, in shuffled
 * rounds, for the window, then restores the original value (also when aborted). A saturated writer
 * then writes batches of exactly each level, which is what separates m from o. Smaller batches move
 * fewer events per second, so lag grows a little while this runs.
 */
export async function perturbBatchSize(options: {session: InspectorSession; originalBatchSize: number; durationMs: number; signal: AbortSignal}): Promise<PerturbOutcome> {
  const {session, originalBatchSize, durationMs, signal} = options
  const levels = [...new Set(Array.from({length: 6}, (_, i) => Math.max(1, Math.round(originalBatchSize ** (i / 5)))))]
  // Each level gets at least 200 ms so a slow writer still completes several batches at it.
  const rounds = Math.max(1, Math.floor(durationMs / (levels.length * 200)))
  const sliceMs = durationMs / (rounds * levels.length)
  const order: number[] = []
  let seed = originalBatchSize * 7919
  for (let r = 0; r < rounds; r++) {
    const round = [...levels]
    for (let i = round.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      const j = seed % (i + 1)
      ;[round[i], round[j]] = [round[j], round[i]]
    }
    order.push(...round)
  }
  const used: number[] = []
  let restoreError: string | undefined
  // Registered inside the target before the first change: if this CLI is killed, the watchdog restores
  // the original size within its timeout; on a signal, detach runs it.
  const undoName = 'perturb:BinlogEventBatchSize'
  await session.registerUndo(
    undoName,
    `() => globalThis[Symbol.for(${JSON.stringify(AGENT_GLOBAL_KEY)})].writeSetting('BinlogEventBatchSize', ${Number(originalBatchSize)})`,
  )
  trace('perturb')
  try {
    for (const level of order) {
      if (signal.aborted) break
      await writeSetting(session, 'BinlogEventBatchSize', level)
      used.push(level)
      await sleepUnlessAborted(sliceMs, signal)
    }
  } finally {
    // Restored in every case; the outcome says whether it worked.
    try {
      const readBack = await writeSetting(session, 'BinlogEventBatchSize', originalBatchSize)
      if (readBack !== originalBatchSize) restoreError = `read back ${readBack}`
      else await session.forgetUndo(undoName)
    } catch (error) {
      restoreError = (error as Error).message
    }
  }
  return {levels: used, restored: restoreError === undefined, ...(restoreError === undefined ? {} : {restoreError})}
}
