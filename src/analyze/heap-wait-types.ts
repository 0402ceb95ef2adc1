// The plain data the heap-route wait analysis produces (suspended async functions, their chains and
// holders), shared by its steps in src/analyze/heap-wait-*.ts and by the split-queue and emitter rules.

import type {HeapLocation} from './heap-graph.js'
import type {HolderInfo} from '../model/snapshot.js'

/** One suspended async function found in the snapshot (a 'Generator' object with a `function` edge). */
export interface HeapGenerator {
  /** Graph ordinal of the generator object. */
  node: number
  heapId: number
  functionName: string
  /** Where the async function is defined (0-based); the await site needs a CDP lookup. */
  definition?: HeapLocation
  /** Script URL of the function, from its SharedFunctionInfo's script (no Debugger needed). */
  url?: string
  /** Class name of `this` when the function is a method, else undefined. */
  receiverClass?: string
  receiverNode: number
  /** The async function's own result promise (ordinal), or -1. */
  resultPromise: number
  /** The promise it is suspended on (ordinal), or -1 when the await machinery was not recognised. */
  awaitedPromise: number
  /**
   * The promise V8 created for this very await (ordinal), or -1. V8 allocates it (its "throwaway"
   * promise, the await reaction's promise_or_capability) only while promise hooks or a debugger are on,
   * so it exists in await-times mode, where the hook stamped it when the await began.
   */
  awaitStartPromise: number
  /** True when something alive can still settle what it awaits (see analyzeHeapWaits). */
  live: boolean
}

/** A holder as the walk found it: the shared HolderInfo plus the heap identity of its object. */
export interface HeapHolder extends HolderInfo {
  objectNode?: number
  objectHeapId?: number
  /** closure-variable: the closure scope (Context) holding the variable: shared by a closure-made queue's functions. */
  contextNode?: number
}

export type HeapTaskKind = 'promise' | 'channel-send' | 'channel-receive'

/** One chain of suspended async functions: innermost await first, then its awaiting callers. */
export interface HeapTaskChain {
  /** Indexes into HeapWaitAnalysis.generators, innermost first. */
  frames: number[]
  awaitedPromise: number
  awaitedPromiseHeapId?: number
  /** The innermost frame's awaitStartPromise (ordinal, -1 when absent) and its heap object id. */
  awaitStartPromise: number
  awaitStartPromiseHeapId?: number
  holder: HeapHolder
  state: 'blocked' | 'never-resumes'
  /** Why never-resumes was concluded ('no-resolver'), or why a doubt remains. */
  reason?: string
  kind: HeapTaskKind
  /** Extra generators that also await the outermost frame's promise (fan-in), by index. */
  otherCallers: number[]
}

export interface HeapWaitAnalysis {
  generators: HeapGenerator[]
  tasks: HeapTaskChain[]
  /** scriptId → URL, read from SharedFunctionInfo → Script nodes. */
  scriptUrls: Map<number, string>
  stats: {reachedNodes: number; fixpointRounds: number; analyzeMs: number}
  /** Edges from the GC roots to a reached node (the reachability walk's parent links); [] when unreached. */
  rootPath: (node: number) => number[]
  /** Whether the walk reached the node from the GC roots (not only through stuck tasks). */
  isReached: (node: number) => boolean
}

