// Samples a running pipeline over a time window: agent snapshots over the inspector (every 250 ms by
// default) and the source's binlog end over mysql2 (every 1000 ms), until the window ends, Ctrl-C, the
// target exits or the source is lost. Failures after the first reading end the window, they never throw.

import type {Connection} from 'mysql2/promise'
import type {InspectorSession} from '../attach/session.js'
import {FerrydiagError, isFerrydiagError} from '../errors.js'
import type {AgentSnapshot} from '../model/snapshot.js'
import {connectMysql, mapConnectError} from '../mysql/connect.js'
import {parseDsn} from '../mysql/dsn.js'
import {checkSourceGrants, readSourceStatus, type SourceStatusReading} from '../mysql/source-status.js'

/** One reading of the source's binlog end: `status` when it worked, `error` (one line) when not. */
export interface SourceReading {
  /** Epoch ms when the reading was taken. */
  atMs: number
  status?: SourceStatusReading
  error?: string
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
  /** Binlog side, read with SHOW MASTER STATUS / SHOW BINARY LOGS (optional). */
  sourceDsn?: string
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
}

export type WindowEnd = 'duration' | 'interrupted' | 'target-exited' | 'source-lost'

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
}

export const DEFAULT_AGENT_INTERVAL_MS = 250
export const DEFAULT_SOURCE_INTERVAL_MS = 1000
const DEFAULT_READ_BUDGET_MS = 3000

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

  let connection: Connection | undefined
  const problems: string[] = []
  const samples: WindowSample[] = []
  try {
    if (sourceDsn !== undefined) {
      connection = await connectMysql(parseDsn(sourceDsn), {role: 'source'})
      await checkSourceGrants(connection)
    }
    const startedAtMs = Date.now()
    const startedMono = performance.now()

    // ---- first reading: failures here are the caller's to report ----
    let agentAbsent = false
    const [firstSnapshot, firstSource] = await Promise.all([
      session ? session.readSnapshot({budgetMs: readBudgetMs}) : null,
      connection ? readFirstSourceStatus(connection, sourceDsn!, readBudgetMs) : undefined,
    ])
    if (session && firstSnapshot === null) {
      agentAbsent = true
      problems.push('the target has no ferrydiag agent (the pipeline does not use ferrydiag/runtime)')
    }
    const first: WindowSample = {atMs: startedAtMs, snapshot: firstSnapshot}
    if (firstSource) first.source = {atMs: firstSource.readAtMs, status: firstSource}
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
      if (!(await sleepUntil(startedMono + plannedMs, signal))) {
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
            session && !agentAbsent ? readAgent(session, readBudgetMs) : Promise.resolve(null),
            readSource ? readSourceEnd(connection!, readBudgetMs) : Promise.resolve(undefined),
          ]),
          signal,
        )
        const sample: WindowSample = {atMs, snapshot}
        if (status !== undefined) {
          sample.source = {atMs: status.readAtMs, status}
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
    return {samples, startedAtMs, endedAtMs: Date.now(), endedBy, problems, agentAbsent}
  } finally {
    if (connection) await connection.end().catch(() => connection!.destroy())
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

function checkPositive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`Expected ${name} to be a finite number > 0, got \`${value}\``)
  return value
}

/** A snapshot read during the window; the target going away ends the window. */
async function readAgent(session: InspectorSession, budgetMs: number): Promise<AgentSnapshot | null> {
  try {
    return await session.readSnapshot({budgetMs})
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

/** Waits until performance.now() reaches targetMono; false when aborted first. */
function sleepUntil(targetMono: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false)
  const waitMs = Math.max(0, targetMono - performance.now())
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve(true)
    }, waitMs)
    const onAbort = (): void => {
      clearTimeout(timer)
      resolve(false)
    }
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.split('\n')[0]!.trim()
}
