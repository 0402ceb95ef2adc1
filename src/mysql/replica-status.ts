// Reads one snapshot of a replica's replication threads, read-only: SHOW ALL SLAVES STATUS (MariaDB) or
// SHOW REPLICA STATUS (MySQL 8), the replication rows of the process list, the GTID positions, the
// parallel settings and, when performance_schema is on, its replication_applier_* tables.

import type {Connection} from 'mysql2/promise'
import {toReplicaError} from '../analyze/replica-errors.js'
import {FerrydiagError} from '../errors.js'
import type {
  IoRunning,
  ReplicaConnection,
  ReplicaError,
  ReplicaSettings,
  ReplicaSnapshot,
  ReplicaWorker,
} from '../model/replica.js'

type Row = Record<string, unknown>

/** The grant every flavour accepts wording for: MariaDB 10.5+ REPLICA MONITOR (alias SLAVE MONITOR), MySQL REPLICATION CLIENT. */
export const REPLICA_MONITOR_GRANT = 'REPLICA MONITOR (alias SLAVE MONITOR; MariaDB 10.5+) or REPLICATION CLIENT (MySQL)'

function driverCode(error: unknown): string {
  return String((error as {code?: unknown} | undefined)?.code ?? '')
}

function driverMessage(error: unknown): string {
  return String((error as {sqlMessage?: unknown; message?: unknown} | undefined)?.sqlMessage ?? (error as Error)?.message ?? error)
}

function isAccessDenied(error: unknown): boolean {
  const code = driverCode(error)
  return code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR' || code === 'ER_ACCESS_DENIED_ERROR' || code === 'ER_TABLEACCESS_DENIED_ERROR' || code === 'ER_DBACCESS_DENIED_ERROR'
}

async function queryRows(conn: Connection, sql: string): Promise<Row[]> {
  const [rows] = await conn.query(sql)
  return rows as Row[]
}

/** The first present field among names (MariaDB/MySQL <8.0.22 say Slave/Master, MySQL 8.0.22+ Replica/Source). */
function pick(row: Row, ...names: string[]): unknown {
  for (const name of names) if (row[name] !== undefined) return row[name]
  return undefined
}

function str(value: unknown): string {
  return value === undefined || value === null ? '' : String(value)
}

function num(value: unknown): number | null {
  if (value === undefined || value === null || value === '') return null
  const n = Number(value)
  return Number.isFinite(n) ? n : null
}

/** The replication status rows: one per connection/channel. Throws notReplica / mysqlGrant. */
async function readStatusRows(conn: Connection, flavor: 'mariadb' | 'mysql'): Promise<Row[]> {
  const statements = flavor === 'mariadb' ? ['SHOW ALL SLAVES STATUS'] : ['SHOW REPLICA STATUS', 'SHOW SLAVE STATUS']
  let rows: Row[] | undefined
  for (const statement of statements) {
    try {
      rows = await queryRows(conn, statement)
      break
    } catch (error) {
      if (isAccessDenied(error)) {
        throw new FerrydiagError(
          'mysqlGrant',
          `The replica refused ${statement}: the account lacks ${REPLICA_MONITOR_GRANT} (${driverMessage(error)})`,
          'GRANT REPLICA MONITOR ON *.* TO the DSN user (MySQL: GRANT REPLICATION CLIENT ON *.*), plus PROCESS to see the worker threads.',
          {cause: error},
        )
      }
      // MySQL before 8.0.22 does not know SHOW REPLICA STATUS.
      if (driverCode(error) === 'ER_PARSE_ERROR' && statement !== statements.at(-1)) continue
      throw error
    }
  }
  if (rows === undefined || rows.length === 0) {
    throw new FerrydiagError(
      'notReplica',
      `The server is not a replica: ${statements[0]} returned no connection`,
      'Point --replica at a server configured with CHANGE MASTER TO (MySQL: CHANGE REPLICATION SOURCE TO), or pass the primary as --primary.',
    )
  }
  return rows
}

function ioRunning(value: string): IoRunning {
  if (value === 'Yes') return 'yes'
  if (value === 'Connecting' || value === 'Preparing') return 'connecting'
  return 'no'
}

function statusError(errnoValue: unknown, message: unknown, atValue: unknown): ReplicaError | null {
  const errno = num(errnoValue) ?? 0
  if (errno === 0) return null
  const at = atValue ? Date.parse(String(atValue)) : NaN
  return toReplicaError(errno, str(message), 'slave-status', {atMs: Number.isFinite(at) ? at : null})
}

/** One connection from a SHOW ALL SLAVES STATUS / SHOW REPLICA STATUS row. Exported for tests. */
export function parseStatusRow(row: Row): ReplicaConnection {
  return {
    name: str(pick(row, 'Connection_name', 'Channel_Name', 'Channel_name')),
    usingGtid: str(pick(row, 'Using_Gtid', 'Auto_Position')),
    parallelMode: str(pick(row, 'Parallel_Mode')),
    io: {
      running: ioRunning(str(pick(row, 'Slave_IO_Running', 'Replica_IO_Running'))),
      state: str(pick(row, 'Slave_IO_State', 'Replica_IO_State')),
      processlistId: null,
      primaryHost: str(pick(row, 'Master_Host', 'Source_Host')),
      primaryPort: num(pick(row, 'Master_Port', 'Source_Port')) ?? 0,
      primaryServerId: num(pick(row, 'Master_Server_Id', 'Source_Server_Id')),
      received: {file: str(pick(row, 'Master_Log_File', 'Source_Log_File')), pos: num(pick(row, 'Read_Master_Log_Pos', 'Read_Source_Log_Pos')) ?? 0},
      receivedGtid: str(pick(row, 'Gtid_IO_Pos', 'Retrieved_Gtid_Set')).replace(/\s+/g, ''),
      secondsBehind: num(pick(row, 'Seconds_Behind_Master', 'Seconds_Behind_Source')),
      lastError: statusError(row.Last_IO_Errno, row.Last_IO_Error, row.Last_IO_Error_Timestamp),
    },
    sql: {
      running: str(pick(row, 'Slave_SQL_Running', 'Replica_SQL_Running')) === 'Yes',
      state: str(pick(row, 'Slave_SQL_Running_State', 'Replica_SQL_Running_State', 'Slave_SQL_State')),
      processlistId: null,
      executed: {file: str(pick(row, 'Relay_Master_Log_File', 'Relay_Source_Log_File')), pos: num(pick(row, 'Exec_Master_Log_Pos', 'Exec_Source_Log_Pos')) ?? 0},
      executedGtid: str(pick(row, 'Gtid_Slave_Pos', 'Executed_Gtid_Set')).replace(/\s+/g, ''),
      relayLog: {file: str(row.Relay_Log_File), pos: num(row.Relay_Log_Pos) ?? 0},
      delaySec: num(row.SQL_Delay) ?? 0,
      remainingDelaySec: num(row.SQL_Remaining_Delay),
      retriedTransactions: num(row.Retried_transactions),
      lastError: statusError(row.Last_SQL_Errno, row.Last_SQL_Error, row.Last_SQL_Error_Timestamp),
    },
  }
}

async function readSettings(conn: Connection, flavor: 'mariadb' | 'mysql', version: string, unavailable: ReplicaSnapshot['unavailable']): Promise<ReplicaSettings> {
  const variables =
    flavor === 'mariadb'
      ? 'SELECT @@server_id AS serverId, @@slave_parallel_threads AS threads, @@slave_parallel_mode AS mode, @@performance_schema AS ps, @@gtid_slave_pos AS slavePos, @@gtid_current_pos AS currentPos'
      : 'SELECT @@server_id AS serverId, @@replica_parallel_workers AS threads, @@replica_parallel_type AS mode, @@performance_schema AS ps, @@gtid_executed AS slavePos, @@gtid_executed AS currentPos'
  const row = (await queryRows(conn, variables))[0]!
  const settings: ReplicaSettings = {
    flavor,
    version,
    serverId: num(row.serverId) ?? 0,
    parallelThreads: num(row.threads) ?? 0,
    parallelMode: str(row.mode),
    performanceSchema: Number(row.ps) === 1,
    gtidSlavePos: str(row.slavePos).replace(/\s+/g, ''),
    gtidCurrentPos: str(row.currentPos).replace(/\s+/g, ''),
    gtidSlavePosTable: [],
    status: {},
  }
  if (flavor === 'mariadb') {
    try {
      for (const r of await queryRows(conn, 'SELECT domain_id, server_id, MAX(seq_no) AS seq_no FROM mysql.gtid_slave_pos GROUP BY domain_id, server_id ORDER BY domain_id, server_id')) {
        settings.gtidSlavePosTable.push({domainId: Number(r.domain_id), serverId: Number(r.server_id), seqNo: Number(r.seq_no)})
      }
    } catch (error) {
      unavailable.push({what: 'mysql.gtid_slave_pos', reason: isAccessDenied(error) ? 'no SELECT on mysql.gtid_slave_pos' : driverMessage(error)})
    }
  }
  for (const r of await queryRows(conn, "SHOW GLOBAL STATUS WHERE Variable_name LIKE 'Slave%' OR Variable_name LIKE 'Replica%'")) {
    settings.status[str(r.Variable_name)] = str(r.Value)
  }
  return settings
}

interface ProcessRow {
  id: number
  command: string
  state: string | null
  info: string | null
  timeSec: number | null
}

/** Replication threads in the process list. Without PROCESS only the account's own threads are listed. */
async function readProcesslist(conn: Connection, flavor: 'mariadb' | 'mysql'): Promise<ProcessRow[]> {
  const sql =
    flavor === 'mariadb'
      ? "SELECT ID, COMMAND, STATE, INFO, TIME FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Slave_IO', 'Slave_SQL', 'Slave_worker') ORDER BY ID"
      : "SELECT ID, COMMAND, STATE, INFO, TIME FROM information_schema.PROCESSLIST WHERE USER = 'system user' ORDER BY ID"
  return (await queryRows(conn, sql)).map((r) => ({
    id: Number(r.ID),
    command: str(r.COMMAND),
    state: r.STATE === null ? null : str(r.STATE),
    info: r.INFO === null ? null : str(r.INFO),
    timeSec: num(r.TIME),
  }))
}

/** performance_schema worker rows with their processlist ids (joined through performance_schema.threads). */
async function readPsWorkers(conn: Connection): Promise<Row[]> {
  return queryRows(
    conn,
    'SELECT w.*, t.PROCESSLIST_ID AS ferrydiag_processlist_id FROM performance_schema.replication_applier_status_by_worker w ' +
      'LEFT JOIN performance_schema.threads t ON t.THREAD_ID = w.THREAD_ID',
  )
}

function psWorkerError(row: Row, threadId: number | null): ReplicaError | null {
  const errno = num(row.LAST_ERROR_NUMBER) ?? 0
  if (errno === 0) return null
  const at = row.LAST_ERROR_TIMESTAMP instanceof Date ? row.LAST_ERROR_TIMESTAMP.getTime() : Date.parse(str(row.LAST_ERROR_TIMESTAMP))
  return toReplicaError(errno, str(row.LAST_ERROR_MESSAGE), 'performance-schema', {threadId, atMs: Number.isFinite(at) ? at : null})
}

/** Workers from P_S rows (when on) merged with the processlist's worker rows. Exported for tests. */
export function mergeWorkers(psRows: Row[] | null, processRows: ProcessRow[], flavor: 'mariadb' | 'mysql'): ReplicaWorker[] {
  const workerRows = processRows.filter((r) => (flavor === 'mariadb' ? r.command === 'Slave_worker' : false))
  const byId = new Map(workerRows.map((r) => [r.id, r]))
  const workers: ReplicaWorker[] = []
  const used = new Set<number>()
  for (const [i, row] of (psRows ?? []).entries()) {
    const processlistId = num(row.ferrydiag_processlist_id)
    const proc = processlistId === null ? undefined : byId.get(processlistId)
    if (proc) used.add(proc.id)
    const gtidOrNull = (value: unknown): string | null => (str(value) === '' ? null : str(value))
    workers.push({
      index: i + 1,
      connectionName: str(row.CHANNEL_NAME),
      processlistId,
      state: proc?.state ?? null,
      info: proc?.info ?? null,
      stateSec: proc?.timeSec ?? null,
      lastSeenGtid: gtidOrNull(pick(row, 'LAST_SEEN_TRANSACTION', 'LAST_APPLIED_TRANSACTION')),
      applyingGtid: gtidOrNull(row.APPLYING_TRANSACTION),
      retries: num(pick(row, 'LAST_TRANS_RETRY_COUNT', 'APPLYING_TRANSACTION_RETRIES_COUNT')),
      lastError: psWorkerError(row, processlistId),
      sources: proc ? ['performance-schema', 'processlist'] : ['performance-schema'],
    })
  }
  for (const proc of workerRows) {
    if (used.has(proc.id)) continue
    workers.push({
      index: workers.length + 1,
      connectionName: null,
      processlistId: proc.id,
      state: proc.state,
      info: proc.info,
      stateSec: proc.timeSec,
      lastSeenGtid: null,
      applyingGtid: null,
      retries: null,
      lastError: null,
      sources: ['processlist'],
    })
  }
  return workers
}

/** Reads the server's flavour and version (one query). */
export async function readFlavor(conn: Connection): Promise<{flavor: 'mariadb' | 'mysql'; version: string}> {
  const row = (await queryRows(conn, 'SELECT @@version AS version'))[0]!
  const version = str(row.version)
  return {flavor: /mariadb/i.test(version) ? 'mariadb' : 'mysql', version}
}

/**
 * One snapshot of the replica. Throws notReplica (no replication configured) and mysqlGrant (no
 * REPLICA MONITOR); anything else that cannot be read is listed in `unavailable` and the rest carries on.
 */
export async function readReplicaSnapshot(conn: Connection, known?: {flavor: 'mariadb' | 'mysql'; version: string}): Promise<ReplicaSnapshot> {
  const {flavor, version} = known ?? (await readFlavor(conn))
  const takenAtMs = Date.now()
  const unavailable: ReplicaSnapshot['unavailable'] = []
  const statusRows = await readStatusRows(conn, flavor)
  const settings = await readSettings(conn, flavor, version, unavailable)
  const connections = statusRows.map(parseStatusRow)

  let processRows: ProcessRow[] = []
  try {
    processRows = await readProcesslist(conn, flavor)
  } catch (error) {
    unavailable.push({what: 'process list', reason: driverMessage(error)})
  }
  const anyRunning = connections.some((c) => c.sql.running || c.io.running !== 'no')
  if (anyRunning && processRows.length === 0) {
    unavailable.push({what: 'replication threads in the process list', reason: 'not visible to this account: it lacks PROCESS (GRANT PROCESS ON *.*)'})
  }
  // With one connection the IO and SQL rows are unambiguous; MariaDB does not say which connection a
  // multi-source thread serves, so there the per-connection states come from the status rows alone.
  if (connections.length === 1) {
    const only = connections[0]!
    only.io.processlistId = processRows.find((r) => r.command === 'Slave_IO')?.id ?? null
    only.sql.processlistId = processRows.find((r) => r.command === 'Slave_SQL')?.id ?? null
  }

  let psRows: Row[] | null = null
  if (!settings.performanceSchema) {
    unavailable.push({
      what: 'performance_schema replication tables',
      reason: 'performance_schema is OFF: per-worker last transaction, retries and errors after the stop are not available (start the server with --performance-schema=ON)',
    })
  } else {
    try {
      psRows = await readPsWorkers(conn)
    } catch (error) {
      unavailable.push({
        what: 'performance_schema.replication_applier_status_by_worker',
        reason: isAccessDenied(error) ? 'no SELECT on performance_schema (GRANT SELECT ON performance_schema.* TO the user)' : driverMessage(error),
      })
    }
  }
  const workers = mergeWorkers(psRows, processRows, flavor)
  if (settings.parallelThreads > 0 && workers.length === 0 && psRows === null) {
    unavailable.push({what: 'parallel workers', reason: 'none listed: the SQL threads are stopped (their workers left the process list) or not visible'})
  }
  return {takenAtMs, settings, connections, workers, unavailable}
}
