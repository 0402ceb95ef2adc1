// Text form of `ferrydiag lag`: the verdict with its evidence and next step, then lag, source, buffer
// and stage tables (cli-table3), catch-up, and what was not measured. Deterministic: no clock, no TTY.

import Table from 'cli-table3'

import type {LagAssessment} from '../model/lag-result.js'
import type {LagStuckWaits} from '../model/lag-stuck-waits.js'
import type {BufferRate, LagBufferRate, LagFigures, LagMissing, StageRate} from '../model/lag-report.js'
import type {BinlogPosition} from '../model/snapshot.js'
import {looksLikeWriter} from '../model/stage-role.js'
import {describeCatchUp, describeLagReason} from './lag-wording.js'
import {formatBytes as formatBytesUnits, formatDurationMs, formatGrowthSecPerSec, formatRate as formatRateUnits} from '../units.js'

const TABLE_STYLE = {head: [], border: [], compact: true}

/** Full report, printed after a window. */
export function renderLagText(result: LagAssessment): string {
  const sections: string[] = [renderHeading(result), renderVerdict(result)]
  const lagTable = renderLagTable(result)
  if (lagTable) sections.push(`Lag\n${lagTable}`)
  const source = renderSource(result)
  if (source) sections.push(source)
  const buffers = renderBuffers(result.buffers)
  if (buffers) sections.push(buffers)
  if (result.stages.length > 0) sections.push(`Stages (ms per second of wall time)\n${renderStageTable(result.stages)}`)
  sections.push(renderCatchUp(result))
  const tail = renderNotMeasuredAndNotes(result)
  if (tail) sections.push(tail)
  return `${sections.join('\n\n')}\n`
}

/** The compact form --watch redraws every second: one verdict line and one table of stages and buffers. */
export function renderLagWatch(result: LagAssessment): string {
  const lines = [
    `${result.verdict.toUpperCase()}: ${describeLagReason(result.reason, result.bottleneck)}`,
    `window ${formatDurationMs(result.window.durationMs)} · ${result.window.snapshotCount} snapshot(s) · ` +
      `lag ${formatLagMs(result.lag?.transactionLagMs ?? null)} (${formatGrowth(result.lag?.transactionLagGrowthSecPerSec ?? null)})` +
      ` · behind ${formatBytes(result.lag?.bytesBehind ?? null)}` +
      ` · source ${formatRate(result.source?.eventsPerSec ?? null)} events/s`,
  ]
  const table = new Table({
    head: ['stage / buffer', 'busy', 'idle', 'back-press.', 'items/s', 'fill mean', 'full'],
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
    style: TABLE_STYLE,
  })
  for (const s of result.stages) {
    table.push([s.name, ms(s.busyMsPerSec), ms(s.idleMsPerSec), ms(s.backPressuredMsPerSec), formatRate(s.itemsPerSec), '', ''])
  }
  for (const b of result.buffers.filter((b) => b.kind !== 'slot' && !b.unused)) {
    table.push([`[${b.name}]`, '', '', '', formatRate(b.eventsOutPerSec), formatFill(b), percent(b.fullShare)])
  }
  if (result.stages.length > 0 || result.buffers.length > 0) lines.push(table.toString())
  for (const line of result.notMeasured) lines.push(line)
  return `${lines.join('\n')}\n`
}

// ---- sections ----------------------------------------------------------------------------------

function renderHeading(result: LagAssessment): string {
  const p = result.process
  const who =
    p.agent === 'not-attached'
      ? 'source only'
      : `pid ${p.pid ?? '?'}${p.inspect ? ` (inspector ${p.inspect})` : ''}${p.nodeVersion ? `, node ${p.nodeVersion}` : ''}`
  const w = result.window
  const counts = `${w.snapshotCount} agent snapshot(s), ${w.sourceStatusCount} source reading(s)`
  const lines = [`ferrydiag lag: ${who}; window ${formatDurationMs(w.durationMs)} of ${formatDurationMs(w.requestedMs)}, ${counts}`]
  if (w.endedBy !== 'duration') lines.push(`window ended early: ${describeEnd(w.endedBy)}`)
  for (const problem of w.problems) lines.push(`problem: ${problem}`)
  return lines.join('\n')
}

function describeEnd(endedBy: LagAssessment['window']['endedBy']): string {
  switch (endedBy) {
    case 'interrupted':
      return 'interrupted (Ctrl-C); figures cover what was measured until then'
    case 'target-exited':
      return 'the target exited; figures cover what was measured until then'
    case 'source-lost':
      return 'the source connection was lost; figures cover what was measured until then'
    default:
      return endedBy
  }
}

function renderVerdict(result: LagAssessment): string {
  const lines = [`Verdict: ${result.verdict.toUpperCase()} - ${describeLagReason(result.reason, result.bottleneck)}`]
  const named = (result.stuckWaits?.findings.length ?? 0) > 0
  for (const finding of result.evidence) {
    // The "no blocked wait was recorded" placeholder gives way to the stuck waits read below.
    if (named && finding.kind === 'stuck') continue
    lines.push(`  * ${finding.summary}`)
    lines.push(`    -> ${finding.suggestion}`)
  }
  if (result.stuckWaits) lines.push(...renderStuckWaits(result.stuckWaits))
  const next = nextStep(result)
  if (next) lines.push(`Next: ${next}`)
  return lines.join('\n')
}

/** Sites shown per stuck-wait finding (the JSON keeps them all). */
const STUCK_WAIT_SITES = 4

/** The stuck waits stacks' analysis named (or why they were not read), under the verdict's evidence. */
export function renderStuckWaits(waits: LagStuckWaits): string[] {
  const from =
    waits.route === 'agent-records'
      ? "the agent's records, no heap snapshot"
      : waits.route === 'heap-snapshot'
        ? `a heap snapshot${waits.heapSnapshotMs === null ? '' : ` taken in ${formatDurationMs(waits.heapSnapshotMs)}`}`
        : 'nothing'
  switch (waits.state) {
    case 'read': {
      if (waits.findings.length === 0) {
        return [`Stuck waits (from ${from}): none that can never complete among ${waits.tasksSeen ?? 0} suspended task(s); \`ferrydiag stacks --heap\` shows them all`]
      }
      const lines = [`Stuck waits (stacks' analysis, from ${from}):`]
      for (const finding of waits.findings) {
        lines.push(`  * ${finding.kind}: ${finding.summary}`)
        const sites = finding.evidence.sites ?? []
        for (const site of sites.slice(0, STUCK_WAIT_SITES)) lines.push(`      at ${site}`)
        if (sites.length > STUCK_WAIT_SITES) lines.push(`      (${sites.length - STUCK_WAIT_SITES} more site(s) in --json)`)
        lines.push(`    -> ${finding.suggestion}`)
      }
      return lines
    }
    case 'not-confirmed': {
      const cost = waits.heapEstimate ? ` (it would stop the target for about ${formatDurationMs(waits.heapEstimate.stallMs)} and grow its memory by about ${formatBytes(waits.heapEstimate.extraMemoryBytes)})` : ''
      return [`Stuck waits: not read: naming them takes a heap snapshot${cost}; run again with --heap --yes, or with --heap at a terminal to be asked`]
    }
    case 'refused':
    case 'failed':
      return [`Stuck waits: not read: ${waits.problem?.message ?? 'no reason recorded'}`, `  -> ${waits.problem?.suggestion ?? ''}`]
  }
}

/** The flag or command that would measure what an unknown verdict lacked. */
export function measureWith(missing: LagMissing, result: LagAssessment, target: string): string {
  switch (missing) {
    case 'pipeline':
      if (result.process.agent === 'not-attached') {
        return 'attach to the pipeline too: add --pid PID or --inspect HOST:PORT (--source alone measures the source, not the pipeline)'
      }
      if (result.probes?.state === 'off') return `drop --no-probes so lag can probe the pipeline's libraries (\`ferrydiag lag${target}\`)`
      return (
        'nothing in this process reports progress (no ferrydiag/runtime stages, and no zongji, mysql2, stream or queue the probes know): ' +
        `run \`ferrydiag stacks --heap${target}\` to see where it waits, or build it on ferrydiag/runtime`
      )
    case 'source':
      return 'add --source DSN (the source\'s binlog end and rows/s) to tell a quiet source from a stuck read'
    case 'window':
      return 'sample over a window: --duration 5s'
    case 'end-to-end':
      return `sample longer (--duration 15s)${result.window.sourceFrom === 'none' ? ' with --source DSN' : ''}`
  }
}

/** What to run next, per verdict: the tool that shows the cause. */
export function nextStep(result: LagAssessment): string | null {
  // Name the target the way it was named: an inspector ferrydiag opened for --pid is closed again.
  const target =
    result.process.attachedVia === 'pid' && result.process.pid !== null
      ? ` --pid ${result.process.pid}`
      : result.process.inspect
        ? ` --inspect ${result.process.inspect}`
        : ''
  switch (result.verdict) {
    case 'stuck': {
      const waits = result.stuckWaits
      const heap = waits !== undefined && waits.route !== 'agent-records' ? ' --heap' : ''
      if (waits?.state === 'read' && waits.findings.length > 0) {
        return `run \`ferrydiag stacks${heap}${target}\` to dump every suspended task with the buffers involved; fix the waits named above first`
      }
      return `run \`ferrydiag stacks${heap}${target}\` to see every blocked wait with its await site`
    }
    case 'falling-behind': {
      const stage = result.bottleneck?.stageName
      if (stage && looksLikeWriter(stage)) {
        return `run \`ferrydiag tune-batch${target}\` to fit ${stage}'s write cost and size its batch`
      }
      return stage
        ? `make ${stage} faster (it is the bottleneck); \`ferrydiag stacks${target}\` shows where it waits`
        : `run \`ferrydiag stacks${target}\` to see where the stages wait`
    }
    case 'unknown':
      return result.missing.map((m) => measureWith(m, result, target)).join('; ')
    default:
      return null
  }
}

function renderLagTable(result: LagAssessment): string | null {
  const figures = [result.lag, result.writerLag].filter((f): f is LagFigures => f !== null)
  if (figures.length === 0) return null
  const table = new Table({
    head: ['stage', 'liveness lag', 'growth', 'transaction lag', 'growth', 'bytes behind', 'growth'],
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
    style: TABLE_STYLE,
  })
  for (const f of figures) {
    table.push([
      f.stageName,
      formatLagMs(f.livenessLagMs),
      formatGrowth(f.livenessLagGrowthSecPerSec),
      formatLagMs(f.transactionLagMs),
      formatGrowth(f.transactionLagGrowthSecPerSec),
      f === result.lag ? formatBytes(f.bytesBehind) : '',
      f === result.lag ? formatBytesRate(f.bytesBehindGrowthPerSec) : '',
    ])
  }
  const lines = [table.toString()]
  lines.push('liveness lag: time since the stage last made progress; transaction lag: age of its newest event (1 s resolution)')
  const positions = result.positions
  if (positions.sourceEnd || positions.pipeline) {
    lines.push(`positions: source end ${formatPosition(positions.sourceEnd)}, pipeline at ${formatPosition(positions.pipeline)}`)
  }
  return lines.join('\n')
}

function renderSource(result: LagAssessment): string | null {
  const s = result.source
  if (!s) return null
  const which = result.window.sourceFrom === 'flag' ? '(--source)' : `${s.name} (registered by the pipeline)`
  const advanced = s.advanced === null ? 'one reading' : s.advanced ? 'advancing' : 'not advancing'
  const counted = s.eventsPerSecFrom === 'binlog-rows' ? ' (binlog rows)' : ''
  return (
    `Source ${which}: ${advanced}, ${formatRate(s.eventsPerSec)} events/s${counted}, ` +
    `${formatBytesRate(s.bytesPerSec).replace(/^\+/, '')} of binlog`
  )
}

/**
 * The buffer table, with unused buffers (collected or never-used, no traffic, no waiter) folded into one
 * line after it: they clutter a healthy pipeline's table. A buffer with a blocked waiter is always shown.
 */
function renderBuffers(buffers: readonly LagBufferRate[]): string | null {
  if (buffers.length === 0) return null
  const shown = buffers.filter((b) => !b.unused)
  const hidden = buffers.filter((b) => b.unused)
  const lines = ['Buffers (per second of the window)']
  if (shown.length > 0) lines.push(renderBufferTable(shown))
  if (hidden.length > 0) {
    const names = hidden.map((b) => `${b.name} #${b.id}`).join(', ')
    lines.push(`(${hidden.length} unused buffer${hidden.length === 1 ? '' : 's'} not shown: ${names})`)
  }
  return lines.join('\n')
}

function renderBufferTable(buffers: readonly BufferRate[]): string {
  const table = new Table({
    head: ['buffer', 'capacity', 'in/s', 'out/s', 'fill mean', 'fill max', 'full', 'send blocked', 'at risk'],
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    style: TABLE_STYLE,
  })
  for (const b of buffers) {
    const flags = [b.appearedMidWindow ? 'new' : '', b.closed ? 'closed' : '', b.collected ? 'collected' : ''].filter(Boolean)
    table.push([
      `${b.name} #${b.id}${b.kind === 'channel' ? '' : ` (${b.kind})`}${flags.length > 0 ? ` [${flags.join(', ')}]` : ''}`,
      b.kind === 'slot' ? '-' : b.capacity,
      formatRate(b.eventsInPerSec),
      formatRate(b.eventsOutPerSec),
      b.kind === 'slot' ? '-' : formatFill(b),
      b.kind === 'slot' ? '-' : b.maxFillItemsSeen,
      b.kind === 'slot' ? '-' : percent(b.fullShare),
      `${ms(b.sendBlockedMsPerSec)} ms/s`,
      b.eventsAtRisk,
    ])
  }
  return table.toString()
}

function renderStageTable(stages: readonly StageRate[]): string {
  const table = new Table({
    head: ['stage', 'busy', 'idle', 'back-pressured', 'sum', 'items/s', 'state at end'],
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'left'],
    style: TABLE_STYLE,
  })
  for (const s of stages) {
    table.push([
      `${s.name}${s.appearedMidWindow ? ' [new]' : ''}`,
      ms(s.busyMsPerSec),
      ms(s.idleMsPerSec),
      ms(s.backPressuredMsPerSec),
      ms(s.accountedMsPerSec),
      formatRate(s.itemsPerSec),
      s.stateAtEnd,
    ])
  }
  return table.toString()
}

function renderCatchUp(result: LagAssessment): string {
  const c = result.catchUp
  const head =
    c.state === 'estimate' && c.seconds !== null
      ? `in about ${formatDurationMs(c.seconds * 1000)}`
      : c.state === 'caught-up'
        ? 'caught up'
        : c.state
  return `Catch-up: ${head} (${describeCatchUp(c)})`
}

function renderNotMeasuredAndNotes(result: LagAssessment): string | null {
  const lines = [...result.notMeasured]
  for (const note of result.notes) lines.push(`note: ${note}`)
  return lines.length > 0 ? lines.join('\n') : null
}

// ---- numbers -----------------------------------------------------------------------------------

function ms(value: number): string {
  return String(Math.round(value))
}

function percent(share: number): string {
  return `${Math.round(share * 100)}%`
}

function formatFill(b: BufferRate): string {
  return b.meanFillRatio === null ? b.meanFillItems.toFixed(1) : `${b.meanFillItems.toFixed(1)} (${percent(b.meanFillRatio)})`
}

/** A nullable figure through a src/units.ts formatter; 'n/a' when it was not measured. */
function orNa<T>(value: T | null, format: (v: T) => string): string {
  return value === null ? 'n/a' : format(value)
}

function formatRate(perSec: number | null): string {
  return orNa(perSec, formatRateUnits)
}

function formatLagMs(value: number | null): string {
  return orNa(value, formatDurationMs)
}

function formatGrowth(secPerSec: number | null): string {
  return orNa(secPerSec, formatGrowthSecPerSec)
}

function formatBytes(bytes: number | null): string {
  return orNa(bytes, formatBytesUnits)
}

/** Signed: "+1.2 MiB/s", "-512 B/s". */
function formatBytesRate(bytesPerSec: number | null): string {
  return orNa(bytesPerSec, (v) => `${v < 0 ? '-' : '+'}${formatBytesUnits(Math.abs(v))}/s`)
}

function formatPosition(position: BinlogPosition | null): string {
  return position ? `${position.file}:${position.offset}` : 'n/a'
}
