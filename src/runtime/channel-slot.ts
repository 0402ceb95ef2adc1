// ChannelSlot<C>: Go's nil channel made visible. A pipeline that creates a buffer later hands out the
// slot now; whoever gets() it before set() is a recorded 'slot-wait' task, and if the slot is dropped
// unset while someone waits, that task shows as never-resumes.
import type {AgentApi, AgentChannelRec} from '../agent/agent-core.cjs'
import type {WaitOptions} from './channel.js'
import {getAgent} from './agent-link.js'
import {park, type Waiter} from './waiter.js'

/**
 * Recorded as a ChannelRecord of kind 'slot' (capacity 0, filled false until set). A blocked get() is
 * counted on the receive side (blockedReceivers, receiveBlockedMs): the waiter receives the channel,
 * whatever it means to do with it next. With a stage, the stage is 'idle' while get() waits.
 */
export class ChannelSlot<C> {
  readonly name: string
  readonly #agent: AgentApi
  readonly #rec: AgentChannelRec
  readonly #waiters: Array<Waiter<undefined, C>> = []
  #filled = false
  #channel: C | undefined = undefined

  constructor(name: string) {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`Expected \`name\` to be a non-empty string, got \`${String(name)}\` (${typeof name})`)
    }
    this.name = name
    this.#agent = getAgent()
    this.#rec = this.#agent.registerChannel(this, name, 'slot', 0)
  }

  /** The slot's record id (its ChannelRecord.id). */
  get id(): number {
    return this.#rec.id
  }

  get filled(): boolean {
    return this.#filled
  }

  /** Resolves with the channel once set() was called; waits (recorded) until then. */
  get(opts?: WaitOptions): Promise<C> {
    const rec = this.#rec
    const stage = opts?.stage
    if (stage === undefined && rec.lastReceiver !== undefined) this.#agent.noteReceiver(rec, undefined)
    if (opts?.signal?.aborted) return Promise.reject(opts.signal.reason)
    if (this.#filled) return Promise.resolve(this.#channel as C)
    return park<undefined, C>({
      agent: this.#agent,
      rec,
      kind: 'slot-wait',
      side: 'receive',
      value: undefined,
      opts,
      key: undefined,
      above: ChannelSlot.prototype.get,
      stageState: 'idle',
      enqueue: (waiter) => this.#waiters.push(waiter),
      cancelled: (waiter) => {
        const i = this.#waiters.indexOf(waiter)
        if (i >= 0) this.#waiters.splice(i, 1)
      },
    })
  }

  /** Fills the slot once and wakes every get(); a second set() is a programming error. */
  set(channel: C): void {
    if (this.#filled) throw new TypeError(`ChannelSlot \`${this.name}\` is already set`)
    this.#filled = true
    this.#channel = channel
    const rec = this.#rec
    rec.filled = true
    const id = (channel as {id?: unknown} | null)?.id
    if (typeof id === 'number') rec.filledWithChannelId = id
    const waiters = this.#waiters.splice(0)
    for (const waiter of waiters) {
      waiter.finish(this.#agent)
      waiter.resolve(channel)
    }
  }
}
