// Glue for `ferrydiag tune-batch`: turns a window of agent snapshots (and optional binlog counts or probe
// samples) into batch samples, a source rate, the current batch size, and the fit + recommendation.
import type {BatchRecommendation, CostModelFit} from '../model/cost-model.js'
import type {AgentSnapshot, BatchSample} from '../model/snapshot.js'
import {looksLikeStreamer} from '../model/stage-role.js'
import {
  BATCH_SIZE_SETTING,
  type BatchKnob,
  TUNE_BATCH_SCHEMA,
  TUNE_BATCH_VERSION,
  type CurrentBatchSize,
  type SampleMode,
  type TuneBatchFit,
  type TuneBatchFormulae,
  type TuneBatchRate,
  type TuneBatchResult,
} from '../model/tune-batch.js'
import {formatDurationMs, formatNumber} from '../units.js'
import {estimateRateFromCounts, type CountObservation} from './estimate-rate.js'
import {fitCostModel} from './fit-cost-model.js'
import {recommendBatchSize} from './recommend-batch.js'



export interface CollectedSamples {
  /** Stage whose samples are used (the one with most samples when several stages record batches). */
  stageName: string | null
  samples: BatchSample[]
  /** Of those: samples taken inside the window, and reservoir samples from before it. */
  fromWindow: number
  fromReservoir: number
  /** Batches the stage recorded since it started (agent's count). */
  totalCount: number
  otherStages: string[]
}

/**
 * Batch samples of one stage: every reservoir sample (a uniform sample since the stage started, so
 * warm-up and bursts count) plus every recent sample inside [startMs, endMs], from all snapshots,
 * deduplicated by atMs + stage + events + ms (the same batch appears in many snapshots).
 */
export function collectBatchSamples(
  snapshots: readonly AgentSnapshot[],
  window: {startMs: number; endMs: number},
  stageName?: string,
): CollectedSamples {
  const seen = new Set<string>()
  const byStage = new Map<string, {samples: BatchSample[]; inWindow: number; reservoir: number}>()
  const add = (s: BatchSample, inWindow: boolean): void => {
    const key = `${s.stageName}\u0000${s.atMs}\u0000${s.events}\u0000${s.ms}`
    if (seen.has(key)) return
    seen.add(key)
    let entry = byStage.get(s.stageName)
    if (!entry) byStage.set(s.stageName, (entry = {samples: [], inWindow: 0, reservoir: 0}))
    entry.samples.push(s)
    if (inWindow) entry.inWindow++
    else entry.reservoir++
  }
  let totalCount = 0
  for (const snapshot of snapshots) {
    for (const s of snapshot.samples.recent) if (s.atMs >= window.startMs && s.atMs <= window.endMs) add(s, true)
    totalCount = Math.max(totalCount, snapshot.samples.totalCount)
  }
  for (const snapshot of snapshots) {
    for (const s of snapshot.samples.reservoir) add(s, s.atMs >= window.startMs && s.atMs <= window.endMs)
  }
  const stages = [...byStage.entries()].sort((a, b) => b[1].samples.length - a[1].samples.length)
  const chosen = stageName === undefined ? stages[0] : stages.find(([name]) => name === stageName)
  if (!chosen) {
    return {stageName: stageName ?? null, samples: [], fromWindow: 0, fromReservoir: 0, totalCount, otherStages: stages.map(([n]) => n)}
  }
  const samples = chosen[1].samples.sort((a, b) => a.atMs - b.atMs)
  return {
    stageName: chosen[0],
    samples,
    fromWindow: chosen[1].inWindow,
    fromReservoir: chosen[1].reservoir,
    totalCount,
    otherStages: stages.map(([n]) => n).filter((n) => n !== chosen[0]),
  }
}


/** BinlogEventBatchSize when the pipeline exposes it, else the capacity of the writer's event buffer. */
export function findCurrentBatchSize(snapshot: AgentSnapshot | null, override?: number): CurrentBatchSize {
  const setting = snapshot?.settings.find((s) => s.name === BATCH_SIZE_SETTING)
  if (override !== undefined) return {value: override, from: 'flag', writable: setting?.writable ?? false}
  if (setting && Number.isInteger(setting.value) && setting.value >= 1) {
    return {value: setting.value, from: 'setting', writable: setting.writable}
  }
  const channels = (snapshot?.channels ?? []).filter((c) => c.kind === 'channel' && !c.collected && c.capacity >= 1)
  // The event buffer: named for binlog events when the pipeline follows ghostferry, else the busiest.
  const named = channels.find((c) => /binlog|event/i.test(c.name))
  const busiest = [...channels].sort((a, b) => b.itemsOut - a.itemsOut)[0]
  const channel = named ?? busiest
  if (channel) return {value: channel.capacity, from: 'channel-capacity', writable: false, channelName: channel.name}
  return {value: null, from: 'unknown', writable: false}
}

/**
 * When nothing names the batch size: the median events of the writer's batch writes in the window (the
 * probes' BEGIN..COMMIT or multi-row write sizes). Left as is when the size is known or no batch was seen.
 */
export function withObservedBatchSize(current: CurrentBatchSize, samples: readonly BatchSample[]): CurrentBatchSize {
  if (current.value !== null) return current
  const sizes = observedBatchSizes(samples)
  return sizes === null ? current : {value: sizes.median, from: 'observed', writable: false}
}

/** Median and largest events of the ok batch writes; null when there are none. */
export function observedBatchSizes(samples: readonly BatchSample[]): {median: number; max: number} | null {
  const sizes = samples.filter((s) => s.ok && s.events > 0).map((s) => s.events).sort((a, b) => a - b)
  if (sizes.length === 0) return null
  return {median: sizes[Math.floor((sizes.length - 1) / 2)]!, max: sizes.at(-1)!}
}

/**
 * How the writer writes a batch, from the statements the probes counted in its batches: one write statement
 * per event (a row-by-row applier, whose cost is per statement) or multi-row statements. null until a batch
 * of at least 2 events with a statement count was seen. The active probe writes its batches the same way.
 */
export function observedWriteShape(samples: readonly BatchSample[]): 'row-per-statement' | 'multi-row' | null {
  const ratios = samples
    .filter((s) => s.ok && s.events >= 2 && typeof s.statements === 'number' && s.statements > 0)
    .map((s) => s.statements! / s.events)
    .sort((a, b) => a - b)
  if (ratios.length === 0) return null
  return ratios[Math.floor((ratios.length - 1) / 2)]! >= 0.9 ? 'row-per-statement' : 'multi-row'
}


/** R from a source the pipeline registered with the agent (its eventsProduced), when it counts events. */
export function rateFromAgentSource(snapshots: readonly AgentSnapshot[]): TuneBatchRate | null {
  const withCounts = snapshots.filter((s) => s.sources.some((src) => typeof src.eventsProduced === 'number'))
  if (withCounts.length < 2) return null
  const name = withCounts[0].sources.find((src) => typeof src.eventsProduced === 'number')!.name
  const observations: CountObservation[] = []
  for (const s of withCounts) {
    const src = s.sources.find((x) => x.name === name)
    if (src?.eventsProduced !== undefined) observations.push({timeMs: s.takenAtMs, cumulativeEvents: src.eventsProduced})
  }
  if (observations.length < 2 || observations[observations.length - 1].timeMs <= observations[0].timeMs) return null
  const kind = withCounts[0].sources.find((x) => x.name === name)!.kind
  return {
    kind: 'agent-source',
    description: `source "${name}" (${kind}) registered in the agent: eventsProduced`,
    estimate: estimateRateFromCounts(observations, {origin: 'source'}),
  }
}

/**
 * R from the streamer's itemsHandled (the stage feeding the writer). Its back-pressured share of the
 * window decides whether the figure is the source's rate or only the writer's drain rate.
 */
export function rateFromStreamer(snapshots: readonly AgentSnapshot[], writerStage: string | null): TuneBatchRate | null {
  if (snapshots.length < 2) return null
  const first = snapshots[0]
  const last = snapshots[snapshots.length - 1]
  const candidates = last.stages.filter((s) => s.name !== writerStage)
  const named = candidates.find((s) => looksLikeStreamer(s.name))
  const busiest = [...candidates].sort((a, b) => b.itemsHandled - a.itemsHandled)[0]
  const stage = named ?? busiest
  if (!stage) return null
  const observations: CountObservation[] = []
  for (const s of snapshots) {
    const rec = s.stages.find((x) => x.name === stage.name)
    if (rec) observations.push({timeMs: s.takenAtMs, cumulativeEvents: rec.itemsHandled})
  }
  if (observations.length < 2 || observations[observations.length - 1].timeMs <= observations[0].timeMs) return null
  const startRec = first.stages.find((x) => x.name === stage.name)
  const windowMs = last.takenAtMs - first.takenAtMs
  const share = startRec && windowMs > 0 ? Math.min(1, Math.max(0, (stage.backPressuredMs - startRec.backPressuredMs) / windowMs)) : undefined
  return {
    kind: 'streamer',
    description: `stage "${stage.name}" itemsHandled (the streamer's reading rate, not the source's)`,
    estimate: estimateRateFromCounts(observations, {origin: 'streamer', streamerBackPressuredShare: share}),
  }
}

/** R from per-second binlog row counts (BinlogCounter buckets) over whole seconds of the window. */
export function rateFromBinlogBuckets(
  buckets: ReadonlyArray<{atSec: number; rows: number}>,
  window: {startMs: number; endMs: number},
  where: string,
): TuneBatchRate | null {
  // Only whole seconds: the first and last seconds were partly outside the count.
  const firstSec = Math.ceil(window.startMs / 1000)
  const lastSec = Math.floor(window.endMs / 1000) // exclusive
  if (lastSec - firstSec < 1) return null
  const bySec = new Map(buckets.map((b) => [b.atSec, b.rows]))
  const observations: CountObservation[] = [{timeMs: firstSec * 1000, cumulativeEvents: 0}]
  let total = 0
  for (let sec = firstSec; sec < lastSec; sec++) {
    total += bySec.get(sec) ?? 0
    observations.push({timeMs: (sec + 1) * 1000, cumulativeEvents: total})
  }
  return {
    kind: 'binlog',
    description: `binlog rows on ${where} (BinlogCounter, 1-s buckets of event timestamps)`,
    estimate: estimateRateFromCounts(observations, {origin: 'source'}),
  }
}

export interface TuneBatchInput {
  mode: SampleMode
  samples: CollectedSamples
  rate: TuneBatchRate | null
  current: CurrentBatchSize
  targetUtilisation: number
  window: {startedAtMs: number; endedAtMs: number; endedBy: string; snapshots: number}
  /** Flags the text suggests when the spread is degenerate. */
  canPerturb: boolean
  problems?: string[]
}


/** Fits, recommends and assembles the result. Pure. */
export function analyzeTuneBatch(input: TuneBatchInput): TuneBatchResult {
  const fit = fitCostModel(input.samples.samples)
  const warnings: string[] = [...(input.problems ?? [])]
  const suggestions: string[] = []
  const rate = input.rate
  if (rate) {
    for (const note of rate.estimate.notes) warnings.push(`rate: ${note}`)
    if (rate.kind === 'streamer') {
      warnings.push(
        'R is the streamer\'s reading rate: a back-pressured streamer reads only as fast as the writer drains, so this ' +
          'is the writer\'s rate, not the source\'s; pass --source DSN to count the source\'s binlog',
      )
    }
  } else {
    warnings.push('no source rate: neither --source, a source registered in the agent, nor a streamer stage')
  }
  if (input.current.value === null) warnings.push('current batch size unknown: pass --batch-size')
  if (fit.status === 'degenerate-spread') {
    suggestions.push('--probe-target DSN --like DB.TABLE: write batches of varied sizes into a scratch table on the target')
    if (input.canPerturb) {
      suggestions.push('--perturb: vary the pipeline\'s BinlogEventBatchSize briefly (restored afterwards)')
    }
  }
  if (fit.status === 'too-few-samples') {
    suggestions.push(`a longer --duration (${fit.samplesNeeded} more batch sample(s) needed), or --probe-target`)
  }
  let recommendation: BatchRecommendation | null = null
  if (rate && input.current.value !== null) {
    recommendation = recommendBatchSize({
      fit,
      rate: rate.estimate,
      currentBatchSize: input.current.value,
      targetUtilisation: input.targetUtilisation,
      rateBasis: 'peak',
    })
  }
  const model = fit.status === 'fitted' ? fit.model : null
  const rDesign = rate ? Math.max(rate.estimate.peakEventsPerSec, rate.estimate.meanEventsPerSec) : null
  const verdict = recommendation?.verdict ?? 'insufficient-data'
  const summary =
    recommendation?.summary ??
    (fit.status === 'fitted'
      ? `m and o are fitted, but ${rate ? 'the current batch size is unknown' : 'the source rate R is unknown'}: no verdict`
      : describeFitProblem(fit))
  return {
    schema: TUNE_BATCH_SCHEMA,
    version: TUNE_BATCH_VERSION,
    mode: input.mode,
    window: {...input.window, durationMs: input.window.endedAtMs - input.window.startedAtMs},
    samples: {
      stageName: input.samples.stageName,
      used: fit.sampleCount,
      ignored: fit.ignoredCount,
      fromWindow: input.samples.fromWindow,
      fromReservoir: input.samples.fromReservoir,
      totalCount: input.samples.totalCount || input.samples.samples.filter((s) => s.ok).length,
      distinctBatchSizes: fit.distinctBatchSizes,
      batchSizeCv: fit.batchSizeCv,
      writeShape: observedWriteShape(input.samples.samples),
    },
    model,
    fit: fitWithoutRepeats(fit),
    rate: rate && rDesign !== null ? {...rate.estimate, kind: rate.kind, description: rate.description, designEventsPerSec: rDesign, basis: 'peak'} : null,
    currentBatchSize: input.current.value,
    currentBatchSizeFrom: input.current.from,
    targetUtilisation: input.targetUtilisation,
    verdict,
    summary,
    recommendedBatchSize: recommendation?.recommendedBatchSize ?? null,
    recommendedRange: recommendation?.recommendedRange ?? null,
    stabilityBoundary: recommendation?.stabilityBoundary ?? null,
    writer: recommendation
      ? {perEventLoad: recommendation.perEventLoad, utilisationNow: recommendation.utilisationNow, lagTrend: recommendation.lagTrend, peakLagTrend: recommendation.peakLagTrend}
      : null,
    unsustainable:
      recommendation?.verdict === 'unsustainable'
        ? {
            maxSustainableEventsPerSec: recommendation.maxSustainableEventsPerSec,
            parallelWritersNeeded: recommendation.parallelWritersNeeded,
            throttleToEventsPerSec: recommendation.throttleToEventsPerSec,
            lagGrowthSecPerSec: recommendation.lagGrowthSecPerSec,
          }
        : null,
    formulae: model && rDesign !== null ? buildFormulae(model.mMsPerEvent, model.oMs, rDesign, input.targetUtilisation) : {stabilityBoundary: null, recommended: null, perEventLoad: null},
    notes: (recommendation?.notes ?? []).filter((n) => !fit.notes.includes(n)),
    suggestions,
    warnings,
  }
}

/** The fit as the result carries it: its counts live in `samples` and the chosen line in `model`. */
function fitWithoutRepeats(fit: CostModelFit): TuneBatchFit {
  const {sampleCount: _used, ignoredCount: _ignored, distinctBatchSizes: _distinct, batchSizeCv: _cv, ...rest} = fit
  if (rest.status !== 'fitted') return rest
  return {status: 'fitted', chosen: rest.chosen, alternative: rest.chosen === 'robust' ? rest.ols : rest.robust, notes: rest.notes}
}

function describeFitProblem(fit: CostModelFit): string {
  switch (fit.status) {
    case 'too-few-samples':
      return `only ${fit.sampleCount} usable batch sample(s); ${fit.samplesNeeded} more needed (at least ${fit.minSamples})`
    case 'degenerate-spread':
      return `batch sizes barely vary (${fit.distinctBatchSizes} distinct, CV ${fit.batchSizeCv.toFixed(3)}): m and o cannot be separated`
    case 'bad-model':
      return `the fitted cost model is not usable: ${fit.problems.join('; ')}`
    default:
      return 'fitted'
  }
}


/** The formulas with numbers filled in, in the units a reader uses (ms and events/s). */
export function buildFormulae(mMs: number, oMs: number, rPerSec: number, rho: number): TuneBatchFormulae {
  const mR = (mMs / 1000) * rPerSec
  const oR = (oMs / 1000) * rPerSec
  const m = `${formatNumber(mMs)} ms`
  const o = `${formatNumber(oMs)} ms`
  const r = `${formatNumber(rPerSec)}/s`
  const perEventLoad = `m·R = ${m} × ${r} = ${formatNumber(mR)}`
  const stabilityBoundary =
    mR < 1
      ? `B* = o·R / (1 − m·R) = ${o} × ${r} / (1 − ${m} × ${r}) = ${formatNumber(oR / (1 - mR))}`
      : `B* = o·R / (1 − m·R): none, since m·R = ${formatNumber(mR)} ≥ 1`
  const recommended =
    mR < rho
      ? `B = o·R / (ρ − m·R) = ${o} × ${r} / (${rho} − ${m} × ${r}) = ${formatNumber(oR / (rho - mR))}`
      : `B = o·R / (ρ − m·R): none, since m·R = ${formatNumber(mR)} ≥ ρ = ${rho}`
  return {stabilityBoundary, recommended, perEventLoad}
}

/** What a tune-batch window observed, as plain data (src/collect/tune-batch-window.ts gathers it). */
export interface TuneBatchObservations {
  mode: SampleMode
  /** The pipeline's snapshots over the window (agent or probes), oldest first; empty without a target. */
  snapshots: AgentSnapshot[]
  window: {startedAtMs: number; endedAtMs: number; endedBy: string; requestedMs: number}
  /** The batch size as read before the window (flag, setting, channel capacity), not yet observed. */
  current: CurrentBatchSize
  /** The active probe's batches (--probe-target); null in the other modes. */
  probeSamples: BatchSample[] | null
  /** Scratch tables of earlier, killed probes that the probe dropped. */
  sweptProbeTables: string[]
  /** Per-second binlog row counts with --source. */
  binlog: {buckets: Array<{atSec: number; rows: number}>; startedAtMs: number; stoppedAtMs: number; where: string} | null
  probes: TuneBatchResult['probes']
  /** The pipeline's batch-size property (probes only), null when none matched or none was looked for. */
  knob: BatchKnob | null
  problems: string[]
  /** Why the window ended early when the target exited; null when it did not. */
  targetExited: string | null
}

/**
 * The whole tune-batch result from a window's observations: the samples to fit (the probe's, else the
 * chosen stage's), the current batch size (observed from the pipeline's writes when nothing names it),
 * R (binlog, else a registered source, else the streamer), then fit and recommendation; with the samples
 * fitted (for the plot). Pure.
 */
export function tuneBatchFromObservations(
  observed: TuneBatchObservations,
  options: {stage?: string; targetUtilisation: number},
): {result: TuneBatchResult; samples: BatchSample[]} {
  const {snapshots, window} = observed
  const span = {startMs: window.startedAtMs, endMs: window.endedAtMs}
  const own = collectBatchSamples(snapshots, span, options.stage)
  const probeSamples = observed.probeSamples
  const collected: CollectedSamples = probeSamples
    ? {stageName: 'probe', samples: probeSamples, fromWindow: probeSamples.length, fromReservoir: 0, totalCount: probeSamples.length, otherStages: []}
    : own
  // The pipeline's own batches name its current size when nothing else does (with --probe-target too).
  const current = withObservedBatchSize(observed.current, own.samples.filter((b) => b.atMs >= window.startedAtMs))
  const binlog = observed.binlog
  const rate =
    (binlog ? rateFromBinlogBuckets(binlog.buckets, {startMs: binlog.startedAtMs, endMs: binlog.stoppedAtMs}, binlog.where) : null) ??
    rateFromAgentSource(snapshots) ??
    rateFromStreamer(snapshots, probeSamples ? null : collected.stageName)
  const analyzed = analyzeTuneBatch({
    mode: observed.mode,
    samples: collected,
    rate,
    current,
    targetUtilisation: options.targetUtilisation,
    window: {startedAtMs: window.startedAtMs, endedAtMs: window.endedAtMs, endedBy: window.endedBy, snapshots: snapshots.length},
    canPerturb: current.from === 'setting' && current.writable,
    problems: observed.problems,
  })
  // A window cut short by the target's exit says nothing about a pipeline that keeps up: no verdict.
  const result: TuneBatchResult =
    observed.targetExited !== null
      ? {
          ...analyzed,
          verdict: 'insufficient-data',
          summary: `the target exited ${formatDurationMs(window.endedAtMs - window.startedAtMs)} into the ${formatDurationMs(window.requestedMs)} window: no verdict from a window cut short`,
        }
      : analyzed
  result.probes = observed.probes
  if (current.from === 'observed') result.knob = observed.knob
  return {result, samples: collected.samples}
}
