// Turns a fitted cost model T = m·B + o and a source rate R into a batch-size verdict: keeps up or not,
// the smallest batch (and buffer) that meets a target writer utilisation ρ, and what to do when none does.
import type {BatchRecommendation, CostModelFit, LagTrend, RateEstimate} from '../model/cost-model.js'

export interface RecommendBatchInput {
  fit: CostModelFit
  rate: Pick<RateEstimate, 'meanEventsPerSec' | 'peakEventsPerSec'> & Partial<Pick<RateEstimate, 'origin'>>
  /** The writer's batch size now (BinlogEventBatchSize), events. */
  currentBatchSize: number
  /**
   * Target utilisation ρ in (0, 1], default 0.8: at the recommended size a FULL batch of B events takes ρ of
   * the time the source needs to produce B events (T(B) = ρ·B/R). A writer that writes whatever is buffered
   * (ghostferry's) then settles on batches of about B* and stays busy; the 1 − ρ margin shows up as headroom
   * in batch size and buffer (the buffer never fills, so the streamer is not blocked), not as idle time.
   */
  targetUtilisation?: number
  /** Which rate the recommendation must sustain. Default 'peak' (lag must stay near zero for cutover). */
  rateBasis?: 'mean' | 'peak'
}

/** Writer throughput (events/s) at batch size B events, with m in ms/event and o in ms. */
export function computeWriterEventsPerSec(batchSize: number, mMsPerEvent: number, oMs: number): number {
  const writeMs = mMsPerEvent * batchSize + oMs
  return writeMs > 0 ? (batchSize * 1000) / writeMs : Infinity
}

/** Lag trend when the source produces rEventsPerSec and the writer drains writerEventsPerSec. */
export function computeLagTrend(rEventsPerSec: number, writerEventsPerSec: number): LagTrend {
  if (rEventsPerSec > writerEventsPerSec) {
    return {
      state: 'growing',
      // Each second R events arrive but only `writer` are applied: the applied position falls behind
      // source time by 1 − writer/R seconds per second.
      growthSecPerSec: 1 - writerEventsPerSec / rEventsPerSec,
      growthEventsPerSec: rEventsPerSec - writerEventsPerSec,
      rateEventsPerSec: rEventsPerSec,
      writerEventsPerSec,
    }
  }
  return {state: 'stable', growthSecPerSec: 0, growthEventsPerSec: 0, rateEventsPerSec: rEventsPerSec, writerEventsPerSec}
}

/**
 * Smallest B with R·T(B)/B ≤ ρ, i.e. B = oR / (ρ − mR) with m, o in seconds; null when mR ≥ ρ.
 * Not rounded.
 */
export function computeBatchForUtilisation(mMsPerEvent: number, oMs: number, rEventsPerSec: number, rho: number): number | null {
  const perEventLoad = (mMsPerEvent / 1000) * rEventsPerSec
  if (perEventLoad >= rho) return null
  return ((oMs / 1000) * rEventsPerSec) / (rho - perEventLoad)
}

/** Round up a batch size (or writer count), forgiving floating-point dust: 44.000000000001 is 44. */
function ceilBatch(value: number): number {
  return Math.max(1, Math.ceil(value - 1e-9 * Math.max(1, value)))
}

export function recommendBatchSize(input: RecommendBatchInput): BatchRecommendation {
  const rho = input.targetUtilisation ?? 0.8
  if (!(rho > 0 && rho <= 1)) {
    throw new RangeError(`Expected targetUtilisation in (0, 1], got ${rho} (${typeof rho})`)
  }
  const current = input.currentBatchSize
  if (!Number.isInteger(current) || current < 1) {
    throw new RangeError(`Expected currentBatchSize to be an integer >= 1, got ${current} (${typeof current})`)
  }
  const rMean = input.rate.meanEventsPerSec
  const rPeak = input.rate.peakEventsPerSec
  for (const [name, value] of [['meanEventsPerSec', rMean], ['peakEventsPerSec', rPeak]] as const) {
    if (!(Number.isFinite(value) && value >= 0)) {
      throw new RangeError(`Expected rate.${name} to be a finite number >= 0, got ${value} (${typeof value})`)
    }
  }
  const basis = input.rateBasis ?? 'peak'
  const rDesign = basis === 'peak' ? Math.max(rPeak, rMean) : rMean
  const fit = input.fit

  const empty: BatchRecommendation = {
    verdict: 'insufficient-data',
    summary: '',
    model: null,
    targetUtilisation: rho,
    currentBatchSize: current,
    perEventLoad: null,
    stabilityBoundary: null,
    recommendedBatchSize: null,
    recommendedRange: null,
    bufferCapacity: null,
    utilisationNow: null,
    lagTrend: null,
    peakLagTrend: null,
    maxSustainableEventsPerSec: null,
    parallelWritersNeeded: null,
    throttleToEventsPerSec: null,
    lagGrowthSecPerSec: null,
    notes: [...fit.notes],
  }

  if (fit.status === 'too-few-samples') {
    return {
      ...empty,
      summary: `only ${fit.sampleCount} usable batch sample(s); ${fit.samplesNeeded} more needed (at least ${fit.minSamples})`,
    }
  }
  if (fit.status === 'bad-model') {
    return {...empty, summary: `the fitted cost model is not usable: ${fit.problems.join('; ')}`}
  }
  if (fit.status === 'degenerate-spread') {
    // Only throughput at the observed batch size is known; judge the current size if it was observed.
    const group = fit.groups.find((g) => g.events === current) ?? null
    const result: BatchRecommendation = {
      ...empty,
      summary:
        `batch sizes barely vary (${fit.distinctBatchSizes} distinct): m and o cannot be separated; ` +
        `the writer managed ${Math.round(fit.throughputEventsPerSec)} events/s at B = ${fit.groups[0].events}`,
    }
    if (group) {
      result.utilisationNow = rMean / group.throughputEventsPerSec
      result.lagTrend = computeLagTrend(rMean, group.throughputEventsPerSec)
      result.peakLagTrend = computeLagTrend(rPeak, group.throughputEventsPerSec)
      if (result.lagTrend.state === 'growing') {
        result.summary += `, below the source's ${Math.round(rMean)} events/s: lag grows ${result.lagTrend.growthSecPerSec.toFixed(2)} s/s`
      }
    }
    return result
  }

  const model = fit.model
  const mMs = model.mMsPerEvent
  const oMs = model.oMs
  const mSec = mMs / 1000
  const perEventLoad = mSec * rDesign
  const result: BatchRecommendation = {
    ...empty,
    model: {
      mMsPerEvent: mMs,
      oMs,
      mIntervalMsPerEvent: model.mIntervalMsPerEvent,
      oIntervalMs: model.oIntervalMs,
      method: model.method,
      rEventsPerSec: rDesign,
      rMeanEventsPerSec: rMean,
      rPeakEventsPerSec: rPeak,
      rateBasis: basis,
      rateOrigin: input.rate.origin ?? 'source',
    },
    perEventLoad,
    stabilityBoundary: perEventLoad < 1 ? computeBatchForUtilisation(mMs, oMs, rDesign, 1) : null,
  }
  const writerNow = computeWriterEventsPerSec(current, mMs, oMs)
  result.utilisationNow = writerNow === Infinity ? 0 : rDesign / writerNow
  result.lagTrend = computeLagTrend(rMean, writerNow)
  result.peakLagTrend = computeLagTrend(rPeak, writerNow)
  const notes = result.notes

  if (perEventLoad >= rho) {
    result.verdict = 'unsustainable'
    result.maxSustainableEventsPerSec = mSec > 0 ? 1 / mSec : Infinity
    result.parallelWritersNeeded = ceilBatch(perEventLoad / rho)
    result.throttleToEventsPerSec = rho / mSec
    result.lagGrowthSecPerSec = result.lagTrend.growthSecPerSec
    result.summary =
      `no batch size keeps up: m·R = ${perEventLoad.toFixed(2)} ≥ ρ = ${rho} (the writer spends ` +
      `${mMs.toPrecision(3)} ms per event; at most ${Math.floor(1 / mSec)} events/s at any batch size)`
    if (perEventLoad < 1) {
      notes.push(
        `m·R < 1: a batch of at least ${Math.ceil(result.stabilityBoundary ?? 0)} would keep up, but the per-event cost ` +
          `alone takes more than ${Math.round(rho * 100)}% of the source's time, leaving no margin for peaks`,
      )
    }
    if (basis === 'peak' && (mSec * rMean) < rho) {
      notes.push('the mean rate is sustainable: lag builds during peaks and drains afterwards')
    }
    notes.push(
      `options: ${result.parallelWritersNeeded} parallel writers (where ordering allows, e.g. by primary key), ` +
        `or throttle the source to ${Math.floor(result.throttleToEventsPerSec)} events/s, or make each event cheaper to write`,
    )
    return result
  }

  const exact = computeBatchForUtilisation(mMs, oMs, rDesign, rho) ?? 0
  const recommended = ceilBatch(exact)
  result.recommendedBatchSize = recommended
  result.bufferCapacity = recommended
  result.recommendedRange = propagateRange(fit, rMean, rDesign, rho)

  if (result.utilisationNow > rho) {
    result.verdict = 'too-small'
    const growing = result.lagTrend.state === 'growing'
    result.summary =
      `batch size ${current} is too small: a full batch takes ${(result.utilisationNow * 100).toFixed(0)}% of the time the source ` +
      `needs to fill it at ${Math.round(rDesign)} events/s (above 100% lag grows; target ${Math.round(rho * 100)}%); use ${recommended}` +
      (growing ? `; lag grows ${result.lagTrend.growthSecPerSec.toFixed(2)} s/s meanwhile` : '')
  } else {
    result.verdict = 'ok'
    result.summary =
      `batch size ${current} keeps up: a full batch takes ${(result.utilisationNow * 100).toFixed(0)}% of the time the source ` +
      `needs to fill it at ${Math.round(rDesign)} events/s (target ${Math.round(rho * 100)}%); the smallest that meets the target is ${recommended}`
  }
  if (rDesign === 0) notes.push('the source produced no events in the window: any batch size keeps up')
  if (result.recommendedRange && result.recommendedRange.high === null) {
    notes.push('at the pessimistic end of the m interval the peak rate is unsustainable: the upper end of the range is unbounded')
  }
  return result
}

/**
 * Range of B from the corners of the 95% intervals: B grows with m, o and R, so the low end takes
 * m and o at their low ends with the mean rate, the high end at their high ends with the design rate.
 * Negative interval ends are clamped to 0 (m and o cannot be negative).
 */
function propagateRange(fit: Extract<CostModelFit, {status: 'fitted'}>, rMean: number, rDesign: number, rho: number) {
  const m = fit.model.mIntervalMsPerEvent
  const o = fit.model.oIntervalMs
  const rLow = Math.min(rMean, rDesign)
  const low = computeBatchForUtilisation(Math.max(0, m.low), Math.max(0, o.low), rLow, rho)
  const high = computeBatchForUtilisation(Math.max(0, m.high), Math.max(0, o.high), rDesign, rho)
  return {low: ceilBatch(low ?? 0), high: high === null ? null : ceilBatch(high)}
}
