// The primary's side of a replica failure, read-only: which transaction starts at the replica's executed
// coordinate (SHOW BINLOG EVENTS), its row images (a short zongji stream from that coordinate), and
// rows by primary key on either server.

import type ZongJi from '@vlasky/zongji'
import type {AnyBinlogEvent, RowsEvent} from '@vlasky/zongji'
import type {Connection} from 'mysql2/promise'
import type {BinlogCoordinate, BinlogRowEvent, PrimaryTransaction} from '../model/replica.js'
import {pickReplicationServerId} from './binlog-counter.js'
import {loadZongJi} from './connect.js'
import {toConnectionOptions, type ParsedDsn} from './dsn.js'

type Row = Record<string, unknown>

/** How long the row-image stream may take before we give up on it (ms). */
const STREAM_BUDGET_MS = 5000
/** Events read from the coordinate while looking for the failing transaction's GTID. */
const EVENT_SCAN_LIMIT = 200

/**
 * The transaction that starts at or after `from` on the primary (SHOW BINLOG EVENTS), optionally the one
 * with GTID `gtid`: its GTID, where its GTID event starts, and its event types in order.
 */
export async function findTransactionAt(conn: Connection, from: BinlogCoordinate, gtid: string | null): Promise<{gtid: string; coordinate: BinlogCoordinate; eventTypes: string[]} | null> {
  const [rows] = await conn.query(`SHOW BINLOG EVENTS IN ? FROM ${Number(from.pos)} LIMIT ${EVENT_SCAN_LIMIT}`, [from.file])
  let current: {gtid: string; coordinate: BinlogCoordinate; eventTypes: string[]} | null = null
  for (const row of rows as Row[]) {
    const type = String(row.Event_type)
    const info = String(row.Info ?? '')
    // MariaDB: Event_type Gtid, Info "BEGIN GTID 0-1-5" / "GTID 0-1-5"; MySQL: Gtid, Info "SET @@SESSION.GTID_NEXT= 'uuid:5'".
    const found = /GTID (\d+-\d+-\d+)/.exec(info)?.[1] ?? /GTID_NEXT= '([^']+)'/.exec(info)?.[1]
    if (type === 'Gtid' && found !== undefined) {
      if (current !== null && (gtid === null || current.gtid === gtid)) return current
      current = {gtid: found, coordinate: {file: from.file, pos: Number(row.Pos)}, eventTypes: []}
      continue
    }
    current?.eventTypes.push(type)
  }
  return current !== null && (gtid === null || current.gtid === gtid) ? current : null
}

/**
 * Streams the primary's binlog from `coordinate` (a transaction's GTID event) until that transaction's
 * commit and returns its row events with their images. Needs REPLICATION SLAVE on the primary.
 */
export async function readTransactionRows(parsed: ParsedDsn, conn: Connection, coordinate: BinlogCoordinate): Promise<BinlogRowEvent[]> {
  const serverId = (await pickReplicationServerId(conn)).serverId
  const {default: ZongJiClass} = await loadZongJi()
  const zongji = new ZongJiClass(toConnectionOptions(parsed, STREAM_BUDGET_MS))
  const events: BinlogRowEvent[] = []
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no commit within ${STREAM_BUDGET_MS} ms of streaming from ${coordinate.file}:${coordinate.pos}`)), STREAM_BUDGET_MS)
      let finished = false
      const done = (error?: Error): void => {
        finished = true
        clearTimeout(timer)
        if (error) reject(error)
        else resolve()
      }
      zongji.on('error', (error: Error) => done(error))
      zongji.on('binlog', (event: AnyBinlogEvent) => {
        // Events already read past the commit arrive before stop() takes effect.
        if (finished) return
        const name = event.getEventName()
        if (name === 'xid' || (name === 'query' && /^COMMIT/i.test(String((event as {query?: unknown}).query ?? '')))) {
          done()
          return
        }
        if (name !== 'writerows' && name !== 'updaterows' && name !== 'deleterows') return
        const rowsEvent = event as RowsEvent & {rows: Array<Record<string, unknown>>}
        const table = rowsEvent.tableMap?.[rowsEvent.tableId]
        const kind = name === 'writerows' ? 'write' : name === 'updaterows' ? 'update' : 'delete'
        events.push({
          kind,
          table: table ? `${table.parentSchema}.${table.tableName}` : `table#${rowsEvent.tableId}`,
          rows: rowsEvent.rows.map((row) =>
            kind === 'update'
              ? {before: row.before as Record<string, unknown>, after: row.after as Record<string, unknown>}
              : kind === 'write'
                ? {after: row}
                : {before: row},
          ),
        })
      })
      zongji.start({
        serverId,
        filename: coordinate.file,
        position: coordinate.pos,
        includeEvents: ['tablemap', 'writerows', 'updaterows', 'deleterows', 'xid', 'query'],
      })
    })
  } finally {
    zongji.stop()
  }
  return events
}

/** Primary key columns of `schema.table`, in key order (empty when the table has none or is unknown). */
export async function readPrimaryKey(conn: Connection, table: string): Promise<string[]> {
  const [schema, name] = splitTable(table)
  const [rows] = await conn.query(
    "SELECT COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
    [schema, name],
  )
  return (rows as Row[]).map((r) => String(r.c))
}

/** Columns of a named unique key (for duplicate-key messages naming a key other than PRIMARY). */
export async function readKeyColumns(conn: Connection, table: string, keyName: string): Promise<string[]> {
  const [schema, name] = splitTable(table)
  const [rows] = await conn.query(
    'SELECT COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = ? ORDER BY SEQ_IN_INDEX',
    [schema, name, keyName],
  )
  return (rows as Row[]).map((r) => String(r.c))
}

/** The row of `table` whose key columns equal `key`, or null. */
export async function readRowByKey(conn: Connection, table: string, key: Record<string, unknown>): Promise<Record<string, unknown> | null> {
  const [schema, name] = splitTable(table)
  const columns = Object.keys(key)
  if (columns.length === 0) return null
  const where = columns.map((c) => `${quoteIdent(c)} = ?`).join(' AND ')
  const [rows] = await conn.query(`SELECT * FROM ${quoteIdent(schema)}.${quoteIdent(name)} WHERE ${where} LIMIT 1`, columns.map((c) => key[c]))
  const row = (rows as Row[])[0]
  return row === undefined ? null : {...row}
}

function splitTable(table: string): [string, string] {
  const dot = table.indexOf('.')
  return dot < 0 ? ['', table] : [table.slice(0, dot), table.slice(dot + 1)]
}

function quoteIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``
}
