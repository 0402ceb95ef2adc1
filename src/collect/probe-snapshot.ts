// Turns a probe reading into the agent's snapshot shape, so lag and tune-batch read probed pipelines with
// the same analyses: each zongji instance is a streamer stage (binlog position, rows, event timestamps,
// paused time as back-pressure), each mysql2 write endpoint a writer stage (busy time inside writes,
// rows, batch samples).

import type {ProbeQueue, ProbeReading, ProbeStreamer, ProbeWriter} from '../model/probes.js'
import {SNAPSHOT_SCHEMA, SNAPSHOT_VERSION, type AgentSnapshot, type BatchSample, type ChannelRecord, type StageRecord} from '../model/snapshot.js'

/** Stage name of a probed zongji instance (the word "streamer" gives it the streamer's role). */
export function streamerStageName(s: Pick<ProbeStreamer, 'id' | 'library'>): string {
  return `zongji#${s.id} binlog streamer`
}

/** Stage name of a probed mysql2 endpoint (the word "writer" gives it the writer's role). */
export function writerStageName(w: Pick<ProbeWriter, 'endpoint'>): string {
  return `mysql2 writer ${w.endpoint}`
}

/** The snapshot a reading stands for; stage time counts from when the probes first saw each instance. */
export function probeReadingToSnapshot(reading: ProbeReading): AgentSnapshot {
  const now = reading.takenAtMs
  const stages: StageRecord[] = []
  for (const s of reading.streamers) {
    const since = s.firstSeenAtMs
    const elapsed = Math.max(0, now - since)
    const pausedMs = Math.min(elapsed, s.pausedMs)
    stages.push({
      name: streamerStageName(s),
      state: s.paused ? 'back-pressured' : 'idle',
      stateSinceMs: now,
      busyMs: 0,
      idleMs: elapsed - pausedMs,
      backPressuredMs: pausedMs,
      createdAtMs: since,
      itemsHandled: s.rows,
      lastProgressAtMs: s.lastEventAtMs,
      lastItemTimestampMs: s.lastEventTimestampMs,
      position: s.file !== null && s.position !== null ? {file: s.file, offset: s.position} : null,
    })
  }
  const batches: {recent: BatchSample[]; reservoir: BatchSample[]; totalCount: number; totalFailed: number} = {
    recent: [],
    reservoir: [],
    totalCount: 0,
    totalFailed: 0,
  }
  for (const w of reading.writers) {
    const since = w.firstSeenAtMs
    const elapsed = Math.max(0, now - since)
    const busyMs = Math.min(elapsed, w.busyMs)
    const stageName = writerStageName(w)
    stages.push({
      name: stageName,
      state: w.inFlight > 0 ? 'busy' : 'idle',
      stateSinceMs: now - (w.oldestInFlightMs ?? 0),
      busyMs,
      idleMs: elapsed - busyMs,
      backPressuredMs: 0,
      createdAtMs: since,
      itemsHandled: w.rows,
      lastProgressAtMs: w.lastWriteEndAtMs,
      lastItemTimestampMs: null,
      position: null,
    })
    batches.recent.push(...w.samples.recent.map((b) => ({...b, stageName})))
    batches.reservoir.push(...w.samples.reservoir.map((b) => ({...b, stageName})))
    batches.totalCount += w.samples.totalCount
    batches.totalFailed += w.samples.totalFailed
  }
  const channels: ChannelRecord[] = []
  for (const q of reading.queues ?? []) {
    const parts = queueParts(q, now)
    channels.push(parts.channel)
    stages.push(...parts.stages)
  }
  return {
    schema: SNAPSHOT_SCHEMA,
    version: SNAPSHOT_VERSION,
    takenAtMs: now,
    monotonicMs: reading.monotonicMs,
    process: {
      pid: reading.pid,
      nodeVersion: reading.nodeVersion,
      uptimeSec: 0,
      argv: reading.argv,
      title: reading.title,
      agentMode: 'channels',
      agentLoadedBy: 'inject',
      agentVersion: `probes-${reading.version}`,
      agentStartedAtMs: reading.installedAtMs,
    },
    channels,
    tasks: [],
    stages,
    samples: batches,
    sources: [],
    settings: [],
    counters: {},
    buildMs: 0,
  }
}

/** Name of a probed queue (its buffer); its stages are "<name> feed" and "<name> workers". */
export function queueName(q: Pick<ProbeQueue, 'id' | 'library'>): string {
  // Streams are "pipe#N": a name with stream/read/writ in it would take the streamer's or writer's role.
  return `${q.library === 'stream' ? 'pipe' : q.library}#${q.id}`
}

/**
 * A probed queue as a buffer between two stages: the feed (the code that puts; back-pressured while it
 * awaits the queue) and the workers (busy for running ÷ concurrency of the time). Items are dated by
 * their put, so the workers' item timestamp is when the item they finished last entered the queue.
 */
function queueParts(q: ProbeQueue, now: number): {channel: ChannelRecord; stages: StageRecord[]} {
  const name = queueName(q)
  const elapsed = Math.max(0, now - q.firstSeenAtMs)
  const waitMs = Math.min(elapsed, q.waitMs)
  const busyMs = Math.min(elapsed, q.busyMs)
  const heldMs = Math.min(elapsed - busyMs, q.heldMs)
  const channel: ChannelRecord = {
    id: -q.id,
    name,
    kind: 'channel',
    // No bound of its own: these libraries' queues grow without limit (capacity 0 leaves the fill ratio out).
    capacity: 0,
    length: q.length,
    closed: false,
    collected: !q.alive,
    createdAtMs: q.firstSeenAtMs,
    itemsIn: q.puts,
    itemsOut: q.takes + q.inFlight,
    sendersEver: q.puts > 0 ? 1 : 0,
    receiversEver: q.takes + q.inFlight > 0 ? 1 : 0,
    blockedSenders: q.waiters,
    blockedReceivers: 0,
    sendBlockedMs: waitMs,
    receiveBlockedMs: 0,
    fullMs: 0,
    fillItemMs: q.fillItemMs,
  }
  const feed: StageRecord = {
    name: `${name} feed`,
    state: q.waiters > 0 ? 'back-pressured' : 'idle',
    stateSinceMs: now,
    busyMs: 0,
    idleMs: elapsed - waitMs,
    backPressuredMs: waitMs,
    // One ms before the workers: the feed comes first in creation order (streams further down a chain later).
    createdAtMs: q.firstSeenAtMs + 2 * q.rank - 1,
    itemsHandled: q.puts,
    lastProgressAtMs: q.lastPutAtMs,
    lastItemTimestampMs: q.lastPutAtMs,
    position: null,
  }
  const workers: StageRecord = {
    name: `${name} workers`,
    state: q.inFlight > 0 ? (q.running > 0 ? 'busy' : 'back-pressured') : 'idle',
    // Busy since the last item finished (or first sight): a worker that never finishes ages from there.
    stateSinceMs: q.inFlight > 0 ? (q.lastTakeAtMs ?? q.firstSeenAtMs) : now,
    busyMs,
    idleMs: elapsed - busyMs - heldMs,
    backPressuredMs: heldMs,
    createdAtMs: q.firstSeenAtMs + 2 * q.rank,
    itemsHandled: q.takes,
    lastProgressAtMs: q.lastTakeAtMs,
    lastItemTimestampMs: q.lastTakenPutAtMs,
    position: null,
  }
  return {channel, stages: [feed, workers]}
}
