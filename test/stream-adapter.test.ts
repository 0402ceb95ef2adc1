// The stream adapter: a real Writable with a small highWaterMark and a slow _write, seen as a bounded
// buffer whose parked writes are 'stream-write' tasks.
import assert from 'node:assert/strict'
import {Writable} from 'node:stream'
import {describe, test} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'
import type {AgentApi} from '../src/agent/agent-core.cjs'
import {AGENT_GLOBAL_KEY, type AgentSnapshot} from '../src/model/snapshot.js'
import {ChannelClosedError, Stage, instrumentWritable} from '../src/runtime/index.js'

function snapshot(): AgentSnapshot {
  return (globalThis as Record<symbol, AgentApi>)[Symbol.for(AGENT_GLOBAL_KEY)].snapshot()
}

/** A byte stream that takes delayMs per chunk, and fails on a chunk equal to failOn. */
function slowSink(received: string[], delayMs: number, failOn?: string): Writable {
  return new Writable({
    highWaterMark: 8,
    write(chunk: Buffer, _encoding, callback) {
      setTimeout(() => {
        if (chunk.toString() === failOn) callback(new Error(`rejected ${failOn}`))
        else {
          received.push(chunk.toString())
          callback()
        }
      }, delayMs)
    },
  })
}

describe('instrumentWritable', () => {
  test('a write refused by the stream parks until drain, recorded as a stream-write task', async () => {
    const received: string[] = []
    const sink = slowSink(received, 30)
    const out = instrumentWritable('sink', sink)
    assert.equal(out.record.kind, 'stream')
    assert.equal(out.record.capacity, 8)
    await out.write('aaaa') // 4 of 8 bytes: accepted
    let parked = true
    async function writeBehindBuffer(): Promise<void> {
      await out.write('bbbb') // reaches the highWaterMark: parks
      parked = false
    }
    // The parking write runs synchronously up to its first await: the stream turns full, then the waiter
    // (with its captured stack) is registered. Under load that span is measurable, so it is timed here.
    const parkingStarted = performance.now()
    const done = writeBehindBuffer()
    const parkingMs = performance.now() - parkingStarted
    // Only a microtask later (no timer can run in between, however late the machine): still parked.
    await Promise.resolve()
    assert.equal(parked, true)
    const snap = snapshot()
    const rec = snap.channels.find((c) => c.name === 'sink')
    assert.equal(rec?.blockedSenders, 1)
    assert.ok((rec?.length ?? 0) >= 4)
    const task = snap.tasks.find((t) => t.channelName === 'sink')
    assert.equal(task?.kind, 'stream-write')
    assert.equal(task?.stack[0].functionName, 'writeBehindBuffer')
    await done
    assert.equal(parked, false)
    await new Promise<void>((resolve) => sink.end(resolve))
    const after = out.record
    assert.equal(after.blockedSenders, 0)
    assert.ok(after.sendBlockedMs >= 25, `blocked ${after.sendBlockedMs}`)
    // Full from the refused write until 'drain'; blocked from the waiter's registration until then: they
    // differ by at most the synchronous parking span measured above (was a fixed 5 ms, late on a busy machine).
    assert.ok(
      after.fullMs >= 25 && after.fullMs <= after.sendBlockedMs + parkingMs + 1,
      `full ${after.fullMs}, blocked ${after.sendBlockedMs}, parking took ${parkingMs.toFixed(1)} ms`,
    )
    assert.equal(after.itemsIn, 2)
    assert.equal(after.itemsOut, 2)
    assert.equal(after.length, 0)
    assert.ok(after.fillItemMs > 0)
    assert.deepEqual(received, ['aaaa', 'bbbb'])
  })

  test('a writer loop delivers everything in order and its stage shows back-pressure', async () => {
    const received: string[] = []
    const out = instrumentWritable('loop-sink', slowSink(received, 3))
    const stage = new Stage('stream-writer')
    const chunks = Array.from({length: 20}, (_, i) => `c${String(i).padStart(3, '0')}`)
    for (const c of chunks) await out.write(c, {stage})
    // The last chunks are still being written by the sink: wait for them, not for a fixed time.
    for (let i = 0; i < 1000 && received.length < chunks.length; i++) await sleep(5)
    assert.deepEqual(received, chunks)
    const st = snapshot().stages.find((s) => s.name === 'stream-writer')
    assert.ok((st?.backPressuredMs ?? 0) > 5, `back-pressured ${st?.backPressuredMs}`)
    assert.equal(out.record.sendersEver, 1)
  })

  test('an error while parked rejects the write with the stream error', async () => {
    const sink = slowSink([], 10, 'bad!')
    sink.on('error', () => {})
    const out = instrumentWritable('failing-sink', sink)
    await out.write('bad!')
    await assert.rejects(out.write('next'), /rejected bad!/)
    await assert.rejects(out.write('more'), /rejected bad!/)
    assert.equal(out.record.blockedSenders, 0)
  })

  test('destroy while parked rejects with ChannelClosedError; abort removes the waiter', async () => {
    const sink = slowSink([], 50)
    const out = instrumentWritable('closing-sink', sink)
    await out.write('1234')
    const parked = out.write('5678')
    sink.destroy()
    await assert.rejects(parked, ChannelClosedError)
    assert.equal(out.record.closed, true)
    await assert.rejects(out.write('x'), ChannelClosedError)

    const sink2 = slowSink([], 50)
    const out2 = instrumentWritable('aborting-sink', sink2)
    await out2.write('1234')
    const ac = new AbortController()
    const p = out2.write('5678', {signal: ac.signal})
    assert.equal(sink2.listenerCount('drain'), 1)
    ac.abort()
    await assert.rejects(p, {name: 'AbortError'})
    assert.equal(sink2.listenerCount('drain'), 0)
    assert.equal(out2.record.blockedSenders, 0)
    assert.throws(() => instrumentWritable('bad', {} as never), TypeError)
  })
})
