// `lag --watch`: samples until Ctrl-C (or the target/source goes away) and assesses a sliding window of
// the most recent samples after each one, handing every result to the caller (which draws it).

import type {InspectorSession} from '../attach/session.js'
import type {LagAssessment, SourceRowCount} from '../model/lag-result.js'
import {assessWindow, type LagResultContext} from './lag-result.js'
import {sampleWindow, type SampledWindow, type SampleWindowOptions, type WindowSample} from './sample-window.js'

/**
 * The agent is sampled (and a frame drawn) this often, ms: each snapshot costs the target CPU, and a
 * faster pace than the redraw would add cost without changing what is shown.
 */
export const WATCH_INTERVAL_MS = 1000
/** --watch runs until Ctrl-C; this only bounds the sampler's own schedule (7 days). */
const WATCH_MAX_MS = 7 * 24 * 3_600_000

export interface WatchWindowOptions {
  session: InspectorSession | undefined
  readSnapshot: SampleWindowOptions['readSnapshot']
  sourceDsn: string | undefined
  /** The sliding window, ms: only samples this recent are assessed. */
  windowMs: number
  context: LagResultContext
  signal: AbortSignal
  /** Called with each assessed window (from the second sample on, then every WATCH_INTERVAL_MS). */
  onResult: (result: LagAssessment) => void
}

/** Samples until the signal aborts or the window ends on its own; a last result says why it ended then. */
export async function watchWindow(options: WatchWindowOptions): Promise<SampledWindow> {
  const {session, sourceDsn, windowMs} = options
  const recent: WindowSample[] = []
  let agentAbsent = false
  let rowCount: SourceRowCount | undefined
  const assess = (endedBy: SampledWindow['endedBy'] = 'duration', problems: string[] = []): void => {
    if (recent.length === 0) return
    let result: LagAssessment
    try {
      result = assessWindow(
        {samples: recent, startedAtMs: recent[0]!.atMs, endedAtMs: Date.now(), endedBy, problems, agentAbsent, ...(rowCount ? {rowCount} : {})},
        {...options.context, lastMs: windowMs},
      )
    } catch {
      return // not enough data yet for any figure
    }
    options.onResult(result)
  }
  const window = await sampleWindow({
    session,
    readSnapshot: options.readSnapshot,
    sourceDsn,
    durationMs: WATCH_MAX_MS,
    intervalMs: WATCH_INTERVAL_MS,
    sourceIntervalMs: WATCH_INTERVAL_MS,
    retainMs: windowMs,
    signal: options.signal,
    onRowCount: (state) => {
      rowCount = state
    },
    onSample: (sample) => {
      if (session !== undefined && sample.snapshot === null && recent.length === 0 && sourceDsn === undefined) agentAbsent = true
      recent.push(sample)
      const keepFrom = recent.findIndex((s) => s.atMs >= sample.atMs - windowMs)
      if (keepFrom > 0) recent.splice(0, keepFrom)
      // One sample is no window yet: the first result comes with the second sample, a second in.
      if (recent.length >= 2) assess()
    },
  })
  agentAbsent = window.agentAbsent
  rowCount = window.rowCount
  // A last result when the window ended on its own (target or source gone), saying why.
  if (window.endedBy !== 'interrupted') assess(window.endedBy, window.problems)
  return window
}
