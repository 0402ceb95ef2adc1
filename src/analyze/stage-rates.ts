// Per-stage busy / idle / back-pressured ms per second and per-buffer flow over a window, from the
// cumulative counters in a series of agent snapshots (first = window start, last = window end).
import type {AgentSnapshot, ChannelRecord, StageRecord} from '../model/snapshot.js'
import type {BufferRate, StageRate, StageRatesReport} from '../model/lag-report.js'

/**
 * Window length in ms: the monotonic clock difference when usable (immune to wall-clock steps), else
 * the wall-clock difference.
 */
export function measureWindowMs(first: AgentSnapshot, last: AgentSnapshot): number {
  const monotonic = last.monotonicMs - first.monotonicMs
  if (Number.isFinite(monotonic) && monotonic > 0) return monotonic
  return last.takenAtMs - first.takenAtMs
}

/** Throws RangeError unless the snapshots are ≥ 2, in time order, and from one agent lifetime. */
function checkSeries(snapshots: readonly AgentSnapshot[]): void {
  if (snapshots.length < 2) {
    throw new RangeError(`Expected at least 2 snapshots (window start and end), got ${snapshots.length}`)
  }
  for (let i = 1; i < snapshots.length; i++) {
    const a = snapshots[i - 1]
    const b = snapshots[i]
    if (b.takenAtMs < a.takenAtMs) {
      throw new RangeError(`Expected snapshots in time order, got ${b.takenAtMs} after ${a.takenAtMs}`)
    }
    if (a.process.pid !== b.process.pid || a.process.agentStartedAtMs !== b.process.agentStartedAtMs) {
      throw new RangeError(
        `Expected snapshots of one process, got pid ${a.process.pid} (agent started ${a.process.agentStartedAtMs}) ` +
          `and pid ${b.process.pid} (agent started ${b.process.agentStartedAtMs})`,
      )
    }
  }
  if (measureWindowMs(snapshots[0], snapshots[snapshots.length - 1]) <= 0) {
    throw new RangeError('Expected snapshots spanning a positive time window')
  }
}

/**
 * The part of the window an object created at createdAtMs (epoch ms) was present for: the whole
 * window when it already existed at the start, else end.takenAtMs − createdAtMs, clamped.
 */
function presentMs(existedAtStart: boolean, createdAtMs: number, end: AgentSnapshot, windowMs: number): number {
  if (existedAtStart) return windowMs
  return Math.min(windowMs, Math.max(0, end.takenAtMs - createdAtMs))
}

const perSec = (amount: number, ms: number): number => (ms > 0 ? (amount * 1000) / ms : 0)

export function computeStageRates(snapshots: readonly AgentSnapshot[]): StageRatesReport {
  checkSeries(snapshots)
  const first = snapshots[0]
  const last = snapshots[snapshots.length - 1]
  const windowMs = measureWindowMs(first, last)
  const notes: string[] = []
  const vanished: string[] = []

  // Stages have no id: match by name, and treat a changed createdAtMs as a new stage of that name.
  const startStages = new Map<string, StageRecord>(first.stages.map((s) => [s.name, s]))
  const stages: StageRate[] = []
  for (const end of last.stages) {
    const before = startStages.get(end.name)
    const sameStage = before !== undefined && before.createdAtMs === end.createdAtMs
    const start = sameStage ? before : null
    const observedMs = presentMs(sameStage, end.createdAtMs, last, windowMs)
    const busy = end.busyMs - (start?.busyMs ?? 0)
    const idle = end.idleMs - (start?.idleMs ?? 0)
    const backPressured = end.backPressuredMs - (start?.backPressuredMs ?? 0)
    const items = end.itemsHandled - (start?.itemsHandled ?? 0)
    const rate: StageRate = {
      name: end.name,
      busyMsPerSec: perSec(busy, observedMs),
      idleMsPerSec: perSec(idle, observedMs),
      backPressuredMsPerSec: perSec(backPressured, observedMs),
      accountedMsPerSec: perSec(busy + idle + backPressured, observedMs),
      itemsPerSec: perSec(items, observedMs),
      itemsHandled: items,
      observedMs,
      appearedMidWindow: !sameStage,
      stateAtEnd: end.state,
      lastProgressAtMs: end.lastProgressAtMs,
    }
    if (observedMs > 0 && Math.abs(rate.accountedMsPerSec - 1000) > 50) {
      notes.push(`stage ${end.name}: counters account for ${Math.round(rate.accountedMsPerSec)} ms per second, not ~1000`)
    }
    if (before !== undefined && !sameStage) notes.push(`stage ${end.name} was re-created during the window`)
    stages.push(rate)
  }
  const endStageNames = new Set(last.stages.map((s) => s.name))
  for (const s of first.stages) if (!endStageNames.has(s.name)) vanished.push(`stage ${s.name}`)

  const startChannels = new Map<number, ChannelRecord>(first.channels.map((c) => [c.id, c]))
  const maxLength = new Map<number, number>()
  for (const snapshot of snapshots) {
    for (const c of snapshot.channels) maxLength.set(c.id, Math.max(maxLength.get(c.id) ?? 0, c.length))
  }
  const buffers: BufferRate[] = []
  for (const end of last.channels) {
    const start = startChannels.get(end.id) ?? null
    const observedMs = presentMs(start !== null, end.createdAtMs, last, windowMs)
    const delta = (field: 'itemsIn' | 'itemsOut' | 'fillItemMs' | 'fullMs' | 'sendBlockedMs' | 'receiveBlockedMs') =>
      end[field] - (start?.[field] ?? 0)
    const meanFillItems = observedMs > 0 ? delta('fillItemMs') / observedMs : end.length
    buffers.push({
      id: end.id,
      name: end.name,
      kind: end.kind,
      capacity: end.capacity,
      eventsInPerSec: perSec(delta('itemsIn'), observedMs),
      eventsOutPerSec: perSec(delta('itemsOut'), observedMs),
      meanFillItems,
      meanFillRatio: end.capacity > 0 ? meanFillItems / end.capacity : null,
      maxFillItemsSeen: maxLength.get(end.id) ?? end.length,
      fullShare: observedMs > 0 ? Math.min(1, Math.max(0, delta('fullMs') / observedMs)) : 0,
      sendBlockedMsPerSec: perSec(delta('sendBlockedMs'), observedMs),
      receiveBlockedMsPerSec: perSec(delta('receiveBlockedMs'), observedMs),
      eventsAtRisk: end.length,
      observedMs,
      appearedMidWindow: start === null,
      closed: end.closed,
      collected: end.collected,
    })
  }
  const endChannelIds = new Set(last.channels.map((c) => c.id))
  for (const c of first.channels) if (!endChannelIds.has(c.id)) vanished.push(`buffer ${c.name} (#${c.id})`)
  if (snapshots.length === 2) notes.push('max fill is from 2 snapshots only: take more samples for a better maximum')

  return {
    fromMs: first.takenAtMs,
    toMs: last.takenAtMs,
    windowMs,
    snapshotCount: snapshots.length,
    stages,
    buffers,
    vanished,
    notes,
  }
}
