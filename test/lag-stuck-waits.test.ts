// `lag` names the stuck waits when nothing moved in its window: stacks' analysis on the agent's records
// (reference pipeline, no heap snapshot) or on a heap snapshot under stacks' cost rules (wild programs that
// never imported ferrydiag: a p-queue program, a stream program, and the #331 zongji + mysql2 program on
// real MariaDB). The await line and finding kind come from each program's ground-truth header. A healthy
// program never triggers a heap snapshot; without --yes outside a terminal, or above --heap-max, none is
// taken and the verdict is still given.

import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'

import {nothingMoved, stuckAfterForWindow, stuckWaitFindings} from '../src/analyze/lag-stuck-waits.js'
import type {Finding} from '../src/model/findings.js'
import type {LagResult} from '../src/model/lag-result.js'
import type {LagStuckWaits} from '../src/model/lag-stuck-waits.js'
import {nextStep, renderStuckWaits} from '../src/render/lag-text.js'
import {sharedDatabase, startSourceAndTarget} from './helpers/mariadb.js'
import {pause, startPipeline, type RunningPipeline} from './helpers/pipeline-process.js'
import {runCli, type RunResult} from './helpers/run-node.js'
import {startWildPipeline} from './helpers/wild-mariadb.js'
import {listWildPrograms, startWildProgram, type WildProgram} from './helpers/wild.js'

/** The line `--heap`'s cost estimate starts with on stderr: printed only when a snapshot is considered. */
const ESTIMATE_LINE = /--heap: the target's JavaScript heap holds/

function program(file: string): WildProgram {
  const found = listWildPrograms().find((p) => p.file === file)
  assert.ok(found, `fixtures/wild/${file} is not in the corpus`)
  return found
}

async function lag(args: readonly string[]): Promise<{report: LagResult; run: RunResult}> {
  const run = await runCli(['lag', ...args, '--json'], {timeoutMs: 180_000})
  assert.ok(run.stdout.trim().startsWith('{'), `lag printed no JSON (exit ${run.code}): ${run.stderr}`)
  return {report: JSON.parse(run.stdout) as LagResult, run}
}

/** The finding of `kind` with a site at each of the program's stuck-at lines. */
function assertNamesStuckAt(report: LagResult, wild: WildProgram, kind: string): Finding {
  const waits = report.stuckWaits
  assert.ok(waits, `no stuckWaits: ${report.verdict} ${report.summary}`)
  assert.equal(waits.state, 'read', JSON.stringify(waits.problem))
  const finding = waits.findings.find((f) => f.kind === kind)
  assert.ok(finding, `no ${kind} finding among ${JSON.stringify(waits.findings.map((f) => [f.kind, f.evidence.sites]))}`)
  for (const at of wild.stuckAt) {
    const line = new RegExp(`/fixtures/wild/${at.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${at.line}:\\d+$`)
    assert.ok((finding.evidence.sites ?? []).some((site) => line.test(site)), `${at.file}:${at.line} not among ${JSON.stringify(finding.evidence.sites)}`)
  }
  for (const f of waits.findings) assert.equal(f.severity, 'error')
  return finding
}

describe('when lag looks for stuck waits (pure)', () => {
  const stage = (itemsHandled: number) => ({itemsHandled}) as LagResult['stages'][number]
  it('stuck, or no stage handled an item short of healthy/idle; never healthy or idle', () => {
    assert.equal(nothingMoved({verdict: 'stuck', stages: [stage(5)]}), true)
    assert.equal(nothingMoved({verdict: 'unknown', stages: [stage(0), stage(0)]}), true)
    assert.equal(nothingMoved({verdict: 'falling-behind', stages: [stage(0)]}), true)
    assert.equal(nothingMoved({verdict: 'unknown', stages: [stage(0), stage(3)]}), false)
    assert.equal(nothingMoved({verdict: 'unknown', stages: []}), false)
    assert.equal(nothingMoved({verdict: 'healthy', stages: [stage(0)]}), false)
    assert.equal(nothingMoved({verdict: 'idle', stages: [stage(0)]}), false)
  })
  it('keeps the error findings only, and lowers stacks\' stuck-after to the window', () => {
    const f = (kind: string, severity: Finding['severity']): Finding => ({kind, severity, summary: '', evidence: {}, suggestion: ''})
    const kept = stuckWaitFindings([f('never-resumes', 'error'), f('long-wait', 'warning'), f('not-measured', 'warning'), f('deadlock', 'info'), f('stalled-stream-write', 'error')])
    assert.deepEqual(kept.map((x) => x.kind), ['never-resumes', 'stalled-stream-write'])
    assert.equal(stuckAfterForWindow(10_000, 4000), 4000)
    assert.equal(stuckAfterForWindow(10_000, 60_000), 10_000)
    assert.equal(stuckAfterForWindow(10_000, 200), 1000)
  })
})

describe('the stuck waits in lag\'s text (render)', () => {
  const base: LagStuckWaits = {route: 'heap-snapshot', state: 'read', findings: [], tasksSeen: 3, heapEstimate: null, heapSnapshotMs: 1500, problem: null}
  const finding: Finding = {
    kind: 'never-resumes',
    severity: 'error',
    summary: 'checkpoint awaits a promise nothing can settle',
    evidence: {sites: ['file:///app/a.mjs:69:5', 'file:///app/b.mjs:1:1', 'file:///app/c.mjs:2:2', 'file:///app/d.mjs:3:3', 'file:///app/e.mjs:4:4']},
    suggestion: 'keep one resolver per waiter',
  }
  it('names each finding\'s kind, summary, first sites and suggestion; the next step points to stacks --heap', () => {
    const lines = renderStuckWaits({...base, findings: [finding]})
    assert.equal(lines[0], "Stuck waits (stacks' analysis, from a heap snapshot taken in 1.5 s):")
    assert.equal(lines[1], '  * never-resumes: checkpoint awaits a promise nothing can settle')
    assert.equal(lines[2], '      at file:///app/a.mjs:69:5')
    assert.ok(lines.includes('      (1 more site(s) in --json)'), lines.join('\n'))
    assert.equal(lines.at(-1), '    -> keep one resolver per waiter')
    const result = {verdict: 'stuck', process: {attachedVia: 'pid', pid: 42, inspect: null}, stuckWaits: {...base, findings: [finding]}} as unknown as LagResult
    assert.match(nextStep(result) ?? '', /`ferrydiag stacks --heap --pid 42`/)
  })
  it('says why none were read: no finding, not confirmed (with the cost and the flags), refused (the reason)', () => {
    assert.match(renderStuckWaits(base)[0], /none that can never complete among 3 suspended task/)
    const estimate = {usedHeapBytes: 5e6, stallMs: 300, stallMsLow: 100, stallMsHigh: 2000, extraMemoryBytes: 35 * 1024 * 1024, extraMemoryBytesLow: 1, extraMemoryBytesHigh: 2}
    assert.match(renderStuckWaits({...base, route: 'none', state: 'not-confirmed', heapEstimate: estimate, heapSnapshotMs: null})[0], /^Stuck waits: not read: .*about 300 ms .*35 MiB.*--heap --yes/)
    const refused = renderStuckWaits({...base, route: 'none', state: 'refused', heapSnapshotMs: null, problem: {code: 'heapTooLarge', message: 'Refusing the heap snapshot: too big.', suggestion: 'Raise --heap-max.'}})
    assert.deepEqual(refused, ['Stuck waits: not read: Refusing the heap snapshot: too big.', '  -> Raise --heap-max.'])
  })
})

describe('lag names the stuck waits of wild queue and stream programs (heap route)', () => {
  it('pqueue-checkpoint-flush: --heap --yes names never-resumes at its await line; without --yes, or above --heap-max, no snapshot and the verdict stands', {timeout: 600_000}, async (t) => {
    const wild = program('pqueue-checkpoint-flush.mjs')
    const child = await startWildProgram(wild, {t})
    const inspect = `127.0.0.1:${child.inspectPort}`

    const {report, run} = await lag(['--inspect', inspect, '--duration', '3s', '--heap', '--yes'])
    assert.equal(report.verdict, 'stuck', report.summary)
    assert.equal(report.stuckWaits?.route, 'heap-snapshot')
    assertNamesStuckAt(report, wild, 'never-resumes')
    assert.ok(report.stuckWaits!.heapEstimate!.usedHeapBytes > 0)
    assert.ok(report.stuckWaits!.heapSnapshotMs! > 0)
    assert.match(run.stderr, ESTIMATE_LINE, 'the estimate is shown before the snapshot')

    // Not a terminal and no --yes: nothing is taken, the report says what it would cost and how to allow it.
    const declined = await lag(['--inspect', inspect, '--duration', '2s', '--heap'])
    assert.equal(declined.report.verdict, 'stuck')
    assert.equal(declined.report.stuckWaits?.state, 'not-confirmed')
    assert.equal(declined.report.stuckWaits?.heapSnapshotMs, null)
    assert.deepEqual(declined.report.stuckWaits?.findings, [])
    assert.match(declined.run.stderr, ESTIMATE_LINE)
    const text = await runCli(['lag', '--inspect', inspect, '--duration', '2s'], {timeoutMs: 120_000})
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^Verdict: STUCK/m)
    assert.match(text.stdout, /^Stuck waits: not read: naming them takes a heap snapshot .*--heap --yes/m)
    assert.doesNotMatch(text.stderr, ESTIMATE_LINE, 'without --heap, a script is not even shown the offer')

    // Above the ceiling: refused with the reason, the verdict still given, exit 0.
    const refused = await lag(['--inspect', inspect, '--duration', '2s', '--heap', '--yes', '--heap-max', '1MB'])
    assert.equal(refused.run.code, 0, refused.run.stderr)
    assert.equal(refused.report.verdict, 'stuck')
    assert.equal(refused.report.stuckWaits?.state, 'refused')
    assert.equal(refused.report.stuckWaits?.problem?.code, 'heapTooLarge')
    assert.equal(refused.report.stuckWaits?.heapSnapshotMs, null)
    const refusedText = await runCli(['lag', '--inspect', inspect, '--duration', '2s', '--heap', '--yes', '--heap-max', '1MB'], {timeoutMs: 120_000})
    assert.match(refusedText.stdout, /^Stuck waits: not read: Refusing the heap snapshot: .*above the 1 MiB ceiling/m)
    assert.ok(child.target.isAlive(), 'the target survived')
  })

  it('transform-filter-stall: --heap --yes names stalled-stream-write at the await on drain', {timeout: 300_000}, async (t) => {
    const wild = program('transform-filter-stall.mjs')
    const child = await startWildProgram(wild, {t})
    const {report} = await lag(['--inspect', `127.0.0.1:${child.inspectPort}`, '--duration', '3s', '--heap', '--yes'])
    assert.equal(report.verdict, 'stuck', report.summary)
    assertNamesStuckAt(report, wild, 'stalled-stream-write')
  })

  it('a healthy program never triggers a heap snapshot, even with --heap --yes', {timeout: 300_000}, async (t) => {
    const wild = program('fastq-row-batches.cjs')
    assert.equal(wild.lag, 'healthy')
    const child = await startWildProgram(wild, {t})
    const {report, run} = await lag(['--inspect', `127.0.0.1:${child.inspectPort}`, '--duration', '3s', '--heap', '--yes'])
    assert.equal(report.verdict, 'healthy', report.summary)
    assert.equal(report.stuckWaits, undefined)
    assert.doesNotMatch(run.stderr, ESTIMATE_LINE)
  })
})

const pipelines: RunningPipeline[] = []
after(async () => {
  await Promise.all(pipelines.map((p) => p.stop('SIGKILL').catch(() => undefined)))
})

describe("lag names the stuck waits from the agent's own records (ferrydiag/runtime pipeline)", () => {
  it('init-race (never-created slot): uninitialized-channel-send at the streamer, with no heap snapshot although --heap --yes allows one', {timeout: 300_000}, async () => {
    const p = await startPipeline(['--scenario=init-race', '--race-shape=never-created', '--simulate'])
    pipelines.push(p)
    await pause(2000)
    const {report, run} = await lag(['--inspect', p.fields.inspect, '--duration', '2s', '--heap', '--yes'])
    assert.equal(report.verdict, 'stuck', report.summary)
    assert.equal(report.stuckWaits?.route, 'agent-records', JSON.stringify(report.stuckWaits))
    assert.equal(report.stuckWaits?.heapEstimate, null)
    assert.equal(report.stuckWaits?.heapSnapshotMs, null)
    assert.doesNotMatch(run.stderr, ESTIMATE_LINE)
    const finding = report.stuckWaits!.findings.find((f) => f.kind === 'uninitialized-channel-send')
    assert.ok(finding, JSON.stringify(report.stuckWaits!.findings))
    assert.ok((finding.evidence.sites ?? []).some((site) => /binlog-streamer\.[jt]s:\d+:\d+$/.test(site)), JSON.stringify(finding.evidence.sites))
  })
})

const db = sharedDatabase(() => startSourceAndTarget())
after(() => db.stop())

describe('lag names the #331 wait of the zongji + mysql2 program on MariaDB (heap route)', () => {
  it('cdc-late-queue: stuck, with uninitialized-channel-send naming both await sites of the split queue', {timeout: 600_000}, async (t) => {
    const servers = await db.get(t)
    if (!servers) return
    const wild = program('cdc-late-queue.mjs')
    const pipeline = await startWildPipeline(wild, {t, servers})
    const inspect = `127.0.0.1:${pipeline.program.inspectPort}`
    const {report} = await lag(['--inspect', inspect, '--source', servers.source.replicationDsn, '--duration', '3s', '--heap', '--yes'])
    assert.equal(report.verdict, 'stuck', report.summary)
    assert.equal(report.probes?.state, 'used')
    assert.equal(report.stuckWaits?.route, 'heap-snapshot')
    assertNamesStuckAt(report, wild, 'uninitialized-channel-send')
  })
})
