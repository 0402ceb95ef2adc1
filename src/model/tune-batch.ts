// The `tune-batch` command's result (also its --json document, schema ferrydiag.tune-batch) and the
// vocabulary it shares with the analysis and the renderers: sample modes, rate sources, the batch size.
import type {BatchRecommendation, CostModelFit, RateEstimate} from './cost-model.js'
import type {ProbesUse} from './probes.js'

export const TUNE_BATCH_SCHEMA = 'ferrydiag.tune-batch'
export const TUNE_BATCH_VERSION = 2

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

/** The --json shape (schema ferrydiag.tune-batch, version 2: samples.writeShape is new). */
export interface TuneBatchResult {
  schema: typeof TUNE_BATCH_SCHEMA
  version: typeof TUNE_BATCH_VERSION
  mode: SampleMode
  window: {startedAtMs: number; endedAtMs: number; durationMs: number; endedBy: string; snapshots: number}
  samples: {stageName: string | null; used: number; fromWindow: number; fromReservoir: number; totalCount: number; distinctBatchSizes: number; batchSizeCv: number
    /** How the fitted batches were written (statements counted by the probes or the active probe); null when unknown. */
    writeShape: 'row-per-statement' | 'multi-row' | null
  }
  /** Flat model: what a script reads first. Intervals are 95%. null unless the fit succeeded. */
  model: {
    mMsPerEvent: number
    mIntervalMsPerEvent: {low: number; high: number}
    oMs: number
    oIntervalMs: {low: number; high: number}
    method: 'ols' | 'theil-sen'
    rSquared: number
    rEventsPerSec: number | null
    rMeanEventsPerSec: number | null
    rPeakEventsPerSec: number | null
    rateBasis: 'peak'
  } | null
  rate: (RateEstimate & {kind: RateSourceKind; description: string}) | null
  currentBatchSize: number | null
  currentBatchSizeFrom: CurrentBatchSize['from']
  targetUtilisation: number
  verdict: BatchRecommendation['verdict']
  summary: string
  recommendedBatchSize: number | null
  recommendedRange: BatchRecommendation['recommendedRange']
  stabilityBoundary: number | null
  bufferCapacity: number | null
  formulae: TuneBatchFormulae
  fit: CostModelFit
  recommendation: BatchRecommendation | null
  suggestions: string[]
  warnings: string[]
  /** The attach-time probes the samples came from (null: the agent's samples, or no attach). */
  probes?: ProbesUse | null
}
