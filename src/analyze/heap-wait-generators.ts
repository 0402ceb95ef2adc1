// Steps 1 and 2 of the heap-route wait analysis: the suspended async functions in a snapshot (with
// the script URLs their closures name) and the promise each one is suspended on.

import type {HeapShapes} from './heap-wait-shapes.js'
import type {HeapGenerator} from './heap-wait-types.js'

export interface SuspendedFunctions {
  generators: HeapGenerator[]
  /** Generator object (graph ordinal) → index into generators. */
  generatorIndex: Map<number, number>
  /** scriptId → URL, read from SharedFunctionInfo → Script nodes. */
  scriptUrls: Map<number, string>
  /** An async function's result promise (ordinal) → index of that function in generators. */
  resultOwner: Map<number, number>
}

/** Every 'Generator' object with a `function` edge (an async function or generator instance). */
export function findSuspendedFunctions(shapes: HeapShapes): SuspendedFunctions {
  const {graph, objectType, closureType, isPromise, urlOfClosure} = shapes
  const generators: HeapGenerator[] = []
  const generatorIndex = new Map<number, number>()
  const scriptUrls = new Map<number, string>()
  for (let node = 0; node < graph.nodeCount; node++) {
    if (graph.nodeTypeCodeOf(node) !== objectType || graph.nodeName(node) !== 'Generator') continue
    const fn = graph.child(node, 'function')
    if (fn < 0 || graph.nodeTypeCodeOf(fn) !== closureType) continue // a generator prototype, not an instance
    const receiver = graph.child(node, 'receiver')
    const receiverName = receiver >= 0 ? graph.nodeName(receiver) : ''
    const definition = graph.location(fn) ?? graph.location(node)
    const url = urlOfClosure(fn)
    if (definition && url) scriptUrls.set(definition.scriptId, url)
    let resultPromise = -1
    for (let e = graph.firstEdgeOf(node); e < graph.endEdgeOf(node); e++) {
      const name = graph.edgeName(e)
      if (name === 'function' || name === 'context' || name === 'receiver') continue
      if (isPromise(graph.edgeTarget(e))) {
        resultPromise = graph.edgeTarget(e)
        break
      }
    }
    generatorIndex.set(node, generators.length)
    // An ESM module with top-level await runs as an anonymous async function defined at 0:0.
    const isModuleBody = graph.nodeName(fn) === '' && definition?.line === 0 && definition.column === 0
    generators.push({
      node,
      heapId: graph.nodeId(node),
      functionName: graph.nodeName(fn) || (isModuleBody ? '(module top level)' : '(anonymous)'),
      definition,
      url,
      receiverClass:
        receiver >= 0 && graph.nodeTypeCodeOf(receiver) === objectType && !receiverName.startsWith('system /')
          ? receiverName
          : undefined,
      receiverNode: receiver,
      resultPromise,
      awaitedPromise: -1,
      awaitStartPromise: -1,
      live: false,
    })
  }
  // Other closures give more scriptId → URL pairs (for await sites in functions with no generator).
  for (let node = 0; node < graph.nodeCount && scriptUrls.size < 100_000; node++) {
    if (graph.nodeTypeCodeOf(node) !== closureType) continue
    const location = graph.location(node)
    if (!location || scriptUrls.has(location.scriptId)) continue
    const url = urlOfClosure(node)
    if (url) scriptUrls.set(location.scriptId, url)
  }

  const resultOwner = new Map<number, number>()
  generators.forEach((g, index) => {
    if (g.resultPromise >= 0) resultOwner.set(g.resultPromise, index)
  })
  return {generators, generatorIndex, scriptUrls, resultOwner}
}

/**
 * Fills in each generator's awaitedPromise and awaitStartPromise (left -1 when the await machinery is
 * not recognised): Promise -reactions_or_result-> PromiseReaction (-> next …) -> Await{Resolve,Reject}Closure
 * -context-> await Context -extension-> Generator.
 */
export function findAwaitedPromises(shapes: HeapShapes, generators: HeapGenerator[]): void {
  const {graph, closureType, isContext, isReaction, isPromise, codeName, promiseOfReaction} = shapes
  for (const g of generators) {
    for (const e of graph.incomingEdges(g.node)) {
      if (graph.edgeName(e) !== 'extension') continue
      const awaitContext = graph.edgeSource(e)
      if (!isContext(awaitContext)) continue
      for (const e2 of graph.incomingEdges(awaitContext)) {
        const closure = graph.edgeSource(e2)
        if (graph.nodeTypeCodeOf(closure) !== closureType || !codeName(closure).includes('Await')) continue
        for (const e3 of graph.incomingEdges(closure)) {
          const reaction = graph.edgeSource(e3)
          if (!isReaction(reaction)) continue
          const promise = promiseOfReaction(reaction)
          if (promise < 0) continue
          g.awaitedPromise = promise
          // A reaction's only promise-valued field is promise_or_capability (the others are closures,
          // the next reaction and embedder data); for an await it is the throwaway promise, if any.
          for (let e4 = graph.firstEdgeOf(reaction); e4 < graph.endEdgeOf(reaction); e4++) {
            const target = graph.edgeTarget(e4)
            if (target !== promise && isPromise(target)) {
              g.awaitStartPromise = target
              break
            }
          }
        }
      }
      if (g.awaitedPromise >= 0) break
    }
  }
}
