// The ghostferry #331 shape for any queue-like object, from the heap graph alone: two instances of one
// queue "class" (the same constructor, or the same property / closure-variable names) where one holds
// only parked senders and the other only parked receivers. A candidate only: a healthy slow pipeline
// (a full first queue, an empty second one, a slow stage between) looks the same in one snapshot, so
// the finding needs the second look to show that neither side moved (see buildSplitQueueFindings).

import type {StreamState} from '../model/dump.js'
import type {Finding} from '../model/findings.js'
import type {HeapGraph} from './heap-graph.js'
import type {HeapHolder, HeapTaskChain, HeapWaitAnalysis} from './heap-waits.js'

export type QueueSide = 'send' | 'receive'

/** Words in a wait list's name or a queue method's name that say which side waits there. */
const SEND_WORDS = /put|push|send|writ|produc|space|full|offer|enqueue|setter/i
const RECEIVE_WORDS = /take|pull|recv|receiv|read|consum|data|empty|getter|dequeue|drain|next|shift|pop|poll/i

/** One parked task's queue, as far as the graph tells. */
export interface QueueWait {
  /** Index into HeapWaitAnalysis.tasks. */
  taskIndex: number
  side: QueueSide
  /** The queue instance: the object owning the wait list, or the closure scope of a closure-made queue. */
  instanceNode: number
  instanceHeapId: number
  /** Same key = same queue "class". */
  classKey: string
  /** Constructor name, or "closure queue (a, b, …)" / "object {a, b, …}". */
  className: string
}

/** One side of a split queue. */
export interface SplitQueueSide {
  instanceHeapId: number
  className: string
  /** Short property paths that reach the instance from a variable ("reader.out"), best first. */
  paths: string[]
  /** Indexes into HeapWaitAnalysis.tasks. */
  taskIndexes: number[]
  /** Heap ids of the promises those tasks await (for the second look). */
  promiseHeapIds: number[]
}

export interface SplitQueueCandidate {
  classKey: string
  send: SplitQueueSide
  receive: SplitQueueSide
}

/** Which side a wait is on, from the wait list's name, else the innermost function's name. */
export function queueSide(waitListName: string | undefined, functionName: string): QueueSide | undefined {
  for (const name of [waitListName ?? '', functionName]) {
    const send = SEND_WORDS.test(name)
    const receive = RECEIVE_WORDS.test(name)
    if (send !== receive) return send ? 'send' : 'receive'
  }
  return undefined
}

/** Queue waits of the blocked tasks whose holder is a wait list in an object or a closure scope. */
export function classifyQueueWaits(graph: HeapGraph, analysis: HeapWaitAnalysis): QueueWait[] {
  const waits: QueueWait[] = []
  analysis.tasks.forEach((task, taskIndex) => {
    if (task.state !== 'blocked') return
    const instance = queueInstance(graph, task.holder)
    if (!instance) return
    const innermost = analysis.generators[task.frames[0]]
    const side = queueSide(instance.waitList, innermost?.functionName ?? '')
    if (!side) return
    waits.push({taskIndex, side, instanceNode: instance.node, instanceHeapId: graph.nodeId(instance.node), classKey: instance.classKey, className: instance.className})
  })
  return waits
}

function queueInstance(graph: HeapGraph, holder: HeapHolder): {node: number; classKey: string; className: string; waitList?: string} | undefined {
  // A wait list in a closure scope (a queue made by a factory function), whatever holds the closure.
  if (holder.contextNode !== undefined && holder.variable !== undefined && holder.kind !== 'channel-queue') {
    const list = graph.child(holder.contextNode, holder.variable)
    if (list >= 0 && (graph.nodeName(list) === 'Array' || graph.nodeType(list) === 'array')) {
      const names = variableNames(graph, holder.contextNode)
      if (names.length >= 2) {
        return {node: holder.contextNode, classKey: `closure ${names.join(',')}`, className: `closure queue (${names.join(', ')})`, waitList: holder.variable}
      }
    }
  }
  if (holder.kind === 'channel-queue' || (holder.kind === 'object' && holder.objectNode !== undefined)) {
    const node = holder.objectNode!
    const className = graph.nodeName(node)
    const waitList = holder.queueProperty ?? holder.path?.split(/[.[]/)[1]
    if (className !== 'Object') return {node, classKey: `class ${className}`, className, waitList}
    const names = propertyNames(graph, node)
    return {node, classKey: `object ${names.join(',')}`, className: `object {${names.join(', ')}}`, waitList}
  }
  return undefined
}

function propertyNames(graph: HeapGraph, node: number): string[] {
  const names = new Set<string>()
  const propertyCode = graph.edgeTypeCode('property')
  for (let e = graph.firstEdgeOf(node); e < graph.endEdgeOf(node); e++) {
    if (graph.edgeTypeCodeOf(e) === propertyCode && graph.edgeName(e) !== '__proto__') names.add(graph.edgeName(e))
  }
  return [...names].sort()
}

function variableNames(graph: HeapGraph, context: number): string[] {
  const names = new Set<string>()
  const contextCode = graph.edgeTypeCode('context')
  for (let e = graph.firstEdgeOf(context); e < graph.endEdgeOf(context); e++) {
    if (graph.edgeTypeCodeOf(e) === contextCode) names.add(graph.edgeName(e))
  }
  return [...names].sort()
}

/**
 * Pairs of instances of one queue class where one has only parked senders and the other only parked
 * receivers, and the tasks on the two run different await sites. Each instance is in one pair at most.
 */
export function findSplitQueueCandidates(graph: HeapGraph, analysis: HeapWaitAnalysis, waits: QueueWait[]): SplitQueueCandidate[] {
  const byInstance = new Map<number, QueueWait[]>()
  for (const wait of waits) {
    const list = byInstance.get(wait.instanceNode) ?? []
    list.push(wait)
    byInstance.set(wait.instanceNode, list)
  }
  const onlySide = (list: QueueWait[]): QueueSide | undefined =>
    list.every((w) => w.side === list[0].side) ? list[0].side : undefined
  const candidates: SplitQueueCandidate[] = []
  const used = new Set<number>()
  const instances = [...byInstance.entries()]
  for (const [sendNode, senders] of instances) {
    if (onlySide(senders) !== 'send' || used.has(sendNode)) continue
    for (const [receiveNode, receivers] of instances) {
      if (receiveNode === sendNode || used.has(receiveNode) || onlySide(receivers) !== 'receive') continue
      if (receivers[0].classKey !== senders[0].classKey) continue
      used.add(sendNode)
      used.add(receiveNode)
      candidates.push({
        classKey: senders[0].classKey,
        send: describeSide(graph, analysis, sendNode, senders),
        receive: describeSide(graph, analysis, receiveNode, receivers),
      })
      break
    }
  }
  return candidates
}

function describeSide(graph: HeapGraph, analysis: HeapWaitAnalysis, node: number, waits: QueueWait[]): SplitQueueSide {
  const tasks: HeapTaskChain[] = waits.map((w) => analysis.tasks[w.taskIndex])
  return {
    instanceHeapId: graph.nodeId(node),
    className: waits[0].className,
    paths: instancePaths(graph, analysis, node),
    taskIndexes: waits.map((w) => w.taskIndex),
    promiseHeapIds: tasks.flatMap((t) => (t.awaitedPromiseHeapId === undefined ? [] : [t.awaitedPromiseHeapId])),
  }
}

/**
 * Short paths from a variable to the instance, one per object or scope that refers to it directly
 * ("reader.out", "applier.input", "channel.rows"): the path to the referrer, from its last variable.
 */
export function instancePaths(graph: HeapGraph, analysis: HeapWaitAnalysis, node: number, skipReferrer?: (referrer: number) => boolean): string[] {
  if (graph.nodeName(node) === 'system / Context') {
    // A closure-made queue: name the object that carries its functions (the factory's return value).
    for (const e of graph.incomingEdges(node)) {
      const closure = graph.edgeSource(e)
      if (graph.nodeType(closure) !== 'closure' || graph.edgeName(e) !== 'context') continue
      for (const e2 of graph.incomingEdges(closure)) {
        const owner = graph.edgeSource(e2)
        if (graph.edgeType(e2) !== 'property' || graph.nodeType(owner) !== 'object' || !analysis.isReached(owner)) continue
        const paths = instancePaths(graph, analysis, owner)
        if (paths.length > 0) return paths
      }
    }
    return []
  }
  const paths: string[] = []
  const propertyCode = graph.edgeTypeCode('property')
  const contextCode = graph.edgeTypeCode('context')
  const generatorNodes = new Set(analysis.generators.map((g) => g.node))
  for (const e of graph.incomingEdges(node)) {
    const type = graph.edgeTypeCodeOf(e)
    if (type !== propertyCode && type !== contextCode) continue
    if (type === contextCode && graph.edgeName(e) === 'this') continue // a method's own scope
    const referrer = graph.edgeSource(e)
    if (generatorNodes.has(referrer) || !analysis.isReached(referrer) || skipReferrer?.(referrer)) continue
    const text = pathText(graph, [...analysis.rootPath(referrer), e])
    if (text !== '' && !paths.includes(text)) paths.push(text)
    if (paths.length >= 4) break
  }
  // "reader.out" (a named holder and its property) reads better than a bare variable or a long chain.
  const rank = (path: string): number => Math.abs(path.split('.').length - 2)
  return paths.sort((a, b) => rank(a) - rank(b) || a.length - b.length)
}

/** "reader.out": property names from the last variable (or, without one, the last three hops). */
function pathText(graph: HeapGraph, path: number[]): string {
  const propertyCode = graph.edgeTypeCode('property')
  const contextCode = graph.edgeTypeCode('context')
  let segments: string[] = []
  for (const e of path) {
    const type = graph.edgeTypeCodeOf(e)
    if (type === contextCode) segments = [graph.edgeName(e)]
    else if (type === propertyCode) segments.push(graph.edgeName(e))
  }
  return segments.slice(-4).join('.')
}

/** What the second look saw of one object (see src/attach/heap-observe.ts). */
export interface ObjectReading {
  alive: boolean
  promiseState?: string
  fields?: Record<string, number>
  /** An emitter's listener counts by event name (emitters only). */
  listeners?: Record<string, number>
  /** A stream's state (emitters with a _writableState only). */
  stream?: StreamState
}

/** The second look as the split-queue finding reads it. */
export interface HeapObservation {
  /** How long the look lasted, ms. */
  elapsedMs: number
  completed: boolean
  before: ReadonlyMap<number, ObjectReading>
  after: ReadonlyMap<number, ObjectReading>
  /**
   * Readings taken between before and after, in order (emitters only: a stream whose producer refills
   * it can show the same length at both ends of the look while it moved in between).
   */
  samples?: ReadonlyMap<number, readonly ObjectReading[]>
}

/** A split-queue candidate with its tasks' ids and await sites, ready to be judged. */
export interface SplitQueueReport extends SplitQueueCandidate {
  sendTaskIds: number[]
  receiveTaskIds: number[]
  sendSites: string[]
  receiveSites: string[]
}

/** Did this side move during the second look? undefined when nothing about it was read. */
export function sideMoved(side: SplitQueueSide, observation: HeapObservation): boolean | undefined {
  let read = false
  for (const id of side.promiseHeapIds) {
    const reading = observation.after.get(id)
    if (!reading) continue
    read = true
    if (!reading.alive || reading.promiseState !== 'pending') return true
  }
  const before = observation.before.get(side.instanceHeapId)
  const after = observation.after.get(side.instanceHeapId)
  if (before && after) {
    read = true
    if (before.alive !== after.alive) return true
    if (JSON.stringify(before.fields ?? {}) !== JSON.stringify(after.fields ?? {})) return true
  }
  return read ? false : undefined
}

/**
 * uninitialized-channel-send for each candidate whose two sides did not move during the second look
 * (error); without a second look, a warning that says it is unconfirmed; a candidate where either side
 * moved is a busy pipeline (a slow stage between a full queue and an empty one), not a finding.
 */
export function buildSplitQueueFindings(reports: readonly SplitQueueReport[], observation: HeapObservation | undefined): Finding[] {
  const findings: Finding[] = []
  for (const report of reports) {
    const sendMoved = observation ? sideMoved(report.send, observation) : undefined
    const receiveMoved = observation ? sideMoved(report.receive, observation) : undefined
    if (sendMoved === true || receiveMoved === true) continue
    const confirmed = observation !== undefined && observation.completed && sendMoved === false && receiveMoved === false
    const name = (side: SplitQueueSide): string => side.paths[0] ?? `${side.className}@${side.instanceHeapId}`
    const fields = (side: SplitQueueSide): Record<string, number> | undefined =>
      observation?.after.get(side.instanceHeapId)?.fields ?? observation?.before.get(side.instanceHeapId)?.fields
    findings.push({
      kind: 'uninitialized-channel-send',
      severity: confirmed ? 'error' : 'warning',
      summary:
        `${report.sendTaskIds.length} task(s) wait to send into ${name(report.send)} (${report.send.className}), which no task receives from, ` +
        `while ${report.receiveTaskIds.length} task(s) wait to receive from a different instance, ${name(report.receive)}: ` +
        `the producer holds an instance that was replaced (or never handed to the consumer)` +
        (confirmed ? `; neither moved in ${(observation!.elapsedMs / 1000).toFixed(1)} s (a lower bound on the wait).` : '; not confirmed by a second look.'),
      evidence: {
        sites: [...report.sendSites, ...report.receiveSites.filter((site) => !report.sendSites.includes(site))],
        receiverSites: report.receiveSites,
        channels: [name(report.send), name(report.receive)],
        taskIds: [...report.sendTaskIds, ...report.receiveTaskIds],
        instances: [report.send, report.receive].map((side, index) => ({
          side: index === 0 ? 'send' : 'receive',
          className: side.className,
          paths: side.paths,
          heapId: side.instanceHeapId,
          taskIds: index === 0 ? report.sendTaskIds : report.receiveTaskIds,
          fields: fields(side) ?? null,
        })),
        observedMs: observation?.completed ? Math.round(observation.elapsedMs) : null,
        sendObjectHeapId: report.send.instanceHeapId,
        receiveObjectHeapId: report.receive.instanceHeapId,
      },
      suggestion:
        `Give the producer and the consumer the same ${report.send.className} instance: create it before starting either ` +
        `(not when the consumer starts), or have the producer look it up at send time instead of keeping the one it was given.`,
    })
  }
  return findings
}
