// Collection for `ferrydiag stacks`: picks the best source the target allows (its own agent, an agent
// injected now, or a heap snapshot), reads it, and builds the one StacksDump the renderers share.

import {fileURLToPath} from 'node:url'

import {findOrphanedHeapChannels} from '../analyze/heap-orphan-channels.js'
import {buildSplitQueueFindings, type HeapObservation} from '../analyze/heap-split-queue.js'
import {collectSites} from '../analyze/group-stacks.js'
import {buildStacksDump} from '../analyze/stacks-findings.js'
import {buildEmitterReport} from '../analyze/heap-emitters.js'
import {collectHeapTasks, type HeapEmitterWait, type HeapSplitQueue, type HeapTaskRecord, type HeapRouteStats, type HeapWaitAges} from '../attach/heap-tasks.js'
import type {HeapRouteCost} from '../attach/heap-snapshot.js'
import type {InspectorSession} from '../attach/session.js'
import {FerrydiagError, isFerrydiagError} from '../errors.js'
import {AGENT_INJECTION_KEY, type AgentInjectionRecord} from '../agent/inject-source.js'
import type {AgentInjection, DumpSource, DumpSourceKind, StacksDump, StacksInput} from '../model/dump.js'
import type {Finding} from '../model/findings.js'
import type {DumpProcessInfo} from '../model/dump.js'
import type {AgentSnapshot, StackFrame, TaskRecord} from '../model/snapshot.js'
import {formatBytes, formatDurationMs} from '../units.js'

/** What the heap route will cost the target, shown before it runs. */
export type HeapEstimate = HeapRouteCost & {usedHeapBytes: number}

export interface CollectStacksOptions {
  /** Take a heap snapshot (alone when there is no agent, merged with the agent's records otherwise). */
  heap: boolean
  /** Inject the agent when the target has none and --heap was not asked for. */
  inject: boolean
  /** Budget for each evaluation in the target (snapshot read, injection), ms. */
  budgetMs?: number
  /** The heap route's second look, ms (0: none); see collectHeapTasks. */
  observeMs?: number
  /**
   * Without --heap, when the agent sees nothing: asked (with the estimate) whether to take the heap
   * route instead; absent or false keeps the agent's empty dump, with a finding saying nothing was seen.
   */
  offerHeap?: (estimate: HeapEstimate) => Promise<boolean>
  /** Asked once before the heap snapshot; false declines (FerrydiagError heapDeclined, nothing taken). */
  confirmHeap?: (estimate: HeapEstimate) => Promise<boolean>
  /** Give up waiting for the heap snapshot after this long (default: tied to the estimate), ms. */
  heapTimeoutMs?: number
}

/** Everything read from the target, before analysis. */
export interface CollectedStacks {
  input: StacksInput & {process: DumpProcessInfo}
  source: DumpSource
  /** Heap-route tasks as recovered (ids as in `input.tasks`), for the heap-only analyses. */
  heapTasks: HeapTaskRecord[]
  heapStats: HeapRouteStats | null
  /** Heap route: queue instances split between parked senders and parked receivers, and the second look. */
  heapSplitQueues?: HeapSplitQueue[]
  /** Heap route: emitters that tasks await an event on (streams, orphaned instances). */
  heapEmitterWaits?: HeapEmitterWait[]
  heapObservation?: HeapObservation
  /** The agent route saw no task and no buffer (and the heap route was not taken): a finding says so. */
  nothingSeen?: boolean
}

/** Frames of ferrydiag's runtime as a target loads it (this package's own copy, or one in node_modules). */
const OWN_RUNTIME_DIR = fileURLToPath(new URL('../runtime/', import.meta.url))
const RUNTIME_PATH = /[/\\]ferrydiag[/\\]dist[/\\]src[/\\]runtime[/\\]/

/**
 * Reads the target through the best route available:
 * 1. the agent's registry when it is already in the process (preloaded or imported);
 * 2. with `heap`: a heap snapshot, merged with (1) when there is an agent; never injects;
 * 3. otherwise, when `inject`: the agent injected now (sees only waits that begin afterwards).
 * Never pauses the target and never enables the Debugger domain.
 */
export async function collectStacks(session: InspectorSession, options: CollectStacksOptions): Promise<CollectedStacks> {
  const budgetMs = options.budgetMs
  let agentSnapshot = await guardExit(session, 'reading the agent snapshot', () => session.readSnapshot({budgetMs}))

  if (options.heap) {
    const heap = await readHeapTasks(session, options)
    if (agentSnapshot && !seesNothing(agentSnapshot)) return mergeAgentAndHeap(agentSnapshot, heap, await readAgentInjection(session, agentSnapshot, budgetMs))
    return heapOnly(session, heap, budgetMs, [])
  }

  if (!agentSnapshot) {
    await guardExit(session, 'injecting the agent', () => session.ensureAgent({inject: options.inject, budgetMs, declinedSuggestion: 'Allow injection (drop --no-inject), start the target with `node --import ferrydiag/register app.js`, or use --heap.'}))
    agentSnapshot = await guardExit(session, 'reading the agent snapshot', () => session.readSnapshot({budgetMs}))
    if (!agentSnapshot) {
      throw new FerrydiagError(
        'noAgent',
        `The agent injected into ${session.address} returned no snapshot.`,
        'Start the target with `node --import ferrydiag/register app.js`, or use --heap.',
      )
    }
  }
  const injection = await readAgentInjection(session, agentSnapshot, budgetMs)
  if (seesNothing(agentSnapshot)) {
    // Never a clean dump that saw nothing: an agent with no task and no buffer cannot tell a healthy
    // process from one whose tasks wait on plain promises. Offer the heap route (its cost shown and
    // confirmed, as with --heap); declined or not asked (no terminal), say so in the dump.
    const offered = options.offerHeap ? await readHeapTasks(session, {...options, confirmHeap: options.offerHeap}).catch(declinedAsNull) : null
    const nothingSeen = 'The agent saw no task and the process has no ferrydiag buffers: this pipeline does not use ferrydiag/runtime, so nothing of its waits could be seen this way.'
    if (offered) return heapOnly(session, offered, budgetMs, [nothingSeen + ' Went to the heap route instead (confirmed).'])
    const source = describeAgentSource(agentSnapshot, injection)
    return {
      input: agentSnapshot,
      source: {...source, notes: [...source.notes, nothingSeen]},
      heapTasks: [],
      heapStats: null,
      nothingSeen: true,
    }
  }
  return {input: agentSnapshot, source: describeAgentSource(agentSnapshot, injection), heapTasks: [], heapStats: null}
}

/** An agent snapshot with no task and no buffer: the agent sees nothing of this pipeline. */
function seesNothing(snapshot: AgentSnapshot): boolean {
  return snapshot.tasks.length === 0 && snapshot.channels.length === 0
}

function declinedAsNull(error: unknown): null {
  if (isFerrydiagError(error) && error.code === 'heapDeclined') return null
  throw error
}

async function heapOnly(session: InspectorSession, heap: HeapRead, budgetMs: number | undefined, extraNotes: string[]): Promise<CollectedStacks> {
  const process = await guardExit(session, 'reading process information', () => readProcessInfo(session, budgetMs))
  const tasks = heap.tasks.map((task) => toTaskRecord(task, task.id))
  const notes = [
    ...extraNotes,
    'No agent records in the target: waits were recovered from a V8 heap snapshot, with no buffer or stage records and no wait ages (those need the agent in await-times mode).',
    'An async function stuck on a promise that nothing references is garbage-collected with it and cannot appear; start the target with `node --import ferrydiag/register` to see every wait.',
    describeHeapCost(heap.stats),
    ...describeObservation(heap.observation),
  ]
  return {
    input: {takenAtMs: heap.takenAtMs, tasks, channels: [], stages: [], process},
    source: {kind: 'heap-snapshot', notes},
    heapTasks: heap.tasks,
    heapStats: heap.stats,
    heapSplitQueues: heap.splitQueues,
    heapEmitterWaits: heap.emitterWaits,
    heapObservation: heap.observation,
  }
}

export interface BuildDumpOptions {
  minWaitMs?: number
  ungrouped?: boolean
  stuckAfterMs?: number
  mapLocation?: (frame: StackFrame) => StackFrame
}

/**
 * The dump of what collectStacks read: the shared analysis, plus (heap route) placeholder-channel
 * findings that only heap object identities can show. Their evidence sites list every frame of the
 * tasks involved, as the shared findings do, so the stage's own await site is named, not only the
 * channel method it called.
 */
export function buildCollectedStacksDump(collected: CollectedStacks, options: BuildDumpOptions = {}): StacksDump {
  const dump = buildStacksDump(collected.input, {source: collected.source, ...options})
  if (collected.nothingSeen) return {...dump, findings: [...dump.findings, nothingSeenFinding()]}
  if (collected.heapTasks.length === 0 && (collected.heapSplitQueues ?? []).length === 0) return dump

  const mapFrame = options.mapLocation ?? ((frame: StackFrame) => frame)
  const mapped = collected.heapTasks.map((task) => ({...task, stack: task.stack.map((frame) => mapFrame({...frame}))}))
  const byId = new Map(mapped.map((task) => [task.id, task]))
  const sitesOf = (ids: number[]): string[] => collectSites(ids.flatMap((id) => byId.get(id) ?? []))
  const splitFindings = buildSplitQueueFindings(
    (collected.heapSplitQueues ?? []).map((split) => ({...split, sendSites: sitesOf(split.sendTaskIds), receiveSites: sitesOf(split.receiveTaskIds)})),
    collected.heapObservation,
  )
  const emitterReport = buildEmitterReport(
    (collected.heapEmitterWaits ?? []).map((wait) => ({...wait, sites: sitesOf(wait.taskIds)})),
    collected.heapObservation,
  )
  const emitters = emitterReport.emitters.length > 0 ? {emitters: emitterReport.emitters} : {}
  const explained = new Set(splitFindings.flatMap((finding) => finding.evidence.taskIds ?? []))
  const heapFindings: Finding[] = [
    ...splitFindings,
    ...emitterReport.findings.filter((finding) => !(finding.evidence.taskIds ?? []).some((id) => explained.has(id))),
    ...findOrphanedHeapChannels(mapped)
      .filter((finding) => !(finding.evidence.taskIds ?? []).some((id) => explained.has(id)))
      .map((finding) => ({...finding, evidence: {...finding.evidence, sites: sitesOf(finding.evidence.taskIds ?? [])}})),
  ]
  const order = {error: 0, warning: 1, info: 2}
  const findings = [...heapFindings, ...dump.findings].sort((a, b) => order[a.severity] - order[b.severity])
  return {...dump, findings, ...emitters}
}

/** The finding of a dump that saw nothing (agent route, no tasks, no ferrydiag buffers). */
function nothingSeenFinding(): Finding {
  return {
    kind: 'not-measured',
    severity: 'warning',
    summary:
      'Nothing could be seen: the agent found no waiting task and no ferrydiag buffer in this process, which is what a pipeline that does not use ferrydiag/runtime looks like whether it is healthy or stuck. This is not a clean bill of health.',
    evidence: {route: 'agent', tasks: 0, buffers: 0},
    suggestion:
      'Run `ferrydiag stacks --heap` (a heap snapshot: needs no preparation, stops the target for the estimated time) to see every suspended async function, or start the pipeline with `node --import ferrydiag/register`.',
  }
}

/**
 * Which run injected the agent of `snapshot`; null when it was preloaded or imported. The agent stays
 * in the target after detach, so an injected agent this session did not inject came from an earlier run
 * (which recorded its CLI pid under AGENT_INJECTION_KEY; older ferrydiag versions did not).
 */
async function readAgentInjection(session: InspectorSession, snapshot: AgentSnapshot, budgetMs: number | undefined): Promise<AgentInjection | null> {
  if (snapshot.process.agentLoadedBy !== 'inject') return null
  const atMs = snapshot.process.agentStartedAtMs
  if (session.agentLoadedBy === 'inject') return {by: 'this-run', cliPid: process.pid, atMs}
  const record = await session
    .evaluate<AgentInjectionRecord | null>(`globalThis[Symbol.for(${JSON.stringify(AGENT_INJECTION_KEY)})] ?? null`, {budgetMs, awaitPromise: false})
    .catch(() => null)
  const cliPid = typeof record?.cliPid === 'number' && record.cliPid > 0 ? record.cliPid : null
  return {by: 'earlier-run', cliPid, atMs}
}

/** The agent route's name and blind spots, from how the agent got into the process and which run injected it. */
function describeAgentSource(snapshot: AgentSnapshot, injection: AgentInjection | null): DumpSource {
  if (injection === null) return {kind: 'agent-preloaded', notes: []}
  const ago = formatDurationMs(Math.max(0, snapshot.takenAtMs - injection.atMs))
  const who =
    injection.by === 'this-run'
      ? `by this run (ferrydiag pid ${injection.cliPid}) ${ago} before this dump`
      : `by an earlier ferrydiag run (${injection.cliPid === null ? 'its pid was not recorded' : `CLI pid ${injection.cliPid}`}) at ${new Date(injection.atMs).toISOString()}, ${ago} before this dump, and stayed in the process after that run detached`
  return {
    kind: 'agent-injected',
    notes: [
      `The agent was injected ${who}: it sees only waits that began after injection, and only on ferrydiag/runtime buffers (Channel, ChannelSlot, instrumentWritable). It stays in the process after ferrydiag detaches (no hooks or timers in channels mode), so a later dump sees every wait since.`,
      'A task already stuck on a plain promise is invisible to it; run again with --heap to look for such tasks in a heap snapshot.',
    ],
    injection,
  }
}

interface HeapRead {
  tasks: HeapTaskRecord[]
  stats: HeapRouteStats
  takenAtMs: number
  waitAges: HeapWaitAges
  splitQueues: HeapSplitQueue[]
  emitterWaits: HeapEmitterWait[]
  observation?: HeapObservation & {askedMs: number}
}

async function readHeapTasks(session: InspectorSession, options: CollectStacksOptions): Promise<HeapRead> {
  const result = await guardExit(session, 'taking a heap snapshot', () =>
    collectHeapTasks(session.cdp, {
      observeMs: options.observeMs,
      snapshotTimeoutMs: options.heapTimeoutMs,
      onEstimate: async (estimate) => {
        const confirmed = options.confirmHeap ? await options.confirmHeap(estimate) : false
        if (!confirmed) {
          throw new FerrydiagError(
            'heapDeclined',
            'The heap snapshot was declined; nothing was taken and the target was not touched.',
            'Pass --yes to accept the estimated stall, or drop --heap to use the agent.',
          )
        }
      },
    }),
  )
  return {
    tasks: result.tasks,
    stats: result.stats,
    takenAtMs: result.takenAtMs,
    waitAges: result.waitAges,
    splitQueues: result.splitQueues,
    emitterWaits: result.emitterWaits,
    observation: result.observation,
  }
}

/**
 * Agent records plus heap tasks. A heap task is dropped when the agent already records it: its
 * resolver sits in a ferrydiag runtime buffer the agent knows by name, any frame runs inside the
 * runtime, or its innermost await is on the same line as an agent task's (the agent's record has the
 * wait's age and buffer id, which the heap cannot give).
 */
function mergeAgentAndHeap(snapshot: AgentSnapshot, heap: HeapRead, injection: AgentInjection | null): CollectedStacks {
  const agentChannelNames = new Set(snapshot.channels.map((channel) => channel.name))
  const agentSites = new Set(snapshot.tasks.flatMap((task) => (task.stack[0] ? [siteKey(task.stack[0])] : [])))
  const fresh = heap.tasks.filter((task) => {
    const holder = task.holderInfo
    if (holder.kind === 'channel-queue' && holder.channelName !== undefined && agentChannelNames.has(holder.channelName)) {
      if (holder.objectClass === undefined || /^(Channel|ChannelSlot|Waiter|WaitQueue|StreamAdapter)$/.test(holder.objectClass)) {
        return false
      }
    }
    if (task.stack.some((frame) => isRuntimeFrame(frame))) return false
    return !(task.stack[0] && agentSites.has(siteKey(task.stack[0])))
  })
  // Heap tasks are renumbered after the agent's; the split queues and emitter waits name tasks by their
  // heap-route ids, so they are carried through the same map (a task the agent records is not in it).
  let nextId = snapshot.tasks.reduce((max, task) => Math.max(max, task.id), 0) + 1
  const mergedId = new Map<number, number>()
  const renumbered = fresh.map((task) => {
    mergedId.set(task.id, nextId)
    return {...task, id: nextId++}
  })
  const remap = (ids: number[]): number[] => ids.flatMap((id) => mergedId.get(id) ?? [])
  // A split queue keeps both sides only when each still has a task the agent does not record (the
  // agent's own findings cover a ferrydiag buffer); an emitter wait keeps the tasks that remain.
  const splitQueues = heap.splitQueues
    .map((split) => ({...split, sendTaskIds: remap(split.sendTaskIds), receiveTaskIds: remap(split.receiveTaskIds)}))
    .filter((split) => split.sendTaskIds.length > 0 && split.receiveTaskIds.length > 0)
  const emitterWaits = heap.emitterWaits
    .map((wait) => ({...wait, taskIds: remap(wait.taskIds)}))
    .filter((wait) => wait.taskIds.length > 0)
  const source: DumpSource = describeAgentSource(snapshot, injection)
  const kind: DumpSourceKind = source.kind
  return {
    input: {...snapshot, tasks: [...snapshot.tasks, ...renumbered.map((task) => toTaskRecord(task, task.id))]},
    source: {
      kind,
      ...(source.injection ? {injection: source.injection} : {}),
      notes: [
        ...source.notes,
        `Merged with a heap snapshot: ${renumbered.length} wait(s) outside ferrydiag buffers added; ${heap.tasks.length - renumbered.length} already recorded by the agent were left out.`,
        describeWaitAges(heap.waitAges),
        describeHeapCost(heap.stats),
        ...describeObservation(heap.observation),
      ],
    },
    heapTasks: renumbered,
    heapStats: heap.stats,
    heapSplitQueues: splitQueues,
    heapEmitterWaits: emitterWaits,
    heapObservation: heap.observation,
  }
}

function siteKey(frame: StackFrame): string {
  return `${frame.url}:${frame.line}`
}

function isRuntimeFrame(frame: StackFrame): boolean {
  if (!frame.url.startsWith('file://')) return false
  try {
    const filePath = fileURLToPath(frame.url)
    return filePath.startsWith(OWN_RUNTIME_DIR) || RUNTIME_PATH.test(filePath)
  } catch {
    return false
  }
}

/** The shared TaskRecord of a heap task: the heap-only bookkeeping (heap ids, frame sources) left out. */
function toTaskRecord(task: HeapTaskRecord, id: number): TaskRecord {
  const record: TaskRecord = {
    id,
    kind: task.kind,
    state: task.state,
    sinceMs: task.sinceMs,
    waitMs: task.waitMs,
    waitKnown: task.waitKnown,
    stack: task.stack,
    holder: task.holder,
  }
  if (task.channelName !== undefined) record.channelName = task.channelName
  if (task.reason !== undefined) record.reason = task.reason
  return record
}

function describeWaitAges(ages: HeapWaitAges): string {
  if (ages.error !== undefined) return `Wait ages of heap-snapshot tasks could not be read: ${ages.error}.`
  if (!ages.awaitTimes) return "Heap-snapshot tasks have no wait age: the agent is not in await-times mode (FERRYDIAG_AGENT_MODE=await-times)."
  return `Wait ages of heap-snapshot tasks come from the agent's await-times stamps (${ages.tasksWithAge} task(s) with an age).`
}

function describeObservation(observation: (HeapObservation & {askedMs: number}) | undefined): string[] {
  if (!observation) return []
  if (!observation.completed) {
    return [`The target went away during the ${formatDurationMs(observation.askedMs)} second look (after ${formatDurationMs(observation.elapsedMs)}): this dump shows what the snapshot saw; findings that needed the second look are unconfirmed.`]
  }
  return [`Second look after ${formatDurationMs(observation.elapsedMs)}: the objects the findings rest on were read again (the target ran freely meanwhile); "no progress" in a finding is a lower bound of that length.`]
}

function describeHeapCost(stats: HeapRouteStats): string {
  return (
    `Heap snapshot of a ${formatBytes(stats.heapBytes)} heap took ${formatDurationMs(stats.snapshotMs)} (the target's JavaScript was stopped for most of it); ` +
    `${stats.generators} suspended async functions, ${stats.lookups} exact await lines looked up.` +
    describeLineSources(stats.framesBySource)
  )
}

/** Frames whose line came from their function's source rather than V8, and those left at the header. */
function describeLineSources(counts: HeapRouteStats['framesBySource']): string {
  const fromSource = (counts['only-await'] ?? 0) + (counts['awaited-call'] ?? 0) + (counts['await-candidates'] ?? 0)
  const parts: string[] = []
  if (fromSource > 0) {
    const several = counts['await-candidates'] ? ` (${counts['await-candidates']} with several candidate awaits)` : ''
    parts.push(` ${fromSource} frame(s) placed from their function's source${several}: their live await position was not read.`)
  }
  if (counts['function-definition']) parts.push(` ${counts['function-definition']} frame(s) show their function's header: no await line could be read or found in the source.`)
  return parts.join('')
}

/** Process facts for the header when there is no agent to report them (agent fields say 'none'). */
async function readProcessInfo(session: InspectorSession, budgetMs: number | undefined): Promise<DumpProcessInfo> {
  const facts = await session.evaluate<{pid: number; nodeVersion: string; uptimeSec: number; argv: string[]; title: string}>(
    '({pid: process.pid, nodeVersion: process.version, uptimeSec: process.uptime(), argv: process.argv.slice(), title: process.title})',
    {budgetMs, awaitPromise: false},
  )
  return {
    ...facts,
    agentMode: 'none',
    agentLoadedBy: 'none',
    agentVersion: 'none',
    agentStartedAtMs: 0,
  }
}

/**
 * Runs one step against the target; if the connection drops meanwhile (the target exited or closed
 * its inspector) the failure becomes FerrydiagError targetExited, whatever the raw CDP error said.
 */
async function guardExit<T>(session: InspectorSession, doing: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (error) {
    if (isFerrydiagError(error) && error.code !== 'evaluateTimeout') throw error
    if (!session.attached || isConnectionError(error)) {
      const pid = session.target.pid
      throw new FerrydiagError(
        'targetExited',
        `While ${doing}, the target${pid === null ? '' : ` (pid ${pid})`} went away: the inspector connection at ${session.address} closed.`,
        'Check whether the pipeline is still running (its logs, `pgrep -af node`), then attach again.',
        {cause: error},
      )
    }
    throw error
  }
}

function isConnectionError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error)
  return /WebSocket|ECONNRESET|EPIPE|socket hang up|Execution context was destroyed|not open/i.test(message)
}
