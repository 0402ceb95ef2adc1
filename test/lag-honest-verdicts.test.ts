// Honest lag verdicts on seeded inputs: healthy and idle only with evidence that events flow end to end,
// unknown (with what was missing) otherwise; --source alone measures the source, not the pipeline. Also
// the unknown wording names the flag or command that would measure what was missing.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {assessLag} from '../src/analyze/lag-verdict.js'
import {assessWindow} from '../src/collect/lag-result.js'
import type {ProbesUse} from '../src/model/probes.js'
import type {WindowSample} from '../src/collect/sample-window.js'
import {renderLagText} from '../src/render/lag-text.js'
import {makePipelineSeries, makeSnapshot} from './helpers/generate-samples.js'
import {describeCatchUp, describeLagReason} from '../src/render/lag-wording.js'

const START = 1_700_000_060_000

test('an agent with no stages (injected by stacks) and no source: unknown, not idle', () => {
  const empty = [0, 1000, 2000].map((dt) => makeSnapshot({takenAtMs: START + dt}))
  const report = assessLag({snapshots: empty})
  assert.equal(report.verdict, 'unknown', describeLagReason(report.reason, report.bottleneck))
  assert.deepEqual(report.missing, ['pipeline', 'source'])
})

test('--source alone on a producing source: unknown (the pipeline was not measured), never healthy', () => {
  const readings = [0, 1000, 2000, 3000].map((dt) => ({
    atMs: START + dt,
    status: {name: '--source', kind: 'mysql' as const, end: {file: 'binlog.000003', offset: 1000 + dt * 50}},
  }))
  const report = assessLag({sourceStatuses: readings, sourceRowCounts: readings.map((r, i) => ({atMs: r.atMs, rows: i * 428}))})
  assert.equal(report.verdict, 'unknown', describeLagReason(report.reason, report.bottleneck))
  assert.deepEqual(report.missing, ['pipeline'])
  assert.equal(Math.round(report.source!.eventsPerSec!), 428)
})

test('healthy without a source only when the streamer is current and the writer moves what it reads', () => {
  const flowing = makePipelineSeries({
    startMs: START,
    count: 5,
    stepMs: 1000,
    stages: [
      {name: 'binlog streamer', busyShare: 0.1, idleShare: 0.9, backPressuredShare: 0, itemsPerSec: 180, transactionLagMs: () => 700},
      {name: 'batch writer', busyShare: 0.3, idleShare: 0.7, backPressuredShare: 0, itemsPerSec: 180},
    ],
  })
  const report = assessLag({snapshots: flowing})
  assert.equal(report.verdict, 'healthy', describeLagReason(report.reason, report.bottleneck))
  assert.deepEqual(report.flow, ['streamer-current-and-writer-keeps-up'])

  // The same stages without event timestamps: nothing ties them to the source's pace.
  const untimed = makePipelineSeries({
    startMs: START,
    count: 5,
    stepMs: 1000,
    stages: [
      {name: 'binlog streamer', busyShare: 0.1, idleShare: 0.9, backPressuredShare: 0, itemsPerSec: 180},
      {name: 'batch writer', busyShare: 0.3, idleShare: 0.7, backPressuredShare: 0, itemsPerSec: 180},
    ],
  })
  const unknown = assessLag({snapshots: untimed})
  assert.equal(unknown.verdict, 'unknown', describeLagReason(unknown.reason, unknown.bottleneck))
  assert.deepEqual(unknown.missing, ['source', 'end-to-end'])
})

test('a quiet source without --source: the streamer\'s ageing newest event is not falling behind', () => {
  const quiet = makePipelineSeries({
    startMs: START,
    count: 5,
    stepMs: 1000,
    stages: [
      {name: 'binlog streamer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false, state: 'idle', transactionLagMs: (e) => 30_000 + e},
      {name: 'batch writer', busyShare: 0, idleShare: 1, backPressuredShare: 0, itemsPerSec: 0, progressing: false, state: 'idle'},
    ],
  })
  const report = assessLag({snapshots: quiet})
  assert.equal(report.verdict, 'unknown', describeLagReason(report.reason, report.bottleneck))
  assert.deepEqual(report.missing, ['source'])
})

test('the writer keeping up with a measured source is end-to-end evidence; falling short is not healthy', () => {
  const series = (writerPerSec: number) =>
    makePipelineSeries({
      startMs: START,
      count: 5,
      stepMs: 1000,
      stages: [
        {name: 'binlog streamer', busyShare: 0.1, idleShare: 0.9, backPressuredShare: 0, itemsPerSec: 500},
        {name: 'batch writer', busyShare: 0.4, idleShare: 0.6, backPressuredShare: 0, itemsPerSec: writerPerSec},
      ],
      source: {eventsPerSec: 500, bytesPerEvent: 100},
    })
  const keeps = assessLag({snapshots: series(500)})
  assert.equal(keeps.verdict, 'healthy', describeLagReason(keeps.reason, keeps.bottleneck))
  assert.ok(keeps.flow.includes('writer-keeps-up-with-source'))
  const short = assessLag({snapshots: series(100)})
  assert.notEqual(short.verdict, 'healthy', describeLagReason(short.reason, short.bottleneck))
})

function windowOf(samples: WindowSample[]) {
  return {samples, startedAtMs: START, endedAtMs: START + 1000, endedBy: 'duration' as const, problems: [], agentAbsent: true}
}

test('lag on a process nothing can see: unknown, and the text names the command that would measure it', () => {
  const probes: ProbesUse = {state: 'nothing-found', libraries: [], adopted: 0, queryObjectsMs: null, installMs: 2, installedAtMs: START}
  const result = assessWindow(windowOf([{atMs: START, snapshot: null}]), {
    requestedMs: 5000, inspect: '127.0.0.1:9229', pid: 42, attached: true, attachedVia: 'inspect', probes,
  })
  assert.equal(result.verdict, 'unknown')
  assert.deepEqual(result.missing, ['pipeline', 'source'])
  const text = renderLagText(result)
  assert.match(text, /Verdict: UNKNOWN/)
  assert.match(text, /ferrydiag stacks --heap --inspect 127\.0\.0\.1:9229/)
  assert.match(text, /--source DSN/)

  const off = assessWindow(windowOf([{atMs: START, snapshot: null}]), {
    requestedMs: 5000, inspect: '127.0.0.1:9229', pid: 42, attached: true, attachedVia: 'inspect', probes: {...probes, state: 'off'},
  })
  assert.match(renderLagText(off), /drop --no-probes/)
})
