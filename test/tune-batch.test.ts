// tune-batch without a live process: sample collection and dedupe, the current batch size, the source
// rate from agent counters and binlog buckets, the text report against a golden file, both plots, and
// the probe's pure helpers. Golden: `UPDATE_GOLDEN=1 node --test dist/test/tune-batch.test.js`.
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {
  analyzeTuneBatch,
  buildFormulae,
  collectBatchSamples,
  findCurrentBatchSize,
  observedWriteShape,
  rateFromAgentSource,
  rateFromBinlogBuckets,
  rateFromStreamer,
  type TuneBatchInput,
} from '../src/analyze/tune-batch.js'
import type {AgentSnapshot, BatchSample} from '../src/model/snapshot.js'
import {buildProbePlan, logSpacedSizes, splitRows, matchesGrantPattern, parseQualifiedTable, syntheticValue, type ColumnInfo} from '../src/mysql/probe-target.js'
import {renderTextPlot} from '../src/render/plot-text.js'
import {renderSvgPlot} from '../src/render/plot-svg.js'
import {renderTuneBatchText} from '../src/render/tune-batch-text.js'
import {createRandom, generateBatchSamples} from './helpers/generate-samples.js'
import {makeChannel, makeSnapshot, makeStage} from './helpers/make-snapshot.js'
import {assertGolden} from './helpers/golden.js'



const T0 = 1_700_000_000_000

/** Snapshots every 250 ms over `seconds` of a source producing `rate` events/s and a writer at B. */
function simulatedWindow(seconds: number, rate: number, samples: BatchSample[]): AgentSnapshot[] {
  const snapshots: AgentSnapshot[] = []
  for (let t = 0; t <= seconds * 1000; t += 250) {
    const now = T0 + t
    snapshots.push(
      makeSnapshot({
        takenAtMs: now,
        sources: [{name: 'source', kind: 'simulated', end: {file: 'sim-bin.000001', offset: 4}, eventsProduced: Math.round((rate * t) / 1000)}],
        settings: [{name: 'BinlogEventBatchSize', value: 10, writable: true}],
        stages: [makeStage({name: 'binlog-streamer', itemsHandled: Math.round((rate * t) / 1000), backPressuredMs: t * 0.9}, now)],
        samples: {
          recent: samples.filter((s) => s.atMs <= now).slice(-2048),
          reservoir: samples.filter((s) => s.atMs <= now && s.atMs < T0 + 500),
          totalCount: samples.filter((s) => s.atMs <= now).length,
          totalFailed: 0,
        },
      }),
    )
  }
  return snapshots
}

describe('collectBatchSamples', () => {
  it('dedupes samples seen in many snapshots and keeps reservoir samples from before the window', () => {
    const before: BatchSample[] = [
      {stageName: 'binlog-writer', atMs: T0 - 5000, events: 1, ms: 10.5, ok: true},
      {stageName: 'binlog-writer', atMs: T0 - 4000, events: 3, ms: 11.5, ok: true},
    ]
    const inWindow = generateBatchSamples({seed: 3, count: 40, mMsPerEvent: 0.5, oMs: 10, minEvents: 1, maxEvents: 10, stageName: 'binlog-writer', startMs: T0})
    const other: BatchSample = {stageName: 'other-writer', atMs: T0 + 10, events: 5, ms: 1, ok: true}
    const snapshots = [0, 1, 2].map((i) =>
      makeSnapshot({
        takenAtMs: T0 + 1000 * i,
        samples: {recent: [...before, ...inWindow, other], reservoir: [...before, inWindow[0]], totalCount: 42, totalFailed: 0},
      }),
    )
    const collected = collectBatchSamples(snapshots, {startMs: T0, endMs: T0 + 1_000_000})
    assert.equal(collected.stageName, 'binlog-writer')
    assert.equal(collected.samples.length, 42)
    assert.equal(collected.fromReservoir, 2)
    assert.equal(collected.fromWindow, 40)
    assert.deepEqual(collected.otherStages, ['other-writer'])
    assert.equal(collectBatchSamples(snapshots, {startMs: T0, endMs: T0 + 1_000_000}, 'other-writer').samples.length, 1)
  })
})

describe('findCurrentBatchSize', () => {
  it('prefers the BinlogEventBatchSize setting, then the event buffer capacity, then the flag overrides', () => {
    const channels = [makeChannel({id: 1, name: 'rows-out', capacity: 5, itemsOut: 9}), makeChannel({id: 2, name: 'binlog-events', capacity: 64, itemsOut: 3})]
    assert.deepEqual(findCurrentBatchSize(makeSnapshot({channels})), {value: 64, from: 'channel-capacity', writable: false, channelName: 'binlog-events'})
    const withSetting = makeSnapshot({channels, settings: [{name: 'BinlogEventBatchSize', value: 200, writable: true}]})
    assert.deepEqual(findCurrentBatchSize(withSetting), {value: 200, from: 'setting', writable: true})
    assert.deepEqual(findCurrentBatchSize(withSetting, 7), {value: 7, from: 'flag', writable: true})
    assert.deepEqual(findCurrentBatchSize(null), {value: null, from: 'unknown', writable: false})
  })
})

describe('source rate', () => {
  it('reads the registered source, and marks a back-pressured streamer as the writer\'s rate', () => {
    const snapshots = simulatedWindow(4, 1000, [])
    const source = rateFromAgentSource(snapshots)!
    assert.equal(source.kind, 'agent-source')
    assert.ok(Math.abs(source.estimate.meanEventsPerSec - 1000) < 1)
    assert.ok(Math.abs(source.estimate.peakEventsPerSec - 1000) < 1)
    const streamer = rateFromStreamer(snapshots, 'binlog-writer')!
    assert.equal(streamer.kind, 'streamer')
    assert.equal(streamer.estimate.trustworthy, false)
    assert.equal(streamer.estimate.lowerBoundOnly, true)
  })

  it('turns binlog buckets into whole-second rates with a p95 peak', () => {
    const start = T0 + 300
    const buckets = [
      {atSec: T0 / 1000, rows: 999}, // partial first second: left out
      ...Array.from({length: 10}, (_, i) => ({atSec: T0 / 1000 + 1 + i, rows: i === 4 ? 3000 : 1000})),
    ]
    const rate = rateFromBinlogBuckets(buckets, {startMs: start, endMs: T0 + 11_500}, '127.0.0.1:3306')!
    assert.equal(rate.kind, 'binlog')
    assert.equal(rate.estimate.bucketCount, 10)
    assert.equal(rate.estimate.meanEventsPerSec, 1200)
    assert.ok(rate.estimate.peakEventsPerSec > 1000)
    assert.equal(rateFromBinlogBuckets(buckets, {startMs: start, endMs: start + 900}, 'x'), null)
  })
})

function constructedInput(overrides: Partial<TuneBatchInput> = {}): TuneBatchInput {
  const samples = generateBatchSamples({seed: 11, count: 300, mMsPerEvent: 0.5, oMs: 10, minEvents: 1, maxEvents: 40, relativeNoise: 0.03, stageName: 'binlog-writer', startMs: T0})
  return {
    mode: 'passive',
    samples: {stageName: 'binlog-writer', samples, fromWindow: 280, fromReservoir: 20, totalCount: 5000, otherStages: []},
    rate: {
      kind: 'agent-source',
      description: 'source "source" (simulated) registered in the agent: eventsProduced',
      estimate: {
        origin: 'source',
        meanEventsPerSec: 980,
        peakEventsPerSec: 1000,
        peakQuantile: 0.95,
        bucketMs: 1000,
        bucketCount: 10,
        windowMs: 10_000,
        totalEvents: 9800,
        trustworthy: true,
        lowerBoundOnly: false,
        notes: [],
      },
    },
    current: {value: 10, from: 'setting', writable: true},
    targetUtilisation: 0.8,
    window: {startedAtMs: T0, endedAtMs: T0 + 10_000, endedBy: 'duration', snapshots: 41},
    canPerturb: true,
    ...overrides,
  }
}

describe('analyzeTuneBatch', () => {
  it('recommends o·R/(ρ − m·R) for a too-small batch at m·R ≈ 0.5 and fills in the formulas', () => {
    const result = analyzeTuneBatch(constructedInput())
    assert.equal(result.schema, 'ferrydiag.tune-batch')
    assert.equal(result.version, 3)
    assert.equal(result.verdict, 'too-small')
    assert.ok(Math.abs(result.model!.mMsPerEvent - 0.5) < 0.025)
    assert.ok(Math.abs(result.model!.oMs - 10) < 0.5)
    assert.equal(result.rate!.designEventsPerSec, 1000)
    // 10 ms × 1000/s / (0.8 − 0.5) ≈ 33.3 → 34 with the fitted values near the true ones.
    assert.ok(result.recommendedBatchSize! >= 31 && result.recommendedBatchSize! <= 37, String(result.recommendedBatchSize))
    assert.match(result.formulae.stabilityBoundary!, /^B\* = o·R \/ \(1 − m·R\) = [\d.]+ ms × 1000\/s \/ \(1 − [\d.]+ ms × 1000\/s\) = [\d.]+$/)
  })

  it('says unsustainable at m·R ≈ 1.3, with 1/m, k writers and the throttle rate', () => {
    const samples = generateBatchSamples({seed: 5, count: 200, mMsPerEvent: 1.3, oMs: 10, minEvents: 1, maxEvents: 100, relativeNoise: 0.03, stageName: 'binlog-writer', startMs: T0})
    const input = constructedInput()
    const result = analyzeTuneBatch({...input, samples: {...input.samples, samples}, current: {value: 100, from: 'setting', writable: true}})
    assert.equal(result.verdict, 'unsustainable')
    assert.equal(result.recommendedBatchSize, null)
    const rec = result.unsustainable!
    assert.ok(Math.abs(rec.maxSustainableEventsPerSec! - 1000 / 1.3) < 40)
    assert.equal(rec.parallelWritersNeeded, 2)
    assert.match(result.formulae.recommended!, /none, since m·R = 1\.\d+ ≥ ρ = 0\.8/)
  })

  it('--json names each figure once: m and o only in model, the recommended size only at the top', () => {
    const input = constructedInput()
    const unsustainable = generateBatchSamples({seed: 5, count: 200, mMsPerEvent: 1.3, oMs: 10, minEvents: 1, maxEvents: 100, relativeNoise: 0.03, stageName: 'binlog-writer', startMs: T0})
    const results = [analyzeTuneBatch(input), analyzeTuneBatch({...input, samples: {...input.samples, samples: unsustainable}})]
    for (const result of results) {
      const leaves = numericLeaves(JSON.parse(JSON.stringify(result)))
      for (const figure of ['mMsPerEvent', 'oMs'] as const) {
        const value = result.model![figure]
        // Equal values under an m or o name (perEventLoad = m·R equals m when R = 1000/s: a different figure).
        assert.deepEqual(leaves.filter(([p, v]) => v === value && /(mMsPerEvent|oMs)$/.test(p)).map(([p]) => p), [`model.${figure}`], `${figure} ${value} appears elsewhere`)
      }
      assert.deepEqual(leaves.filter(([p]) => /recommendedBatchSize|bufferCapacity|sampleCount|(^|\.)r(Mean|Peak)?EventsPerSec$/.test(p)).map(([p]) => p), result.recommendedBatchSize === null ? [] : ['recommendedBatchSize'])
      assert.equal(leaves.filter(([, v]) => v === result.currentBatchSize).filter(([p]) => /current/i.test(p)).length, 1, 'the current batch size once')
    }
  })

  it('reports a degenerate spread and suggests --probe-target and --perturb', () => {
    const samples = generateBatchSamples({seed: 2, count: 100, mMsPerEvent: 0.5, oMs: 10, minEvents: 10, maxEvents: 10, stageName: 'binlog-writer', startMs: T0})
    const input = constructedInput()
    const result = analyzeTuneBatch({...input, samples: {...input.samples, samples}})
    assert.equal(result.fit.status, 'degenerate-spread')
    assert.equal(result.verdict, 'insufficient-data')
    assert.equal(result.model, null)
    assert.ok(result.suggestions.some((s) => s.startsWith('--probe-target')))
    assert.ok(result.suggestions.some((s) => s.startsWith('--perturb')))
  })

  it('says how many more samples are needed, and refuses a negative fit', () => {
    const input = constructedInput()
    const few = analyzeTuneBatch({...input, samples: {...input.samples, samples: input.samples.samples.slice(0, 5)}})
    assert.equal(few.fit.status, 'too-few-samples')
    assert.match(few.summary, /3 more needed/)
    const falling: BatchSample[] = Array.from({length: 30}, (_, i) => ({stageName: 'w', atMs: T0 + i, events: 1 + i, ms: 50 - i, ok: true}))
    const bad = analyzeTuneBatch({...input, samples: {...input.samples, samples: falling}})
    assert.equal(bad.fit.status, 'bad-model')
    assert.equal(bad.recommendedBatchSize, null)
    assert.equal(bad.verdict, 'insufficient-data')
  })

  it('warns that a streamer rate is the writer\'s rate', () => {
    const input = constructedInput()
    const result = analyzeTuneBatch({...input, rate: {...input.rate!, kind: 'streamer'}})
    assert.ok(result.warnings.some((w) => /back-pressured streamer/.test(w)))
  })
})

describe('renderTuneBatchText (golden)', () => {
  it('renders a constructed fit: table, formulas, verdict and plot', () => {
    const input = constructedInput()
    const text = renderTuneBatchText(analyzeTuneBatch(input), {samples: input.samples.samples})
    assertGolden('tune-batch-too-small.txt', `${text}\n`)
  })

  it('renders an unsustainable fit', () => {
    const samples = generateBatchSamples({seed: 5, count: 200, mMsPerEvent: 1.3, oMs: 10, minEvents: 1, maxEvents: 100, relativeNoise: 0.03, stageName: 'binlog-writer', startMs: T0})
    const input = constructedInput()
    const result = analyzeTuneBatch({
      ...input,
      samples: {...input.samples, samples, fromWindow: 200, fromReservoir: 0},
      current: {value: 100, from: 'setting', writable: true},
    })
    assertGolden('tune-batch-unsustainable.txt', `${renderTuneBatchText(result, {samples})}\n`)
  })
})

describe('formulas and plots', () => {
  it('fills the numbers into B* as in the ghostferry issue', () => {
    const f = buildFormulae(0.51, 10.2, 1000, 0.8)
    assert.equal(f.stabilityBoundary, 'B* = o·R / (1 − m·R) = 10.2 ms × 1000/s / (1 − 0.51 ms × 1000/s) = 20.8')
    assert.equal(f.perEventLoad, 'm·R = 0.51 ms × 1000/s = 0.51')
  })

  it('draws the points and the line deterministically, clipping stalls to ^', () => {
    const points = [
      {x: 1, y: 10.5},
      {x: 10, y: 15},
      {x: 10, y: 15.1},
      {x: 5, y: 12.5},
      ...Array.from({length: 60}, (_, i) => ({x: 1 + (i % 10), y: 10 + 0.5 * (1 + (i % 10))})),
      {x: 10, y: 400},
    ]
    const a = renderTextPlot(points, {slope: 0.5, intercept: 10}, {width: 30, height: 8})
    assert.equal(a, renderTextPlot(points, {slope: 0.5, intercept: 10}, {width: 30, height: 8}))
    const rows = a.split('\n')
    assert.equal(rows.length, 1 + 8 + 3)
    assert.ok(rows[1].includes('^'), 'the 400 ms stall is clipped to the top row')
    assert.ok(a.includes('-'), 'the fitted line is drawn')
    assert.match(rows[1], /^\s*20 \|/) // axis stops near the bulk of the data, not at 400 ms
    const svg = renderSvgPlot(points, {slope: 0.5, intercept: 10}, {stabilityBoundary: 20, recommendedBatchSize: 34, title: 'a < b'})
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'))
    assert.equal((svg.match(/<circle /g) ?? []).length, points.length)
    assert.ok(svg.includes('B* = 20') && svg.includes('recommended = 34') && svg.includes('a &lt; b'))
  })
})

describe('probe helpers', () => {
  it('plans log-spaced sizes, each repeated, in a shuffled order', () => {
    const sizes = logSpacedSizes(500)
    assert.equal(sizes[0], 1)
    assert.equal(sizes[sizes.length - 1], 500)
    assert.ok(sizes.length >= 10)
    const random = createRandom(1)
    const plan = buildProbePlan(sizes, 5, () => random.uniform())
    assert.equal(plan.length, sizes.length * 5)
    assert.deepEqual([...plan].sort((a, b) => a - b), sizes.flatMap((s) => [s, s, s, s, s]))
    assert.notDeepEqual(plan, sizes.flatMap(() => sizes).slice(0, plan.length))
  })

  it('parses DB.TABLE and grant patterns', () => {
    assert.deepEqual(parseQualifiedTable('shop.orders'), {database: 'shop', table: 'orders'})
    assert.throws(() => parseQualifiedTable('orders'), {code: 'badArgument'})
    assert.throws(() => parseQualifiedTable('a.b; DROP TABLE x'), {code: 'badArgument'})
    assert.ok(matchesGrantPattern('shop\\_%', 'shop_eu'))
    assert.ok(!matchesGrantPattern('shop\\_%', 'shopxeu'))
    assert.ok(matchesGrantPattern('shop_eu', 'shopxeu'))
  })

  it('makes values that fit the column types and grow with the row number', () => {
    const col = (dataType: string, columnType: string, maxLength: number | null = null): ColumnInfo => ({
      name: 'c',
      dataType,
      columnType,
      nullable: false,
      extra: '',
      maxLength,
      numericPrecision: 10,
      numericScale: 2,
      hasDefault: false,
    })
    assert.equal(syntheticValue(col('int', 'int(11)'), 7), 7)
    assert.equal(syntheticValue(col('tinyint', 'tinyint(3) unsigned'), 300), 44)
    assert.equal(syntheticValue(col('decimal', 'decimal(10,2)'), 123), 123)
    assert.equal(syntheticValue(col('date', 'date'), 1), '2000-01-02')
    assert.equal(syntheticValue(col('enum', "enum('new','paid')"), 3), 'new')
    const short = syntheticValue(col('varchar', 'varchar(3)', 3), 40000) as string
    assert.ok(short.length <= 3)
    assert.notEqual(syntheticValue(col('varchar', 'varchar(64)', 64), 1), syntheticValue(col('varchar', 'varchar(64)', 64), 2))
    assert.throws(() => syntheticValue(col('geometry', 'geometry'), 1), {code: 'badArgument'})
  })
})

describe('observedWriteShape: how the writer writes its batches, from the probes\' statement counts', () => {
  const batch = (events: number, statements: number | undefined, ok = true): BatchSample => ({stageName: 'w', atMs: T0, events, ms: 10, ok, statements})
  it('one statement per event is row-by-row; fewer statements than events is multi-row; the median decides', () => {
    assert.equal(observedWriteShape([batch(100, 100), batch(98, 100), batch(100, 100)]), 'row-per-statement')
    assert.equal(observedWriteShape([batch(200, 2), batch(180, 2), batch(8, 1)]), 'multi-row')
    assert.equal(observedWriteShape([batch(100, 100), batch(200, 2), batch(200, 2)]), 'multi-row')
  })
  it('null without a batch of 2+ events with a statement count (single-row batches say nothing, failed ones neither)', () => {
    assert.equal(observedWriteShape([]), null)
    assert.equal(observedWriteShape([batch(1, 1), batch(1, 1)]), null)
    assert.equal(observedWriteShape([batch(100, undefined)]), null)
    assert.equal(observedWriteShape([batch(100, 100, false)]), null)
  })
})

describe('splitRows: a probe batch over as many INSERTs as the pipeline issues per batch', () => {
  it('even consecutive chunks, every row once, never an empty one', () => {
    assert.deepEqual(splitRows([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4, 5]])
    assert.deepEqual(splitRows([1, 2, 3], 1), [[1, 2, 3]])
    assert.deepEqual(splitRows([1, 2], 5), [[1], [2]])
    assert.deepEqual(splitRows([7], 0), [[7]])
  })
})

/** Every number in a JSON value with its dotted path (array items as [i]). */
function numericLeaves(value: unknown, path = ''): Array<[string, number]> {
  if (typeof value === 'number') return [[path, value]]
  if (Array.isArray(value)) return value.flatMap((v, i) => numericLeaves(v, `${path}[${i}]`))
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => numericLeaves(v, path === '' ? k : `${path}.${k}`))
  }
  return []
}
