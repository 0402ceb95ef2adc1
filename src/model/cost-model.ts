// Types for the batch cost model T = m·B + o, the source rate estimate and the batch-size recommendation
// (tune-batch's --json shape). m is in ms per event, o in ms per batch write, rates in events per second.

/** A closed interval; `high` is null when the interval is unbounded above. */
export interface Interval {
  low: number
  high: number | null
}

/** One straight-line fit of batch write time against batch size. */
export interface LinearCostFit {
  /** 'ols': ordinary least squares, t-based 95% intervals. 'theil-sen': median pairwise slope with
   *  Sen's rank-based interval for m and a sign-test interval for o. */
  method: 'ols' | 'theil-sen'
  /** Marginal write time per event (ms/event). */
  mMsPerEvent: number
  /** Fixed overhead per batch write (ms): round trip, statement and commit. */
  oMs: number
  /** 95% confidence intervals. */
  mIntervalMsPerEvent: {low: number; high: number}
  oIntervalMs: {low: number; high: number}
  /** Coefficient of determination of this line on all ok samples (outliers included). */
  rSquared: number
  /** Median absolute residual (ms): a scale of the noise that outliers do not inflate. */
  medianAbsResidualMs: number
  /** Theil–Sen only: slope pairs used, and whether they were a deterministic subsample of all pairs. */
  pairsUsed?: number
  pairsSubsampled?: boolean
}

/** Summary of the samples taken at one batch size. */
export interface BatchSizeGroup {
  events: number
  count: number
  meanMs: number
  medianMs: number
  /** Writer throughput at this batch size: events / (median ms / 1000). */
  throughputEventsPerSec: number
}

interface FitBase {
  /** ok samples with finite, positive batch size and finite, non-negative time. */
  sampleCount: number
  /** Samples ignored: failed writes and malformed points. */
  ignoredCount: number
  distinctBatchSizes: number
  /** Coefficient of variation of the batch sizes (sd / mean). */
  batchSizeCv: number
  notes: string[]
}

export interface FittedCostModel extends FitBase {
  status: 'fitted'
  /** Which fit the recommendation uses. */
  chosen: 'robust' | 'ols'
  /** The chosen fit (same object as robust or ols). */
  model: LinearCostFit
  ols: LinearCostFit
  robust: LinearCostFit
}

export interface TooFewSamples extends FitBase {
  status: 'too-few-samples'
  minSamples: number
  samplesNeeded: number
}

/** Batch sizes barely vary (a saturated writer writes only full batches): m and o cannot be separated. */
export interface DegenerateSpread extends FitBase {
  status: 'degenerate-spread'
  /** Groups by batch size, most frequent first. */
  groups: BatchSizeGroup[]
  /** What the data can still bound, given m ≥ 0 and o ≥ 0: m ≤ T/B and o ≤ T at the main batch size. */
  mMsPerEventAtMost: number
  oMsAtMost: number
  /** Throughput at the most frequent batch size: the writer sustains at least this much at or above it. */
  throughputEventsPerSec: number
  minDistinctBatchSizes: number
  minBatchSizeCv: number
}

/** The fit ran but gave a negative or non-finite m or o: no recommendation can rest on it. */
export interface BadCostModel extends FitBase {
  status: 'bad-model'
  chosen: 'robust' | 'ols'
  ols: LinearCostFit
  robust: LinearCostFit
  problems: string[]
}

export type CostModelFit = FittedCostModel | TooFewSamples | DegenerateSpread | BadCostModel

/** Where a rate was measured. 'source': the binlog end (the truth); 'streamer': the reader's progress. */
export type RateOrigin = 'source' | 'streamer'

export interface RateEstimate {
  origin: RateOrigin
  /** Events over the whole window / window length. */
  meanEventsPerSec: number
  /** 95th percentile of whole 1-second buckets (equals the mean when there is no whole bucket). */
  peakEventsPerSec: number
  peakQuantile: number
  bucketMs: number
  bucketCount: number
  windowMs: number
  totalEvents: number
  /** False when the rate measures something else than the source (a back-pressured streamer). */
  trustworthy: boolean
  /** True when the true source rate may be higher than this figure. */
  lowerBoundOnly: boolean
  notes: string[]
}

export type BatchVerdict = 'ok' | 'too-small' | 'unsustainable' | 'insufficient-data'

/** Lag trend at a given batch size and rate. */
export interface LagTrend {
  state: 'growing' | 'stable'
  /** Seconds of lag added per second of wall time (0 when stable). */
  growthSecPerSec: number
  /** Events added to the backlog per second (0 when stable). */
  growthEventsPerSec: number
  rateEventsPerSec: number
  /** Writer throughput at that batch size: B / T(B). */
  writerEventsPerSec: number
}

export interface BatchRecommendation {
  verdict: BatchVerdict
  summary: string
  /** The model the recommendation rests on (null for insufficient data). */
  model: {
    mMsPerEvent: number
    oMs: number
    mIntervalMsPerEvent: {low: number; high: number}
    oIntervalMs: {low: number; high: number}
    method: 'ols' | 'theil-sen'
    rEventsPerSec: number
    rMeanEventsPerSec: number
    rPeakEventsPerSec: number
    rateBasis: 'mean' | 'peak'
    rateOrigin: RateOrigin
  } | null
  targetUtilisation: number
  currentBatchSize: number
  /** m·R (dimensionless): the share of each second the writer spends on per-event work. ≥ 1 is hopeless. */
  perEventLoad: number | null
  /** B* = oR / (1 − mR): below it the writer cannot keep up at all. null when mR ≥ 1. */
  stabilityBoundary: number | null
  /** ceil(oR / (ρ − mR)); null when unsustainable or insufficient data. */
  recommendedBatchSize: number | null
  /** Range from the corners of the m and o intervals and R between mean and peak; high null = unbounded. */
  recommendedRange: Interval | null
  /** Channel capacity to pair with the batch size (= recommendedBatchSize: the streamer fills at most ρ·B while a batch is written). */
  bufferCapacity: number | null
  /** ρ_now = R·T(B)/B at the current batch size; > 1 means lag grows. */
  utilisationNow: number | null
  /** Lag trend at the current batch size, at the mean rate and at the peak rate. */
  lagTrend: LagTrend | null
  peakLagTrend: LagTrend | null
  /** Unsustainable case only. */
  maxSustainableEventsPerSec: number | null
  parallelWritersNeeded: number | null
  throttleToEventsPerSec: number | null
  lagGrowthSecPerSec: number | null
  notes: string[]
}
