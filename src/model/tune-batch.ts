// The `tune-batch` command's result (also its --json document, schema ferrydiag.tune-batch) and the
// vocabulary it shares with the analysis and the renderers: sample modes, rate sources, the batch size.
import type {BadCostModel, BatchRecommendation, DegenerateSpread, LagTrend, LinearCostFit, RateEstimate, TooFewSamples} from './cost-model.js'
import type {ProbesUse} from './probes.js'

export const TUNE_BATCH_SCHEMA = 'ferrydiag.tune-batch'
export const TUNE_BATCH_VERSION = 3

/** The setting ghostferry calls BinlogEventBatchSize: batch size and event buffer capacity. */
export const BATCH_SIZE_SETTING = 'BinlogEventBatchSize'

/** Where the (B, T) samples came from. */
export type SampleMode = 'passive' | 'perturb' | 'probe'

/** Where R came from: a binlog row count (--source), the simulated/registered source, or the streamer. */
export type RateSourceKind = 'binlog' | 'agent-source' | 'streamer'

export interface CurrentBatchSize {
  value: number | null
  /** observed: the median rows of the writer's recent batch writes (probes: nothing names the knob). */
  from: 'flag' | 'setting' | 'channel-capacity' | 'observed' | 'unknown'
  /** The setting can be changed at runtime (what --perturb needs). */
  writable: boolean
  channelName?: string
}

/** The pipeline's own batch-size property, found read-only among the objects the probes hold. */
export interface BatchKnob {
  /** As the pipeline's code names it: 'cargo.payload', 'buffer.batchSize', 'stream._writableState.highWaterMark'. */
  path: string
  /** Its value, equal to the batch size observed in the writes (or the most rows in one write). */
  value: number
}

export interface TuneBatchRate {
  kind: RateSourceKind
  /** Human-readable: e.g. 'binlog rows on 127.0.0.1:3306', 'source "source" (simulated)'. */
  description: string
  estimate: RateEstimate
}

export interface TuneBatchFormulae {
  /** B* = o·R / (1 − m·R) with the numbers filled in; null when it has no value. */
  stabilityBoundary: string | null
  /** B for ρ: o·R / (ρ − m·R) with the numbers filled in. */
  recommended: string | null
  /** m·R with numbers. */
  perEventLoad: string | null
}

/** Counts of the fitted samples: in TuneBatchResult.samples, not repeated in its fit. */
type FitCounts = 'sampleCount' | 'ignoredCount' | 'distinctBatchSizes' | 'batchSizeCv'

/**
 * The fit's status and what only it knows. Fitted: the chosen line is TuneBatchResult.model; here only
 * which method it is and the other method's line, for comparison.
 */
export type TuneBatchFit =
  | {status: 'fitted'; chosen: 'robust' | 'ols'; alternative: LinearCostFit; notes: string[]}
  | Omit<TooFewSamples, FitCounts>
  | Omit<DegenerateSpread, FitCounts>
  | Omit<BadCostModel, FitCounts>

/**
 * The --json shape (schema ferrydiag.tune-batch). Each figure appears once: m and o in `model`, the rates
 * in `rate`, batch sizes at the top, the writer's load in `writer`. Version 3 removed the repeats of
 * version 2 (`recommendation`, `fit.model`, `model.r*`, `bufferCapacity`, the fit's sample counts).
 */
export interface TuneBatchResult {
  schema: typeof TUNE_BATCH_SCHEMA
  version: typeof TUNE_BATCH_VERSION
  mode: SampleMode
  window: {startedAtMs: number; endedAtMs: number; durationMs: number; endedBy: string; snapshots: number}
  samples: {stageName: string | null
    /** ok samples the fit used, and those it ignored (failed writes, malformed points). */
    used: number
    ignored: number
    fromWindow: number; fromReservoir: number; totalCount: number; distinctBatchSizes: number; batchSizeCv: number
    /** How the fitted batches were written (statements counted by the probes or the active probe); null when unknown. */
    writeShape: 'row-per-statement' | 'multi-row' | null
  }
  /** The chosen line T = m·B + o (95 % intervals); null unless the fit succeeded. */
  model: LinearCostFit | null
  fit: TuneBatchFit
  /** R, with the design rate the recommendation must sustain (max of peak and mean). */
  rate: (RateEstimate & {kind: RateSourceKind; description: string; designEventsPerSec: number; basis: 'peak'}) | null
  currentBatchSize: number | null
  currentBatchSizeFrom: CurrentBatchSize['from']
  /** The property that sets the batch size in the pipeline, when the probes' objects hold one whose value matches (added in version 3, optional). */
  knob?: BatchKnob | null
  targetUtilisation: number
  verdict: BatchRecommendation['verdict']
  summary: string
  /** Also the event buffer capacity to pair with it (ghostferry sizes its channel the same). */
  recommendedBatchSize: number | null
  recommendedRange: BatchRecommendation['recommendedRange']
  stabilityBoundary: number | null
  /** The writer at the current batch size; null without a model or rate. */
  writer: {
    perEventLoad: number | null
    utilisationNow: number | null
    lagTrend: LagTrend | null
    peakLagTrend: LagTrend | null
  } | null
  /** When no batch size keeps up (verdict unsustainable); null otherwise. */
  unsustainable: {
    maxSustainableEventsPerSec: number | null
    parallelWritersNeeded: number | null
    throttleToEventsPerSec: number | null
    lagGrowthSecPerSec: number | null
  } | null
  formulae: TuneBatchFormulae
  /** The recommendation's notes (the fit's own are in fit.notes). */
  notes: string[]
  suggestions: string[]
  warnings: string[]
  /** The attach-time probes the samples came from (null: the agent's samples, or no attach). */
  probes?: ProbesUse | null
}
