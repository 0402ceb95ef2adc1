// What `ferrydiag binlog diff` reads and reports: transactions folded into fingerprints as they stream,
// the few read again in full to show their first difference, and the report (`--json`, schema
// "ferrydiag.binlog-diff", version 1).

import type {BinlogPosition} from './snapshot.js'

/** A row image as the binlog carries it: column name -> value (Buffers shown as hex in reports). */
export type RowImage = Record<string, unknown>

/** One transaction on one server, reduced to what comparing needs (kept for every selected GTID). */
export interface TransactionFingerprint {
  /** Canonical GTID text (`0-1-100`): the key transactions are compared by. */
  gtid: string
  /** Where its GTID event starts, and where its commit ends (`offset` = end position). */
  position: BinlogPosition
  endPosition: BinlogPosition
  /** Hash (sha1, base64) over its content in order: statements, and per row event its kind, table and row images. */
  fingerprint: string
  /** `schema.table` in order of first appearance. */
  tables: string[]
  /** Row events and statements (Query events other than BEGIN/COMMIT) in the transaction. */
  events: number
  /** Rows changed (an UPDATE row counts once). */
  rows: number
  /** Binlog timestamp of its GTID event, epoch ms (1-second resolution). */
  timestampMs: number
}

/** One event of a transaction read in full (only for transactions that differ). */
export type TransactionEvent =
  | {kind: 'query'; schema: string; query: string}
  | {kind: 'write' | 'delete'; table: string; rows: RowImage[]}
  | {kind: 'update'; table: string; rows: Array<{before: RowImage; after: RowImage}>}

export interface TransactionDetail {
  gtid: string
  position: BinlogPosition
  events: TransactionEvent[]
}

/** Where two servers' copies of one transaction first part ways. */
export type FirstDifference =
  /** One copy has fewer events: eventIndex is the first event the shorter one lacks. */
  | {kind: 'eventCount'; eventIndex: number; eventsA: number; eventsB: number}
  /** Different statements, event kinds or tables at eventIndex. */
  | {kind: 'event'; eventIndex: number; eventA: EventSummary; eventB: EventSummary}
  /** Same kind and table, different number of rows. */
  | {kind: 'rowCount'; eventIndex: number; table: string; rowsA: number; rowsB: number}
  /** Same kind, table and row count; row rowIndex differs in these columns (before and/or after image). */
  | {kind: 'row'; eventIndex: number; table: string; rowIndex: number; columns: string[]; rowA: RowChange; rowB: RowChange}
  /** The fingerprints differ but the decoded events compare equal (e.g. the transaction changed between reads). */
  | {kind: 'none'}

export interface EventSummary {
  kind: TransactionEvent['kind']
  /** `schema.table` for row events, the statement for queries (first 200 characters). */
  what: string
}

export interface RowChange {
  before?: RowImage
  after?: RowImage
}

/** A transaction as one server holds it, in a report. */
export interface ServerCopy {
  /** Index into BinlogDiffReport.servers. */
  server: number
  position: BinlogPosition
  fingerprint: string
  tables: string[]
  rows: number
  timestampMs: number
}

export interface DivergentTransaction {
  gtid: string
  copies: ServerCopy[]
  /**
   * Per server whose fingerprint differs from the first copy's: where it first differs from it. Absent
   * when more divergent GTIDs were found than --details allows reading in full.
   */
  differences?: Array<{server: number; against: number; first: FirstDifference}>
}

export interface PartialTransaction {
  gtid: string
  /** Indexes into BinlogDiffReport.servers. */
  presentOn: number[]
  missingOn: number[]
  /** Position on the first server holding it. */
  position: BinlogPosition
}

export interface ServerScanSummary {
  /** The DSN with its password masked. */
  dsn: string
  serverId: number
  version: string
  /** @@gtid_binlog_pos when the scan started. */
  gtidBinlogPos: string
  /** Where reading started and where it stopped. */
  readFrom: BinlogPosition
  readTo: BinlogPosition
  /** Transactions read (selected or not) and selected. */
  transactionsRead: number
  transactionsSelected: number
  elapsedMs: number
}

export type BinlogDiffSelection =
  | {mode: 'gtid'; text: string}
  | {mode: 'last'; transactions: number; text: string}
  | {mode: 'since'; sinceMs: number; text: string}

export interface BinlogDiffSummary {
  /** GTIDs held by two or more servers, whose copies were compared. */
  compared: number
  same: number
  different: number
  /** GTIDs missing from at least one server (listed in `partial`; those on 2+ servers are also compared). */
  partial: number
}

export interface BinlogDiffReport {
  schema: 'ferrydiag.binlog-diff'
  version: 1
  selection: BinlogDiffSelection
  servers: ServerScanSummary[]
  summary: BinlogDiffSummary
  /** Ordered by domain, sequence number, server id. */
  divergent: DivergentTransaction[]
  partial: PartialTransaction[]
}

export const BINLOG_DIFF_SCHEMA = 'ferrydiag.binlog-diff'
export const BINLOG_DIFF_VERSION = 1
