// Where the source's binlog ends (SHOW MASTER STATUS, SHOW BINARY LOGS, GTID position), how many binlog
// bytes lie between two positions, and checks that the account and server allow ferrydiag to read them.

import type {Connection} from 'mysql2/promise'
import {FerrydiagError} from '../errors.js'
import type {BinlogPosition} from '../model/snapshot.js'

/** One binlog file as SHOW BINARY LOGS lists it. */
export interface BinaryLogFile {
  name: string
  sizeBytes: number
}

export interface SourceStatusReading {
  /** Current end of the binlog; gtid is @@gtid_binlog_pos (MariaDB) or Executed_Gtid_Set (MySQL). */
  end: BinlogPosition
  /** Every binlog file the server still has, oldest first. */
  binaryLogs: BinaryLogFile[]
  serverId: number
  version: string
  flavor: 'mariadb' | 'mysql'
  /** Wall-clock time of the reading, epoch ms. */
  readAtMs: number
}

type Row = Record<string, unknown>

/** Privilege wording for messages: MariaDB 10.5+ split REPLICATION CLIENT into BINLOG MONITOR. */
const MONITOR_PRIVILEGE = 'REPLICATION CLIENT (named BINLOG MONITOR on MariaDB 10.5+)'

function driverCode(error: unknown): string {
  return String((error as {code?: unknown} | undefined)?.code ?? '')
}

async function queryRows(conn: Connection, sql: string): Promise<Row[]> {
  const [rows] = await conn.query(sql)
  return rows as Row[]
}

function grantError(statement: string, error: unknown): FerrydiagError {
  return new FerrydiagError(
    'mysqlGrant',
    `The source refused ${statement}: the account lacks ${MONITOR_PRIVILEGE}`,
    'GRANT REPLICATION CLIENT ON *.* TO the DSN user (MariaDB 10.5+: GRANT BINLOG MONITOR ON *.*).',
    {cause: error},
  )
}

function binlogOffError(): FerrydiagError {
  return new FerrydiagError(
    'mysqlConfig',
    'The source has binary logging off (SHOW MASTER STATUS returned no row)',
    'Start the server with log_bin enabled (e.g. --log-bin --binlog-format=ROW) and a unique server_id.',
  )
}

// SHOW MASTER STATUS was renamed SHOW BINARY LOG STATUS in MySQL 8.2 and removed in 8.4.
async function showMasterStatus(conn: Connection): Promise<Row | undefined> {
  try {
    return (await queryRows(conn, 'SHOW MASTER STATUS'))[0]
  } catch (error) {
    if (driverCode(error) === 'ER_PARSE_ERROR') return (await queryRows(conn, 'SHOW BINARY LOG STATUS'))[0]
    throw error
  }
}

function wrapPrivilegeError(statement: string, error: unknown): unknown {
  const code = driverCode(error)
  return code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR' || code === 'ER_ACCESS_DENIED_ERROR' ? grantError(statement, error) : error
}

async function readBinaryLogs(conn: Connection): Promise<BinaryLogFile[]> {
  let rows: Row[]
  try {
    rows = await queryRows(conn, 'SHOW BINARY LOGS')
  } catch (error) {
    // ER_NO_BINARY_LOGGING when log_bin is off
    if (driverCode(error) === 'ER_NO_BINARY_LOGGING') throw binlogOffError()
    throw wrapPrivilegeError('SHOW BINARY LOGS', error)
  }
  return rows.map((row) => ({name: String(row.Log_name), sizeBytes: Number(row.File_size)}))
}

/** Reads the source's binlog end, its files and identity. Throws mysqlGrant / mysqlConfig. */
export async function readSourceStatus(conn: Connection): Promise<SourceStatusReading> {
  const status = await readBinlogEnd(conn)
  const binaryLogs = await readBinaryLogs(conn)
  const [identity] = await queryRows(conn, 'SELECT @@server_id AS serverId, VERSION() AS version')
  const version = String(identity!.version)
  const flavor = /mariadb/i.test(version) ? 'mariadb' : 'mysql'
  const end: BinlogPosition = {file: String(status.File), offset: Number(status.Position)}
  if (flavor === 'mariadb') {
    const [gtid] = await queryRows(conn, 'SELECT @@gtid_binlog_pos AS pos')
    const pos = String(gtid?.pos ?? '')
    if (pos !== '') end.gtid = pos
  } else {
    // MySQL prints multi-source sets across lines.
    const executed = String(status.Executed_Gtid_Set ?? '').replace(/\s+/g, '')
    if (executed !== '') end.gtid = executed
  }
  return {end, binaryLogs, serverId: Number(identity!.serverId), version, flavor, readAtMs: Date.now()}
}

/**
 * Binlog bytes from `from` to `to`, counting across file rotations: the rest of from's file, every
 * whole file in between, then `to.offset` bytes of to's file (file headers included; they are a few
 * hundred bytes per rotation). Files are ordered as `logs` lists them (SHOW BINARY LOGS: oldest first).
 * Negative when `from` lies after `to`. null when either file is not in `logs` (e.g. purged), since
 * the distance cannot then be known.
 */
export function binlogBytesBehind(logs: readonly BinaryLogFile[], from: BinlogPosition, to: BinlogPosition): number | null {
  if (from.file === to.file) return to.offset - from.offset
  const fromIndex = logs.findIndex((log) => log.name === from.file)
  const toIndex = logs.findIndex((log) => log.name === to.file)
  if (fromIndex < 0 || toIndex < 0) return null
  if (fromIndex > toIndex) return -binlogBytesBehind(logs, to, from)!
  let bytes = logs[fromIndex]!.sizeBytes - from.offset
  for (let i = fromIndex + 1; i < toIndex; i++) bytes += logs[i]!.sizeBytes
  return bytes + to.offset
}

/**
 * Checks the account may read the binlog's end and files (SHOW MASTER STATUS, SHOW BINARY LOGS).
 * Throws mysqlGrant naming REPLICATION CLIENT / BINLOG MONITOR, or mysqlConfig when the binlog is off.
 */
export async function checkSourceGrants(conn: Connection): Promise<void> {
  await readBinlogEnd(conn)
  await readBinaryLogs(conn)
}

/** SHOW MASTER STATUS's row; mysqlGrant when the account may not run it, mysqlConfig when the binlog is off. */
async function readBinlogEnd(conn: Connection): Promise<Row> {
  let status: Row | undefined
  try {
    status = await showMasterStatus(conn)
  } catch (error) {
    throw wrapPrivilegeError('SHOW MASTER STATUS', error)
  }
  if (status === undefined) throw binlogOffError()
  return status
}

export interface BinlogFormat {
  binlogFormat: string
  binlogRowImage: string
}

/** Checks the source writes row events (@@binlog_format = ROW); throws mysqlConfig otherwise. */
export async function checkRowFormat(conn: Connection): Promise<BinlogFormat> {
  const [row] = await queryRows(conn, 'SELECT @@log_bin AS logBin, @@binlog_format AS format, @@binlog_row_image AS image')
  if (Number(row!.logBin) !== 1) throw binlogOffError()
  const format = {binlogFormat: String(row!.format).toUpperCase(), binlogRowImage: String(row!.image).toUpperCase()}
  if (format.binlogFormat !== 'ROW') {
    throw new FerrydiagError(
      'mysqlConfig',
      `The source's binlog_format is ${format.binlogFormat}, expected ROW: statement events carry no rows to count or apply`,
      "SET GLOBAL binlog_format = 'ROW' (and binlog_format=ROW in the server config), then reconnect the pipeline.",
    )
  }
  return format
}
