// Tests for assessLag: stuck (with the blocked wait named), falling behind (writer bottleneck behind a
// back-pressured streamer), healthy, idle, source-only input, pipeline order and catch-up time.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {assessLag, derivePipelineOrder, findBottleneck} from '../src/analyze/lag-verdict.js'
import {makePipelineSeries, makeSnapshot, makeSource, makeStage, makeTask} from './helpers/generate-samples.js'
import {describeCatchUp, describeLagReason} from '../src/render/lag-wording.js'

const START = 1_700_000_060_000

test('stuck: streamer parked on a never-created channel (ghostferry #331), source advancing', () => {
  const series = makePipelineSeries({
    startMs: START,
    count: 5,
    stepMs: 1000,
    stages: [
      {name: 'binlog-streamer', busyShare: 0, idleShare: 0, backPressuredShare: 1, itemsPerSec: 0, progressing: false, stalledForMsAtStart: 60_000, transactionLagMs: (e) => 60_000 + e},
      {name: 'binlog-writer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false, stalledForMsAtStart: 60_000, state: 'idle'},
    ],
    buffers: [{id: 1, name: 'binlog-events', capacity: 100, inPerSec: 0, outPerSec: 0, length: 0}],
    source: {eventsPerSec: 500, bytesPerEvent: 200},
    tasksAtEnd: [
      makeTask({id: 35, kind: 'slot-wait', stageName: 'binlog-streamer', channelName: 'binlog-event-buffer', waitMs: 64_000,
        stack: [{functionName: 'bufferBinlogEvents', url: 'file:///app/binlog-writer.js', line: 75, column: 11}]}),
      makeTask({id: 34, kind: 'channel-receive', stageName: 'binlog-writer', channelId: 1, channelName: 'binlog-events', waitMs: 64_000,
        stack: [{functionName: 'run', url: 'file:///app/binlog-writer.js', line: 36, column: 5}]}),
    ],
  })
  const report = assessLag({snapshots: series})
  assert.equal(report.verdict, 'stuck')
  assert.equal(report.reason.code, 'no-progress')
  assert.deepEqual(report.reason.code === 'no-progress' && report.reason.stages, ['binlog-streamer', 'binlog-writer'])
  assert.match(describeLagReason(report.reason, report.bottleneck), /no progress by binlog-streamer or binlog-writer/)
  assert.match(describeLagReason(report.reason, report.bottleneck), /source advanced/)
  const slot = report.evidence.find((f) => f.kind === 'uninitialized-channel-send')
  assert.ok(slot, JSON.stringify(report.evidence))
  assert.deepEqual(slot.evidence.sites, ['file:///app/binlog-writer.js:75:11'])
  assert.deepEqual(slot.evidence.channels, ['binlog-event-buffer'])
  assert.deepEqual(slot.evidence.taskIds, [35])
  assert.ok(report.evidence.some((f) => f.evidence.channels?.includes('binlog-events')))
  assert.equal(report.lag?.stageName, 'binlog-streamer')
  assert.equal(report.lag?.livenessLagMs, 64_000)
  assert.ok(Math.abs(report.lag!.livenessLagGrowthSecPerSec! - 1) < 1e-9)
  assert.ok(Math.abs(report.lag!.transactionLagGrowthSecPerSec! - 1) < 1e-9) // newest item frozen: +1 s per s
  assert.equal(report.catchUp.state, 'never')
  assert.equal(report.source?.advanced, true)
  assert.equal(report.source?.eventsPerSec, 500)
})

test('stuck: writer hung with a full buffer and no --source; the streamer\'s blocked send is evidence', () => {
  const series = makePipelineSeries({
    startMs: START,
    count: 3,
    stepMs: 2000,
    stages: [
      {name: 'reader', busyShare: 0, idleShare: 0, backPressuredShare: 1, itemsPerSec: 0, progressing: false},
      {name: 'applier', busyShare: 1, idleShare: 0, backPressuredShare: 0, itemsPerSec: 0, progressing: false},
    ],
    buffers: [{id: 4, name: 'rows', capacity: 50, inPerSec: 0, outPerSec: 0, length: 50, fullShare: 1}],
    tasksAtEnd: [makeTask({id: 9, kind: 'channel-send', stageName: 'reader', channelId: 4, channelName: 'rows', waitMs: 34_000})],
  })
  const report = assessLag({snapshots: series})
  assert.equal(report.verdict, 'stuck')
  assert.match(describeLagReason(report.reason, report.bottleneck), /50 event\(s\) wait in buffers/)
  const send = report.evidence.find((f) => f.evidence.taskIds?.includes(9))
  assert.ok(send)
  assert.equal(send.kind, 'long-wait')
  assert.ok(report.notMeasured.some((n) => n.startsWith('not measured: source')))
  assert.equal(report.buffers[0].eventsAtRisk, 50)
})

test('falling behind: writer is the bottleneck, streamer back-pressured; order from topology', () => {
  const series = makePipelineSeries({
    startMs: START,
    count: 6,
    stepMs: 1000,
    stages: [
      {name: 'streamer', busyShare: 0.1, idleShare: 0.05, backPressuredShare: 0.85, itemsPerSec: 900, transactionLagMs: (e) => 5000 + 0.25 * e},
      {name: 'writer', busyShare: 0.97, idleShare: 0.03, backPressuredShare: 0, itemsPerSec: 900, transactionLagMs: (e) => 5400 + 0.25 * e},
    ],
    buffers: [{id: 1, name: 'binlog-events', capacity: 200, inPerSec: 900, outPerSec: 900, length: 195, fullShare: 0.8}],
    source: {eventsPerSec: 1200, bytesPerEvent: 150},
    tasksAtEnd: [
      makeTask({id: 1, kind: 'channel-send', stageName: 'streamer', channelId: 1, channelName: 'binlog-events', waitMs: 3}),
    ],
  })
  // A receive by the writer seen in an earlier snapshot completes the topology.
  series[2].tasks = [makeTask({id: 2, kind: 'channel-receive', stageName: 'writer', channelId: 1, channelName: 'binlog-events', waitMs: 1})]
  // Reverse creation order so that only topology can put the streamer first.
  for (const s of series) for (const st of s.stages) if (st.name === 'writer') st.createdAtMs -= 5000
  const report = assessLag({snapshots: series})
  assert.equal(report.pipelineOrder.derivedFrom, 'topology')
  assert.deepEqual(report.pipelineOrder.stages, ['streamer', 'writer'])
  assert.equal(report.verdict, 'falling-behind', describeLagReason(report.reason, report.bottleneck))
  assert.equal(report.bottleneck?.stageName, 'writer')
  assert.equal(report.bottleneck?.rule, 'first-busy-not-back-pressured')
  assert.deepEqual(report.bottleneck?.backPressuredUpstream, ['streamer'])
  assert.ok(Math.abs(report.lag!.transactionLagGrowthSecPerSec! - 0.25) < 1e-9)
  assert.equal(report.writerLag?.stageName, 'writer')
  const finding = report.evidence.find((f) => f.kind === 'back-pressure')
  assert.ok(finding)
  assert.match(finding.suggestion, /tune-batch/)
  assert.deepEqual(finding.evidence.channels, ['binlog-events'])
  // Capacity 900 / 0.97 ≈ 928 events/s < source 1200: never catches up.
  assert.equal(report.catchUp.state, 'never')
  assert.ok(Math.abs(report.catchUp.capacityEventsPerSec! - 900 / 0.97) < 1)
  assert.equal(report.catchUp.sourceEventsPerSec, 1200)
  const stage = report.stages.find((s) => s.name === 'streamer')!
  assert.ok(Math.abs(stage.backPressuredMsPerSec - 850) < 1e-6)
})

test('healthy: lag flat within resolution; catch-up reports caught up', () => {
  const series = makePipelineSeries({
    startMs: START,
    count: 5,
    stepMs: 1000,
    stages: [
      {name: 'streamer', busyShare: 0.2, idleShare: 0.8, backPressuredShare: 0, itemsPerSec: 500, transactionLagMs: () => 400},
      {name: 'writer', busyShare: 0.5, idleShare: 0.5, backPressuredShare: 0, itemsPerSec: 500, transactionLagMs: () => 600},
    ],
    buffers: [{id: 1, name: 'binlog-events', capacity: 200, inPerSec: 500, outPerSec: 500, length: 3}],
    source: {eventsPerSec: 500, bytesPerEvent: 150},
  })
  const report = assessLag({snapshots: series})
  assert.equal(report.verdict, 'healthy', describeLagReason(report.reason, report.bottleneck))
  assert.equal(report.bottleneck, null)
  assert.equal(report.catchUp.state, 'caught-up')
  assert.equal(report.lag?.transactionLagMs, 400)
  assert.equal(report.lag?.transactionLagGrowthSecPerSec, 0)
  assert.ok(Math.abs(report.source!.bytesPerSec! - 75_000) < 1)
})

test('healthy but behind: lag shrinking, catch-up time estimated', () => {
  const series = makePipelineSeries({
    startMs: START,
    count: 5,
    stepMs: 1000,
    stages: [
      {name: 'streamer', busyShare: 0.3, idleShare: 0.2, backPressuredShare: 0.5, itemsPerSec: 1000, transactionLagMs: (e) => 10_000 - e},
      {name: 'writer', busyShare: 0.5, idleShare: 0.5, backPressuredShare: 0, itemsPerSec: 1000, transactionLagMs: (e) => 10_000 - e},
    ],
    source: {eventsPerSec: 500, bytesPerEvent: 100},
  })
  const report = assessLag({snapshots: series})
  assert.equal(report.verdict, 'healthy')
  // capacity = 1000 / 0.5 = 2000 events/s (streamer 3333), R = 500: t = L·R/(C − R) = 6 s · 500 / 1500 = 2 s
  assert.equal(report.catchUp.state, 'estimate')
  assert.ok(Math.abs(report.catchUp.seconds! - 2) < 1e-6, `${report.catchUp.seconds}`)
})

test('idle: source not producing and nothing buffered', () => {
  const series = makePipelineSeries({
    startMs: START,
    count: 4,
    stepMs: 1000,
    stages: [
      {name: 'streamer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false, state: 'idle', transactionLagMs: (e) => 90_000 + e},
      {name: 'writer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false, state: 'idle'},
    ],
    buffers: [{id: 1, name: 'binlog-events', capacity: 200, inPerSec: 0, outPerSec: 0, length: 0}],
    source: {eventsPerSec: 0, bytesPerEvent: 100},
    tasksAtEnd: [makeTask({id: 3, kind: 'channel-receive', stageName: 'writer', channelId: 1, channelName: 'binlog-events', waitMs: 95_000})],
  })
  const report = assessLag({snapshots: series})
  assert.equal(report.verdict, 'idle', describeLagReason(report.reason, report.bottleneck))
  assert.equal(report.catchUp.state, 'caught-up')
  assert.equal(report.evidence.length, 0)

  assert.deepEqual(report.flow, ['caught-up-quiet-source'])

  // Without a source the same picture is no evidence: a quiet source and a stuck read look alike.
  const noSource = assessLag({snapshots: series.map((s) => ({...s, sources: []}))})
  assert.equal(noSource.verdict, 'unknown', describeLagReason(noSource.reason, noSource.bottleneck))
  assert.deepEqual(noSource.missing, ['source'])
  assert.deepEqual(noSource.flow, [])
})

test('not idle when the source advanced while nothing moved: that is stuck', () => {
  const series = makePipelineSeries({
    startMs: START,
    count: 4,
    stepMs: 1000,
    stages: [
      {name: 'streamer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false},
      {name: 'writer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false},
    ],
    source: {eventsPerSec: 10, bytesPerEvent: 100},
  })
  const report = assessLag({snapshots: series})
  assert.equal(report.verdict, 'stuck')
  // No blocked wait recorded: the finding says where to look next.
  assert.equal(report.evidence[0].kind, 'stuck')
  assert.match(report.evidence[0].suggestion, /stacks/)
})

test('only --source: bytes behind growing → falling behind; frozen position → stuck; the source alone → unknown (the pipeline was not measured)', () => {
  const readings = [0, 1000, 2000, 3000].map((dt) => ({
    atMs: START + dt,
    status: makeSource({name: 'mysql', kind: 'mysql', end: {file: 'binlog.000003', offset: 1000 + dt * 100}}),
  }))
  const growing = assessLag({sourceStatuses: readings, bytesBehind: readings.map((r, i) => ({atMs: r.atMs, bytes: 5000 + i * 20_000}))})
  assert.equal(growing.verdict, 'falling-behind')
  assert.equal(growing.bottleneck, null)
  // No agent: the lag figures are the binlog position's alone.
  assert.equal(growing.lag?.livenessLagMs, null)
  assert.equal(growing.lag?.bytesBehind, 65_000)
  assert.ok(Math.abs(growing.lag!.bytesBehindGrowthPerSec! - 20_000) < 1e-6)
  assert.ok(growing.notMeasured.some((n) => n.includes('no agent snapshots')))
  assert.equal(growing.source?.bytesPerSec, 100_000)

  const frozen = assessLag({sourceStatuses: readings, bytesBehind: readings.map((r, i) => ({atMs: r.atMs, bytes: 5000 + i * 100_000}))})
  assert.equal(frozen.verdict, 'stuck')

  const shrinking = assessLag({sourceStatuses: readings, bytesBehind: readings.map((r, i) => ({atMs: r.atMs, bytes: 50_000 - i * 10_000}))})
  assert.equal(shrinking.verdict, 'healthy')

  const nothing = assessLag({sourceStatuses: readings})
  assert.equal(nothing.verdict, 'unknown')
  assert.deepEqual(nothing.missing, ['pipeline'])
  // A quiet source measured alone is not idle either: nothing says where the pipeline is.
  const quiet = readings.map((r) => ({...r, status: {...r.status, end: {file: 'binlog.000003', offset: 1000}}}))
  const quietReport = assessLag({sourceStatuses: quiet, sourceRowCounts: quiet.map((r) => ({atMs: r.atMs, rows: 5}))})
  assert.equal(quietReport.verdict, 'unknown', describeLagReason(quietReport.reason, quietReport.bottleneck))
  assert.deepEqual(quietReport.missing, ['pipeline'])
})

test('pipeline order: explicit input wins; no topology falls back to creation order', () => {
  const snapshot = makeSnapshot({
    takenAtMs: START,
    stages: [makeStage({name: 'b', createdAtMs: 2}), makeStage({name: 'a', createdAtMs: 1}), makeStage({name: 'c', createdAtMs: 3})],
  })
  assert.deepEqual(derivePipelineOrder([snapshot]), {stages: ['a', 'b', 'c'], derivedFrom: 'creation-order'})
  assert.deepEqual(derivePipelineOrder([snapshot], ['c', 'a']), {stages: ['c', 'a', 'b'], derivedFrom: 'input'})
})

test('bottleneck rule: first busy stage that is not back-pressured, in pipeline order', () => {
  const rate = (name: string, busy: number, bp: number) => ({
    name, busyMsPerSec: busy, idleMsPerSec: 1000 - busy - bp, backPressuredMsPerSec: bp, accountedMsPerSec: 1000,
    itemsPerSec: 1, itemsHandled: 1, observedMs: 1000, appearedMidWindow: false, stateAtEnd: 'busy' as const, lastProgressAtMs: 0,
  })
  const stages = [rate('sink', 900, 0), rate('parse', 800, 50), rate('read', 100, 850)]
  const b = findBottleneck(stages, ['read', 'parse', 'sink'])
  assert.equal(b?.stageName, 'parse')
  assert.deepEqual(b?.backPressuredUpstream, ['read'])
  const none = findBottleneck([rate('x', 300, 0), rate('y', 100, 600)], ['y', 'x'])
  assert.equal(none?.rule, 'busiest')
  assert.equal(none?.stageName, 'x')
  assert.equal(findBottleneck([rate('z', 0, 900)], ['z']), null)
})

test('one snapshot: lag figures without rates; input validation', () => {
  const one = makePipelineSeries({
    startMs: START,
    count: 1,
    stepMs: 1000,
    stages: [{name: 'streamer', busyShare: 0.2, idleShare: 0.8, backPressuredShare: 0, itemsPerSec: 10, transactionLagMs: () => 300}],
  })
  const report = assessLag({snapshots: one})
  assert.equal(report.lag?.transactionLagMs, 300)
  assert.equal(report.lag?.transactionLagGrowthSecPerSec, null)
  assert.ok(report.notMeasured.some((n) => n.includes('one agent snapshot')))
  // One snapshot has no rates: nothing shows events flowing, so no healthy verdict.
  assert.equal(report.verdict, 'unknown')
  assert.deepEqual(report.missing, ['window', 'source'])
  assert.throws(() => assessLag({}), RangeError)
  const empty = assessLag({nowMs: START})
  assert.equal(empty.verdict, 'unknown')
  assert.deepEqual(empty.missing, ['pipeline', 'source'])
  assert.throws(() => assessLag({snapshots: one, streamerStage: 'nope'}), /stage named "nope"/)
  assert.throws(() => assessLag({snapshots: one, stallThresholdMs: 0}), RangeError)
})

// ---- MariaDB mode: --source readings (no event count) plus binlog rows counted over the window --------

/** SHOW MASTER STATUS readings once a second (no eventsProduced, as on MySQL/MariaDB) and the rows counted by then. */
function mariadbSource(count: number, rowsPerSec: number, bytesPerSec: number) {
  const sourceStatuses = Array.from({length: count}, (_, i) => ({
    atMs: START + i * 1000,
    status: {name: '--source', kind: 'mysql' as const, end: {file: 'binlog.000003', offset: 4 + i * bytesPerSec}},
  }))
  const sourceRowCounts = sourceStatuses.map((r, i) => ({atMs: r.atMs, rows: 7 + i * rowsPerSec}))
  return {sourceStatuses, sourceRowCounts}
}

test('MariaDB mode: counted binlog rows are the source rate, so catch-up is decided (never / estimate)', () => {
  const behind = makePipelineSeries({
    startMs: START,
    count: 6,
    stepMs: 1000,
    stages: [
      {name: 'binlog-streamer', busyShare: 0.01, idleShare: 0.01, backPressuredShare: 0.98, itemsPerSec: 160, transactionLagMs: (e) => 3000 + 0.6 * e},
      {name: 'binlog-writer', busyShare: 0.99, idleShare: 0.01, backPressuredShare: 0, itemsPerSec: 160, transactionLagMs: (e) => 3000 + 0.6 * e},
    ],
    buffers: [{id: 2, name: 'binlog-events', capacity: 10, inPerSec: 160, outPerSec: 160, length: 10, fullShare: 0.99}],
  })
  const withoutCounts = assessLag({snapshots: behind, sourceStatuses: mariadbSource(6, 400, 130_000).sourceStatuses})
  assert.equal(withoutCounts.source?.eventsPerSec, null)
  assert.equal(withoutCounts.source?.eventsPerSecFrom, null)
  assert.equal(withoutCounts.catchUp.state, 'unknown')

  const report = assessLag({snapshots: behind, ...mariadbSource(6, 400, 130_000)})
  assert.equal(report.verdict, 'falling-behind', describeLagReason(report.reason, report.bottleneck))
  assert.equal(report.bottleneck?.stageName, 'binlog-writer')
  assert.equal(report.source?.eventsPerSec, 400)
  assert.equal(report.source?.eventsPerSecFrom, 'binlog-rows')
  assert.match(describeLagReason(report.reason, report.bottleneck), /source 400 rows\/s > streamer 160 items\/s/)
  const growth = report.reason.code === 'lag-growing' ? report.reason.growth : []
  assert.ok(growth.some((g) => g.code === 'source-outpaces-streamer' && g.sourceEventsPerSec === 400), JSON.stringify(growth))
  assert.deepEqual(report.catchUp.basis, {code: 'capacity-at-most-rate', rateFrom: 'binlog-rows'})
  // Capacity 160 / 0.99 ≈ 162 rows/s ≤ 400 rows/s at the source.
  assert.equal(report.catchUp.state, 'never')
  assert.equal(report.catchUp.sourceEventsPerSec, 400)
  assert.match(describeCatchUp(report.catchUp), /source rate \(binlog rows\) 400/)

  const catchingUp = makePipelineSeries({
    startMs: START,
    count: 6,
    stepMs: 1000,
    stages: [
      {name: 'binlog-streamer', busyShare: 0.1, idleShare: 0.2, backPressuredShare: 0.7, itemsPerSec: 600, transactionLagMs: (e) => 8000 - 0.5 * e},
      {name: 'binlog-writer', busyShare: 0.75, idleShare: 0.25, backPressuredShare: 0, itemsPerSec: 600, transactionLagMs: (e) => 8000 - 0.5 * e},
    ],
  })
  const estimate = assessLag({snapshots: catchingUp, ...mariadbSource(6, 300, 100_000)})
  assert.equal(estimate.verdict, 'healthy', describeLagReason(estimate.reason, estimate.bottleneck))
  // C = 600 / 0.75 = 800 rows/s, R = 300: t = L·R/(C − R) = 5.5 s · 300 / 500 = 3.3 s
  assert.equal(estimate.catchUp.state, 'estimate')
  assert.ok(Math.abs(estimate.catchUp.seconds! - 3.3) < 1e-6, `${estimate.catchUp.seconds}`)
})

test('MariaDB mode: no rows counted is idle even when the binlog end moved; counted rows make the same picture stuck', () => {
  const quiet = makePipelineSeries({
    startMs: START,
    count: 5,
    stepMs: 1000,
    stages: [
      {name: 'binlog-streamer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false, state: 'idle'},
      {name: 'binlog-writer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false, state: 'idle'},
    ],
  })
  // The end moves 200 B/s (e.g. DDL on another schema) but no row events are written.
  const idle = assessLag({snapshots: quiet, ...mariadbSource(5, 0, 200)})
  assert.equal(idle.verdict, 'idle', describeLagReason(idle.reason, idle.bottleneck))
  assert.equal(idle.source?.advanced, true)
  assert.equal(idle.source?.eventsPerSec, 0)
  assert.ok(idle.notes.some((n) => /no row events/.test(n)), idle.notes.join(' | '))
  assert.equal(idle.catchUp.state, 'caught-up')
  // Without the count, a moving end with nothing handled reads as stuck.
  assert.equal(assessLag({snapshots: quiet, sourceStatuses: mariadbSource(5, 0, 200).sourceStatuses}).verdict, 'stuck')
  // With rows counted, nothing handled while the source writes rows: stuck.
  const stuck = assessLag({snapshots: quiet, ...mariadbSource(5, 250, 80_000)})
  assert.equal(stuck.verdict, 'stuck', describeLagReason(stuck.reason, stuck.bottleneck))
  assert.match(describeLagReason(stuck.reason, stuck.bottleneck), /source advanced/)
})

test('MariaDB mode: counted rows above the streamer rate are no growth while the streamer mostly waits for the source', () => {
  // A pipeline copying one schema of a source that also writes others: the streamer keeps up with its share.
  const keepingUp = makePipelineSeries({
    startMs: START,
    count: 5,
    stepMs: 1000,
    stages: [
      {name: 'binlog-streamer', busyShare: 0.05, idleShare: 0.95, backPressuredShare: 0, itemsPerSec: 300, transactionLagMs: () => 400},
      {name: 'binlog-writer', busyShare: 0.4, idleShare: 0.6, backPressuredShare: 0, itemsPerSec: 300, transactionLagMs: () => 500},
    ],
  })
  const report = assessLag({snapshots: keepingUp, ...mariadbSource(5, 900, 300_000)})
  assert.equal(report.verdict, 'healthy', describeLagReason(report.reason, report.bottleneck))
  assert.equal(report.source?.eventsPerSec, 900)
})

test('buffer use: a collected or never-used empty buffer without traffic is unused; one with a blocked waiter never is', () => {
  const series = makePipelineSeries({
    startMs: START,
    count: 4,
    stepMs: 500,
    stages: [{name: 'binlog-streamer', busyShare: 0.1, idleShare: 0.9, backPressuredShare: 0, itemsPerSec: 100}],
    buffers: [
      {id: 1, name: 'binlog-events', capacity: 100, inPerSec: 0, outPerSec: 0, length: 0},
      {id: 2, name: 'binlog-events', capacity: 100, inPerSec: 100, outPerSec: 100, length: 1},
      {id: 3, name: 'spare', capacity: 10, inPerSec: 0, outPerSec: 0, length: 0},
      {id: 4, name: 'orphan', capacity: 10, inPerSec: 0, outPerSec: 0, length: 0},
    ],
    tasksAtEnd: [makeTask({id: 5, kind: 'channel-send', stageName: 'binlog-streamer', channelId: 4, channelName: 'orphan', waitMs: 9000})],
  })
  for (const s of series) {
    for (const c of s.channels) {
      // #1: a replaced placeholder that once carried items, now garbage-collected.
      if (c.id === 1) Object.assign(c, {collected: true, itemsIn: 40, itemsOut: 40, sendersEver: 1, receiversEver: 1})
      // #3: created, never sent to or received from.
      if (c.id === 3) Object.assign(c, {sendersEver: 0, receiversEver: 0})
      // #4: nothing ever went through, but a sender waits on it.
      if (c.id === 4) Object.assign(c, {sendersEver: 1, receiversEver: 0})
    }
  }
  const report = assessLag({snapshots: series})
  const byId = new Map(report.buffers.map((b) => [b.id, b]))
  assert.equal(byId.get(1)?.unused, true)
  assert.equal(byId.get(1)?.itemsInEver, 40)
  assert.equal(byId.get(2)?.unused, false)
  assert.equal(byId.get(3)?.unused, true) // never sent to or received from
  assert.equal(byId.get(4)?.unused, false)
  assert.equal(byId.get(4)?.blockedWaitersAtEnd, 1)
})
