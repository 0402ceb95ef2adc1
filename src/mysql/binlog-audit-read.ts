// Reads the events `ferrydiag binlog audit` judges, from the source over its own replication connection
// or from local binlog files, and feeds them to the auditor as they stream (bounded memory).

import {stat} from 'node:fs/promises'
import {basename} from 'node:path'
import {BinlogAuditor, type AuditOptions} from '../analyze/binlog-audit.js'
import {FerrydiagError} from '../errors.js'
import type {BinlogAuditReport, ConsumerAck, ConsumerDescription, DeliveredIndex, LiveRoute, RowsSubscription} from '../model/binlog-audit.js'
import {pickReplicationServerId} from './binlog-counter.js'
import {readBinlogFile, streamBinlogEvents} from './binlog-events.js'
import {connectMysql} from './connect.js'
import {describeEndpoint, parseDsn} from './dsn.js'
import {readSourceStatus} from './source-status.js'

export interface BinlogAuditRequest {
  acks: ConsumerAck[]
  /** The live route's delivered positions (compact), its rows subscription and window. */
  delivered?: DeliveredIndex
  subscription?: RowsSubscription
  live?: LiveRoute
  consumer: ConsumerDescription
  /** Source DSN (read over replication), or local binlog files (in binlog order). */
  source?: string
  binlogFiles?: string[]
  from?: {file: string; pos: number}
  verifyChecksums: boolean
  /** Judge DDL and statement-only transactions too (default: row changes only). */
  allTransactions?: boolean
  listLimit: number
  serverId?: number
  /** Called every few thousand events with the file and position reached. */
  onProgress?: (file: string, pos: number, events: number) => void
}

/** Runs the audit; throws FerrydiagError (mysql*, binlogPurged) when the events cannot be read. */
export async function auditBinlog(request: BinlogAuditRequest): Promise<BinlogAuditReport> {
  return request.source !== undefined ? auditFromSource(request, request.source) : auditFromFiles(request, request.binlogFiles ?? [])
}

const PROGRESS_EVERY = 4096

/** The auditor for one request, over `files` (name and size each) read as `read` says. */
function newAuditor(request: BinlogAuditRequest, files: AuditOptions['files'], read: AuditOptions['read']): BinlogAuditor {
  return new BinlogAuditor({
    acks: request.acks,
    delivered: request.delivered,
    subscription: request.subscription,
    live: request.live ?? null,
    consumer: request.consumer,
    files,
    from: request.from,
    allTransactions: request.allTransactions,
    listLimit: request.listLimit,
    read,
  })
}

async function auditFromFiles(request: BinlogAuditRequest, paths: string[]): Promise<BinlogAuditReport> {
  const started = performance.now()
  const sorted = [...paths].sort((a, b) => basename(a).localeCompare(basename(b)))
  // Sizes first (the auditor reports them per file), then events.
  const files = []
  for (const path of sorted) {
    try {
      files.push({name: basename(path), sizeBytes: (await stat(path)).size})
    } catch (error) {
      throw new FerrydiagError('badArgument', `Cannot read binlog file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, 'Check the paths given to --binlog-file.', {cause: error})
    }
  }
  const auditor = newAuditor(request, files, {kind: 'local-files', from: sorted.join(', '), serverId: null, checksumsVerified: request.verifyChecksums})
  let events = 0
  for (const path of sorted) {
    const summary = await readBinlogFile(
      path,
      (event) => {
        auditor.onEvent(event)
        if (++events % PROGRESS_EVERY === 0) request.onProgress?.(event.file, event.endPos, events)
      },
      {verifyChecksums: request.verifyChecksums},
    )
    if (summary.damage !== undefined) auditor.onFileDamage(summary.file, summary.damage)
  }
  return auditor.finish(performance.now() - started)
}

async function auditFromSource(request: BinlogAuditRequest, dsn: string): Promise<BinlogAuditReport> {
  const parsed = parseDsn(dsn)
  const conn = await connectMysql(parsed, {role: 'source'})
  let logs
  let serverId = request.serverId
  try {
    logs = (await readSourceStatus(conn)).binaryLogs
    serverId ??= (await pickReplicationServerId(conn)).serverId
  } finally {
    await conn.end().catch(() => conn.destroy())
  }
  const names = logs.map((log) => log.name)
  const ackFiles = [...new Set([...request.acks.flatMap((ack) => (ack.file === null ? [] : [ack.file])), ...(request.delivered?.files.keys() ?? [])])]
  const wanted = request.from === undefined ? ackFiles : [...ackFiles, request.from.file]
  const oldest = names[0]
  const purged = wanted.filter((file) => !names.includes(file) && oldest !== undefined && file < oldest).sort()
  if (purged.length > 0) {
    throw new FerrydiagError(
      'binlogPurged',
      `The source at ${describeEndpoint(parsed)} no longer has ${purged.join(', ')} (purged; its oldest binlog is ${oldest})`,
      'Audit from a file the source still holds (--from), or point --binlog-file at saved copies of the purged files.',
    )
  }
  const inRange = wanted.filter((file) => names.includes(file)).sort()
  const firstFile = request.from?.file ?? inRange[0] ?? oldest
  if (firstFile === undefined) {
    throw new FerrydiagError('mysqlConfig', `The source at ${describeEndpoint(parsed)} lists no binlog files`, 'Enable the binlog (log_bin) on the source.')
  }
  // Read through the end of the last file the consumer named (its tail is reported as pending), or to
  // the binlog's end when the consumer gave only GTIDs.
  const gtidOnly = request.acks.some((ack) => ack.file === null) || (request.delivered?.gtids.size ?? 0) > 0
  const lastFile = gtidOnly ? undefined : inRange.at(-1)
  const started = performance.now()
  const auditor = newAuditor(request, logs, {kind: 'replication', from: parsed.masked, serverId, checksumsVerified: request.verifyChecksums})
  let events = 0
  await streamBinlogEvents(parsed, {
    file: firstFile,
    pos: 4,
    serverId,
    verifyChecksums: request.verifyChecksums,
    onEvent: (event) => {
      if (event.artificial) return true
      if (lastFile !== undefined && event.file > lastFile) return false
      auditor.onEvent(event)
      if (++events % PROGRESS_EVERY === 0) request.onProgress?.(event.file, event.endPos, events)
      return true
    },
  })
  return auditor.finish(performance.now() - started)
}
