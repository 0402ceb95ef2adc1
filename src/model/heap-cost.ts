// What a V8 heap snapshot is estimated to cost the target, shared by the heap route's estimate
// (src/attach/heap-snapshot.ts) and the reports that show it.

/** The heap snapshot's cost to the target as estimated before it is taken (the figures `--heap` prints). */
export interface HeapCostFigures {
  /** Time the target's JavaScript is stopped while V8 writes the snapshot, central estimate, ms. */
  stallMs: number
  /** Band of the stall: a heap of large rows (few objects per MB) to one of tiny objects (many per MB). */
  stallMsLow: number
  stallMsHigh: number
  /** Peak growth of the target's memory (RSS) while writing, central estimate, bytes. Much of it is kept. */
  extraMemoryBytes: number
  extraMemoryBytesLow: number
  extraMemoryBytesHigh: number
}
