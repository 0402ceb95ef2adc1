// The data of `ferrydiag binlog audit`: what a consumer acknowledged, what the source's binlog holds,
// and the report comparing them (also the `--json` document: schema "ferrydiag.binlog-audit", v2; v2 added
// the live route: consumer kind 'live-pipeline' and the `live` object).
// Positions are byte offsets in a binlog file; an event's end position is where the next one starts.

export const BINLOG_AUDIT_SCHEMA = 'ferrydiag.binlog-audit'
export const BINLOG_AUDIT_VERSION = 2

/** Worst first: the verdict is the first of these that applies. */
export type BinlogAuditVerdict = 'corrupt' | 'invalid-resume-point' | 'lost' | 'complete'

/** One position the consumer acknowledged: a `file:end_pos` or a GTID. */
export interface ConsumerAck {
  /** Line of the positions log (1-based), or row number of the checkpoint table. */
  line: number
  /** Binlog file and end position, or null for a GTID line. */
  file: string | null
  pos: number | null
  /** "domain-server-seq" (MariaDB) or "uuid:seq" (MySQL), or null for a file:pos line. */
  gtid: string | null
}

/** positions-file / checkpoint-table: what the consumer recorded; live-pipeline: what a running pipeline's zongji handed on during the window. */
export type ConsumerSourceKind = 'positions-file' | 'checkpoint-table' | 'live-pipeline' | 'none'

/**
 * What a consumer delivered, compact (the live route builds it as positions stream in, never keeping one
 * object per event): per binlog file its distinct delivered end positions, ascending; and GTIDs delivered
 * without a file position.
 */
export interface DeliveredIndex {
  files: ReadonlyMap<string, readonly number[]>
  gtids: ReadonlySet<string>
}

/**
 * Which row changes the consumer subscribes to (zongji's includeSchema/excludeSchema and the rows events
 * of includeEvents/excludeEvents): a transaction none of whose rows events pass is not judged.
 * Schema maps: database -> true (every table) or the table names.
 */
export interface RowsSubscription {
  includeSchema: Record<string, true | string[]> | null
  excludeSchema: Record<string, true | string[]> | null
  /** Kinds of rows events handed on; null: all. */
  kinds: Array<'write' | 'update' | 'delete'> | null
}

/** A position as the live route saw it: file, end position, GTID of its transaction. */
export interface LivePosition {
  file: string
  pos: number
  gtid: string | null
}

/** The live route: where the positions came from and what the window saw. */
export interface LiveRoute {
  /** Process id of the pipeline (null with --inspect when not known). */
  pid: number | null
  inspect: string
  /**
   * The stream audited (from --source's endpoint, else the busiest): its zongji instances with the same
   * endpoint and filters, one after the other (a pipeline that restarts its stream), and its filters.
   */
  streamer: {instances: number; host: string | null; port: number | null; subscription: RowsSubscription}
  /** Other streams (another endpoint or other filters) that handed on events in the window (not audited). */
  otherStreamers: number
  windowMs: number
  /** window: the full --window; interrupted: Ctrl-C/SIGTERM/SIGHUP; target-exited: the pipeline went away (what was seen before is audited). */
  endedBy: 'window' | 'interrupted' | 'target-exited'
  /** Events zongji handed to the pipeline's listeners during the window, and the records drained (one per transaction). */
  eventsSeen: number
  records: number
  /** First position seen, and the last one delivered when the window ended: the audited range is between them. */
  first: LivePosition | null
  last: LivePosition | null
  /** Records the target's ring could not keep (the CLI fell behind): the audit is judged from after the last one. */
  missed: number
  judgedFrom: {file: string; pos: number} | null
}

/** Where the acknowledgements came from. */
export interface ConsumerDescription {
  kind: ConsumerSourceKind
  /** Path of the positions log, or `db.table` of the checkpoint (with its masked DSN). */
  name: string
  acks: number
  gtidAcks: number
}

/** The 19-byte header every binlog event (format v4) starts with, as stored. */
export interface BinlogEventHeader {
  /** Seconds since the epoch (1-second resolution). */
  timestampSec: number
  type: number
  serverId: number
  /** Whole event, header and checksum included. */
  sizeBytes: number
  /** Position just after the event in its file (0 for artificial events). */
  endPos: number
  flags: number
}

export type ChecksumState = 'ok' | 'mismatch' | 'none'

/**
 * One decoded binlog event (src/mysql/binlog-events.ts reads them from files or a replication stream;
 * the audit judges them). Positions are byte offsets in `file`.
 */
export interface BinlogEventRecord extends BinlogEventHeader {
  file: string
  /** Where the event starts: endPos - sizeBytes (meaningless when artificial). */
  startPos: number
  typeName: string
  /** Made up by the server for the stream (artificial flag, or end position 0): belongs to no file. */
  artificial: boolean
  /** Gtid event: "domain-server-seq" (MariaDB) or "uuid:seq" (MySQL). */
  gtid?: string
  /** MariaDB Gtid event flag FL_STANDALONE: the group is one statement with no COMMIT/XID. */
  gtidStandalone?: boolean
  /** Rotate event: the file and position the stream continues at. */
  rotate?: {nextFile: string; nextPos: number}
  /** Table_map and rows events: `schema.table` (rows events through the table map they follow). */
  table?: string
  /** Query event text, first 64 characters (BEGIN, COMMIT, DDL). */
  queryPrefix?: string
  /** Format_desc: the checksum algorithm it announces for the events that follow (0 off, 1 CRC32). */
  checksumAlg?: number
  /** CRC32 of the event: checked only when the reader verifies; 'none' when the binlog has none. */
  checksum: ChecksumState
  /** Stored and computed CRC32 on a mismatch. */
  crcStored?: number
  crcComputed?: number
}

/** A file as read: its name and size (SHOW BINARY LOGS, or the local copy's size). */
export interface AuditedFileInput {
  name: string
  sizeBytes: number | null
}

/** One event named in the report. */
export interface AuditEventRef {
  file: string
  /** Where the event starts and ends (its end_log_pos) in `file`. */
  startPos: number
  endPos: number
  /** Binlog event type name, e.g. Write_rows_v1, Xid, Table_map. */
  type: string
  /** GTID of the transaction the event belongs to. */
  gtid: string | null
  /** `schema.table` for Table_map and rows events. */
  table: string | null
  timestampSec: number
}

export type FileAuditStatus = 'before-range' | 'complete' | 'tail-lost' | 'skipped' | 'gaps' | 'pending'

/** One binlog file of the range, at its boundary. */
export interface FileAudit {
  file: string
  /** Size the source lists (or the copy's size); null when unknown. */
  sizeBytes: number | null
  /** End position of the file's Rotate event (null: no Rotate yet, the file is the active one). */
  rotateEndPos: number | null
  /** End of the last event read from the file. */
  lastEventEndPos: number
  /** Highest position the consumer acknowledged in this file (file:pos lines, or ends of GTID-acknowledged transactions). */
  lastAckedPos: number | null
  events: number
  transactions: number
  deliveredTransactions: number
  lostTransactions: number
  lostEvents: number
  /** Start of the first lost event in this file. */
  firstLostPos: number | null
  /** Transactions after the consumer's last acknowledgement (not yet delivered, not lost). */
  pendingTransactions: number
  status: FileAuditStatus
}

/** A run of consecutive lost transactions within one file. */
export interface LossGap {
  file: string
  startPos: number
  endPos: number
  transactions: number
  events: number
  firstGtid: string | null
  lastGtid: string | null
  /** The consumer's last delivery before the gap, and its next one after it. */
  deliveredBefore: {file: string; endPos: number} | null
  deliveredAfter: {file: string; startPos: number} | null
}

/**
 * not-event-boundary: inside an event; beyond-file-end: past the file's last event; no-such-file: a file
 * the source never wrote (yet); rotate-position-with-new-file: an event boundary of the file, but equal to
 * the end of the previous file's Rotate event and the first position acknowledged in the file (nothing
 * before it was delivered): the old file's position paired with the new file's name.
 */
export type ResumePointReason = 'not-event-boundary' | 'beyond-file-end' | 'no-such-file' | 'rotate-position-with-new-file'

/** A position the consumer recorded that a restart cannot resume from correctly. */
export interface InvalidResumePoint {
  line: number
  file: string
  pos: number
  reason: ResumePointReason
  /** The event the position falls inside (not-event-boundary). */
  insideEvent: AuditEventRef | null
  /** Set when pos is the end of the previous file's Rotate event: the old file's position paired with the new file's name. */
  rotateOf: {file: string; rotateEndPos: number} | null
  /** What a restart from it would skip: every transaction event of `file` before pos. */
  wouldSkip: {events: number; transactions: number; firstGtid: string | null; lastGtid: string | null; listed: AuditEventRef[]}
}

export type ChecksumProblemKind = 'crc-mismatch' | 'torn-tail' | 'bad-header' | 'bad-magic'

/** Damage found reading raw events. torn-tail: the last event declares more bytes than the file holds; crc-mismatch: a whole event whose CRC32 does not match. */
export interface ChecksumProblem {
  file: string
  kind: ChecksumProblemKind
  /** Offset of the event in the file (0 for bad-magic). */
  offset: number
  type: string | null
  declaredSizeBytes: number | null
  availableBytes: number | null
  crcStored: number | null
  crcComputed: number | null
}

export interface BinlogAuditReport {
  schema: typeof BINLOG_AUDIT_SCHEMA
  version: typeof BINLOG_AUDIT_VERSION
  verdict: BinlogAuditVerdict
  /** Where events were read: the source (masked DSN) over replication, or local files. */
  read: {kind: 'replication' | 'local-files'; from: string; serverId: number | null; checksumsVerified: boolean}
  consumer: ConsumerDescription
  /** The live route's window (consumer.kind 'live-pipeline'), else null. */
  live: LiveRoute | null
  /** First and last transaction the audit judged: from the first delivery (or --from) to the last. */
  range: {from: {file: string; pos: number} | null; to: {file: string; pos: number} | null}
  files: FileAudit[]
  gaps: LossGap[]
  /** Every event of every lost transaction, oldest first, at most `listLimit`. */
  lost: AuditEventRef[]
  lostTotals: {transactions: number; events: number}
  pendingTotals: {transactions: number; events: number}
  invalidResumePoints: InvalidResumePoint[]
  checksumProblems: ChecksumProblem[]
  eventsRead: number
  eventsChecksummed: number
  /** Lists (lost, gaps, wouldSkip.listed, problems) stop at this many entries; totals are always complete. */
  listLimit: number
  readMs: number
}
