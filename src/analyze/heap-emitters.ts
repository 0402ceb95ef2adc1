// Tasks that await an event, from the heap graph alone: which emitter and event (the event asked for,
// not the 'error' listener events.once adds), and for a stream the chain down its pipes with who holds
// each in-flight write's callback. Also the orphan-emitter shape: the awaited emitter is held only by
// the waiting task itself while the pipeline holds another instance of its class that nobody listens
// to for that event. Pure: the second look's readings come in as data (see buildEmitterReport).

import type {AwaitedEmitter, AwaitedStream, StreamState} from '../model/dump.js'
import type {Finding} from '../model/findings.js'
import type {HeapGraph} from './heap-graph.js'
import {instancePaths, type HeapObservation, type ObjectReading} from './heap-split-queue.js'
import type {HeapWaitAnalysis} from './heap-waits.js'

/** A stream of an awaited emitter's pipe chain, as the graph shows it. */
export interface StreamLink {
  node: number
  heapId: number
  className: string
  implementation: string[]
  callbackHolder: AwaitedStream['callbackHolder']
  callbackHeldBy?: string
}

/** The other instance a pipeline holds when the awaited emitter is orphaned. */
export interface EmitterTwin {
  heapId: number
  className: string
  paths: string[]
  /** Set when the awaited instance is also held through plain data that no live code reaches. */
  awaitedHeldBy?: 'data-only'
}

/** One emitter that blocked tasks await an event on. */
export interface EmitterWait {
  /** Indexes into HeapWaitAnalysis.tasks. */
  taskIndexes: number[]
  emitterNode: number
  emitterHeapId: number
  className: string
  eventName: string
  paths: string[]
  /** The awaited stream then the streams down its pipes; [] when the emitter is not a stream. */
  streams: StreamLink[]
  /** Set when only the waiting tasks hold the emitter and the pipeline holds a twin (see findTwin). */
  twin?: EmitterTwin
}

/** Implementation methods reported for a stream, in the order they matter for a stalled write. */
const WRITE_METHODS = ['_transform', '_write', '_writev', '_final']
/** Classes too generic for "another instance of the same class": the referring property must match too. */
const GENERIC_CLASSES = new Set(['EventEmitter', 'Object', 'EventTarget', ''])
/** Bounds on the walks, so a huge heap cannot make the analysis slow. */
const REVERSE_WALK_CAP = 20_000
const TWIN_CHECKS = 200
const MAX_CHAIN = 8
const MAX_ORPHAN_CHECKS = 16

export function findEmitterWaits(graph: HeapGraph, analysis: HeapWaitAnalysis): EmitterWait[] {
  const byEmitter = new Map<number, EmitterWait>()
  analysis.tasks.forEach((task, taskIndex) => {
    const holder = task.holder
    if (task.state !== 'blocked' || holder.kind !== 'event-listener' || holder.objectNode === undefined) return
    const key = holder.objectNode
    const existing = byEmitter.get(key)
    if (existing && existing.eventName === holder.eventName) {
      existing.taskIndexes.push(taskIndex)
      return
    }
    if (existing) return // a second event on one emitter: the first one stands for it
    byEmitter.set(key, {
      taskIndexes: [taskIndex],
      emitterNode: key,
      emitterHeapId: graph.nodeId(key),
      className: graph.nodeName(key),
      eventName: holder.eventName ?? '?',
      paths: emitterPaths(graph, analysis, key),
      streams: streamChain(graph, analysis, key),
    })
  })
  const waits = [...byEmitter.values()]
  // The orphan test walks the graph (backwards from the emitter, and over every node for a twin): for
  // the emitters with the most waiting tasks only, so thousands of awaited sockets stay cheap.
  const byTasks = [...waits].sort((a, b) => b.taskIndexes.length - a.taskIndexes.length).slice(0, MAX_ORPHAN_CHECKS)
  for (const wait of byTasks) {
    const walls = taskWalls(graph, analysis, wait.taskIndexes)
    if (heldOnlyThrough(graph, analysis, wait.emitterNode, walls)) {
      wait.twin = findTwin(graph, analysis, wait, walls)
      continue
    }
    // Held through plain data as well (a closure's `state.session`, `this.conn.events`, a module
    // variable): still orphaned when no live code can reach it (see liveSideReach) while a twin is
    // held by live code. Only looked at when a twin candidate exists: it walks the whole graph.
    if (findTwin(graph, analysis, wait, walls) === undefined) continue
    const live = liveSideReach(graph, analysis, walls)
    if (live[wait.emitterNode] === 1) continue
    const twin = findTwin(graph, analysis, wait, walls, live)
    if (twin) wait.twin = {...twin, awaitedHeldBy: 'data-only'}
  }
  return waits
}

/**
 * What live code can reach: a walk from the GC roots over strong edges that does not pass through the
 * waiting tasks' own objects (walls), suspended functions that cannot resume, or a module's top-level
 * scope (a Context whose previous is the native context). Every function can name a top-level
 * variable, so a top-level binding says nothing about who uses an object; a timer, a listener or a
 * live task that captured the object (or the object that owns it, as a method's `this`) does.
 */
function liveSideReach(graph: HeapGraph, analysis: HeapWaitAnalysis, walls: ReadonlySet<number>): Uint8Array {
  const seen = new Uint8Array(graph.nodeCount)
  // Node's own modules keep timers, listeners and handles in their top-level scopes: only the
  // program's top-level scopes (those of functions defined in a non-node: script) are blocked.
  const programScope = (context: number): boolean => {
    for (const e of graph.incomingEdges(context)) {
      if (graph.edgeName(e) !== 'context' || graph.nodeType(graph.edgeSource(e)) !== 'closure') continue
      const location = graph.location(graph.edgeSource(e))
      const url = location ? analysis.scriptUrls.get(location.scriptId) : undefined
      if (url !== undefined) return !url.startsWith('node:')
    }
    return false
  }
  const blocked = (node: number): boolean => {
    if (walls.has(node)) return true
    if (graph.nodeName(node) !== 'system / Context') return false
    const previous = graph.child(node, 'previous')
    return previous >= 0 && graph.nodeName(previous) === 'system / NativeContext' && programScope(node)
  }
  for (const g of analysis.generators) if (!g.live) seen[g.node] = 1
  const queue = [0]
  seen[0] = 1
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i]
    for (let e = graph.firstEdgeOf(node); e < graph.endEdgeOf(node); e++) {
      if (graph.edgeType(e) === 'weak') continue
      const to = graph.edgeTarget(e)
      if (seen[to] === 1) continue
      seen[to] = 1
      if (!blocked(to)) queue.push(to)
    }
  }
  for (const g of analysis.generators) if (!g.live) seen[g.node] = 0
  return seen
}

/**
 * Paths to an emitter from the program's variables, leaving out its own listeners' bookkeeping (the
 * `target` of a once() wrapper, the `emitter` variable of events.once's closures): referrers whose
 * path from the roots passes through the emitter itself.
 */
function emitterPaths(graph: HeapGraph, analysis: HeapWaitAnalysis, emitter: number): string[] {
  const paths = instancePaths(graph, analysis, emitter, (referrer) => analysis.rootPath(referrer).some((e) => graph.edgeSource(e) === emitter))
  // Paths through symbol-keyed internals (a handle's owner_symbol) come after the program's own names.
  return [...paths.filter((p) => !p.includes('<symbol')), ...paths.filter((p) => p.includes('<symbol'))]
}

/** The awaited stream and every stream down its pipes (breadth first), or [] for a plain emitter. */
function streamChain(graph: HeapGraph, analysis: HeapWaitAnalysis, start: number): StreamLink[] {
  const chain: StreamLink[] = []
  const seen = new Set<number>()
  const queue = [start]
  while (queue.length > 0 && chain.length < MAX_CHAIN) {
    const node = queue.shift()!
    if (seen.has(node)) continue
    seen.add(node)
    const writable = graph.child(node, '_writableState')
    const readable = graph.child(node, '_readableState')
    if (writable < 0 && readable < 0) continue
    chain.push({node, heapId: graph.nodeId(node), className: graph.nodeName(node), implementation: implementation(graph, analysis, node), ...callbackHolder(graph, analysis, node, writable)})
    const pipes = readable >= 0 ? graph.child(readable, 'pipes') : -1
    if (pipes >= 0) for (const next of graph.elements(pipes).values()) queue.push(next)
  }
  return chain
}

/** "_transform at file:line:col" for each write method the program defines (own or inherited). */
function implementation(graph: HeapGraph, analysis: HeapWaitAnalysis, node: number): string[] {
  const found: string[] = []
  for (const method of WRITE_METHODS) {
    for (let object = node, depth = 0; object >= 0 && depth < 5; object = graph.child(object, '__proto__'), depth++) {
      const fn = graph.child(object, method)
      if (fn < 0 || graph.nodeType(fn) !== 'closure') continue
      const location = graph.location(fn)
      const url = location ? analysis.scriptUrls.get(location.scriptId) : undefined
      if (location && url && !url.startsWith('node:')) found.push(`${method} at ${url}:${location.line + 1}:${location.column + 1}`)
      break // the nearest definition is the one that runs
    }
  }
  return found
}

/**
 * Who holds the Writable's write callback (state.onwrite, one bound function per stream, handed to
 * every _write/_writev) besides the state itself. Nothing else: no one can ever call it, so a write in
 * flight can never complete. Weak edges (feedback vectors) and holders reachable only through stuck
 * tasks do not count.
 */
function callbackHolder(graph: HeapGraph, analysis: HeapWaitAnalysis, stream: number, state: number): Pick<StreamLink, 'callbackHolder' | 'callbackHeldBy'> {
  const onwrite = state >= 0 ? graph.child(state, 'onwrite') : -1
  if (onwrite < 0) return {callbackHolder: 'other', callbackHeldBy: 'unknown (no onwrite in the state)'}
  let other: string | undefined
  for (const e of graph.incomingEdges(onwrite)) {
    const source = graph.edgeSource(e)
    if (graph.edgeType(e) === 'weak' || (source === state && graph.edgeName(e) === 'onwrite')) continue
    if (!analysis.isReached(source)) continue
    const by = `${graph.nodeName(source) || graph.nodeType(source)}.${graph.edgeName(e)}`
    if (source === stream || source === state) return {callbackHolder: 'stream', callbackHeldBy: by}
    other ??= graph.nodeName(source) === 'system / Context' ? `closure variable '${graph.edgeName(e)}'` : by
  }
  return other === undefined ? {callbackHolder: 'none'} : {callbackHolder: 'other', callbackHeldBy: other}
}

/** The waiting tasks' own objects: their suspended functions and the objects they run as methods of. */
function taskWalls(graph: HeapGraph, analysis: HeapWaitAnalysis, taskIndexes: number[]): Set<number> {
  const walls = new Set<number>()
  const receivers = new Set<number>()
  const ownContexts = new Set<number>()
  for (const index of taskIndexes) {
    for (const frame of analysis.tasks[index].frames) {
      const g = analysis.generators[frame]
      walls.add(g.node)
      ownContexts.add(graph.child(g.node, 'context'))
      if (g.receiverClass !== undefined && g.receiverNode >= 0 && !isGlobalObject(graph, g.receiverNode)) receivers.add(g.receiverNode)
    }
  }
  // A receiver whose `this` a live closure captured (a timer or listener set up in one of its methods)
  // may still act on its emitter from there: it is not the waiting task's alone.
  for (const receiver of receivers) {
    let captured = false
    for (const e of graph.incomingEdges(receiver)) {
      const source = graph.edgeSource(e)
      if (graph.edgeName(e) === 'this' && graph.nodeName(source) === 'system / Context' && !ownContexts.has(source) && analysis.isReached(source)) captured = true
    }
    if (!captured) walls.add(receiver)
  }
  return walls
}

function isGlobalObject(graph: HeapGraph, node: number): boolean {
  for (const e of graph.incomingEdges(node)) if (graph.nodeType(graph.edgeSource(e)) === 'synthetic') return true
  return false
}

/**
 * True when no path from the GC roots reaches target except through the walls: a reverse walk from
 * the target that never meets a root. Weak edges and referrers reachable only through stuck tasks do
 * not count; a walk that grows past REVERSE_WALK_CAP nodes is taken as "held".
 */
export function heldOnlyThrough(graph: HeapGraph, analysis: HeapWaitAnalysis, target: number, walls: ReadonlySet<number>): boolean {
  const seen = new Set<number>([target])
  const queue = [target]
  for (let i = 0; i < queue.length; i++) {
    for (const e of graph.incomingEdges(queue[i])) {
      if (graph.edgeType(e) === 'weak') continue
      const source = graph.edgeSource(e)
      if (walls.has(source) || seen.has(source)) continue
      if (source === 0 || graph.nodeType(source) === 'synthetic') return false
      if (!analysis.isReached(source)) continue
      seen.add(source)
      if (seen.size > REVERSE_WALK_CAP) return false
      queue.push(source)
    }
  }
  return true
}

/**
 * Another instance of the awaited emitter's class that the pipeline holds without going through the
 * waiting tasks, and that no one listens to for the awaited event (a live instance emitting it to
 * nobody). For a generic class (EventEmitter), it must also be referred to by a property of the same
 * name as the awaited one.
 */
function findTwin(graph: HeapGraph, analysis: HeapWaitAnalysis, wait: EmitterWait, walls: ReadonlySet<number>, live?: Uint8Array): EmitterTwin | undefined {
  const referringNames = (node: number): Set<string> => {
    const names = new Set<string>()
    for (const e of graph.incomingEdges(node)) if (graph.edgeType(e) === 'property') names.add(graph.edgeName(e))
    return names
  }
  const generic = GENERIC_CLASSES.has(wait.className)
  const awaitedNames = generic ? referringNames(wait.emitterNode) : new Set<string>()
  const objectType = graph.nodeTypeCode('object')
  let checks = 0
  for (let node = 0; node < graph.nodeCount && checks < TWIN_CHECKS; node++) {
    if (node === wait.emitterNode || graph.nodeTypeCodeOf(node) !== objectType || graph.nodeName(node) !== wait.className) continue
    if (graph.child(node, '_events') < 0 || !analysis.isReached(node)) continue
    checks++
    if (generic && ![...referringNames(node)].some((name) => awaitedNames.has(name))) continue
    const events = graph.child(node, '_events')
    const listener = graph.child(events, wait.eventName)
    if (listener >= 0 && graph.nodeType(listener) !== 'hidden' && !graph.nodeName(listener).startsWith('system / Oddball')) continue
    if (heldOnlyThrough(graph, analysis, node, walls)) continue
    if (live !== undefined && live[node] !== 1) continue // the twin must be held by live code
    return {heapId: graph.nodeId(node), className: wait.className, paths: emitterPaths(graph, analysis, node)}
  }
  return undefined
}

/** An EmitterWait with its tasks' ids, await sites and awaited promises, ready to be judged. */
export interface EmitterWaitReport extends Omit<EmitterWait, 'taskIndexes' | 'emitterNode' | 'streams'> {
  taskIds: number[]
  sites: string[]
  promiseHeapIds: number[]
  streams: Array<Omit<StreamLink, 'node'>>
}

/** Every reading of one object in the look, in order: before, the samples between, after. */
function readingsOf(observation: HeapObservation, heapId: number): ObjectReading[] {
  const list = [observation.before.get(heapId), ...(observation.samples?.get(heapId) ?? []), observation.after.get(heapId)]
  return list.filter((r): r is ObjectReading => r !== undefined && r.alive)
}

/** Did a write complete (or the stream end, break, or empty) between two readings? */
export function streamMoved(before: StreamState, after: StreamState): boolean {
  return (
    after.writableLength < before.writableLength ||
    after.pendingCallbacks < before.pendingCallbacks ||
    after.writing !== before.writing ||
    after.ended !== before.ended ||
    after.destroyed !== before.destroyed ||
    after.errored !== before.errored ||
    (after.readableLength ?? 0) !== (before.readableLength ?? 0)
  )
}

/**
 * The emitters as the dump shows them, and their findings:
 * - stalled-stream-write, error: a write in flight whose callback nothing holds (the implementation
 *   dropped it), or a destroyed stream awaited for 'drain', with no stream of the chain moving and the
 *   tasks' promises still pending across the second look;
 * - stalled-stream-write, warning: no progress across the look and the write in flight is kept by the
 *   stream itself (a Transform whose readable side nothing reads), or the stream is corked;
 * - stalled-stream-write, info: no progress, but the write's callback is held elsewhere (a timer, a
 *   socket request, a closure): the sink's own I/O may still complete;
 * - uninitialized-channel-send (orphan emitter), error when the awaited instance and the tasks did not
 *   move during the look, warning when there was no look.
 * Nothing moved means nothing for ≥ the observed time: a lower bound, said so in the summary.
 */
export function buildEmitterReport(reports: readonly EmitterWaitReport[], observation: HeapObservation | undefined): {emitters: AwaitedEmitter[]; findings: Finding[]} {
  const observed = observation !== undefined && observation.completed
  const observedMs = observed ? Math.round(observation.elapsedMs) : null
  const seconds = observed ? `${(observation.elapsedMs / 1000).toFixed(1)} s` : ''
  const emitters: AwaitedEmitter[] = []
  const findings: Finding[] = []
  for (const report of reports) {
    const before = observation?.before.get(report.emitterHeapId)
    const after = observation?.after.get(report.emitterHeapId)
    const last = after?.alive ? after : before
    const streams: AwaitedStream[] = report.streams.map((link) => {
      const readings = observation ? readingsOf(observation, link.heapId).flatMap((r) => r.stream ?? []) : []
      return {
        className: link.className,
        heapId: link.heapId,
        implementation: link.implementation,
        callbackHolder: link.callbackHolder,
        ...(link.callbackHeldBy === undefined ? {} : {callbackHeldBy: link.callbackHeldBy}),
        state: readings.at(-1) ?? null,
        moved: observed && readings.length >= 2 ? readings.some((r, i) => i > 0 && streamMoved(readings[i - 1], r)) : null,
      }
    })
    const fieldReadings = observation ? readingsOf(observation, report.emitterHeapId).flatMap((r) => (r.fields ? [JSON.stringify(r.fields)] : [])) : []
    const fieldsMoved = observed && fieldReadings.length >= 2 ? fieldReadings.some((f) => f !== fieldReadings[0]) : null
    // A stream moves when a write completes anywhere down its chain; a plain emitter when its fields change.
    const emitterMoved = streams.length > 0 ? (streams.some((s) => s.moved === null) ? null : streams.some((s) => s.moved === true)) : fieldsMoved
    const name = report.paths[0] ?? `${report.className}@${report.emitterHeapId}`
    emitters.push({
      className: report.className,
      heapId: report.emitterHeapId,
      paths: report.paths,
      eventName: report.eventName,
      taskIds: report.taskIds,
      listeners: last?.listeners ?? null,
      fields: last?.fields ?? null,
      moved: emitterMoved,
      observedMs,
      ...(streams.length > 0 ? {streams} : {}),
    })
    const promisesPending =
      observed && report.promiseHeapIds.length > 0 && report.promiseHeapIds.every((id) => observation.after.get(id)?.alive === true && observation.after.get(id)?.promiseState === 'pending')
    const base = {sites: report.sites, taskIds: report.taskIds, eventName: report.eventName, emitter: name, observedMs}

    if (streams.length > 0 && promisesPending && streams.every((s) => s.moved === false)) {
      const finding = judgeStreams(streams, report, name, seconds)
      if (finding) findings.push({...finding, evidence: {...base, streams, ...finding.evidence}})
    }
    if (report.twin && (!observed || (promisesPending && fieldsMoved !== true))) {
      const twin = report.twin
      const twinReading = observation?.after.get(twin.heapId) ?? observation?.before.get(twin.heapId)
      const twinName = twin.paths[0] ?? `${twin.className}@${twin.heapId}`
      findings.push({
        kind: 'uninitialized-channel-send',
        severity: observed ? 'error' : 'warning',
        summary:
          `${report.taskIds.length} task(s) wait for '${report.eventName}' on ${name} (${report.className}), ${twin.awaitedHeldBy === 'data-only' ? 'which only the waiting task and data no live code reaches hold any more' : 'which nothing but the waiting task holds any more'}, ` +
          `while the pipeline holds another ${report.className}, ${twinName}, that no one listens to for '${report.eventName}': the waiter kept an instance that was replaced` +
          (observed ? `; no progress in ${seconds} (a lower bound on the wait).` : '; not confirmed by a second look.'),
        evidence: {
          ...base,
          shape: 'orphan-emitter',
          channels: [twinName, name],
          instances: [
            {side: 'emit', className: twin.className, paths: twin.paths, heapId: twin.heapId, fields: twinReading?.fields ?? null},
            {side: 'wait', className: report.className, paths: report.paths, heapId: report.emitterHeapId, fields: last?.fields ?? null},
          ],
          sendObjectHeapId: twin.heapId,
          receiveObjectHeapId: report.emitterHeapId,
        },
        suggestion:
          `Have the waiting code look the ${report.className} up where the pipeline keeps the current one (${twinName}) each time it waits, ` +
          `or re-subscribe it when the instance is replaced (e.g. on reconnect or reload).`,
      })
    }
  }
  return {emitters, findings}
}

/** The stream finding for a chain in which nothing moved (see buildEmitterReport), or null. */
function judgeStreams(streams: AwaitedStream[], report: EmitterWaitReport, name: string, seconds: string): Omit<Finding, 'evidence'> & {evidence: Record<string, unknown>} | null {
  const waiters = `${report.taskIds.length} task(s) waiting for '${report.eventName}' on ${name}`
  const lowerBound = `no stream of the chain moved in ${seconds} (waiting ≥ ${seconds}, no progress: a lower bound)`
  const where = (s: AwaitedStream): string => (s.implementation.length > 0 ? ` (${s.implementation.join(', ')})` : '')
  const dropped = streams.find((s) => s.state?.writing === true && s.callbackHolder === 'none')
  if (dropped) {
    return {
      kind: 'stalled-stream-write',
      severity: 'error',
      summary:
        `${waiters} can never resume: ${dropped.className}${where(dropped)} has a write in flight whose callback nothing holds any more ` +
        `(the implementation returned without calling it), so the write never completes and '${report.eventName}' never comes; ${lowerBound}.`,
      evidence: {stalledStream: dropped.className, implementation: dropped.implementation, reason: 'callback-dropped'},
      suggestion: `Make every path of ${dropped.implementation[0]?.split(' at ')[0] ?? "the stream's write method"} call its callback exactly once (also when it skips or defers a chunk).`,
    }
  }
  const destroyed = streams.find((s) => s.state?.destroyed === true)
  if (destroyed && report.eventName === 'drain') {
    return {
      kind: 'stalled-stream-write',
      severity: 'error',
      summary: `${waiters} can never resume: ${destroyed.className} was destroyed${destroyed.state?.errored ? ` (${destroyed.state.errored})` : ''} and a destroyed stream never emits 'drain'; ${lowerBound}.`,
      evidence: {stalledStream: destroyed.className, reason: 'destroyed'},
      suggestion: "Wait for 'drain' together with 'close'/'error' (events.once rejects only on 'error'), or use stream.pipeline / finished() to learn that the stream ended.",
    }
  }
  const corked = streams.find((s) => (s.state?.corked ?? 0) > 0 && s.state?.writing === false)
  if (corked) {
    return {
      kind: 'stalled-stream-write',
      severity: 'warning',
      summary: `${waiters}: ${corked.className} is corked (depth ${corked.state!.corked}) with ${corked.state!.writableLength} buffered and nothing written; ${lowerBound}.`,
      evidence: {stalledStream: corked.className, reason: 'corked'},
      suggestion: 'Call uncork() once for every cork() (process.nextTick(() => stream.uncork()) is the usual pattern).',
    }
  }
  const inFlight = [...streams].reverse().find((s) => s.state?.writing === true)
  if (!inFlight) return null
  if (inFlight.callbackHolder === 'stream') {
    return {
      kind: 'stalled-stream-write',
      severity: 'warning',
      summary: `${waiters}: ${inFlight.className}${where(inFlight)} keeps its write callback until its readable side is read (${inFlight.callbackHeldBy}), and nothing reads it; ${lowerBound}.`,
      evidence: {stalledStream: inFlight.className, implementation: inFlight.implementation, reason: 'readable-side-unread'},
      suggestion: `Consume ${inFlight.className}'s output (pipe it on, or read it), or use a Writable where no output is wanted.`,
    }
  }
  return {
    kind: 'stalled-stream-write',
    severity: 'info',
    summary: `${waiters}: ${inFlight.className}${where(inFlight)} has one write in flight whose callback is held by ${inFlight.callbackHeldBy ?? 'something alive'} (its own I/O may still complete); ${lowerBound}.`,
    evidence: {stalledStream: inFlight.className, implementation: inFlight.implementation, reason: 'write-pending'},
    suggestion: 'Run stacks again later: if the write is still in flight, look at what its callback waits for (the socket, the timer or the request named above).',
  }
}
