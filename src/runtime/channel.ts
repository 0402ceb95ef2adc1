// Channel<T>: a named, bounded FIFO hand-off buffer with Go semantics (send waits while full, receive
// waits while empty, close, capacity 0 = rendezvous) that records itself with the agent, so a stuck
// pipeline shows which buffer each parked task waits on and from which await site.
import type {AgentApi, AgentChannelRec} from '../agent/agent-core.cjs'
import {getAgent} from './agent-link.js'
import {RingQueue} from './ring-queue.js'
import {stageRecordOf, type Stage} from './stage.js'
import {WaitQueue} from './wait-queue.js'
import {Waiter, armWaiter, captureResolvers} from './waiter.js'

export type ReceiveResult<T> = {ok: true; value: T} | {ok: false; value: undefined}

/**
 * signal: aborting a blocked wait rejects it with signal.reason; the item is then neither lost nor
 *   duplicated (a wait already handed its item completes normally). An already aborted signal rejects
 *   at once, even when the operation could have proceeded.
 * stage: while this call is blocked the stage is 'back-pressured' (send) or 'idle' (receive); it also
 *   names the waiter (see sendersEver below). Nothing changes when the call does not block.
 */
export interface WaitOptions {
  signal?: AbortSignal
  stage?: Stage
}

/** Thrown by send() on a closed channel, and by sends still blocked when the channel closes. */
export class ChannelClosedError extends Error {
  constructor(channelName: string) {
    super(`send on closed channel \`${channelName}\``)
    this.name = 'ChannelClosedError'
  }
}

const RESOLVED: Promise<void> = Promise.resolve()
const CLOSED_RESULT: ReceiveResult<never> = Object.freeze({ok: false, value: undefined})

type SendWaiter<T> = Waiter<T, void>
type ReceiveWaiter<T> = Waiter<undefined, ReceiveResult<T>>

let receiveFromIterator: <T>(channel: Channel<T>, iterator: object) => Promise<ReceiveResult<T>>

/**
 * Records per channel (ChannelRecord): itemsIn counts items accepted (buffered or handed over),
 * itemsOut items delivered, so length = itemsIn - itemsOut. sendersEver / receiversEver count distinct
 * identities: the Stage passed in WaitOptions when there is one; else the await site (raw stack) of a
 * call that blocked; calls with neither share one anonymous identity, counted only while nothing better
 * was seen. The per-item cost is one comparison with the last identity. Await-site stacks are captured
 * only when a call blocks, and sampled per side (see the agent's stackFor).
 */
export class Channel<T> implements AsyncIterable<T> {
  readonly id: number
  readonly name: string
  readonly capacity: number
  readonly #agent: AgentApi
  readonly #rec: AgentChannelRec
  readonly #buffer: RingQueue<T>
  readonly #senders = new WaitQueue<SendWaiter<T>>()
  readonly #receivers = new WaitQueue<ReceiveWaiter<T>>()
  #closed = false

  static {
    receiveFromIterator = <T>(channel: Channel<T>, iterator: object) =>
      channel.#receive(undefined, iterator, ChannelIterator.prototype.next)
  }

  constructor(name: string, capacity: number) {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`Expected \`name\` to be a non-empty string, got \`${String(name)}\` (${typeof name})`)
    }
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`Expected \`capacity\` to be an integer >= 0, got \`${String(capacity)}\` (${typeof capacity})`)
    }
    this.name = name
    this.capacity = capacity
    this.#buffer = new RingQueue<T>(Math.min(capacity, 1024))
    this.#agent = getAgent()
    this.#rec = this.#agent.registerChannel(this, name, 'channel', capacity)
    this.id = this.#rec.id
  }

  get length(): number {
    return this.#buffer.length
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Waits while the buffer is full (or, at capacity 0, until a receiver takes the item). */
  send(value: T, opts?: WaitOptions): Promise<void> {
    const rec = this.#rec
    const stage = opts === undefined ? undefined : opts.stage
    const identity = stage === undefined ? undefined : stageRecordOf(stage)
    if (identity !== rec.lastSender) this.#agent.noteSender(rec, identity)
    if (opts !== undefined && opts.signal !== undefined && opts.signal.aborted) return Promise.reject(opts.signal.reason)
    if (this.#closed) return Promise.reject(new ChannelClosedError(this.name))
    if (this.#receivers.live > 0) {
      const receiver = this.#receivers.take()
      if (receiver !== undefined) {
        rec.itemsIn++
        rec.itemsOut++
        receiver.finish(this.#agent)
        receiver.resolve({ok: true, value})
        return RESOLVED
      }
    }
    const buffer = this.#buffer
    if (buffer.length < this.capacity) {
      buffer.push(value)
      rec.itemsIn++
      this.#agent.setLength(rec, buffer.length)
      return RESOLVED
    }
    const promise = new Promise<void>(captureResolvers)
    const waiter: SendWaiter<T> = new Waiter(value)
    armWaiter(this.#agent, rec, waiter, opts, 'channel-send', 'send', undefined, Channel.prototype.send, 'back-pressured', this.#senders.cancelled)
    this.#senders.push(waiter)
    return promise
  }

  /** Waits while empty; {ok: false} once the channel is closed and drained. */
  receive(opts?: WaitOptions): Promise<ReceiveResult<T>> {
    return this.#receive(opts, undefined, Channel.prototype.receive)
  }

  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  #receive(opts: WaitOptions | undefined, key: object | undefined, above: Function): Promise<ReceiveResult<T>> {
    const rec = this.#rec
    const stage = opts === undefined ? undefined : opts.stage
    const identity = stage === undefined ? undefined : stageRecordOf(stage)
    if (identity !== rec.lastReceiver) this.#agent.noteReceiver(rec, identity)
    if (opts !== undefined && opts.signal !== undefined && opts.signal.aborted) return Promise.reject(opts.signal.reason)
    const buffer = this.#buffer
    if (buffer.length > 0) {
      const value = buffer.shift() as T
      rec.itemsOut++
      if (!this.#moveSenderIn()) this.#agent.setLength(rec, buffer.length)
      return Promise.resolve({ok: true, value})
    }
    const sender = this.#handOverFromSender()
    if (sender !== undefined) return Promise.resolve({ok: true, value: sender.value})
    if (this.#closed) return Promise.resolve(CLOSED_RESULT)
    const promise = new Promise<ReceiveResult<T>>(captureResolvers)
    const waiter: ReceiveWaiter<T> = new Waiter(undefined)
    armWaiter(this.#agent, rec, waiter, opts, 'channel-receive', 'receive', key, above, 'idle', this.#receivers.cancelled)
    this.#receivers.push(waiter)
    return promise
  }

  /** Takes up to max items now, without waiting, also from blocked senders; [] when there are none. */
  drain(max: number): T[] {
    if (!(Number.isInteger(max) || max === Number.POSITIVE_INFINITY) || max < 0) {
      throw new RangeError(`Expected \`max\` to be an integer >= 0, got \`${String(max)}\` (${typeof max})`)
    }
    const rec = this.#rec
    if (rec.lastReceiver !== undefined) this.#agent.noteReceiver(rec, undefined)
    const out: T[] = []
    const buffer = this.#buffer
    const before = buffer.length
    while (out.length < max) {
      if (buffer.length > 0) {
        out.push(buffer.shift() as T)
        rec.itemsOut++
        this.#moveSenderIn()
        continue
      }
      const sender = this.#handOverFromSender()
      if (sender === undefined) break
      out.push(sender.value)
    }
    if (buffer.length !== before) this.#agent.setLength(rec, buffer.length)
    return out
  }

  /** Pending receivers get {ok: false}; pending senders reject with ChannelClosedError. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#rec.closed = true
    for (let r = this.#receivers.take(); r !== undefined; r = this.#receivers.take()) {
      r.finish(this.#agent)
      r.resolve(CLOSED_RESULT)
    }
    for (let s = this.#senders.take(); s !== undefined; s = this.#senders.take()) {
      s.finish(this.#agent)
      s.reject(new ChannelClosedError(this.name))
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return new ChannelIterator(this)
  }

  // An item just left a buffer that blocked senders found full: the oldest one's item moves in, so the
  // length stays the same. Whether one did.
  #moveSenderIn(): boolean {
    const sender = this.#senders.take()
    if (sender === undefined) return false
    this.#buffer.push(sender.value)
    this.#rec.itemsIn++
    sender.finish(this.#agent)
    sender.resolve()
    return true
  }

  // Rendezvous (or a drain past the buffer): the oldest blocked sender hands its item straight over.
  // Returns that sender (its item is `value`), or undefined when none is blocked.
  #handOverFromSender(): SendWaiter<T> | undefined {
    const sender = this.#senders.take()
    if (sender === undefined) return undefined
    this.#rec.itemsIn++
    this.#rec.itemsOut++
    sender.finish(this.#agent)
    sender.resolve()
    return sender
  }

}

function toIteratorResult<T>(result: ReceiveResult<T>): IteratorResult<T> {
  return result.ok ? {done: false, value: result.value} : {done: true, value: undefined}
}

/** for await over a channel: ends when it is closed and drained. Leaving the loop does not close it. */
class ChannelIterator<T> implements AsyncIterator<T> {
  readonly #channel: Channel<T>

  constructor(channel: Channel<T>) {
    this.#channel = channel
  }

  next(): Promise<IteratorResult<T>> {
    // The iterator is the stack-cache key: one for-await loop is one await site.
    return receiveFromIterator(this.#channel, this).then(toIteratorResult)
  }

  return(): Promise<IteratorResult<T>> {
    return Promise.resolve({done: true, value: undefined})
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this
  }
}
