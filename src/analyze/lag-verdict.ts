// Answers "is the pipeline stuck, falling behind, healthy or idle, and why?" from a series of agent
// snapshots and/or source status readings, with lag figures, their growth, the bottleneck and catch-up time.
import type {Finding} from '../model/findings.js'
import type {
  Bottleneck,
  BufferRate,
  CatchUpEstimate,
  CatchUpRateFrom,
  FlowEvidence,
  LagBufferRate,
  LagFigures,
  LagGrowth,
  LagMissing,
  LagReason,
  LagReport,
  LagVerdict,
  SourceFigures,
  StageRate,
} from '../model/lag-report.js'
import {looksLikeStreamer, looksLikeWriter} from '../model/stage-role.js'
import {formatSite as formatStackSite, type AgentSnapshot, type ChannelRecord, type SourceStatus, type StageRecord, type TaskRecord} from '../model/snapshot.js'
import {computeStageRates, measureWindowMs} from './stage-rates.js'
import {leastSquaresSlope} from './stats.js'
import {formatDurationMs} from '../units.js'

/** A source status reading (from `--source`, or an agent-registered source) at a time. */
export interface SourceObservation {
  atMs: number
  status: SourceStatus
}

/**
 * Rows counted on the source's binlog stream since the count started (cumulative), at a time. MySQL's
 * SHOW MASTER STATUS has no event count; a binlog stream counting row events gives the source's rate in
 * rows, the unit a row-based pipeline's events are in.
 */
export interface SourceRowCountObservation {
  atMs: number
  rows: number
}

/** Binlog bytes between the source end and the pipeline's position, computed by the caller. */
export interface BytesBehindObservation {
  atMs: number
  bytes: number
}

export interface AssessLagInput {
  /** Agent snapshots in time order (may be empty when only --source is available). */
  snapshots?: readonly AgentSnapshot[]
  sourceStatuses?: readonly SourceObservation[]
  /** Binlog rows counted over the window (with --source); used for the source's events/s when given. */
  sourceRowCounts?: readonly SourceRowCountObservation[]
  bytesBehind?: readonly BytesBehindObservation[]
  /** Time of the verdict (epoch ms). Default: the last snapshot or reading. */
  nowMs?: number
  /** Stage names; default: a name containing stream/read (writer: writ/apply/sink), else the ends of the order. */
  streamerStage?: string
  writerStage?: string
  /** Pipeline order, upstream first; default: from channel topology seen in tasks, else creation order. */
  stageOrder?: readonly string[]
  /** A stage without progress for this long, with work waiting, counts as stalled. Default 2000 ms. */
  stallThresholdMs?: number
  /** Lag growth above this (s/s) counts as falling behind. Default 0.05. */
  growthThresholdSecPerSec?: number
}

/** Binlog event timestamps have 1-second resolution. */
const TRANSACTION_LAG_RESOLUTION_MS = 1000
/** Flink-style thresholds, in ms per second of wall time. */
const BUSY_MS_PER_SEC = 500
const BACK_PRESSURED_MS_PER_SEC = 100
/** A streamer back-pressured at least this many ms per second is held back by the pipeline (falling behind). */
const SATURATED_BACK_PRESSURE_MS_PER_SEC = 500
/** A streamer idle (waiting for the source) at least this many ms per second keeps up with the source. */
const KEEPING_UP_IDLE_MS_PER_SEC = 500

export function assessLag(input: AssessLagInput): LagReport {
  const snapshots = input.snapshots ?? []
  const sourceReadings = collectSourceReadings(input, snapshots)
  const bytesBehind = [...(input.bytesBehind ?? [])].sort((a, b) => a.atMs - b.atMs)
  if (snapshots.length === 0 && sourceReadings.length === 0 && bytesBehind.length === 0) {
    if (input.nowMs === undefined) {
      throw new RangeError('Expected agent snapshots, source status readings, bytes-behind values or nowMs; got none')
    }
    return nothingMeasured(input.nowMs)
  }
  const stallThresholdMs = input.stallThresholdMs ?? 2000
  const growthThreshold = input.growthThresholdSecPerSec ?? 0.05
  if (!(stallThresholdMs > 0)) throw new RangeError(`Expected stallThresholdMs > 0, got ${stallThresholdMs}`)
  if (!(growthThreshold >= 0)) throw new RangeError(`Expected growthThresholdSecPerSec >= 0, got ${growthThreshold}`)

  const last = snapshots[snapshots.length - 1]
  const times = [
    ...snapshots.map((s) => s.takenAtMs),
    ...sourceReadings.map((r) => r.atMs),
    ...bytesBehind.map((b) => b.atMs),
  ]
  const fromMs = Math.min(...times)
  const toMs = Math.max(...times)
  const nowMs = input.nowMs ?? (last ? last.takenAtMs : toMs)
  const notMeasured: string[] = []
  const notes: string[] = []
  const evidence: Finding[] = []

  const {stages, buffers, windowMs} = measurePipeline(snapshots, toMs - fromMs, notMeasured, notes)

  const order = derivePipelineOrder(snapshots, input.stageOrder)
  const stageNames = order.stages
  const streamerName = last ? pickStage(last, input.streamerStage, looksLikeStreamer, stageNames[0]) : null
  const writerCandidate = last
    ? pickStage(last, input.writerStage, looksLikeWriter, stageNames[stageNames.length - 1])
    : null
  const writerName = writerCandidate !== streamerName ? writerCandidate : null

  // ---- lag figures ----
  // Without an agent, bytes behind still describes the pipeline's position as a whole.
  const lag = streamerName
    ? describeLag(snapshots, streamerName, nowMs)
    : bytesBehind.length > 0
      ? describeLag([], '(binlog position)', nowMs)
      : null
  const writerLag = writerName ? describeLag(snapshots, writerName, nowMs) : null
  if (lag && lag.transactionLagMs === null) {
    notMeasured.push(`not measured: transaction lag (stage ${lag.stageName} reports no item timestamps)`)
  }
  const bytesBehindGrowthPerSec = (() => {
    const slope = leastSquaresSlope(bytesBehind.map((b) => b.atMs), bytesBehind.map((b) => b.bytes))
    return slope === null ? null : slope * 1000 // bytes per ms → per s
  })()
  const latestBytesBehind = bytesBehind.length > 0 ? bytesBehind[bytesBehind.length - 1].bytes : null
  if (lag) {
    lag.bytesBehind = latestBytesBehind
    lag.bytesBehindGrowthPerSec = bytesBehindGrowthPerSec
  }
  if (bytesBehind.length === 0) {
    notMeasured.push('not measured: bytes behind the source end (needs --source and a stage reporting its binlog position)')
  }

  // ---- source ----
  const rowCounts = [...(input.sourceRowCounts ?? [])].sort((a, b) => a.atMs - b.atMs)
  const source = describeSource(sourceReadings, rowCounts)
  if (!source) notMeasured.push('not measured: source end position and rate (no --source, no registered source)')
  if (source?.eventsPerSecFrom === 'binlog-rows' && source.eventsPerSec === 0 && source.advanced === true) {
    notes.push('the source\'s binlog end moved but no row events were written (DDL or other non-row events only)')
  }
  const producing = sourceProducing(source)

  // ---- progress, then the verdict: stuck first, else what the flow of events shows ----
  const progress = readProgress(snapshots, streamerName, writerName, nowMs, stallThresholdMs)
  const {bufferedEvents, handOffWaits} = progress
  let verdict: LagVerdict = 'unknown'
  const missing: LagMissing[] = []
  const flow: FlowEvidence[] = []
  let reason: LagReason = {code: 'no-evidence', missing}
  let bottleneck: Bottleneck | null = null
  const stageRate = (name: string | null) => (name ? stages.find((s) => s.name === name) ?? null : null)

  const onlySourceStuck = snapshots.length === 0 && isPositionFrozen(source, sourceReadings, bytesBehind, stallThresholdMs)
  const stuck = onlySourceStuck
    ? {reason: {code: 'position-frozen'} as const, evidence: []}
    : decideStuck(progress, {producing, livenessLagMs: lag?.livenessLagMs ?? null, windowMs})
  if (stuck) {
    verdict = 'stuck'
    reason = stuck.reason
    evidence.push(...stuck.evidence)
  } else {
    const decided = decideFlowVerdict({
      snapshots, stages, source, producing, lag, writerLag, bytesBehind, bytesBehindGrowthPerSec,
      backlog: bufferedEvents + (latestBytesBehind ?? 0), handOffWaits: handOffWaits.length,
      streamer: stageRate(streamerName), writer: stageRate(writerName), growthThreshold,
    })
    verdict = decided.verdict
    missing.push(...decided.missing)
    flow.push(...decided.flow)
    if (verdict === 'falling-behind') {
      bottleneck = findBottleneck(stages, stageNames)
      reason = {code: 'lag-growing', growth: decided.growth}
      if (bottleneck) evidence.push(describeBottleneck(bottleneck, buffers))
    } else if (verdict === 'idle') {
      reason = {code: 'source-quiet-at-end'}
    } else if (verdict === 'healthy') {
      reason = {code: 'keeps-up'}
    }
  }

  const catchUp = estimateCatchUp(verdict, stages, lag, writerLag, source, stageRate(streamerName))

  return {
    verdict,
    reason,
    nowMs,
    window: {
      fromMs,
      toMs,
      durationMs: windowMs,
      snapshotCount: snapshots.length,
      sourceStatusCount: sourceReadings.length,
    },
    lag,
    writerLag,
    source,
    pipelineOrder: order,
    bottleneck,
    catchUp,
    buffers,
    stages,
    evidence,
    notMeasured,
    notes,
    missing,
    flow,
  }
}

/** Whether the end stages moved, and the work and long waits in the last snapshot. */
interface PipelineProgress {
  streamerName: string | null
  writerName: string | null
  /** null: the stage is not known. */
  streamerStalled: boolean | null
  writerStalled: boolean | null
  /** Items in the buffers (not slots) at the end. */
  bufferedEvents: number
  /** Waits of at least the stall threshold at the end. */
  longWaits: TaskRecord[]
  /** The streamer's long waits to hand an event on (send, slot, stream write). */
  handOffWaits: TaskRecord[]
}

function readProgress(
  snapshots: readonly AgentSnapshot[],
  streamerName: string | null,
  writerName: string | null,
  nowMs: number,
  stallThresholdMs: number,
): PipelineProgress {
  const last = snapshots[snapshots.length - 1]
  const stalled = (name: string | null): boolean | null => {
    const record = name && last ? last.stages.find((s) => s.name === name) : undefined
    return record ? isStalled(snapshots, record, nowMs, stallThresholdMs) : null
  }
  const bufferedEvents = last ? last.channels.filter((c) => c.kind !== 'slot').reduce((sum, c) => sum + c.length, 0) : 0
  const longWaits = last ? last.tasks.filter((t) => t.waitMs >= stallThresholdMs) : []
  const handOffWaits = longWaits.filter(
    (t) => (t.kind === 'channel-send' || t.kind === 'slot-wait' || t.kind === 'stream-write') && t.stageName === streamerName,
  )
  return {streamerName, writerName, streamerStalled: stalled(streamerName), writerStalled: stalled(writerName), bufferedEvents, longWaits, handOffWaits}
}

/**
 * Stuck: the end stages made no progress (or one did not and a wait that cannot complete blocks it)
 * while work was waiting (the source advanced, events are buffered, or the streamer cannot hand one on).
 * Returns the reason and the blocked waits behind it, or null when the pipeline is not stuck.
 */
function decideStuck(
  p: PipelineProgress,
  context: {producing: boolean | null; livenessLagMs: number | null; windowMs: number},
): {reason: LagReason; evidence: Finding[]} | null {
  const {streamerName, writerName, streamerStalled, writerStalled} = p
  const pipelineStalled = streamerStalled === true && (writerStalled === null || writerStalled)
  const hopeless = p.longWaits.filter((t) => t.state === 'never-resumes' || t.kind === 'slot-wait')
  const hopelessStalled = hopeless.some((t) => t.stageName === streamerName || t.stageName === writerName) &&
    (streamerStalled === true || writerStalled === true)
  const workWaiting = context.producing === true || p.bufferedEvents > 0 || p.handOffWaits.length > 0
  if (!((pipelineStalled || hopelessStalled) && workWaiting)) return null
  const stalledNames = [streamerStalled ? streamerName : null, writerStalled ? writerName : null].filter(
    (n): n is string => n !== null,
  )
  const evidence = describeBlockedWaits(p.longWaits, new Set(stalledNames))
  if (evidence.length === 0) {
    evidence.push({
      kind: 'stuck',
      severity: 'error',
      summary: `${stalledNames.join(' and ')} made no progress and no blocked wait was recorded: it may be stuck in a write or a non-instrumented await`,
      evidence: {stages: stalledNames, waitMs: context.livenessLagMs ?? undefined},
      suggestion: 'run `ferrydiag stacks --heap` on the same target to see where the stage awaits (it takes a heap snapshot)',
    })
  }
  return {
    reason: {
      code: 'no-progress',
      stages: stalledNames,
      forMs: context.livenessLagMs ?? context.windowMs,
      sourceAdvanced: context.producing === true,
      bufferedEvents: p.bufferedEvents,
      handOffBlocked: p.handOffWaits.length > 0,
    },
    evidence,
  }
}

/**
 * Stage and buffer rates over the window (and its length as the snapshots measure it; else
 * `spanMs`), adding what could not be measured to `notMeasured` and remarks to `notes`.
 */
function measurePipeline(
  snapshots: readonly AgentSnapshot[],
  spanMs: number,
  notMeasured: string[],
  notes: string[],
): {stages: StageRate[]; buffers: LagBufferRate[]; windowMs: number} {
  const last = snapshots[snapshots.length - 1]
  if (last && last.stages.length === 0) notMeasured.push('not measured: stage progress (the pipeline registers no stages)')
  if (snapshots.length >= 2) {
    const rates = computeStageRates(snapshots)
    notes.push(...rates.notes)
    if (rates.vanished.length > 0) notes.push(`gone during the window: ${rates.vanished.join(', ')}`)
    return {stages: rates.stages, buffers: describeBufferUse(rates.buffers, last!), windowMs: measureWindowMs(snapshots[0]!, last!)}
  }
  notMeasured.unshift(
    snapshots.length === 1
      ? 'not measured: stage and buffer rates (one agent snapshot; a window needs two or more)'
      : 'not measured: stages, buffers and blocked waits (no agent snapshots; attach to the process)',
  )
  return {stages: [], buffers: [], windowMs: spanMs}
}

/** The report for a window in which nothing at all could be read: unknown, pipeline and source missing. */
function nothingMeasured(nowMs: number): LagReport {
  return {
    verdict: 'unknown',
    reason: {code: 'no-evidence', missing: ['pipeline', 'source']},
    nowMs,
    window: {fromMs: nowMs, toMs: nowMs, durationMs: 0, snapshotCount: 0, sourceStatusCount: 0},
    lag: null,
    writerLag: null,
    source: null,
    pipelineOrder: {stages: [], derivedFrom: 'creation-order'},
    bottleneck: null,
    catchUp: {state: 'unknown', seconds: null, capacityEventsPerSec: null, sourceEventsPerSec: null, basis: {code: 'needs', missing: ['transaction-lag', 'stage-capacity', 'source-rate']}},
    buffers: [],
    stages: [],
    evidence: [],
    notMeasured: ['not measured: stages, buffers and blocked waits (nothing in the process reports them)', 'not measured: source end position and rate (no --source, no registered source)'],
    notes: [],
    missing: ['pipeline', 'source'],
    flow: [],
  }
}

// ---- buffer use --------------------------------------------------------------------------------

/** Adds waiters at the end, items ever sent and the unused flag to each buffer's rates. */
function describeBufferUse(buffers: readonly BufferRate[], last: AgentSnapshot): LagBufferRate[] {
  const records = new Map<number, ChannelRecord>(last.channels.map((c) => [c.id, c]))
  const waitingTasks = new Map<number, number>()
  for (const task of last.tasks) {
    if (task.channelId !== undefined) waitingTasks.set(task.channelId, (waitingTasks.get(task.channelId) ?? 0) + 1)
  }
  return buffers.map((b) => {
    const record = records.get(b.id)
    // Recorded tasks and the buffer's own counts may disagree (e.g. a slot-wait); take the larger.
    const blockedWaitersAtEnd = Math.max((record?.blockedSenders ?? 0) + (record?.blockedReceivers ?? 0), waitingTasks.get(b.id) ?? 0)
    const itemsInEver = record?.itemsIn ?? 0
    // Never used: no call site ever sent to or received from it, nothing passed through, not a filled slot
    // (an idle pipeline's real buffer has its writer's receive, so it stays in the table).
    const neverUsed =
      itemsInEver === 0 &&
      (record?.itemsOut ?? 0) === 0 &&
      (record?.sendersEver ?? 0) === 0 &&
      (record?.receiversEver ?? 0) === 0 &&
      record?.filled !== true
    const quiet =
      b.eventsInPerSec === 0 &&
      b.eventsOutPerSec === 0 &&
      b.sendBlockedMsPerSec === 0 &&
      b.receiveBlockedMsPerSec === 0 &&
      blockedWaitersAtEnd === 0 &&
      b.eventsAtRisk === 0
    return {...b, blockedWaitersAtEnd, itemsInEver, unused: quiet && (b.collected || neverUsed)}
  })
}

// ---- pipeline order ----------------------------------------------------------------------------

/**
 * Upstream first. Edges come from blocked tasks in every snapshot: a stage seen sending into a buffer
 * comes before a stage seen receiving from it. Stages without edges, and ties, keep creation order.
 */
export function derivePipelineOrder(
  snapshots: readonly AgentSnapshot[],
  given?: readonly string[],
): LagReport['pipelineOrder'] {
  const created = new Map<string, number>()
  for (const snapshot of snapshots) {
    for (const s of snapshot.stages) if (!created.has(s.name)) created.set(s.name, s.createdAtMs)
  }
  const byCreation = [...created.keys()].sort((a, b) => created.get(a)! - created.get(b)! || a.localeCompare(b))
  if (given && given.length > 0) {
    return {stages: [...given, ...byCreation.filter((n) => !given.includes(n))], derivedFrom: 'input'}
  }
  const senders = new Map<number, Set<string>>()
  const receivers = new Map<number, Set<string>>()
  for (const snapshot of snapshots) {
    for (const task of snapshot.tasks) {
      if (task.channelId === undefined || !task.stageName || !created.has(task.stageName)) continue
      const side = task.kind === 'channel-send' || task.kind === 'stream-write' ? senders : task.kind === 'channel-receive' ? receivers : null
      if (!side) continue
      const set = side.get(task.channelId) ?? new Set<string>()
      set.add(task.stageName)
      side.set(task.channelId, set)
    }
  }
  const successors = new Map<string, Set<string>>()
  const indegree = new Map<string, number>(byCreation.map((n) => [n, 0]))
  let edges = 0
  for (const [channelId, from] of senders) {
    for (const a of from) {
      for (const b of receivers.get(channelId) ?? []) {
        if (a === b) continue
        const next = successors.get(a) ?? new Set<string>()
        if (next.has(b)) continue
        next.add(b)
        successors.set(a, next)
        indegree.set(b, (indegree.get(b) ?? 0) + 1)
        edges++
      }
    }
  }
  if (edges === 0) return {stages: byCreation, derivedFrom: 'creation-order'}
  // Kahn's algorithm, picking the earliest-created ready stage; a cycle falls back to creation order.
  const result: string[] = []
  const remaining = new Set(byCreation)
  while (remaining.size > 0) {
    const ready = byCreation.find((n) => remaining.has(n) && (indegree.get(n) ?? 0) === 0) ??
      byCreation.find((n) => remaining.has(n))!
    remaining.delete(ready)
    result.push(ready)
    for (const b of successors.get(ready) ?? []) indegree.set(b, (indegree.get(b) ?? 0) - 1)
  }
  return {stages: result, derivedFrom: 'topology'}
}

function pickStage(snapshot: AgentSnapshot, explicit: string | undefined, looksLike: (name: string) => boolean, fallback: string | undefined): string | null {
  if (explicit !== undefined) {
    if (!snapshot.stages.some((s) => s.name === explicit)) {
      throw new RangeError(`Expected a stage named "${explicit}", got stages: ${snapshot.stages.map((s) => s.name).join(', ') || 'none'}`)
    }
    return explicit
  }
  return snapshot.stages.find((s) => looksLike(s.name))?.name ?? fallback ?? null
}

// ---- lag ---------------------------------------------------------------------------------------

function describeLag(snapshots: readonly AgentSnapshot[], stageName: string, nowMs: number): LagFigures {
  const livenessTimes: number[] = []
  const livenessValues: number[] = []
  const transactionTimes: number[] = []
  const transactionValues: number[] = []
  let latest: StageRecord | null = null
  for (const snapshot of snapshots) {
    const stage = snapshot.stages.find((s) => s.name === stageName)
    if (!stage) continue
    latest = stage
    livenessTimes.push(snapshot.takenAtMs)
    livenessValues.push(snapshot.takenAtMs - (stage.lastProgressAtMs ?? stage.createdAtMs))
    if (stage.lastItemTimestampMs !== null) {
      transactionTimes.push(snapshot.takenAtMs)
      transactionValues.push(snapshot.takenAtMs - stage.lastItemTimestampMs)
    }
  }
  return {
    stageName,
    livenessLagMs: latest ? Math.max(0, nowMs - (latest.lastProgressAtMs ?? latest.createdAtMs)) : null,
    transactionLagMs: latest?.lastItemTimestampMs != null ? Math.max(0, nowMs - latest.lastItemTimestampMs) : null,
    transactionLagResolutionMs: TRANSACTION_LAG_RESOLUTION_MS,
    livenessLagGrowthSecPerSec: leastSquaresSlope(livenessTimes, livenessValues),
    transactionLagGrowthSecPerSec: leastSquaresSlope(transactionTimes, transactionValues),
    bytesBehind: null,
    bytesBehindGrowthPerSec: null,
  }
}

/** No items handled across the series and no progress for stallThresholdMs. */
function isStalled(snapshots: readonly AgentSnapshot[], end: StageRecord, nowMs: number, stallThresholdMs: number): boolean {
  const sinceProgressMs = nowMs - (end.lastProgressAtMs ?? end.createdAtMs)
  if (sinceProgressMs < stallThresholdMs) return false
  const start = snapshots[0].stages.find((s) => s.name === end.name && s.createdAtMs === end.createdAtMs)
  return start === undefined ? end.itemsHandled === 0 : end.itemsHandled === start.itemsHandled
}

// ---- source ------------------------------------------------------------------------------------

function collectSourceReadings(input: AssessLagInput, snapshots: readonly AgentSnapshot[]): SourceObservation[] {
  if (input.sourceStatuses && input.sourceStatuses.length > 0) {
    return [...input.sourceStatuses].filter((r) => !r.status.error).sort((a, b) => a.atMs - b.atMs)
  }
  // Fall back to the first source the agent reports (a pipeline may register its binlog source).
  const readings: SourceObservation[] = []
  for (const snapshot of snapshots) {
    const status = snapshot.sources.find((s) => !s.error)
    if (status) readings.push({atMs: snapshot.takenAtMs, status})
  }
  return readings
}

function describeSource(readings: readonly SourceObservation[], rowCounts: readonly SourceRowCountObservation[]): SourceFigures | null {
  if (readings.length === 0) return null
  const a = readings[0]
  const b = readings[readings.length - 1]
  const seconds = (b.atMs - a.atMs) / 1000
  const moved =
    a.status.end.file !== b.status.end.file ||
    a.status.end.offset !== b.status.end.offset ||
    (a.status.eventsProduced !== undefined && b.status.eventsProduced !== undefined && b.status.eventsProduced > a.status.eventsProduced)
  let eventsPerSec: number | null = null
  let eventsPerSecFrom: SourceFigures['eventsPerSecFrom'] = null
  // Rows counted on the binlog: first to last count (a count that stopped early covers less of the window).
  const firstCount = rowCounts[0]
  const lastCount = rowCounts[rowCounts.length - 1]
  if (firstCount && lastCount && lastCount.atMs > firstCount.atMs) {
    eventsPerSec = (Math.max(0, lastCount.rows - firstCount.rows) * 1000) / (lastCount.atMs - firstCount.atMs)
    eventsPerSecFrom = 'binlog-rows'
  } else if (seconds > 0 && a.status.eventsProduced !== undefined && b.status.eventsProduced !== undefined) {
    eventsPerSec = Math.max(0, b.status.eventsProduced - a.status.eventsProduced) / seconds
    eventsPerSecFrom = 'source-status'
  }
  let bytesPerSec: number | null = null
  if (seconds > 0 && a.status.end.file === b.status.end.file) {
    bytesPerSec = Math.max(0, b.status.end.offset - a.status.end.offset) / seconds
  }
  return {name: b.status.name, advanced: readings.length >= 2 ? moved : null, eventsPerSec, eventsPerSecFrom, bytesPerSec}
}

/**
 * Whether the source produced work for the pipeline in the window. Counted binlog rows decide it when
 * there are any (a binlog end that moves without row events, e.g. DDL, gives a row pipeline nothing to
 * do); otherwise whether the binlog end moved. null when unknown (one reading, no source).
 */
function sourceProducing(source: SourceFigures | null): boolean | null {
  if (!source) return null
  if (source.eventsPerSecFrom === 'binlog-rows') return source.eventsPerSec! > 0
  return source.advanced
}

/** Only --source: the pipeline position is frozen when bytes behind grew as fast as the source wrote. */
function isPositionFrozen(
  source: SourceFigures | null,
  readings: readonly SourceObservation[],
  bytesBehind: readonly BytesBehindObservation[],
  stallThresholdMs: number,
): boolean {
  if (!source?.advanced || source.bytesPerSec === null || source.bytesPerSec === 0 || bytesBehind.length < 2) return false
  const a = bytesBehind[0]
  const b = bytesBehind[bytesBehind.length - 1]
  if (b.atMs - a.atMs < stallThresholdMs) return false
  const grownPerSec = ((b.bytes - a.bytes) * 1000) / (b.atMs - a.atMs)
  return readings.length >= 2 && grownPerSec >= 0.95 * source.bytesPerSec
}

/** Writer items/s at least this share of the source's (or the streamer's) rate keep up with it. */
const KEEPS_UP_SHARE = 0.8
/** A streamer whose newest event is at most this old is current with the source, ms. */
const CURRENT_TRANSACTION_LAG_MS = 10_000

interface FlowInput {
  snapshots: readonly AgentSnapshot[]
  stages: readonly StageRate[]
  source: SourceFigures | null
  producing: boolean | null
  lag: LagFigures | null
  writerLag: LagFigures | null
  bytesBehind: readonly BytesBehindObservation[]
  bytesBehindGrowthPerSec: number | null
  /** Events buffered plus binlog bytes behind at the end. */
  backlog: number
  handOffWaits: number
  streamer: StageRate | null
  writer: StageRate | null
  growthThreshold: number
}

interface FlowVerdict {
  verdict: 'falling-behind' | 'healthy' | 'idle' | 'unknown'
  growth: LagGrowth[]
  missing: LagMissing[]
  flow: FlowEvidence[]
}

/**
 * The verdict once stuck is ruled out: falling-behind on measured growth; idle and healthy only with
 * evidence that events flow end to end (FlowEvidence); otherwise unknown, with what was missing.
 */
function decideFlowVerdict(input: FlowInput): FlowVerdict {
  const {stages, source, bytesBehind, streamer, writer} = input
  const pipelineSeen = stages.length > 0 || bytesBehind.length > 0
  const growth = detectGrowth(input, source, streamer, input.growthThreshold)
  if (growth.length > 0) return {verdict: 'falling-behind', growth, missing: [], flow: []}
  if (!pipelineSeen) {
    const missing: LagMissing[] = input.snapshots.length === 1 && input.snapshots[0]!.stages.length > 0 ? ['window'] : ['pipeline']
    if (!source) missing.push('source')
    return {verdict: 'unknown', growth, missing, flow: []}
  }
  const handled = stages.some((s) => s.itemsHandled > 0)
  const latestBehind = bytesBehind.length > 0 ? bytesBehind[bytesBehind.length - 1]!.bytes : null
  // Idle: the source is measured and quiet, and the pipeline is at its end.
  if (input.producing === false && !handled && input.backlog === 0 && input.handOffWaits === 0) {
    return {verdict: 'idle', growth, missing: [], flow: ['caught-up-quiet-source']}
  }
  const flow: FlowEvidence[] = []
  if (bytesBehind.length >= 2 && source?.advanced === true) flow.push('position-tracks-source')
  else if (bytesBehind.length >= 2 && latestBehind === 0 && handled) flow.push('position-tracks-source')
  const sink = writer ?? streamer
  if (source?.eventsPerSec != null && sink && sink.itemsHandled > 0 && sink.itemsPerSec >= KEEPS_UP_SHARE * source.eventsPerSec) {
    flow.push('writer-keeps-up-with-source')
  }
  const streamerLag = input.lag
  if (
    streamer && writer && streamer.itemsHandled > 0 && writer.itemsHandled > 0 &&
    streamerLag?.transactionLagMs != null && streamerLag.transactionLagMs <= CURRENT_TRANSACTION_LAG_MS &&
    writer.itemsPerSec >= KEEPS_UP_SHARE * streamer.itemsPerSec
  ) {
    flow.push('streamer-current-and-writer-keeps-up')
  }
  if (flow.length > 0) return {verdict: 'healthy', growth, missing: [], flow}
  const missing: LagMissing[] = []
  if (!source) missing.push('source')
  if (missing.length === 0 || handled) missing.push('end-to-end')
  return {verdict: 'unknown', growth, missing, flow: []}
}

// ---- falling behind ----------------------------------------------------------------------------

function detectGrowth(
  input: Pick<FlowInput, 'lag' | 'writerLag' | 'bytesBehindGrowthPerSec' | 'stages' | 'producing'>,
  source: SourceFigures | null,
  streamer: StageRate | null,
  threshold: number,
): LagGrowth[] {
  const {lag, writerLag, bytesBehindGrowthPerSec} = input
  const reasons: LagGrowth[] = []
  for (const figures of [lag, writerLag]) {
    const growth = figures?.transactionLagGrowthSecPerSec
    // A stage that handled nothing on a source not known to produce may simply have had nothing to
    // read: its newest event ages at 1 s/s on a quiet source too. That is not evidence of falling behind.
    const rate = figures ? input.stages.find((s) => s.name === figures.stageName) : undefined
    const moving = (rate?.itemsHandled ?? 0) > 0 || input.producing === true
    if (figures && moving && growth != null && growth > threshold && (figures.transactionLagMs ?? 0) > TRANSACTION_LAG_RESOLUTION_MS) {
      reasons.push({code: 'transaction-lag-growing', stageName: figures.stageName, growthSecPerSec: growth})
    }
  }
  if (bytesBehindGrowthPerSec !== null && bytesBehindGrowthPerSec > 0) {
    const relative = source?.bytesPerSec ? bytesBehindGrowthPerSec / source.bytesPerSec : null
    if (relative === null || relative > threshold) reasons.push({code: 'bytes-behind-growing', bytesPerSec: bytesBehindGrowthPerSec})
  }
  // The streamer held back by back-pressure most of the time while a stage downstream works flat out: it is
  // offered more than the pipeline takes, so the lag grows in front of it (its paused binlog connection, the
  // producer parked on a full queue or a stream's 'drain').
  const saturated = input.stages.find(
    (s) => s !== streamer && s.busyMsPerSec >= BUSY_MS_PER_SEC && s.backPressuredMsPerSec < BACK_PRESSURED_MS_PER_SEC,
  )
  // Not when a measurement says otherwise: lag measured shrinking, or a measured source the streamer keeps up with.
  const shrinking = (lag?.transactionLagGrowthSecPerSec ?? 0) < -threshold || (bytesBehindGrowthPerSec ?? 0) < 0
  const keepsUp = source?.eventsPerSec != null && streamer !== null && streamer.itemsPerSec >= source.eventsPerSec
  if (streamer && streamer.backPressuredMsPerSec >= SATURATED_BACK_PRESSURE_MS_PER_SEC && saturated && !shrinking && !keepsUp) {
    reasons.push({
      code: 'streamer-back-pressured',
      stageName: streamer.name,
      backPressuredMsPerSec: streamer.backPressuredMsPerSec,
      saturatedStageName: saturated.name,
      saturatedBusyMsPerSec: saturated.busyMsPerSec,
    })
  }
  // Binlog rows are counted on arrival and over every schema (a pipeline may copy only some): they show
  // the streamer falling short only while it is not mostly waiting for the source.
  const comparable =
    source?.eventsPerSecFrom !== 'binlog-rows' || (streamer !== null && streamer.idleMsPerSec < KEEPING_UP_IDLE_MS_PER_SEC)
  if (comparable && source?.eventsPerSec != null && streamer && source.eventsPerSec > streamer.itemsPerSec * (1 + threshold) && source.eventsPerSec > 0) {
    reasons.push({
      code: 'source-outpaces-streamer',
      sourceEventsPerSec: source.eventsPerSec,
      eventsPerSecFrom: source.eventsPerSecFrom,
      streamerItemsPerSec: streamer.itemsPerSec,
    })
  }
  return reasons
}

/**
 * Flink's rule: walking downstream, the first stage that is busy but not back-pressured limits the
 * pipeline (the stages before it are back-pressured because of it). Fallback: the busiest stage that
 * is not back-pressured.
 */
export function findBottleneck(stages: readonly StageRate[], order: readonly string[]): Bottleneck | null {
  const ordered = order.map((n) => stages.find((s) => s.name === n)).filter((s): s is StageRate => s !== undefined)
  for (const s of stages) if (!ordered.includes(s)) ordered.push(s)
  const isBackPressured = (s: StageRate) => s.backPressuredMsPerSec >= BACK_PRESSURED_MS_PER_SEC
  const upstreamOf = (index: number) => ordered.slice(0, index).filter(isBackPressured).map((s) => s.name)
  const index = ordered.findIndex((s) => s.busyMsPerSec >= BUSY_MS_PER_SEC && !isBackPressured(s))
  if (index >= 0) {
    const s = ordered[index]
    return {
      stageName: s.name,
      busyMsPerSec: s.busyMsPerSec,
      backPressuredMsPerSec: s.backPressuredMsPerSec,
      backPressuredUpstream: upstreamOf(index),
      rule: 'first-busy-not-back-pressured',
    }
  }
  const candidates = ordered.filter((s) => !isBackPressured(s) && s.busyMsPerSec > 0)
  if (candidates.length === 0) return null
  const busiest = candidates.reduce((a, b) => (b.busyMsPerSec > a.busyMsPerSec ? b : a))
  return {
    stageName: busiest.name,
    busyMsPerSec: busiest.busyMsPerSec,
    backPressuredMsPerSec: busiest.backPressuredMsPerSec,
    backPressuredUpstream: upstreamOf(ordered.indexOf(busiest)),
    rule: 'busiest',
  }
}

function describeBottleneck(bottleneck: Bottleneck, buffers: readonly BufferRate[]): Finding {
  const full = buffers.filter((b) => b.fullShare > 0.2).map((b) => b.name)
  return {
    kind: 'back-pressure',
    severity: 'warning',
    summary:
      `${bottleneck.stageName} is busy ${Math.round(bottleneck.busyMsPerSec)} ms/s and not back-pressured` +
      (bottleneck.backPressuredUpstream.length > 0 ? `; upstream ${bottleneck.backPressuredUpstream.join(', ')} wait(s) on it` : ''),
    evidence: {stage: bottleneck.stageName, channels: full, upstream: bottleneck.backPressuredUpstream, rule: bottleneck.rule},
    suggestion:
      looksLikeWriter(bottleneck.stageName)
        ? 'run `ferrydiag tune-batch` to fit the write cost model and size the batch'
        : `make ${bottleneck.stageName} faster or run more of it in parallel`,
  }
}

// ---- stuck evidence ----------------------------------------------------------------------------

function formatSite(task: TaskRecord): string | null {
  const frame = task.stack[0]
  return frame ? formatStackSite(frame) : null
}

/** One finding per long blocked wait of a stalled stage (or every long wait if none names a stage). */
function describeBlockedWaits(longWaits: readonly TaskRecord[], stalled: ReadonlySet<string>): Finding[] {
  const own = longWaits.filter((t) => t.stageName !== undefined && stalled.has(t.stageName))
  const chosen = own.length > 0 ? own : longWaits.filter((t) => t.stageName === undefined)
  return chosen.map((task) => {
    const site = formatSite(task)
    const where = task.channelName ? ` on "${task.channelName}"` : ''
    const kind = task.kind === 'slot-wait' ? 'uninitialized-channel-send' : task.state === 'never-resumes' ? 'never-resumes' : 'long-wait'
    const suggestion =
      kind === 'uninitialized-channel-send'
        ? 'the channel is created after its sender started (ghostferry #331): create it before starting the sender'
        : kind === 'never-resumes'
          ? 'nothing can wake this wait: restart the pipeline and fix the lost buffer reference'
          : task.kind === 'channel-receive'
            ? 'the stage waits for input: look at the stage upstream of this buffer'
            : 'the stage waits for the stage downstream of this buffer: see what that stage is blocked on'
    return {
      kind,
      severity: 'error',
      summary:
        `${task.stageName ?? 'a task'} blocked in ${task.kind}${where} for ${formatDurationMs(task.waitMs)}` + (site ? ` at ${site}` : ''),
      evidence: {
        sites: site ? [site] : [],
        channels: task.channelName ? [task.channelName] : [],
        taskIds: [task.id],
        waitMs: task.waitMs,
        stage: task.stageName,
        taskKind: task.kind,
        state: task.state,
      },
      suggestion,
    }
  })
}

// ---- catch-up ----------------------------------------------------------------------------------

/**
 * Capacity = the smallest items/s ÷ busy share over the stages (what each could do if busy all the
 * time). The lag L (s) shrinks at C/R − 1 s per second, so catch-up takes L·R / (C − R) seconds;
 * never when C ≤ R.
 */
function estimateCatchUp(
  verdict: LagVerdict,
  stages: readonly StageRate[],
  lag: LagFigures | null,
  writerLag: LagFigures | null,
  source: SourceFigures | null,
  streamer: StageRate | null,
): CatchUpEstimate {
  let capacity: number | null = null
  for (const s of stages) {
    if (s.itemsPerSec > 0 && s.busyMsPerSec > 0) {
      const c = (s.itemsPerSec * 1000) / s.busyMsPerSec
      capacity = capacity === null ? c : Math.min(capacity, c)
    }
  }
  let rate: number | null = source?.eventsPerSec ?? null
  let rateFrom: CatchUpRateFrom = source?.eventsPerSecFrom === 'binlog-rows' ? 'binlog-rows' : 'source-status'
  // A streamer that is not back-pressured follows the source: its pace stands in for an unmeasured source.
  if (rate === null && streamer && streamer.backPressuredMsPerSec < 200) {
    rate = streamer.itemsPerSec
    rateFrom = 'streamer'
  }
  const lagMs = writerLag?.transactionLagMs ?? lag?.transactionLagMs ?? null
  const base = {capacityEventsPerSec: capacity, sourceEventsPerSec: rate}
  if (verdict === 'stuck') return {...base, state: 'never', seconds: null, basis: {code: 'stuck'}}
  if (verdict === 'idle') return {...base, state: 'caught-up', seconds: 0, basis: {code: 'nothing-to-catch-up'}}
  if (lagMs !== null && lagMs <= TRANSACTION_LAG_RESOLUTION_MS && verdict !== 'falling-behind') {
    return {...base, state: 'caught-up', seconds: 0, basis: {code: 'within-timestamp-resolution'}}
  }
  if (lagMs === null || capacity === null || rate === null) {
    const missing: Array<'transaction-lag' | 'stage-capacity' | 'source-rate'> = []
    if (lagMs === null) missing.push('transaction-lag')
    if (capacity === null) missing.push('stage-capacity')
    if (rate === null) missing.push('source-rate')
    return {...base, state: 'unknown', seconds: null, basis: {code: 'needs', missing}}
  }
  if (capacity <= rate) {
    return {...base, state: 'never', seconds: null, basis: {code: 'capacity-at-most-rate', rateFrom}}
  }
  const seconds = ((lagMs / 1000) * rate) / (capacity - rate)
  return {
    ...base,
    state: 'estimate',
    seconds,
    basis: {code: 'shrinking', lagMs, rateFrom},
  }
}

