// Pure walk of a heap snapshot graph: which async functions are suspended, what each awaits, who
// awaits it (the caller chain), what holds the awaited promise's resolve function, and whether that
// resolver can still be called by anything alive. No I/O; see src/attach/heap-tasks.ts for the CDP side.

import type {HeapGraph, HeapLocation} from './heap-graph.js'
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
  const objectType = graph.nodeTypeCode('object')
  const closureType = graph.nodeTypeCode('closure')
  const propertyEdge = graph.edgeTypeCode('property')
  const elementEdge = graph.edgeTypeCode('element')
  const internalEdge = graph.edgeTypeCode('internal')
  const contextEdge = graph.edgeTypeCode('context')

  const isPromise = (node: number): boolean => graph.nodeName(node) === 'Promise' && graph.nodeTypeCodeOf(node) === objectType
  const isReaction = (node: number): boolean => graph.nodeName(node) === 'system / PromiseReaction'
  const isContext = (node: number): boolean => graph.nodeName(node) === 'system / Context'
  const codeName = (closure: number): string => {
    const code = graph.child(closure, 'code')
    return code < 0 ? '' : graph.nodeName(code)
  }

  // 1. Suspended async functions and script URLs.
  const generators: HeapGenerator[] = []
  const generatorIndex = new Map<number, number>()
  const scriptUrls = new Map<number, string>()
  const urlOfClosure = (closure: number): string | undefined => {
    const shared = graph.child(closure, 'shared')
    if (shared < 0) return undefined
    let script = graph.child(shared, 'script_or_debug_info')
    if (script >= 0 && !looksLikeUrl(graph.nodeName(script))) script = graph.child(script, 'script')
    if (script < 0) return undefined
    const name = graph.nodeName(script)
    return looksLikeUrl(name) ? name : undefined
  }
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

  // 2. The promise each generator awaits: Promise -reactions_or_result-> PromiseReaction (-> next …)
  //    -> Await{Resolve,Reject}Closure -context-> await Context -extension-> Generator.
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

  // 3. What can settle a promise. A referrer that merely stores the promise (a property, an array
  //    element, a variable of a closure scope, a generator's registers) cannot; a resolving-function
  //    context, a reaction that derives it, a capability or an internal this walk does not know can.
  //    A promise with no settler at all was either made natively (a handle settles it from C++; see
  //    nativelyHeld) or made by `new Promise(executor)` whose resolve function is gone.
  interface Settlers {
    nodes: number[]
    /** A PromiseCapabilityDefaultResolve/Reject closure exists for it somewhere in the heap. */
    builtinResolvers: number[]
    /** Reactions on other promises that settle this one (then/catch/finally/thenable adoption). */
    reactions: number[]
    /** Objects that only store it (property, element, closure variable), for evidence and native checks. */
    storedBy: number[]
  }
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

  /**
   * True when native code can settle the promise without a JavaScript resolve function: a handle or
   * an embedder object points at it directly, or it is stored (through property storage) in an object
   * that wraps a native handle (fs requests, sockets, timers' handles: `javascript_to_native`).
   */
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

  // 4. Reachability from the GC roots over every edge (weak ones too: a WeakRef can bring an object
  //    back), treating suspended generators as walls until shown alive: a resolver reachable only
  //    through a task that can never run cannot be called. Fixpoint: a generator becomes alive when a
  //    settler of its awaited promise is reached, or its awaited promise is the result of a live one.
  const reached = new Uint8Array(graph.nodeCount)
  const parentEdge = new Int32Array(graph.nodeCount).fill(-1)
  const isWall = new Uint8Array(graph.nodeCount)
  for (const g of generators) isWall[g.node] = 1
  for (const node of options.opaqueNodes ?? []) if (node >= 0 && node < graph.nodeCount) isWall[node] = 1
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
        else if (owner === undefined) settleable = nativelyHeld(promise) || settlersOf(promise).nodes.some((s) => reached[s] === 1)
      }
      if (settleable) {
        g.live = true
        expandGenerator(g.node)
        changed = true
      }
    }
    drain()
  }

  // 5. Proof of "never resumes": nothing reached from the GC roots (other than through tasks that
  //    cannot run) can settle the awaited promise, and no native owner holds it; or it is the result of
  //    an async function that is itself stuck that way.
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
      verdict = !nativelyHeld(promise) && !settlersOf(promise).nodes.some((s) => reached[s] === 1)
    }
    neverMemo.set(promise, verdict)
    return verdict
  }

  // 6. Chains: a leaf awaits something that is not another suspended function's result.
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
    const never = !g.live && provablyNever(g.awaitedPromise, 0)
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

  /** Follows "result of a stuck async function" links down to the promise that is actually unsettleable. */
  function innermostNeverPromise(promise: number): number {
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

  /** Edges from the GC roots to node along the reachability walk's parent links. */
  function rootPathTo(node: number): number[] {
    const path: number[] = []
    for (let n = node, e = parentEdge[n]; e >= 0; n = graph.edgeSource(e), e = parentEdge[n]) {
      path.push(e)
      if (path.length > 10_000) break
    }
    return path.reverse()
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

  function taskKind(functionName: string, holder: HeapHolder): HeapTaskKind {
    if (holder.kind !== 'channel-queue') return 'promise'
    if (SEND_NAME.test(functionName)) return 'channel-send'
    if (RECEIVE_NAME.test(functionName)) return 'channel-receive'
    const queue = holder.queueProperty ?? ''
    if (/send|put|writ|producer|setter/i.test(queue)) return 'channel-send'
    if (/recv|receiv|take|read|consumer|getter/i.test(queue)) return 'channel-receive'
    return 'promise'
  }

  let reachedNodes = 0
  for (let node = 0; node < graph.nodeCount; node++) reachedNodes += reached[node]
  return {
    generators,
    tasks,
    scriptUrls,
    stats: {reachedNodes, fixpointRounds: rounds, analyzeMs: performance.now() - startMs},
    rootPath: rootPathTo,
    isReached: (node) => reached[node] === 1,
  }
}

function looksLikeUrl(name: string): boolean {
  return /^(file|node|https?|data|wasm):|^\//.test(name)
}
