// What the attach-time probes (src/agent/probes-core.cts) report: the install status per library and a
// reading of the streamers and writers they saw. Times are epoch ms unless a name says otherwise.

import type {BatchSample} from './snapshot.js'

/** A batch write as the probe records it (the reader adds the stage name). */
export type ProbeBatch = Omit<BatchSample, 'stageName'>

/** One library the probes looked at. */
export interface ProbeLibrary {
  /** Package name: '@vlasky/zongji', 'zongji', 'mysql2'. */
  name: string
  version: string | null
  /** patched: probes installed; unrecognised: a version or shape the probes do not know, left alone. */
  state: 'patched' | 'unrecognised'
  /** Module file or package directory it was found at. */
  where: string
  reason?: string
}

export interface ProbeInstallStatus {
  /** True when this call installed the probes; false when a probe marker was already there. */
  installed: boolean
  alreadyPresent: boolean
  libraries: ProbeLibrary[]
  /** Time the install took inside the target (spread over awaits), ms. */
  installMs: number
  /** Target clock (epoch ms) when the probes started recording; null when not installed by this call. */
  installedAtMs: number | null
}

/** One zongji instance: the pipeline's binlog streamer. */
export interface ProbeStreamer {
  id: number
  library: 'zongji'
  /** False once the instance was garbage-collected. */
  alive: boolean
  /** zongji's resume position (options.filename / options.position), updated per event. */
  file: string | null
  position: number | null
  /** Binlog events emitted to the program, and rows in its row events, since the probe saw it. */
  events: number
  rows: number
  /** Source timestamp of the newest event (1-second resolution). */
  lastEventTimestampMs: number | null
  lastEventAtMs: number | null
  /** Its binlog connection is paused now (the program's back-pressure), and cumulative paused ms since install. */
  paused: boolean
  pausedMs: number
  errors: number
  lastError: string | null
  firstSeenAtMs: number
}

/** mysql2 writes to one endpoint (host:port/db), over every connection and pool. */
export interface ProbeWriter {
  id: number
  library: 'mysql2'
  endpoint: string
  /** INSERT / REPLACE / UPDATE / DELETE statements completed, and the rows in them. */
  writes: number
  rows: number
  /** Statements seen (writes plus BEGIN / COMMIT / ROLLBACK). */
  statements: number
  transactions: number
  /** Cumulative ms with at least one write statement in flight (including the current one). */
  busyMs: number
  inFlight: number
  oldestInFlightMs: number | null
  errors: number
  lastError: string | null
  lastWriteEndAtMs: number | null
  firstSeenAtMs: number
  /** Batch writes: a transaction (BEGIN..COMMIT on one connection) or a write outside one. events = rows. */
  samples: {recent: ProbeBatch[]; reservoir: ProbeBatch[]; totalCount: number; totalFailed: number}
}

/** One in-process queue (fastq, `async` queue/cargo, p-queue) as the queue probes see it. */
export interface ProbeQueue {
  id: number
  /** stream: a Node stream's writable side (buffered chunks, the chunk in _write, write() back-pressure). */
  library: 'fastq' | 'async' | 'p-queue' | 'stream'
  alive: boolean
  /** Items waiting in the queue, and items handed to a worker and not finished, at the reading. */
  length: number
  inFlight: number
  /** Workers running (async cargo: batches) and the concurrency limit (null: unlimited). */
  running: number
  concurrency: number | null
  /** Items put since the probe saw the queue; takes: items finished (puts plus items there at first sight, minus those outstanding). */
  puts: number
  takes: number
  lastPutAtMs: number | null
  lastTakeAtMs: number | null
  /** When the item finished last was put (first sight for items already there), epoch ms. */
  lastTakenPutAtMs: number | null
  /** Integral of length over time (item·ms), and of running ÷ concurrency (ms), since first sight. */
  fillItemMs: number
  busyMs: number
  /** Producer waits on the queue now (p-queue onSizeLessThan/onEmpty/onIdle, fastq drained) and their cumulative ms. */
  waiters: number
  waitMs: number
  /** Streams: ms a chunk sat in _write because the readable side was full (downstream back-pressure); 0 for queues. */
  heldMs: number
  /** Streams: hops from the first stream of its pipe chain (0 for queues). */
  rank: number
  firstSeenAtMs: number
}

export interface ProbeReading {
  version: number
  takenAtMs: number
  monotonicMs: number
  installedAtMs: number
  pid: number
  nodeVersion: string
  title: string
  argv: string[]
  streamers: ProbeStreamer[]
  writers: ProbeWriter[]
  /** In-process queues (absent when the queue probes are not installed). */
  queues?: ProbeQueue[]
}

/** What the attach-time probes did during a lag or tune-batch window (see src/agent/probes-core.cts). */
export interface ProbesUse {
  /**
   * used: the window was read from the probes; off: --no-probes; not-needed: the agent's stages were read
   * instead; nothing-found: installed, but no library the probes know is in use (they were removed again).
   */
  state: 'used' | 'off' | 'not-needed' | 'nothing-found'
  libraries: ProbeLibrary[]
  /** zongji instances found with Runtime.queryObjects at install, and that call's time (a full GC stall), ms. */
  adopted: number
  queryObjectsMs: number | null
  /** Probe install time inside the target, ms. */
  installMs: number | null
  /**
   * Queues and streams watched (found by a Runtime.queryObjects, or by their own add/emit/write calls), and
   * the total time of the queryObjects lookups (full GCs: at install when a fastq/async library is loaded, a
   * p-queue has not shown itself or nothing but streams could be there; again at reads, at most every 3 s,
   * while fastq or async is loaded), ms; null when none ran.
   */
  queuesAdopted?: number
  queueLookupMs?: number | null
  /** Target clock (epoch ms) when the probes started recording. */
  installedAtMs: number | null
}
