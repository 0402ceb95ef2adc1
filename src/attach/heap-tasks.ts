// The zero-preparation heap route of `ferrydiag stacks --heap`: take a heap snapshot of a target that
// runs no agent, walk it into TaskRecords (await sites, callers, holders, a conservative never-resumes
// verdict), and pin exact await lines for a few representatives per group through CDP lookups. When
// the target's agent runs in await-times mode, also read how long each task has waited.

import type CDP from 'chrome-remote-interface'

import {analyzeHeapWaits, type HeapGenerator, type HeapHolder, type HeapTaskChain} from '../analyze/heap-waits.js'
import type {HolderInfo, StackFrame, TaskRecord} from '../model/snapshot.js'
import {HeapGraph} from '../analyze/heap-graph.js'
import {classifyQueueWaits, findSplitQueueCandidates, type SplitQueueCandidate} from '../analyze/heap-split-queue.js'
import {findEmitterWaits, type EmitterWait} from '../analyze/heap-emitters.js'
import {observeHeapObjects, type ObservationResult} from './heap-observe.js'
import {createSourceAwaits} from './source-awaits.js'
import type {AwaitSite} from '../analyze/await-sites.js'
import {estimateHeapRouteCost, hostLoadStretch, readHeapUsage, takeHeapSnapshot, type HeapRouteCost} from './heap-snapshot.js'

/** Where a frame's line and column come from. */
export type HeapSiteSource =
  | 'generator-location' // [[GeneratorLocation]] of this very generator: the exact await
  | 'representative' // [[GeneratorLocation]] of another generator of the same function in the same group
  | 'only-await' // the function's source has exactly one await of its own (src/analyze/await-sites.ts)
  | 'awaited-call' // of the function's awaits, the only one calling the function the next frame inward runs
  | 'await-candidates' // several awaits possible: the frame lists them (StackFrame.awaitCandidates)
  | 'function-definition' // only the function's definition line was available

/** A TaskRecord plus what only the heap route knows. Fields the shared model lacks are optional here. */
export interface HeapTaskRecord extends TaskRecord {
  /** What holds the awaited promise's resolve function (no heap ids: groups compare it). */
  holder: HolderInfo
  /** The same with the holder object's heap identity. */
  holderInfo: HeapHolder
  /** Per frame (same order as stack): the generator's heap object id and where its site came from. */
  frames: Array<{heapId: number; siteSource: HeapSiteSource; receiverClass?: string}>
  /** Heap object id of the awaited promise (and of the channel-like object when there is one). */
  awaitedPromiseHeapId?: number
  channelObjectHeapId?: number
  /** Heap object id of the promise V8 created for the innermost await (present in await-times mode). */
  awaitStartPromiseHeapId?: number
  /**
   * True when sinceMs/waitMs are measured: the agent's await-times stamp on the promise V8 created for
   * the innermost await. False when no age could be read (no agent, another agent mode, or the wait
   * began before await-times was on): sinceMs is then the snapshot time and waitMs 0, placeholders only.
   */
  waitKnown: boolean
  /** Number of other suspended functions also awaiting the outermost frame (fan-in). */
  otherCallerCount: number
}

export interface CollectHeapTasksOptions {
  /** Upper bound on getObjectByHeapObjectId lookups (each walks the whole heap: ~0.3 s at 100 MB). */
  maxLookups?: number
  /**
   * The second look: how long to wait (ms) before re-reading the objects a finding rests on (0: no
   * second look). Only taken when there is something to confirm (a split-queue candidate, a task that
   * can never resume). Default DEFAULT_OBSERVE_MS.
   */
  observeMs?: number
  /** Called when the second look starts (a command can say so on a TTY). */
  onObserve?: (ms: number) => void
  /** Stop looking up await lines after this long (ms; at least MIN_LOOKUPS are made); default 1500. */
  lookupBudgetMs?: number
  /** Snapshot timeout, ms. */
  snapshotTimeoutMs?: number
  /** Called once before the snapshot with the estimate, so a command can print it (or decline). */
  onEstimate?: (estimate: HeapRouteCost & {usedHeapBytes: number}) => void | Promise<void>
  /** Drop the frames of node's own internals (node:internal/…) from stacks; default true. */
  hideNodeInternals?: boolean
  /**
   * Read wait ages when the target's agent runs in await-times mode; default true. Costs one extra
   * full GC and heap walk in the target before the snapshot (see queryLivePromises, buildAgeIndex).
   */
  readWaitAges?: boolean
}

export interface HeapRouteStats {
  snapshotMs: number
  parseMs: number
  graphMs: number
  analyzeMs: number
  lookupMs: number
  lookups: number
  nodes: number
  edges: number
  generators: number
  heapBytes: number
  snapshotChars: number
  /** Time spent reading wait ages (mode check, queryObjects, index build and removal), ms; 0 when skipped. */
  ageMs: number
  /** Frames shown (node internals left out) by how their line was found; see HeapSiteSource. */
  framesBySource: Partial<Record<HeapSiteSource, number>>
}

/** How the wait ages went. */
export interface HeapWaitAges {
  /** The target's agent was in await-times mode (otherwise no ages are read and every waitKnown is false). */
  awaitTimes: boolean
  /** Live promises carrying an await-times stamp when the index was built. */
  stampedPromises: number
  /** Tasks that got a measured wait age. */
  tasksWithAge: number
  /** Why ages could not be read although the mode was on (the dump goes ahead without them). */
  error?: string
}

/** A split-queue candidate with the ids of its tasks as numbered in HeapTasksResult.tasks. */
export interface HeapSplitQueue extends SplitQueueCandidate {
  sendTaskIds: number[]
  receiveTaskIds: number[]
}

/** An emitter that tasks await an event on, with the ids of those tasks as numbered in HeapTasksResult.tasks. */
export interface HeapEmitterWait extends Omit<EmitterWait, 'taskIndexes' | 'emitterNode' | 'streams'> {
  taskIds: number[]
  /** Heap ids of the promises those tasks await (read again in the second look). */
  promiseHeapIds: number[]
  streams: Array<Omit<EmitterWait['streams'][number], 'node'>>
}

export interface HeapTasksResult {
  tasks: HeapTaskRecord[]
  splitQueues: HeapSplitQueue[]
  /** Emitters tasks await an event on (streams with their pipe chain; orphaned instances with their twin). */
  emitterWaits: HeapEmitterWait[]
  /** The second look, when one was taken. */
  observation?: ObservationResult & {askedMs: number; promiseHeapIds: number[]}
  /** Every distinct holder object seen, by heap id, for cross-referencing (e.g. orphaned channels). */
  holders: HeapHolder[]
  stats: HeapRouteStats
  estimate: HeapRouteCost
  takenAtMs: number
  waitAges: HeapWaitAges
}

/** Default second look, ms: see README (measured: a queue that moves at all moves within it). */
export const DEFAULT_OBSERVE_MS = 2000

const OBJECT_GROUP = 'ferrydiag-heap'
/** Emitters described (and read in the second look, one heap walk each) per dump. */
const MAX_OBSERVED_EMITTERS = 6
/** Await-line lookups made whatever the time budget (the stuck and queue tasks come first). */
const MIN_LOOKUPS = 8
/** Other tasks tried at a site whose representative has finished since the snapshot. */
const SITE_ALTERNATES = 3
/** Object group of the age index's CDP handles; released before the snapshot (see buildAgeIndex). */
const AGE_GROUP = 'ferrydiag-heap-ages'
/** The agent's await-times stamp (src/agent/agent-core.cts, enableAwaitTimes). */
const STAMP_KEY = 'ferrydiag.promiseStartMs'
/** Global under which the temporary age index lives while the snapshot is taken. */
const AGE_INDEX_KEY = 'ferrydiag.heapAgeIndex'
/** Global holding the promises made between queryObjects and the index build, and the hook's stop. */
const NEW_PROMISES_KEY = 'ferrydiag.heapAgeNewPromises'
/** The agent masks stamps to 30 bits (a V8 Smi): they wrap every 2^30 ms, ~12.4 days. */
const STAMP_WRAP_MS = 2 ** 30

export async function collectHeapTasks(client: CDP.Client, options: CollectHeapTasksOptions = {}): Promise<HeapTasksResult> {
  const maxLookups = options.maxLookups ?? 48
  const lookupBudgetMs = options.lookupBudgetMs ?? 1500
  const hideNodeInternals = options.hideNodeInternals ?? true

  const usage = await readHeapUsage(client)
  // This host's load: right for a local target, a conservative widening for a remote one.
  const estimate = estimateHeapRouteCost(usage.usedBytes, usage.largeObjectBytes, hostLoadStretch())
  await options.onEstimate?.({...estimate, usedHeapBytes: usage.usedBytes})

  // Wait ages (await-times mode only): note promises made from now on, fetch every live promise, then
  // send the index build, the release of those handles and the snapshot back to back, so that no wait
  // can begin unindexed before the snapshot (see buildAgeIndex).
  const ageStart = performance.now()
  const waitAges: HeapWaitAges = {awaitTimes: false, stampedPromises: 0, tasksWithAge: 0}
  const agent = options.readWaitAges === false ? null : await readAwaitTimesAgent(client)
  let promisesArrayId: string | null = null
  if (agent) {
    waitAges.awaitTimes = true
    try {
      await noteNewPromises(client)
      promisesArrayId = await queryLivePromises(client)
    } catch (error) {
      waitAges.error = `could not list promises: ${errorText(error)}`
      await client.send('Runtime.releaseObjectGroup', {objectGroup: AGE_GROUP}).catch(() => undefined)
      await dropAgeIndex(client)
    }
  }
  let ageMs = performance.now() - ageStart

  const takenAtMs = Date.now()
  const indexBuilt = agent && promisesArrayId ? buildAgeIndex(client, promisesArrayId, agent.startedAtMs) : null
  let snapshot: Awaited<ReturnType<typeof takeHeapSnapshot>>
  let ageIndex: AgeIndexBuilt | null = null
  try {
    snapshot = await takeHeapSnapshot(client, {timeoutMs: options.snapshotTimeoutMs ?? estimate.waitMs})
  } finally {
    if (indexBuilt) {
      const settleStart = performance.now()
      try {
        ageIndex = await indexBuilt
        waitAges.stampedPromises = ageIndex.stampedPromises
      } catch (error) {
        waitAges.error = `could not index promise stamps: ${errorText(error)}`
      }
      await dropAgeIndex(client)
      ageMs += performance.now() - settleStart
    }
  }
  const graphStart = performance.now()
  const graph = new HeapGraph(snapshot.data)
  const graphMs = performance.now() - graphStart
  const indexNodes = indexBuilt ? graph.propertyTargets(`<symbol ${AGE_INDEX_KEY}>`) : []
  const analysis = analyzeHeapWaits(graph, {opaqueNodes: indexNodes})
  const {generators} = analysis
  const stampOf = readStampIndex(graph, indexNodes)

  // Exact await sites: one CDP lookup per generator (each walks the target's whole heap), so only for
  // one representative per site key: the innermost frame by function and holder shape (two awaits in
  // one function wait on different things), an outer frame by function and the callee it awaits.
  // Stuck and queue tasks first, then the biggest groups, within a count and a time budget.
  const lookupStart = performance.now()
  const siteByKey = new Map<string, {frame: StackFrame; task: HeapTaskChain}>()
  const frameKeys = (task: HeapTaskChain): string[] =>
    task.frames.map((index, depth) =>
      depth === 0
        ? `${definitionKey(generators[index])}|${JSON.stringify(holderData(task.holder))}`
        : `${definitionKey(generators[index])}<${definitionKey(generators[task.frames[depth - 1]])}`,
    )
  // Per key, a few tasks to try in turn: a representative that resumed and finished since the snapshot
  // (a busy pipeline) has no location any more, and another task at the same site usually still has one.
  const bySiteKey = new Map<string, {task: HeapTaskChain; depth: number; count: number; alternates: HeapTaskChain[]}>()
  for (const task of analysis.tasks) {
    frameKeys(task).forEach((key, depth) => {
      const entry = bySiteKey.get(key)
      if (!entry) bySiteKey.set(key, {task, depth, count: 1, alternates: []})
      else {
        entry.count++
        if (entry.alternates.length < SITE_ALTERNATES) entry.alternates.push(task)
      }
    })
  }
  // A function whose source has exactly one await of its own can only be suspended there: its sites need
  // no lookup (module bodies still do: a lookup tells a finished one, 'running' for ever, from a wait).
  const sourceAwaits = createSourceAwaits()
  const ownAwaits = new Map<string, AwaitSite[] | null>()
  const awaitsOf = (g: HeapGenerator): AwaitSite[] | null => {
    const key = `${definitionKey(g)}@${g.url ?? ''}`
    if (!ownAwaits.has(key)) ownAwaits.set(key, sourceAwaits.awaitsOf(g.url, g.definition, isModuleBody(g)))
    return ownAwaits.get(key)!
  }
  const needsLookup = (task: HeapTaskChain, depth: number): boolean => {
    const g = generators[task.frames[depth]]
    return isModuleBody(g) || awaitsOf(g)?.length !== 1
  }
  const priority = (t: HeapTaskChain): number =>
    (t.state === 'never-resumes' ? 0 : 4) + (t.kind !== 'promise' ? 0 : 2) + (isInternalChain(t, generators) ? 1 : 0)
  const ordered = [...bySiteKey.entries()].sort(
    (a, b) => priority(a[1].task) - priority(b[1].task) || a[1].depth - b[1].depth || b[1].count - a[1].count,
  )
  let lookups = 0
  const outOfBudget = (): boolean => lookups >= maxLookups || (lookups >= MIN_LOOKUPS && performance.now() - lookupStart > lookupBudgetMs)
  /** Generators found not suspended at an await while the target sat between two tasks (see lookupGeneratorSite). */
  const notAwaiting = new Set<number>()
  for (const [key, {task, depth, alternates}] of ordered) {
    if (!needsLookup(task, depth)) continue
    for (const candidate of [task, ...alternates]) {
      if (outOfBudget()) break
      lookups++
      const generator = generators[candidate.frames[depth]]
      const site = await lookupGeneratorSite(client, generator, analysis.scriptUrls)
      if (site === 'not-awaiting') notAwaiting.add(generator.heapId)
      if (site === null || site === 'not-awaiting') continue
      siteByKey.set(key, {frame: site, task: candidate})
      break
    }
    if (outOfBudget()) break
  }
  await client.send('Runtime.releaseObjectGroup', {objectGroup: OBJECT_GROUP}).catch(() => undefined)
  const lookupMs = performance.now() - lookupStart

  const tasks: HeapTaskRecord[] = []
  const framesBySource: HeapRouteStats['framesBySource'] = {}
  const holders = new Map<number, HeapHolder>()
  const recordIdByTaskIndex = new Map<number, number>()
  for (const [taskIndex, task] of analysis.tasks.entries()) {
    // Not a wait: a generator that is neither suspended nor closed while the target idles between tasks
    // (an ES module's body after its last top-level await reports 'running' at 1:1 for ever).
    if (notAwaiting.has(generators[task.frames[0]].heapId)) continue
    {
      const stack: StackFrame[] = []
      const frames: HeapTaskRecord['frames'] = []
      const keys = frameKeys(task)
      task.frames.forEach((index, depth) => {
        const g = generators[index]
        const site = siteByKey.get(keys[depth])
        const callee = depth > 0 ? generators[task.frames[depth - 1]].functionName : undefined
        const {frame, siteSource} = site
          ? {frame: site.frame, siteSource: site.task === task ? ('generator-location' as const) : ('representative' as const)}
          : frameFromSource(g, awaitsOf(g), callee)
        if (hideNodeInternals && frame.url.startsWith('node:')) return
        stack.push(qualifiedFrame(frame, g.receiverClass))
        frames.push({heapId: g.heapId, siteSource, receiverClass: g.receiverClass})
        framesBySource[siteSource] = (framesBySource[siteSource] ?? 0) + 1
      })
      if (stack.length === 0) continue // only node's own internals (e.g. the ESM loader's jobs)
      const holder = task.holder
      if (holder.objectHeapId !== undefined) holders.set(holder.objectHeapId, holder)
      const channel = holder.kind === 'channel-queue'
      const stamp = task.awaitStartPromise >= 0 ? stampOf.get(task.awaitStartPromise) : undefined
      const age = stamp !== undefined && agent && ageIndex ? ageFromStamp(stamp, ageIndex.agentNowMs, agent.startedAtMs) : undefined
      if (age) waitAges.tasksWithAge++
      recordIdByTaskIndex.set(taskIndex, tasks.length + 1)
      tasks.push({
        id: tasks.length + 1,
        kind: task.kind,
        state: task.state,
        channelName: channel ? holder.channelName : undefined,
        channelId: undefined,
        sinceMs: age?.sinceMs ?? takenAtMs,
        waitMs: age?.waitMs ?? 0,
        stack,
        reason: task.state === 'never-resumes' ? task.reason : undefined,
        holder: holderData(holder),
        holderInfo: holder,
        frames,
        awaitedPromiseHeapId: task.awaitedPromiseHeapId,
        channelObjectHeapId: channel ? holder.objectHeapId : undefined,
        awaitStartPromiseHeapId: task.awaitStartPromiseHeapId,
        waitKnown: age !== undefined,
        otherCallerCount: task.otherCallers.length,
      })
    }
  }

  // Queue instances split between senders and receivers, then the second look at what they rest on.
  const candidates = findSplitQueueCandidates(graph, analysis, classifyQueueWaits(graph, analysis))
  const idsOf = (indexes: number[]): number[] => indexes.flatMap((i) => recordIdByTaskIndex.get(i) ?? [])
  const splitQueues: HeapSplitQueue[] = candidates.map((c) => ({...c, sendTaskIds: idsOf(c.send.taskIndexes), receiveTaskIds: idsOf(c.receive.taskIndexes)}))
  const observeMs = options.observeMs ?? DEFAULT_OBSERVE_MS
  const neverPromises = tasks.filter((t) => t.state === 'never-resumes').flatMap((t) => t.awaitedPromiseHeapId ?? []).slice(0, 8)
  // Awaited emitters: a stream's chain and an orphaned instance (with its twin) need the second look.
  const emitterWaits: HeapEmitterWait[] = findEmitterWaits(graph, analysis)
    .map(({taskIndexes, emitterNode: _node, streams, ...wait}) => ({
      ...wait,
      streams: streams.map(({node: _streamNode, ...link}) => link),
      taskIds: idsOf(taskIndexes),
      promiseHeapIds: taskIndexes.flatMap((i) => analysis.tasks[i].awaitedPromiseHeapId ?? []).slice(0, 2),
    }))
    .filter((wait) => wait.taskIds.length > 0)
    .slice(0, MAX_OBSERVED_EMITTERS)
  const watched = emitterWaits.filter((wait) => wait.streams.length > 0 || wait.twin !== undefined)
  const emitterPromises = watched.flatMap((wait) => wait.promiseHeapIds)
  const emitterIds = [...new Set(emitterWaits.flatMap((wait) => [wait.emitterHeapId, ...wait.streams.map((s) => s.heapId), ...(wait.twin ? [wait.twin.heapId] : [])]))].slice(0, 12)
  const promiseHeapIds = [...new Set([...candidates.flatMap((c) => [...c.send.promiseHeapIds.slice(0, 2), ...c.receive.promiseHeapIds.slice(0, 2)]), ...neverPromises, ...emitterPromises])]
  const instances = candidates.flatMap((c) => [c.send, c.receive]).filter((side) => !side.className.startsWith('closure')).map((side) => side.instanceHeapId)
  let observation: HeapTasksResult['observation']
  if (observeMs > 0 && promiseHeapIds.length > 0) {
    options.onObserve?.(observeMs)
    observation = {...(await observeHeapObjects(client, {promises: promiseHeapIds, instances, emitters: emitterIds}, observeMs)), askedMs: observeMs, promiseHeapIds}
  }

  return {
    tasks,
    splitQueues,
    emitterWaits,
    observation,
    holders: [...holders.values()],
    estimate,
    takenAtMs,
    waitAges,
    stats: {
      snapshotMs: snapshot.snapshotMs,
      parseMs: snapshot.parseMs,
      graphMs,
      analyzeMs: analysis.stats.analyzeMs,
      lookupMs,
      lookups,
      nodes: graph.nodeCount,
      edges: graph.edgeCount,
      generators: generators.length,
      heapBytes: usage.usedBytes,
      snapshotChars: snapshot.data.textLength,
      ageMs,
      framesBySource,
    },
  }
}

/** The holder without its heap identity. */
export function holderData(holder: HeapHolder): HolderInfo {
  const {objectNode: _node, objectHeapId: _id, contextNode: _context, ...data} = holder
  return data
}

/** Where a generator's function is defined: the part of a site key that names the function. */
function definitionKey(g: HeapGenerator): string {
  const d = g.definition
  return `${g.functionName}@${d ? `${d.scriptId}:${d.line}:${d.column}` : '?'}`
}

function isInternalChain(task: HeapTaskChain, generators: HeapGenerator[]): boolean {
  return task.frames.every((i) => (generators[i].url ?? '').startsWith('node:'))
}

/**
 * The frame with its function named as V8 names it in a stack trace, `Class.method` (`BatchWriter.run`,
 * `Object.push` for an object literal's method), when the suspended function was called on an object.
 * A plain call in sloppy code has the global object as receiver (named `global` in Node's heap
 * snapshots): V8 leaves it out of stack traces, and so does this.
 */
function qualifiedFrame(frame: StackFrame, receiverClass: string | undefined): StackFrame {
  if (receiverClass === undefined || receiverClass === '' || receiverClass === 'global' || frame.functionName.startsWith('(')) return frame
  return {...frame, functionName: `${receiverClass}.${frame.functionName}`}
}

/** An ES module's body: V8 names its function '' and defines it at the script's start. */
function isModuleBody(g: HeapGenerator): boolean {
  return g.functionName === '' && g.definition?.line === 0 && g.definition.column === 0
}

/**
 * A frame whose live await position was not read, placed from its function's source: its only await;
 * else the only await calling `callee` (the function the next frame inward runs, whose result this
 * frame awaits); else every await as candidates; else, with no await recognised, the header.
 */
function frameFromSource(g: HeapGenerator, awaits: AwaitSite[] | null, callee: string | undefined): {frame: StackFrame; siteSource: HeapSiteSource} {
  const header = definitionFrame(g)
  const at = (site: AwaitSite): StackFrame => ({...header, line: site.line, column: site.column})
  if (awaits === null || awaits.length === 0) return {frame: {...header, lineOf: 'function-definition'}, siteSource: 'function-definition'}
  if (awaits.length === 1) return {frame: {...at(awaits[0]), lineOf: 'only-await'}, siteSource: 'only-await'}
  const calling = callee ? awaits.filter((site) => site.calls.includes(callee)) : []
  if (calling.length === 1) return {frame: {...at(calling[0]), lineOf: 'awaited-call'}, siteSource: 'awaited-call'}
  const candidates = awaits.map(({line, column}) => ({line, column}))
  return {frame: {...at(awaits[0]), lineOf: 'await-candidates', awaitCandidates: candidates}, siteSource: 'await-candidates'}
}

function definitionFrame(g: HeapGenerator): StackFrame {
  return {
    functionName: g.functionName,
    url: g.url ?? (g.definition ? `script:${g.definition.scriptId}` : 'unknown'),
    line: (g.definition?.line ?? -1) + 1,
    column: (g.definition?.column ?? -1) + 1,
  }
}

/**
 * [[GeneratorLocation]] of one suspended function: the 0-based position of its current await. Needs
 * the same session that took the snapshot (heap object ids are per session). Null when the object
 * is gone (it resumed and finished since the snapshot), has finished ('closed': its location is its
 * header, not an await) or the target does not expose the property. 'not-awaiting' when it reports
 * 'running': inspector commands run between the target's tasks, when no generator can be running, so
 * it is not at an await at all (an ES module body after its last top-level await stays so).
 */
async function lookupGeneratorSite(
  client: CDP.Client,
  g: HeapGenerator,
  scriptUrls: Map<number, string>,
): Promise<StackFrame | null | 'not-awaiting'> {
  let objectId: string | undefined
  try {
    const {result} = await client.send('HeapProfiler.getObjectByHeapObjectId', {
      objectId: String(g.heapId),
      objectGroup: OBJECT_GROUP,
    })
    objectId = result.objectId
  } catch {
    return null
  }
  if (!objectId) return null
  const properties = await client.send('Runtime.getProperties', {objectId, ownProperties: true})
  const internal = (name: string): unknown => properties.internalProperties?.find((p) => p.name === name)?.value?.value
  const state = internal('[[GeneratorState]]')
  if (state === 'running') return 'not-awaiting'
  if (state !== undefined && state !== 'suspended') return null
  const location = internal('[[GeneratorLocation]]') as {scriptId: string; lineNumber: number; columnNumber: number} | undefined
  if (!location) return null
  const scriptId = Number(location.scriptId)
  return {
    functionName: g.functionName,
    url: scriptUrls.get(scriptId) ?? g.url ?? `script:${location.scriptId}`,
    line: location.lineNumber + 1,
    column: location.columnNumber + 1,
  }
}

/** Start of one wait, from its stamp: epoch ms (the target's clock, as the agent's own sinceMs) and age, ms. */
export interface WaitAge {
  sinceMs: number
  waitMs: number
}

/**
 * Turns an await-times stamp into a wait age. The stamp is floor(performance.now() - agentStart) masked
 * to 30 bits; agentStartedAtMs is round(performance.timeOrigin + agentStart), epoch ms; agentNowMs is
 * performance.timeOrigin + performance.now() - agentStartedAtMs read in the target at the snapshot.
 * The wrap count is the one that puts the start at or before now (5 ms slack for the two roundings).
 * Ages come from the target's monotonic clock, so a wall-clock step on either machine does not skew them.
 */
export function ageFromStamp(stamp: number, agentNowMs: number, agentStartedAtMs: number): WaitAge {
  if (!Number.isInteger(stamp) || stamp < 0 || stamp >= STAMP_WRAP_MS) {
    throw new RangeError(`Expected stamp to be an integer in [0, 2^30), got ${String(stamp)}`)
  }
  const wraps = Math.max(0, Math.floor((agentNowMs + 5 - stamp) / STAMP_WRAP_MS))
  const startMs = stamp + wraps * STAMP_WRAP_MS
  return {sinceMs: agentStartedAtMs + startMs, waitMs: Math.max(0, Math.round(agentNowMs - startMs))}
}

/** The agent's await-times facts, or null when there is no agent or it runs in another mode. */
async function readAwaitTimesAgent(client: CDP.Client): Promise<{startedAtMs: number} | null> {
  try {
    const {result} = await client.send('Runtime.evaluate', {
      expression: `(() => { const a = globalThis[Symbol.for('ferrydiag.agent')]; return a ? {mode: a.mode, startedAtMs: a.startedAtMs} : null })()`,
      returnByValue: true,
      silent: true,
    })
    const value = result.value as {mode?: unknown; startedAtMs?: unknown} | null
    if (!value || value.mode !== 'await-times' || typeof value.startedAtMs !== 'number') return null
    return {startedAtMs: value.startedAtMs}
  } catch {
    return null
  }
}

interface AgeIndexBuilt {
  stampedPromises: number
  /** The target's agent-relative clock when the index was built (just before the snapshot), ms. */
  agentNowMs: number
}

/**
 * queryObjects stops the target for its GC (~50 ms at 10 MB, ~0.8 s at 100 MB); timers that came due
 * meanwhile run as soon as it returns, before the next command arrives, and a wait they start would be
 * missing from the index. So, from just before queryObjects until the index build, a temporary
 * promiseHooks.onInit hook (await-times has promise hooks on already) keeps the promises made.
 */
async function noteNewPromises(client: CDP.Client): Promise<void> {
  const {result, exceptionDetails} = await client.send('Runtime.evaluate', {
    expression: `(() => {
      const hooks = process.getBuiltinModule?.('v8')?.promiseHooks
      if (!hooks || typeof hooks.onInit !== 'function') return false
      const made = []
      const stop = hooks.onInit((promise) => { made.push(promise) })
      Object.defineProperty(globalThis, Symbol.for('${NEW_PROMISES_KEY}'), {value: {made, stop}, configurable: true, enumerable: false, writable: true})
      return true
    })()`,
    returnByValue: true,
    silent: true,
  })
  if (exceptionDetails) throw new Error(exceptionDetails.exception?.description ?? exceptionDetails.text)
  if (result.value !== true) throw new Error('v8.promiseHooks is not available in the target')
}

/**
 * Every live promise of the target, as a remote array in AGE_GROUP (Runtime.queryObjects: one full GC
 * and heap walk in the target, ~0.1-0.2 s at 10 MB). Reading one stamp per task instead would cost a
 * getObjectByHeapObjectId each (a whole-heap walk, ~0.1-0.3 s), and on Node 20 a snapshot shows a Smi
 * property without its value, so the stamps cannot be read from the snapshot directly.
 */
async function queryLivePromises(client: CDP.Client): Promise<string> {
  const prototype = await client.send('Runtime.evaluate', {expression: 'Promise.prototype', objectGroup: AGE_GROUP, silent: true})
  const prototypeObjectId = prototype.result.objectId
  if (!prototypeObjectId) throw new Error('Promise.prototype has no remote object id')
  const {objects} = await client.send('Runtime.queryObjects', {prototypeObjectId, objectGroup: AGE_GROUP})
  if (!objects.objectId) throw new Error('queryObjects returned no array')
  return objects.objectId
}

/**
 * One call inside the target turns the promise array into [promise, "stamp", promise, "stamp", …] on
 * the global: strings carry their text into the snapshot, so every task's stamp is then read from the
 * graph at no further cost. Sends, without waiting in between, the build and the release of AGE_GROUP
 * (an inspector handle is a GC root: left in place it would make every promise look reachable); the
 * caller sends the snapshot right after, so all three run in one batch of inspector messages. The
 * index is passed to the walk as opaque, and deleted after the snapshot (dropAgeIndex): it keeps the
 * stamped promises alive for the snapshot's duration only.
 */
function buildAgeIndex(client: CDP.Client, promisesArrayId: string, agentStartedAtMs: number): Promise<AgeIndexBuilt> {
  const built = client.send('Runtime.callFunctionOn', {
    objectId: promisesArrayId,
    functionDeclaration: `function (stampKey, indexKey, newKey, startedAtMs) {
      const key = Symbol.for(stampKey)
      const noted = globalThis[Symbol.for(newKey)]
      delete globalThis[Symbol.for(newKey)]
      if (noted) noted.stop()
      const seen = new Set()
      const index = []
      for (const list of [this, noted ? noted.made : []]) {
        for (const promise of list) {
          const stamp = promise[key]
          if (typeof stamp !== 'number' || seen.has(promise)) continue
          seen.add(promise)
          index.push(promise, String(stamp))
        }
      }
      Object.defineProperty(globalThis, Symbol.for(indexKey), {value: index, configurable: true, enumerable: false, writable: true})
      return {stampedPromises: index.length / 2, agentNowMs: performance.timeOrigin + performance.now() - startedAtMs}
    }`,
    arguments: [{value: STAMP_KEY}, {value: AGE_INDEX_KEY}, {value: NEW_PROMISES_KEY}, {value: agentStartedAtMs}],
    returnByValue: true,
    silent: true,
  })
  const released = client.send('Runtime.releaseObjectGroup', {objectGroup: AGE_GROUP})
  return Promise.all([built, released]).then(([answer]) => {
    if (answer.exceptionDetails) throw new Error(answer.exceptionDetails.exception?.description ?? answer.exceptionDetails.text)
    return answer.result.value as AgeIndexBuilt
  })
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** Removes the index and, if a failure left it on, the new-promise hook. */
async function dropAgeIndex(client: CDP.Client): Promise<void> {
  const expression = `(() => {
    const noted = globalThis[Symbol.for('${NEW_PROMISES_KEY}')]
    if (noted) { noted.stop(); delete globalThis[Symbol.for('${NEW_PROMISES_KEY}')] }
    delete globalThis[Symbol.for('${AGE_INDEX_KEY}')]
  })()`
  await client.send('Runtime.evaluate', {expression, returnByValue: true, silent: true}).catch(() => undefined)
}

/** Promise ordinal → stamp, from the age index arrays found in the snapshot. */
function readStampIndex(graph: HeapGraph, indexNodes: number[]): Map<number, number> {
  const stampOf = new Map<number, number>()
  for (const node of indexNodes) {
    const elements = graph.elements(node)
    for (const [slot, promise] of elements) {
      if (slot % 2 !== 0) continue
      const text = elements.get(slot + 1)
      if (text === undefined || graph.nodeType(text) !== 'string') continue
      const stamp = Number(graph.nodeName(text))
      if (Number.isInteger(stamp) && stamp >= 0 && stamp < STAMP_WRAP_MS) stampOf.set(promise, stamp)
    }
  }
  return stampOf
}
