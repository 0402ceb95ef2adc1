// Tests of src/collect (the sampler over a window, its conversion to assessLag's input) and of the lag
// text renderer against golden files built from constructed snapshot series (UPDATE_GOLDEN=1 rewrites them).
import {test} from 'node:test'
import assert from 'node:assert/strict'

import type {InspectorSession} from '../src/attach/session.js'
import {buildLagInput, pipelinePosition} from '../src/collect/lag-input.js'
import {SOURCE_RATE_NO_GRANT, assessWindow, recentSamples, type LagResultContext} from '../src/collect/lag-result.js'
import {chooseAgentIntervalMs, sampleWindow, type SampledWindow, type WindowSample} from '../src/collect/sample-window.js'
import {FerrydiagError} from '../src/errors.js'
import type {AgentSnapshot} from '../src/model/snapshot.js'
import type {SourceStatusReading} from '../src/mysql/source-status.js'
import {renderLagText, renderLagWatch} from '../src/render/lag-text.js'
import {createLagWatchScreen} from '../src/render/lag-watch.js'
import {createProgressLine, formatProgress} from '../src/render/progress.js'
import {makePipelineSeries, makeSnapshot, makeStage, makeTask} from './helpers/generate-samples.js'
import {assertGolden} from './helpers/golden.js'

// ---- a fake agent session ----------------------------------------------------------------------

/** Stands in for InspectorSession: readSnapshot answers from `answer(callIndex)` (may throw). */
function fakeSession(answer: (call: number) => AgentSnapshot | null | Error): InspectorSession & {calls: number} {
  const fake = {
    calls: 0,
    address: '127.0.0.1:9229',
    async readSnapshot(): Promise<AgentSnapshot | null> {
      const result = answer(fake.calls++)
      if (result instanceof Error) throw result
      return result
    },
  }
  return fake as unknown as InspectorSession & {calls: number}
}

function snapshotAt(call: number): AgentSnapshot {
  return makeSnapshot({takenAtMs: 1_700_000_000_000 + call * 100, stages: [makeStage({name: 'binlog-streamer', itemsHandled: call})]})
}

test('sampleWindow: first and last sample at the window ends, one per interval, progress reported', async () => {
  const session = fakeSession(snapshotAt)
  const progress: number[] = []
  const seen: WindowSample[] = []
  const started = performance.now()
  const window = await sampleWindow({session, durationMs: 500, intervalMs: 100, onProgress: (e) => progress.push(e), onSample: (s) => seen.push(s)})
  const tookMs = performance.now() - started
  assert.equal(window.endedBy, 'duration')
  assert.deepEqual(window.problems, [])
  assert.equal(window.samples.length, 6) // at 0, 100, ..., 500 ms
  assert.equal(seen.length, 6)
  assert.ok(window.samples.every((s) => s.snapshot !== null && s.source === undefined))
  assert.ok(tookMs >= 490 && tookMs < 1500, `took ${tookMs} ms`)
  assert.equal(progress.length, 5)
  assert.equal(progress[progress.length - 1], 500)
  assert.equal(window.agentAbsent, false)
})

test('sampleWindow: abort stops early and returns what was measured', async () => {
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 250)
  const started = performance.now()
  const window = await sampleWindow({session: fakeSession(snapshotAt), durationMs: 10_000, intervalMs: 100, signal: controller.signal})
  assert.equal(window.endedBy, 'interrupted')
  assert.ok(performance.now() - started < 1000)
  assert.ok(window.samples.length >= 2 && window.samples.length <= 4, `samples ${window.samples.length}`)
})

test('sampleWindow: the target exiting mid-window ends it without throwing', async () => {
  const exited = new FerrydiagError('targetExited', 'While evaluating an expression, process 4242 exited (inspector 127.0.0.1:9229).', 'attach again')
  const window = await sampleWindow({session: fakeSession((call) => (call < 3 ? snapshotAt(call) : exited)), durationMs: 5000, intervalMs: 50})
  assert.equal(window.endedBy, 'target-exited')
  assert.equal(window.samples.length, 3)
  assert.match(window.problems[0]!, /process 4242 exited/)
})

test('sampleWindow: a failed read mid-window is noted once with a count, the window goes on', async () => {
  const slow = new FerrydiagError('evaluateTimeout', 'An evaluation did not finish within its 3000 ms budget', 'retry')
  const window = await sampleWindow({session: fakeSession((call) => (call === 2 || call === 3 ? slow : snapshotAt(call))), durationMs: 300, intervalMs: 50})
  assert.equal(window.endedBy, 'duration')
  assert.equal(window.samples.length, 5)
  assert.deepEqual(window.problems, ['An evaluation did not finish within its 3000 ms budget (2 times)'])
})

test('sampleWindow: errors before the first reading throw; no agent and no source returns at once', async () => {
  const refused = new FerrydiagError('unknownSnapshot', 'schema "x"', 'upgrade')
  await assert.rejects(sampleWindow({session: fakeSession(() => refused), durationMs: 1000}), (e) => e === refused)
  const window = await sampleWindow({session: fakeSession(() => null), durationMs: 5000})
  assert.equal(window.agentAbsent, true)
  assert.equal(window.samples.length, 1)
  assert.match(window.problems[0]!, /no ferrydiag agent/)
  await assert.rejects(sampleWindow({session: fakeSession(snapshotAt), durationMs: 0}), RangeError)
  await assert.rejects(sampleWindow({durationMs: 1000}), TypeError)
})

test('sampleWindow: retainMs keeps a sliding window while onSample sees everything', async () => {
  const seenAt: number[] = []
  const window = await sampleWindow({session: fakeSession(snapshotAt), durationMs: 600, intervalMs: 50, retainMs: 200, onSample: (s) => seenAt.push(s.atMs)})
  assert.equal(seenAt.length, 13)
  // Kept: exactly the samples taken within 200 ms of the last one. Nominally 5, but late timers on a busy
  // machine bunch the ticks, so the count is taken from the samples' real times.
  const last = seenAt[seenAt.length - 1]!
  const inRetained = seenAt.filter((at) => at >= last - 200).length
  assert.equal(window.samples.length, inRetained, `kept ${window.samples.length} of ${JSON.stringify(seenAt.map((at) => at - seenAt[0]!))}`)
  const span = window.samples[window.samples.length - 1]!.atMs - window.samples[0]!.atMs
  assert.ok(span <= 200, `span ${span}`)
})

test('sampleWindow: an unreachable --source throws mysqlUnreachable before sampling', async () => {
  await assert.rejects(sampleWindow({sourceDsn: 'mysql://u:p@127.0.0.1:1/x', durationMs: 1000}), (e: FerrydiagError) => e.code === 'mysqlUnreachable')
})

// ---- window -> assessLag input -----------------------------------------------------------------

function reading(atMs: number, file: string, offset: number, logs: Array<[string, number]>): SourceStatusReading {
  return {end: {file, offset}, binaryLogs: logs.map(([name, sizeBytes]) => ({name, sizeBytes})), serverId: 1, version: '10.11.19-MariaDB', flavor: 'mariadb', readAtMs: atMs}
}

test('buildLagInput: bytes behind across a rotation with --source, only at ticks with both ends', () => {
  const at = 1_700_000_000_000
  const stage = (offset: number) => makeStage({name: 'binlog-streamer', position: {file: 'binlog.000001', offset}})
  const samples: WindowSample[] = [
    {atMs: at, snapshot: makeSnapshot({takenAtMs: at, stages: [stage(1000)]}), source: {atMs: at, status: reading(at, 'binlog.000001', 5000, [['binlog.000001', 8000]])}},
    {atMs: at + 250, snapshot: makeSnapshot({takenAtMs: at + 250, stages: [stage(2000)]})},
    {atMs: at + 1000, snapshot: makeSnapshot({takenAtMs: at + 1000, stages: [stage(3000)]}), source: {atMs: at + 1000, status: reading(at + 1000, 'binlog.000002', 700, [['binlog.000001', 9000], ['binlog.000002', 700]])}},
  ]
  const {input, notes} = buildLagInput(samples)
  assert.equal(input.snapshots?.length, 3)
  assert.deepEqual(input.bytesBehind, [{atMs: at, bytes: 4000}, {atMs: at + 1000, bytes: 6000 + 700}])
  assert.equal(input.sourceStatuses?.length, 2)
  assert.equal(input.sourceStatuses![1]!.status.end.file, 'binlog.000002')
  assert.deepEqual(notes, [])
})

test('buildLagInput: a registered source in another file is skipped with a note; old lifetimes are dropped', () => {
  const at = 1_700_000_000_000
  const source = (file: string, offset: number) => [{name: 'source', kind: 'simulated' as const, end: {file, offset}}]
  const stage = makeStage({name: 'binlog-reader', position: {file: 'b.1', offset: 100}})
  const old = makeSnapshot({takenAtMs: at - 1000, stages: [stage], sources: source('b.1', 100), pid: 1})
  const samples: WindowSample[] = [
    {atMs: at - 1000, snapshot: old},
    {atMs: at, snapshot: makeSnapshot({takenAtMs: at, stages: [stage], sources: source('b.1', 400)})},
    {atMs: at + 500, snapshot: makeSnapshot({takenAtMs: at + 500, stages: [stage], sources: source('b.2', 50)})},
  ]
  const {input, notes} = buildLagInput(samples)
  assert.equal(input.snapshots?.length, 2)
  assert.deepEqual(input.bytesBehind, [{atMs: at, bytes: 300}])
  assert.equal(input.sourceStatuses, undefined)
  assert.equal(notes.length, 2, notes.join(' | '))
  assert.equal(pipelinePosition(samples[1]!.snapshot!)?.offset, 100)
})

test('chooseAgentIntervalMs: about ten snapshots per window, 250..500 ms', () => {
  assert.equal(chooseAgentIntervalMs(5000), 500)
  assert.equal(chooseAgentIntervalMs(60_000), 500)
  assert.equal(chooseAgentIntervalMs(3000), 300)
  assert.equal(chooseAgentIntervalMs(2000), 250)
  assert.equal(chooseAgentIntervalMs(1000), 250)
  assert.ok(5000 / chooseAgentIntervalMs(5000) + 1 >= 10)
  assert.throws(() => chooseAgentIntervalMs(0), RangeError)
})

test('buildLagInput / assessWindow: rows counted at --source readings become the source rate (MariaDB mode)', () => {
  const at = START
  const logs: Array<[string, number]> = [['binlog.000001', 10_000_000]]
  const stage = (i: number) =>
    makeStage({name: 'binlog-streamer', position: {file: 'binlog.000001', offset: 1000 + i * 4000}, itemsHandled: i * 100, lastProgressAtMs: at + i * 500,
      busyMs: 20 * i, idleMs: 480 * i, lastItemTimestampMs: at + i * 500 - 300})
  const samples: WindowSample[] = [0, 1, 2, 3, 4].map((i) => {
    const sample: WindowSample = {atMs: at + i * 500, snapshot: makeSnapshot({takenAtMs: at + i * 500, stages: [stage(i)]})}
    // The source is read every other tick; the row count is taken with each reading.
    if (i % 2 === 0) sample.source = {atMs: at + i * 500, status: reading(at + i * 500, 'binlog.000001', 5000 + i * 4000, logs), rowsCounted: 12 + i * 100}
    return sample
  })
  const {input} = buildLagInput(samples)
  assert.deepEqual(input.sourceRowCounts, [{atMs: at, rows: 12}, {atMs: at + 1000, rows: 212}, {atMs: at + 2000, rows: 412}])
  const window: SampledWindow = {samples, startedAtMs: at, endedAtMs: at + 2000, endedBy: 'duration', problems: [], agentAbsent: false,
    rowCount: {state: 'counting', serverId: 3_000_000_123, rows: 415}}
  const result = assessWindow(window, CONTEXT)
  assert.equal(result.source?.eventsPerSec, 200)
  assert.equal(result.source?.eventsPerSecFrom, 'binlog-rows')
  assert.equal(result.window.sourceFrom, 'flag')
  assert.deepEqual(result.window.sourceRowCount, {state: 'counting', serverId: 3_000_000_123, rows: 415})
  assert.ok(!result.notMeasured.includes(SOURCE_RATE_NO_GRANT))
  const text = renderLagText(result)
  assert.match(text, /^Source \(--source\): advancing, 200 events\/s \(binlog rows\), 7.8 KiB\/s of binlog$/m)
  assert.doesNotMatch(text, /needs source rate/)
})

test('assessWindow: a --source account without REPLICATION SLAVE is "not measured: source event rate", not a failure', () => {
  const at = START
  const logs: Array<[string, number]> = [['binlog.000001', 10_000_000]]
  const samples: WindowSample[] = [0, 1, 2].map((i) => ({
    atMs: at + i * 1000,
    snapshot: null,
    source: {atMs: at + i * 1000, status: reading(at + i * 1000, 'binlog.000001', 5000 + i * 4000, logs)},
  }))
  const noGrant: SampledWindow = {samples, startedAtMs: at, endedAtMs: at + 2000, endedBy: 'duration', problems: [], agentAbsent: false,
    rowCount: {state: 'no-grant', serverId: 3_000_000_123, rows: 0, error: 'The source refused to stream its binlog: the account lacks REPLICATION SLAVE'}}
  const result = assessWindow(noGrant, {...CONTEXT, attached: false})
  assert.ok(result.notMeasured.includes(SOURCE_RATE_NO_GRANT), result.notMeasured.join(' | '))
  assert.equal(result.source?.eventsPerSec, null)
  assert.equal(result.window.sourceRowCount?.state, 'no-grant')
  assert.match(renderLagText(result), /^not measured: source event rate \(needs REPLICATION SLAVE\)$/m)
  const failed = assessWindow({...noGrant, rowCount: {state: 'failed', serverId: null, rows: 0, error: 'not ready within 10000 ms'}}, {...CONTEXT, attached: false})
  assert.ok(failed.notMeasured.some((l) => /^not measured: source event rate \(the binlog row count failed: not ready/.test(l)), failed.notMeasured.join(' | '))
  // Without --source there is no row count to speak of.
  assert.equal(assessWindow({...noGrant, rowCount: undefined}, CONTEXT).window.sourceRowCount, null)
})

test('recentSamples keeps the last N ms by tick time', () => {
  const samples = [0, 250, 500, 750, 1000].map((atMs) => ({atMs, snapshot: null}))
  assert.deepEqual(recentSamples(samples, 500).map((s) => s.atMs), [500, 750, 1000])
})

test('progress line: nothing unless a TTY and not --json', () => {
  const written: string[] = []
  const stream = (isTTY: boolean) => ({isTTY, columns: 80, write: (t: string) => written.push(t) > 0})
  const quiet = createProgressLine({stream: stream(false), label: 'sampling'})
  quiet.update(1000, 5000)
  quiet.clear()
  const json = createProgressLine({stream: stream(true), json: true, label: 'sampling'})
  json.update(1000, 5000)
  assert.deepEqual(written, [])
  const tty = createProgressLine({stream: stream(true), label: 'sampling'})
  tty.update(2500, 5000)
  tty.clear()
  assert.equal(written.length, 2)
  assert.match(written[0]!, /^\rsampling \[#{12}·{12}\] 2\.5\/5\.0 s\x1b\[K$/)
  assert.equal(written[1], '\r\x1b[K')
  assert.equal(formatProgress('x', 9000, 5000), `x [${'#'.repeat(24)}] 9.0/5.0 s`)
})

// ---- golden text ---------------------------------------------------------------------------------

const START = 1_700_000_060_000
const CONTEXT: LagResultContext = {requestedMs: 5000, inspect: '127.0.0.1:9229', pid: 4242, attached: true, attachedVia: 'inspect'}

function windowOf(series: AgentSnapshot[], extra: Partial<SampledWindow> = {}): SampledWindow {
  return {
    samples: series.map((snapshot) => ({atMs: snapshot.takenAtMs, snapshot})),
    startedAtMs: series[0]!.takenAtMs,
    endedAtMs: series[series.length - 1]!.takenAtMs,
    endedBy: 'duration',
    problems: [],
    agentAbsent: false,
    ...extra,
  }
}

/** Adds streamer positions trailing the registered source by `behind(i)` bytes. */
function withPositions(series: AgentSnapshot[], behind: (i: number) => number): AgentSnapshot[] {
  return series.map((s, i) => {
    const end = s.sources[0]!.end
    return {...s, stages: s.stages.map((st) => (st.name === 'binlog-streamer' ? {...st, position: {file: end.file, offset: Math.max(4, end.offset - behind(i))}} : st))}
  })
}


const GOLDEN_SERIES: Record<string, () => SampledWindow> = {
  stuck: () =>
    windowOf(
      withPositions(
        makePipelineSeries({
          startMs: START,
          count: 21,
          stepMs: 250,
          stages: [
            {name: 'binlog-writer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false, stalledForMsAtStart: 60_000, state: 'idle'},
            {name: 'binlog-streamer', busyShare: 0, idleShare: 0, backPressuredShare: 1, itemsPerSec: 0, progressing: false, stalledForMsAtStart: 60_000, state: 'back-pressured', transactionLagMs: (e) => 60_000 + e},
          ],
          buffers: [{id: 1, name: 'binlog-events', capacity: 100, inPerSec: 0, outPerSec: 0, length: 100, fullShare: 1}],
          source: {eventsPerSec: 200, bytesPerEvent: 130},
          tasksAtEnd: [
            makeTask({id: 7, kind: 'channel-send', stageName: 'binlog-streamer', channelId: 1, channelName: 'binlog-events', waitMs: 65_000,
              stack: [{functionName: 'BinlogStreamer.run', url: 'file:///srv/ferry/dist/fixtures/pipeline/binlog-streamer.js', line: 29, column: 30}]}),
          ],
        }),
        (i) => 13_000 + i * 65,
      ),
    ),
  'falling-behind': () =>
    windowOf(
      withPositions(
        makePipelineSeries({
          startMs: START,
          count: 21,
          stepMs: 250,
          stages: [
            {name: 'binlog-writer', busyShare: 0.997, idleShare: 0.003, backPressuredShare: 0, itemsPerSec: 667},
            {name: 'binlog-streamer', busyShare: 0.004, idleShare: 0.003, backPressuredShare: 0.993, itemsPerSec: 667, state: 'back-pressured', transactionLagMs: (e) => 2000 + e / 3},
          ],
          buffers: [{id: 2, name: 'binlog-events', capacity: 10, inPerSec: 667, outPerSec: 667, length: 10, fullShare: 0.99}],
          source: {eventsPerSec: 1000, bytesPerEvent: 118},
        }),
        (i) => 200_000 + i * 9_800,
      ),
    ),
  healthy: () =>
    windowOf(
      withPositions(
        makePipelineSeries({
          startMs: START,
          count: 21,
          stepMs: 250,
          stages: [
            {name: 'binlog-writer', busyShare: 0.4, idleShare: 0.6, backPressuredShare: 0, itemsPerSec: 1000, state: 'idle', transactionLagMs: () => 150},
            {name: 'binlog-streamer', busyShare: 0.005, idleShare: 0.995, backPressuredShare: 0, itemsPerSec: 1000, state: 'idle', transactionLagMs: () => 20},
          ],
          buffers: [{id: 2, name: 'binlog-events', capacity: 100, inPerSec: 1000, outPerSec: 1000, length: 3}],
          source: {eventsPerSec: 1000, bytesPerEvent: 118},
        }),
        () => 0,
      ),
    ),
  idle: () =>
    windowOf(
      makePipelineSeries({
        startMs: START,
        count: 9,
        stepMs: 250,
        stages: [
          {name: 'binlog-writer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false, state: 'idle'},
          {name: 'binlog-streamer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false, state: 'idle'},
        ],
        buffers: [{id: 2, name: 'binlog-events', capacity: 100, inPerSec: 0, outPerSec: 0, length: 0}],
        source: {eventsPerSec: 0, bytesPerEvent: 118},
      }),
      {endedBy: 'interrupted'},
    ),
}

for (const [name, build] of Object.entries(GOLDEN_SERIES)) {
  test(`golden text: ${name}`, () => {
    const result = assessWindow(build(), CONTEXT)
    assert.equal(result.verdict, name)
    assertGolden(`lag-${name}.txt`, renderLagText(result))
  })
}

test('the next step names the target as it was named: --pid, since an inspector opened for it is closed again', () => {
  const stuck = GOLDEN_SERIES.stuck!()
  assert.match(renderLagText(assessWindow(stuck, CONTEXT)), /^Next: run `ferrydiag stacks --inspect 127\.0\.0\.1:9229`/m)
  assert.match(renderLagText(assessWindow(stuck, {...CONTEXT, attachedVia: 'pid'})), /^Next: run `ferrydiag stacks --pid 4242`/m)
})

test('golden text: --source only, no agent', () => {
  const at = START
  const logs: Array<[string, number]> = [['binlog.000007', 1_000_000]]
  const samples: WindowSample[] = [0, 1, 2, 3, 4, 5].map((i) => ({
    atMs: at + i * 1000,
    snapshot: null,
    source: {atMs: at + i * 1000, status: reading(at + i * 1000, 'binlog.000007', 40_000 + i * 12_000, logs)},
  }))
  const window: SampledWindow = {samples, startedAtMs: at, endedAtMs: at + 5000, endedBy: 'duration', problems: ['the target has no ferrydiag agent (the pipeline does not use ferrydiag/runtime)'], agentAbsent: true}
  const result = assessWindow(window, CONTEXT)
  assert.equal(result.process.agent, 'absent')
  assert.equal(result.notMeasured[0], 'not measured: agent (the pipeline does not use ferrydiag/runtime)')
  assertGolden('lag-source-only.txt', renderLagText(result))
})

test('golden text: healthy with a replaced, collected placeholder buffer folded into one line', () => {
  const window = GOLDEN_SERIES.healthy!()
  // Buffer #1: the placeholder the pipeline replaced at start; it carried nothing in the window and was collected.
  for (const sample of window.samples) {
    const s = sample.snapshot!
    sample.snapshot = {...s, channels: [{...s.channels[0]!, id: 1, itemsIn: 0, itemsOut: 0, fillItemMs: 0, length: 0, collected: true}, ...s.channels]}
  }
  const result = assessWindow(window, CONTEXT)
  assert.equal(result.verdict, 'healthy')
  assert.deepEqual(result.buffers.map((b) => [b.id, b.unused]), [[1, true], [2, false]])
  const text = renderLagText(result)
  assert.match(text, /^\(1 unused buffer not shown: binlog-events #1\)$/m)
  assert.doesNotMatch(text, /binlog-events #1 \[/)
  assert.doesNotMatch(renderLagWatch(result), /binlog-events.*\n.*binlog-events/)
  assertGolden('lag-healthy-unused-buffer.txt', text)
})

test('text: a buffer with a blocked waiter is shown even with no traffic (the init-race orphan)', () => {
  const result = assessWindow(GOLDEN_SERIES.stuck!(), CONTEXT)
  const orphan = result.buffers.find((b) => b.id === 1)!
  assert.equal(orphan.unused, false)
  assert.ok(orphan.blockedWaitersAtEnd >= 1)
  assert.match(renderLagText(result), /│ binlog-events #1 +│/)
  assert.doesNotMatch(renderLagText(result), /unused buffer/)
})

test('golden text: --watch frame (falling behind, sliding window of 2 s)', () => {
  const result = assessWindow(GOLDEN_SERIES['falling-behind']!(), {...CONTEXT, lastMs: 2000})
  assert.ok(result.window.durationMs <= 2000)
  assertGolden('lag-watch-falling-behind.txt', renderLagWatch(result))
})

test('--watch screen: a terminal gets each frame on a cleared screen, a pipe frames separated by a blank line, --json one line each', () => {
  const result = assessWindow(GOLDEN_SERIES['falling-behind']!(), {...CONTEXT, lastMs: 2000})
  const frame = renderLagWatch(result)
  const capture = (isTTY: boolean, json: boolean): string => {
    let out = ''
    const screen = createLagWatchScreen({json, stream: {isTTY, write: (text) => ((out += text), true)}})
    screen.draw(result)
    screen.draw(result)
    return out
  }
  const frameOnTty = `\x1b[H\x1b[2J${frame}(Ctrl-C to stop)\n`
  assert.equal(capture(true, false), frameOnTty + frameOnTty)
  assert.equal(capture(false, false), `${frame}\n${frame}`)
  const lines = capture(true, true).split('\n')
  assert.equal(lines.length, 3)
  assert.equal(lines[2], '')
  assert.equal(JSON.parse(lines[0]!).schema, 'ferrydiag.lag')
  assert.deepEqual(JSON.parse(lines[1]!), JSON.parse(lines[0]!))
})
