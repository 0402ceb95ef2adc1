// Step 6's wording-free description of what holds a waiting task: the object, wait list, timer,
// listener or closure variable on the way from the GC roots to the resolver of the awaited promise,
// or, for a task that never resumes, what still stores its promise.

import type {HeapGraph} from './heap-graph.js'
import type {SuspendedFunctions} from './heap-wait-generators.js'
import {rootPathTo as rootPathOf, type Reachability} from './heap-wait-reach.js'
import type {SettlerIndex} from './heap-wait-settlers.js'
import type {HeapShapes} from './heap-wait-shapes.js'
import type {HeapHolder, HeapTaskKind} from './heap-wait-types.js'

/** Property names that make an array a wait queue of a channel-like object. */
const QUEUE_PROPERTY = /wait|queue|pend|send|recv|receiv|put|take|reader|writer|block|park|consumer|producer|getter|setter/i
const CHANNEL_CLASS = /chan|queue|buffer|pipe|slot|mailbox|mutex|semaphore/i
const SEND_NAME = /send|put|write|push|offer|enqueue|emit|produce/i
const RECEIVE_NAME = /receive|recv|take|get|read|pop|dequeue|next|shift|consume|pull/i
const GENERIC_NAMES = new Set([
  'Object',
  'Array',
  '',
  'system / Context',
  '(object elements)',
  '(object properties)',
  'system / PropertyArray',
  'system / PromiseReaction',
  'system / FixedArray',
  'system / ArrayList',
])

export interface HolderDescriber {
  /** What holds the resolver of a promise that something alive can settle. */
  describeHolder: (promise: number) => HeapHolder
  /** For a stuck task: where its resolver actually is, searched from the stuck frames themselves. */
  describeStuckHolder: (promise: number, frameNodes: number[]) => HeapHolder
  /** For a promise whose resolve function is gone: what still stores the promise. */
  describeGoneResolver: (promise: number) => HeapHolder
}

export function createHolderDescriber(
  shapes: HeapShapes,
  suspended: SuspendedFunctions,
  settlers: SettlerIndex,
  reach: Reachability,
): HolderDescriber {
  const graph: HeapGraph = shapes.graph
  const {objectType, closureType, propertyEdge, isPromise, isReaction, urlOfClosure, promiseOfReaction} = shapes
  const {generators, generatorIndex, resultOwner} = suspended
  const {settlersOf, nativelyHeld} = settlers
  const {reached, parentEdge} = reach
  const rootPathTo = (node: number): number[] => rootPathOf(graph, reach, node)
  return {describeHolder: (promise) => describeHolder(promise), describeStuckHolder, describeGoneResolver}

  /**
   * A pending promise with no resolve function anywhere in the heap and no native owner: made by
   * `new Promise(executor)` whose resolver was overwritten or dropped (or never stored), or the result
   * of an async function that was garbage-collected while it waited. Names what still stores it.
   */
  function describeGoneResolver(promise: number): HeapHolder {
    const stored = settlersOf(promise).storedBy.filter((node) => reached[node] === 1)
    for (const node of stored) {
      const path = rootPathTo(node)
      // The edge from the storing object to the promise itself ends the path.
      for (const e of graph.incomingEdges(promise)) {
        if (graph.edgeSource(e) === node) {
          path.push(e)
          break
        }
      }
      const found = describePath(path)
      if (found.kind === 'object' || found.kind === 'channel-queue' || found.kind === 'closure-variable' || found.kind === 'task-locals') {
        return {...found, kind: 'no-resolver', queueProperty: undefined}
      }
    }
    return {kind: 'no-resolver'}
  }

  function describeHolder(promise: number, depth = 0): HeapHolder {
    if (promise < 0) return {kind: 'unknown', detail: 'not-recognised'}
    const settlers = settlersOf(promise)
    // Prefer a resolve function over its context, a reached one over any other.
    const viaReject = (node: number): number => (parentEdge[node] >= 0 && /reject/i.test(graph.edgeName(parentEdge[node])) ? 1 : 0)
    const candidates = [...settlers.builtinResolvers, ...settlers.nodes]
      .filter((s) => reached[s] === 1)
      .sort((a, b) => viaReject(a) - viaReject(b))
    if (candidates.length === 0) {
      if (nativelyHeld(promise)) {
        const owner = settlers.storedBy.find((node) => graph.nodeTypeCodeOf(node) === objectType)
        return {kind: 'native', objectClass: owner === undefined ? undefined : graph.nodeName(owner)}
      }
      return {kind: 'unknown', detail: 'through-tasks'}
    }
    const target = candidates[0]
    if (isReaction(target)) {
      // Settles when another promise does (then(), a combinator, or an async function that returned a
      // promise): describe what holds that one's resolver instead, a few levels deep.
      const source = promiseOfReaction(target)
      const owner = source >= 0 ? resultOwner.get(source) : undefined
      if (owner !== undefined) {
        return {kind: 'async-function', functionName: generators[owner].functionName, objectNode: source, objectHeapId: graph.nodeId(source)}
      }
      const inner = source >= 0 && depth < 4 ? describeHolder(source, depth + 1) : undefined
      if (inner && inner.kind !== 'unknown') return {...inner, throughPromise: true}
      return {
        kind: 'promise-reaction',
        objectNode: source >= 0 ? source : undefined,
        objectHeapId: source >= 0 ? graph.nodeId(source) : undefined,
      }
    }
    return describePath(rootPathTo(target))
  }

  /** For a stuck task: where its resolver actually is, searched from the stuck frames themselves. */
  function describeStuckHolder(promise: number, frameNodes: number[]): HeapHolder {
    const settlers = promise >= 0 ? settlersOf(promise) : undefined
    const wanted = new Set(settlers ? [...settlers.builtinResolvers] : [])
    const from = new Map<number, number>()
    const localQueue: number[] = []
    for (const node of frameNodes) {
      from.set(node, -1)
      localQueue.push(node)
    }
    let found = -1
    for (let i = 0; i < localQueue.length && i < 200_000 && found < 0; i++) {
      const node = localQueue[i]
      for (let e = graph.firstEdgeOf(node); e < graph.endEdgeOf(node); e++) {
        const to = graph.edgeTarget(e)
        if (from.has(to) || (reached[to] && !wanted.has(to))) continue
        from.set(to, e)
        if (wanted.has(to)) {
          found = to
          break
        }
        localQueue.push(to)
      }
    }
    if (found < 0) return {kind: 'waiting-task-only'}
    const path: number[] = []
    for (let node = found, e = from.get(node) ?? -1; e >= 0; node = graph.edgeSource(e), e = from.get(node) ?? -1) path.push(e)
    path.reverse()
    const start = path.length > 0 ? graph.edgeSource(path[0]) : found
    const g = generatorIndex.has(start) ? generators[generatorIndex.get(start)!] : undefined
    const hops = path
      .slice(1)
      .map((e) => hopText(e))
      .join('')
    return {kind: 'waiting-task-only', functionName: g?.functionName, path: hops.replace(/^\./, '') || undefined}
  }

  /** One hop of a property path; element indexes are left out so that paths compare across tasks. */
  function hopText(e: number): string {
    const type = graph.edgeType(e)
    const name = graph.edgeName(e)
    if (type === 'property' || type === 'context') return `.${name}`
    if (type === 'element') return '[]'
    return ''
  }

  /**
   * What the last hops of a root→resolver path say: the nearest meaningful object (a queue-like owner
   * of a wait list, found a few objects up, is preferred), or a timer, a listener, a closure variable.
   */
  function describePath(path: number[]): HeapHolder {
    const hops: string[] = []
    // The first named object on the way up (e.g. a Waiter record); kept while looking further up for a
    // queue-like owner of a wait list (Channel → queue → Waiter → resolve).
    let fallback: HeapHolder | undefined
    let objectsSeen = 0
    for (let k = path.length - 1; k >= 0 && path.length - k <= 24; k--) {
      const e = path[k]
      const source = graph.edgeSource(e)
      const name = graph.nodeName(source)
      const sourceType = graph.nodeType(source)
      hops.unshift(hopText(e))
      const pathText = (): string => hops.join('')
      const isNamedObject = sourceType === 'object' && !GENERIC_NAMES.has(name) && !name.startsWith('system /') && !isPromise(source)
      const boundary =
        generatorIndex.has(source) || sourceType === 'synthetic' || source === 0 || sourceType === 'closure' || name === 'Timeout' || graph.edgeName(e) === '_events'
      if (fallback && boundary) {
        // A wait list kept in the closure of one of node's own listeners (events.on()'s iterator queues
        // its resolvers) is held by that listener: say which event, as for a listener holding the
        // resolver itself. A program's own listener that reaches a queue through its scope (a SIGTERM
        // handler closing over the module) says nothing about the wait: the queue stays the holder.
        if (sourceType === 'closure' && graph.edgeName(e) === 'context' && (urlOfClosure(source) ?? '').startsWith('node:')) {
          const outer = describePath(path.slice(0, k))
          if (outer.kind === 'event-listener') {
            const contextNode = graph.edgeTarget(e)
            const variable = k + 1 < path.length && graph.edgeSource(path[k + 1]) === contextNode ? graph.edgeName(path[k + 1]) : '?'
            return {...outer, variable, closure: name || '(anonymous)', contextNode, eventName: awaitedEvent(outer, contextNode)}
          }
        }
        return fallback
      }
      if (name === 'Timeout' && sourceType === 'object') {
        return {kind: 'timer', path: `Timeout${pathText()}`, objectNode: source, objectHeapId: graph.nodeId(source), objectClass: 'Timeout'}
      }
      if (graph.edgeName(e) === '_events' && sourceType === 'object') {
        const eventName = k + 1 < path.length ? graph.edgeName(path[k + 1]) : '?'
        return {kind: 'event-listener', path: `${name}${pathText()}`, objectNode: source, objectHeapId: graph.nodeId(source), objectClass: name, eventName}
      }
      if (generatorIndex.has(source)) {
        const g = generators[generatorIndex.get(source)!]
        return {kind: 'task-locals', functionName: g.functionName, path: pathText().replace(/^\./, '') || undefined, objectNode: source, objectHeapId: graph.nodeId(source)}
      }
      if (isPromise(source) && graph.edgeName(e) === 'reactions_or_result') {
        return {kind: 'promise-reaction', objectNode: source, objectHeapId: graph.nodeId(source)}
      }
      if (sourceType === 'synthetic' || source === 0) return {kind: 'root', objectClass: name || '(root)', path: pathText() || undefined}
      if (isNamedObject) {
        const holder = describeObjectHolder(source, path.slice(k), pathText())
        if (holder.kind === 'channel-queue') return holder
        fallback ??= holder
        if (++objectsSeen >= 4) return fallback
        continue
      }
      if (sourceType === 'closure' && graph.edgeName(e) === 'context') {
        const contextNode = graph.edgeTarget(e)
        const variable = k + 1 < path.length && graph.edgeSource(path[k + 1]) === contextNode ? graph.edgeName(path[k + 1]) : '?'
        const closure = name || '(anonymous)'
        // The closure itself may be held by something more telling (a listener, a timer, a queue).
        const outer = describePath(path.slice(0, k))
        if (outer.kind === 'event-listener') return {...outer, variable, closure, contextNode, eventName: awaitedEvent(outer, contextNode)}
        if (outer.kind === 'timer' || outer.kind === 'channel-queue') return {...outer, variable, closure, contextNode}
        return {
          kind: 'closure-variable',
          variable,
          closure,
          contextNode,
          ...(outer.kind === 'object' ? {objectClass: outer.objectClass, path: outer.path} : {}),
          objectNode: source,
          objectHeapId: graph.nodeId(source),
        }
      }
    }
    return fallback ?? {kind: 'unknown', detail: 'internal', path: hops.join('') || undefined}
  }

  /**
   * The event a listener-held wait is for. The walk may reach the shared closure scope through the
   * 'error' listener that events.once / events.on add beside the real one: when another listener on the
   * same emitter closes over the same scope, its event is the one awaited.
   */
  function awaitedEvent(holder: HeapHolder, contextNode: number): string | undefined {
    if (holder.eventName !== 'error' || holder.objectNode === undefined) return holder.eventName
    const events = graph.child(holder.objectNode, '_events')
    if (events < 0) return holder.eventName
    const closesOver = (fn: number): boolean => graph.nodeTypeCodeOf(fn) === closureType && graph.child(fn, 'context') === contextNode
    for (let e = graph.firstEdgeOf(events); e < graph.endEdgeOf(events); e++) {
      if (graph.edgeTypeCodeOf(e) !== propertyEdge || graph.edgeName(e) === 'error') continue
      const listener = graph.edgeTarget(e)
      if (closesOver(listener) || [...graph.elements(listener).values()].some(closesOver)) return graph.edgeName(e)
    }
    return holder.eventName
  }

  function describeObjectHolder(objectNode: number, pathFromObject: number[], pathText: string): HeapHolder {
    const objectClass = graph.nodeName(objectNode)
    const first = pathFromObject[0]
    const firstName = graph.edgeName(first)
    const firstTarget = graph.edgeTarget(first)
    const channelName =
      graph.stringProperty(objectNode, 'name') ?? graph.stringProperty(objectNode, 'label') ?? graph.stringProperty(objectNode, 'id')
    const targetIsArrayLike =
      ['Array', 'Set', 'Map'].includes(graph.nodeName(firstTarget)) ||
      graph.nodeType(firstTarget) === 'array' ||
      (graph.nodeType(firstTarget) === 'object' && (channelName !== undefined || CHANNEL_CLASS.test(objectClass)))
    const base = {path: `${objectClass}${pathText}`, objectNode, objectHeapId: graph.nodeId(objectNode), objectClass, channelName}
    if (graph.edgeType(first) === 'property' && targetIsArrayLike && QUEUE_PROPERTY.test(firstName)) {
      return {...base, kind: 'channel-queue', queueProperty: firstName}
    }
    return {...base, kind: 'object'}
  }
}

/** A channel-queue holder makes the task a send or a receive, by its function name or the queue's. */
export function taskKind(functionName: string, holder: HeapHolder): HeapTaskKind {
  if (holder.kind !== 'channel-queue') return 'promise'
  if (SEND_NAME.test(functionName)) return 'channel-send'
  if (RECEIVE_NAME.test(functionName)) return 'channel-receive'
  const queue = holder.queueProperty ?? ''
  if (/send|put|writ|producer|setter/i.test(queue)) return 'channel-send'
  if (/recv|receiv|take|read|consumer|getter/i.test(queue)) return 'channel-receive'
  return 'promise'
}

