// The CLI side of the attach-time probes: install them in a target (once: a marker prevents a second
// install), find instances that never emitted through Runtime.queryObjects, read them, and remove them.

import {installProbes, PROBES_GLOBAL_KEY, UNDO_GLOBAL_KEY} from '../agent/probes-core.cjs'
import {installQueueProbes, QUEUE_PROBES_UNDO_NAME} from '../agent/queue-probes-core.cjs'
import type {InspectorSession} from '../attach/session.js'
import {FerrydiagError} from '../errors.js'
import type {ProbeInstallStatus, ProbeReading, ProbesUse} from '../model/probes.js'
import type {AgentSnapshot} from '../model/snapshot.js'
import {trace} from '../trace.js'
import {probeReadingToSnapshot} from './probe-snapshot.js'

const PROBES = `globalThis[Symbol.for(${JSON.stringify(PROBES_GLOBAL_KEY)})]`
const UNDO = `globalThis[Symbol.for(${JSON.stringify(UNDO_GLOBAL_KEY)})]`
/** The lease the production-safety watchdog keeps (issue 10): one ferrydiag session per target. */
const LEASE = `globalThis[Symbol.for('ferrydiag.lease')]`

export interface ProbeInstallResult extends ProbeInstallStatus {
  /** zongji instances found by Runtime.queryObjects and adopted (0 when none or not looked up). */
  adopted: number
  /** Wall time of the queryObjects call (it forces a full GC: the target stalls this long), ms; null when not run. */
  queryObjectsMs: number | null
  /**
   * Queues and streams watched at the end of the install (found by a Runtime.queryObjects, or by their own
   * add/emit/write calls since the patch), and the queryObjects call's wall time, ms (null: not run).
   */
  queuesAdopted: number
  queueLookupMs: number | null
}

/** True when probes (or an install in progress) are present in the target. */
export async function probesPresent(session: InspectorSession): Promise<boolean> {
  return session.evaluate<boolean>(`${PROBES} !== undefined && ${PROBES} !== null`, {awaitPromise: false})
}

/**
 * Installs the probes. Refuses with FerrydiagError probesPresent when probes (another session's) are
 * already there. With findInstances, looks up zongji instances that have not
 * emitted since install with one Runtime.queryObjects (a full GC in the target; its time is returned).
 * Queues are looked up the same way (lookUpQueues, default on) only when queueLookupReason says so.
 */
export async function installProbesIn(
  session: InspectorSession,
  options: {findInstances?: boolean; lookUpQueues?: boolean; budgetMs?: number} = {},
): Promise<ProbeInstallResult> {
  const leaseHolder = await session.evaluate<string | null>(
    `(() => { const l = ${LEASE}; if (!l) return null; return typeof l === 'object' ? JSON.stringify(l) : String(l) })()`,
    {awaitPromise: false},
  )
  if (await probesPresent(session)) {
    throw new FerrydiagError(
      'probesPresent',
      `Probes from another ferrydiag session are already installed in the target at ${session.address}${leaseHolder ? ` (lease: ${leaseHolder})` : ''}; they are never installed twice.`,
      'Wait for the other session to end (its probes are removed when it detaches, or by the watchdog when it dies), or run ferrydiag lag or tune-batch with --no-probes.',
    )
  }
  const status = await session.evaluate<ProbeInstallStatus>(`(${installProbes.toString()})()`, {
    budgetMs: options.budgetMs ?? 10_000,
    awaitPromise: true,
  })
  if (status.installed) {
    const queueLibraries = await session.evaluate<ProbeInstallStatus['libraries']>(`(${installQueueProbes.toString()})()`, {
      budgetMs: options.budgetMs ?? 10_000,
      awaitPromise: true,
    })
    status.libraries.push(...queueLibraries)
  }
  const queues = status.installed && options.lookUpQueues !== false ? await lookUpQueues(session, queueLookupReason(status.libraries, await watchedQueues(session))) : {adopted: 0, ms: null}
  let adopted = 0
  let queryObjectsMs: number | null = null
  if (options.findInstances !== false && status.libraries.some((l) => l.state === 'patched' && /zongji/.test(l.name))) {
    const found = await adoptInstances(session, 'zongji')
    adopted = found.adopted
    queryObjectsMs = found.ms
  }
  return {...status, adopted, queryObjectsMs, queuesAdopted: queues.adopted, queueLookupMs: queues.ms}
}

/** What the queue probes watch and which libraries they found (see watching() in queue-probes-core.cts). */
interface QueueWatch {
  plainKinds: string[]
  pqueue: boolean
  byKind: Record<string, number>
}

async function watchedQueues(session: InspectorSession): Promise<QueueWatch | null> {
  return session.evaluate<QueueWatch | null>(`(() => { const q = ${PROBES}?.queues; return q ? q.watching() : null })()`, {awaitPromise: false})
}

/**
 * Why the queues need a heap lookup (Runtime.queryObjects, a full GC), or null when they do not. fastq and
 * async queues are plain objects the program reaches through its own binding of the factory: only a lookup
 * finds those created before install. A p-queue makes itself known on its next add() or task (prototype
 * wrappers), a stream on its next write(); a lookup is still the only way to see one that never moves again,
 * so it runs when a p-queue class is loaded but no instance has shown itself, and when the program has no
 * library the probes know but streams, none of which has written yet.
 */
export function queueLookupReason(libraries: ProbeInstallStatus['libraries'], watch: QueueWatch | null): string | null {
  if (watch === null) return null
  if (watch.plainKinds.length > 0) return watch.plainKinds.join('+')
  if (watch.pqueue && (watch.byKind['p-queue'] ?? 0) === 0) return 'p-queue'
  const others = libraries.some((l) => l.state === 'patched' && l.name !== 'node:stream')
  if (!others && (watch.byKind.stream ?? 0) === 0) return 'stream'
  return null
}

/** Queues and streams the queue probes watch. */
function watchedCount(watch: QueueWatch | null): number {
  return watch === null ? 0 : Object.values(watch.byKind).reduce((a, b) => a + b, 0)
}

/**
 * With a reason (queueLookupReason), finds the queues and streams in the heap with one
 * Runtime.queryObjects over Object.prototype (it matches the whole prototype chain, so one full GC serves
 * every library), skipped above QUERY_OBJECTS_MAX_HEAP_BYTES. Returns what is watched afterwards (found by
 * any route) and the call's wall time (null when not run).
 */
export async function lookUpQueues(session: InspectorSession, reason: string | null): Promise<{adopted: number; ms: number | null}> {
  const cdp = session.cdp
  if (reason !== null && (await cdp.send('Runtime.getHeapUsage')).usedSize <= QUERY_OBJECTS_MAX_HEAP_BYTES) {
    trace(`queue-lookup ${reason}`)
    const proto = await cdp.send('Runtime.evaluate', {expression: 'Object.prototype', returnByValue: false, silent: true})
    const protoId = proto.result.objectId!
    try {
      const started = performance.now()
      const found = await cdp.send('Runtime.queryObjects', {prototypeObjectId: protoId, objectGroup: 'ferrydiag-queues'})
      const ms = performance.now() - started
      await cdp.send('Runtime.callFunctionOn', {
        objectId: found.objects.objectId!,
        functionDeclaration: `function () { const q = ${PROBES}?.queues; return q ? q.adoptQueues(this) : 0 }`,
        returnByValue: true,
        silent: true,
      })
      return {adopted: watchedCount(await watchedQueues(session)), ms}
    } finally {
      await cdp.send('Runtime.releaseObjectGroup', {objectGroup: 'ferrydiag-queues'}).catch(() => undefined)
      await cdp.send('Runtime.releaseObject', {objectId: protoId}).catch(() => undefined)
    }
  }
  return {adopted: watchedCount(await watchedQueues(session)), ms: null}
}

/** Least time between two heap lookups for fastq/async queues created after install, ms (each is a full GC). */
export const LATE_QUEUE_LOOKUP_EVERY_MS = 3000

/**
 * Largest used heap on which Runtime.queryObjects runs, bytes. It forces a full GC: ~0.8 s measured on a
 * small test program on a loaded machine, 33 s on the reference pipeline's heap of several GB. Above this
 * the lookup is skipped (a quiet zongji instance is then seen only once it emits).
 */
export const QUERY_OBJECTS_MAX_HEAP_BYTES = 64 * 1024 * 1024

async function adoptInstances(session: InspectorSession, kind: 'zongji'): Promise<{adopted: number; ms: number | null}> {
  const cdp = session.cdp
  const heap = await cdp.send('Runtime.getHeapUsage')
  if (heap.usedSize > QUERY_OBJECTS_MAX_HEAP_BYTES) return {adopted: 0, ms: null}
  const proto = await cdp.send('Runtime.evaluate', {expression: `${PROBES}.prototypes[${JSON.stringify(kind)}]`, returnByValue: false, silent: true})
  const protoId = proto.result.objectId
  if (!protoId) return {adopted: 0, ms: null}
  const started = performance.now()
  const found = await cdp.send('Runtime.queryObjects', {prototypeObjectId: protoId, objectGroup: 'ferrydiag-probes'})
  const ms = performance.now() - started
  try {
    const result = await cdp.send('Runtime.callFunctionOn', {
      objectId: found.objects.objectId!,
      functionDeclaration: `function () { const p = ${PROBES}; return p ? p.adopt(${JSON.stringify(kind)}, this) : 0 }`,
      returnByValue: true,
      silent: true,
    })
    return {adopted: Number(result.result.value ?? 0), ms}
  } finally {
    await cdp.send('Runtime.releaseObjectGroup', {objectGroup: 'ferrydiag-probes'}).catch(() => undefined)
    await cdp.send('Runtime.releaseObject', {objectId: protoId}).catch(() => undefined)
  }
}

/** One reading of the probes; null when none are installed. */
export async function readProbes(session: InspectorSession, options: {budgetMs?: number} = {}): Promise<ProbeReading | null> {
  const text = await session.evaluate<string | null>(
    `(() => { const p = ${PROBES}; if (!p || typeof p.read !== 'function') return null;
      const r = p.read(); return p.queues ? r.slice(0, -1) + ',"queues":' + p.queues.readQueues() + '}' : r })()`, {
    budgetMs: options.budgetMs,
    awaitPromise: false,
  })
  return text === null ? null : (JSON.parse(text) as ProbeReading)
}

/**
 * Removes the probes this session installed: runs the 'probes' undo entry (restores every patched method)
 * and deletes it. Returns false when the target was already gone or had no probes. Never throws.
 */
export async function removeProbes(session: InspectorSession): Promise<boolean> {
  if (!session.attached) return false
  trace('remove-probes')
  try {
    return await session.evaluate<boolean>(
      `(() => { const map = ${UNDO}; const undo = map instanceof Map ? map.get('probes') : undefined;
        const queues = map instanceof Map ? map.get(${JSON.stringify(QUEUE_PROBES_UNDO_NAME)}) : undefined;
        if (typeof queues === 'function') { queues(); map.delete(${JSON.stringify(QUEUE_PROBES_UNDO_NAME)}) }
        if (typeof undo === 'function') { undo(); map.delete('probes'); return true }
        const p = ${PROBES}; if (p && p.queues) p.queues.uninstall(); if (p && typeof p.uninstall === 'function') { p.uninstall(); return true }
        return false })()`,
      {awaitPromise: false, budgetMs: 2000},
    )
  } catch {
    return false
  }
}

/** How a lag or tune-batch window reads the pipeline, and what the probes did. */
export interface PipelineReader {
  /** The tick reader for sampleWindow; undefined: the agent's own snapshot. */
  readSnapshot?: (session: InspectorSession, budgetMs: number) => Promise<AgentSnapshot | null>
  probes: ProbesUse
  /** True when this session installed probes that must be removed at the end (removeProbes). */
  mustRemove: boolean
}

/**
 * The agent's stages when the pipeline registers any; otherwise the probes (unless turned off). Probes
 * that find no library in use are removed again at once (nothing is left behind for nothing).
 */
export async function choosePipelineReader(session: InspectorSession, options: {probes: boolean}): Promise<PipelineReader> {
  const empty = {libraries: [], adopted: 0, queryObjectsMs: null, installMs: null, installedAtMs: null}
  const agent = await session.readSnapshot()
  if (agent !== null && agent.stages.length > 0) return {probes: {state: 'not-needed', ...empty}, mustRemove: false}
  if (!options.probes) return {probes: {state: 'off', ...empty}, mustRemove: false}
  // zongji instances are looked up with queryObjects (a full GC: measured 0.2-0.8 s of stall here) only
  // when a patched zongji class exists but no instance has emitted by the first read: a quiet or stuck one.
  const installed = await installProbesIn(session, {findInstances: false})
  const probes = {
    libraries: installed.libraries,
    adopted: installed.adopted,
    queryObjectsMs: installed.queryObjectsMs,
    installMs: installed.installMs,
    installedAtMs: installed.installedAtMs,
    queuesAdopted: installed.queuesAdopted,
    queueLookupMs: installed.queueLookupMs,
  }
  // node:stream is always there: it counts only when a data-path stream (or a queue) was found.
  if (!installed.libraries.some((l) => l.state === 'patched' && l.name !== 'node:stream') && installed.queuesAdopted === 0) {
    await removeProbes(session)
    return {probes: {state: 'nothing-found', ...probes}, mustRemove: false}
  }
  const use: ProbesUse = {state: 'used', ...probes}
  trace('probes')
  let lookedUp = !installed.libraries.some((l) => l.state === 'patched' && /zongji/.test(l.name))
  // fastq and async queues created after install are reached by nothing but a heap lookup: one more at a
  // read at most every LATE_QUEUE_LOOKUP_EVERY_MS while such a library is loaded (its cost adds to queueLookupMs).
  const lateLookups = installed.libraries.some((l) => l.state === 'patched' && (l.name === 'fastq' || l.name === 'async'))
  let lastQueueLookupMono = performance.now()
  return {
    readSnapshot: async (s, budgetMs) => {
      if (lateLookups && performance.now() - lastQueueLookupMono >= LATE_QUEUE_LOOKUP_EVERY_MS) {
        const found = await lookUpQueues(s, 'late')
        lastQueueLookupMono = performance.now()
        if (found.ms !== null) use.queueLookupMs = (use.queueLookupMs ?? 0) + found.ms
      }
      let reading = await readProbes(s, {budgetMs})
      if (reading !== null && !lookedUp && reading.streamers.length === 0) {
        lookedUp = true
        const found = await adoptInstances(s, 'zongji')
        use.adopted = found.adopted
        use.queryObjectsMs = found.ms
        if (found.adopted > 0) reading = await readProbes(s, {budgetMs})
      }
      // Queues and streams that made themselves known since (a put, a task, a write) count as found too.
      if (reading?.queues !== undefined) use.queuesAdopted = Math.max(use.queuesAdopted ?? 0, reading.queues.length)
      return reading === null ? null : probeReadingToSnapshot(reading)
    },
    probes: use,
    mustRemove: true,
  }
}
