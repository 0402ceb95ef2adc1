// Finds the pipeline's own batch-size knob (an `async` cargo's payload, a stream's high-water mark, a
// numeric property such as `buffer.batchSize`) among the objects the probes hold: the queues they watch and
// the zongji instances, and what their listeners close over. Read-only: property descriptors through the
// inspector (Runtime.getProperties never runs a getter of the target's), nothing called in the target.

import type {InspectorSession} from '../attach/index.js'
import {PROBES_GLOBAL_KEY} from '../agent/probes-core.cjs'
import type {BatchKnob} from '../model/tune-batch.js'

const PROBES = `globalThis[Symbol.for(${JSON.stringify(PROBES_GLOBAL_KEY)})]`
/** A property name that reads as a batch size or limit. */
const KNOB_NAME = /batch|payload|chunk|flush|limit|capacity|highwatermark|max.*(size|rows|items|events)|size/i
/** Inspector calls at most (each a Runtime.getProperties): the search stays a few ms of the target's time. */
const MAX_CALLS = 400
const MAX_DEPTH = 6

/** Names that lead away from the pipeline (module machinery, globals, prototypes): never followed. */
const SKIPPED = new Set(['require', 'module', 'exports', '__filename', '__dirname', 'globalThis', 'process', 'console', 'prototype', 'constructor', '__proto__'])

/** Closure scopes of the probes' own code (their wrappers around the queue's methods): not the pipeline's. */
const PROBE_SCOPE = /\((installProbes|installQueueProbes|putWrapper|waitWrapper)\)/

interface Node {
  objectId: string
  /** The path that reached it, functions included: the same path twice is the same object (object ids differ per call). */
  key: string
  /** How the pipeline's code would name it: `cargo`, `buffer`, `writer.buffer`. */
  label: string
  depth: number
}

/**
 * The property whose value equals the batch size the probes observed (or the most rows in one write),
 * nearest the roots first; names with "batch" or "payload" win over other size-like names. null when none.
 */
export async function findBatchKnob(session: InspectorSession, sizes: {observed: number; maxRows: number}): Promise<BatchKnob | null> {
  const cdp = session.cdp
  const group = 'ferrydiag-knob'
  const wanted = new Set([sizes.observed, sizes.maxRows])
  try {
    const roots = await cdp.send('Runtime.evaluate', {
      expression: `(() => { const p = ${PROBES}; return p && typeof p.heldObjects === 'function' ? p.heldObjects() : [] })()`,
      objectGroup: group,
      returnByValue: false,
      silent: true,
    })
    if (!roots.result.objectId) return null
    const queue: Node[] = []
    const seen = new Set<string>()
    let calls = 0
    const list = await cdp.send('Runtime.getProperties', {objectId: roots.result.objectId, ownProperties: true})
    calls++
    for (const entry of list.result) {
      if (!/^\d+$/.test(entry.name) || !entry.value?.objectId) continue
      const pair = await cdp.send('Runtime.getProperties', {objectId: entry.value.objectId, ownProperties: true})
      calls++
      const kind = pair.result.find((p) => p.name === 'kind')?.value?.value
      const object = pair.result.find((p) => p.name === 'object')?.value
      if (typeof kind === 'string' && object?.objectId) queue.push({objectId: object.objectId, key: `${entry.name}:${kind}`, label: kind, depth: 0})
    }
    const found: Array<BatchKnob & {rank: number}> = []
    while (queue.length > 0 && calls < MAX_CALLS) {
      const node = queue.shift()!
      if (seen.has(node.key)) continue
      seen.add(node.key)
      const props = await cdp.send('Runtime.getProperties', {objectId: node.objectId, ownProperties: true})
      calls++
      for (const p of props.result) {
        const v = p.value
        if (v === undefined) continue // an accessor: never run
        if (v.type === 'number' && typeof v.value === 'number' && wanted.has(v.value) && KNOB_NAME.test(p.name)) {
          found.push({path: `${node.label}.${p.name}`, value: v.value, rank: node.depth * 2 + (/batch|payload/i.test(p.name) ? 0 : 1)})
        }
        if (node.depth < MAX_DEPTH && !SKIPPED.has(p.name) && v.objectId && (v.type === 'object' || v.type === 'function') && v.subtype !== 'array' && v.subtype !== 'proxy') {
          const label = v.type === 'function' ? node.label : `${node.label}.${p.name}`
          queue.push({objectId: v.objectId, key: `${node.key}.${p.name}`, label, depth: node.depth + 1})
        }
      }
      // What a listener or worker function closes over: its closure scopes' variables, by their names.
      for (const p of props.internalProperties ?? []) {
        if (p.name !== '[[Scopes]]' || !p.value?.objectId || node.depth >= MAX_DEPTH) continue
        const scopes = await cdp.send('Runtime.getProperties', {objectId: p.value.objectId, ownProperties: true})
        calls++
        for (const scope of scopes.result) {
          const scopeObject = scope.value
          if (!scopeObject?.objectId || /^Global/.test(scopeObject.description ?? '') || PROBE_SCOPE.test(scopeObject.description ?? '')) continue
          const vars = await cdp.send('Runtime.getProperties', {objectId: scopeObject.objectId, ownProperties: true})
          calls++
          for (const variable of vars.result) {
            const value = variable.value
            if (value?.type === 'number' && typeof value.value === 'number' && wanted.has(value.value) && KNOB_NAME.test(variable.name)) {
              found.push({path: variable.name, value: value.value, rank: node.depth * 2 + 1 + (/batch|payload/i.test(variable.name) ? 0 : 1)})
            }
            if ((value?.type === 'object' || value?.type === 'function') && value.objectId && !SKIPPED.has(variable.name) && value.subtype !== 'array' && value.subtype !== 'proxy') {
              // A variable is named by the scope that holds it: the same scope seen from two functions is one.
              queue.push({objectId: value.objectId, key: `${scopeObject.description}:${variable.name}`, label: variable.name, depth: node.depth + 1})
            }
          }
        }
      }
    }
    found.sort((a, b) => a.rank - b.rank)
    return found[0] ? {path: found[0].path, value: found[0].value} : null
  } catch {
    return null
  } finally {
    await cdp.send('Runtime.releaseObjectGroup', {objectGroup: group}).catch(() => undefined)
  }
}
