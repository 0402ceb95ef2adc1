// `binlog diff` end to end: connect to every server, turn the selection into where each server's
// binlog must be read, fingerprint the selected transactions on all servers at once, compare them, and
// read the few that differ again in full to show their first difference. Read-only throughout.

import type {Connection} from 'mysql2/promise'
import {chooseStartFile, compareFingerprints, findFirstDifference} from '../analyze/binlog-diff.js'
import {FerrydiagError} from '../errors.js'
import {
  BINLOG_DIFF_SCHEMA,
  BINLOG_DIFF_VERSION,
  type BinlogDiffReport,
  type BinlogDiffSelection,
  type DivergentTransaction,
  type ServerScanSummary,
  type TransactionDetail,
  type TransactionFingerprint,
} from '../model/binlog-diff.js'
import {parseMariadbGtidList, selectionCovers, seqBoundsByDomain, type GtidSelection, type MariadbGtid, type SeqInterval} from '../model/gtid.js'
import type {BinlogPosition} from '../model/snapshot.js'
import {readGtidLists, scanBinlog} from './binlog-diff-scan.js'
import {connectMysql} from './connect.js'
import {describeEndpoint, parseDsn, type ParsedDsn} from './dsn.js'
import {readSourceStatus, type SourceStatusReading} from './source-status.js'

export type BinlogDiffRequestSelection =
  | {mode: 'gtid'; selection: GtidSelection}
  | {mode: 'last'; transactions: number}
  | {mode: 'since'; sinceMs: number; text: string}

export interface BinlogDiffRequest {
  dsns: string[]
  selection: BinlogDiffRequestSelection
  /** Divergent GTIDs read again in full to show their first difference (default 20). */
  details?: number
  idleTimeoutMs?: number
  /** Called as each server's fingerprinting pass reads transactions (server index, count, position). */
  onProgress?(server: number, transactionsRead: number, at: BinlogPosition): void
}

interface Server {
  parsed: ParsedDsn
  conn: Connection
  status: SourceStatusReading
}

async function openServer(parsed: ParsedDsn): Promise<Server> {
  const conn = await connectMysql(parsed, {role: 'server'})
  try {
    const status = await readSourceStatus(conn)
    if (status.flavor !== 'mariadb') {
      throw new FerrydiagError(
        'mysqlConfig',
        `The server at ${describeEndpoint(parsed)} runs MySQL ${status.version}; binlog diff reads MariaDB binlogs only so far`,
        'Compare MariaDB servers, or see the README (binlog diff) for how MySQL UUID:N GTIDs will be handled.',
      )
    }
    return {parsed, conn, status}
  } catch (error) {
    conn.destroy()
    throw error
  }
}

/** Opens every server; on any failure closes those already open and throws the first failure. */
async function openServers(parsed: ParsedDsn[]): Promise<Server[]> {
  const settled = await Promise.allSettled(parsed.map((p) => openServer(p)))
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed !== undefined) {
    for (const s of settled) if (s.status === 'fulfilled') s.value.conn.destroy()
    throw failed.reason
  }
  return settled.map((s) => (s as PromiseFulfilledResult<Server>).value)
}

/** --last N: per domain, the N sequence numbers ending at the highest any server has logged. */
function lastTransactions(servers: Server[], count: number): GtidSelection {
  const highest = new Map<number, number>()
  for (const server of servers) {
    for (const gtid of parseMariadbGtidList(server.status.end.gtid ?? '')) {
      highest.set(gtid.domainId, Math.max(highest.get(gtid.domainId) ?? 0, gtid.seqNo))
    }
  }
  const items = [...highest].map(([domainId, to]) => ({kind: 'mariadbRange' as const, domainId, from: Math.max(1, to - count + 1), to}))
  return {text: items.map((i) => `${i.domainId}-*-${i.from}..${i.to}`).join(','), items}
}

/** Binlog timestamp of a file's first transaction, epoch ms (null when the file holds none). */
async function firstTransactionMs(server: Server, index: number): Promise<number | null> {
  const log = server.status.binaryLogs[index]!
  let firstMs: number | null = null
  await scanBinlog({
    parsed: server.parsed,
    conn: server.conn,
    from: {file: log.name, offset: 4},
    to: index === server.status.binaryLogs.length - 1 ? server.status.end : {file: log.name, offset: log.sizeBytes},
    files: server.status.binaryLogs.map((l) => l.name),
    select: () => false,
    pastSelection: (_gtid, timestampMs) => ((firstMs = timestampMs), true),
    mode: 'fingerprint',
  })
  return firstMs
}

/**
 * --since: the newest file whose first transaction is stamped before `sinceMs` (binlog timestamps are
 * whole seconds, so older files hold nothing stamped at or after it); probed newest first.
 */
async function startForSince(server: Server, sinceMs: number): Promise<BinlogPosition> {
  const logs = server.status.binaryLogs
  for (let i = logs.length - 1; i > 0; i--) {
    const firstMs = await firstTransactionMs(server, i)
    if (firstMs !== null && firstMs < sinceMs) return {file: logs[i]!.name, offset: 4}
  }
  return {file: logs[0]!.name, offset: 4}
}

/** Where to start reading one server, or binlogPurged. */
async function startPosition(server: Server, bounds: ReadonlyMap<number, SeqInterval>, sinceMs: number | undefined): Promise<BinlogPosition> {
  const files = server.status.binaryLogs.map((log) => log.name)
  if (sinceMs !== undefined) return startForSince(server, sinceMs)
  if (bounds.size === 0) return {file: files[0]!, offset: 4}
  const choice = chooseStartFile(await readGtidLists(server.conn, server.parsed, files), bounds)
  if (choice.kind === 'purged') {
    throw new FerrydiagError(
      'binlogPurged',
      `The server at ${describeEndpoint(server.parsed)} no longer has the binlog for domain ${choice.domainId} from sequence ${choice.wantedFromSeq}: its oldest file ${choice.oldestFile} starts after sequence ${choice.purgedThroughSeq}`,
      `Start the selection after ${choice.purgedThroughSeq} in domain ${choice.domainId} (e.g. a smaller --last), or compare against a server that still has those files.`,
    )
  }
  return {file: choice.file, offset: 4}
}

function selectionSummary(request: BinlogDiffRequestSelection, selection: GtidSelection | undefined): BinlogDiffSelection {
  if (request.mode === 'gtid') return {mode: 'gtid', text: request.selection.text}
  if (request.mode === 'last') return {mode: 'last', transactions: request.transactions, text: selection?.text ?? ''}
  return {mode: 'since', sinceMs: request.sinceMs, text: request.text}
}

/** Reads one transaction in full on one server (from its GTID event to its commit). */
async function readDetail(server: Server, tx: {gtid: string; position: BinlogPosition; endPosition: BinlogPosition}, idleTimeoutMs?: number): Promise<TransactionDetail> {
  let detail: TransactionDetail | undefined
  await scanBinlog({
    parsed: server.parsed,
    conn: server.conn,
    from: tx.position,
    to: tx.endPosition,
    files: server.status.binaryLogs.map((log) => log.name),
    select: (gtid) => `${gtid.domainId}-${gtid.serverId}-${gtid.seqNo}` === tx.gtid,
    mode: 'detail',
    onDetail: (d) => (detail ??= d),
    idleTimeoutMs,
  })
  return detail ?? {gtid: tx.gtid, position: tx.position, events: []}
}

/** Runs the whole comparison. Throws FerrydiagError for bad input and unreachable or unfit servers. */
export async function runBinlogDiff(request: BinlogDiffRequest): Promise<BinlogDiffReport> {
  if (request.dsns.length < 2) {
    throw new FerrydiagError('badArgument', `binlog diff compares two or more servers, got ${request.dsns.length}`, 'Pass --servers DSN,DSN[,DSN...].')
  }
  const parsed = request.dsns.map((dsn) => parseDsn(dsn))
  const servers = await openServers(parsed)
  try {
    let selection: GtidSelection | undefined
    if (request.selection.mode === 'gtid') selection = request.selection.selection
    else if (request.selection.mode === 'last') selection = lastTransactions(servers, request.selection.transactions)
    const bounds = selection === undefined ? new Map<number, SeqInterval>() : seqBoundsByDomain(selection)
    const sinceMs = request.selection.mode === 'since' ? request.selection.sinceMs : undefined
    const select = (gtid: MariadbGtid, timestampMs: number): boolean =>
      selection !== undefined ? selectionCovers(selection, gtid) : timestampMs >= sinceMs!
    const pastSelection =
      selection === undefined || selection.items.some((item) => item.kind !== 'gtid' && item.kind !== 'mariadbRange')
        ? undefined
        : makePastSelection(bounds)

    const starts = await Promise.all(servers.map((server) => startPosition(server, bounds, sinceMs)))
    const maps = servers.map(() => new Map<string, TransactionFingerprint>())
    const scans = await Promise.all(
      servers.map((server, index) =>
        scanBinlog({
          parsed: server.parsed,
          conn: server.conn,
          from: starts[index]!,
          to: server.status.end,
          files: server.status.binaryLogs.map((log) => log.name),
          select,
          pastSelection: pastSelection?.(),
          mode: 'fingerprint',
          // A GTID logged twice on one server (possible outside gtid_strict_mode) keeps its first copy.
          onFingerprint: (tx) => void (maps[index]!.has(tx.gtid) || maps[index]!.set(tx.gtid, tx)),
          idleTimeoutMs: request.idleTimeoutMs,
          onProgress: request.onProgress && ((read, at) => request.onProgress!(index, read, at)),
        }),
      ),
    )
    if (maps.every((map) => map.size === 0)) {
      const what = request.selection.mode === 'since' ? `since ${new Date(sinceMs!).toISOString()}` : `for ${selection!.text}`
      throw new FerrydiagError(
        'noTransactions',
        `No server holds a transaction ${what} (read ${scans.map((s) => s.transactionsRead).join(' / ')} transactions)`,
        'Check the GTIDs with SELECT @@gtid_binlog_pos on each server, or widen --gtid/--since/--last.',
      )
    }
    const comparison = compareFingerprints(maps)
    const details = request.details ?? 20
    for (const divergent of comparison.divergent.slice(0, details)) {
      await addDifferences(divergent, servers, maps, request.idleTimeoutMs)
    }
    const summaries: ServerScanSummary[] = servers.map((server, index) => ({
      dsn: server.parsed.masked,
      serverId: server.status.serverId,
      version: server.status.version,
      gtidBinlogPos: server.status.end.gtid ?? '',
      readFrom: starts[index]!,
      readTo: scans[index]!.readTo,
      transactionsRead: scans[index]!.transactionsRead,
      transactionsSelected: scans[index]!.transactionsSelected,
      elapsedMs: Math.round(scans[index]!.elapsedMs),
    }))
    return {
      schema: BINLOG_DIFF_SCHEMA,
      version: BINLOG_DIFF_VERSION,
      selection: selectionSummary(request.selection, selection),
      servers: summaries,
      summary: comparison.summary,
      divergent: comparison.divergent,
      partial: comparison.partial,
    }
  } finally {
    await Promise.all(servers.map((server) => server.conn.end().catch(() => server.conn.destroy())))
  }
}

/**
 * A fresh per-scan predicate: true once, in every selected domain, a GTID past the selection's end has
 * been seen (sequence numbers rise within a domain; a transaction of another domain never stops reading).
 */
function makePastSelection(bounds: ReadonlyMap<number, SeqInterval>): () => (gtid: MariadbGtid) => boolean {
  return () => {
    const done = new Set<number>()
    return (gtid) => {
      const bound = bounds.get(gtid.domainId)
      if (bound !== undefined && gtid.seqNo > bound.to) done.add(gtid.domainId)
      return done.size === bounds.size
    }
  }
}

async function addDifferences(
  divergent: DivergentTransaction,
  servers: Server[],
  maps: ReadonlyArray<ReadonlyMap<string, TransactionFingerprint>>,
  idleTimeoutMs?: number,
): Promise<void> {
  const details = await Promise.all(divergent.copies.map((copy) => readDetail(servers[copy.server]!, maps[copy.server]!.get(divergent.gtid)!, idleTimeoutMs)))
  const reference = divergent.copies[0]!
  divergent.differences = []
  divergent.copies.forEach((copy, i) => {
    if (i === 0 || copy.fingerprint === reference.fingerprint) return
    divergent.differences!.push({server: copy.server, against: reference.server, first: findFirstDifference(details[0]!, details[i]!)})
  })
}
