// Benchmark of `stacks --heap` end to end against targets holding ~10 MB and ~100 MB of live heap:
// total time, the target's longest event-loop stall (measured inside the target), its RSS growth,
// and the estimate printed beforehand. Figures are printed, never asserted. Target: ≤ 3 s at 100 MB.
// One more row: the extra cost of reading wait ages from the agent's await-times stamps (10 MB heap),
// next to what one per-promise CDP lookup (the alternative) costs on the same heap.

import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import CDP from 'chrome-remote-interface'

import {collectHeapTasks} from '../../src/attach/heap-tasks.js'
import {spawnTarget, type TargetProcess} from '../helpers/child-process.js'

// A pipeline-like target: a few parked async tasks plus `MB` megabytes of small live objects, and a
// 5 ms ticker that records the longest gap between ticks (the stall the snapshot causes).
const TARGET_SOURCE = `
const megabytes = Number(process.argv[2])
const rows = []
// ~80 bytes per {id, name, payload} row with its string: 13k rows per MB.
const dense = process.argv[3] === 'dense'
if (dense) {
  // ~80 bytes per {id, name, payload} row: ~13k rows and ~40k heap objects per MB (buffered row events).
  for (let i = 0; i < megabytes * 13_000; i++) rows.push({id: i, name: 'row-' + i, payload: {n: i}})
} else {
  // ~1 KB array of small integers per row: ~1k rows and ~3k heap objects per MB (rows with payloads).
  for (let i = 0; i < megabytes * 1000; i++) rows.push({id: i, payload: new Array(125).fill(i)})
}
globalThis.rows = rows
class Channel {
  constructor(name) { this.name = name; this.receiveWaiters = [] }
  receive() { return new Promise((resolve) => this.receiveWaiters.push(resolve)) }
}
const events = new Channel('binlog-events')
async function writer(n) { for (;;) await events.receive() }
for (let i = 0; i < 8; i++) writer(i)
async function ticker() { for (;;) await new Promise((r) => setTimeout(r, 1000)) }
ticker()
globalThis.maxGapMs = 0
let last = performance.now()
setInterval(() => {
  const now = performance.now()
  globalThis.maxGapMs = Math.max(globalThis.maxGapMs, now - last)
  last = now
}, 5)
setTimeout(() => console.log('ready'), 500)
`

const REGISTER_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/agent/register.js')

/** Starts the bench target with its inspector on a free port; resolves once it has built its heap. */
function startTarget(file: string, execArgv: string[], args: string[], env: NodeJS.ProcessEnv = {}): Promise<TargetProcess> {
  // The heap takes a while to build at 100 MB on a busy machine.
  return spawnTarget({file, execArgv: ['--inspect=127.0.0.1:0', ...execArgv], args, env: {...process.env, ...env}, startTimeoutMs: 120_000})
}

async function measure(file: string, megabytes: number, shape: 'dense' | 'sparse'): Promise<void> {
  const target = await startTarget(file, ['--max-old-space-size=4096'], [String(megabytes), shape])
  try {
    const client = await CDP({host: '127.0.0.1', port: target.inspectPort!})
    const evaluate = async (expression: string): Promise<number> =>
      (await client.send('Runtime.evaluate', {expression, returnByValue: true})).result.value as number
    await evaluate('globalThis.maxGapMs = 0')
    const rssBefore = await evaluate('process.memoryUsage().rss')
    let estimateText = ''
    const started = performance.now()
    const result = await collectHeapTasks(client, {
      onEstimate: (e) => {
        estimateText = `estimate: stall ~${(e.stallMs / 1000).toFixed(1)} s (worst ${(e.stallMsWorst / 1000).toFixed(1)} s), +${Math.round(e.extraMemoryBytes / 2 ** 20)} MB (worst +${Math.round(e.extraMemoryBytesWorst / 2 ** 20)} MB)`
      },
    })
    const totalMs = performance.now() - started
    await new Promise((resolve) => setTimeout(resolve, 50))
    const stallMs = await evaluate('globalThis.maxGapMs')
    const rssAfter = await evaluate('process.memoryUsage().rss')
    const s = result.stats
    process.stdout.write(
      [
        `${shape} heap ${megabytes} MB requested, ${(s.heapBytes / 2 ** 20).toFixed(0)} MB used; ${estimateText}`,
        `  end to end ${(totalMs / 1000).toFixed(2)} s: snapshot+transfer ${s.snapshotMs.toFixed(0)} ms, parse tail ${s.parseMs.toFixed(0)} ms, ` +
          `graph ${s.graphMs.toFixed(0)} ms, analyze ${s.analyzeMs.toFixed(0)} ms, ${s.lookups} lookups ${s.lookupMs.toFixed(0)} ms`,
        `  target longest stall ${stallMs.toFixed(0)} ms; target RSS +${((rssAfter - rssBefore) / 2 ** 20).toFixed(0)} MB; ` +
          `${s.nodes} nodes, ${s.edges} edges, ${(s.snapshotChars / 2 ** 20).toFixed(0)} MB of JSON; ` +
          `${s.generators} generators, ${result.tasks.length} tasks`,
        '',
      ].join('\n'),
    )
    await client.close()
  } finally {
    await target.kill()
  }
}

/**
 * Same target preloaded with the agent in await-times mode: the dump without ages, then with them, then
 * one getObjectByHeapObjectId + callFunctionOn on a single promise (the per-task alternative).
 */
async function measureAges(file: string, megabytes: number): Promise<void> {
  const target = await startTarget(file, ['--import', REGISTER_PATH], [String(megabytes), 'sparse'], {FERRYDIAG_AGENT_MODE: 'await-times'})
  try {
    const client = await CDP({host: '127.0.0.1', port: target.inspectPort!})
    const evaluate = async (expression: string): Promise<number> =>
      (await client.send('Runtime.evaluate', {expression, returnByValue: true})).result.value as number
    const run = async (readWaitAges: boolean) => {
      await evaluate('globalThis.maxGapMs = 0')
      const started = performance.now()
      const result = await collectHeapTasks(client, {readWaitAges})
      const totalMs = performance.now() - started
      await new Promise((resolve) => setTimeout(resolve, 50))
      return {result, totalMs, stallMs: await evaluate('globalThis.maxGapMs')}
    }
    // Alternate, three rounds each, and report medians: single runs on a shared 2-core machine vary.
    const without: number[] = []
    const withAges: number[] = []
    const stallWithout: number[] = []
    const stallWith: number[] = []
    const ageMs: number[] = []
    let last: Awaited<ReturnType<typeof run>> | undefined
    for (let round = 0; round < 3; round++) {
      const a = await run(false)
      without.push(a.totalMs)
      stallWithout.push(a.stallMs)
      last = await run(true)
      withAges.push(last.totalMs)
      ageMs.push(last.result.stats.ageMs)
      stallWith.push(last.stallMs)
    }
    const median = (values: number[]): number => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]
    const task = last!.result.tasks.find((t) => t.awaitStartPromiseHeapId !== undefined)
    let lookupMs = Number.NaN
    if (task?.awaitStartPromiseHeapId !== undefined) {
      const started = performance.now()
      const {result} = await client.send('HeapProfiler.getObjectByHeapObjectId', {objectId: String(task.awaitStartPromiseHeapId), objectGroup: 'bench'})
      await client.send('Runtime.callFunctionOn', {
        objectId: result.objectId!,
        functionDeclaration: `function () { return this[Symbol.for('ferrydiag.promiseStartMs')] }`,
        returnByValue: true,
      })
      lookupMs = performance.now() - started
      await client.send('Runtime.releaseObjectGroup', {objectGroup: 'bench'})
    }
    const r = last!.result
    process.stdout.write(
      [
        `await-times ages, sparse heap ${megabytes} MB requested, ${(r.stats.heapBytes / 2 ** 20).toFixed(0)} MB used; median of 3:`,
        `  time spent reading ages (mode check, queryObjects GC, index build, removal) ${median(ageMs).toFixed(0)} ms; ` +
          `end to end without ages ${median(without).toFixed(0)} ms, with ${median(withAges).toFixed(0)} ms (noisy on a shared machine)`,
        `  target longest stall without ${median(stallWithout).toFixed(0)} ms, with ${median(stallWith).toFixed(0)} ms; ` +
          `${r.waitAges.stampedPromises} stamped promises indexed, ${r.waitAges.tasksWithAge}/${r.tasks.length} tasks with an age`,
        `  for comparison, one per-promise lookup (getObjectByHeapObjectId + callFunctionOn): ${lookupMs.toFixed(0)} ms`,
        '',
      ].join('\n'),
    )
    await client.close()
  } finally {
    await target.kill()
  }
}

const dir = await mkdtemp(path.join(tmpdir(), 'ferrydiag-heap-bench-'))
try {
  const file = path.join(dir, 'target.mjs')
  await writeFile(file, TARGET_SOURCE)
  // A dense 100 MB heap (millions of tiny objects) makes V8 itself take ~25-40 s and ~2.3 GB to write the
  // snapshot; it runs only when asked for, so `npm run bench` stays short and fits in memory.
  const runs: Array<['sparse' | 'dense', number]> = [['sparse', 10], ['sparse', 100], ['dense', 10]]
  if (process.env.FERRYDIAG_BENCH_DENSE === '1') runs.push(['dense', 100])
  else console.log('(dense 100 MB heap skipped: set FERRYDIAG_BENCH_DENSE=1 to include it)')
  for (const [shape, megabytes] of runs) await measure(file, megabytes, shape)
  await measureAges(file, 10)
} finally {
  await rm(dir, {recursive: true, force: true})
}
