// Reads one MariaDB server's binlog for `binlog diff`: the Gtid_list at the start of each file (to pick
// where to start), then a zongji stream from there to a fixed end position, folding each transaction into
// a fingerprint as it passes (or, for the few that differ, keeping its events in full). Never holds more
// than one transaction's events at a time.

import {createHash, type Hash} from 'node:crypto'
import type ZongJi from '@vlasky/zongji'
import type {AnyBinlogEvent, MariadbGtidEvent, QueryEvent, RotateEvent, RowsEvent, XidEvent} from '@vlasky/zongji'
import type {Connection} from 'mysql2/promise'
import type {BinlogFileGtids} from '../analyze/binlog-diff.js'
import {FerrydiagError} from '../errors.js'
import type {RowImage, TransactionDetail, TransactionEvent, TransactionFingerprint} from '../model/binlog-diff.js'
import {parseMariadbGtidList, type MariadbGtid} from '../model/gtid.js'
import type {BinlogPosition} from '../model/snapshot.js'
import {mapStreamError, pickReplicationServerId} from './binlog-counter.js'
import {loadZongJi} from './connect.js'
import {describeEndpoint, toConnectionOptions, type ParsedDsn} from './dsn.js'

type Row = Record<string, unknown>

/** Reads the Gtid_list event at the start of each file (SHOW BINLOG EVENTS … LIMIT 3: Format_desc, Gtid_list, …). */
export async function readGtidLists(conn: Connection, parsed: ParsedDsn, files: readonly string[]): Promise<BinlogFileGtids[]> {
  const lists: BinlogFileGtids[] = []
  for (const file of files) {
    let rows: Row[]
    try {
      rows = (await conn.query(`SHOW BINLOG EVENTS IN ${conn.escape(file)} LIMIT 3`))[0] as Row[]
    } catch (error) {
      const code = String((error as {code?: unknown}).code ?? '')
      if (code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR' || code === 'ER_ACCESS_DENIED_ERROR') {
        throw new FerrydiagError(
          'mysqlGrant',
          `The server at ${describeEndpoint(parsed)} refused SHOW BINLOG EVENTS to \`${parsed.user}\`: the account lacks REPLICATION SLAVE (REPLICATION REPLICA on MariaDB 10.5+)`,
          'GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO the DSN user.',
          {cause: error},
        )
      }
      throw error
    }
    const list = rows.find((row) => row.Event_type === 'Gtid_list')
    lists.push({file, gtidList: list === undefined ? [] : parseMariadbGtidList(String(list.Info))})
  }
  return lists
}

export interface ScanRequest {
  parsed: ParsedDsn
  /** A connection to the same server (to pick a replication server id no one uses). */
  conn: Connection
  /** Start at this file and offset (4 = the file's first event). */
  from: BinlogPosition
  /** Stop once an event ends at or after this position. */
  to: BinlogPosition
  /** Every binlog file of the server, oldest first (to tell whether a file lies past `to.file`). */
  files: readonly string[]
  /** Whether a transaction is wanted (is fingerprinted). */
  select(gtid: MariadbGtid, timestampMs: number): boolean
  /** True when no transaction at or after this GTID can be wanted: reading stops early. */
  pastSelection?(gtid: MariadbGtid, timestampMs: number): boolean
  /** Fingerprints each wanted transaction (default), or keeps its events in full ('detail'). */
  mode: 'fingerprint' | 'detail'
  onFingerprint?(tx: TransactionFingerprint): void
  onDetail?(tx: TransactionDetail): void
  /** Called after each transaction read (selected or not) with the count so far and the position. */
  onProgress?(transactionsRead: number, at: BinlogPosition): void
  /** Give up when no event arrives for this long, ms (default 30 000). */
  idleTimeoutMs?: number
}

export interface ScanResult {
  transactionsRead: number
  transactionsSelected: number
  readTo: BinlogPosition
  elapsedMs: number
}

/** One transaction while it streams past. */
interface OpenTransaction {
  gtid: string
  position: BinlogPosition
  timestampMs: number
  standalone: boolean
  selected: boolean
  hash?: Hash
  tables: string[]
  events: number
  rows: number
  detail?: TransactionEvent[]
}

const EVENTS = ['rotate', 'mariadbgtid', 'query', 'xid', 'xaprepare', 'tablemap', 'writerows', 'updaterows', 'deleterows']

/** JSON for hashing row images: zongji gives numbers, strings (also for big integers), Buffers, null. */
function hashable(rows: unknown): string {
  return JSON.stringify(rows, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))
}

/** Row values made printable and JSON-safe for reports: Buffers as 0x-hex. */
function printableRow(row: RowImage): RowImage {
  const out: RowImage = {}
  for (const [name, value] of Object.entries(row)) {
    out[name] = Buffer.isBuffer(value) ? `0x${value.toString('hex')}` : typeof value === 'bigint' ? value.toString() : value
  }
  return out
}

function streamError(error: unknown, parsed: ParsedDsn, serverId: number): FerrydiagError {
  const e = (error ?? {}) as {errno?: number; code?: string; message?: string}
  if (e.errno === 1236) {
    return new FerrydiagError(
      'binlogPurged',
      `The server at ${describeEndpoint(parsed)} cannot send the binlog from where it is needed: ${String(e.message ?? '').split('\n')[0]}`,
      'The binlog holding these GTIDs was purged: narrow --gtid/--since/--last to what SHOW BINARY LOGS still lists.',
      {cause: error},
    )
  }
  const noMetadata = /Insufficient permissions to access: (\S+)/.exec(String(e.message ?? ''))
  if (noMetadata) {
    // zongji reads column names from information_schema; a table dropped since (or hidden from the user) has none.
    return new FerrydiagError(
      'binlogUnreadable',
      `Could not decode the binlog of ${describeEndpoint(parsed)}: no column metadata for table ${noMetadata[1]} (dropped since, or not visible to \`${parsed.user}\`)`,
      'Select a range after the table was dropped, grant SELECT on it, or set binlog_row_metadata=FULL on the server so the binlog carries column names.',
      {cause: error},
    )
  }
  if (e.code === undefined && e.errno === undefined && !(error instanceof FerrydiagError)) {
    return new FerrydiagError(
      'binlogUnreadable',
      `Could not decode the binlog of ${describeEndpoint(parsed)}: ${String(e.message ?? error).split('\n')[0]}`,
      'Check that every table in the range still exists with the columns it had (or set binlog_row_metadata=FULL), then run again.',
      {cause: error},
    )
  }
  return mapStreamError(error, parsed, serverId)
}

/**
 * Streams [from, to) of one server's binlog and reports each selected transaction, folded (fingerprint)
 * or in full (detail). Throws FerrydiagError (grant, lost, purged, unreadable).
 */
export async function scanBinlog(request: ScanRequest): Promise<ScanResult> {
  const startedAt = performance.now()
  const result: ScanResult = {transactionsRead: 0, transactionsSelected: 0, readTo: {...request.from}, elapsedMs: 0}
  const toIndex = request.files.indexOf(request.to.file)
  const reachedEnd = (file: string, offset: number): boolean =>
    (file === request.to.file && offset >= request.to.offset) || (toIndex >= 0 && request.files.indexOf(file) > toIndex)
  if (reachedEnd(request.from.file, request.from.offset)) return {...result, elapsedMs: performance.now() - startedAt}

  const {serverId} = await pickReplicationServerId(request.conn)
  const {default: ZongJiClass} = await loadZongJi()
  const zongji = new ZongJiClass({...toConnectionOptions(request.parsed), dateStrings: true})
  const tableNames = new Map<string, string>()
  // Most transactions touch the same few table lists: keep one array per distinct list.
  const tableLists = new Map<string, string[]>()
  const internTables = (tables: string[]): string[] => {
    const key = tables.join('\0')
    let interned = tableLists.get(key)
    if (interned === undefined) tableLists.set(key, (interned = tables))
    return interned
  }
  let file = request.from.file
  let lastEnd = request.from.offset
  let open: OpenTransaction | undefined

  const close = (endOffset: number): void => {
    const tx = open
    open = undefined
    if (tx === undefined) return
    request.onProgress?.(result.transactionsRead, {file, offset: endOffset})
    if (!tx.selected) return
    result.transactionsSelected++
    if (request.mode === 'detail') {
      request.onDetail?.({gtid: tx.gtid, position: tx.position, events: tx.detail ?? []})
      return
    }
    request.onFingerprint?.({
      gtid: tx.gtid,
      position: tx.position,
      endPosition: {file, offset: endOffset},
      fingerprint: tx.hash!.digest('base64'),
      tables: internTables(tx.tables),
      events: tx.events,
      rows: tx.rows,
      timestampMs: tx.timestampMs,
    })
  }

  const tableOf = (event: RowsEvent): string => {
    const entry = event.tableMap?.[event.tableId]
    const name = entry === undefined ? `#${event.tableId}` : `${entry.parentSchema}.${entry.tableName}`
    let interned = tableNames.get(name)
    if (interned === undefined) tableNames.set(name, (interned = name))
    return interned
  }

  const addRows = (tx: OpenTransaction, kind: 'write' | 'update' | 'delete', event: RowsEvent & {rows: unknown[]}): void => {
    const table = tableOf(event)
    if (!tx.tables.includes(table)) tx.tables.push(table)
    tx.events++
    tx.rows += event.rows.length
    if (tx.detail !== undefined) {
      const rows = event.rows as Array<RowImage | {before: RowImage; after: RowImage}>
      if (kind === 'update') {
        const changes = rows as Array<{before: RowImage; after: RowImage}>
        tx.detail.push({kind, table, rows: changes.map((row) => ({before: printableRow(row.before), after: printableRow(row.after)}))})
      } else tx.detail.push({kind, table, rows: (rows as RowImage[]).map(printableRow)})
    } else {
      tx.hash!.update(`R${kind}\0${table}\0`)
      tx.hash!.update(hashable(event.rows))
      tx.hash!.update('\n')
    }
  }

  // Returns true when reading is complete.
  const handle = (event: AnyBinlogEvent): boolean => {
    const name = event.getEventName()
    if (name === 'rotate') {
      const rotate = event as RotateEvent
      file = rotate.binlogName
      lastEnd = rotate.position
      return reachedEnd(file, lastEnd)
    }
    if (name === 'mariadbgtid') {
      const g = event as MariadbGtidEvent
      close(lastEnd)
      const gtid: MariadbGtid = {flavor: 'mariadb', domainId: g.domainId, serverId: g.serverId, seqNo: Number(g.seqNo)}
      if (request.pastSelection?.(gtid, g.timestamp) === true) return true
      result.transactionsRead++
      const selected = request.select(gtid, g.timestamp)
      open = {
        gtid: `${gtid.domainId}-${gtid.serverId}-${gtid.seqNo}`,
        position: {file, offset: lastEnd},
        timestampMs: g.timestamp,
        standalone: g.standalone,
        selected,
        tables: [],
        events: 0,
        rows: 0,
      }
      if (selected && request.mode === 'detail') open.detail = []
      if (selected && request.mode === 'fingerprint') open.hash = createHash('sha1')
    } else if (open !== undefined) {
      const tx = open
      switch (name) {
        case 'query': {
          const q = event as QueryEvent
          const text = q.query.trim()
          if (text === 'COMMIT') {
            close(event.nextPosition)
            break
          }
          if (text !== 'BEGIN' && tx.selected) {
            tx.events++
            if (tx.detail !== undefined) tx.detail.push({kind: 'query', schema: q.schema, query: q.query})
            else tx.hash!.update(`Q\0${q.schema}\0${q.query}\n`)
          }
          if (tx.standalone) close(event.nextPosition)
          break
        }
        case 'xid':
        case 'xaprepare':
          close((event as XidEvent).nextPosition)
          break
        case 'writerows':
        case 'updaterows':
        case 'deleterows':
          if (tx.selected) addRows(tx, name === 'writerows' ? 'write' : name === 'updaterows' ? 'update' : 'delete', event as RowsEvent & {rows: unknown[]})
          break
      }
    }
    if (event.nextPosition > 0) {
      lastEnd = event.nextPosition
      result.readTo = {file, offset: lastEnd}
      if (reachedEnd(file, lastEnd)) {
        close(lastEnd)
        return true
      }
    }
    return false
  }

  const idleTimeoutMs = request.idleTimeoutMs ?? 30_000
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false
      let idle: NodeJS.Timeout | undefined
      const finish = (error?: FerrydiagError): void => {
        if (settled) return
        settled = true
        clearTimeout(idle)
        zongji.removeAllListeners('binlog')
        if (error === undefined) resolve()
        else reject(error)
      }
      const armIdle = (): void => {
        clearTimeout(idle)
        idle = setTimeout(
          () =>
            finish(
              new FerrydiagError(
                'mysqlLost',
                `The binlog stream from ${describeEndpoint(request.parsed)} sent nothing for ${idleTimeoutMs / 1000} s before reaching ${request.to.file}:${request.to.offset} (stopped at ${file}:${lastEnd})`,
                'Check that the server is up and not overloaded, then run again.',
              ),
            ),
          idleTimeoutMs,
        )
      }
      armIdle()
      zongji.on('error', (error: unknown) => finish(streamError(error, request.parsed, serverId)))
      zongji.on('binlog', (event: AnyBinlogEvent) => {
        if (settled) return
        armIdle()
        let done: boolean
        try {
          done = handle(event)
        } catch (error) {
          finish(streamError(error, request.parsed, serverId))
          return
        }
        if (done) finish()
      })
      zongji.start({serverId, filename: request.from.file, position: request.from.offset, includeEvents: EVENTS})
    })
  } finally {
    await stopZongji(zongji)
  }
  result.elapsedMs = performance.now() - startedAt
  return result
}

/** zongji stops within ~1 s (it KILLs its dump thread); bounded regardless. */
function stopZongji(zongji: ZongJi): Promise<void> {
  return new Promise((resolve) => {
    if (zongji.stopped) {
      resolve()
      return
    }
    const timer = setTimeout(resolve, 3000)
    zongji.once('stopped', () => {
      clearTimeout(timer)
      resolve()
    })
    zongji.stop()
  })
}
