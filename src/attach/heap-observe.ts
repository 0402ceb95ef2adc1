// The second look of the heap route: a few seconds after the snapshot, re-read the handful of objects
// that a finding rests on (the promises parked tasks await, the queue instances they wait on) by their
// heap object ids, which stay valid for as long as the objects live. Targeted reads, not a second
// snapshot: each read is one heap walk in the target (a short stall), a snapshot stops it for seconds.
// The target is never kept stopped while we wait; a target that exits meanwhile ends the look early.

import type CDP from 'chrome-remote-interface'

import type {HeapObservation, ObjectReading} from '../analyze/heap-split-queue.js'

const OBSERVE_GROUP = 'ferrydiag-heap-observe'

/** completed is false when the target exited or the connection dropped during the observation. */
export type ObservationResult = HeapObservation & {before: Map<number, ObjectReading>; after: Map<number, ObjectReading>}

/**
 * Reads the objects now, waits delayMs (the target runs freely meanwhile), reads them again. Promises
 * are read only afterwards (a pending promise at the snapshot that is still pending is what counts).
 */
export async function observeHeapObjects(
  client: CDP.Client,
  objects: {promises: number[]; instances: number[]},
  delayMs: number,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<ObservationResult> {
  const start = performance.now()
  const before = new Map<number, ObjectReading>()
  const after = new Map<number, ObjectReading>()
  try {
    for (const id of objects.instances) before.set(id, await readObject(client, id))
    await sleep(delayMs)
    for (const id of objects.promises) after.set(id, await readObject(client, id))
    for (const id of objects.instances) after.set(id, await readObject(client, id))
    return {elapsedMs: performance.now() - start, completed: true, before, after}
  } catch {
    return {elapsedMs: performance.now() - start, completed: false, before, after}
  } finally {
    await client.send('Runtime.releaseObjectGroup', {objectGroup: OBSERVE_GROUP}).catch(() => undefined)
  }
}

async function readObject(client: CDP.Client, heapId: number): Promise<ObjectReading> {
  let objectId: string | undefined
  try {
    const {result} = await client.send('HeapProfiler.getObjectByHeapObjectId', {objectId: String(heapId), objectGroup: OBSERVE_GROUP})
    objectId = result.objectId
  } catch (error) {
    // "Object is not available": collected since. Anything else (connection gone) ends the look.
    if (/not available|Invalid|not found/i.test(String((error as Error)?.message ?? error))) return {alive: false}
    throw error
  }
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
