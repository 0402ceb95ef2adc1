// Turns a probe reading into the agent's snapshot shape, so lag and tune-batch read probed pipelines with
// the same analyses: each zongji instance is a streamer stage (binlog position, rows, event timestamps,
// paused time as back-pressure), each mysql2 write endpoint a writer stage (busy time inside writes,
// rows, batch samples).

import type {ProbeReading, ProbeStreamer, ProbeWriter} from '../model/probes.js'
import {SNAPSHOT_SCHEMA, SNAPSHOT_VERSION, type AgentSnapshot, type BatchSample, type StageRecord} from '../model/snapshot.js'

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
    channels: [],
    tasks: [],
    stages,
    samples: batches,
    sources: [],
    settings: [],
    counters: {},
    buildMs: 0,
  }
}
