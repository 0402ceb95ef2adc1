// Text form of a tune-batch result for an operator: a table of the estimates with 95% intervals and units,
// the formulas with the numbers filled in, the verdict and what to do, and a plot of T against B.
// Deterministic: no clock, no TTY probe.
import Table from 'cli-table3'
import type {LinearCostFit} from '../model/cost-model.js'
import type {BatchSample} from '../model/snapshot.js'
import type {TuneBatchResult} from '../model/tune-batch.js'
import {formatNumber} from '../units.js'
import {renderTextPlot} from './plot-text.js'

export interface TuneBatchTextOptions {
  /** The samples behind the fit, for the plot; no plot when absent or empty. */
  samples?: readonly BatchSample[]
  plotWidth?: number
  plotHeight?: number
}

const BUFFER_REASON =
  'while one batch of B events is written (T(B) ms) the streamer keeps filling the buffer with R·T(B) events, ' +
  'at most ρ·B at the recommended size; a buffer of B events holds them without blocking the streamer ' +
  '(ghostferry sizes its channel with the same BinlogEventBatchSize)'

const MODE_TEXT: Record<TuneBatchResult['mode'], string> = {
  passive: "passive: the writer's own batch samples",
  perturb: "perturb: the writer's batch samples while BinlogEventBatchSize was varied",
  probe: 'probe: batches written into a scratch table on the target',
}

function interval(low: number, high: number | null, unit: string): string {
  return `${formatNumber(low)} .. ${high === null ? '∞' : formatNumber(high)} ${unit}`.trim()
}

export function renderTuneBatchText(result: TuneBatchResult, options: TuneBatchTextOptions = {}): string {
  const out: string[] = []
  const s = result.samples
  out.push(
    `tune-batch — ${MODE_TEXT[result.mode]}; ${s.used} sample(s)` +
      (result.mode === 'probe' ? '' : ` from stage ${s.stageName ?? '(none)'} (${s.fromWindow} in the window, ${s.fromReservoir} from the reservoir since start)`) +
      `, ${s.distinctBatchSizes} distinct batch size(s), CV ${s.batchSizeCv.toFixed(2)}`,
  )
  out.push('')
  const table = new Table({
    head: ['estimate', 'value', '95% interval', 'from'],
    style: {head: [], border: [], compact: true},
  })
  const fit = result.fit
  if (fit.status === 'fitted' || fit.status === 'bad-model') {
    const chosen = fittedLine(result)!
    const how = chosen.method === 'theil-sen' ? 'Theil–Sen fit' : 'least squares'
    table.push(['m  per-event write time', `${formatNumber(chosen.mMsPerEvent)} ms/event`, interval(chosen.mIntervalMsPerEvent.low, chosen.mIntervalMsPerEvent.high, 'ms/event'), how])
    table.push(['o  overhead per batch', `${formatNumber(chosen.oMs)} ms`, interval(chosen.oIntervalMs.low, chosen.oIntervalMs.high, 'ms'), `${how}, R² ${chosen.rSquared.toFixed(3)}`])
  } else if (fit.status === 'degenerate-spread') {
    table.push(['m  per-event write time', `≤ ${formatNumber(fit.mMsPerEventAtMost)} ms/event`, 'not separable', `B = ${fit.groups[0].events} only`])
    table.push(['o  overhead per batch', `≤ ${formatNumber(fit.oMsAtMost)} ms`, 'not separable', `B = ${fit.groups[0].events} only`])
  } else {
    table.push(['m, o', 'not fitted', '', `${s.used} of ${fit.minSamples} samples`])
  }
  const rate = result.rate
  if (rate) {
    const from = rate.kind === 'binlog' ? 'binlog (--source)' : rate.kind === 'agent-source' ? 'source in the agent' : 'streamer (lower bound)'
    table.push(['R  mean source rate', `${formatNumber(rate.meanEventsPerSec)} events/s`, '', from])
    table.push([
      `R  peak (p${Math.round(rate.peakQuantile * 100)} of ${rate.bucketCount} × 1 s)`,
      `${formatNumber(rate.peakEventsPerSec)} events/s`,
      '',
      'used for the recommendation',
    ])
  } else {
    table.push(['R  source rate', 'unknown', '', ''])
  }
  table.push([
    'current batch size',
    result.currentBatchSize === null ? 'unknown' : `${result.currentBatchSize} events`,
    '',
    describeKnob(result),
  ])
  const writer = result.writer
  if (writer && writer.utilisationNow !== null) {
    table.push(['full-batch utilisation now', `${(writer.utilisationNow * 100).toFixed(0)} %`, '', `target ρ = ${Math.round(result.targetUtilisation * 100)} %`])
  }
  if (result.stabilityBoundary !== null) {
    table.push(['B* (keeps up at all)', `${formatNumber(result.stabilityBoundary)} events`, '', 'o·R / (1 − m·R)'])
  }
  if (result.recommendedBatchSize !== null) {
    const range = result.recommendedRange
    table.push([
      `recommended B (ρ = ${result.targetUtilisation})`,
      `${result.recommendedBatchSize} events`,
      range ? interval(range.low, range.high, 'events') : '',
      'o·R / (ρ − m·R), rounded up',
    ])
    table.push(['event buffer capacity', `${result.recommendedBatchSize} events`, '', 'same as B'])
  }
  out.push(table.toString())
  out.push('')
  const f = result.formulae
  if (f.perEventLoad) out.push(`  ${f.perEventLoad}`)
  if (f.stabilityBoundary) out.push(`  ${f.stabilityBoundary}`)
  if (f.recommended) out.push(`  ${f.recommended}`)
  if (f.perEventLoad) out.push('')

  out.push(`Verdict: ${result.verdict.toUpperCase()} — ${result.summary}`)
  const gone = result.unsustainable
  if (gone) {
    out.push(`  max sustainable rate 1/m = ${formatNumber(gone.maxSustainableEventsPerSec ?? 0)} events/s at any batch size`)
    out.push(`  parallel writers needed k = ⌈m·R/ρ⌉ = ${gone.parallelWritersNeeded}`)
    out.push(`  or throttle the source to ρ/m = ${formatNumber(Math.floor(gone.throttleToEventsPerSec ?? 0))} events/s`)
    if (gone.lagGrowthSecPerSec !== null && gone.lagGrowthSecPerSec > 0) {
      out.push(`  meanwhile lag grows ${formatNumber(gone.lagGrowthSecPerSec)} s per second at the mean rate`)
    }
  } else if (writer?.lagTrend) {
    const trend = writer.lagTrend
    out.push(
      `  at B = ${result.currentBatchSize}: the writer moves ${formatNumber(trend.writerEventsPerSec)} events/s; lag ` +
        (trend.state === 'growing'
          ? `grows ${formatNumber(trend.growthSecPerSec)} s per second at the mean rate`
          : writer.peakLagTrend?.state === 'growing'
            ? `is stable at the mean rate but grows ${formatNumber(writer.peakLagTrend.growthSecPerSec)} s/s during peaks`
            : 'is stable'),
    )
  }
  if (result.recommendedBatchSize !== null) out.push(`  buffer: ${BUFFER_REASON}`)
  for (const note of result.notes) out.push(`  note: ${note}`)
  for (const note of result.fit.notes) out.push(`  note: ${note}`)
  for (const suggestion of result.suggestions) out.push(`  try: ${suggestion}`)
  for (const warning of result.warnings) out.push(`  warning: ${warning}`)

  const samples = (options.samples ?? []).filter((x) => x.ok)
  if (samples.length > 0) {
    out.push('')
    const chosen = fittedLine(result)
    const line = chosen ? {slope: chosen.mMsPerEvent, intercept: chosen.oMs} : null
    out.push(`T against B: ${samples.length} batch(es)${line ? ', fitted line -' : ''}`)
    out.push(renderTextPlot(samples.map((x) => ({x: x.events, y: x.ms})), line, {width: options.plotWidth, height: options.plotHeight}))
  }
  return out.join('\n')
}

/** The line the fit chose: the model, or the unusable line of a bad model (shown, not used); null otherwise. */
function fittedLine(result: TuneBatchResult): LinearCostFit | null {
  const fit = result.fit
  if (fit.status === 'bad-model') return fit.chosen === 'robust' ? fit.robust : fit.ols
  return result.model
}

/** The batch-size knob in the pipeline's own terms, where one was found. */
export function describeKnob(result: Pick<TuneBatchResult, 'currentBatchSizeFrom' | 'currentBatchSize' | 'knob' | 'recommendedBatchSize'>): string {
  if (result.knob) return `${result.knob.path}, now ${result.knob.value}${result.recommendedBatchSize === null ? '' : ` -> recommend ${result.recommendedBatchSize}`}`
  switch (result.currentBatchSizeFrom) {
    case 'flag':
      return '--batch-size'
    case 'setting':
      return 'BinlogEventBatchSize setting'
    case 'channel-capacity':
      return 'event buffer capacity'
    case 'observed':
      return `events per batch write (now ≈ ${result.currentBatchSize}; median of the writes seen)`
    default:
      return ''
  }
}
