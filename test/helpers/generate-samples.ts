// Seeded generators for the analysis tests and the estimation bench: batch samples with a known cost
// model, noise and outliers, and a small factory for agent snapshots (stages, channels, tasks, sources).
import {SNAPSHOT_SCHEMA, SNAPSHOT_VERSION} from '../../src/model/snapshot.js'
import {createUniformSource} from '../../src/analyze/stats.js'
import type {
  AgentSnapshot,
  BatchSample,
  ChannelRecord,
  SourceStatus,
  StageRecord,
  TaskRecord,
} from '../../src/model/snapshot.js'

export interface Random {
  /** Uniform in [0, 1). */
  uniform(): number
  /** Standard normal (Box–Muller). */
  normal(): number
  /** Integer uniform in [low, high]. */
  integer(low: number, high: number): number
}

/** A seeded generator; the same seed always gives the same sequence. */
export function createRandom(seed: number): Random {
  const uniform = createUniformSource(seed)
  return {
    uniform,
    normal() {
      const u = 1 - uniform() // (0, 1]
      const v = uniform()
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
    },
    integer(low, high) {
      return low + Math.floor(uniform() * (high - low + 1))
    },
  }
}

export interface BatchSampleSpec {
  seed: number
  count: number
  mMsPerEvent: number
  oMs: number
  /** Batch sizes drawn uniformly from [minEvents, maxEvents]. Default 1..500. */
  minEvents?: number
  maxEvents?: number
  /** Gaussian noise: sd = relativeNoise·T + absoluteNoiseMs. Defaults 0.05 and 0. */
  relativeNoise?: number
  absoluteNoiseMs?: number
  /** Share of samples turned into slow writes (T += outlierMs·(1..3)). Default 0. */
  outlierShare?: number
  outlierMs?: number
  /** Share of failed writes (ok: false, random ms). Default 0. */
  failedShare?: number
  stageName?: string
  startMs?: number
}

/** Batch samples from T = m·B + o with noise and slow-write outliers; times never negative. */
export function generateBatchSamples(spec: BatchSampleSpec): BatchSample[] {
  const random = createRandom(spec.seed)
  const minEvents = spec.minEvents ?? 1
  const maxEvents = spec.maxEvents ?? 500
  const relativeNoise = spec.relativeNoise ?? 0.05
  const absoluteNoiseMs = spec.absoluteNoiseMs ?? 0
  const outlierShare = spec.outlierShare ?? 0
  const outlierMs = spec.outlierMs ?? 9
  const failedShare = spec.failedShare ?? 0
  const samples: BatchSample[] = []
  let atMs = spec.startMs ?? 1_700_000_000_000
  for (let i = 0; i < spec.count; i++) {
    const events = random.integer(minEvents, maxEvents)
    const trueMs = spec.mMsPerEvent * events + spec.oMs
    let ms = trueMs + random.normal() * (relativeNoise * trueMs + absoluteNoiseMs)
    if (random.uniform() < outlierShare) ms += outlierMs * (1 + 2 * random.uniform())
    const ok = !(random.uniform() < failedShare)
    ms = Math.max(0, ms)
    atMs += ms
    samples.push({stageName: spec.stageName ?? 'writer', atMs, events, ms: ok ? ms : ms * 3, ok})
  }
  return samples
}

/** Samples all at one batch size (a saturated writer writing only full batches). */
export function generateSaturatedSamples(seed: number, count: number, events: number, mMsPerEvent: number, oMs: number): BatchSample[] {
  return generateBatchSamples({seed, count, mMsPerEvent, oMs, minEvents: events, maxEvents: events})
}

const EPOCH = 1_700_000_000_000

export function makeStage(fields: Partial<StageRecord> & {name: string}): StageRecord {
  return {
    state: 'idle',
    stateSinceMs: EPOCH,
    busyMs: 0,
    idleMs: 0,
    backPressuredMs: 0,
    createdAtMs: EPOCH,
    itemsHandled: 0,
    lastProgressAtMs: null,
    lastItemTimestampMs: null,
    position: null,
    ...fields,
  }
}

export function makeChannel(fields: Partial<ChannelRecord> & {id: number; name: string}): ChannelRecord {
  return {
    kind: 'channel',
    capacity: 100,
    length: 0,
    closed: false,
    collected: false,
    createdAtMs: EPOCH,
    itemsIn: 0,
    itemsOut: 0,
    sendersEver: 1,
    receiversEver: 1,
    blockedSenders: 0,
    blockedReceivers: 0,
    sendBlockedMs: 0,
    receiveBlockedMs: 0,
    fullMs: 0,
    fillItemMs: 0,
    ...fields,
  }
}

export function makeTask(fields: Partial<TaskRecord> & {id: number; kind: TaskRecord['kind']}): TaskRecord {
  return {
    state: 'blocked',
    sinceMs: EPOCH,
    waitMs: 0,
    stack: [],
    ...fields,
  }
}

export function makeSource(fields: Partial<SourceStatus> = {}): SourceStatus {
  return {name: 'source', kind: 'simulated', end: {file: 'binlog.000001', offset: 4}, ...fields}
}

export interface SnapshotSpec {
  takenAtMs: number
  monotonicMs?: number
  stages?: StageRecord[]
  channels?: ChannelRecord[]
  tasks?: TaskRecord[]
  sources?: SourceStatus[]
  samples?: BatchSample[]
  pid?: number
}

/** A complete AgentSnapshot with plausible defaults around the given records. */
export function makeSnapshot(spec: SnapshotSpec): AgentSnapshot {
  return {
    schema: SNAPSHOT_SCHEMA,
    version: SNAPSHOT_VERSION,
    takenAtMs: spec.takenAtMs,
    monotonicMs: spec.monotonicMs ?? spec.takenAtMs - EPOCH + 1000,
    process: {
      pid: spec.pid ?? 4242,
      nodeVersion: 'v20.20.0',
      uptimeSec: (spec.takenAtMs - EPOCH) / 1000,
      argv: ['node', 'pipeline.js'],
      title: 'node',
      agentMode: 'channels',
      agentLoadedBy: 'preload',
      agentVersion: '0.1.0',
      agentStartedAtMs: EPOCH,
    },
    channels: spec.channels ?? [],
    tasks: spec.tasks ?? [],
    stages: spec.stages ?? [],
    samples: {recent: spec.samples ?? [], reservoir: [], totalCount: spec.samples?.length ?? 0, totalFailed: 0},
    sources: spec.sources ?? [],
    settings: [],
    counters: {},
    buildMs: 0.2,
  }
}

/** Epoch used by the factories (a stage's default creation time). */
export const FACTORY_EPOCH_MS = EPOCH

/** A stage whose counters grow linearly over a series: shares of wall time sum to 1. */
export interface StageFlow {
  name: string
  busyShare: number
  idleShare: number
  backPressuredShare: number
  itemsPerSec: number
  state?: StageRecord['state']
  /** Transaction lag (ms) at elapsed ms since the series started; omitted = no item timestamps. */
  transactionLagMs?: (elapsedMs: number) => number
  /** When false, lastProgressAtMs stays at stalledSinceMs before the series. Default true. */
  progressing?: boolean
  stalledForMsAtStart?: number
  /** Creation time; default long before the series. */
  createdAtMs?: number
}

/** A buffer with constant in/out rates and constant length (or growing until capacity). */
export interface BufferFlow {
  id: number
  name: string
  capacity: number
  inPerSec: number
  outPerSec: number
  length: number
  fullShare?: number
  kind?: ChannelRecord['kind']
}

export interface PipelineSeriesSpec {
  startMs?: number
  count: number
  stepMs: number
  stages: StageFlow[]
  buffers?: BufferFlow[]
  /** Tasks present in the last snapshot (waitMs counted up to it). */
  tasksAtEnd?: TaskRecord[]
  /** Simulated source registered in the agent: events/s and bytes per event. */
  source?: {eventsPerSec: number; bytesPerEvent: number}
}

/** Snapshots of a pipeline in steady state, so expected rates are known exactly. */
export function makePipelineSeries(spec: PipelineSeriesSpec): AgentSnapshot[] {
  const startMs = spec.startMs ?? EPOCH + 60_000
  const snapshots: AgentSnapshot[] = []
  const preexistingMs = 10_000 // counters already ran this long before the series
  for (let i = 0; i < spec.count; i++) {
    const takenAtMs = startMs + i * spec.stepMs
    const elapsed = i * spec.stepMs
    const stages = spec.stages.map((f) => {
      const created = f.createdAtMs ?? startMs - preexistingMs
      const lived = Math.max(0, takenAtMs - created)
      const progressing = f.progressing ?? true
      const lastProgressAtMs = progressing ? takenAtMs : startMs - (f.stalledForMsAtStart ?? 30_000)
      const lagMs = f.transactionLagMs?.(elapsed)
      return makeStage({
        name: f.name,
        state: f.state ?? 'busy',
        createdAtMs: created,
        busyMs: f.busyShare * lived,
        idleMs: f.idleShare * lived,
        backPressuredMs: f.backPressuredShare * lived,
        itemsHandled: progressing ? Math.round((f.itemsPerSec * lived) / 1000) : 5000,
        lastProgressAtMs,
        lastItemTimestampMs: lagMs === undefined ? null : takenAtMs - lagMs,
      })
    })
    const channels = (spec.buffers ?? []).map((b) => {
      const lived = preexistingMs + elapsed
      return makeChannel({
        id: b.id,
        name: b.name,
        kind: b.kind ?? 'channel',
        capacity: b.capacity,
        length: b.length,
        createdAtMs: startMs - preexistingMs,
        itemsIn: Math.round((b.inPerSec * lived) / 1000),
        itemsOut: Math.round((b.outPerSec * lived) / 1000),
        fillItemMs: b.length * lived,
        fullMs: (b.fullShare ?? 0) * lived,
        blockedSenders: b.length >= b.capacity ? 1 : 0,
      })
    })
    const sources = spec.source
      ? [
          makeSource({
            end: {file: 'binlog.000001', offset: 4 + Math.round((spec.source.eventsPerSec * spec.source.bytesPerEvent * (preexistingMs + elapsed)) / 1000)},
            eventsProduced: Math.round((spec.source.eventsPerSec * (preexistingMs + elapsed)) / 1000),
          }),
        ]
      : []
    const tasks = i === spec.count - 1 ? spec.tasksAtEnd ?? [] : []
    snapshots.push(makeSnapshot({takenAtMs, stages, channels, sources, tasks}))
  }
  return snapshots
}
