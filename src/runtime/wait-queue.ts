// The parked waits of one side of a Channel (its blocked senders, or its blocked receivers), oldest
// first. An aborted wait stays queued, marked done, and is skipped when reached, until the aborted ones
// outnumber the live ones by COMPACT_AFTER: then the queue is compacted once. It is a RingQueue itself
// (not a wrapper around one), so a heap snapshot shows the same path from a Channel to its parked
// waiters as before: Channel -> #senders/#receivers -> the queue's items.
import {RingQueue} from './ring-queue.js'

const COMPACT_AFTER = 64

export class WaitQueue<W extends {readonly done: boolean}> extends RingQueue<W> {
  #live = 0
  #dead = 0

  /** Waits that are queued and not aborted. */
  get live(): number {
    return this.#live
  }

  /** Bookkeeping for a queued wait that was aborted; bound once per queue, handed to armWaiter. */
  readonly cancelled = (): void => {
    this.#live--
    if (++this.#dead > COMPACT_AFTER && this.#dead > this.#live) {
      this.retain((w) => !w.done)
      this.#dead = 0
    }
  }

  constructor() {
    super(4)
  }

  override push(waiter: W): void {
    super.push(waiter)
    this.#live++
  }

  /** The oldest wait that is not aborted, removed from the queue; undefined when none is left. */
  take(): W | undefined {
    if (this.#live === 0) return undefined // only aborted waits (or none) queued: leave them for compaction
    for (let w = this.shift(); w !== undefined; w = this.shift()) {
      if (!w.done) {
        this.#live--
        return w
      }
      if (this.#dead > 0) this.#dead--
    }
    return undefined
  }
}
