// Pure walk of a heap snapshot graph: which async functions are suspended, what each awaits, who
// awaits it (the caller chain), what holds the awaited promise's resolve function, and whether that
// resolver can still be called by anything alive. No I/O; see src/attach/heap-tasks.ts for the CDP side.
// The steps live in heap-wait-*.ts, each over plain data; this file runs them in order.

import type {HeapGraph} from './heap-graph.js'
import {findAwaitedPromises, findSuspendedFunctions, type SuspendedFunctions} from './heap-wait-generators.js'
import {createHolderDescriber, taskKind, type HolderDescriber} from './heap-wait-holders.js'
import {proveNeverSettles, rootPathTo, walkReachability, type NeverProof} from './heap-wait-reach.js'
import {createSettlerIndex, type SettlerIndex} from './heap-wait-settlers.js'
import {heapShapes} from './heap-wait-shapes.js'
import type {HeapTaskChain, HeapWaitAnalysis} from './heap-wait-types.js'

export type {HeapGenerator, HeapHolder, HeapTaskChain, HeapTaskKind, HeapWaitAnalysis} from './heap-wait-types.js'

export interface AnalyzeHeapWaitsOptions {
  /**
   * Nodes the reachability walk must not go through: objects ferrydiag itself put in the target for
   * the snapshot (the await-times age index holds every stamped promise; walking it would make every
   * promise look reachable and hide a task that can never resume).
   */
  opaqueNodes?: number[]
}

export function analyzeHeapWaits(graph: HeapGraph, options: AnalyzeHeapWaitsOptions = {}): HeapWaitAnalysis {
  const startMs = performance.now()
  const shapes = heapShapes(graph)
  // 1. Suspended async functions and script URLs; 2. the promise each one awaits.
  const suspended = findSuspendedFunctions(shapes)
  findAwaitedPromises(shapes, suspended.generators)
  // 3. What can settle a promise; 4. what the GC roots reach and which tasks can resume;
  // 5. proof that a promise never settles.
  const settlers = createSettlerIndex(shapes, suspended.generatorIndex)
  const reach = walkReachability(graph, suspended, settlers, options.opaqueNodes)
  const proof = proveNeverSettles(suspended, settlers, reach)
  // 6. Chains of awaiting frames, each with what holds it.
  const holders = createHolderDescriber(shapes, suspended, settlers, reach)
  const tasks = buildTaskChains(graph, suspended, proof, holders, settlers.settlersOf)

  let reachedNodes = 0
  for (let node = 0; node < graph.nodeCount; node++) reachedNodes += reach.reached[node]
  return {
    generators: suspended.generators,
    tasks,
    scriptUrls: suspended.scriptUrls,
    stats: {reachedNodes, fixpointRounds: reach.fixpointRounds, analyzeMs: performance.now() - startMs},
    rootPath: (node) => rootPathTo(graph, reach, node),
    isReached: (node) => reach.reached[node] === 1,
  }
}

/** Chains: a leaf awaits something that is not another suspended function's result; its callers follow. */
function buildTaskChains(
  graph: HeapGraph,
  suspended: SuspendedFunctions,
  proof: NeverProof,
  holders: HolderDescriber,
  settlersOf: SettlerIndex['settlersOf'],
): HeapTaskChain[] {
  const {generators, resultOwner} = suspended
  const {provablyNever, innermostNeverPromise} = proof
  const {describeHolder, describeGoneResolver, describeStuckHolder} = holders
  const awaitersOf = new Map<number, number[]>()
  generators.forEach((g, index) => {
    if (g.awaitedPromise < 0) return
    const list = awaitersOf.get(g.awaitedPromise) ?? []
    list.push(index)
    awaitersOf.set(g.awaitedPromise, list)
  })
  const tasks: HeapTaskChain[] = []
  generators.forEach((g, index) => {
    // A sync generator or a finished ESM module body (kept by its module record) awaits nothing.
    if (g.awaitedPromise < 0 && g.resultPromise < 0) return
    if (g.awaitedPromise >= 0 && resultOwner.has(g.awaitedPromise)) return // an outer frame
    const frames = [index]
    const inChain = new Set(frames)
    let otherCallers: number[] = []
    for (let current = g; current.resultPromise >= 0; ) {
      const callers = (awaitersOf.get(current.resultPromise) ?? []).filter((c) => !inChain.has(c))
      if (callers.length === 0) break
      frames.push(callers[0])
      inChain.add(callers[0])
      otherCallers = callers.slice(1)
      current = generators[callers[0]]
    }
    const never = !g.live && provablyNever(g.awaitedPromise)
    const innermostAwaited = innermostNeverPromise(g.awaitedPromise)
    const resolverGone = never && innermostAwaited >= 0 && settlersOf(innermostAwaited).nodes.length === 0
    const holder = !never
      ? describeHolder(g.awaitedPromise)
      : resolverGone
        ? describeGoneResolver(innermostAwaited)
        : describeStuckHolder(g.awaitedPromise, frames.map((f) => generators[f].node))
    tasks.push({
      frames,
      awaitedPromise: g.awaitedPromise,
      awaitedPromiseHeapId: g.awaitedPromise >= 0 ? graph.nodeId(g.awaitedPromise) : undefined,
      awaitStartPromise: g.awaitStartPromise,
      awaitStartPromiseHeapId: g.awaitStartPromise >= 0 ? graph.nodeId(g.awaitStartPromise) : undefined,
      holder,
      state: never ? 'never-resumes' : 'blocked',
      reason: never ? (resolverGone ? 'resolver-gone' : 'no-resolver') : g.live ? undefined : 'unresolved-holder',
      kind: taskKind(g.functionName, holder),
      otherCallers,
    })
  })

  return tasks
}
