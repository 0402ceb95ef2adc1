// Builds the `lag` command's result (src/model/lag-result.ts): assessLag's LagReport over a sampled
// window, plus which process was sampled and how the window went. Built from plain data; no I/O.

import {assessLag} from '../analyze/lag-verdict.js'
import {LAG_SCHEMA, LAG_VERSION, type LagAssessment, type LagWindow} from '../model/lag-result.js'
import type {ProbesUse} from '../model/probes.js'
import type {AgentSnapshot} from '../model/snapshot.js'
import {buildLagInput, pipelinePosition, registeredSource} from './lag-input.js'
import type {SampledWindow, WindowSample} from './sample-window.js'

/** The "not measured" line for a target without the agent. */
export const AGENT_NOT_MEASURED = 'not measured: agent (the pipeline does not use ferrydiag/runtime)'
/** The "not measured" line for a target neither the agent nor the probes can see. */
export const PROBES_NOT_MEASURED =
  'not measured: pipeline progress (no ferrydiag/runtime stages; the probes found no zongji or mysql2 in use)'
/** The "not measured" line for a --source account that may not stream the binlog. */
export const SOURCE_RATE_NO_GRANT = 'not measured: source event rate (needs REPLICATION SLAVE)'

export interface LagResultContext {
  requestedMs: number
  /** The inspector address attached, when one was. */
  inspect: string | null
  /** The pid known before sampling (--pid, or found for --inspect). */
  pid: number | null
  attached: boolean
  attachedVia: 'pid' | 'inspect' | null
  /** Set to the window's length for a sliding window (--watch): only samples this recent are used. */
  lastMs?: number
  /** What the probes did (null or absent: not attached). */
  probes?: ProbesUse | null
}

/** Runs assessLag over the window's samples and wraps the report with process and window facts. */
export function assessWindow(window: SampledWindow, context: LagResultContext): LagAssessment {
  const samples = context.lastMs === undefined ? window.samples : recentSamples(window.samples, context.lastMs)
  const {input, notes} = buildLagInput(samples)
  const snapshots = input.snapshots ?? []
  const lastSnapshot: AgentSnapshot | undefined = snapshots[snapshots.length - 1]
  // An empty window (nothing readable, no source) still gets a report: unknown, at the window's end.
  const report = assessLag({...input, nowMs: input.nowMs ?? (snapshots.length === 0 && !input.sourceStatuses ? window.endedAtMs : undefined)})
  const flagReadings = samples.filter((s) => s.source?.status !== undefined)
  const lastFlagReading = flagReadings[flagReadings.length - 1]?.source?.status
  const registered = registeredSource(lastSnapshot)
  const sourceFrom: LagWindow['sourceFrom'] = flagReadings.length > 0 ? 'flag' : registered ? 'registered' : 'none'

  const notMeasured = [...report.notMeasured]
  const rowCount = window.rowCount ?? null
  if (rowCount?.state === 'no-grant') notMeasured.push(SOURCE_RATE_NO_GRANT)
  else if (rowCount?.state === 'failed' && report.source?.eventsPerSec == null) {
    notMeasured.push(`not measured: source event rate (the binlog row count failed: ${rowCount.error})`)
  }
  if (context.attached && window.agentAbsent) notMeasured.unshift(context.probes?.state === 'nothing-found' ? PROBES_NOT_MEASURED : AGENT_NOT_MEASURED)
  if (!context.attached) notMeasured.unshift('not measured: agent (no --inspect or --pid given: source only)')

  return {
    schema: LAG_SCHEMA,
    version: LAG_VERSION,
    process: {
      pid: lastSnapshot?.process.pid ?? context.pid,
      inspect: context.inspect,
      attachedVia: context.attachedVia,
      title: lastSnapshot?.process.title ?? null,
      nodeVersion: lastSnapshot?.process.nodeVersion ?? null,
      agent: !context.attached ? 'not-attached' : window.agentAbsent ? 'absent' : 'present',
      agentLoadedBy: lastSnapshot?.process.agentLoadedBy ?? null,
    },
    ...report,
    window: {
      ...report.window,
      requestedMs: context.requestedMs,
      startedAtMs: samples[0]?.atMs ?? window.startedAtMs,
      endedAtMs: window.endedAtMs,
      endedBy: window.endedBy,
      problems: [...window.problems],
      sourceFrom,
      sourceRowCount: rowCount === null ? null : {...rowCount},
    },
    positions: {
      sourceEnd: lastFlagReading?.end ?? registered?.end ?? null,
      pipeline: lastSnapshot ? pipelinePosition(lastSnapshot) : null,
    },
    notMeasured,
    notes: [...report.notes, ...notes],
    probes: context.probes ?? null,
  }
}

/** The samples of the last `lastMs` of the series (by tick time). */
export function recentSamples(samples: readonly WindowSample[], lastMs: number): WindowSample[] {
  if (samples.length === 0) return []
  const endMs = samples[samples.length - 1]!.atMs
  return samples.filter((s) => s.atMs >= endMs - lastMs)
}
