// binlog audit's live route, CLI side: installs the zongji probes and the position tap in a running
// pipeline, drains the tap's bounded ring every DRAIN_INTERVAL_MS for the window into a compact index
// (per file the delivered end positions, no object per event), and removes both at the end.

import {installPositionTap, POSITION_TAP_GLOBAL_KEY, type PositionTapDrain, type PositionTapStatus} from '../agent/probes-core.cjs'
import type {InspectorSession} from '../attach/session.js'
import {FerrydiagError, isFerrydiagError} from '../errors.js'
import {trace} from '../trace.js'
import type {DeliveredIndex, LivePosition} from '../model/binlog-audit.js'
import type {ProbeLibrary} from '../model/probes.js'
import {installProbesIn, removeProbes} from './probe-session.js'
import {sleepUnlessAborted} from './sleep.js'

const TAP = `globalThis[Symbol.for(${JSON.stringify(POSITION_TAP_GLOBAL_KEY)})]`

/**
 * Records the target's ring holds between two drains: at 250 ms drains, a pipeline handing on 100k
 * transactions per second fills it only if the CLI misses a whole second of drains. ~1.3 MB in the target.
 */
export const POSITION_RING_CAPACITY = 1 << 16
/** Largest number of records one drain returns (about 1 MB of JSON), so one evaluation stays short. */
const DRAIN_MAX = 20_000
const DRAIN_INTERVAL_MS = 250

/** Delivered positions of one streamer, built as records arrive. */
export class DeliveredPositionsBuilder {
  private readonly files = new Map<string, {positions: number[]; sorted: boolean}>()
  private readonly gtids = new Set<string>()
  records = 0
  first: LivePosition | null = null
  last: LivePosition | null = null

  add(file: string, pos: number, gtid: string | null): void {
    this.records++
    const at: LivePosition = {file, pos, gtid}
    this.first ??= at
    this.last = at
    if (pos <= 0) {
      if (gtid !== null) this.gtids.add(gtid)
      return
    }
    let entry = this.files.get(file)
    if (entry === undefined) this.files.set(file, (entry = {positions: [], sorted: true}))
    const previous = entry.positions.at(-1)
    if (previous === pos) return
    // A pipeline that restarted its stream earlier in the file hands positions on again: sort at the end.
    if (previous !== undefined && pos < previous) entry.sorted = false
    entry.positions.push(pos)
  }

  /** The index the auditor reads (sorted, distinct); positions before `from` (same file, or earlier files) dropped. */
  index(from?: {file: string; pos: number}): DeliveredIndex {
    const files = new Map<string, number[]>()
    for (const [file, entry] of this.files) {
      let positions = entry.sorted ? entry.positions : [...new Set(entry.positions)].sort((a, b) => a - b)
      if (from !== undefined) {
        if (file < from.file) continue
        if (file === from.file) positions = positions.filter((pos) => pos > from.pos)
      }
      if (positions.length > 0) files.set(file, positions)
    }
    return {files, gtids: this.gtids}
  }
}

export interface LiveStream {
  description: PositionTapDrain['streamers'][number]
  /** zongji instances (tap ids) that delivered into it, in the order first seen. */
  ids: number[]
  delivered: DeliveredPositionsBuilder
}

export interface LiveCollection {
  libraries: ProbeLibrary[]
  /**
   * The streams, one per endpoint and filters: the zongji instances of one stream (a pipeline that stops
   * and starts a new instance, e.g. after an error, keeps its options) deliver into one index, in order.
   */
  streams: Map<string, LiveStream>
  /** Stream key of each zongji instance seen. */
  streamOf: Map<number, string>
  eventsSeen: number
  /** Records the ring could not keep, and the last position among them (judge after it). */
  missed: number
  lastMissed: {file: string; pos: number} | null
  endedBy: 'window' | 'interrupted' | 'target-exited'
  windowMs: number
}

/**
 * Installs the probes and the tap, drains for `windowMs` (or until `signal`, or the target exits), and
 * removes both (also on error). Throws FerrydiagError noZongji (nothing left installed) when the target
 * has no zongji the probes recognise.
 */
export async function collectLivePositions(
  session: InspectorSession,
  options: {windowMs: number; signal: AbortSignal; onProgress?: (elapsedMs: number, totalMs: number) => void; capacity?: number},
): Promise<LiveCollection> {
  const installed = await installProbesIn(session, {findInstances: false})
  let tapInstalled = false
  try {
    if (!installed.libraries.some((l) => l.state === 'patched' && /zongji/.test(l.name))) {
      const found = installed.libraries.map((l) => `${l.name}${l.version ? ` ${l.version}` : ''} (${l.state}${l.reason ? `: ${l.reason}` : ''})`)
      throw new FerrydiagError(
        'noZongji',
        `The target at ${session.address} has no zongji the probes recognise (${found.length === 0 ? 'no zongji or mysql2 module loaded' : `found ${found.join(', ')}`}); nothing was left installed`,
        'Point --pid/--inspect at the process that runs the zongji binlog streamer (zongji or @vlasky/zongji 0.5-0.9), or audit its positions log with --positions FILE.',
      )
    }
    const status = await session.evaluate<PositionTapStatus>(`(${installPositionTap.toString()})(${options.capacity ?? POSITION_RING_CAPACITY})`, {awaitPromise: false, budgetMs: 5000})
    if (!status.installed) {
      throw new FerrydiagError('probesPresent', `The target at ${session.address} already has a binlog position tap (${status.reason}); it is never installed twice.`, 'Wait for the other ferrydiag session to end, then run again.')
    }
    tapInstalled = true
    trace('binlog-audit recording')
    return await drainWindow(session, installed.libraries, options)
  } finally {
    if (tapInstalled) await removePositionTap(session)
    await removeProbes(session)
  }
}

async function drainWindow(
  session: InspectorSession,
  libraries: ProbeLibrary[],
  options: {windowMs: number; signal: AbortSignal; onProgress?: (elapsedMs: number, totalMs: number) => void},
): Promise<LiveCollection> {
  const collection: LiveCollection = {libraries, streams: new Map(), streamOf: new Map(), eventsSeen: 0, missed: 0, lastMissed: null, endedBy: 'window', windowMs: 0}
  const started = performance.now()
  const drainAll = async (): Promise<void> => {
    for (;;) {
      const text = await session.evaluate<string | null>(`(() => { const t = ${TAP}; return t ? t.drain(${DRAIN_MAX}) : null })()`, {awaitPromise: false, budgetMs: 5000})
      if (text === null) return
      const drained = JSON.parse(text) as PositionTapDrain
      addDrain(collection, drained)
      if (drained.pos.length > 0) trace('binlog-audit drained')
      if (!drained.more) return
    }
  }
  try {
    for (;;) {
      const elapsed = performance.now() - started
      options.onProgress?.(Math.min(elapsed, options.windowMs), options.windowMs)
      if (elapsed >= options.windowMs) break
      if (!(await sleepUnlessAborted(Math.min(DRAIN_INTERVAL_MS, options.windowMs - elapsed), options.signal))) {
        collection.endedBy = 'interrupted'
        break
      }
      await drainAll()
    }
    // What was handed on up to the end of the window.
    await drainAll()
  } catch (error) {
    if (!(isFerrydiagError(error) && error.code === 'targetExited')) throw error
    collection.endedBy = 'target-exited'
  }
  collection.windowMs = performance.now() - started
  return collection
}

function addDrain(collection: LiveCollection, drained: PositionTapDrain): void {
  collection.eventsSeen = drained.eventsSeen
  for (const description of drained.streamers) {
    if (collection.streamOf.has(description.id)) continue
    const key = JSON.stringify([description.host, description.port, description.filters])
    collection.streamOf.set(description.id, key)
    let stream = collection.streams.get(key)
    if (stream === undefined) collection.streams.set(key, (stream = {description, ids: [], delivered: new DeliveredPositionsBuilder()}))
    stream.ids.push(description.id)
  }
  for (let i = 0; i < drained.pos.length; i++) {
    const key = collection.streamOf.get(drained.streamer[i]!)
    if (key !== undefined) collection.streams.get(key)!.delivered.add(drained.files[drained.file[i]!]!, drained.pos[i]!, drained.gtid[i]!)
  }
  if (drained.missed !== null) {
    collection.missed += drained.missed.count
    collection.lastMissed = drained.missed.last
  }
}

/** Removes the tap (its undo entry restores zongji's emit); false when the target is gone or had none. Never throws. */
export async function removePositionTap(session: InspectorSession): Promise<boolean> {
  if (!session.attached) return false
  try {
    return await session.evaluate<boolean>(`(() => { const t = ${TAP}; if (t && typeof t.uninstall === 'function') { t.uninstall(); return true } return false })()`, {awaitPromise: false, budgetMs: 2000})
  } catch {
    return false
  }
}

/** The stream to audit: the one from the source's port (then host), else the one that handed on most. */
export function pickStream(collection: LiveCollection, source: {host: string; port: number}): LiveStream | null {
  const all = [...collection.streams.values()].filter((s) => s.delivered.records > 0)
  if (all.length === 0) return null
  const byPort = all.filter((s) => s.description.port === source.port)
  const candidates = byPort.length > 0 ? byPort : all
  const byHost = candidates.filter((s) => s.description.host === source.host)
  const pool = byHost.length > 0 ? byHost : candidates
  pool.sort((a, b) => b.delivered.records - a.delivered.records)
  return pool[0]!
}
