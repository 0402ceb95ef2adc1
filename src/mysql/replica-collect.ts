// `ferrydiag replica` end to end, read-only: samples the replica (once and again after a short interval,
// or with --watch until its SQL thread stops), reads the error log when given, analyses, and for each
// first failure fetches the failing transaction and the conflicting rows from the primary.

import {readFileSync} from 'node:fs'
import type {Connection} from 'mysql2/promise'
import {errorLogShowsStop, KEY_ERRNOS, parseErrorLog, type ErrorLogEntry} from '../analyze/replica-errors.js'
import {analyzeReplica} from '../analyze/replica-findings.js'
import {FerrydiagError} from '../errors.js'
import {
  REPLICA_SCHEMA,
  REPLICA_SCHEMA_VERSION,
  type KeyedRow,
  type PrimaryStatus,
  type PrimaryTransaction,
  type ReplicaFinding,
  type ReplicaReport,
  type ReplicaSnapshot,
  type ReplicaWatch,
} from '../model/replica.js'
import {connectMysql, isConnectionLost} from './connect.js'
import type {ParsedDsn} from './dsn.js'
import {findTransactionAt, readKeyColumns, readPrimaryKey, readRowByKey, readTransactionRows} from './replica-primary.js'
import {readFlavor, readReplicaSnapshot} from './replica-status.js'

export interface CollectReplicaOptions {
  replica: ParsedDsn
  primary: ParsedDsn | null
  /** Only this connection (name; '' = the default one); undefined = all. */
  connectionName?: string
  /** --watch: sample until an SQL thread stops, at most durationMs. */
  watch: boolean
  intervalMs: number
  /** Without --watch: time between the two readings; with --watch: the longest watch. */
  durationMs: number
  errorLogPath?: string
  lagThresholdSec: number
  /** Called after each --watch sample, the first included (progress). */
  onSample?: (samples: number, elapsedMs: number, sqlRunning: boolean) => void
  /** Aborted when the user interrupts (Ctrl-C): ends the sampling early. */
  signal?: AbortSignal
}

/** How long to wait for the error log to record a stop the status already shows (the server writes it last). */
const ERROR_LOG_SETTLE_MS = 2000

/** Reads the error log (a local file); unreadableErrorLog when it cannot be read. */
export function readErrorLogText(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new FerrydiagError(
      'unreadableErrorLog',
      `Cannot read --error-log ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      "Pass the replica's error log file (SELECT @@log_error on the replica names it) readable by this user, or leave --error-log out.",
    )
  }
}

/**
 * The error log's replication errors of the last stop. When the status shows a connection's SQL thread
 * stopped, waits (briefly) until the log records that stop too: workers log their errors as they exit.
 */
async function readErrorLog(path: string, stopped: string[], signal?: AbortSignal): Promise<ErrorLogEntry[]> {
  const deadline = Date.now() + ERROR_LOG_SETTLE_MS
  let text = readErrorLogText(path)
  while (stopped.some((name) => !errorLogShowsStop(text, name)) && Date.now() < deadline && !signal?.aborted) {
    await sleep(100, signal)
    text = readErrorLogText(path)
  }
  return parseErrorLog(text)
}

function selectConnection(snapshot: ReplicaSnapshot, name: string | undefined): ReplicaSnapshot {
  if (name === undefined) return snapshot
  const connections = snapshot.connections.filter((c) => c.name === name)
  if (connections.length === 0) {
    throw new FerrydiagError(
      'noSuchConnection',
      `The replica has no replication connection named '${name}' (it has ${snapshot.connections.map((c) => `'${c.name}'`).join(', ')})`,
      'Pass one of those names to --connection, or leave --connection out to dump every connection.',
    )
  }
  const multi = snapshot.connections.length > 1
  return {
    ...snapshot,
    connections,
    // With several connections an unassigned worker (no P_S channel) cannot be placed; keep it shown.
    workers: multi ? snapshot.workers.filter((w) => w.connectionName === null || w.connectionName === name) : snapshot.workers,
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, {once: true})
  })
}

function lost(error: unknown): FerrydiagError {
  return new FerrydiagError('mysqlLost', `Lost the connection to the replica mid-sample (${String((error as {code?: string}).code ?? error)})`, 'Check that the replica is still up, then run again.', {cause: error})
}

/** Samples the replica: the final snapshot, the one before it, and (watch) the last one with the SQL thread running. */
async function sampleReplica(conn: Connection, options: CollectReplicaOptions): Promise<{final: ReplicaSnapshot; earlier: ReplicaSnapshot | null; watch: ReplicaWatch | null}> {
  const known = await readFlavor(conn)
  const read = async (): Promise<ReplicaSnapshot> => {
    try {
      return selectConnection(await readReplicaSnapshot(conn, known), options.connectionName)
    } catch (error) {
      throw isConnectionLost(error) ? lost(error) : error
    }
  }
  const first = await read()
  const interrupted = (): boolean => options.signal?.aborted === true
  if (!options.watch) {
    await sleep(options.durationMs, options.signal)
    return {final: interrupted() ? first : await read(), earlier: interrupted() ? null : first, watch: null}
  }
  const startedMs = Date.now()
  let samples = 1
  options.onSample?.(samples, 0, first.connections.every((c) => c.sql.running))
  let current = first
  let lastRunning: ReplicaSnapshot | null = null
  const running = (s: ReplicaSnapshot): boolean => s.connections.every((c) => c.sql.running)
  // Already stopped: capture now. Else sample until any SQL thread stops (or the budget ends).
  while (running(current) && !interrupted() && Date.now() - startedMs < options.durationMs) {
    lastRunning = current
    await sleep(options.intervalMs, options.signal)
    current = await read()
    samples++
    options.onSample?.(samples, Date.now() - startedMs, running(current))
  }
  if (running(current)) lastRunning = current
  return {
    final: current,
    earlier: first === current ? null : first,
    watch: {intervalMs: options.intervalMs, samples, stopped: !running(current) && running(first), lastRunning},
  }
}

/** Fills in the failing transaction and the conflicting rows from the primary (and the replica). */
async function addPrimarySide(
  finding: Extract<ReplicaFinding, {code: 'first-failure'}>,
  snapshot: ReplicaSnapshot,
  replicaConn: Connection,
  primary: {parsed: ParsedDsn; conn: Connection} | null,
  problems: string[],
): Promise<void> {
  const connection = snapshot.connections.find((c) => c.name === finding.connectionName)!
  if (primary !== null && connection.sql.executed.file !== '') {
    try {
      const found = await findTransactionAt(primary.conn, connection.sql.executed, finding.error.gtid !== null && finding.gtidSource !== 'inferred' ? finding.error.gtid : null)
      if (found !== null) {
        if (finding.error.gtid === null || finding.gtidSource === 'inferred') {
          finding.error.gtid = found.gtid
          finding.gtidSource = 'primary-binlog'
        }
        const transaction: PrimaryTransaction = {gtid: found.gtid, coordinate: found.coordinate, eventTypes: found.eventTypes, events: []}
        try {
          transaction.events = await readTransactionRows(primary.parsed, primary.conn, found.coordinate)
        } catch (error) {
          problems.push(`row images of ${found.gtid}: ${(error as Error).message}`)
        }
        finding.transaction = transaction
      }
    } catch (error) {
      problems.push(`the primary's binlog events: ${(error as {sqlMessage?: string}).sqlMessage ?? (error as Error).message}`)
    }
  }
  if (!KEY_ERRNOS.has(finding.error.errno) || finding.error.table === null) return
  finding.rows = await lookUpRows(finding, replicaConn, primary?.conn ?? null, problems)
}

/** Key values that identify the conflicting rows, as primary-key column maps. */
async function lookUpRows(finding: Extract<ReplicaFinding, {code: 'first-failure'}>, replicaConn: Connection, primaryConn: Connection | null, problems: string[]): Promise<KeyedRow[]> {
  const error = finding.error
  let table = error.table!
  // "Can't find record in 't'" names no schema: take it from the transaction's events.
  const eventsOfTable = (finding.transaction?.events ?? []).filter((e) => e.table === table || e.table.endsWith(`.${table}`))
  if (!table.includes('.') && eventsOfTable[0]) table = eventsOfTable[0].table
  const pk = await readPrimaryKey(replicaConn, table).catch(() => [] as string[])
  if (pk.length === 0) {
    problems.push(`${table}: no primary key found on the replica; rows not looked up`)
    return []
  }
  const keys: Array<Record<string, unknown>> = []
  const images = eventsOfTable.flatMap((e) => e.rows.map((r) => (error.errno === 1062 ? r.after : r.before ?? r.after))).filter((r): r is Record<string, unknown> => r !== undefined)
  if (error.errno === 1062 && error.keyValue !== null) {
    const keyColumns = error.keyName === 'PRIMARY' || error.keyName === null ? pk : await readKeyColumns(replicaConn, table, error.keyName).catch(() => [] as string[])
    // The image whose duplicate-key columns read as the message's value (MariaDB joins parts with '-').
    const image = images.find((row) => keyColumns.map((c) => String(row[c])).join('-') === error.keyValue)
    if (image) keys.push(Object.fromEntries(pk.map((c) => [c, image[c]])))
    else if (keyColumns.length === 1 && keyColumns[0] === pk[0] && pk.length === 1) keys.push({[pk[0]!]: error.keyValue})
  } else {
    for (const image of images) keys.push(Object.fromEntries(pk.map((c) => [c, image[c]])))
  }
  const rows: KeyedRow[] = []
  for (const key of keys.slice(0, 10)) {
    const read = async (conn: Connection | null): Promise<KeyedRow['replica']> => {
      if (conn === null) return 'unavailable'
      try {
        return await readRowByKey(conn, table, key)
      } catch (e) {
        problems.push(`row ${JSON.stringify(key)} of ${table}: ${(e as {sqlMessage?: string}).sqlMessage ?? (e as Error).message}`)
        return 'unavailable'
      }
    }
    rows.push({table, key, replica: await read(replicaConn), primary: await read(primaryConn)})
  }
  return rows
}

/** Collects, analyses and completes the report. Throws FerrydiagError for the replica; the primary only degrades. */
export async function collectReplicaReport(options: CollectReplicaOptions): Promise<ReplicaReport> {
  // Checked before connecting: an unreadable file costs nothing.
  if (options.errorLogPath !== undefined) readErrorLogText(options.errorLogPath)
  const conn = await connectMysql(options.replica, {role: 'replica'})
  try {
    const {final, earlier, watch} = await sampleReplica(conn, options)
    const stoppedNames = final.connections.filter((c) => !c.sql.running).map((c) => c.name)
    const errorLog = options.errorLogPath === undefined ? [] : await readErrorLog(options.errorLogPath, stoppedNames, options.signal)
    const {positions, findings} = analyzeReplica(final, {lastRunning: watch?.lastRunning ?? null, errorLog, earlier}, {lagThresholdSec: options.lagThresholdSec})

    let primaryStatus: PrimaryStatus = {state: 'not-given'}
    let primary: {parsed: ParsedDsn; conn: Connection} | null = null
    if (options.primary !== null) {
      try {
        const pconn = await connectMysql(options.primary, {role: 'primary', connectTimeoutMs: options.primary.connectTimeoutMs ?? 3000})
        primary = {parsed: options.primary, conn: pconn}
        const [rows] = await pconn.query('SELECT @@version AS version, @@server_id AS serverId, @@gtid_binlog_pos AS pos').catch(async () => pconn.query('SELECT @@version AS version, @@server_id AS serverId, @@gtid_executed AS pos'))
        const row = (rows as Array<Record<string, unknown>>)[0]!
        primaryStatus = {state: 'read', version: String(row.version), serverId: Number(row.serverId), gtidBinlogPos: String(row.pos ?? '')}
      } catch (error) {
        primaryStatus = {state: 'unreachable', reason: (error as Error).message}
      }
    }
    const problems: string[] = []
    try {
      for (const finding of findings) {
        if (finding.code === 'first-failure') await addPrimarySide(finding, final, conn, primary, problems)
      }
    } finally {
      await primary?.conn.end().catch(() => primary?.conn.destroy())
    }
    for (const problem of problems) final.unavailable.push({what: 'primary side', reason: problem})
    return {
      schema: REPLICA_SCHEMA,
      version: REPLICA_SCHEMA_VERSION,
      replica: options.replica.masked,
      primary: {...primaryStatus, dsn: options.primary?.masked ?? null},
      snapshot: final,
      watch,
      errorLog: options.errorLogPath === undefined ? null : {path: options.errorLogPath, errors: errorLog.length},
      positions,
      findings,
    }
  } finally {
    await conn.end().catch(() => conn.destroy())
  }
}
