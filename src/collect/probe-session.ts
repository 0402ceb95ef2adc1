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
  /** Queues (fastq, async, p-queue) found by Runtime.queryObjects and watched, and those calls' wall time, ms. */
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
 */
export async function installProbesIn(session: InspectorSession, options: {findInstances?: boolean; budgetMs?: number} = {}): Promise<ProbeInstallResult> {
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
  const queues = await adoptQueues(session)
  let adopted = 0
  let queryObjectsMs: number | null = null
  if (options.findInstances !== false && status.libraries.some((l) => l.state === 'patched' && /zongji/.test(l.name))) {
    const found = await adoptInstances(session, 'zongji')
    adopted = found.adopted
    queryObjectsMs = found.ms
  }
  return {...status, adopted, queryObjectsMs, queuesAdopted: queues.adopted, queueLookupMs: queues.ms}
}

/**
 * Finds the queues of the libraries the queue probes recognised: one Runtime.queryObjects per prototype
 * they name (p-queue's class; Object.prototype for fastq's and async's plain objects), each a full GC in
 * the target, skipped above QUERY_OBJECTS_MAX_HEAP_BYTES.
 */
async function adoptQueues(session: InspectorSession): Promise<{adopted: number; ms: number | null}> {
  const cdp = session.cdp
  const kinds = await session.evaluate<string[]>(`(() => { const q = ${PROBES}?.queues; return q ? Object.keys(q.prototypes) : [] })()`, {awaitPromise: false})
  if (kinds.length === 0) return {adopted: 0, ms: null}
  const heap = await cdp.send('Runtime.getHeapUsage')
  if (heap.usedSize > QUERY_OBJECTS_MAX_HEAP_BYTES) return {adopted: 0, ms: null}
  let adopted = 0
  let ms = 0
  for (const kind of kinds) {
    const proto = await cdp.send('Runtime.evaluate', {expression: `${PROBES}.queues.prototypes[${JSON.stringify(kind)}]`, returnByValue: false, silent: true})
    const protoId = proto.result.objectId
    if (!protoId) continue
    try {
      const started = performance.now()
      const found = await cdp.send('Runtime.queryObjects', {prototypeObjectId: protoId, objectGroup: 'ferrydiag-queues'})
      ms += performance.now() - started
      const result = await cdp.send('Runtime.callFunctionOn', {
        objectId: found.objects.objectId!,
        functionDeclaration: `function () { const q = ${PROBES}?.queues; return q ? q.adoptQueues(this) : 0 }`,
        returnByValue: true,
        silent: true,
      })
      adopted += Number(result.result.value ?? 0)
    } finally {
      await cdp.send('Runtime.releaseObjectGroup', {objectGroup: 'ferrydiag-queues'}).catch(() => undefined)
      await cdp.send('Runtime.releaseObject', {objectId: protoId}).catch(() => undefined)
    }
  }
  return {adopted, ms}
}

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
  return {
    readSnapshot: async (s, budgetMs) => {
      let reading = await readProbes(s, {budgetMs})
      if (reading !== null && !lookedUp && reading.streamers.length === 0) {
        lookedUp = true
        const found = await adoptInstances(s, 'zongji')
        use.adopted = found.adopted
        use.queryObjectsMs = found.ms
        if (found.adopted > 0) reading = await readProbes(s, {budgetMs})
      }
      return reading === null ? null : probeReadingToSnapshot(reading)
    },
    probes: use,
    mustRemove: true,
  }
}
