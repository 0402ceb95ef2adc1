// Tests for computeStageRates: busy/idle/back-pressured ms per second summing to ~1000, items/s, buffer
// flow, mean and max fill, full share, events at risk, and records appearing or vanishing mid-window.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {computeStageRates} from '../src/analyze/stage-rates.js'
import {makeChannel, makePipelineSeries, makeSnapshot, makeStage} from './helpers/generate-samples.js'

const close = (actual: number, expected: number, tolerance: number, label = '') =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${label} expected ${expected} ± ${tolerance}, got ${actual}`)

test('steady pipeline: stage shares per second sum to 1000 and match the construction', () => {
  const series = makePipelineSeries({
    count: 6,
    stepMs: 1000,
    stages: [
      {name: 'streamer', busyShare: 0.1, idleShare: 0.05, backPressuredShare: 0.85, itemsPerSec: 900},
      {name: 'writer', busyShare: 0.97, idleShare: 0.03, backPressuredShare: 0, itemsPerSec: 900},
    ],
    buffers: [{id: 1, name: 'binlog-events', capacity: 200, inPerSec: 900, outPerSec: 900, length: 190, fullShare: 0.7}],
  })
  const report = computeStageRates(series)
  assert.equal(report.windowMs, 5000)
  assert.equal(report.snapshotCount, 6)
  const streamer = report.stages.find((s) => s.name === 'streamer')!
  const writer = report.stages.find((s) => s.name === 'writer')!
  close(streamer.busyMsPerSec, 100, 1e-6)
  close(streamer.backPressuredMsPerSec, 850, 1e-6)
  close(writer.busyMsPerSec, 970, 1e-6)
  for (const s of report.stages) {
    close(s.busyMsPerSec + s.idleMsPerSec + s.backPressuredMsPerSec, 1000, 1e-6, s.name)
    close(s.accountedMsPerSec, 1000, 1e-6)
    close(s.itemsPerSec, 900, 1)
    assert.equal(s.appearedMidWindow, false)
  }
  const buffer = report.buffers[0]
  close(buffer.eventsInPerSec, 900, 1)
  close(buffer.eventsOutPerSec, 900, 1)
  close(buffer.meanFillItems, 190, 1e-6)
  close(buffer.meanFillRatio!, 0.95, 1e-9)
  close(buffer.fullShare, 0.7, 1e-9)
  assert.equal(buffer.eventsAtRisk, 190)
  assert.equal(buffer.maxFillItemsSeen, 190)
  assert.deepEqual(report.vanished, [])
  assert.equal(report.notes.length, 0)
})

test('hand-built counters: in-progress time counts, max fill comes from the whole series', () => {
  const t0 = 1_700_000_100_000
  const stage = (busyMs: number, idleMs: number, backPressuredMs: number, itemsHandled: number) =>
    makeStage({name: 'writer', busyMs, idleMs, backPressuredMs, itemsHandled, createdAtMs: t0 - 5000})
  const channel = (length: number, itemsIn: number, itemsOut: number, fillItemMs: number, fullMs: number) =>
    makeChannel({id: 7, name: 'rows', capacity: 10, length, itemsIn, itemsOut, fillItemMs, fullMs, createdAtMs: t0 - 5000})
  const series = [
    makeSnapshot({takenAtMs: t0, stages: [stage(1000, 3000, 1000, 50)], channels: [channel(2, 100, 98, 10_000, 0)]}),
    makeSnapshot({takenAtMs: t0 + 1000, stages: [stage(1600, 3300, 1100, 80)], channels: [channel(10, 160, 150, 16_000, 400)]}),
    makeSnapshot({takenAtMs: t0 + 2000, stages: [stage(2300, 3500, 1200, 130)], channels: [channel(4, 200, 196, 22_000, 600)]}),
  ]
  const report = computeStageRates(series)
  const writer = report.stages[0]
  close(writer.busyMsPerSec, 650, 1e-9)
  close(writer.idleMsPerSec, 250, 1e-9)
  close(writer.backPressuredMsPerSec, 100, 1e-9)
  close(writer.itemsPerSec, 40, 1e-9)
  const rows = report.buffers[0]
  close(rows.eventsInPerSec, 50, 1e-9)
  close(rows.eventsOutPerSec, 49, 1e-9)
  close(rows.meanFillItems, 6, 1e-9)
  close(rows.fullShare, 0.3, 1e-9)
  assert.equal(rows.maxFillItemsSeen, 10)
  assert.equal(rows.eventsAtRisk, 4)
})

test('a stage and a buffer created mid-window are rated over the time they existed', () => {
  const t0 = 1_700_000_100_000
  const first = makeSnapshot({takenAtMs: t0, stages: [makeStage({name: 'streamer', createdAtMs: t0 - 10_000, idleMs: 10_000})]})
  const last = makeSnapshot({
    takenAtMs: t0 + 4000,
    stages: [
      makeStage({name: 'streamer', createdAtMs: t0 - 10_000, idleMs: 14_000}),
      makeStage({name: 'writer', createdAtMs: t0 + 3000, busyMs: 800, idleMs: 200, itemsHandled: 30}),
    ],
    channels: [makeChannel({id: 3, name: 'late', createdAtMs: t0 + 2000, itemsIn: 40, itemsOut: 20, fillItemMs: 20_000, length: 20})],
  })
  const report = computeStageRates([first, last])
  const writer = report.stages.find((s) => s.name === 'writer')!
  assert.equal(writer.appearedMidWindow, true)
  assert.equal(writer.observedMs, 1000)
  close(writer.busyMsPerSec, 800, 1e-9)
  close(writer.accountedMsPerSec, 1000, 1e-9)
  close(writer.itemsPerSec, 30, 1e-9)
  const late = report.buffers[0]
  assert.equal(late.appearedMidWindow, true)
  assert.equal(late.observedMs, 2000)
  close(late.eventsInPerSec, 20, 1e-9)
  close(late.meanFillItems, 10, 1e-9)
})

test('a stage re-created under the same name counts from zero; vanished records are listed', () => {
  const t0 = 1_700_000_100_000
  const first = makeSnapshot({
    takenAtMs: t0,
    stages: [makeStage({name: 'writer', createdAtMs: t0 - 60_000, busyMs: 60_000, itemsHandled: 9999}), makeStage({name: 'old', createdAtMs: t0 - 1000, idleMs: 1000})],
    channels: [makeChannel({id: 1, name: 'gone'})],
  })
  const last = makeSnapshot({
    takenAtMs: t0 + 2000,
    stages: [makeStage({name: 'writer', createdAtMs: t0 + 1000, busyMs: 500, idleMs: 500, itemsHandled: 5})],
  })
  const report = computeStageRates([first, last])
  const writer = report.stages[0]
  assert.equal(writer.appearedMidWindow, true)
  close(writer.itemsPerSec, 5, 1e-9)
  assert.ok(report.notes.some((n) => n.includes('re-created')))
  assert.deepEqual(report.vanished.sort(), ['buffer gone (#1)', 'stage old'])
})

test('inconsistent counters are reported, not hidden', () => {
  const t0 = 1_700_000_100_000
  const series = [
    makeSnapshot({takenAtMs: t0, stages: [makeStage({name: 's', createdAtMs: t0 - 1000})]}),
    makeSnapshot({takenAtMs: t0 + 1000, stages: [makeStage({name: 's', createdAtMs: t0 - 1000, busyMs: 500})]}),
  ]
  const report = computeStageRates(series)
  close(report.stages[0].accountedMsPerSec, 500, 1e-9)
  assert.ok(report.notes.some((n) => n.includes('500 ms per second')))
})

test('rendezvous buffer has no fill ratio; monotonic clock is preferred for the window', () => {
  const t0 = 1_700_000_100_000
  const a = makeSnapshot({takenAtMs: t0, monotonicMs: 5000, channels: [makeChannel({id: 2, name: 'hand', capacity: 0})]})
  // Wall clock stepped back 10 s; the monotonic clock says 2 s passed.
  const b = makeSnapshot({takenAtMs: t0 + 2000, monotonicMs: 7000, channels: [makeChannel({id: 2, name: 'hand', capacity: 0, itemsIn: 10, itemsOut: 10})]})
  const report = computeStageRates([a, b])
  assert.equal(report.windowMs, 2000)
  assert.equal(report.buffers[0].meanFillRatio, null)
  close(report.buffers[0].eventsInPerSec, 5, 1e-9)
})

test('series must have 2+ snapshots of one process, in order', () => {
  const t0 = 1_700_000_100_000
  const a = makeSnapshot({takenAtMs: t0})
  assert.throws(() => computeStageRates([a]), RangeError)
  assert.throws(() => computeStageRates([makeSnapshot({takenAtMs: t0 + 1000}), a]), RangeError)
  assert.throws(() => computeStageRates([a, makeSnapshot({takenAtMs: t0 + 1000, pid: 99})]), /one process/)
  assert.throws(() => computeStageRates([a, makeSnapshot({takenAtMs: t0, monotonicMs: a.monotonicMs})]), RangeError)
})
