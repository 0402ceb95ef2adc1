// Text and JSON forms of a `binlog diff` report: what each server read, the summary, each GTID whose
// content differs (positions, tables, first differing row) and the GTIDs missing from some servers.
// Deterministic: no clock, no TTY probe.

import Table from 'cli-table3'
import type {BinlogDiffReport, FirstDifference, RowImage} from '../model/binlog-diff.js'
import type {BinlogPosition} from '../model/snapshot.js'
import {formatDurationMs} from '../units.js'

export interface BinlogDiffTextOptions {
  /** Partial GTIDs listed one by one before the rest are counted (default 20). */
  partialLimit?: number
}

function position(p: BinlogPosition): string {
  return `${p.file}:${p.offset}`
}

function image(row: RowImage | undefined, columns: readonly string[]): string {
  if (row === undefined) return '(none)'
  return columns.map((name) => `${name}=${JSON.stringify(row[name] ?? null)}`).join(' ')
}

function describeDifference(first: FirstDifference, a: string, b: string): string[] {
  switch (first.kind) {
    case 'eventCount':
      return [`event #${first.eventIndex + 1}: ${a} has ${first.eventsA} events, ${b} has ${first.eventsB}`]
    case 'event':
      return [`event #${first.eventIndex + 1}: ${a}: ${first.eventA.kind} ${first.eventA.what}`, `${' '.repeat(`event #${first.eventIndex + 1}: `.length)}${b}: ${first.eventB.kind} ${first.eventB.what}`]
    case 'rowCount':
      return [`event #${first.eventIndex + 1} (${first.table}): ${a} changes ${first.rowsA} rows, ${b} ${first.rowsB}`]
    case 'row': {
      const lines = [`event #${first.eventIndex + 1} (${first.table}) row #${first.rowIndex + 1} differs in ${first.columns.join(', ')}:`]
      for (const [label, row] of [
        [a, first.rowA],
        [b, first.rowB],
      ] as const) {
        const parts: string[] = []
        if (row.before !== undefined) parts.push(`before ${image(row.before, first.columns)}`)
        if (row.after !== undefined) parts.push(`after ${image(row.after, first.columns)}`)
        lines.push(`  ${label}: ${parts.join('; ')}`)
      }
      return lines
    }
    case 'none':
      return ['fingerprints differ but the decoded events compare equal (did the binlog change between reads?)']
  }
}

export function renderBinlogDiffText(report: BinlogDiffReport, options: BinlogDiffTextOptions = {}): string {
  const out: string[] = []
  const name = (index: number): string => `#${index + 1}`
  out.push(`binlog diff — ${report.selection.mode === 'since' ? `since ${report.selection.text}` : report.selection.mode === 'last' ? `last ${report.selection.transactions} per domain (${report.selection.text})` : report.selection.text}`)
  out.push('')
  const servers = new Table({
    head: ['server', 'dsn', 'server_id', 'gtid_binlog_pos', 'read', 'transactions read/selected', 'time'],
    style: {head: [], border: [], compact: true},
  })
  report.servers.forEach((s, i) =>
    servers.push([name(i), s.dsn, s.serverId, s.gtidBinlogPos, `${position(s.readFrom)} .. ${position(s.readTo)}`, `${s.transactionsRead} / ${s.transactionsSelected}`, formatDurationMs(s.elapsedMs)]),
  )
  out.push(servers.toString())
  out.push('')
  const s = report.summary
  out.push(`${s.compared} GTIDs compared: ${s.same} same, ${s.different} different; ${s.partial} missing from some server${s.partial === 1 ? '' : 's'}.`)

  for (const divergent of report.divergent) {
    out.push('')
    out.push(`GTID ${divergent.gtid} differs:`)
    const copies = new Table({head: ['server', 'position', 'tables', 'rows', 'fingerprint'], style: {head: [], border: [], compact: true}})
    for (const copy of divergent.copies) copies.push([name(copy.server), position(copy.position), copy.tables.join(', ') || '(statements only)', copy.rows, copy.fingerprint.slice(0, 12)])
    out.push(copies.toString())
    if (divergent.differences === undefined) out.push('  (not read in full: raise --details to see the first difference)')
    for (const difference of divergent.differences ?? []) {
      for (const line of describeDifference(difference.first, name(difference.against), name(difference.server))) out.push(`  ${line}`)
    }
  }

  if (report.partial.length > 0) {
    out.push('')
    out.push('Missing from some servers:')
    const limit = options.partialLimit ?? 20
    const partial = new Table({head: ['gtid', 'on', 'missing on', 'position'], style: {head: [], border: [], compact: true}})
    for (const p of report.partial.slice(0, limit)) partial.push([p.gtid, p.presentOn.map(name).join(' '), p.missingOn.map(name).join(' '), `${name(p.presentOn[0]!)} ${position(p.position)}`])
    out.push(partial.toString())
    if (report.partial.length > limit) out.push(`… and ${report.partial.length - limit} more (all in --json)`)
  }
  return out.join('\n')
}

/** The --json document: one line, plain JSON.stringify. */
export function renderBinlogDiffJson(report: BinlogDiffReport): string {
  return JSON.stringify(report)
}
