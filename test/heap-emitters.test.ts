// The judgement of tasks awaiting an event (src/analyze/heap-emitters.ts buildEmitterReport), on plain
// data: what the heap graph said about each stream's write callback, and what the second look read.
// The graph walks themselves are exercised on real programs by wild-stacks.test.ts.

import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {buildEmitterReport, streamMoved, type EmitterWaitReport} from '../src/analyze/heap-emitters.js'
import type {HeapObservation, ObjectReading} from '../src/analyze/heap-split-queue.js'
import type {StreamState} from '../src/model/dump.js'

const PROMISE = 900
const SITE = '/srv/export.js:82:9'

function state(overrides: Partial<StreamState> = {}): StreamState {
  return {
    writableLength: 16,
    writableHighWaterMark: 16,
    writing: true,
    pendingCallbacks: 16,
    corked: 0,
    needDrain: true,
    ended: false,
    destroyed: false,
    errored: null,
    ...overrides,
  }
}

function sink(callbackHolder: 'none' | 'stream' | 'other', heapId = 10): EmitterWaitReport['streams'][number] {
  return {heapId, className: 'BatchSink', implementation: ['_write at /srv/sink.js:38:9'], callbackHolder, ...(callbackHolder === 'none' ? {} : {callbackHeldBy: 'Timeout'})}
}

function report(overrides: Partial<EmitterWaitReport> = {}): EmitterWaitReport {
  return {
    emitterHeapId: 10,
    className: 'BatchSink',
    eventName: 'drain',
    paths: ['sink'],
    taskIds: [1],
    sites: [SITE],
    promiseHeapIds: [PROMISE],
    streams: [sink('none')],
    ...overrides,
  }
}

/** A completed second look: streams read before and after, the awaited promise after. */
function look(streams: Record<number, [StreamState, StreamState]>, promiseState = 'pending', extra: Record<number, [ObjectReading, ObjectReading]> = {}): HeapObservation {
  const before = new Map<number, ObjectReading>()
  const after = new Map<number, ObjectReading>([[PROMISE, {alive: true, promiseState}]])
  for (const [id, [b, a]] of Object.entries(streams)) {
    before.set(Number(id), {alive: true, fields: {}, stream: b})
    after.set(Number(id), {alive: true, fields: {}, stream: a})
  }
  for (const [id, [b, a]] of Object.entries(extra)) {
    before.set(Number(id), b)
    after.set(Number(id), a)
  }
  return {elapsedMs: 2000, completed: true, before, after}
}

describe('streamMoved', () => {
  it('counts a completed write, not a new one, as progress', () => {
    assert.equal(streamMoved(state(), state()), false)
    assert.equal(streamMoved(state(), state({writableLength: 15, pendingCallbacks: 15})), true)
    assert.equal(streamMoved(state({writing: true}), state({writing: false})), true)
    // A producer that ignores back-pressure grows the buffer; nothing was written.
    assert.equal(streamMoved(state(), state({writableLength: 40, pendingCallbacks: 40})), false)
  })
})

describe('buildEmitterReport: streams', () => {
  it('a write in flight whose callback nothing holds, with no progress, is an error naming the await and _write', () => {
    const {findings, emitters} = buildEmitterReport([report()], look({10: [state(), state()]}))
    assert.equal(findings.length, 1)
    const [finding] = findings
    assert.equal(finding.kind, 'stalled-stream-write')
    assert.equal(finding.severity, 'error')
    assert.deepEqual(finding.evidence.sites, [SITE])
    assert.equal(finding.evidence.reason, 'callback-dropped')
    assert.match(finding.summary, /_write at \/srv\/sink\.js:38:9/)
    assert.match(finding.summary, /waiting ≥ 2\.0 s, no progress: a lower bound/)
    assert.equal(emitters[0].streams?.[0].moved, false)
    assert.equal(emitters[0].streams?.[0].state?.writableLength, 16)
  })

  it('a slow sink that completed a write during the look gets no finding', () => {
    const {findings} = buildEmitterReport([report()], look({10: [state(), state({writableLength: 12, pendingCallbacks: 12})]}))
    assert.deepEqual(findings, [])
  })

  it('a sink refilled to the same length at both ends of the look moved if a reading in between shows a write completed', () => {
    const observation = look({10: [state({writableLength: 19, pendingCallbacks: 19}), state({writableLength: 19, pendingCallbacks: 19})]})
    const between: ObjectReading = {alive: true, fields: {}, stream: state({writableLength: 3, pendingCallbacks: 3})}
    const {findings, emitters} = buildEmitterReport([report()], {...observation, samples: new Map([[10, [between]]])})
    assert.deepEqual(findings, [])
    assert.equal(emitters[0].moved, true)
    assert.equal(buildEmitterReport([report()], observation).emitters[0].moved, false)
  })

  it('no finding when the awaited promise settled, or without a second look', () => {
    assert.deepEqual(buildEmitterReport([report()], look({10: [state(), state()]}, 'fulfilled')).findings, [])
    const unobserved = buildEmitterReport([report()], undefined)
    assert.deepEqual(unobserved.findings, [])
    assert.equal(unobserved.emitters[0].moved, null)
    assert.equal(unobserved.emitters[0].streams?.[0].state, null)
  })

  it('a look cut short (target exited) confirms nothing', () => {
    const observation = {...look({10: [state(), state()]}), completed: false}
    assert.deepEqual(buildEmitterReport([report()], observation).findings, [])
  })

  it('names the stream down the pipes that dropped its callback, not the upstream one that keeps its own', () => {
    const head = {...sink('stream', 10), className: 'Transform', callbackHeldBy: 'Transform.<symbol kCallback>'}
    const filter = {...sink('none', 11), className: 'Transform', implementation: ['_transform at /srv/filter.js:25:12']}
    const loader = {...sink('none', 12), className: 'Writable'}
    const idle = state({writing: false, writableLength: 0, pendingCallbacks: 0, needDrain: false})
    const {findings} = buildEmitterReport(
      [report({streams: [head, filter, loader]})],
      look({10: [state(), state()], 11: [state(), state()], 12: [idle, idle]}),
    )
    assert.equal(findings.length, 1)
    assert.equal(findings[0].severity, 'error')
    assert.match(findings[0].summary, /_transform at \/srv\/filter\.js:25:12/)
  })

  it('a write whose callback a timer or socket still holds is only info; one the stream keeps with nothing reading it a warning', () => {
    const pending = buildEmitterReport([report({streams: [sink('other')]})], look({10: [state(), state()]}))
    assert.deepEqual(pending.findings.map((f) => [f.kind, f.severity]), [['stalled-stream-write', 'info']])
    const unread = buildEmitterReport([report({streams: [sink('stream')]})], look({10: [state(), state()]}))
    assert.deepEqual(unread.findings.map((f) => [f.severity, f.evidence.reason]), [['warning', 'readable-side-unread']])
  })

  it('a corked stream is a warning, a destroyed one awaited for drain an error', () => {
    const corked = state({writing: false, corked: 1})
    assert.deepEqual(
      buildEmitterReport([report({streams: [sink('other')]})], look({10: [corked, corked]})).findings.map((f) => [f.severity, f.evidence.reason]),
      [['warning', 'corked']],
    )
    const destroyed = state({writing: false, destroyed: true, errored: null})
    assert.deepEqual(
      buildEmitterReport([report({streams: [sink('other')]})], look({10: [destroyed, destroyed]})).findings.map((f) => [f.severity, f.evidence.reason]),
      [['error', 'destroyed']],
    )
  })
})

describe('buildEmitterReport: orphan emitters', () => {
  const orphan = report({
    className: 'Aggregator',
    eventName: 'flushed',
    paths: ['rotator.aggregator'],
    streams: [],
    emitterHeapId: 20,
    twin: {heapId: 21, className: 'Aggregator', paths: ['app.aggregator']},
  })
  const fields = (flushes: number): ObjectReading => ({alive: true, fields: {flushes}, listeners: {}})

  it('is an error naming both instances, the live one first, when nothing moved during the look', () => {
    const {findings} = buildEmitterReport([orphan], look({}, 'pending', {20: [fields(3), fields(3)], 21: [fields(40), fields(60)]}))
    assert.equal(findings.length, 1)
    const [finding] = findings
    assert.equal(finding.kind, 'uninitialized-channel-send')
    assert.equal(finding.severity, 'error')
    assert.equal(finding.evidence.shape, 'orphan-emitter')
    assert.deepEqual(finding.evidence.channels, ['app.aggregator', 'rotator.aggregator'])
    const instances = finding.evidence.instances as Array<{side: string; paths: string[]; fields: Record<string, number>}>
    assert.deepEqual(instances.map((i) => [i.side, i.paths[0], i.fields.flushes]), [['emit', 'app.aggregator', 60], ['wait', 'rotator.aggregator', 3]])
    assert.deepEqual(finding.evidence.sites, [SITE])
  })

  it('is a warning without a second look, and nothing when the awaited instance moved or the task resumed', () => {
    assert.deepEqual(buildEmitterReport([orphan], undefined).findings.map((f) => f.severity), ['warning'])
    assert.deepEqual(buildEmitterReport([orphan], look({}, 'pending', {20: [fields(3), fields(4)]})).findings, [])
    assert.deepEqual(buildEmitterReport([orphan], look({}, 'fulfilled', {20: [fields(3), fields(3)]})).findings, [])
  })
})
