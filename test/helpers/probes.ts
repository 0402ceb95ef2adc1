// Checks for the attach-time probes: what a fresh session finds of them in a target (the marker, the undo
// entry, and whether zongji's and mysql2's patched methods are the originals again).

import assert from 'node:assert/strict'
import {attachTarget} from '../../src/attach/index.js'

/** What a second session sees of the probes in the target at `inspect`. */
export interface ProbeTraces {
  marker: boolean
  undoEntry: boolean
  /** mysql2 BaseConnection prototypes with a method that is not the library's own. */
  mysql2Patched: number
  mysql2Seen: number
  /** zongji classes (reached again through the main ESM loader) with an own `emit` or a patch flag. */
  zongjiPatched: number
  zongjiSeen: number
}

export const PROBE_TRACES_EXPRESSION = `(async () => {
  const Module = process.getBuiltinModule('node:module'), path = process.getBuiltinModule('node:path'), fs = process.getBuiltinModule('node:fs');
  const url = process.getBuiltinModule('node:url'), vm = process.getBuiltinModule('node:vm');
  const out = {marker: globalThis[Symbol.for('ferrydiag.probes')] !== undefined, undoEntry: false, mysql2Patched: 0, mysql2Seen: 0, zongjiPatched: 0, zongjiSeen: 0};
  const undo = globalThis[Symbol.for('ferrydiag.undo')];
  out.undoEntry = undo instanceof Map && undo.has('probes');
  for (const [file, mod] of Object.entries(Module._cache)) {
    if (!file.endsWith(path.join('mysql2', 'lib', 'base', 'connection.js'))) continue;
    out.mysql2Seen++;
    const proto = mod.exports.prototype;
    const own = ['addCommand', 'pause', 'resume'].some((n) => !Object.hasOwn(proto, n) || /ferrydiag|isWrite|pausedSinceMono/.test(String(proto[n])));
    if (own || Object.hasOwn(proto, '__ferrydiagPatched')) out.mysql2Patched++;
  }
  let dir = path.dirname(path.resolve(process.argv[1]));
  for (;;) { const c = path.join(dir, 'node_modules', '@vlasky', 'zongji', 'index.js'); if (fs.existsSync(c)) { dir = c; break } const p = path.dirname(dir); if (p === dir) { dir = null; break } dir = p }
  if (dir) {
    const ns = await new vm.Script('import(' + JSON.stringify(url.pathToFileURL(dir).href) + ')', {importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER}).runInThisContext();
    out.zongjiSeen++;
    if (Object.hasOwn(ns.default.prototype, 'emit') || Object.hasOwn(ns.default.prototype, '__ferrydiagPatched')) out.zongjiPatched++;
  }
  return out;
})()`

/** `where`: an inspector address, or `{pid}` (attached with SIGUSR1, and closed again). */
export async function readProbeTraces(where: string | {pid: number}): Promise<ProbeTraces> {
  const session = await attachTarget(typeof where === 'string' ? {inspect: where} : where)
  try {
    return await session.evaluate<ProbeTraces>(PROBE_TRACES_EXPRESSION, {awaitPromise: true})
  } finally {
    await session.detach()
  }
}

/** A second attach finds no probe marker and no undo entry, and every method the probes patch is the library's own. */
export async function assertNoProbesLeft(where: string | {pid: number}): Promise<ProbeTraces> {
  const traces = await readProbeTraces(where)
  assert.equal(traces.marker, false, 'probe marker left in the target')
  assert.equal(traces.undoEntry, false, "undo entry 'probes' left in the target")
  assert.equal(traces.mysql2Patched, 0, 'a mysql2 method is still patched')
  assert.equal(traces.zongjiPatched, 0, 'zongji emit is still patched')
  return traces
}

/**
 * What a second session finds of the queue probes: their undo entry, and put/wait methods that are not the
 * libraries' own (a wrapper's source names its counters) on p-queue's prototype (add, waits, emit), on
 * Writable/Duplex.prototype (write, end) and on any plain object (fastq and async queues), looked up with
 * one Runtime.queryObjects over Object.prototype.
 */
export async function readQueueProbeTraces(inspect: string): Promise<{undoEntry: boolean; wrapped: number}> {
  const session = await attachTarget({inspect})
  try {
    const undoEntry = await session.evaluate<boolean>(
      `(() => { const u = globalThis[Symbol.for('ferrydiag.undo')]; return u instanceof Map && u.has('probes-queues') })()`,
      {awaitPromise: false},
    )
    const proto = await session.cdp.send('Runtime.evaluate', {expression: 'Object.prototype', returnByValue: false})
    const found = await session.cdp.send('Runtime.queryObjects', {prototypeObjectId: proto.result.objectId!, objectGroup: 'traces'})
    const result = await session.cdp.send('Runtime.callFunctionOn', {
      objectId: found.objects.objectId!,
      functionDeclaration: `function () {
        const isProxy = process.getBuiltinModule('node:util').types.isProxy
        const ours = (f) => typeof f === 'function' && /notePut|waitSinceMono|recordFor/.test(Function.prototype.toString.call(f))
        let n = 0
        for (const o of this) {
          if (o === null || typeof o !== 'object' || isProxy(o)) continue
          for (const name of ['push', 'unshift', 'pushAsync', 'unshiftAsync', 'drained', 'add', 'onSizeLessThan', 'onEmpty', 'onIdle', 'emit', 'write', 'end']) {
            const d = Object.getOwnPropertyDescriptor(o, name)
            if (d && ours(d.value)) n++
          }
        }
        return n
      }`,
      returnByValue: true,
    })
    await session.cdp.send('Runtime.releaseObjectGroup', {objectGroup: 'traces'})
    return {undoEntry, wrapped: Number(result.result.value)}
  } finally {
    await session.detach()
  }
}
