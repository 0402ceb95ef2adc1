// Channel semantics: FIFO order, blocking both ways, close, rendezvous, drain, async iteration and
// cancellation by AbortSignal without losing or duplicating an item.
import assert from 'node:assert/strict'
import {describe, test} from 'node:test'
import {setImmediate as nextTurn} from 'node:timers/promises'
import {Channel, ChannelClosedError} from '../src/runtime/index.js'

/** Resolves to 'pending', or the settled value / 'rejected:<name>', after letting microtasks run. */
async function stateOf(promise: Promise<unknown>): Promise<unknown> {
  let state: unknown = 'pending'
  promise.then(
    (value) => {
      state = value === undefined ? 'resolved' : value
    },
    (error: unknown) => {
      state = `rejected:${error instanceof Error ? error.name : String(error)}`
    },
  )
  await nextTurn()
  return state
}

describe('Channel basics', () => {
  test('validates name and capacity', () => {
    assert.throws(() => new Channel('', 1), TypeError)
    assert.throws(() => new Channel('x', -1), RangeError)
    assert.throws(() => new Channel('x', 1.5), RangeError)
    const ch = new Channel<number>('ok', 3)
    assert.equal(ch.name, 'ok')
    assert.equal(ch.capacity, 3)
    assert.equal(typeof ch.id, 'number')
    assert.notEqual(new Channel('other', 1).id, ch.id)
  })

  test('delivers items in FIFO order and reports length', async () => {
    const ch = new Channel<number>('fifo', 5)
    for (let i = 0; i < 5; i++) await ch.send(i)
    assert.equal(ch.length, 5)
    const got: number[] = []
    for (let i = 0; i < 5; i++) {
      const r = await ch.receive()
      assert.equal(r.ok, true)
      got.push(r.value as number)
    }
    assert.deepEqual(got, [0, 1, 2, 3, 4])
    assert.equal(ch.length, 0)
  })

  test('send waits while full, and resumes when a receiver makes room', async () => {
    const ch = new Channel<string>('full', 1)
    await ch.send('a')
    const blocked = ch.send('b')
    assert.equal(await stateOf(blocked), 'pending')
    assert.deepEqual(await ch.receive(), {ok: true, value: 'a'})
    assert.equal(await stateOf(blocked), 'resolved')
    assert.equal(ch.length, 1)
    assert.deepEqual(await ch.receive(), {ok: true, value: 'b'})
  })

  test('receive waits while empty, and gets the next item sent', async () => {
    const ch = new Channel<number>('empty', 2)
    const pending = ch.receive()
    assert.equal(await stateOf(pending), 'pending')
    await ch.send(42)
    assert.deepEqual(await pending, {ok: true, value: 42})
    assert.equal(ch.length, 0, 'a waiting receiver takes the item directly, not through the buffer')
  })

  test('blocked senders and receivers are served first come, first served', async () => {
    const ch = new Channel<number>('fair', 1)
    await ch.send(0)
    const order: number[] = []
    const senders = [1, 2, 3].map((i) => ch.send(i).then(() => order.push(i)))
    const got: number[] = []
    for (let i = 0; i < 4; i++) got.push((await ch.receive()).value as number)
    await Promise.all(senders)
    assert.deepEqual(got, [0, 1, 2, 3])
    assert.deepEqual(order, [1, 2, 3])

    const receivers = [0, 1, 2].map(() => ch.receive())
    await ch.send(10)
    await ch.send(11)
    await ch.send(12)
    assert.deepEqual(
      (await Promise.all(receivers)).map((r) => r.value),
      [10, 11, 12],
    )
  })
})

describe('Channel close', () => {
  test('wakes pending receivers with ok:false and rejects pending senders', async () => {
    const receiving = new Channel<number>('close-r', 1)
    const r1 = receiving.receive()
    const r2 = receiving.receive()
    receiving.close()
    assert.deepEqual(await r1, {ok: false, value: undefined})
    assert.deepEqual(await r2, {ok: false, value: undefined})

    const sending = new Channel<number>('close-s', 1)
    await sending.send(1)
    const s = sending.send(2)
    sending.close()
    await assert.rejects(s, ChannelClosedError)
    assert.equal(sending.closed, true)
    // The buffered item survives the close; then the channel reports closed-and-drained.
    assert.deepEqual(await sending.receive(), {ok: true, value: 1})
    assert.deepEqual(await sending.receive(), {ok: false, value: undefined})
    await assert.rejects(sending.send(3), ChannelClosedError)
    sending.close()
  })

  test('async iteration yields every item and ends at close', async () => {
    const ch = new Channel<number>('iter', 2)
    const seen: number[] = []
    const consumer = (async () => {
      for await (const v of ch) seen.push(v)
    })()
    for (let i = 0; i < 10; i++) await ch.send(i)
    ch.close()
    await consumer
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  })

  test('breaking out of a for-await loop does not close the channel', async () => {
    const ch = new Channel<number>('iter-break', 2)
    await ch.send(1)
    await ch.send(2)
    for await (const v of ch) {
      assert.equal(v, 1)
      break
    }
    assert.equal(ch.closed, false)
    assert.deepEqual(await ch.receive(), {ok: true, value: 2})
  })
})

describe('Channel rendezvous (capacity 0)', () => {
  test('send completes only when a receiver takes the item', async () => {
    const ch = new Channel<string>('rdv', 0)
    const sent = ch.send('x')
    assert.equal(await stateOf(sent), 'pending')
    assert.equal(ch.length, 0)
    assert.deepEqual(await ch.receive(), {ok: true, value: 'x'})
    assert.equal(await stateOf(sent), 'resolved')
  })

  test('receive waits for a sender, and the sender does not block then', async () => {
    const ch = new Channel<string>('rdv2', 0)
    const got = ch.receive()
    assert.equal(await stateOf(got), 'pending')
    const sent = ch.send('y')
    assert.equal(await stateOf(sent), 'resolved')
    assert.deepEqual(await got, {ok: true, value: 'y'})
  })
})

describe('Channel drain', () => {
  test('takes up to max buffered items now and refills from blocked senders', async () => {
    const ch = new Channel<number>('drain', 2)
    assert.deepEqual(ch.drain(10), [])
    await ch.send(1)
    await ch.send(2)
    const s3 = ch.send(3)
    const s4 = ch.send(4)
    assert.deepEqual(ch.drain(3), [1, 2, 3])
    assert.equal(await stateOf(s3), 'resolved')
    assert.equal(await stateOf(s4), 'resolved')
    assert.equal(ch.length, 1)
    assert.deepEqual(ch.drain(5), [4])
    assert.throws(() => ch.drain(-1), RangeError)
  })

  test('takes from blocked senders of a rendezvous', async () => {
    const ch = new Channel<number>('drain-rdv', 0)
    const sends = [ch.send(1), ch.send(2), ch.send(3)]
    assert.deepEqual(ch.drain(2), [1, 2])
    assert.equal(await stateOf(sends[0]), 'resolved')
    assert.equal(await stateOf(sends[2]), 'pending')
    assert.deepEqual(ch.drain(Infinity), [3])
  })
})

describe('Channel cancellation', () => {
  test('an aborted blocked send rejects with the reason and its item is never delivered', async () => {
    const ch = new Channel<number>('abort-send', 1)
    await ch.send(1)
    const ac = new AbortController()
    const s2 = ch.send(2, {signal: ac.signal})
    const s3 = ch.send(3)
    ac.abort()
    await assert.rejects(s2, {name: 'AbortError'})
    assert.deepEqual(ch.drain(10), [1, 3])
    assert.equal(await stateOf(s3), 'resolved')
  })

  test('an aborted blocked receive rejects and the next item goes to the next receiver', async () => {
    const ch = new Channel<number>('abort-recv', 0)
    const ac = new AbortController()
    const r1 = ch.receive({signal: ac.signal})
    const r2 = ch.receive()
    ac.abort(new Error('gave up'))
    await assert.rejects(r1, /gave up/)
    await ch.send(7)
    assert.deepEqual(await r2, {ok: true, value: 7})
  })

  test('an abort after the hand-off does not lose the item (receive side)', async () => {
    const ch = new Channel<number>('race-recv', 0)
    const ac = new AbortController()
    const r = ch.receive({signal: ac.signal})
    const s = ch.send(5) // hands 5 to the waiting receiver synchronously
    ac.abort() // same tick, before the receiver's continuation runs
    assert.deepEqual(await r, {ok: true, value: 5})
    await s
    assert.deepEqual(ch.drain(10), [])
  })

  test('an abort after the hand-off does not duplicate the item (send side)', async () => {
    const ch = new Channel<number>('race-send', 0)
    const ac = new AbortController()
    const s = ch.send(9, {signal: ac.signal})
    const r = ch.receive() // takes 9 from the blocked sender synchronously
    ac.abort()
    await s // the send completed: it must not reject, or a retry would send 9 twice
    assert.deepEqual(await r, {ok: true, value: 9})
    assert.deepEqual(ch.drain(10), [])
  })

  test('an already aborted signal rejects at once', async () => {
    const ch = new Channel<number>('pre-aborted', 1)
    const signal = AbortSignal.abort()
    await assert.rejects(ch.send(1, {signal}), {name: 'AbortError'})
    await assert.rejects(ch.receive({signal}), {name: 'AbortError'})
    assert.equal(ch.length, 0)
  })

  test('many aborted waiters are skipped and compacted without breaking order', async () => {
    const ch = new Channel<number>('compact', 0)
    const ac = new AbortController()
    const aborted = Array.from({length: 200}, (_, i) => ch.send(1000 + i, {signal: ac.signal}))
    const kept = [ch.send(1), ch.send(2)]
    ac.abort()
    await Promise.allSettled(aborted)
    assert.deepEqual(ch.drain(10), [1, 2])
    await Promise.all(kept)
  })
})

describe('Channel under concurrency', () => {
  for (const capacity of [0, 1, 7]) {
    test(`no item lost or duplicated with many senders, receivers and aborts (capacity ${capacity})`, async () => {
      const ch = new Channel<number>(`stress-${capacity}`, capacity)
      const senders = 12
      const perSender = 300
      const accepted = new Set<number>()
      const received: number[] = []
      let seed = 12345 + capacity
      const random = (): number => {
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed / 2147483648
      }
      const send = async (s: number): Promise<void> => {
        for (let i = 0; i < perSender; i++) {
          const value = s * perSender + i
          const ac = new AbortController()
          if (random() < 0.2) setImmediate(() => ac.abort())
          try {
            await ch.send(value, {signal: ac.signal})
            accepted.add(value)
          } catch (error) {
            assert.equal((error as Error).name, 'AbortError')
          }
          if (random() < 0.3) await nextTurn()
        }
      }
      const receive = async (): Promise<void> => {
        for (;;) {
          const ac = new AbortController()
          if (random() < 0.2) setImmediate(() => ac.abort())
          try {
            const r = await ch.receive({signal: ac.signal})
            if (!r.ok) return
            received.push(r.value)
          } catch (error) {
            assert.equal((error as Error).name, 'AbortError')
          }
          if (random() < 0.3) await nextTurn()
        }
      }
      const consumers = Array.from({length: 5}, () => receive())
      await Promise.all(Array.from({length: senders}, (_, s) => send(s)))
      ch.close()
      await Promise.all(consumers)
      assert.equal(received.length, accepted.size, 'every accepted item was received exactly once')
      assert.deepEqual(new Set(received), accepted)
      const expectedSum = [...accepted].reduce((a, b) => a + b, 0)
      assert.equal(
        received.reduce((a, b) => a + b, 0),
        expectedSum,
      )
      assert.ok(accepted.size > senders * perSender * 0.5, `most sends succeed (${accepted.size})`)
    })
  }
})
