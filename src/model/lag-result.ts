// The `lag` command's result (also its --json document, schema ferrydiag.lag): the LagReport of
// src/model/lag-report.ts over a sampled window, plus which process was sampled and how the window went.
import type {CatchUpEstimate, LagReport} from './lag-report.js'
import type {LagStuckWaits} from './lag-stuck-waits.js'
import type {ProbesUse} from './probes.js'
import type {BinlogPosition} from './snapshot.js'

export const LAG_SCHEMA = 'ferrydiag.lag'
/** 2: verdict 'undetermined' became 'unknown' with `missing`; `flow` and `probes` added. */
export const LAG_VERSION = 2

export type WindowEnd = 'duration' | 'interrupted' | 'target-exited' | 'source-lost'

/**
 * The binlog row count that gives the source's rows/s (SHOW MASTER STATUS has no event count). It streams
 * the binlog from its end under a random high replication server id, so it never displaces the pipeline.
 */
export interface SourceRowCount {
  /**
   * counting: rows were counted to the end of the window; no-grant: the account lacks REPLICATION SLAVE;
   * failed: the stream did not start or stopped early (see error).
   */
  state: 'counting' | 'no-grant' | 'failed'
  /** Replication server id the count streamed under; null when it never started. */
  serverId: number | null
  /** Rows counted in all (every schema), from the start of the stream to its stop. */
  rows: number
  /** One line: why the count is missing or stopped early. */
  error?: string
}

/** The process the agent snapshots came from; all null (agent 'not-attached') with --source alone. */
export interface LagProcess {
  /** Process id from the agent's snapshot (or the --pid given). */
  pid: number | null
  /** Inspector address HOST:PORT that was attached. */
  inspect: string | null
  /** How the target was named: --pid (ferrydiag opened the inspector if needed and closed it again) or --inspect. */
  attachedVia: 'pid' | 'inspect' | null
  title: string | null
  nodeVersion: string | null
  /** present: snapshots were read; absent: attached but no agent; not-attached: --source only. */
  agent: 'present' | 'absent' | 'not-attached'
  agentLoadedBy: 'preload' | 'import' | 'inject' | null
}

/** LagReport's window, plus how sampling went. Times are epoch ms. */
export interface LagWindow {
  /** From LagReport: the span the snapshots/readings cover, and how many there were. */
  fromMs: number
  toMs: number
  durationMs: number
  snapshotCount: number
  sourceStatusCount: number
  /** --duration, ms. */
  requestedMs: number
  startedAtMs: number
  endedAtMs: number
  /** duration: ran its length; interrupted: Ctrl-C; target-exited / source-lost: ended early. */
  endedBy: WindowEnd
  /** One line each, e.g. a timed-out snapshot read or the reason the window ended early. */
  problems: string[]
  /** Where the source end came from: the --source DSN, a source the pipeline registers, or nowhere. */
  sourceFrom: 'flag' | 'registered' | 'none'
  /**
   * With --source: the binlog row count behind source.eventsPerSec (state, replication server id used,
   * rows counted over the whole run, and why it is missing); null without --source.
   */
  sourceRowCount: SourceRowCount | null
}

/** Binlog positions at the end of the window. */
export interface LagPositions {
  /** The source's binlog end (last --source reading, else the pipeline's registered source). */
  sourceEnd: BinlogPosition | null
  /** Where the pipeline's streamer reads (its stage position). */
  pipeline: BinlogPosition | null
}

/**
 * The --json document of `ferrydiag lag` (schema "ferrydiag.lag", version LAG_VERSION). Every LagReport field
 * (src/model/lag-report.ts) at the top level, with `window` extended, plus `schema`, `version`,
 * `process` and `positions`. New fields may be added within a version; removing or renaming one bumps it.
 */
export interface LagResult extends LagAssessment {
  /** The verdict's reason worded for people (from `reason`, by src/render/lag-wording.ts). */
  summary: string
  catchUp: CatchUpEstimate & {
    /** The catch-up basis worded for people (from `catchUp.basis`). */
    note: string
  }
}

/** The lag result as collected and analysed, before its reasons are worded (LagResult less summary and note). */
export interface LagAssessment extends Omit<LagReport, 'window'> {
  schema: typeof LAG_SCHEMA
  version: typeof LAG_VERSION
  process: LagProcess
  window: LagWindow
  positions: LagPositions
  /** null when the CLI did not attach (--source alone). */
  probes: ProbesUse | null
  /**
   * Present only when the window ended with nothing moving (verdict stuck, or no stage progressed): the
   * stuck waits stacks' analysis names, as evidence of the verdict (added within version 2: optional).
   */
  stuckWaits?: LagStuckWaits
}
