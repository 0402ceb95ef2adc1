// Calibration of the heap route's cost estimate (estimateHeapRouteCost): raw HeapProfiler snapshots of
// synthetic heaps of different shapes (many small row objects, arrays of small integers, few large
// strings, Buffers outside the JS heap), with the cheap readings taken before (used heap, large-object
// space) next to what the snapshot cost: the target's longest event-loop stall (measured inside it), its
// peak RSS growth (VmHWM after resetting it) and the snapshot's size. Prints the measured/estimated
// ratios. FERRYDIAG_BENCH_HEAP_SHAPES=rows:10,rows:40,... picks the runs.
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import CDP from 'chrome-remote-interface'

import {availableParallelism, loadavg} from 'node:os'

import {estimateHeapRouteCost, hostLoadStretch, readHeapUsage} from '../../src/attach/heap-snapshot.js'
import {spawnTarget} from '../helpers/child-process.js'

const TARGET_SOURCE = `
const [shape, mbText] = process.argv.slice(2)
const mb = Number(mbText)
const keep = []
if (shape === 'rows') for (let i = 0; i < mb * 13_000; i++) keep.push({id: i, name: 'row-' + i, payload: {n: i}})
if (shape === 'arrays') for (let i = 0; i < mb * 1000; i++) keep.push({id: i, payload: new Array(125).fill(i)})
if (shape === 'strings') for (let i = 0; i < mb; i++) keep.push(('x' + i).padEnd(1 << 20, 'y'))
if (shape === 'buffers') for (let i = 0; i < mb; i++) keep.push(Buffer.alloc(1 << 20, i))
globalThis.keep = keep
globalThis.maxGapMs = 0
let last = performance.now()
setInterval(() => { const now = performance.now(); globalThis.maxGapMs = Math.max(globalThis.maxGapMs, now - last); last = now }, 5)
setTimeout(() => console.log('ready'), 300)
`

const MB = 2 ** 20

async function procKb(pid: number, field: string): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN)
}

async function measure(file: string, shape: string, mb: number): Promise<void> {
  const target = await spawnTarget({file, execArgv: ['--inspect=127.0.0.1:0', '--max-old-space-size=8192'], args: [shape, String(mb)], startTimeoutMs: 300_000})
  try {
    const client = await CDP({host: '127.0.0.1', port: target.inspectPort!})
    const evaluate = async (expression: string): Promise<number> => (await client.send('Runtime.evaluate', {expression, returnByValue: true})).result.value as number
    await client.send('HeapProfiler.collectGarbage')
    const usage = await readHeapUsage(client)
    // As the CLI does: the high ends stretched for this host's load now (hostLoadStretch).
    const loadPerCore = loadavg()[0]! / availableParallelism()
    const estimate = estimateHeapRouteCost(usage.usedBytes, usage.largeObjectBytes, hostLoadStretch(loadPerCore))
    await writeFile(`/proc/${target.pid}/clear_refs`, '5') // resets VmHWM to the current RSS
    const rssBeforeKb = await procKb(target.pid, 'VmRSS')
    await evaluate('globalThis.maxGapMs = 0')
    let chars = 0
    const onChunk = (params: {chunk: string}): void => {
      chars += params.chunk.length
    }
    const emitter = client as unknown as NodeJS.EventEmitter
    emitter.on('HeapProfiler.addHeapSnapshotChunk', onChunk)
    const started = performance.now()
    await client.send('HeapProfiler.takeHeapSnapshot', {reportProgress: false, captureNumericValue: false})
    const wallMs = performance.now() - started
    emitter.removeListener('HeapProfiler.addHeapSnapshotChunk', onChunk)
    const stallMs = await evaluate('globalThis.maxGapMs')
    const peakKb = await procKb(target.pid, 'VmHWM')
    const afterKb = await procKb(target.pid, 'VmRSS')
    const growthMb = (peakKb - rssBeforeKb) / 1024
    const where = (value: number, low: number, high: number): string => (value < low ? 'BELOW band' : value > high ? 'ABOVE band' : 'in band')
    process.stdout.write(
      `${shape.padEnd(8)} used ${(usage.usedBytes / MB).toFixed(0).padStart(5)} MB (large objects ${(usage.largeObjectBytes / MB).toFixed(0).padStart(4)} MB): ` +
        `stall ${(stallMs / 1000).toFixed(2)} s (est ${(estimate.stallMs / 1000).toFixed(2)} s, band ${(estimate.stallMsLow / 1000).toFixed(2)}-${(estimate.stallMsHigh / 1000).toFixed(2)}, ratio ${(stallMs / estimate.stallMs).toFixed(2)}), ` +
        `wall ${(wallMs / 1000).toFixed(2)} s; peak RSS +${growthMb.toFixed(0)} MB (est +${(estimate.extraMemoryBytes / MB).toFixed(0)}, band ${(estimate.extraMemoryBytesLow / MB).toFixed(0)}-${(estimate.extraMemoryBytesHigh / MB).toFixed(0)}, ratio ${(growthMb / (estimate.extraMemoryBytes / MB)).toFixed(2)}), ` +
        `kept +${((afterKb - rssBeforeKb) / 1024).toFixed(0)} MB; snapshot ${(chars / MB).toFixed(0)} MB; ` +
        `load ${loadPerCore.toFixed(1)}/core (stall ×${estimate.loadStretch.toFixed(1)}): stall ${where(stallMs, estimate.stallMsLow, estimate.stallMsHigh)}, memory ${where(growthMb * MB, estimate.extraMemoryBytesLow, estimate.extraMemoryBytesHigh)}\n`,
    )
    await client.close()
  } finally {
    await target.kill()
  }
}

const dir = await mkdtemp(path.join(tmpdir(), 'ferrydiag-heap-estimate-'))
try {
  const file = path.join(dir, 'target.cjs')
  await writeFile(file, TARGET_SOURCE)
  const runs = (process.env.FERRYDIAG_BENCH_HEAP_SHAPES ?? 'rows:10,rows:40,arrays:40,arrays:120,strings:100,strings:300,buffers:300')
    .split(',')
    .map((item) => item.split(':') as [string, string])
  for (const [shape, mb] of runs) await measure(file, shape, Number(mb))
} finally {
  await rm(dir, {recursive: true, force: true})
}
