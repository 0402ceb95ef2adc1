// Turns a sampled window into assessLag's input: the agent snapshots of one process lifetime, the
// source's binlog end as SourceStatus readings, the binlog rows counted at those readings, and binlog
// bytes behind at each tick with both ends.

import type {AssessLagInput, BytesBehindObservation, SourceObservation, SourceRowCountObservation} from '../analyze/lag-verdict.js'
import type {AgentSnapshot, BinlogPosition, SourceStatus} from '../model/snapshot.js'
import {looksLikeStreamer} from '../model/stage-role.js'
import {binlogBytesBehind, type BinaryLogFile} from '../mysql/source-status.js'
import type {WindowSample} from './sample-window.js'

export interface LagInputFromWindow {
  input: AssessLagInput
  /** Things the conversion had to leave out, one line each. */
  notes: string[]
}

/** Name given to --source readings in the report (the DSN is not repeated: it may hold a password). */
export const SOURCE_FLAG_NAME = '--source'

/**
 * Pairs each agent snapshot with the source end read at the same tick (--source) or, without --source,
 * with the source the pipeline registers in its own snapshot (e.g. the simulator's binlog).
 */
export function buildLagInput(samples: readonly WindowSample[]): LagInputFromWindow {
  const notes: string[] = []
  const snapshots = lastLifetime(samples.map((s) => s.snapshot).filter((s): s is AgentSnapshot => s !== null), notes)
  const inLifetime = new Set(snapshots)
  const sourceStatuses: SourceObservation[] = []
  const sourceRowCounts: SourceRowCountObservation[] = []
  const bytesBehind: BytesBehindObservation[] = []
  let skippedRotations = 0
  let noPosition = false

  const hasFlagSource = samples.some((s) => s.source?.status !== undefined)
  for (const sample of samples) {
    const reading = sample.source?.status
    if (reading) {
      sourceStatuses.push({atMs: reading.readAtMs, status: {name: SOURCE_FLAG_NAME, kind: 'mysql', end: reading.end}})
      const rows = sample.source?.rowsCounted
      if (rows !== undefined) sourceRowCounts.push({atMs: reading.readAtMs, rows})
    }
    const snapshot = sample.snapshot
    if (snapshot === null || !inLifetime.has(snapshot)) continue
    // The source end to compare with: this tick's --source reading, else the pipeline's own source.
    let end: BinlogPosition | undefined
    let logs: readonly BinaryLogFile[] = []
    let atMs = snapshot.takenAtMs
    if (hasFlagSource) {
      if (!reading) continue
      end = reading.end
      logs = reading.binaryLogs
      atMs = reading.readAtMs
    } else {
      end = snapshot.sources.find((s) => !s.error)?.end
    }
    if (end === undefined) continue
    const position = pipelinePosition(snapshot)
    if (position === null) {
      noPosition = true
      continue
    }
    const bytes = binlogBytesBehind(logs, position, end)
    if (bytes === null) {
      skippedRotations++
      continue
    }
    bytesBehind.push({atMs, bytes: Math.max(0, bytes)})
  }
  if (skippedRotations > 0) {
    notes.push(
      hasFlagSource
        ? `bytes behind left out at ${skippedRotations} tick(s): the pipeline's binlog file is no longer listed by SHOW BINARY LOGS`
        : `bytes behind left out at ${skippedRotations} tick(s): the pipeline and its registered source are in different binlog files (sizes unknown without --source)`,
    )
  }
  if (noPosition && bytesBehind.length === 0) notes.push('bytes behind not computed: no stage reports its binlog position')

  const input: AssessLagInput = {snapshots}
  if (sourceStatuses.length > 0) input.sourceStatuses = sourceStatuses
  if (sourceRowCounts.length > 0) input.sourceRowCounts = sourceRowCounts
  if (bytesBehind.length > 0) input.bytesBehind = bytesBehind
  return {input, notes}
}

/**
 * The pipeline's read position: the streamer's (a stage named like stream/read), else the first stage
 * that reports one. The writer's position would also do, but lags the streamer by the buffered events.
 */
export function pipelinePosition(snapshot: AgentSnapshot): BinlogPosition | null {
  const withPosition = snapshot.stages.filter((s) => s.position !== null)
  const streamer = withPosition.find((s) => looksLikeStreamer(s.name))
  return (streamer ?? withPosition[0])?.position ?? null
}

/** Keeps the snapshots of the newest agent lifetime (a restarted process must not be mixed in). */
function lastLifetime(snapshots: readonly AgentSnapshot[], notes: string[]): AgentSnapshot[] {
  if (snapshots.length === 0) return []
  const last = snapshots[snapshots.length - 1]!
  const same = snapshots.filter(
    (s) => s.process.pid === last.process.pid && s.process.agentStartedAtMs === last.process.agentStartedAtMs,
  )
  if (same.length < snapshots.length) {
    notes.push(`${snapshots.length - same.length} snapshot(s) from an earlier process or agent left out`)
  }
  return same
}

/** The registered source of a snapshot as assessLag would pick it (for display). */
export function registeredSource(snapshot: AgentSnapshot | undefined): SourceStatus | undefined {
  return snapshot?.sources.find((s) => !s.error)
}
