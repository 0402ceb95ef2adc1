// Fits the batch cost model T = m·B + o (T in ms, B in events) to a writer's batch samples, both by
// ordinary least squares and robustly, and says when the samples cannot support a fit at all.
import type {BatchSample} from '../model/snapshot.js'
import type {
  BatchSizeGroup,
  CostModelFit,
  LinearCostFit,
} from '../model/cost-model.js'
import {createUniformSource, mean, median, normalQuantile, standardDeviation, studentTQuantile} from './stats.js'

export interface FitCostModelOptions {
  /** Fewer ok samples than this → 'too-few-samples'. Default 8. */
  minSamples?: number
  /** Fewer distinct batch sizes than this → 'degenerate-spread'. Default 3. */
  minDistinctBatchSizes?: number
  /** Coefficient of variation of B below this → 'degenerate-spread'. Default 0.1. */
  minBatchSizeCv?: number
  /** Which fit the recommendation uses. Default 'robust'. */
  method?: 'robust' | 'ols'
  /** Above this many points Theil–Sen uses a deterministic subsample of pairs. Default 2000. */
  exhaustivePairsUpToPoints?: number
  /** Pairs drawn when subsampling. Default 1,000,000. */
  sampledPairs?: number
}

const CONFIDENCE = 0.95

/** One (B, T) point: batch size in events, write time in ms. */
export interface Point {
  events: number
  ms: number
}

/**
 * Robust method: Theil–Sen (median of pairwise slopes, intercept = median residual). Chosen over Huber
 * IRLS because (1) it needs no tuning constant and no scale estimate, which a cluster of 9 ms writes
 * among 0.3 ms ones would distort; (2) it tolerates up to ~29% of arbitrary outliers; (3) Sen's interval
 * for the slope is distribution-free (ranks of the pairwise slopes, Kendall's S variance with a
 * correction for repeated batch sizes), so the interval stays honest for skewed, heavy-tailed
 * write times, where OLS's t-interval assumes normal errors. Its cost is O(n²) pairs, capped by a
 * deterministic subsample above `exhaustivePairsUpToPoints` points.
 */
export function fitCostModel(samples: readonly BatchSample[], options: FitCostModelOptions = {}): CostModelFit {
  const minSamples = options.minSamples ?? 8
  const minDistinct = options.minDistinctBatchSizes ?? 3
  const minCv = options.minBatchSizeCv ?? 0.1
  const method = options.method ?? 'robust'
  if (!Number.isInteger(minSamples) || minSamples < 3) {
    throw new RangeError(`Expected minSamples to be an integer >= 3, got ${minSamples}`)
  }

  const points: Point[] = []
  let ignored = 0
  for (const s of samples) {
    if (s.ok && Number.isFinite(s.events) && s.events > 0 && Number.isFinite(s.ms) && s.ms >= 0) {
      points.push({events: s.events, ms: s.ms})
    } else ignored++
  }
  const sizes = points.map((p) => p.events)
  const distinct = new Set(sizes).size
  const meanB = mean(sizes)
  const cv = points.length > 1 && meanB > 0 ? standardDeviation(sizes) / meanB : 0
  const base = {sampleCount: points.length, ignoredCount: ignored, distinctBatchSizes: distinct, batchSizeCv: cv}
  const notes: string[] = []
  if (ignored > 0) notes.push(`${ignored} sample(s) ignored (failed writes or malformed points)`)

  if (points.length < minSamples) {
    return {
      ...base,
      notes,
      status: 'too-few-samples',
      minSamples,
      samplesNeeded: minSamples - points.length,
    }
  }

  if (distinct < minDistinct || cv < minCv) {
    const groups = groupByBatchSize(points)
    const main = groups[0]
    notes.push(
      `batch sizes barely vary (${distinct} distinct, CV ${cv.toFixed(3)}): m and o cannot be separated. ` +
        `A saturated writer writes only full batches; its batch size must vary to fit the model.`,
    )
    return {
      ...base,
      notes,
      status: 'degenerate-spread',
      groups,
      mMsPerEventAtMost: main.medianMs / main.events,
      oMsAtMost: main.medianMs,
      throughputEventsPerSec: main.throughputEventsPerSec,
      minDistinctBatchSizes: minDistinct,
      minBatchSizeCv: minCv,
    }
  }

  const ols = fitOrdinaryLeastSquares(points)
  const robust = fitTheilSen(points, options.exhaustivePairsUpToPoints ?? 2000, options.sampledPairs ?? 1_000_000)
  const chosenFit = method === 'robust' ? robust : ols
  const slowWrites = countSlowOutliers(points, robust)
  if (slowWrites > 0) {
    notes.push(`${slowWrites} sample(s) lie far above the robust line (slow writes); OLS is pulled by them`)
  }

  const problems = describeProblems(chosenFit)
  if (problems.length > 0) {
    return {...base, notes, status: 'bad-model', chosen: method, ols, robust, problems}
  }
  const other = method === 'robust' ? ols : robust
  const otherProblems = describeProblems(other)
  if (otherProblems.length > 0) notes.push(`${other.method} fit (not used): ${otherProblems.join('; ')}`)
  let model = chosenFit
  if (chosenFit.oMs < 0) {
    // Only reached when the interval reaches 0 (describeProblems): o is too small to tell from noise, as for
    // a row-by-row writer whose per-batch cost (BEGIN, COMMIT) is a few of its many statements.
    notes.push(`o fitted ${chosenFit.oMs.toFixed(3)} ms, 95% interval [${chosenFit.oIntervalMs.low.toFixed(3)}, ${chosenFit.oIntervalMs.high.toFixed(3)}] ms includes 0: taken as 0`)
    model = {...chosenFit, oMs: 0}
  }
  return {...base, notes, status: 'fitted', chosen: method, model, ols, robust}
}

function describeProblems(fit: LinearCostFit): string[] {
  const problems: string[] = []
  if (!Number.isFinite(fit.mMsPerEvent)) problems.push(`m is not finite (${fit.mMsPerEvent})`)
  else if (fit.mMsPerEvent < 0) problems.push(`m is negative (${fit.mMsPerEvent} ms/event): larger batches wrote faster`)
  if (!Number.isFinite(fit.oMs)) problems.push(`o is not finite (${fit.oMs})`)
  else if (fit.oMs < 0 && !(fit.oIntervalMs.high >= 0)) problems.push(`o is negative (${fit.oMs} ms): the line does not describe small batches`)
  return problems
}

function groupByBatchSize(points: readonly Point[]): BatchSizeGroup[] {
  const bySize = new Map<number, number[]>()
  for (const p of points) {
    const list = bySize.get(p.events)
    if (list) list.push(p.ms)
    else bySize.set(p.events, [p.ms])
  }
  const groups: BatchSizeGroup[] = []
  for (const [events, times] of bySize) {
    const medianMs = median(times)
    groups.push({
      events,
      count: times.length,
      meanMs: mean(times),
      medianMs,
      throughputEventsPerSec: medianMs > 0 ? (events * 1000) / medianMs : Infinity,
    })
  }
  groups.sort((a, b) => b.count - a.count || b.events - a.events)
  return groups
}

/** R² and median absolute residual of the line on the points. */
function describeResiduals(points: readonly Point[], m: number, o: number): {rSquared: number; medianAbsResidualMs: number} {
  const meanT = mean(points.map((p) => p.ms))
  let ssRes = 0
  let ssTot = 0
  const abs: number[] = []
  for (const p of points) {
    const r = p.ms - (m * p.events + o)
    ssRes += r * r
    ssTot += (p.ms - meanT) ** 2
    abs.push(Math.abs(r))
  }
  return {rSquared: ssTot > 0 ? 1 - ssRes / ssTot : 0, medianAbsResidualMs: median(abs)}
}

/** OLS with t-based 95% intervals (df = n − 2). */
export function fitOrdinaryLeastSquares(points: readonly Point[]): LinearCostFit {
  const n = points.length
  const meanB = mean(points.map((p) => p.events))
  const meanT = mean(points.map((p) => p.ms))
  let sxx = 0
  let sxy = 0
  for (const p of points) {
    sxx += (p.events - meanB) ** 2
    sxy += (p.events - meanB) * (p.ms - meanT)
  }
  const m = sxy / sxx
  const o = meanT - m * meanB
  let ssRes = 0
  for (const p of points) ssRes += (p.ms - (m * p.events + o)) ** 2
  const df = n - 2
  const sigma = Math.sqrt(ssRes / df)
  const seM = sigma / Math.sqrt(sxx)
  const seO = sigma * Math.sqrt(1 / n + (meanB * meanB) / sxx)
  const t = studentTQuantile(1 - (1 - CONFIDENCE) / 2, df)
  return {
    method: 'ols',
    mMsPerEvent: m,
    oMs: o,
    mIntervalMsPerEvent: {low: m - t * seM, high: m + t * seM},
    oIntervalMs: {low: o - t * seO, high: o + t * seO},
    ...describeResiduals(points, m, o),
  }
}

/**
 * Theil–Sen: m = median of slopes over pairs with different batch sizes, o = median of T − m·B.
 * m interval (Sen 1968): ranks (N ∓ C)/2 of the sorted slopes, C = z·√Var(S), with Var(S) reduced
 * for repeated batch sizes. o interval: the sign-test interval for the median of T − m·B, taken at m's
 * low end, estimate and high end, and their union (conservative, since m and o errors are correlated).
 */
export function fitTheilSen(points: readonly Point[], exhaustiveUpTo = 2000, sampledPairs = 1_000_000): LinearCostFit {
  const n = points.length
  const tieGroups = new Map<number, number>()
  for (const p of points) tieGroups.set(p.events, (tieGroups.get(p.events) ?? 0) + 1)
  let tiePairs = 0
  let tieVariance = 0
  for (const t of tieGroups.values()) {
    tiePairs += (t * (t - 1)) / 2
    tieVariance += t * (t - 1) * (2 * t + 5)
  }
  const totalPairs = (n * (n - 1)) / 2 - tiePairs

  let slopes: Float64Array
  let subsampled = false
  if (n <= exhaustiveUpTo) {
    slopes = new Float64Array(totalPairs)
    let k = 0
    for (let i = 0; i < n; i++) {
      const pi = points[i]
      for (let j = i + 1; j < n; j++) {
        const pj = points[j]
        const dB = pj.events - pi.events
        if (dB !== 0) slopes[k++] = (pj.ms - pi.ms) / dB
      }
    }
  } else {
    // Deterministic subsample: the seed depends only on n, so the same samples give the same fit.
    subsampled = true
    const next = createUniformSource(0x5eed ^ n)
    slopes = new Float64Array(sampledPairs)
    let k = 0
    let attempts = 0
    while (k < sampledPairs && attempts < sampledPairs * 20) {
      attempts++
      const i = Math.floor(next() * n)
      const j = Math.floor(next() * n)
      const dB = points[j].events - points[i].events
      if (dB !== 0) slopes[k++] = (points[j].ms - points[i].ms) / dB
    }
    slopes = slopes.subarray(0, k)
  }
  slopes.sort()
  const used = slopes.length
  const m = medianOfSorted(slopes)

  const z = normalQuantile(1 - (1 - CONFIDENCE) / 2)
  const varianceS = (n * (n - 1) * (2 * n + 5) - tieVariance) / 18
  const c = z * Math.sqrt(Math.max(0, varianceS))
  const scale = used / totalPairs
  const lowRank = ((totalPairs - c) / 2) * scale // 1-based rank among the used slopes
  const highRank = ((totalPairs + c) / 2 + 1) * scale
  const mLow = slopes[clampIndex(Math.round(lowRank) - 1, used)]
  const mHigh = slopes[clampIndex(Math.round(highRank) - 1, used)]

  const o = median(points.map((p) => p.ms - m * p.events))
  let oLow = Infinity
  let oHigh = -Infinity
  for (const slope of [mLow, m, mHigh]) {
    const residuals = Float64Array.from(points, (p) => p.ms - slope * p.events).sort()
    const lowRankO = Math.floor((n - z * Math.sqrt(n)) / 2) // sign-test order statistic, 1-based
    oLow = Math.min(oLow, residuals[clampIndex(lowRankO - 1, n)])
    oHigh = Math.max(oHigh, residuals[clampIndex(n - lowRankO, n)])
  }
  return {
    method: 'theil-sen',
    mMsPerEvent: m,
    oMs: o,
    mIntervalMsPerEvent: {low: mLow, high: mHigh},
    oIntervalMs: {low: oLow, high: oHigh},
    ...describeResiduals(points, m, o),
    pairsUsed: used,
    pairsSubsampled: subsampled,
  }
}

function medianOfSorted(sorted: Float64Array): number {
  const n = sorted.length
  if (n === 0) return Number.NaN
  const mid = n >> 1
  return n % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function clampIndex(index: number, length: number): number {
  return Math.min(length - 1, Math.max(0, index))
}

/** Samples more than 10 median absolute residuals above the robust line (slow writes). */
function countSlowOutliers(points: readonly Point[], robust: LinearCostFit): number {
  const threshold = 10 * Math.max(robust.medianAbsResidualMs, 1e-9)
  let count = 0
  for (const p of points) {
    if (p.ms - (robust.mMsPerEvent * p.events + robust.oMs) > threshold) count++
  }
  return count
}
