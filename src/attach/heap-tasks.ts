// The zero-preparation heap route of `ferrydiag stacks --heap`: take a heap snapshot of a target that
// runs no agent, walk it into TaskRecords (await sites, callers, holders, a conservative never-resumes
// verdict), and pin exact await lines for a few representatives per group through CDP lookups.

import type CDP from 'chrome-remote-interface'

import {analyzeHeapWaits, type HeapGenerator, type HeapHolder, type HeapTaskChain} from '../analyze/heap-waits.js'
import type {StackFrame, TaskRecord} from '../model/snapshot.js'
import {HeapGraph} from './heap-graph.js'
import {estimateHeapRouteCost, readHeapUsage, takeHeapSnapshot, type HeapRouteCost} from './heap-snapshot.js'

/** Where a frame's line and column come from. */
export type HeapSiteSource =
  | 'generator-location' // [[GeneratorLocation]] of this very generator: the exact await
  | 'representative' // [[GeneratorLocation]] of another generator of the same function in the same group
  | 'function-definition' // only the function's definition line was available

/** A TaskRecord plus what only the heap route knows. Fields the shared model lacks are optional here. */
export interface HeapTaskRecord extends TaskRecord {
  /** What holds the awaited promise's resolve function, in words. */
  holder: string
  holderInfo: HeapHolder
  /** Per frame (same order as stack): the generator's heap object id and where its site came from. */
  frames: Array<{heapId: number; siteSource: HeapSiteSource; receiverClass?: string}>
  /** Heap object id of the awaited promise (and of the channel-like object when there is one). */
  awaitedPromiseHeapId?: number
  channelObjectHeapId?: number
  /** The heap route cannot know how long a task has waited: sinceMs/waitMs are 0 and this is false. */
  waitKnown: false
  /** Number of other suspended functions also awaiting the outermost frame (fan-in). */
  otherCallerCount: number
}

export interface CollectHeapTasksOptions {
  /** Upper bound on getObjectByHeapObjectId lookups (each walks the whole heap: ~0.3 s at 100 MB). */
  maxLookups?: number
  /** Representatives per group of identical stacks whose exact await lines are looked up. */
  lookupsPerGroup?: number
  /** Snapshot timeout, ms. */
  snapshotTimeoutMs?: number
  /** Called once before the snapshot with the estimate, so a command can print it (or decline). */
  onEstimate?: (estimate: HeapRouteCost & {usedHeapBytes: number}) => void | Promise<void>
  /** Drop the frames of node's own internals (node:internal/…) from stacks; default true. */
  hideNodeInternals?: boolean
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
}

export interface HeapTasksResult {
  tasks: HeapTaskRecord[]
  /** Every distinct holder object seen, by heap id, for cross-referencing (e.g. orphaned channels). */
  holders: HeapHolder[]
  stats: HeapRouteStats
  estimate: HeapRouteCost
  takenAtMs: number
}

const OBJECT_GROUP = 'ferrydiag-heap'

export async function collectHeapTasks(client: CDP.Client, options: CollectHeapTasksOptions = {}): Promise<HeapTasksResult> {
  const maxLookups = options.maxLookups ?? 12
  const lookupsPerGroup = options.lookupsPerGroup ?? 1
  const hideNodeInternals = options.hideNodeInternals ?? true

  const usage = await readHeapUsage(client)
  const estimate = estimateHeapRouteCost(usage.usedBytes)
  await options.onEstimate?.({...estimate, usedHeapBytes: usage.usedBytes})

  const takenAtMs = Date.now()
  const snapshot = await takeHeapSnapshot(client, {timeoutMs: options.snapshotTimeoutMs})
  const graphStart = performance.now()
  const graph = new HeapGraph(snapshot.data)
  const graphMs = performance.now() - graphStart
  const analysis = analyzeHeapWaits(graph)
  const {generators} = analysis

  // Exact await sites: one CDP lookup per generator, for a few representatives per group of chains
  // running the same functions. Stuck and channel tasks first, then the rest.
  const lookupStart = performance.now()
  const exactSite = new Map<number, StackFrame>() // generator index → frame
  const siteByFunctionInGroup = new Map<string, StackFrame>()
  const groups = new Map<string, HeapTaskChain[]>()
  for (const task of analysis.tasks) {
    const key = groupKey(task, generators)
    const list = groups.get(key) ?? []
    list.push(task)
    groups.set(key, list)
  }
  const priority = (t: HeapTaskChain): number =>
    (t.state === 'never-resumes' ? 0 : 4) + (t.kind !== 'promise' ? 0 : 2) + (isInternalChain(t, generators) ? 1 : 0)
  const orderedGroups = [...groups.entries()].sort((a, b) => priority(a[1][0]) - priority(b[1][0]))
  let lookups = 0
  for (const [key, members] of orderedGroups) {
    for (const task of members.slice(0, lookupsPerGroup)) {
      for (const [depth, index] of task.frames.entries()) {
        if (exactSite.has(index)) continue
        if (lookups >= maxLookups) break
        lookups++
        const frame = await lookupGeneratorSite(client, generators[index], analysis.scriptUrls)
        if (!frame) continue
        exactSite.set(index, frame)
        siteByFunctionInGroup.set(`${key}#${depth}`, frame)
      }
    }
  }
  await client.send('Runtime.releaseObjectGroup', {objectGroup: OBJECT_GROUP}).catch(() => undefined)
  const lookupMs = performance.now() - lookupStart

  const tasks: HeapTaskRecord[] = []
  const holders = new Map<number, HeapHolder>()
  for (const [key, members] of groups) {
    for (const task of members) {
      const stack: StackFrame[] = []
      const frames: HeapTaskRecord['frames'] = []
      task.frames.forEach((index, depth) => {
        const g = generators[index]
        let frame = exactSite.get(index)
        let siteSource: HeapSiteSource = 'generator-location'
        if (!frame) {
          frame = siteByFunctionInGroup.get(`${key}#${depth}`)
          siteSource = 'representative'
        }
        if (!frame) {
          frame = definitionFrame(g)
          siteSource = 'function-definition'
        }
        if (hideNodeInternals && frame.url.startsWith('node:')) return
        stack.push(frame)
        frames.push({heapId: g.heapId, siteSource, receiverClass: g.receiverClass})
      })
      if (stack.length === 0) continue // only node's own internals (e.g. the ESM loader's jobs)
      const holder = task.holder
      if (holder.objectHeapId !== undefined) holders.set(holder.objectHeapId, holder)
      const channel = holder.kind === 'channel-queue'
      tasks.push({
        id: tasks.length + 1,
        kind: task.kind,
        state: task.state,
        channelName: channel ? holder.channelName : undefined,
        channelId: undefined,
        sinceMs: takenAtMs,
        waitMs: 0,
        stack,
        reason: task.state === 'never-resumes' ? task.reason : undefined,
        holder: holder.description,
        holderInfo: holder,
        frames,
        awaitedPromiseHeapId: task.awaitedPromiseHeapId,
        channelObjectHeapId: channel ? holder.objectHeapId : undefined,
        waitKnown: false,
        otherCallerCount: task.otherCallers.length,
      })
    }
  }

  return {
    tasks,
    holders: [...holders.values()],
    estimate,
    takenAtMs,
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
    },
  }
}

/** Chains running the same functions, waiting on the same kind of holder, form one group. */
function groupKey(task: HeapTaskChain, generators: HeapGenerator[]): string {
  const functions = task.frames.map((i) => {
    const g = generators[i]
    const d = g.definition
    return `${g.functionName}@${d ? `${d.scriptId}:${d.line}:${d.column}` : '?'}`
  })
  return `${task.state}|${task.kind}|${task.holder.kind}|${task.holder.channelName ?? ''}|${functions.join('<')}`
}

function isInternalChain(task: HeapTaskChain, generators: HeapGenerator[]): boolean {
  return task.frames.every((i) => (generators[i].url ?? '').startsWith('node:'))
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
 * is gone (it resumed and finished since the snapshot) or the target does not expose the property.
 */
async function lookupGeneratorSite(
  client: CDP.Client,
  g: HeapGenerator,
  scriptUrls: Map<number, string>,
): Promise<StackFrame | null> {
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
  const location = properties.internalProperties?.find((p) => p.name === '[[GeneratorLocation]]')?.value?.value as
    | {scriptId: string; lineNumber: number; columnNumber: number}
    | undefined
  if (!location) return null
  const scriptId = Number(location.scriptId)
  return {
    functionName: g.functionName,
    url: scriptUrls.get(scriptId) ?? g.url ?? `script:${location.scriptId}`,
    line: location.lineNumber + 1,
    column: location.columnNumber + 1,
  }
}
