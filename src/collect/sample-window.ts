// Samples a running pipeline over a time window: agent snapshots over the inspector (every 250 ms by
// default) and the source's binlog end over mysql2 (every 1000 ms), plus a binlog row count (zongji) for
// the source's rows/s, until the window ends, Ctrl-C, the target exits or the source is lost. Failures
// after the first reading end the window (or, for the row count, are noted), they never throw.

import type {Connection} from 'mysql2/promise'
import type {InspectorSession} from '../attach/session.js'
import {FerrydiagError, isFerrydiagError} from '../errors.js'
import type {SourceRowCount, WindowEnd} from '../model/lag-result.js'
import type {AgentSnapshot} from '../model/snapshot.js'
import {BinlogCounter} from '../mysql/binlog-counter.js'
import {connectMysql, mapConnectError} from '../mysql/connect.js'
import {parseDsn} from '../mysql/dsn.js'
import {checkSourceGrants, readSourceStatus, type SourceStatusReading} from '../mysql/source-status.js'
import {sleepUnlessAborted} from './sleep.js'

/** One reading of the source's binlog end: `status` when it worked, `error` (one line) when not. */
export interface SourceReading {
  /** Epoch ms when the reading was taken. */
  atMs: number
  status?: SourceStatusReading
  error?: string
  /**
   * Rows counted on the source's binlog since the row count started (cumulative), taken right after
   * `status`; absent when no count runs (not permitted, failed, or turned off).
   */
  rowsCounted?: number
}

/**
 * One tick of the window. `snapshot` is null when there is no agent session, when the target has no
 * agent, or when this tick's read failed (see SampledWindow.problems). `source` is present on the
 * ticks where the source was read (the first, then about every sourceIntervalMs, and the last).
 */
export interface WindowSample {
  /** Epoch ms when the tick started (the snapshot's own takenAtMs is the target's clock). */
  atMs: number
  snapshot: AgentSnapshot | null
  source?: SourceReading
}

export interface SampleWindowOptions {
  /** Agent side (optional: --source alone works too). The caller owns it and detaches it. */
  session?: InspectorSession
  /**
   * How a tick reads the pipeline through the session (default: the agent's snapshot). The probes'
   * reader returns their reading in the snapshot's shape. null means nothing to read (no agent).
   */
  readSnapshot?: (session: InspectorSession, budgetMs: number) => Promise<AgentSnapshot | null>
  /** Binlog side, read with SHOW MASTER STATUS / SHOW BINARY LOGS (optional). */
  sourceDsn?: string
  /**
   * With sourceDsn: also count the source's binlog rows over the window (needs REPLICATION SLAVE; without
   * it the window goes on and rowCount says no-grant). Default true.
   */
  countSourceRows?: boolean
  /** Length of the window, ms (> 0). */
  durationMs: number
  /** Time between agent snapshots, ms (default 250). */
  intervalMs?: number
  /** Time between source readings, ms (default 1000; never more often than agent snapshots when both). */
  sourceIntervalMs?: number
  /** Budget for one snapshot read or one source reading, ms (default 3000). */
  readBudgetMs?: number
  /**
   * Keep only the samples of the last retainMs in the result (for --watch, which runs for hours and
   * needs only a sliding window). Default: keep all. onSample still sees every sample.
   */
  retainMs?: number
  /** Ctrl-C: stop early and return what was measured. */
  signal?: AbortSignal
  /** Called after every tick with the elapsed and total window time, ms. */
  onProgress?: (elapsedMs: number, totalMs: number) => void
  /** Called with every sample as it arrives (for --watch). */
  onSample?: (sample: WindowSample) => void
  /** Called when the row count starts, is refused or stops early (for --watch, which reports as it goes). */
  onRowCount?: (rowCount: SourceRowCount) => void
}

export interface SampledWindow {
  /** In time order. The first sample is taken at the start, the last at the end (or when it stopped). */
  samples: WindowSample[]
  /** Epoch ms. */
  startedAtMs: number
  endedAtMs: number
  endedBy: WindowEnd
  /** One line each: what went wrong during the window (a timed-out read, the target exiting, …). */
  problems: string[]
  /** True when a session was given but the target has no ferrydiag agent (snapshots are all null). */
  agentAbsent: boolean
  /** The source's binlog row count, when sourceDsn was given and counting was on. */
  rowCount?: SourceRowCount
}

export const DEFAULT_AGENT_INTERVAL_MS = 250
export const DEFAULT_SOURCE_INTERVAL_MS = 1000
const DEFAULT_READ_BUDGET_MS = 3000
/** Time allowed for the row count's binlog stream to reach the binlog end, ms. */
const ROW_COUNT_START_MS = 10_000

/**
 * Agent snapshot interval for a window of durationMs: about ten intervals per window, between 250 ms
 * (the old fixed pace) and 500 ms. Each snapshot costs the target CPU; stage and buffer rates come from
 * cumulative counters, so fewer snapshots only coarsen the sampled figures (max fill, lag slopes).
 * 5 s -> 500 ms (11 snapshots), 3 s -> 300 ms (11), 2 s -> 250 ms (9).
 */
export function chooseAgentIntervalMs(durationMs: number): number {
  if (!Number.isFinite(durationMs) || durationMs <= 0) {
    throw new RangeError(`Expected durationMs to be a finite number > 0, got \`${durationMs}\``)
  }
  return Math.min(500, Math.max(250, Math.round(durationMs / 10)))
}

/** Thrown inside the loop to stop the window with a reason; never escapes sampleWindow. */
class WindowStop extends Error {
  constructor(
    readonly endedBy: WindowEnd,
    message: string,
  ) {
    super(message)
  }
}

/**
 * Samples over the window. Throws FerrydiagError only at the start (source unreachable, bad credentials,
 * missing REPLICATION CLIENT, target gone before the first snapshot); after the first reading it always
 * resolves, with endedBy and problems saying why it ended early.
 */
export async function sampleWindow(options: SampleWindowOptions): Promise<SampledWindow> {
  const {session, sourceDsn, durationMs, signal} = options
  if (!Number.isFinite(durationMs) || durationMs <= 0) {
    throw new RangeError(`Expected durationMs to be a finite number > 0, got \`${durationMs}\``)
  }
  if (session === undefined && sourceDsn === undefined) {
    throw new TypeError('sampleWindow needs a session, a sourceDsn, or both')
  }
  const agentIntervalMs = checkPositive('intervalMs', options.intervalMs ?? DEFAULT_AGENT_INTERVAL_MS)
  const sourceIntervalMs = checkPositive('sourceIntervalMs', options.sourceIntervalMs ?? DEFAULT_SOURCE_INTERVAL_MS)
  const readBudgetMs = checkPositive('readBudgetMs', options.readBudgetMs ?? DEFAULT_READ_BUDGET_MS)
  // Without an agent the source sets the pace.
  const tickMs = session ? agentIntervalMs : sourceIntervalMs
  const read = options.readSnapshot ?? ((s: InspectorSession, budgetMs: number) => s.readSnapshot({budgetMs}))

  let connection: Connection | undefined
  let counter: BinlogCounter | undefined
  let rowCount: SourceRowCount | undefined
  const problems: string[] = []
  const samples: WindowSample[] = []
  try {
    if (sourceDsn !== undefined) {
      connection = await connectMysql(parseDsn(sourceDsn), {role: 'source'})
      await checkSourceGrants(connection)
      if (options.countSourceRows !== false) {
        // Started before the first reading, so every row after that reading is counted.
        const started = await startRowCount(sourceDsn, (error) => {
          // A failure while starting is startRowCount's to report.
          if (rowCount?.state !== 'counting') return
          // The stream ended on its own mid-window: readings so far keep their counts; note why.
          rowCount = describeCountFailure(error, counter?.serverId ?? null, counter?.rows ?? 0)
          if (rowCount.state === 'failed') problems.push(`the binlog row count stopped: ${rowCount.error}`)
          options.onRowCount?.(rowCount)
        })
        counter = started.counter
        rowCount = started.rowCount
        if (rowCount.state === 'failed') problems.push(`the binlog row count did not start: ${rowCount.error}`)
        options.onRowCount?.(rowCount)
      }
    }
    /** Rows counted so far; undefined once the count is not running. */
    const rowsNow = (): number | undefined => (counter !== undefined && rowCount?.state === 'counting' ? counter.rows : undefined)
    const startedAtMs = Date.now()
    const startedMono = performance.now()

    // ---- first reading: failures here are the caller's to report ----
    let agentAbsent = false
    const [firstSnapshot, firstSource] = await Promise.all([
      session ? read(session, readBudgetMs) : null,
      connection ? readFirstSourceStatus(connection, sourceDsn!, readBudgetMs) : undefined,
    ])
    if (session && firstSnapshot === null) {
      agentAbsent = true
      problems.push('the target has no ferrydiag agent (the pipeline does not use ferrydiag/runtime)')
    }
    const first: WindowSample = {atMs: startedAtMs, snapshot: firstSnapshot}
    if (firstSource) first.source = sourceReading(firstSource, rowsNow())
    record(first)
    // Nothing to sample over time: no agent and no source.
    if (agentAbsent && connection === undefined) {
      return {samples, startedAtMs, endedAtMs: Date.now(), endedBy: 'duration', problems, agentAbsent}
    }

    let endedBy: WindowEnd = 'duration'
    let lastSourceMono = startedMono
    let tick = 1
    const problemCounts = new Map<string, number>()
    for (;;) {
      const plannedMs = Math.min(tick * tickMs, durationMs)
      const isLast = plannedMs >= durationMs
      if (!(await sleepUnlessAborted(startedMono + plannedMs - performance.now(), signal))) {
        endedBy = 'interrupted'
        break
      }
      const atMs = Date.now()
      const nowMono = performance.now()
      // A small slack keeps a 1000 ms source cadence from slipping to 1250 ms on a 250 ms tick.
      const readSource = connection !== undefined && (isLast || nowMono - lastSourceMono >= sourceIntervalMs - tickMs / 2)
      try {
        const [snapshot, status] = await raceAbort(
          Promise.all([
            session && !agentAbsent ? readAgent(session, readBudgetMs, read) : Promise.resolve(null),
            readSource ? readSourceEnd(connection!, readBudgetMs) : Promise.resolve(undefined),
          ]),
          signal,
        )
        const sample: WindowSample = {atMs, snapshot}
        if (status !== undefined) {
          sample.source = sourceReading(status, rowsNow())
          lastSourceMono = nowMono
        }
        record(sample)
      } catch (error) {
        if (error instanceof WindowStop) {
          endedBy = error.endedBy
          problems.push(error.message)
          break
        }
        if (error === ABORTED) {
          endedBy = 'interrupted'
          break
        }
        // A read that failed without ending the window (e.g. a timed-out snapshot): note it once per kind.
        const line = oneLine(error)
        const seen = problemCounts.get(line) ?? 0
        problemCounts.set(line, seen + 1)
        if (seen === 0) problems.push(line)
      }
      // Timers may fire a fraction of a ms early: the last tick reports the whole window.
      options.onProgress?.(isLast ? durationMs : Math.min(performance.now() - startedMono, durationMs), durationMs)
      if (isLast) break
      tick++
    }
    for (const [line, count] of problemCounts) {
      if (count > 1) problems[problems.indexOf(line)] = `${line} (${count} times)`
    }
    const endedAtMs = Date.now()
    if (counter !== undefined && rowCount?.state === 'counting') rowCount = {...rowCount, rows: counter.rows}
    return {samples, startedAtMs, endedAtMs, endedBy, problems, agentAbsent, ...(rowCount ? {rowCount} : {})}
  } finally {
    // At the end, on Ctrl-C and on any error alike: end our dump thread on the source and the status connection.
    await Promise.all([
      counter?.stop(),
      connection ? connection.end().catch(() => connection!.destroy()) : undefined,
    ])
  }

  function record(sample: WindowSample): void {
    samples.push(sample)
    if (options.retainMs !== undefined) {
      // Drop from the front in one splice, at most once per tick.
      const keepFrom = samples.findIndex((s) => s.atMs >= sample.atMs - options.retainMs!)
      if (keepFrom > 0) samples.splice(0, keepFrom)
    }
    options.onSample?.(sample)
  }
}

function sourceReading(status: SourceStatusReading, rowsCounted: number | undefined): SourceReading {
  return rowsCounted === undefined ? {atMs: status.readAtMs, status} : {atMs: status.readAtMs, status, rowsCounted}
}

/**
 * Starts the binlog row count. Never throws: a refused stream (no REPLICATION SLAVE) or any other failure
 * leaves the window without a source rate, which the report lists as not measured.
 */
async function startRowCount(
  dsn: string,
  onError: (error: FerrydiagError) => void,
): Promise<{counter?: BinlogCounter; rowCount: SourceRowCount}> {
  try {
    const counter = await BinlogCounter.start(dsn, {startTimeoutMs: ROW_COUNT_START_MS, onError})
    // zongji reports 'ready' before the server accepts the dump: a refusal may already have arrived.
    if (counter.error !== undefined) return {counter, rowCount: describeCountFailure(counter.error, counter.serverId, 0)}
    return {counter, rowCount: {state: 'counting', serverId: counter.serverId, rows: 0}}
  } catch (error) {
    return {rowCount: describeCountFailure(error, null, 0)}
  }
}

function describeCountFailure(error: unknown, serverId: number | null, rows: number): SourceRowCount {
  // checkSourceGrants already proved REPLICATION CLIENT, so a grant error here is REPLICATION SLAVE.
  const noGrant = isFerrydiagError(error) && error.code === 'mysqlGrant'
  return {state: noGrant ? 'no-grant' : 'failed', serverId, rows, error: oneLine(error)}
}

function checkPositive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`Expected ${name} to be a finite number > 0, got \`${value}\``)
  return value
}

/** A snapshot read during the window; the target going away ends the window. */
async function readAgent(
  session: InspectorSession,
  budgetMs: number,
  read: (session: InspectorSession, budgetMs: number) => Promise<AgentSnapshot | null>,
): Promise<AgentSnapshot | null> {
  try {
    return await read(session, budgetMs)
  } catch (error) {
    if (isFerrydiagError(error) && error.code === 'targetExited') throw new WindowStop('target-exited', error.message)
    throw error
  }
}

/** A source reading during the window; any failure (lost connection, timeout, revoked grant) ends it. */
async function readSourceEnd(connection: Connection, budgetMs: number): Promise<SourceStatusReading> {
  try {
    return await withBudget(readSourceStatus(connection), budgetMs, 'a source status reading')
  } catch (error) {
    throw new WindowStop('source-lost', `lost the source mid-window: ${oneLine(error)}`)
  }
}

/** The first reading: driver errors become one-line FerrydiagErrors (grant, config, unreachable). */
async function readFirstSourceStatus(connection: Connection, dsn: string, budgetMs: number): Promise<SourceStatusReading> {
  try {
    return await withBudget(readSourceStatus(connection), budgetMs, 'the first source status reading')
  } catch (error) {
    throw mapConnectError(error, parseDsn(dsn), {role: 'source'})
  }
}

/** Rejects with mysqlLost-style FerrydiagError when the promise takes longer than budgetMs. */
async function withBudget<T>(promise: Promise<T>, budgetMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  promise.catch(() => undefined)
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new FerrydiagError(
                'mysqlLost',
                `${what} took longer than ${budgetMs} ms`,
                'Check that the source (or target) is responsive, then run again.',
              ),
            ),
          budgetMs,
        )
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

const ABORTED = Symbol('aborted')

/** Resolves with the promise, or rejects with ABORTED as soon as the signal fires. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise
  promise.catch(() => undefined)
  if (signal.aborted) return Promise.reject(ABORTED)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(ABORTED)
    signal.addEventListener('abort', onAbort, {once: true})
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.split('\n')[0]!.trim()
}
