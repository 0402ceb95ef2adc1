// Tests for recommendBatchSize: verdicts around mR ≈ 0.5 and mR ≈ 1.3, interval propagation, units,
// and the insufficient-data cases.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {fitCostModel} from '../src/analyze/fit-cost-model.js'
import {computeLagTrend, computeWriterEventsPerSec, recommendBatchSize} from '../src/analyze/recommend-batch.js'
import type {CostModelFit, FittedCostModel, LinearCostFit} from '../src/model/cost-model.js'
import {generateBatchSamples, generateSaturatedSamples} from './helpers/generate-samples.js'

/** A fitted model with exactly these values (intervals ± the given relative half-width). */
function exactFit(mMsPerEvent: number, oMs: number, halfWidth = 0.05): FittedCostModel {
  const line: LinearCostFit = {
    method: 'theil-sen',
    mMsPerEvent,
    oMs,
    mIntervalMsPerEvent: {low: mMsPerEvent * (1 - halfWidth), high: mMsPerEvent * (1 + halfWidth)},
    oIntervalMs: {low: oMs * (1 - halfWidth), high: oMs * (1 + halfWidth)},
    rSquared: 0.99,
    medianAbsResidualMs: 0.01,
  }
  return {
    status: 'fitted',
    sampleCount: 100,
    ignoredCount: 0,
    distinctBatchSizes: 100,
    batchSizeCv: 0.5,
    notes: [],
    chosen: 'robust',
    model: line,
    ols: {...line, method: 'ols'},
    robust: line,
  }
}

const steady = (eventsPerSec: number) => ({meanEventsPerSec: eventsPerSec, peakEventsPerSec: eventsPerSec, origin: 'source' as const})

test('mR = 0.5: batch 10 is too small (lag grows), the recommendation (34) is ok', () => {
  // m = 0.02 ms/event, o = 0.4 ms, R = 25,000 events/s → mR = 0.5, B* = 20, B(ρ = 0.8) = 10 / 0.3 = 33.3
  const fit = exactFit(0.02, 0.4)
  const small = recommendBatchSize({fit, rate: steady(25_000), currentBatchSize: 10})
  assert.equal(small.verdict, 'too-small')
  assert.ok(Math.abs(small.perEventLoad! - 0.5) < 1e-12)
  assert.ok(Math.abs(small.stabilityBoundary! - 20) < 1e-9)
  assert.equal(small.recommendedBatchSize, 34)
  assert.equal(small.bufferCapacity, 34)
  // At B = 10: T = 0.6 ms → 16,667 events/s < 25,000: lag grows 1/3 s per s.
  assert.ok(Math.abs(small.utilisationNow! - 1.5) < 1e-9)
  assert.equal(small.lagTrend?.state, 'growing')
  assert.ok(Math.abs(small.lagTrend!.growthSecPerSec - 1 / 3) < 1e-9)
  assert.ok(Math.abs(small.lagTrend!.growthEventsPerSec - (25_000 - 100_000 / 6)) < 1e-6)
  assert.match(small.summary, /too small/)

  const good = recommendBatchSize({fit, rate: steady(25_000), currentBatchSize: 34})
  assert.equal(good.verdict, 'ok')
  assert.ok(good.utilisationNow! <= 0.8)
  assert.equal(good.lagTrend?.state, 'stable')
  assert.equal(good.lagTrend?.growthSecPerSec, 0)

  // Between B* and the recommendation: keeps up, but above the utilisation target.
  const tight = recommendBatchSize({fit, rate: steady(25_000), currentBatchSize: 25})
  assert.equal(tight.verdict, 'too-small')
  assert.equal(tight.lagTrend?.state, 'stable')
})

test('mR = 1.3: unsustainable, with max rate, writers needed, throttle and lag growth', () => {
  const fit = exactFit(0.02, 0.4)
  const r = recommendBatchSize({fit, rate: steady(65_000), currentBatchSize: 100})
  assert.equal(r.verdict, 'unsustainable')
  assert.equal(r.recommendedBatchSize, null)
  assert.equal(r.stabilityBoundary, null)
  assert.ok(Math.abs(r.maxSustainableEventsPerSec! - 50_000) < 1e-6)
  assert.equal(r.parallelWritersNeeded, 2) // ⌈1.3 / 0.8⌉
  assert.ok(Math.abs(r.throttleToEventsPerSec! - 40_000) < 1e-6)
  // At B = 100: T = 2.4 ms → 41,667 events/s; lag grows 1 − 41,667/65,000 s per s.
  assert.ok(Math.abs(r.lagGrowthSecPerSec! - (1 - 100_000 / 2.4 / 65_000)) < 1e-9)
  assert.ok(r.notes.some((n) => n.includes('parallel writers')))
})

test('ρ ≤ mR < 1: unsustainable at the target, but a note gives the batch that would barely keep up', () => {
  const r = recommendBatchSize({fit: exactFit(0.02, 0.4), rate: steady(45_000), currentBatchSize: 100}) // mR = 0.9
  assert.equal(r.verdict, 'unsustainable')
  assert.ok(r.stabilityBoundary! > 0)
  assert.ok(r.notes.some((n) => n.includes('m·R < 1')))
})

test('fitted from seeded samples: verdicts still right and the range brackets the exact answer', () => {
  const fit = fitCostModel(generateBatchSamples({seed: 17, count: 600, mMsPerEvent: 0.02, oMs: 0.4, outlierShare: 0.02}))
  assert.equal(fit.status, 'fitted')
  const r = recommendBatchSize({fit, rate: steady(25_000), currentBatchSize: 10})
  assert.equal(r.verdict, 'too-small')
  assert.ok(r.recommendedRange!.low <= 34 && 34 <= r.recommendedRange!.high!, JSON.stringify(r.recommendedRange))
  assert.ok(Math.abs(r.recommendedBatchSize! - 34) <= 3)
  assert.equal(recommendBatchSize({fit, rate: steady(25_000), currentBatchSize: 40}).verdict, 'ok')
  assert.equal(recommendBatchSize({fit, rate: steady(65_000), currentBatchSize: 40}).verdict, 'unsustainable')
})

test('range: mean/peak and interval corners; unbounded when the pessimistic corner is unsustainable', () => {
  const fit = exactFit(0.02, 0.4, 0.1)
  const rate = {meanEventsPerSec: 20_000, peakEventsPerSec: 25_000}
  const r = recommendBatchSize({fit, rate, currentBatchSize: 100})
  // low: m 0.018, o 0.36, R 20,000 → 7.2 / (0.8 − 0.36) = 16.4 → 17; high: m 0.022, o 0.44, R 25,000 → 11/(0.25) = 44
  assert.deepEqual(r.recommendedRange, {low: 17, high: 44})
  assert.equal(r.model?.rateBasis, 'peak')
  assert.equal(r.model?.rEventsPerSec, 25_000)

  const wide = exactFit(0.02, 0.4, 0.7) // m high = 0.034 → 0.85 at 25,000 ≥ 0.8
  const unbounded = recommendBatchSize({fit: wide, rate, currentBatchSize: 100})
  assert.equal(unbounded.verdict, 'ok')
  assert.equal(unbounded.recommendedRange?.high, null)
  assert.ok(unbounded.notes.some((n) => n.includes('unbounded')))
})

test('rate basis mean, and ρ = 1 gives the stability boundary itself', () => {
  const fit = exactFit(0.02, 0.4)
  const onMean = recommendBatchSize({fit, rate: {meanEventsPerSec: 25_000, peakEventsPerSec: 60_000}, currentBatchSize: 40, rateBasis: 'mean'})
  assert.equal(onMean.verdict, 'ok')
  assert.equal(onMean.peakLagTrend?.state, 'growing')
  const edge = recommendBatchSize({fit, rate: steady(25_000), currentBatchSize: 40, targetUtilisation: 1})
  assert.equal(edge.recommendedBatchSize, 20)
})

test('unsustainable at peak while the mean is fine says lag drains after peaks', () => {
  const r = recommendBatchSize({fit: exactFit(0.02, 0.4), rate: {meanEventsPerSec: 20_000, peakEventsPerSec: 60_000}, currentBatchSize: 200})
  assert.equal(r.verdict, 'unsustainable')
  assert.equal(r.lagGrowthSecPerSec, 0)
  assert.ok(r.notes.some((n) => n.includes('drains afterwards')))
})

test('an idle source: any batch size is ok', () => {
  const r = recommendBatchSize({fit: exactFit(0.02, 0.4), rate: steady(0), currentBatchSize: 1})
  assert.equal(r.verdict, 'ok')
  assert.equal(r.recommendedBatchSize, 1)
  assert.equal(r.utilisationNow, 0)
})

test('insufficient data: too few samples, bad model, degenerate spread', () => {
  const few = recommendBatchSize({fit: fitCostModel(generateBatchSamples({seed: 1, count: 5, mMsPerEvent: 1, oMs: 5})), rate: steady(100), currentBatchSize: 10})
  assert.equal(few.verdict, 'insufficient-data')
  assert.match(few.summary, /3 more needed/)
  assert.equal(few.recommendedBatchSize, null)

  const negative = fitCostModel(Array.from({length: 20}, (_, i) => ({stageName: 'w', atMs: i, events: 10 + 10 * i, ms: 50 - 2 * i, ok: true})))
  const bad = recommendBatchSize({fit: negative, rate: steady(100), currentBatchSize: 10})
  assert.equal(bad.verdict, 'insufficient-data')
  assert.match(bad.summary, /not usable/)

  // Saturated writer at B = 100, T ≈ 2.4 ms → ≈ 41,667 events/s; source 50,000 → lag grows ≈ 0.17 s/s.
  const saturated: CostModelFit = fitCostModel(generateSaturatedSamples(6, 100, 100, 0.02, 0.4))
  const degenerate = recommendBatchSize({fit: saturated, rate: steady(50_000), currentBatchSize: 100})
  assert.equal(degenerate.verdict, 'insufficient-data')
  assert.equal(degenerate.lagTrend?.state, 'growing')
  assert.ok(Math.abs(degenerate.lagTrend!.growthSecPerSec - (1 - 41_667 / 50_000)) < 0.02)
  assert.match(degenerate.summary, /cannot be separated/)
  const elsewhere = recommendBatchSize({fit: saturated, rate: steady(50_000), currentBatchSize: 500})
  assert.equal(elsewhere.utilisationNow, null)
})

test('arguments are validated with RangeError', () => {
  const fit = exactFit(0.02, 0.4)
  for (const targetUtilisation of [0, -0.1, 1.01, Number.NaN]) {
    assert.throws(() => recommendBatchSize({fit, rate: steady(1000), currentBatchSize: 10, targetUtilisation}), RangeError)
  }
  assert.throws(() => recommendBatchSize({fit, rate: steady(1000), currentBatchSize: 0}), RangeError)
  assert.throws(() => recommendBatchSize({fit, rate: steady(1000), currentBatchSize: 2.5}), RangeError)
  assert.throws(() => recommendBatchSize({fit, rate: steady(-1), currentBatchSize: 10}), RangeError)
  assert.throws(() => recommendBatchSize({fit, rate: {meanEventsPerSec: 5, peakEventsPerSec: Infinity}, currentBatchSize: 10}), RangeError)
})

test('writer throughput and lag trend helpers use ms → s correctly', () => {
  assert.equal(computeWriterEventsPerSec(100, 1, 5), 100 / 0.105)
  assert.equal(computeWriterEventsPerSec(10, 0, 0), Infinity)
  const trend = computeLagTrend(200, 100)
  assert.equal(trend.state, 'growing')
  assert.equal(trend.growthSecPerSec, 0.5)
  assert.equal(computeLagTrend(100, 200).state, 'stable')
})
