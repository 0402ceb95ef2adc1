// Tests for fitCostModel: recovery of known m and o from seeded samples with noise and outliers,
// interval coverage, and the cases where no fit can be made.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {fitCostModel, fitOrdinaryLeastSquares, fitTheilSen} from '../src/analyze/fit-cost-model.js'
import type {FittedCostModel} from '../src/model/cost-model.js'
import {generateBatchSamples, generateSaturatedSamples} from './helpers/generate-samples.js'

function expectFitted(fit: ReturnType<typeof fitCostModel>): FittedCostModel {
  assert.equal(fit.status, 'fitted', `expected a fit, got ${fit.status}: ${JSON.stringify(fit.notes)}`)
  return fit as FittedCostModel
}

const relativeError = (actual: number, expected: number) => Math.abs(actual - expected) / expected

test('robust fit recovers m = 0.02 ms/event, o = 0.4 ms within 5% despite 2% slow writes', () => {
  const samples = generateBatchSamples({seed: 11, count: 1000, mMsPerEvent: 0.02, oMs: 0.4, outlierShare: 0.02, outlierMs: 9})
  const fit = expectFitted(fitCostModel(samples))
  assert.equal(fit.chosen, 'robust')
  assert.equal(fit.model, fit.robust)
  assert.ok(relativeError(fit.robust.mMsPerEvent, 0.02) < 0.05, `m ${fit.robust.mMsPerEvent}`)
  assert.ok(relativeError(fit.robust.oMs, 0.4) < 0.05, `o ${fit.robust.oMs}`)
  // OLS is dragged by the outliers: its intercept is far off, which is why robust is the default.
  assert.ok(relativeError(fit.ols.oMs, 0.4) > 0.2, `ols o ${fit.ols.oMs}`)
  assert.ok(fit.notes.some((n) => n.includes('slow writes')))
})

test('both fits recover m = 1 ms/event, o = 5 ms without outliers; OLS R² is high', () => {
  const samples = generateBatchSamples({seed: 3, count: 2000, mMsPerEvent: 1, oMs: 5, minEvents: 1, maxEvents: 100})
  const fit = expectFitted(fitCostModel(samples))
  for (const line of [fit.ols, fit.robust]) {
    assert.ok(relativeError(line.mMsPerEvent, 1) < 0.05, `${line.method} m ${line.mMsPerEvent}`)
    assert.ok(relativeError(line.oMs, 5) < 0.05, `${line.method} o ${line.oMs}`)
  }
  assert.ok(fit.ols.rSquared > 0.95)
})

test('95% intervals cover the truth in most seeded runs (both methods)', () => {
  let olsCovered = 0
  let robustCovered = 0
  const runs = 40
  for (let seed = 100; seed < 100 + runs; seed++) {
    // Constant absolute noise suits OLS's assumptions, so its coverage is a fair check of the t quantile.
    const samples = generateBatchSamples({seed, count: 60, mMsPerEvent: 1, oMs: 5, maxEvents: 100, relativeNoise: 0, absoluteNoiseMs: 4})
    const fit = expectFitted(fitCostModel(samples))
    const covers = (line: typeof fit.ols) =>
      line.mIntervalMsPerEvent.low <= 1 && 1 <= line.mIntervalMsPerEvent.high && line.oIntervalMs.low <= 5 && 5 <= line.oIntervalMs.high
    if (covers(fit.ols)) olsCovered++
    if (covers(fit.robust)) robustCovered++
  }
  // Joint coverage of two 95% intervals is ≥ ~90%; allow sampling slack over 40 runs.
  assert.ok(olsCovered >= 33, `ols covered ${olsCovered}/${runs}`)
  assert.ok(robustCovered >= 33, `robust covered ${robustCovered}/${runs}`)
})

test('robust intervals cover the truth with outliers; intervals narrow as n grows', () => {
  const small = expectFitted(fitCostModel(generateBatchSamples({seed: 5, count: 50, mMsPerEvent: 0.02, oMs: 0.4, outlierShare: 0.02})))
  const large = expectFitted(fitCostModel(generateBatchSamples({seed: 5, count: 800, mMsPerEvent: 0.02, oMs: 0.4, outlierShare: 0.02})))
  for (const fit of [small, large]) {
    assert.ok(fit.robust.mIntervalMsPerEvent.low <= 0.02 && 0.02 <= fit.robust.mIntervalMsPerEvent.high)
    assert.ok(fit.robust.oIntervalMs.low <= 0.4 && 0.4 <= fit.robust.oIntervalMs.high)
  }
  const width = (f: FittedCostModel) => f.robust.mIntervalMsPerEvent.high - f.robust.mIntervalMsPerEvent.low
  assert.ok(width(large) < width(small) / 2)
})

test('OLS can be chosen explicitly', () => {
  const fit = expectFitted(fitCostModel(generateBatchSamples({seed: 9, count: 100, mMsPerEvent: 1, oMs: 5, maxEvents: 100}), {method: 'ols'}))
  assert.equal(fit.chosen, 'ols')
  assert.equal(fit.model, fit.ols)
})

test('too few samples says how many more are needed; failed writes do not count', () => {
  const samples = generateBatchSamples({seed: 2, count: 10, mMsPerEvent: 1, oMs: 5, failedShare: 0.5})
  const okCount = samples.filter((s) => s.ok).length
  assert.ok(okCount < 8, `seed gives ${okCount} ok samples`)
  const fit = fitCostModel(samples)
  assert.equal(fit.status, 'too-few-samples')
  if (fit.status !== 'too-few-samples') return
  assert.equal(fit.samplesNeeded, 8 - okCount)
  assert.equal(fit.ignoredCount, 10 - okCount)
  assert.equal(fitCostModel([]).status, 'too-few-samples')
})

test('all samples at one batch size: degenerate, reports mean T and throughput instead', () => {
  const samples = generateSaturatedSamples(4, 200, 100, 0.02, 0.4) // T = 2.4 ms at B = 100
  const fit = fitCostModel(samples)
  assert.equal(fit.status, 'degenerate-spread')
  if (fit.status !== 'degenerate-spread') return
  assert.equal(fit.distinctBatchSizes, 1)
  assert.equal(fit.groups[0].events, 100)
  assert.ok(Math.abs(fit.groups[0].meanMs - 2.4) < 0.05, `mean ${fit.groups[0].meanMs}`)
  assert.ok(Math.abs(fit.throughputEventsPerSec - 100_000 / 2.4) / (100_000 / 2.4) < 0.02)
  assert.ok(Math.abs(fit.mMsPerEventAtMost - 0.024) < 0.001)
  assert.ok(fit.notes.some((n) => n.includes('cannot be separated')))
})

test('two distinct sizes, or sizes with a tiny spread, are degenerate too', () => {
  const two = [...generateSaturatedSamples(1, 50, 100, 1, 5), ...generateSaturatedSamples(2, 5, 37, 1, 5)]
  const fitTwo = fitCostModel(two)
  assert.equal(fitTwo.status, 'degenerate-spread')
  if (fitTwo.status === 'degenerate-spread') assert.equal(fitTwo.groups[0].events, 100) // most frequent first
  const narrow = generateBatchSamples({seed: 8, count: 100, mMsPerEvent: 1, oMs: 5, minEvents: 98, maxEvents: 102})
  const fitNarrow = fitCostModel(narrow)
  assert.equal(fitNarrow.status, 'degenerate-spread')
  assert.ok(fitNarrow.batchSizeCv < 0.1)
})

test('a negative fitted slope is flagged as a bad model', () => {
  // Larger batches faster: not physical.
  const samples = Array.from({length: 20}, (_, i) => ({stageName: 'writer', atMs: i, events: 10 + i * 10, ms: 50 - i * 2, ok: true}))
  const fit = fitCostModel(samples)
  assert.equal(fit.status, 'bad-model')
  if (fit.status === 'bad-model') assert.ok(fit.problems.some((p) => p.includes('m is negative')))
})

test('a negative intercept is flagged as a bad model', () => {
  const samples = Array.from({length: 20}, (_, i) => ({stageName: 'writer', atMs: i, events: 10 + i * 10, ms: 0.5 * (10 + i * 10) - 3, ok: true}))
  const fit = fitCostModel(samples)
  assert.equal(fit.status, 'bad-model')
  if (fit.status === 'bad-model') assert.ok(fit.problems.some((p) => p.includes('o is negative')))
})

test('a negative intercept whose interval reaches 0 is taken as 0, with a note (a row-by-row writer: o is noise next to m·B)', () => {
  // o = 0.2 ms next to 13 ms per row with 10 % noise: the fitted o falls either side of 0 by chance.
  let clamped = 0
  for (let seed = 1; seed <= 40; seed++) {
    const fit = fitCostModel(generateBatchSamples({seed, count: 30, mMsPerEvent: 13, oMs: 0.2, minEvents: 1, maxEvents: 50, relativeNoise: 0.1}))
    assert.equal(fit.status, 'fitted', `seed ${seed}`)
    if (fit.status !== 'fitted') continue
    assert.ok(fit.model.oMs >= 0)
    if (fit.robust.oMs < 0) {
      clamped++
      assert.equal(fit.model.oMs, 0)
      assert.ok(fit.robust.oIntervalMs.high >= 0)
      assert.ok(fit.notes.some((n) => /includes 0: taken as 0/.test(n)), fit.notes.join(' | '))
    }
  }
  assert.ok(clamped > 0, 'no seed gave a negative o: the case is not exercised')
})

test('non-finite and non-positive points are ignored, not fitted', () => {
  const good = generateBatchSamples({seed: 21, count: 30, mMsPerEvent: 1, oMs: 5, maxEvents: 100})
  const bad = [
    {stageName: 'writer', atMs: 0, events: 0, ms: 3, ok: true},
    {stageName: 'writer', atMs: 0, events: 10, ms: Number.NaN, ok: true},
    {stageName: 'writer', atMs: 0, events: 10, ms: -1, ok: true},
  ]
  const fit = expectFitted(fitCostModel([...good, ...bad]))
  assert.equal(fit.ignoredCount, 3)
  assert.equal(fit.sampleCount, 30)
})

test('exact line: OLS and Theil–Sen agree exactly with zero-width slope interval', () => {
  const points = Array.from({length: 12}, (_, i) => ({events: i + 1, ms: 2 * (i + 1) + 3}))
  const ols = fitOrdinaryLeastSquares(points)
  const ts = fitTheilSen(points)
  assert.ok(Math.abs(ols.mMsPerEvent - 2) < 1e-12 && Math.abs(ols.oMs - 3) < 1e-9)
  assert.equal(ts.mMsPerEvent, 2)
  assert.equal(ts.oMs, 3)
  assert.equal(ts.mIntervalMsPerEvent.low, 2)
  assert.equal(ts.mIntervalMsPerEvent.high, 2)
  assert.equal(ts.pairsSubsampled, false)
  assert.equal(ts.pairsUsed, (12 * 11) / 2)
})

test('large n subsamples pairs deterministically and stays accurate and quick', () => {
  const samples = generateBatchSamples({seed: 77, count: 5000, mMsPerEvent: 0.02, oMs: 0.4, outlierShare: 0.02})
  const started = performance.now()
  const a = expectFitted(fitCostModel(samples))
  const elapsedMs = performance.now() - started
  const b = expectFitted(fitCostModel(samples))
  assert.equal(a.robust.pairsSubsampled, true)
  assert.equal(a.robust.pairsUsed, 1_000_000)
  assert.equal(a.robust.mMsPerEvent, b.robust.mMsPerEvent)
  assert.deepEqual(a.robust.mIntervalMsPerEvent, b.robust.mIntervalMsPerEvent)
  assert.ok(relativeError(a.robust.mMsPerEvent, 0.02) < 0.01)
  assert.ok(relativeError(a.robust.oMs, 0.4) < 0.05)
  assert.ok(a.robust.mIntervalMsPerEvent.low <= 0.02 && 0.02 <= a.robust.mIntervalMsPerEvent.high)
  assert.ok(elapsedMs < 5000, `took ${elapsedMs} ms`)
})

test('repeated batch sizes (ties) are handled: only pairs with different sizes give slopes', () => {
  const samples = [
    ...generateSaturatedSamples(31, 40, 100, 1, 5),
    ...generateSaturatedSamples(32, 40, 50, 1, 5),
    ...generateSaturatedSamples(33, 40, 10, 1, 5),
  ]
  const fit = expectFitted(fitCostModel(samples))
  assert.equal(fit.robust.pairsUsed, 3 * 40 * 40)
  assert.ok(relativeError(fit.robust.mMsPerEvent, 1) < 0.05)
  assert.ok(fit.robust.mIntervalMsPerEvent.low <= 1 && 1 <= fit.robust.mIntervalMsPerEvent.high)
})

test('minSamples must be a sensible integer', () => {
  assert.throws(() => fitCostModel([], {minSamples: 2}), RangeError)
})
