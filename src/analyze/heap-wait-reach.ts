// Steps 4 and 5 of the heap-route wait analysis: which objects something alive can reach, which
// suspended functions can therefore resume, and the proof that a promise never settles.

import type {HeapGraph} from './heap-graph.js'
import type {SuspendedFunctions} from './heap-wait-generators.js'
import type {SettlerIndex} from './heap-wait-settlers.js'

export interface Reachability {
  /** 1 for a node reached from the GC roots (other than through tasks that cannot run). */
  reached: Uint8Array
  /** The edge the walk reached each node by, -1 for the roots and unreached nodes. */
  parentEdge: Int32Array
  fixpointRounds: number
}

/**
 * Reachability from the GC roots over every edge (weak ones too: a WeakRef can bring an object back),
 * treating suspended generators as walls until shown alive: a resolver reachable only through a task
 * that can never run cannot be called. Fixpoint: a generator becomes alive (its `live` is set) when a
 * settler of its awaited promise is reached, or its awaited promise is the result of a live one.
 * opaqueNodes: nodes the walk must not go through (see AnalyzeHeapWaitsOptions).
 */
export function walkReachability(
  graph: HeapGraph,
  suspended: SuspendedFunctions,
  settlers: SettlerIndex,
  opaqueNodes: readonly number[] = [],
): Reachability {
  const {generators, resultOwner} = suspended
  const reached = new Uint8Array(graph.nodeCount)
  const parentEdge = new Int32Array(graph.nodeCount).fill(-1)
  const isWall = new Uint8Array(graph.nodeCount)
  for (const g of generators) isWall[g.node] = 1
  for (const node of opaqueNodes) if (node >= 0 && node < graph.nodeCount) isWall[node] = 1
  const queue = new Uint32Array(graph.nodeCount)
  let head = 0
  let tail = 0
  const enqueue = (node: number, viaEdge: number): void => {
    if (reached[node]) return
    reached[node] = 1
    parentEdge[node] = viaEdge
    queue[tail++] = node
  }
  const drain = (): void => {
    while (head < tail) {
      const node = queue[head++]
      if (isWall[node]) continue
      for (let e = graph.firstEdgeOf(node); e < graph.endEdgeOf(node); e++) enqueue(graph.edgeTarget(e), e)
    }
  }
  const expandGenerator = (node: number): void => {
    isWall[node] = 0
    if (!reached[node]) enqueue(node, -1)
    for (let e = graph.firstEdgeOf(node); e < graph.endEdgeOf(node); e++) enqueue(graph.edgeTarget(e), e)
  }
  enqueue(0, -1)
  drain()
  let rounds = 0
  for (let changed = true; changed; ) {
    changed = false
    rounds++
    for (const g of generators) {
      if (g.live) continue
      const promise = g.awaitedPromise
      let settleable = promise < 0 // not recognised: assume it can resume
      if (!settleable) {
        const owner = resultOwner.get(promise)
        if (owner !== undefined && generators[owner].live) settleable = true
        else if (owner === undefined) settleable = settlers.nativelyHeld(promise) || settlers.settlersOf(promise).nodes.some((s) => reached[s] === 1)
      }
      if (settleable) {
        g.live = true
        expandGenerator(g.node)
        changed = true
      }
    }
    drain()
  }
  return {reached, parentEdge, fixpointRounds: rounds}
}

export interface NeverProof {
  /**
   * Nothing reached from the GC roots (other than through tasks that cannot run) can settle the
   * promise, and no native owner holds it; or it is the result of an async function stuck that way.
   */
  provablyNever: (promise: number) => boolean
  /** Follows "result of a stuck async function" links down to the promise that is actually unsettleable. */
  innermostNeverPromise: (promise: number) => number
}

export function proveNeverSettles(suspended: SuspendedFunctions, settlers: SettlerIndex, reach: Reachability): NeverProof {
  const {generators, resultOwner} = suspended
  const {reached} = reach
  const neverMemo = new Map<number, boolean>()
  const provablyNever = (promise: number, depth: number): boolean => {
    if (promise < 0 || depth > 64) return false
    const memo = neverMemo.get(promise)
    if (memo !== undefined) return memo
    neverMemo.set(promise, false) // cycles are not proof
    let verdict: boolean
    const owner = resultOwner.get(promise)
    if (owner !== undefined) {
      const g = generators[owner]
      verdict = !g.live && provablyNever(g.awaitedPromise, depth + 1)
    } else {
      verdict = !settlers.nativelyHeld(promise) && !settlers.settlersOf(promise).nodes.some((s) => reached[s] === 1)
    }
    neverMemo.set(promise, verdict)
    return verdict
  }
  const innermostNeverPromise = (promise: number): number => {
    const seen = new Set<number>()
    let current = promise
    while (current >= 0 && !seen.has(current)) {
      seen.add(current)
      const owner = resultOwner.get(current)
      if (owner === undefined) return current
      current = generators[owner].awaitedPromise
    }
    return current
  }
  return {provablyNever: (promise) => provablyNever(promise, 0), innermostNeverPromise}
}

/** Edges from the GC roots to node along the reachability walk's parent links. */
export function rootPathTo(graph: HeapGraph, reach: Reachability, node: number): number[] {
  const {parentEdge} = reach
  const path: number[] = []
  for (let n = node, e = parentEdge[n]; e >= 0; n = graph.edgeSource(e), e = parentEdge[n]) {
    path.push(e)
    if (path.length > 10_000) break
  }
  return path.reverse()
}
