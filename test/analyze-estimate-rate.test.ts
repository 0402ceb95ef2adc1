// Tests for estimateRateFromCounts / estimateRateFromEvents: mean and p95-of-1s peak, counter resets,
// and when a streamer-side rate cannot stand in for the source rate.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {estimateRateFromCounts, estimateRateFromEvents} from '../src/analyze/estimate-rate.js'
import {createRandom} from './helpers/generate-samples.js'

test('steady counter: mean = peak = the rate', () => {
  const observations = Array.from({length: 21}, (_, i) => ({timeMs: 1000 + i * 500, cumulativeEvents: 7 + i * 250}))
  const rate = estimateRateFromCounts(observations, {origin: 'source'})
  assert.equal(rate.windowMs, 10_000)
  assert.equal(rate.totalEvents, 5000)
  assert.equal(rate.meanEventsPerSec, 500)
  assert.equal(rate.bucketCount, 10)
  assert.ok(Math.abs(rate.peakEventsPerSec - 500) < 1e-9)
  assert.equal(rate.trustworthy, true)
  assert.equal(rate.lowerBoundOnly, false)
  assert.equal(rate.origin, 'source')
})

test('a burst raises the p95 peak above the mean', () => {
  // 100 events/s for 18 s, then 2000 events/s for 2 s, sampled every 100 ms.
  const observations: {timeMs: number; cumulativeEvents: number}[] = []
  for (let t = 0; t <= 20_000; t += 100) {
    observations.push({timeMs: t, cumulativeEvents: Math.min(t, 18_000) * 0.1 + Math.max(0, t - 18_000) * 2})
  }
  const rate = estimateRateFromCounts(observations, {origin: 'source'})
  assert.ok(Math.abs(rate.meanEventsPerSec - (1800 + 4000) / 20) < 1e-9)
  // Two of 20 one-second buckets hold the burst: the p95 bucket is a burst bucket.
  assert.ok(Math.abs(rate.peakEventsPerSec - 2000) < 1e-6, `peak ${rate.peakEventsPerSec}`)
  assert.equal(rate.notes.length, 0)
})

test('counter reset is absorbed, not a negative rate', () => {
  const rate = estimateRateFromCounts(
    [
      {timeMs: 0, cumulativeEvents: 1000},
      {timeMs: 1000, cumulativeEvents: 1100},
      {timeMs: 2000, cumulativeEvents: 50}, // restarted, 50 since
      {timeMs: 3000, cumulativeEvents: 150},
    ],
    {origin: 'source'},
  )
  assert.equal(rate.totalEvents, 250)
  assert.ok(rate.notes.some((n) => n.includes('reset')))
})

test('sparse readings: peak smoothed, with a note', () => {
  const rate = estimateRateFromCounts([{timeMs: 0, cumulativeEvents: 0}, {timeMs: 5000, cumulativeEvents: 5000}], {origin: 'source'})
  assert.equal(rate.peakEventsPerSec, 1000)
  assert.ok(rate.notes.some((n) => n.includes('smoothed')))
})

test('window shorter than a bucket: peak = mean with a note', () => {
  const rate = estimateRateFromCounts([{timeMs: 0, cumulativeEvents: 0}, {timeMs: 400, cumulativeEvents: 40}], {origin: 'source'})
  assert.equal(rate.meanEventsPerSec, 100)
  assert.equal(rate.peakEventsPerSec, 100)
  assert.equal(rate.bucketCount, 0)
})

test('per-event timestamps: Poisson arrivals at 200/s', () => {
  const random = createRandom(42)
  const times: number[] = []
  let t = 0
  while (t < 60_000) {
    t += -Math.log(1 - random.uniform()) * 5 // mean gap 5 ms
    if (t < 60_000) times.push(t)
  }
  const rate = estimateRateFromEvents(times, {origin: 'streamer', streamerBackPressuredShare: 0.05, windowStartMs: 0, windowEndMs: 60_000})
  assert.ok(Math.abs(rate.meanEventsPerSec - 200) < 10, `mean ${rate.meanEventsPerSec}`)
  // p95 of 1 s Poisson(200) counts ≈ 200 + 1.645·√200 ≈ 223
  assert.ok(rate.peakEventsPerSec > 210 && rate.peakEventsPerSec < 240, `peak ${rate.peakEventsPerSec}`)
  assert.equal(rate.bucketCount, 60)
  assert.equal(rate.trustworthy, true)
  assert.equal(rate.lowerBoundOnly, false)
})

test('back-pressured streamer: its rate is only a lower bound', () => {
  const observations = [{timeMs: 0, cumulativeEvents: 0}, {timeMs: 10_000, cumulativeEvents: 30_000}]
  const rate = estimateRateFromCounts(observations, {origin: 'streamer', streamerBackPressuredShare: 0.6})
  assert.equal(rate.trustworthy, false)
  assert.equal(rate.lowerBoundOnly, true)
  assert.ok(rate.notes.some((n) => n.includes("writer's drain rate")))
  const unknown = estimateRateFromCounts(observations, {origin: 'streamer'})
  assert.equal(unknown.trustworthy, true)
  assert.equal(unknown.lowerBoundOnly, true)
  const limit = estimateRateFromCounts(observations, {origin: 'streamer', streamerBackPressuredShare: 0.25, backPressureTrustLimit: 0.3})
  assert.equal(limit.trustworthy, true)
})

test('whole-second timestamps are noted (binlog resolution)', () => {
  const rate = estimateRateFromEvents([0, 0, 1000, 1000, 2000, 3000], {origin: 'source'})
  assert.ok(rate.notes.some((n) => n.includes('whole seconds')))
  assert.equal(rate.meanEventsPerSec, 2)
})

test('invalid inputs are rejected with RangeError', () => {
  assert.throws(() => estimateRateFromCounts([{timeMs: 0, cumulativeEvents: 0}], {origin: 'source'}), RangeError)
  assert.throws(() => estimateRateFromCounts([{timeMs: 5, cumulativeEvents: 0}, {timeMs: 5, cumulativeEvents: 3}], {origin: 'source'}), RangeError)
  assert.throws(() => estimateRateFromEvents([], {origin: 'source'}), RangeError)
  assert.throws(() => estimateRateFromEvents([1, 2], {origin: 'source', bucketMs: 0}), RangeError)
  assert.throws(() => estimateRateFromEvents([1, 2], {origin: 'streamer', streamerBackPressuredShare: 2}), RangeError)
})

test('large per-event series does not overflow the stack', () => {
  const times = Array.from({length: 300_000}, (_, i) => i * 0.1)
  const rate = estimateRateFromEvents(times, {origin: 'source'})
  assert.ok(Math.abs(rate.meanEventsPerSec - 10_000) < 1)
})
