// Treats a Node Writable as a bounded buffer: write() returning false parks the caller until 'drain'
// (or 'close' / 'error'), recorded as a 'stream-write' task on a ChannelRecord of kind 'stream'.
import type {Writable} from 'node:stream'
import type {ChannelRecord} from '../model/snapshot.js'
import {getAgent} from './agent-link.js'
import {ChannelClosedError, type WaitOptions} from './channel.js'
import {stageRecordOf} from './stage.js'
import {park, type Waiter} from './waiter.js'

export interface InstrumentedWritable {
  /** Writes the chunk; resolves at once when the stream accepted it, else after 'drain'. */
  write(chunk: unknown, opts?: WaitOptions): Promise<void>
  /** The stream's current record (a fresh copy on each read). */
  readonly record: ChannelRecord
}

/**
 * Records: capacity = writableHighWaterMark and length = writableLength (bytes, or objects in object
 * mode); itemsIn = chunks written, itemsOut = chunks the stream finished with (write callback); full =
 * from a write() that returned false until 'drain'. A parked write rejects with the stream's error on
 * 'error', and with ChannelClosedError on 'close' before 'drain' (the chunk may not have been flushed).
 * The agent watches the stream object itself: if it is collected while a write waits, the task shows
 * as never-resumes.
 */
export function instrumentWritable(name: string, stream: Writable): InstrumentedWritable {
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`Expected \`name\` to be a non-empty string, got \`${String(name)}\` (${typeof name})`)
  }
  if (stream === null || typeof stream !== 'object' || typeof stream.write !== 'function' || typeof stream.once !== 'function') {
    throw new TypeError(`Expected \`stream\` to be a Writable, got ${stream === null ? 'null' : typeof stream}`)
  }
  const agent = getAgent()
  const rec = agent.registerChannel(stream, name, 'stream', stream.writableHighWaterMark)
  const waiters: Array<Waiter<undefined, void>> = []
  let listening = false

  const onWritten = (): void => {
    rec.itemsOut++
    agent.setLength(rec, stream.writableLength)
  }

  // One listener set per stream while anything waits (not one per waiter: no MaxListeners warnings).
  const settleAll = (error: unknown): void => {
    stopListening()
    agent.setFull(rec, false)
    const parked = waiters.splice(0)
    for (const waiter of parked) {
      waiter.finish(agent)
      if (error === undefined) waiter.resolve()
      else waiter.reject(error)
    }
  }
  const onDrain = (): void => settleAll(undefined)
  const onError = (error: unknown): void => settleAll(error)
  const onClose = (): void => {
    rec.closed = true
    settleAll(new ChannelClosedError(name))
  }
  const startListening = (): void => {
    if (listening) return
    listening = true
    stream.on('drain', onDrain)
    stream.on('error', onError)
    stream.on('close', onClose)
  }
  const stopListening = (): void => {
    if (!listening) return
    listening = false
    stream.off('drain', onDrain)
    stream.off('error', onError)
    stream.off('close', onClose)
  }

  const write = (chunk: unknown, opts?: WaitOptions): Promise<void> => {
    const stage = opts?.stage
    const identity = stage === undefined ? undefined : stageRecordOf(stage)
    if (identity !== rec.lastSender) agent.noteSender(rec, identity)
    if (opts?.signal?.aborted) return Promise.reject(opts.signal.reason)
    if (stream.destroyed || stream.writableEnded) {
      rec.closed = true
      return Promise.reject(stream.errored ?? new ChannelClosedError(name))
    }
    rec.itemsIn++
    const accepted = stream.write(chunk, onWritten)
    agent.setLength(rec, stream.writableLength)
    if (accepted) return Promise.resolve()
    agent.setFull(rec, true)
    return park<undefined, void>({
      agent,
      rec,
      kind: 'stream-write',
      side: 'send',
      value: undefined,
      opts,
      key: undefined,
      above: write,
      stageState: 'back-pressured',
      enqueue: (waiter) => {
        waiters.push(waiter)
        startListening()
      },
      cancelled: (waiter) => {
        const i = waiters.indexOf(waiter)
        if (i >= 0) waiters.splice(i, 1)
        if (waiters.length === 0) stopListening()
      },
    })
  }

  return {
    write,
    get record() {
      return agent.describeChannel(rec)
    },
  }
}
