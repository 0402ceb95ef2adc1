// Text for `ferrydiag binlog audit`: the verdict, one row per binlog file at its boundary, the gaps and
// every lost event, invalid resume points with what a restart would skip, and checksum damage.
// Positions and sizes are exact byte offsets (no unit scaling: they are compared with SHOW BINLOG EVENTS).

import Table from 'cli-table3'
import type {AuditEventRef, BinlogAuditReport, ChecksumProblem, InvalidResumePoint, LiveRoute, LivePosition} from '../model/binlog-audit.js'
import {formatDurationMs} from '../units.js'

const TABLE_STYLE = {head: [], border: [], compact: true}

const VERDICT_TEXT: Record<BinlogAuditReport['verdict'], string> = {
  complete: 'complete: every transaction in the range was delivered',
  lost: 'lost: the consumer never delivered some transactions',
  'invalid-resume-point': 'invalid-resume-point: the consumer recorded a position no restart can resume from correctly',
  corrupt: 'corrupt: binlog events fail their checksum or are cut short',
}

function orDash(value: number | string | null): string {
  return value === null ? '-' : String(value)
}

function eventLine(event: AuditEventRef): string {
  return `  ${event.file}:${event.startPos}..${event.endPos}  ${event.type.padEnd(14)} ${event.gtid ?? '-'}${event.table === null ? '' : `  ${event.table}`}`
}

function resumeLines(point: InvalidResumePoint): string[] {
  const where = `${point.file}:${point.pos} (line ${point.line})`
  const why: Record<InvalidResumePoint['reason'], string> = {
    'not-event-boundary': `is not an event boundary of ${point.file}: it falls inside ${point.insideEvent?.type} ${point.insideEvent?.startPos}..${point.insideEvent?.endPos}`,
    'beyond-file-end': `lies beyond the last event of ${point.file}`,
    'no-such-file': 'names a file the source does not have',
    'rotate-position-with-new-file': `is an event boundary of ${point.file}, but the first position acknowledged there: nothing before it in the file was delivered`,
  }
  const lines = [`${where} ${why[point.reason]}`]
  if (point.rotateOf !== null) {
    lines.push(`  ${point.pos} is where ${point.rotateOf.file}'s Rotate event ends: the old file's position was paired with the new file's name`)
  }
  const skip = point.wouldSkip
  lines.push(
    skip.events === 0
      ? '  a restart from it would be refused by the server'
      : `  a restart from it would skip ${skip.transactions} transaction(s), ${skip.events} event(s) of ${point.file} (GTID ${skip.firstGtid ?? '-'} .. ${skip.lastGtid ?? '-'})` +
          (point.reason === 'not-event-boundary' ? ' (a server refuses to stream from inside an event; one that resumed at the next boundary would skip these):' : ':'),
  )
  for (const event of skip.listed) lines.push(`  ${eventLine(event)}`)
  if (skip.listed.length < skip.events) lines.push(`    ... ${skip.events - skip.listed.length} more`)
  return lines
}

function problemLine(problem: ChecksumProblem): string {
  switch (problem.kind) {
    case 'crc-mismatch':
      return `${problem.file} offset ${problem.offset}: ${problem.type} event of ${problem.declaredSizeBytes} bytes is corrupt: CRC32 stored ${hex(problem.crcStored)}, computed ${hex(problem.crcComputed)}`
    case 'torn-tail':
      return `${problem.file} offset ${problem.offset}: torn tail: the event declares ${problem.declaredSizeBytes ?? '≥19'} bytes, only ${problem.availableBytes} remain in the file`
    case 'bad-header':
      return `${problem.file} offset ${problem.offset}: damaged event header (declared size ${problem.declaredSizeBytes} does not match its end position); nothing after it can be read`
    case 'bad-magic':
      return `${problem.file}: not a binlog file (no \\xfebin magic)`
  }
}

function livePosition(at: LivePosition | null): string {
  return at === null ? '-' : `${at.file}:${at.pos}${at.gtid === null ? '' : ` (GTID ${at.gtid})`}`
}

/** The live route's window: what was recorded, how it ended, and what limits the range. */
function liveLines(live: LiveRoute): string[] {
  const ended: Record<LiveRoute['endedBy'], string> = {
    window: 'the full window',
    interrupted: 'interrupted: the range ends at what was delivered until then',
    'target-exited': 'the pipeline exited during the window: what it delivered until then is audited',
  }
  const sub = live.streamer.subscription
  const filters = [
    sub.includeSchema === null ? null : `includeSchema ${JSON.stringify(sub.includeSchema)}`,
    sub.excludeSchema === null ? null : `excludeSchema ${JSON.stringify(sub.excludeSchema)}`,
    sub.kinds === null ? null : `rows events ${sub.kinds.join('/')}`,
  ].filter((text) => text !== null)
  const lines = [
    `window: ${formatDurationMs(live.windowMs)} (${ended[live.endedBy]}); ${live.eventsSeen} events handed to the pipeline's listeners, ${live.records} positions recorded`,
    `delivered: first seen ${livePosition(live.first)}, last delivered ${livePosition(live.last)}`,
  ]
  if (filters.length > 0) lines.push(`judged: only row changes the streamer subscribes to (${filters.join(', ')})`)
  if (live.otherStreamers > 0) lines.push(`${live.otherStreamers} other zongji stream(s) (another server or other filters) handed on events and were not audited`)
  if (live.missed > 0 && live.judgedFrom !== null) {
    lines.push(`${live.missed} position(s) did not fit the target's ring before the CLI read it: judged only after ${live.judgedFrom.file}:${live.judgedFrom.pos}`)
  }
  return lines
}

function hex(value: number | null): string {
  return value === null ? '-' : `0x${value.toString(16).padStart(8, '0')}`
}

export function renderBinlogAuditText(report: BinlogAuditReport): string {
  const out: string[] = []
  out.push(`binlog audit: ${VERDICT_TEXT[report.verdict]}`)
  out.push(
    `read ${report.eventsRead} events from ${report.read.kind === 'replication' ? `${report.read.from} (replication, server id ${report.read.serverId})` : report.read.from} in ${formatDurationMs(report.readMs)}` +
      (report.read.checksumsVerified ? `; ${report.eventsChecksummed} CRC32 checked` : ''),
  )
  out.push(
    report.consumer.kind === 'none'
      ? 'consumer: none given (events and checksums only)'
      : report.consumer.kind === 'live-pipeline'
        ? `consumer: running pipeline ${report.consumer.name}, positions its zongji handed on during the window`
        : `consumer: ${report.consumer.kind} ${report.consumer.name}, ${report.consumer.acks} acknowledgements (${report.consumer.gtidAcks} GTIDs)`,
  )
  if (report.live !== null) out.push(...liveLines(report.live))
  const range = report.range
  out.push(`range judged: ${range.from === null ? '-' : `${range.from.file}:${range.from.pos}`} .. ${range.to === null ? '-' : `${range.to.file}:${range.to.pos}`}`)
  out.push('')
  const table = new Table({
    head: ['file', 'size', 'rotate end', 'last acked', 'txns', 'delivered', 'lost', 'pending', 'status'],
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
    style: TABLE_STYLE,
  })
  for (const file of report.files) {
    table.push([file.file, orDash(file.sizeBytes), orDash(file.rotateEndPos), orDash(file.lastAckedPos), file.transactions, file.deliveredTransactions, file.lostTransactions, file.pendingTransactions, file.status])
  }
  out.push(table.toString())
  if (report.gaps.length > 0) {
    out.push('', `gaps (${report.lostTotals.transactions} transactions, ${report.lostTotals.events} events never delivered):`)
    for (const gap of report.gaps) {
      const before = gap.deliveredBefore === null ? 'the range start' : `${gap.deliveredBefore.file}:${gap.deliveredBefore.endPos}`
      const after = gap.deliveredAfter === null ? '-' : `${gap.deliveredAfter.file}:${gap.deliveredAfter.startPos}`
      out.push(`  ${gap.file}:${gap.startPos}..${gap.endPos}: ${gap.transactions} txn(s), ${gap.events} events, GTID ${gap.firstGtid ?? '-'} .. ${gap.lastGtid ?? '-'}; last delivered before: ${before}, next delivered: ${after}`)
    }
    out.push('', 'lost events (position, type, GTID, table):')
    for (const event of report.lost) out.push(eventLine(event))
    if (report.lost.length < report.lostTotals.events) out.push(`  ... ${report.lostTotals.events - report.lost.length} more (raise --list-limit)`)
  }
  if (report.invalidResumePoints.length > 0) {
    out.push('', 'invalid resume points:')
    for (const point of report.invalidResumePoints) out.push(...resumeLines(point).map((line) => `  ${line}`))
  }
  if (report.checksumProblems.length > 0) {
    out.push('', 'checksum problems:')
    for (const problem of report.checksumProblems) out.push(`  ${problemLine(problem)}`)
  }
  if (report.pendingTotals.transactions > 0) {
    out.push(
      '',
      report.live === null
        ? `${report.pendingTotals.transactions} transaction(s) after the last acknowledgement are pending (not judged lost).`
        : `${report.pendingTotals.transactions} transaction(s) after the last position delivered are not yet delivered (still in zongji, its connection or not yet read when the window ended): not lost.`,
    )
  }
  return out.join('\n')
}
