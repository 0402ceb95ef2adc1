// Types for the `lag` command's result (and its --json shape): per-stage time accounting, per-buffer
// flow, lag figures with their growth, the verdict and its evidence. Units are in the field names.
import type {Finding} from './findings.js'
import type {StageState} from './snapshot.js'

/** Flink's busy / idle / back-pressured split for one stage over the window, per second of wall time. */
export interface StageRate {
  name: string
  busyMsPerSec: number
  idleMsPerSec: number
  backPressuredMsPerSec: number
  /** busy + idle + back-pressured; ~1000 when the counters are consistent. */
  accountedMsPerSec: number
  itemsPerSec: number
  itemsHandled: number
  /** Milliseconds of the window the stage existed (less than the window when created mid-window). */
  observedMs: number
  appearedMidWindow: boolean
  stateAtEnd: StageState
  lastProgressAtMs: number | null
}

/** Flow through one buffer (channel, slot or stream adapter) over the window. */
export interface BufferRate {
  id: number
  name: string
  kind: 'channel' | 'slot' | 'stream'
  capacity: number
  eventsInPerSec: number
  eventsOutPerSec: number
  /** Time-weighted mean number of buffered items over the window. */
  meanFillItems: number
  /** meanFillItems / capacity; null for a rendezvous (capacity 0). */
  meanFillRatio: number | null
  /** Largest length seen in any snapshot (sampled, so a lower bound on the true maximum). */
  maxFillItemsSeen: number
  /** Share of the window the buffer was at capacity (0..1). */
  fullShare: number
  sendBlockedMsPerSec: number
  receiveBlockedMsPerSec: number
  /** Items buffered at the end: lost if the process dies now. */
  eventsAtRisk: number
  observedMs: number
  appearedMidWindow: boolean
  closed: boolean
  collected: boolean
}

/**
 * A buffer's flow over the window as `lag` reports it: BufferRate plus what decides whether the text
 * report may fold it away as unused (the --json document keeps every buffer).
 */
export interface LagBufferRate extends BufferRate {
  /** Waits blocked on it (either side) in the last snapshot. */
  blockedWaitersAtEnd: number
  /** Items ever sent into it since it was created (not only in the window). */
  itemsInEver: number
  /**
   * True when nothing went in or out and nobody was blocked on it during the window, it is empty and has
   * no waiter at the end, and it was garbage-collected or never used (e.g. a placeholder the pipeline
   * replaced). A buffer with a blocked waiter is never unused.
   */
  unused: boolean
}

export interface StageRatesReport {
  fromMs: number
  toMs: number
  windowMs: number
  snapshotCount: number
  stages: StageRate[]
  buffers: BufferRate[]
  /** Stages or buffers present at the start but gone at the end (no rates computed). */
  vanished: string[]
  notes: string[]
}

/** One lag figure and its trend over the window. */
export interface LagFigures {
  /** Stage the figures describe (the streamer for `lag`, the writer for `writerLag`); "(binlog position)" when only --source. */
  stageName: string
  /** now − lastProgressAtMs (or − createdAtMs if it never progressed). null when the stage is absent. */
  livenessLagMs: number | null
  /** now − source timestamp of the newest handled event (1-second resolution). null if not reported. */
  transactionLagMs: number | null
  transactionLagResolutionMs: number
  /** Least-squares slopes over the snapshots (seconds of lag per second of wall time). */
  livenessLagGrowthSecPerSec: number | null
  transactionLagGrowthSecPerSec: number | null
  /** Binlog bytes between the source end and the stage's position, when computed by the caller. */
  bytesBehind: number | null
  bytesBehindGrowthPerSec: number | null
}

/**
 * unknown: the window had no evidence for any other verdict (see LagReport.missing). healthy and idle
 * need evidence that events flow end to end; --source alone measures the source, not the pipeline.
 */
export type LagVerdict = 'stuck' | 'falling-behind' | 'healthy' | 'idle' | 'unknown'

/**
 * What a verdict lacked (codes; the renderer words them and names the flag or command that measures it).
 * pipeline: no stage progress and no pipeline position (no agent stages, no probe found anything);
 * source: the source's rate or end position, needed to tell a quiet source from a stuck read, or to see
 *   that writes keep up with it; window: one snapshot, no rates; end-to-end: both ends seen but no figure
 *   shows events reaching the writer at the source's pace.
 */
export type LagMissing = 'pipeline' | 'source' | 'window' | 'end-to-end'

/** Which figures showed events flowing end to end (the evidence healthy and idle need). */
export type FlowEvidence =
  | 'position-tracks-source' // the pipeline's binlog position keeps up with the source end (bytes behind not growing)
  | 'writer-keeps-up-with-source' // the writer's items/s reach the source's events/s
  | 'streamer-current-and-writer-keeps-up' // streamer's event timestamps are recent and the writer moves as much as it reads
  | 'caught-up-quiet-source' // source produced nothing and the pipeline is at its end (nothing behind or buffered)

export interface SourceFigures {
  name: string
  /** Whether the binlog end moved (position or events produced) during the window; null from one reading. */
  advanced: boolean | null
  /** Events (for a MySQL source: rows) produced per second; null when nothing counts them. */
  eventsPerSec: number | null
  /**
   * Where eventsPerSec comes from: the source's own event count (a registered source such as the
   * simulator), rows counted on the binlog stream (--source: every schema's row events, the unit the
   * pipeline's events are in), or nowhere.
   */
  eventsPerSecFrom: 'source-status' | 'binlog-rows' | null
  /** Binlog bytes written per second at the source; null across a file rotation. */
  bytesPerSec: number | null
}

export interface Bottleneck {
  stageName: string
  busyMsPerSec: number
  backPressuredMsPerSec: number
  /** Upstream stages that spend time blocked on a full buffer: the symptom the bottleneck causes. */
  backPressuredUpstream: string[]
  /** How it was chosen. */
  rule: 'first-busy-not-back-pressured' | 'busiest'
}

/** Where the catch-up estimate's rate comes from: the source's own count, its binlog rows, or the streamer's pace. */
export type CatchUpRateFrom = 'source-status' | 'binlog-rows' | 'streamer'

/** Why the catch-up estimate reads as it does (a code and its figures; src/render/lag-wording.ts words it). */
export type CatchUpBasis =
  | {code: 'stuck'}
  | {code: 'nothing-to-catch-up'}
  | {code: 'within-timestamp-resolution'}
  | {code: 'needs'; missing: Array<'transaction-lag' | 'stage-capacity' | 'source-rate'>}
  | {code: 'capacity-at-most-rate'; rateFrom: CatchUpRateFrom}
  | {code: 'shrinking'; lagMs: number; rateFrom: CatchUpRateFrom}

export interface CatchUpEstimate {
  state: 'caught-up' | 'estimate' | 'never' | 'unknown'
  /** Seconds until the lag reaches zero at current capacity and source rate. */
  seconds: number | null
  /** Events/s the slowest stage could handle if busy all the time: items/s ÷ busy share. */
  capacityEventsPerSec: number | null
  sourceEventsPerSec: number | null
  basis: CatchUpBasis
}

/** One measured sign that the lag grows (the falling-behind verdict has at least one). */
export type LagGrowth =
  | {code: 'transaction-lag-growing'; stageName: string; growthSecPerSec: number}
  | {code: 'bytes-behind-growing'; bytesPerSec: number}
  | {code: 'streamer-back-pressured'; stageName: string; backPressuredMsPerSec: number; saturatedStageName: string; saturatedBusyMsPerSec: number}
  | {code: 'source-outpaces-streamer'; sourceEventsPerSec: number; eventsPerSecFrom: SourceFigures['eventsPerSecFrom']; streamerItemsPerSec: number}

/**
 * Why the verdict is what it is: a closed code plus the figures the sentence needs. The words live in
 * src/render/lag-wording.ts (--json carries both this and the worded `summary`).
 */
export type LagReason =
  | {code: 'position-frozen'}
  | {code: 'no-progress'; stages: string[]; forMs: number; sourceAdvanced: boolean; bufferedEvents: number; handOffBlocked: boolean}
  | {code: 'lag-growing'; growth: LagGrowth[]}
  | {code: 'source-quiet-at-end'}
  | {code: 'keeps-up'}
  | {code: 'no-evidence'; missing: LagMissing[]}

export interface LagReport {
  verdict: LagVerdict
  reason: LagReason
  nowMs: number
  window: {fromMs: number; toMs: number; durationMs: number; snapshotCount: number; sourceStatusCount: number}
  lag: LagFigures | null
  writerLag: LagFigures | null
  source: SourceFigures | null
  pipelineOrder: {stages: string[]; derivedFrom: 'input' | 'topology' | 'creation-order'}
  bottleneck: Bottleneck | null
  catchUp: CatchUpEstimate
  buffers: LagBufferRate[]
  stages: StageRate[]
  /** Findings behind the verdict (blocked waits for 'stuck', back-pressure for 'falling-behind'). */
  evidence: Finding[]
  /** Each entry reads "not measured: ..." so the command prints it as is. */
  notMeasured: string[]
  /** With verdict unknown: what was missing (empty otherwise). */
  missing: LagMissing[]
  /** What showed events flowing end to end (healthy/idle have at least one; empty otherwise). */
  flow: FlowEvidence[]
  notes: string[]
}
