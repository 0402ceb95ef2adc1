// Stage accounting: busy / idle / back-pressured time (incl. the current state at snapshot time),
// channel waits switching the state only while really blocked, progress and bounded batch samples.
import assert from 'node:assert/strict'
import {describe, test} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'
import type {AgentApi} from '../src/agent/agent-core.cjs'
import {AGENT_GLOBAL_KEY, type AgentSnapshot, type StageRecord} from '../src/model/snapshot.js'
import {Channel, Stage} from '../src/runtime/index.js'

function snapshot(): AgentSnapshot {
  return (globalThis as Record<symbol, AgentApi>)[Symbol.for(AGENT_GLOBAL_KEY)].snapshot()
}

function stageNamed(snap: AgentSnapshot, name: string): StageRecord {
  const found = snap.stages.find((s) => s.name === name)
  assert.ok(found, `stage ${name} in snapshot`)
  return found
}

describe('Stage time accounting', () => {
  test('busy + idle + back-pressured add up to the wall time since creation', async () => {
    const t0 = performance.now()
    const stage = new Stage('wall')
    const t1 = performance.now()
    assert.equal(stage.state, 'idle')
    await sleep(40) // idle
    await stage.busy(() => sleep(60))
    const out = new Channel<number>('wall-out', 0)
    const sent = out.send(1, {stage}) // blocks: back-pressured
    await sleep(50)
    out.drain(1)
    await sent
    const input = new Channel<number>('wall-in', 0)
    const got = input.receive({stage}) // blocks: idle
    await sleep(30)
    await input.send(2)
    await got
    const t2 = performance.now()
    const rec = stageNamed(snapshot(), 'wall')
    const t3 = performance.now()
    const sum = rec.busyMs + rec.idleMs + rec.backPressuredMs
    assert.ok(sum >= t2 - t1 - 1 && sum <= t3 - t0 + 1, `sum ${sum} vs wall ${t2 - t1}..${t3 - t0}`)
    assert.ok(rec.busyMs >= 55, `busy ${rec.busyMs}`)
    assert.ok(rec.backPressuredMs >= 45, `back-pressured ${rec.backPressuredMs}`)
    assert.ok(rec.idleMs >= 65, `idle ${rec.idleMs}`)
    assert.equal(rec.state, 'idle')
  })

  test('the current state counts up to the snapshot', async () => {
    const stage = new Stage('in-progress')
    const leave = stage.enter('busy')
    const since = performance.now()
    await sleep(100)
    const rec = stageNamed(snapshot(), 'in-progress')
    assert.equal(rec.state, 'busy')
    assert.ok(rec.busyMs >= 99 && rec.busyMs <= performance.now() - since + 1, `busy ${rec.busyMs}`)
    assert.ok(Math.abs(rec.stateSinceMs - (performance.timeOrigin + since)) < 5)
    leave()
    assert.equal(stage.state, 'idle')
  })

  test('channel waits switch the state only while really blocked, then restore it', async () => {
    const stage = new Stage('switch')
    const ch = new Channel<number>('switch-ch', 1)
    const leave = stage.enter('busy')
    await ch.send(1, {stage}) // room in the buffer: no block, no switch
    assert.equal(stage.state, 'busy')
    const blocked = ch.send(2, {stage})
    assert.equal(stage.state, 'back-pressured')
    await ch.receive()
    await blocked
    assert.equal(stage.state, 'busy')
    await ch.receive({stage}) // an item is there: no switch
    assert.equal(stage.state, 'busy')
    const waiting = ch.receive({stage})
    assert.equal(stage.state, 'idle')
    await ch.send(3)
    await waiting
    assert.equal(stage.state, 'busy')
    const ac = new AbortController()
    const aborted = ch.receive({stage, signal: ac.signal})
    assert.equal(stage.state, 'idle')
    ac.abort()
    await assert.rejects(aborted)
    assert.equal(stage.state, 'busy', 'an aborted wait restores the state too')
    leave()
    assert.equal(stage.state, 'idle')
  })

  test('entries ending out of order do not leave a stale state', () => {
    const stage = new Stage('order')
    const leaveBusy = stage.enter('busy')
    const leaveBp = stage.enter('back-pressured')
    leaveBusy()
    assert.equal(stage.state, 'back-pressured')
    leaveBusy()
    leaveBp()
    assert.equal(stage.state, 'idle')
    assert.throws(() => stage.enter('sleeping' as never), RangeError)
  })

  test('busy() restores the state when fn throws', async () => {
    const stage = new Stage('throws')
    await assert.rejects(stage.busy(() => {
      throw new Error('boom')
    }), /boom/)
    assert.equal(stage.state, 'idle')
    assert.equal(await stage.busy(() => 5), 5)
  })
})

describe('Stage progress and batch samples', () => {
  test('progress accumulates items and keeps the newest timestamp and position', () => {
    const stage = new Stage('progress')
    stage.progress()
    stage.progress({items: 9, itemTimestampMs: 1_700_000_000_000, position: {file: 'bin.000007', offset: 4}})
    const rec = stageNamed(snapshot(), 'progress')
    assert.equal(rec.itemsHandled, 10)
    assert.equal(rec.lastItemTimestampMs, 1_700_000_000_000)
    assert.deepEqual(rec.position, {file: 'bin.000007', offset: 4})
    assert.ok(rec.lastProgressAtMs !== null && Math.abs(rec.lastProgressAtMs - Date.now()) < 1000)
    assert.throws(() => stage.progress({items: -1}), RangeError)
    assert.throws(() => stage.progress({position: {file: 7 as never, offset: 1}}), TypeError)
  })

  test('batch samples keep a bounded recent ring and a uniform reservoir since start', () => {
    const stage = new Stage('batches')
    const before = snapshot().samples
    const n = 10_000
    for (let i = 0; i < n; i++) stage.recordBatch({events: i, ms: 1 + i / 1000, ok: i % 10 !== 0})
    const samples = snapshot().samples
    assert.equal(samples.totalCount - before.totalCount, n)
    assert.equal(samples.totalFailed - before.totalFailed, n / 10)
    assert.equal(samples.recent.length, 2048)
    assert.equal(samples.reservoir.length, 1024)
    const recent = samples.recent.filter((s) => s.stageName === 'batches').map((s) => s.events)
    assert.deepEqual(recent, Array.from({length: 2048}, (_, i) => n - 2048 + i), 'newest samples, oldest first')
    // Uniform over all 10k: about a tenth of the reservoir comes from the first 1000 (warm-up) batches,
    // which the recent ring lost long ago.
    const early = samples.reservoir.filter((s) => s.stageName === 'batches' && s.events < 1000).length
    assert.ok(early >= 40 && early <= 200, `warm-up samples in reservoir: ${early}`)
    assert.throws(() => stage.recordBatch({events: -1, ms: 1, ok: true}), RangeError)
    assert.throws(() => stage.recordBatch({events: 1, ms: Number.NaN, ok: true}), RangeError)
  })
})
