// A growable ring-buffer FIFO: O(1) push and shift without Array#shift's copying, used for a channel's
// buffered items and its queues of blocked senders and receivers.

export class RingQueue<T> {
  #items: Array<T | undefined>
  #head = 0
  #size = 0

  constructor(initialCapacity = 16) {
    let cap = 4
    while (cap < initialCapacity) cap *= 2
    this.#items = new Array<T | undefined>(cap)
  }

  get length(): number {
    return this.#size
  }

  push(item: T): void {
    const items = this.#items
    if (this.#size === items.length) {
      this.#grow()
      this.#items[(this.#head + this.#size) & (this.#items.length - 1)] = item
    } else {
      items[(this.#head + this.#size) & (items.length - 1)] = item
    }
    this.#size++
  }

  /** Removes and returns the oldest item; undefined when empty. The slot is cleared (no retention). */
  shift(): T | undefined {
    if (this.#size === 0) return undefined
    const items = this.#items
    const item = items[this.#head]
    items[this.#head] = undefined
    this.#head = (this.#head + 1) & (items.length - 1)
    this.#size--
    return item
  }

  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head]
  }

  /** Keeps only the items for which keep() is true, in order. O(n). */
  retain(keep: (item: T) => boolean): void {
    const kept: T[] = []
    for (let i = 0; i < this.#size; i++) {
      const item = this.#items[(this.#head + i) & (this.#items.length - 1)] as T
      if (keep(item)) kept.push(item)
    }
    this.#items.fill(undefined)
    this.#head = 0
    this.#size = 0
    for (const item of kept) this.push(item)
  }

  #grow(): void {
    const old = this.#items
    const next = new Array<T | undefined>(old.length * 2)
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) & (old.length - 1)]
    this.#items = next
    this.#head = 0
  }
}
