// Text for `ferrydiag replica`: a goroutine-dump-like block per replication thread (IO, SQL/coordinator,
// workers), the positions on one line, then the findings in words. No I/O.

import Table from 'cli-table3'

import type {
  KeyedRow,
  PositionLine,
  ReplicaConnection,
  ReplicaError,
  ReplicaFinding,
  ReplicaReport,
  ReplicaSnapshot,
  ReplicaSource,
  ReplicaWorker,
} from '../model/replica.js'
import {formatBytes, formatDurationMs} from '../units.js'

const TABLE_STYLE = {head: [], border: [], compact: true}

const SOURCE_WORDS: Record<ReplicaSource, string> = {
  'slave-status': 'SHOW SLAVE STATUS',
  processlist: 'the process list',
  'performance-schema': 'performance_schema',
  'error-log': 'the error log',
  'primary-binlog': "the primary's binlog",
  inferred: 'inferred: the next transaction after the executed position',
}

const LAG_REASON_WORDS: Record<Extract<ReplicaFinding, {code: 'lagging'}>['reason'], string> = {
  'seconds-behind': 'seconds behind at or above --lag-threshold',
  'apply-stalled': 'nothing applied while transactions arrived',
  'apply-slower-than-arrival': 'applying at under half the arrival rate',
}

function connectionLabel(name: string): string {
  return name === '' ? 'default connection' : `connection '${name}'`
}

function seconds(sec: number | null): string {
  return sec === null ? 'unknown' : formatDurationMs(sec * 1000)
}

function describeError(error: ReplicaError): string {
  return `${error.errno}: ${error.message}`
}

function value(v: unknown): string {
  if (v === null || v === undefined) return 'NULL'
  if (v instanceof Date) return v.toISOString()
  if (Buffer.isBuffer(v)) return `0x${v.toString('hex')}`
  return typeof v === 'string' ? `'${v}'` : String(v)
}

function describeRow(row: Record<string, unknown>): string {
  return `{${Object.entries(row).map(([k, v]) => `${k}: ${value(v)}`).join(', ')}}`
}

function workerName(worker: ReplicaWorker | undefined, index: number | null): string {
  if (index === null) return 'an unidentified worker'
  return `worker ${index}${worker?.processlistId != null ? ` (thread ${worker.processlistId})` : ''}`
}

function workerByThread(report: ReplicaReport, threadId: number): ReplicaWorker | undefined {
  return report.snapshot.workers.find((w) => w.processlistId === threadId) ?? report.watch?.lastRunning?.workers.find((w) => w.processlistId === threadId)
}

function renderThreads(snapshot: ReplicaSnapshot, connection: ReplicaConnection, workers: ReplicaWorker[]): string[] {
  const io = connection.io
  const sql = connection.sql
  const lines = [
    `${connectionLabel(connection.name)}: primary ${io.primaryHost}:${io.primaryPort}, GTID ${connection.usingGtid || 'off'}${connection.parallelMode ? `, parallel mode ${connection.parallelMode}` : ''}`,
    '',
    `io thread${io.processlistId === null ? '' : ` ${io.processlistId}`} [${io.running === 'yes' ? 'running' : io.running === 'connecting' ? 'connecting' : 'stopped'}]: ${io.state || '-'}`,
    `    received  ${io.received.file}:${io.received.pos}  gtid ${io.receivedGtid || '-'}`,
    `    behind    ${seconds(io.secondsBehind)}`,
  ]
  if (io.lastError) lines.push(`    error     ${describeError(io.lastError)}`)
  lines.push(
    '',
    `sql thread${snapshot.settings.parallelThreads > 0 ? ' (coordinator)' : ''}${sql.processlistId === null ? '' : ` ${sql.processlistId}`} [${sql.running ? 'running' : 'stopped'}]: ${sql.state || '-'}`,
    `    executed  ${sql.executed.file}:${sql.executed.pos}  gtid ${sql.executedGtid || '-'}`,
    `    relay log ${sql.relayLog.file}:${sql.relayLog.pos}`,
  )
  if (sql.delaySec > 0) lines.push(`    delay     ${seconds(sql.delaySec)} (remaining ${seconds(sql.remainingDelaySec)})`)
  if (sql.retriedTransactions !== null) lines.push(`    retried   ${sql.retriedTransactions} transaction(s)`)
  if (sql.lastError) lines.push(`    error     ${describeError(sql.lastError)}`)
  if (workers.length > 0) lines.push('', renderWorkerTable(workers))
  return lines
}

function renderWorkerTable(workers: ReplicaWorker[]): string {
  const table = new Table({
    head: ['worker', 'thread', 'state', 'for', 'last seen gtid', 'retries', 'last error'],
    style: TABLE_STYLE,
  })
  for (const w of workers) {
    table.push([
      String(w.index),
      w.processlistId === null ? '-' : String(w.processlistId),
      w.state ?? '(gone)',
      w.stateSec === null ? '-' : seconds(w.stateSec),
      w.applyingGtid ?? w.lastSeenGtid ?? '-',
      w.retries === null ? '-' : String(w.retries),
      w.lastError ? String(w.lastError.errno) : '-',
    ])
  }
  return table.toString()
}

function renderPositions(line: PositionLine): string {
  const workers = line.workerGtids.map((w) => `w${w.workerIndex} ${w.gtid}`).join(', ')
  const behind = [
    line.transactionsBehind === null ? null : `${line.transactionsBehind} transaction(s)`,
    line.bytesBehind === null ? null : formatBytes(line.bytesBehind),
  ].filter(Boolean)
  return (
    `positions  received ${line.receivedGtid || '-'}  >=  ${workers === '' ? '' : `workers ${workers}  >=  `}executed ${line.executedGtid || '-'}` +
    (behind.length > 0 ? `   (${behind.join(', ')} behind)` : '')
  )
}

function renderRows(rows: KeyedRow[]): string[] {
  const lines: string[] = []
  for (const row of rows) {
    lines.push(`    row of ${row.table} where ${Object.entries(row.key).map(([k, v]) => `${k} = ${value(v)}`).join(' AND ')}:`)
    for (const side of ['replica', 'primary'] as const) {
      const r = row[side]
      lines.push(`      on the ${side}: ${r === 'unavailable' ? 'not read' : r === null ? 'no such row' : describeRow(r)}`)
    }
  }
  return lines
}

function renderFinding(finding: ReplicaFinding, report: ReplicaReport): string[] {
  const where = connectionLabel(finding.connectionName)
  switch (finding.code) {
    case 'first-failure': {
      const e = finding.error
      const worker = report.snapshot.workers.find((w) => w.index === finding.workerIndex) ?? report.watch?.lastRunning?.workers.find((w) => w.index === finding.workerIndex)
      const lines = [
        `FIRST FAILURE (${where}): error ${e.errno} in ${workerName(worker, finding.workerIndex)}${e.threadId !== null && worker === undefined ? ` (thread ${e.threadId})` : ''}` +
          ` on GTID ${e.gtid ?? 'unknown'}${finding.gtidSource ? ` (from ${SOURCE_WORDS[finding.gtidSource]})` : ''}`,
        `    ${e.message}`,
      ]
      if (e.table !== null) lines.push(`    table ${e.table}${e.keyName !== null ? `, key ${e.keyName} = '${e.keyValue}'` : ''}`)
      if (finding.followOn.length > 0) {
        lines.push(`    ${finding.followOn.length} follow-on error(s), caused by this one:`)
        for (const f of finding.followOn) {
          const by = f.threadId === null ? undefined : workerByThread(report, f.threadId)
          const who = by ? ` in ${workerName(by, by.index)}` : f.threadId !== null ? ` in thread ${f.threadId}` : ''
          lines.push(`      ${f.errno}${who}${f.gtid ? ` on ${f.gtid}` : ''} (${SOURCE_WORDS[f.source]}): ${f.message}`)
        }
      }
      const t = finding.transaction
      if (t !== null) {
        lines.push(`    transaction ${t.gtid} on the primary at ${t.coordinate ? `${t.coordinate.file}:${t.coordinate.pos}` : '?'}: ${t.eventTypes.join(', ')}`)
        for (const event of t.events) {
          for (const row of event.rows) {
            const images = [row.before ? `before ${describeRow(row.before)}` : null, row.after ? `after ${describeRow(row.after)}` : null].filter(Boolean)
            lines.push(`      ${event.kind} ${event.table} ${images.join(' ')}`)
          }
        }
      } else if (report.primary.state !== 'read') {
        lines.push(`    (the failing transaction's events need --primary${report.primary.state === 'unreachable' ? ', which was unreachable' : ''})`)
      }
      lines.push(...renderRows(finding.rows))
      return lines
    }
    case 'io-error':
      return [`IO ERROR (${where}): ${describeError(finding.error)}`]
    case 'stopped-no-error':
      return [`STOPPED (${where}): the ${finding.thread.toUpperCase()} thread is stopped without an error (STOP SLAVE?)`]
    case 'lagging': {
      const parts = [
        `${seconds(finding.secondsBehind)} behind`,
        finding.transactionsBehind === null ? null : `${finding.transactionsBehind} transaction(s) received but not applied`,
        finding.transactionsBehindGrowth === null
          ? null
          : `${finding.transactionsBehindGrowth >= 0 ? '+' : ''}${finding.transactionsBehindGrowth} between readings (received ${finding.receivedInWindow}, applied ${finding.appliedInWindow})`,
        finding.bytesBehind === null ? null : formatBytes(finding.bytesBehind),
      ].filter(Boolean)
      const lines = [`LAGGING (${where}, ${LAG_REASON_WORDS[finding.reason]}): ${parts.join(', ')}`]
      lines.push(finding.waits.length > 0 ? `    waiting in: ${finding.waits.join('; ')}` : '    no thread was seen waiting (slow apply)')
      return lines
    }
    case 'healthy':
      return [`HEALTHY (${where}): running, no error`]
  }
}

/** The whole dump as text. */
export function renderReplicaText(report: ReplicaReport): string {
  const s = report.snapshot.settings
  const out: string[] = [
    `replica ${report.replica}: ${s.flavor === 'mariadb' ? 'MariaDB' : 'MySQL'} ${s.version}, server ${s.serverId}, ` +
      `${s.parallelThreads > 0 ? `parallel ${s.parallelThreads} threads (${s.parallelMode})` : 'serial apply'}, performance_schema ${s.performanceSchema ? 'ON' : 'OFF'}`,
    `    gtid_slave_pos ${s.gtidSlavePos || '-'}  gtid_current_pos ${s.gtidCurrentPos || '-'}  at ${new Date(report.snapshot.takenAtMs).toISOString()}`,
  ]
  const p = report.primary
  out.push(
    p.state === 'not-given'
      ? 'primary: not given (--primary DSN adds the failing transaction and the rows on the primary)'
      : p.state === 'unreachable'
        ? `primary ${p.dsn}: UNREACHABLE, shown without the primary's side: ${p.reason}`
        : `primary ${p.dsn}: MariaDB/MySQL ${p.version}, server ${p.serverId}, binlog at ${p.gtidBinlogPos || '-'}`,
  )
  if (report.watch) {
    const w = report.watch
    const how = w.stopped ? 'an SQL thread stopped during the watch' : w.lastRunning === null ? 'an SQL thread was already stopped when the watch began' : 'no SQL thread stopped during the watch'
    out.push(`watch: ${w.samples} sample(s) every ${formatDurationMs(w.intervalMs)}; ${how}`)
  }
  const names = new Set(report.snapshot.connections.map((c) => c.name))
  const single = names.size === 1
  for (const [i, connection] of report.snapshot.connections.entries()) {
    const workers = report.snapshot.workers.filter((w) => (w.connectionName === null ? single : w.connectionName === connection.name))
    out.push('', ...renderThreads(report.snapshot, connection, workers), '', renderPositions(report.positions[i]!))
  }
  // MariaDB's workers are one pool: those not (or no longer) serving a listed connection.
  const pool = report.snapshot.workers.filter((w) => (w.connectionName === null ? !single : !names.has(w.connectionName)))
  if (pool.length > 0) out.push('', 'worker pool (serving no listed connection, or which one is unknown):', renderWorkerTable(pool))
  const before = report.watch?.lastRunning
  if (before && report.watch?.stopped && before.workers.length > 0) {
    out.push('', `workers ${formatDurationMs(Math.max(0, report.snapshot.takenAtMs - before.takenAtMs))} before the stop (they leave the process list when the SQL thread stops):`)
    out.push(renderWorkerTable(before.workers))
  }
  if (report.errorLog) out.push('', `error log ${report.errorLog.path}: ${report.errorLog.errors} replication error(s) since the last start`)
  if (report.snapshot.unavailable.length > 0) {
    out.push('', 'not available:')
    for (const u of report.snapshot.unavailable) out.push(`    ${u.what}: ${u.reason}`)
  }
  out.push('', 'findings:')
  for (const finding of report.findings) out.push(...renderFinding(finding, report).map((line) => `  ${line}`))
  return `${out.join('\n')}\n`
}
