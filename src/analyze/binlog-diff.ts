// Pure steps of `binlog diff`: which binlog file to start reading from (Gtid_list events), comparing
// per-server fingerprints GTID by GTID, and finding where two full copies of a transaction first differ.

import type {
  BinlogDiffSummary,
  DivergentTransaction,
  EventSummary,
  FirstDifference,
  PartialTransaction,
  RowChange,
  RowImage,
  TransactionDetail,
  TransactionEvent,
  TransactionFingerprint,
} from '../model/binlog-diff.js'
import type {MariadbGtid, SeqInterval} from '../model/gtid.js'

/** A binlog file and the Gtid_list at its start (the last GTID per domain and server before it). */
export interface BinlogFileGtids {
  file: string
  gtidList: MariadbGtid[]
}

export type StartChoice =
  | {kind: 'file'; file: string}
  /** GTIDs of `domainId` up to `purgedThroughSeq` were in files no longer on the server. */
  | {kind: 'purged'; domainId: number; wantedFromSeq: number; purgedThroughSeq: number; oldestFile: string}

function maxSeq(list: MariadbGtid[], domainId: number): number | undefined {
  let max: number | undefined
  for (const gtid of list) if (gtid.domainId === domainId && (max === undefined || gtid.seqNo > max)) max = gtid.seqNo
  return max
}

/**
 * The latest file before which no wanted GTID can lie: for each domain, the last file whose Gtid_list
 * shows only sequence numbers below the wanted `from`; the earliest of those over the domains. Files
 * oldest first. When the oldest file's list already reaches `from`, the wanted GTIDs were purged.
 */
export function chooseStartFile(files: readonly BinlogFileGtids[], bounds: ReadonlyMap<number, SeqInterval>): StartChoice {
  if (files.length === 0) throw new RangeError('Expected at least one binlog file')
  let start = files.length - 1
  for (const [domainId, {from}] of bounds) {
    const oldestMax = maxSeq(files[0]!.gtidList, domainId)
    if (oldestMax !== undefined && oldestMax >= from) {
      return {kind: 'purged', domainId, wantedFromSeq: from, purgedThroughSeq: oldestMax, oldestFile: files[0]!.file}
    }
    let index = 0
    for (let i = files.length - 1; i >= 0; i--) {
      const max = maxSeq(files[i]!.gtidList, domainId)
      if (max === undefined || max < from) {
        index = i
        break
      }
    }
    start = Math.min(start, index)
  }
  return {kind: 'file', file: files[start]!.file}
}

/** Sort key of a MariaDB GTID text: domain, sequence number, server id; other flavours sort as text after. */
function gtidOrder(a: string, b: string): number {
  const pa = a.split('-')
  const pb = b.split('-')
  if (pa.length === 3 && pb.length === 3) {
    return Number(pa[0]) - Number(pb[0]) || Number(pa[2]) - Number(pb[2]) || Number(pa[1]) - Number(pb[1])
  }
  return a < b ? -1 : a > b ? 1 : 0
}

export interface FingerprintComparison {
  summary: BinlogDiffSummary
  /** Divergent GTIDs with every server's copy; `differences` is filled later from full reads. */
  divergent: DivergentTransaction[]
  partial: PartialTransaction[]
}

/**
 * Compares the servers' transactions GTID by GTID. A GTID on two or more servers is compared (same when
 * every copy has the same fingerprint); one missing from any server is listed as partial.
 */
export function compareFingerprints(servers: ReadonlyArray<ReadonlyMap<string, TransactionFingerprint>>): FingerprintComparison {
  const all = new Set<string>()
  for (const server of servers) for (const gtid of server.keys()) all.add(gtid)
  const gtids = [...all].sort(gtidOrder)
  const summary: BinlogDiffSummary = {compared: 0, same: 0, different: 0, partial: 0}
  const divergent: DivergentTransaction[] = []
  const partial: PartialTransaction[] = []
  for (const gtid of gtids) {
    const presentOn: number[] = []
    const missingOn: number[] = []
    servers.forEach((server, index) => (server.has(gtid) ? presentOn : missingOn).push(index))
    if (missingOn.length > 0) {
      summary.partial++
      partial.push({gtid, presentOn, missingOn, position: servers[presentOn[0]!]!.get(gtid)!.position})
    }
    if (presentOn.length < 2) continue
    summary.compared++
    const copies = presentOn.map((index) => ({index, tx: servers[index]!.get(gtid)!}))
    if (copies.every(({tx}) => tx.fingerprint === copies[0]!.tx.fingerprint)) {
      summary.same++
      continue
    }
    summary.different++
    divergent.push({
      gtid,
      copies: copies.map(({index, tx}) => ({
        server: index,
        position: tx.position,
        fingerprint: tx.fingerprint,
        tables: tx.tables,
        rows: tx.rows,
        timestampMs: tx.timestampMs,
      })),
    })
  }
  return {summary, divergent, partial}
}

function summarise(event: TransactionEvent): EventSummary {
  return {kind: event.kind, what: event.kind === 'query' ? event.query.slice(0, 200) : event.table}
}

/** Stable text of a value for comparing (Buffers by content, Dates by instant). */
function valueKey(value: unknown): string {
  if (Buffer.isBuffer(value)) return `b:${value.toString('hex')}`
  if (value instanceof Date) return `d:${value.getTime()}`
  return `j:${JSON.stringify(value)}`
}

function differingColumns(a: RowImage | undefined, b: RowImage | undefined, into: Set<string>): void {
  const names = new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])
  for (const name of names) if (valueKey(a?.[name]) !== valueKey(b?.[name])) into.add(name)
}

function rowChanges(event: TransactionEvent): RowChange[] {
  if (event.kind === 'update') return event.rows
  if (event.kind === 'write') return event.rows.map((after) => ({after}))
  if (event.kind === 'delete') return event.rows.map((before) => ({before}))
  return []
}

/** Where copy B of a transaction first differs from copy A: event by event, then row by row. */
export function findFirstDifference(a: TransactionDetail, b: TransactionDetail): FirstDifference {
  const count = Math.min(a.events.length, b.events.length)
  for (let i = 0; i < count; i++) {
    const ea = a.events[i]!
    const eb = b.events[i]!
    const sa = summarise(ea)
    const sb = summarise(eb)
    if (sa.kind !== sb.kind || sa.what !== sb.what || (ea.kind === 'query' && eb.kind === 'query' && ea.query !== eb.query)) {
      return {kind: 'event', eventIndex: i, eventA: sa, eventB: sb}
    }
    if (ea.kind === 'query') continue
    const ra = rowChanges(ea)
    const rb = rowChanges(eb)
    if (ra.length !== rb.length) return {kind: 'rowCount', eventIndex: i, table: sa.what, rowsA: ra.length, rowsB: rb.length}
    for (let r = 0; r < ra.length; r++) {
      const columns = new Set<string>()
      differingColumns(ra[r]!.before, rb[r]!.before, columns)
      differingColumns(ra[r]!.after, rb[r]!.after, columns)
      if (columns.size > 0) {
        return {kind: 'row', eventIndex: i, table: sa.what, rowIndex: r, columns: [...columns], rowA: ra[r]!, rowB: rb[r]!}
      }
    }
  }
  if (a.events.length !== b.events.length) return {kind: 'eventCount', eventIndex: count, eventsA: a.events.length, eventsB: b.events.length}
  return {kind: 'none'}
}
