// Step 3 of the heap-route wait analysis: what can settle a promise. A referrer that merely stores the
// promise (a property, an array element, a variable of a closure scope, a generator's registers)
// cannot; a resolving-function context, a reaction that derives it, a capability or an internal this
// walk does not know can. A promise with no settler at all was either made natively (a handle settles
// it from C++; see nativelyHeld) or made by `new Promise(executor)` whose resolve function is gone.

import type {HeapShapes} from './heap-wait-shapes.js'

export interface Settlers {
  nodes: number[]
  /** A PromiseCapabilityDefaultResolve/Reject closure exists for it somewhere in the heap. */
  builtinResolvers: number[]
  /** Reactions on other promises that settle this one (then/catch/finally/thenable adoption). */
  reactions: number[]
  /** Objects that only store it (property, element, closure variable), for evidence and native checks. */
  storedBy: number[]
}

/** Memoised questions about one promise's settlers, over one graph. */
export interface SettlerIndex {
  settlersOf: (promise: number) => Settlers
  /**
   * True when native code can settle the promise without a JavaScript resolve function: a handle or
   * an embedder object points at it directly, or it is stored (through property storage) in an object
   * that wraps a native handle (fs requests, sockets, timers' handles: `javascript_to_native`).
   */
  nativelyHeld: (promise: number) => boolean
}

/** generatorIndex: suspended generator objects, whose edges to a promise are never settlers. */
export function createSettlerIndex(shapes: HeapShapes, generatorIndex: ReadonlyMap<number, number>): SettlerIndex {
  const {graph, objectType, closureType, propertyEdge, elementEdge, contextEdge, isContext, isReaction, codeName} = shapes
  const isStorageContainer = (node: number): boolean => {
    const type = graph.nodeType(node)
    if (type === 'array') return true
    const name = graph.nodeName(node)
    return name === 'system / PropertyArray' || name === 'system / PropertyCell' || name === 'system / NumberDictionary' || name === 'system / NameDictionary'
  }
  const settlerCache = new Map<number, Settlers>()
  const settlersOf = (promise: number): Settlers => {
    const cached = settlerCache.get(promise)
    if (cached) return cached
    const result: Settlers = {nodes: [], builtinResolvers: [], reactions: [], storedBy: []}
    for (const e of graph.incomingEdges(promise)) {
      const source = graph.edgeSource(e)
      const edgeType = graph.edgeTypeCodeOf(e)
      if (generatorIndex.has(source)) continue // its own result (handled through liveness) or registers
      if (edgeType === propertyEdge || edgeType === elementEdge || edgeType === contextEdge || isStorageContainer(source)) {
        result.storedBy.push(source)
        continue
      }
      if (isContext(source)) {
        result.nodes.push(source)
        for (const e2 of graph.incomingEdges(source)) {
          const closure = graph.edgeSource(e2)
          if (graph.nodeTypeCodeOf(closure) !== closureType || graph.edgeName(e2) !== 'context') continue
          result.nodes.push(closure)
          if (/PromiseCapabilityDefault(Resolve|Reject)/.test(codeName(closure))) result.builtinResolvers.push(closure)
        }
        continue
      }
      if (isReaction(source)) {
        result.nodes.push(source)
        result.reactions.push(source)
        continue
      }
      result.nodes.push(source) // a capability, a module record, an embedder object: can settle it
    }
    settlerCache.set(promise, result)
    return result
  }

  const nativeMemo = new Map<number, boolean>()
  const isNativeLink = (source: number): boolean => {
    const type = graph.nodeType(source)
    return (type === 'synthetic' || type === 'native') && source !== 0
  }
  const wrapsNative = (object: number): boolean => {
    for (let e = graph.firstEdgeOf(object); e < graph.endEdgeOf(object); e++) {
      if (graph.edgeName(e) === 'javascript_to_native') return true
    }
    for (const e of graph.incomingEdges(object)) {
      if (graph.edgeName(e) === 'native_to_javascript') return true
    }
    return false
  }
  const nativelyHeld = (promise: number): boolean => {
    const memo = nativeMemo.get(promise)
    if (memo !== undefined) return memo
    let verdict = false
    const seen = new Set<number>([promise])
    let frontier = [promise]
    for (let depth = 0; depth < 3 && !verdict && frontier.length > 0; depth++) {
      const next: number[] = []
      for (const node of frontier) {
        for (const e of graph.incomingEdges(node)) {
          const source = graph.edgeSource(e)
          if (seen.has(source) || generatorIndex.has(source)) continue
          seen.add(source)
          if (isNativeLink(source) && node === promise) verdict = true
          else if (graph.nodeTypeCodeOf(source) === objectType && wrapsNative(source)) verdict = true
          else if (isStorageContainer(source)) next.push(source)
          if (verdict) break
        }
        if (verdict) break
      }
      frontier = next
    }
    nativeMemo.set(promise, verdict)
    return verdict
  }
  return {settlersOf, nativelyHeld}
}
