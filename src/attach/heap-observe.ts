// The second look of the heap route: a few seconds after the snapshot, re-read the handful of objects
// that a finding rests on (the promises parked tasks await, the queue instances they wait on) by their
// heap object ids, which stay valid for as long as the objects live. Targeted reads, not a second
// snapshot: each read is one heap walk in the target (a short stall), a snapshot stops it for seconds.
// The target is never kept stopped while we wait; a target that exits meanwhile ends the look early.

import type CDP from 'chrome-remote-interface'

import type {HeapObservation, ObjectReading} from '../analyze/heap-split-queue.js'

const OBSERVE_GROUP = 'ferrydiag-heap-observe'
/** Interval between readings of awaited emitters during the look, ms. */
const SAMPLE_MS = 200

/** completed is false when the target exited or the connection dropped during the observation. */
export type ObservationResult = HeapObservation & {before: Map<number, ObjectReading>; after: Map<number, ObjectReading>}

/**
 * Reads the objects now, waits delayMs (the target runs freely meanwhile), reads them again. Promises
 * are read only afterwards (a pending promise at the snapshot that is still pending is what counts).
 */
export async function observeHeapObjects(
  client: CDP.Client,
  objects: {promises: number[]; instances: number[]; emitters?: number[]},
  delayMs: number,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<ObservationResult> {
  const start = performance.now()
  const before = new Map<number, ObjectReading>()
  const after = new Map<number, ObjectReading>()
  try {
    for (const id of objects.instances) before.set(id, await readObject(client, id))
    // Emitters are looked up once (one heap walk each) and read twice through the same handle.
    const emitterHandles = new Map<number, string | null>()
    for (const id of objects.emitters ?? []) {
      const objectId = await lookupObject(client, id)
      emitterHandles.set(id, objectId)
      before.set(id, objectId === null ? {alive: false} : await readEmitter(client, objectId))
    }
    // Emitters are also read every SAMPLE_MS meanwhile (a cheap call each through the kept handle).
    const samples = new Map<number, ObjectReading[]>()
    const sleepStart = performance.now()
    for (let left = delayMs; left > 0; left = delayMs - (performance.now() - sleepStart)) {
      await sleep(emitterHandles.size > 0 ? Math.min(SAMPLE_MS, left) : left)
      if (emitterHandles.size === 0 || performance.now() - sleepStart >= delayMs) break
      for (const [id, objectId] of emitterHandles) {
        if (objectId === null) continue
        const list = samples.get(id) ?? []
        list.push(await readEmitter(client, objectId))
        samples.set(id, list)
      }
    }
    for (const id of objects.promises) after.set(id, await readObject(client, id))
    for (const id of objects.instances) after.set(id, await readObject(client, id))
    for (const [id, objectId] of emitterHandles) after.set(id, objectId === null ? {alive: false} : await readEmitter(client, objectId))
    return {elapsedMs: performance.now() - start, completed: true, before, after, samples}
  } catch {
    return {elapsedMs: performance.now() - start, completed: false, before, after}
  } finally {
    await client.send('Runtime.releaseObjectGroup', {objectGroup: OBSERVE_GROUP}).catch(() => undefined)
  }
}

/** A remote handle on the object (in OBSERVE_GROUP), or null when it was collected since. */
async function lookupObject(client: CDP.Client, heapId: number): Promise<string | null> {
  try {
    const {result} = await client.send('HeapProfiler.getObjectByHeapObjectId', {objectId: String(heapId), objectGroup: OBSERVE_GROUP})
    return result.objectId ?? null
  } catch (error) {
    // "Object is not available": collected since. Anything else (connection gone) ends the look.
    if (/not available|Invalid|not found/i.test(String((error as Error)?.message ?? error))) return null
    throw error
  }
}

/**
 * An emitter's own numeric fields and list lengths (data properties only: no getter of the program
 * runs), its listener counts, and for a stream the state node keeps in _writableState/_readableState
 * (node's own getters). Read-only.
 */
const READ_EMITTER = `function () {
  const fields = {}
  for (const key of Object.keys(this)) {
    const d = Object.getOwnPropertyDescriptor(this, key)
    if (!d || !('value' in d)) continue
    const v = d.value
    if (typeof v === 'number') fields[key] = v
    else if (Array.isArray(v)) fields[key] = v.length
    else if (v instanceof Map || v instanceof Set) fields[key] = v.size
  }
  const listeners = {}
  const events = Object.getOwnPropertyDescriptor(this, '_events')
  if (events && events.value && typeof events.value === 'object') {
    for (const name of Object.keys(events.value)) {
      const l = events.value[name]
      listeners[name] = typeof l === 'function' ? 1 : Array.isArray(l) ? l.length : 0
    }
  }
  let stream
  const w = Object.getOwnPropertyDescriptor(this, '_writableState')
  const r = Object.getOwnPropertyDescriptor(this, '_readableState')
  if (w && w.value && typeof w.value === 'object') {
    const s = w.value
    const errored = s.errored
    stream = {
      writableLength: Number(s.length) || 0, writableHighWaterMark: Number(s.highWaterMark) || 0, writing: !!s.writing,
      pendingCallbacks: Number(s.pendingcb) || 0, corked: Number(s.corked) || 0, needDrain: !!s.needDrain, ended: !!s.ended,
      destroyed: !!s.destroyed, errored: errored ? String(errored && errored.message || errored) : null,
    }
    if (r && r.value && typeof r.value === 'object') {
      stream.readableLength = Number(r.value.length) || 0
      stream.readableHighWaterMark = Number(r.value.highWaterMark) || 0
    }
  }
  return {fields, listeners, stream}
}`

async function readEmitter(client: CDP.Client, objectId: string): Promise<ObjectReading> {
  const {result, exceptionDetails} = await client.send('Runtime.callFunctionOn', {objectId, functionDeclaration: READ_EMITTER, returnByValue: true, silent: true})
  if (exceptionDetails) return {alive: true}
  const value = result.value as {fields: Record<string, number>; listeners: Record<string, number>; stream?: ObjectReading['stream']}
  return {alive: true, fields: value.fields, listeners: value.listeners, ...(value.stream ? {stream: value.stream} : {})}
}

async function readObject(client: CDP.Client, heapId: number): Promise<ObjectReading> {
  const objectId = await lookupObject(client, heapId)
  if (!objectId) return {alive: false}
  const properties = await client.send('Runtime.getProperties', {objectId, ownProperties: true})
  const state = properties.internalProperties?.find((p) => p.name === '[[PromiseState]]')?.value?.value
  if (typeof state === 'string') return {alive: true, promiseState: state}
  const fields: Record<string, number> = {}
  const all = [...properties.result, ...(properties.privateProperties ?? [])]
  for (const property of all) {
    const value = property.value
    if (!value) continue
    if (value.type === 'number' && typeof value.value === 'number') fields[property.name] = value.value
    else if (value.type === 'object' && /^(array|map|set)$/.test(value.subtype ?? '')) {
      const size = /\((\d+)\)$/.exec(value.description ?? '')
      if (size) fields[property.name] = Number(size[1])
    }
  }
  return {alive: true, fields}
}
