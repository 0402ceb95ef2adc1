// Tests for the stacks analyses: grouping, and which findings each recorded/constructed snapshot gets
// (including none for healthy and slow-target pipelines), plus the edges of each rule.

import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {findDeadlock} from '../src/analyze/find-deadlock.js'
import {DEFAULT_LONG_WAIT_MS, findLongWaits} from '../src/analyze/find-long-waits.js'
import {findNeverResumes, findOrphanChannels} from '../src/analyze/find-orphan-channels.js'
import {groupStacks} from '../src/analyze/group-stacks.js'
import {buildStacksDump, findStacksProblems} from '../src/analyze/stacks-findings.js'
import type {DumpSource} from '../src/model/dump.js'
import type {Finding} from '../src/model/findings.js'
import type {AgentSnapshot, HolderInfo, TaskRecord} from '../src/model/snapshot.js'
import {
  frameIn,
  loadSnapshotFixture,
  makeChannel,
  makeSnapshot,
  makeStage,
  makeTask,
} from './helpers/make-snapshot.js'

const PRELOADED: DumpSource = {kind: 'agent-preloaded', notes: []}
const MIN = 60_000

function kinds(findings: readonly Finding[]): string[] {
  return findings.map((finding) => `${finding.severity}:${finding.kind}`)
}

function errorsAndWarnings(findings: readonly Finding[]): Finding[] {
  return findings.filter((finding) => finding.severity !== 'info')
}

const streamerSend = frameIn('binlog-streamer', 'BinlogStreamer.run', 29, 30)
const writerReceive = frameIn('batch-writer', 'BatchWriter.run', 57, 49)

/** streamer -> 'binlog-events' #3 (live receiver) -> writer, with the given tasks and stage states. */
function pipelineSnapshot(options: {
  tasks: TaskRecord[]
  length?: number
  streamer?: 'busy' | 'idle' | 'back-pressured'
  writer?: 'busy' | 'idle' | 'back-pressured'
  stateForMs?: number
}): AgentSnapshot {
  const blockedSenders = options.tasks.filter((task) => task.kind === 'channel-send').length
  const blockedReceivers = options.tasks.filter((task) => task.kind === 'channel-receive').length
  return makeSnapshot({
    channels: [
      makeChannel({
        id: 3,
        name: 'binlog-events',
        length: options.length ?? 0,
        itemsIn: 5000,
        itemsOut: 5000 - (options.length ?? 0),
        sendersEver: 1,
        receiversEver: 1,
        blockedSenders,
        blockedReceivers,
      }),
    ],
    tasks: options.tasks,
    stages: [
      makeStage({name: 'binlog-streamer', state: options.streamer ?? 'idle', forMs: options.stateForMs ?? 1000}),
      makeStage({name: 'binlog-writer', state: options.writer ?? 'idle', forMs: options.stateForMs ?? 1000}),
    ],
  })
}

describe('groupStacks', () => {
  it('groups identical waits, most tasks first, with wait range and ids', () => {
    const groups = groupStacks(loadSnapshotFixture('healthy').tasks)
    assert.equal(groups.length, 2)
    assert.equal(groups[0]!.count, 4)
    assert.equal(groups[0]!.kind, 'channel-send')
    assert.equal(groups[0]!.stageName, 'data-iterator')
    assert.deepEqual(groups[0]!.taskIds, [41, 42, 43, 44])
    assert.deepEqual(groups[0]!.channelIds, [4])
    assert.equal(groups[0]!.minWaitMs, 97)
    assert.equal(groups[0]!.maxWaitMs, 221)
    assert.equal(groups[0]!.totalWaitMs, 221 + 180 + 142 + 97)
    assert.equal(groups[1]!.count, 1)
    assert.equal(groups[1]!.kind, 'channel-receive')
  })

  it('keeps waits apart when one frame differs, and joins same-named instances into one group', () => {
    const tasks = [
      makeTask({id: 1, kind: 'channel-send', channelId: 3, channelName: 'ev', stack: [streamerSend]}),
      makeTask({id: 2, kind: 'channel-send', channelId: 5, channelName: 'ev', stack: [streamerSend]}),
      makeTask({id: 3, kind: 'channel-send', channelId: 3, channelName: 'ev', stack: [{...streamerSend, line: 30}]}),
      makeTask({id: 4, kind: 'channel-send', channelId: 3, channelName: 'ev', state: 'never-resumes', stack: [streamerSend]}),
    ]
    const groups = groupStacks(tasks)
    assert.equal(groups.length, 3)
    assert.deepEqual(groups[0]!.taskIds, [1, 2])
    assert.deepEqual(groups[0]!.channelIds, [3, 5])
  })

  it('separates heap-route promises by what holds them', () => {
    const site = [frameIn('batch-writer', 'BatchWriter.flush', 120, 11)]
    const tasks: TaskRecord[] = [
      {...makeTask({id: 1, kind: 'promise', stack: site}), holder: {kind: 'timer', path: 'Timeout._onTimeout'}},
      {...makeTask({id: 2, kind: 'promise', stack: site}), holder: {kind: 'timer', path: 'Timeout._onTimeout'}},
      {...makeTask({id: 3, kind: 'promise', stack: site}), holder: {kind: 'event-listener', objectClass: 'EventEmitter', eventName: 'x'}},
    ]
    const groups = groupStacks(tasks)
    assert.deepEqual(
      groups.map((group) => [group.holder?.kind, group.taskIds]),
      [
        ['timer', [1, 2]],
        ['event-listener', [3]],
      ],
    )
  })

  it('filters by minWaitMs and lists every task separately when ungrouped, by id', () => {
    const tasks = loadSnapshotFixture('healthy').tasks
    const filtered = groupStacks(tasks, {minWaitMs: 150})
    assert.deepEqual(filtered.flatMap((group) => group.taskIds).sort(), [41, 42, 47])
    const ungrouped = groupStacks(tasks, {ungrouped: true})
    assert.deepEqual(ungrouped.map((group) => group.taskIds), [[41], [42], [43], [44], [47]])
    assert.ok(ungrouped.every((group) => group.count === 1))
  })

  it('rejects a negative or non-finite minWaitMs', () => {
    assert.throws(() => groupStacks([], {minWaitMs: -1}), RangeError)
    assert.throws(() => groupStacks([], {minWaitMs: Number.NaN}), RangeError)
  })
})

describe('findings on the fixtures', () => {
  it('init-race-placeholder: one uninitialized-channel-send naming both instances, nothing else', () => {
    const findings = findStacksProblems(loadSnapshotFixture('init-race-placeholder'))
    assert.deepEqual(kinds(findings), ['error:uninitialized-channel-send'])
    const [finding] = findings
    assert.equal(finding!.evidence.shape, 'replaced-buffer')
    assert.deepEqual(finding!.evidence.taskIds, [12, 13])
    assert.deepEqual(finding!.evidence.channels, ['binlog-events #3', 'binlog-events #7'])
    assert.match(finding!.summary, /sending into 'binlog-events' #3 .*never had a receiver/)
    assert.match(finding!.summary, /receiving from a different 'binlog-events' #7 \(the buffer was replaced/)
    assert.equal(finding!.evidence.sites![0], 'file:///srv/ferry/dist/fixtures/pipeline/binlog-streamer.js:29:30')
    assert.match(finding!.suggestion, /#331/)
  })

  it('init-race-slot: unfilled slot as the error, the resulting stall only as info', () => {
    const findings = findStacksProblems(loadSnapshotFixture('init-race-slot'))
    assert.deepEqual(kinds(findings), ['error:uninitialized-channel-send', 'info:deadlock'])
    assert.equal(findings[0]!.evidence.shape, 'unfilled-slot')
    assert.deepEqual(findings[0]!.evidence.taskIds, [21, 22])
    assert.match(findings[0]!.summary, /slot 'binlog-events' #2, which has never been filled/)
    assert.match(findings[1]!.summary, /consequence of the uninitialized-channel-send finding/)
  })

  it('collected-while-blocked: one never-resumes error for the orphaned receiver', () => {
    const findings = findStacksProblems(loadSnapshotFixture('collected-while-blocked'))
    assert.deepEqual(kinds(findings), ['error:never-resumes'])
    assert.deepEqual(findings[0]!.evidence.taskIds, [31])
    assert.equal(findings[0]!.evidence.reason, 'channel-collected')
    assert.match(findings[0]!.summary, /'binlog-events' #3, which was garbage-collected while it waited/)
  })

  it('deadlock: a deadlock error covering both stages, and no long-wait repeats', () => {
    const findings = findStacksProblems(loadSnapshotFixture('deadlock'))
    assert.deepEqual(kinds(findings), ['error:deadlock'])
    assert.deepEqual(findings[0]!.evidence.taskIds, [51, 52])
    assert.deepEqual(findings[0]!.evidence.channels, ['binlog-events #3', 'position-acks #4'])
    assert.match(findings[0]!.summary, /'position-acks' #4 \(full\)/)
  })

  it('healthy and slow-target: no finding at all, whatever the thresholds', () => {
    for (const name of ['healthy', 'slow-target'] as const) {
      const snapshot = loadSnapshotFixture(name)
      assert.deepEqual(findStacksProblems(snapshot), [], name)
      // An operator's --min-wait of a second still warns about nothing here: every wait is shorter.
      assert.deepEqual(errorsAndWarnings(findStacksProblems(snapshot, {minWaitMs: 2000})), [], name)
    }
  })
})

describe('uninitialized-channel-send rules', () => {
  const orphanSend = (waitMs: number) =>
    makeSnapshot({
      channels: [
        makeChannel({id: 3, name: 'binlog-events', length: 100, itemsIn: 100, sendersEver: 1, blockedSenders: 1}),
      ],
      tasks: [makeTask({id: 1, kind: 'channel-send', channelId: 3, channelName: 'binlog-events', waitMs, stack: [streamerSend]})],
    })

  it('waits stuckAfterMs before calling a never-received buffer an orphan (a consumer may be starting)', () => {
    assert.deepEqual(findOrphanChannels(orphanSend(4000), {stuckAfterMs: 10_000}), [])
    const findings = findOrphanChannels(orphanSend(12_000), {stuckAfterMs: 10_000})
    assert.equal(findings.length, 1)
    assert.equal(findings[0]!.evidence.shape, 'never-received')
    assert.match(findings[0]!.summary, /BinlogStreamer\.run has been sending into 'binlog-events' #3 for 12 s/)
  })

  it('reports the replaced-buffer shape at once, even for a short wait', () => {
    const snapshot = orphanSend(500)
    snapshot.channels.push(makeChannel({id: 7, name: 'binlog-events', receiversEver: 1, blockedReceivers: 1}))
    snapshot.tasks.push(makeTask({id: 2, kind: 'channel-receive', channelId: 7, channelName: 'binlog-events', waitMs: 499}))
    const findings = findOrphanChannels(snapshot, {stuckAfterMs: 10_000})
    assert.equal(findings.length, 1)
    assert.equal(findings[0]!.evidence.shape, 'replaced-buffer')
  })

  it('does not call a buffer with any receiver history an orphan', () => {
    const snapshot = orphanSend(10 * MIN)
    snapshot.channels[0]!.receiversEver = 1
    snapshot.channels[0]!.itemsOut = 1
    assert.deepEqual(findOrphanChannels(snapshot, {stuckAfterMs: 10_000}), [])
  })

  it('gives a slot time to be filled at startup', () => {
    const snapshot = makeSnapshot({
      channels: [makeChannel({id: 2, name: 'binlog-events', kind: 'slot', capacity: 0, filled: false})],
      tasks: [makeTask({id: 1, kind: 'slot-wait', channelId: 2, channelName: 'binlog-events', waitMs: 2000})],
    })
    assert.deepEqual(findOrphanChannels(snapshot, {stuckAfterMs: 10_000}), [])
    snapshot.tasks[0]!.waitMs = 11_000
    assert.equal(findOrphanChannels(snapshot, {stuckAfterMs: 10_000})[0]?.evidence.shape, 'unfilled-slot')
  })
})

describe('never-resumes rules', () => {
  it('adds that a collected buffer never had a receiver, when that is so', () => {
    const snapshot = makeSnapshot({
      channels: [makeChannel({id: 3, name: 'binlog-events', collected: true, length: 100, itemsIn: 100, sendersEver: 1})],
      tasks: [
        makeTask({id: 9, kind: 'channel-send', state: 'never-resumes', reason: 'channel-collected', channelId: 3, channelName: 'binlog-events', waitMs: 3 * MIN}),
      ],
    })
    const [finding] = findNeverResumes(snapshot)
    assert.match(finding!.summary, /garbage-collected while it waited: nothing can ever wake it \(waiting 3 min\); that buffer never had a receiver either/)
  })

  it('describes a heap-route promise with no resolver and what holds it', () => {
    const task = {
      ...makeTask({id: 4, kind: 'promise', state: 'never-resumes', reason: 'no-resolver', waitMs: 0, stack: [frameIn('batch-writer', 'BatchWriter.flush', 120, 11)]}),
      waitKnown: false,
      holder: {kind: 'waiting-task-only', functionName: 'BatchWriter.run'} satisfies HolderInfo,
    }
    const findings = findNeverResumes(makeSnapshot({tasks: [task]}))
    assert.equal(findings.length, 1)
    assert.equal(
      findings[0]!.summary,
      'BatchWriter.flush is awaiting a promise that nothing can settle: no resolve or reject function for it is reachable except through the waiting task itself',
    )
    assert.deepEqual(findings[0]!.evidence.channels, [])
    assert.deepEqual(findings[0]!.evidence.resolver, {kind: 'waiting-task-only', functionName: 'BatchWriter.run'})
    assert.equal(findings[0]!.evidence.waitMs, undefined, 'an unknown age is not reported as 0 ms')
  })

  it('groups waits of unknown age apart from known ones and keeps them past --min-wait', () => {
    const known = makeTask({id: 1, kind: 'promise', state: 'blocked', waitMs: 5000, stack: [frameIn('batch-writer', 'BatchWriter.flush', 120, 11)]})
    const unknown = {...known, id: 2, waitMs: 0, waitKnown: false}
    const [group] = groupStacks([known, unknown], {minWaitMs: 1000})
    assert.equal(group!.count, 2)
    assert.equal(group!.unknownWaitCount, 1)
    assert.equal(group!.minWaitMs, 5000)
    assert.equal(group!.maxWaitMs, 5000)
  })
})

describe('deadlock rule', () => {
  const deadlocked = () => loadSnapshotFixture('deadlock')

  it('needs every wait to have lasted stuckAfterMs', () => {
    assert.equal(findDeadlock(deadlocked(), {stuckAfterMs: 20 * MIN}), null)
    assert.equal(findDeadlock(deadlocked(), {stuckAfterMs: 10_000})?.severity, 'error')
  })

  it('is ruled out by a busy stage, or a stage that changed state recently', () => {
    const busy = deadlocked()
    busy.stages[1]!.state = 'busy'
    assert.equal(findDeadlock(busy, {stuckAfterMs: 10_000}), null)
    const recent = deadlocked()
    recent.stages[0]!.stateSinceMs = recent.takenAtMs - 2000
    assert.equal(findDeadlock(recent, {stuckAfterMs: 10_000}), null)
  })

  it('is ruled out by a used buffer with nobody waiting on it (items may still flow there)', () => {
    const snapshot = deadlocked()
    snapshot.channels.push(makeChannel({id: 8, name: 'verify-queue', itemsIn: 40, itemsOut: 38, length: 2, sendersEver: 1, receiversEver: 1}))
    assert.equal(findDeadlock(snapshot, {stuckAfterMs: 10_000}), null)
    snapshot.channels[2]!.closed = true
    assert.notEqual(findDeadlock(snapshot, {stuckAfterMs: 10_000}), null)
  })

  it('is ruled out by a stage with no buffer wait (it waits on its source, which can wake it)', () => {
    const snapshot = deadlocked()
    snapshot.stages.push(makeStage({name: 'inline-verifier', state: 'idle', forMs: 30 * MIN}))
    assert.equal(findDeadlock(snapshot, {stuckAfterMs: 10_000}), null)
  })

  it('needs a wait that holds items back: receivers idle on empty buffers are a pipeline without input', () => {
    const snapshot = makeSnapshot({
      channels: [makeChannel({id: 3, name: 'binlog-events', itemsIn: 10, itemsOut: 10, sendersEver: 1, receiversEver: 1, blockedReceivers: 1})],
      tasks: [makeTask({id: 1, kind: 'channel-receive', channelId: 3, channelName: 'binlog-events', waitMs: 30 * MIN})],
    })
    assert.equal(findDeadlock(snapshot, {stuckAfterMs: 10_000}), null)
  })

  it('never comes from plain promises alone (no buffer state to judge)', () => {
    const snapshot = makeSnapshot({tasks: [makeTask({id: 1, kind: 'promise', waitMs: 60 * MIN})]})
    assert.equal(findDeadlock(snapshot, {stuckAfterMs: 10_000}), null)
  })
})

describe('long-wait rule', () => {
  it('by default warns about a producer held back for a minute, not about an idle receiver', () => {
    const heldBack = pipelineSnapshot({
      tasks: [makeTask({id: 1, kind: 'channel-send', channelId: 3, channelName: 'binlog-events', stageName: 'binlog-streamer', waitMs: 90_000, stack: [streamerSend]})],
      length: 100,
      streamer: 'back-pressured',
      writer: 'busy',
    })
    const findings = findStacksProblems(heldBack)
    assert.deepEqual(kinds(findings), ['warning:long-wait'])
    assert.match(findings[0]!.summary, /stage 'binlog-streamer' has been sending into 'binlog-events' #3 for 1.5 min; it holds 100 of 100/)
    assert.equal(findings[0]!.evidence.thresholdMs, DEFAULT_LONG_WAIT_MS)

    const quietSource = pipelineSnapshot({
      tasks: [makeTask({id: 2, kind: 'channel-receive', channelId: 3, channelName: 'binlog-events', stageName: 'binlog-writer', waitMs: 5 * MIN, stack: [writerReceive]})],
      streamer: 'idle',
      writer: 'idle',
      stateForMs: 5 * MIN,
    })
    // The streamer is idle on its source (not on a buffer), so this is not a deadlock either.
    assert.deepEqual(findStacksProblems(quietSource), [])
    assert.deepEqual(kinds(findStacksProblems(quietSource, {minWaitMs: MIN})), ['warning:long-wait'])
    assert.deepEqual(findStacksProblems(quietSource, {minWaitMs: 0}), [])
  })

  it('does not warn about tasks an error already explains', () => {
    const snapshot = loadSnapshotFixture('init-race-placeholder')
    assert.deepEqual(findLongWaits(snapshot, {minWaitMs: 1000, coveredTaskIds: new Set([12, 13])}), [])
    assert.equal(findLongWaits(snapshot, {minWaitMs: 1000}).length, 2)
  })
})

describe('buildStacksDump', () => {
  it('records schema, thresholds and how many tasks --min-wait hid', () => {
    const dump = buildStacksDump(loadSnapshotFixture('healthy'), {source: PRELOADED, minWaitMs: 150})
    assert.equal(dump.schema, 'ferrydiag.stacks')
    assert.equal(dump.version, 2)
    assert.deepEqual(dump.thresholds, {minWaitMs: 150, longWaitMs: 150, stuckAfterMs: 10_000})
    assert.equal(dump.taskCount, 5)
    assert.equal(dump.hiddenTaskCount, 2)
    assert.equal(dump.grouped, true)
  })

  it('computes findings over all tasks, not only the shown ones', () => {
    const dump = buildStacksDump(loadSnapshotFixture('init-race-placeholder'), {source: PRELOADED, minWaitMs: 7000 * MIN})
    assert.equal(dump.groups.length, 0)
    assert.deepEqual(kinds(dump.findings), ['error:uninitialized-channel-send'])
  })

  it('applies mapLocation before analysis, without touching the snapshot', () => {
    const snapshot = loadSnapshotFixture('init-race-placeholder')
    const before = JSON.stringify(snapshot)
    const dump = buildStacksDump(snapshot, {
      source: PRELOADED,
      mapLocation: (frame) => ({...frame, url: frame.url.replace('/dist/', '/').replace(/\.js$/, '.ts'), line: frame.line + 4}),
    })
    assert.equal(JSON.stringify(snapshot), before)
    assert.equal(dump.groups[0]!.stack[0]!.url, 'file:///srv/ferry/fixtures/pipeline/binlog-streamer.ts')
    assert.equal(dump.findings[0]!.evidence.sites![0], 'file:///srv/ferry/fixtures/pipeline/binlog-streamer.ts:33:30')
  })

  it('rejects a negative stuckAfterMs', () => {
    assert.throws(() => buildStacksDump(loadSnapshotFixture('healthy'), {source: PRELOADED, stuckAfterMs: -5}), RangeError)
  })
})
