// How V8's heap snapshot spells the objects the wait analysis looks for (promises, reactions, closure
// scopes, script URLs), read once per graph so that each step asks by name rather than by type code.

import type {HeapGraph} from './heap-graph.js'

export interface HeapShapes {
  graph: HeapGraph
  objectType: number
  closureType: number
  propertyEdge: number
  elementEdge: number
  contextEdge: number
  isPromise: (node: number) => boolean
  isReaction: (node: number) => boolean
  isContext: (node: number) => boolean
  /** The builtin code name of a closure (e.g. AwaitResolveClosure), '' when it has none. */
  codeName: (closure: number) => string
  /** Script URL of a closure, from its SharedFunctionInfo's script (no Debugger needed). */
  urlOfClosure: (closure: number) => string | undefined
  /** The promise whose reaction list holds this reaction (walking back along `next` links), or -1. */
  promiseOfReaction: (reaction: number) => number
}

export function heapShapes(graph: HeapGraph): HeapShapes {
  const objectType = graph.nodeTypeCode('object')
  const isPromise = (node: number): boolean => graph.nodeName(node) === 'Promise' && graph.nodeTypeCodeOf(node) === objectType
  const isReaction = (node: number): boolean => graph.nodeName(node) === 'system / PromiseReaction'
  const codeName = (closure: number): string => {
    const code = graph.child(closure, 'code')
    return code < 0 ? '' : graph.nodeName(code)
  }
  const urlOfClosure = (closure: number): string | undefined => {
    const shared = graph.child(closure, 'shared')
    if (shared < 0) return undefined
    let script = graph.child(shared, 'script_or_debug_info')
    if (script >= 0 && !looksLikeUrl(graph.nodeName(script))) script = graph.child(script, 'script')
    if (script < 0) return undefined
    const name = graph.nodeName(script)
    return looksLikeUrl(name) ? name : undefined
  }
  const promiseOfReaction = (reaction: number): number => {
    const seen = new Set<number>()
    let current = reaction
    while (!seen.has(current)) {
      seen.add(current)
      let previous = -1
      for (const e of graph.incomingEdges(current)) {
        const source = graph.edgeSource(e)
        if (isPromise(source) && graph.edgeName(e) === 'reactions_or_result') return source
        if (isReaction(source)) previous = source
      }
      if (previous < 0) return -1
      current = previous
    }
    return -1
  }
  return {
    graph,
    objectType,
    closureType: graph.nodeTypeCode('closure'),
    propertyEdge: graph.edgeTypeCode('property'),
    elementEdge: graph.edgeTypeCode('element'),
    contextEdge: graph.edgeTypeCode('context'),
    isPromise,
    isReaction,
    isContext: (node) => graph.nodeName(node) === 'system / Context',
    codeName,
    urlOfClosure,
    promiseOfReaction,
  }
}

function looksLikeUrl(name: string): boolean {
  return /^(file|node|https?|data|wasm):|^\//.test(name)
}
