// Soak: the reference pipeline in simulator mode at 20 000 events/s with the agent preloaded
// (`node --import <dist/src/agent/register.js>`, checked: the snapshot must say agentLoadedBy 'preload'),
// for FERRYDIAG_SOAK_MINUTES (the issue asks for 30). Every interval it forces a GC in the target over the
// inspector and records: the heap used after it, the process RSS, events applied, the size of the agent's
// snapshot, and the number of entries the agent keeps in its own structures (every Map, Set and array in
// the agent's closure, plus those one level down inside their records: channels' waiters, stages' tokens,
// batch samples, the stack-parse cache, held snapshots), read through the closure scopes of the installed
// agent's functions (read-only, no change to the agent).
//
// Flat, per measure, over the steady samples (those after the warm-up, the first sixth of the run, at
// most 5 min, and never the first sample: see warmupSec): the least-squares trend across the window and the
// difference between the second and the first half's means are both within the tolerance: 5 % of the
// first half's mean, or the measure's floor if larger (1 MB for heap and RSS, 2 kB for the snapshot,
// 100 entries for the agent's structures, whose stack-parse cache refills after it is cleared).
// Opt-in (it takes as long as it says): FERRYDIAG_SOAK_MINUTES=30 npm run bench -- soak
// FERRYDIAG_SOAK_FROM_LOG=<file> prints the table and verdict from the sample lines of a run's output.
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import Table from 'cli-table3'
import {lagOf, startPipeline} from '../helpers/pipeline-process.js'
import {attachTarget, type InspectorSession} from '../../src/attach/index.js'
import {leastSquaresSlope, mean} from '../../src/analyze/stats.js'

const minutes = Number(process.env.FERRYDIAG_SOAK_MINUTES ?? 0)
const RATE = Number(process.env.FERRYDIAG_SOAK_RATE ?? 20_000)
/** Budget for one snapshot read: generous, the soak runs for 30 min on a shared machine. */
const READ_BUDGET_MS = 60_000
const REGISTER = fileURLToPath(new URL('../../src/agent/register.js', import.meta.url))

interface Sample {
  atSec: number
  heapUsedMb: number
  rssMb: number
  eventsApplied: number
  /** Events the simulated source produced and the writer has not applied (bounded by the simulator). */
  backlogEvents: number
  agentSnapshotKb: number
  /** Entries per agent structure (closure variable name -> own entries + entries of its records). */
  agentEntries: Record<string, number>
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN)
  return kb / 1024
}

// Runs in the target with `this` bound to one closure variable of the agent: its entries (Map, Set or
// array) plus the entries of the Maps, Sets and arrays held by its records, one level down.
const COUNT_ENTRIES = `function () {
  const size = (v) => v instanceof Map || v instanceof Set ? v.size : Array.isArray(v) ? v.length : 0
  const isCollection = this instanceof Map || this instanceof Set || Array.isArray(this)
  if (!isCollection) return null
  let total = size(this)
  for (const item of this instanceof Map ? this.values() : this) {
    if (item === null || typeof item !== 'object') continue
    for (const key of Object.keys(item)) total += size(item[key])
    if (item.sendTasks && typeof item.sendTasks.size === 'number') total += item.sendTasks.size
    if (item.receiveTasks && typeof item.receiveTasks.size === 'number') total += item.receiveTasks.size
  }
  return total
}`

/** Entries per collection in the closure of the installed agent's functions (the installAgent scope). */
async function agentEntries(session: InspectorSession): Promise<Record<string, number>> {
  const cdp = session.cdp
  const objectGroup = 'ferrydiag-soak'
  try {
    const fn = (await cdp.send('Runtime.evaluate', {
      expression: `globalThis[Symbol.for('ferrydiag.agent')].registerChannel`,
      objectGroup,
    })) as {result: {objectId?: string}}
    if (!fn.result.objectId) throw new Error('no agent in the target')
    const own = (await cdp.send('Runtime.getProperties', {objectId: fn.result.objectId, ownProperties: true})) as {
      internalProperties?: Array<{name: string; value?: {objectId?: string}}>
    }
    const scopesId = own.internalProperties?.find((p) => p.name === '[[Scopes]]')?.value?.objectId
    if (!scopesId) throw new Error('no [[Scopes]] on the agent function')
    const scopes = (await cdp.send('Runtime.getProperties', {objectId: scopesId, ownProperties: true})) as {
      result: Array<{name: string; value?: {objectId?: string; description?: string}}>
    }
    const closure = scopes.result.find((s) => /^Closure \(installAgent\)/.test(s.value?.description ?? ''))
    if (!closure?.value?.objectId) throw new Error(`no installAgent closure (scopes: ${scopes.result.map((s) => s.value?.description).join(', ')})`)
    const vars = (await cdp.send('Runtime.getProperties', {objectId: closure.value.objectId, ownProperties: true})) as {
      result: Array<{name: string; value?: {type: string; objectId?: string}}>
    }
    const out: Record<string, number> = {}
    for (const v of vars.result) {
      if (v.value?.type !== 'object' || !v.value.objectId) continue
      const counted = (await cdp.send('Runtime.callFunctionOn', {
        objectId: v.value.objectId,
        functionDeclaration: COUNT_ENTRIES,
        returnByValue: true,
      })) as {result: {value?: number | null}}
      if (typeof counted.result.value === 'number') out[v.name] = counted.result.value
    }
    return out
  } finally {
    await cdp.send('Runtime.releaseObjectGroup', {objectGroup}).catch(() => undefined)
  }
}

function sum(record: Record<string, number>): number {
  return Object.values(record).reduce((a, b) => a + b, 0)
}

interface Verdict {
  first: number
  second: number
  /** Change over the steady window by the least-squares trend. */
  trendChange: number
  slopePerMin: number
  tolerance: number
  flat: boolean
}

function verdict(samples: readonly Sample[], pick: (s: Sample) => number, floor: number): Verdict {
  const half = Math.floor(samples.length / 2)
  const first = mean(samples.slice(0, half).map(pick))
  const second = mean(samples.slice(half).map(pick))
  const xs = samples.map((s) => s.atSec / 60)
  const slopePerMin = leastSquaresSlope(xs, samples.map(pick)) ?? 0
  const trendChange = slopePerMin * (xs.at(-1)! - xs[0]!)
  const tolerance = Math.max(0.05 * Math.abs(first), floor)
  return {first, second, trendChange, slopePerMin, tolerance, flat: Math.abs(trendChange) <= tolerance && Math.abs(second - first) <= tolerance}
}

/** One sample: GC in the target, then its heap used, RSS, counters and the agent's structures. */
async function takeSample(session: InspectorSession, pid: number, startedMs: number): Promise<Sample & {loadedBy: string}> {
  await session.cdp.send('HeapProfiler.collectGarbage')
  const usage = (await session.cdp.send('Runtime.getHeapUsage')) as {usedSize: number}
  const snapshot = await session.readSnapshot({budgetMs: READ_BUDGET_MS})
  if (!snapshot) throw new Error('no agent snapshot')
  return {
    atSec: Math.round((Date.now() - startedMs) / 1000),
    heapUsedMb: usage.usedSize / 1024 / 1024,
    rssMb: rssMb(pid),
    eventsApplied: snapshot.counters.eventsApplied ?? 0,
    backlogEvents: lagOf(snapshot).backlogEvents ?? NaN,
    agentSnapshotKb: Buffer.byteLength(JSON.stringify(snapshot)) / 1024,
    agentEntries: await agentEntries(session),
    loadedBy: snapshot.process.agentLoadedBy,
  }
}

/** The table and the verdict over the samples after the warm-up (also for a log's sample lines). */
function summarize(samples: readonly Sample[], run: {minutes: number; intervalSec: number; warmupSec: number; missed: number; loadedBy: string}): void {
  const {minutes, intervalSec, warmupSec, missed, loadedBy} = run
  const steady = samples.filter((s, i) => i > 0 && s.atSec >= warmupSec)
  if (steady.length < 4) throw new Error(`only ${steady.length} steady samples; run longer`)
  const table = new Table({style: {head: [], border: []}, head: ['measure', 'first half', 'second half', 'trend/min', 'trend over window', 'tolerance', 'verdict']})
  const rows: Array<[string, (s: Sample) => number, number]> = [
    ['pipeline heap used after GC, MB', (s) => s.heapUsedMb, 1],
    ['pipeline RSS, MB', (s) => s.rssMb, 1],
    ['agent snapshot, kB', (s) => s.agentSnapshotKb, 2],
    ['agent structures, entries', (s) => sum(s.agentEntries), 100],
  ]
  let allFlat = true
  for (const [label, pick, floor] of rows) {
    const v = verdict(steady, pick, floor)
    allFlat &&= v.flat
    table.push([label, v.first.toFixed(1), v.second.toFixed(1), v.slopePerMin.toFixed(3), v.trendChange.toFixed(1), v.tolerance.toFixed(1), v.flat ? 'flat' : 'GROWS'])
  }
  const last = steady.at(-1)!
  const first = steady[0]!
  const steadyRate = (last.eventsApplied - first.eventsApplied) / (last.atSec - first.atSec)
  console.log(table.toString())
  console.log(
    `soak: ${minutes} min at ${RATE} events/s offered, agent loaded by ${loadedBy}; ${samples.length} samples every ${intervalSec} s (${missed} missed) ` +
      `(${samples.length - steady.length} in the first ${warmupSec} s left out as warm-up); ${steadyRate.toFixed(0)} events/s applied over the steady window ` +
      `(t=${first.atSec}..${last.atSec} s), ${samples.at(-1)!.eventsApplied} in all; backlog at the end ${last.backlogEvents} events`,
  )
  console.log(
    'soak: rule: flat when the least-squares trend over the steady window and the second-minus-first-half difference are both ' +
      "within 5 % of the first half's mean (or the floor: 1 MB, 2 kB, 100 entries)",
  )
  console.log(`soak: verdict: ${allFlat ? 'flat' : 'NOT flat'}`)
}

/** Samples read back from the lines a run printed (`soak: t=...`), for a run cut short. */
function samplesFromLog(file: string): Sample[] {
  const line = /^soak: t=(\d+)s heap ([\d.]+) MB rss ([\d.]+) MB applied (\d+) backlog (\S+) agent snapshot ([\d.]+) kB agent entries (\d+)/
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => line.exec(l))
    .filter((m) => m !== null)
    .map((m) => ({
      atSec: Number(m[1]),
      heapUsedMb: Number(m[2]),
      rssMb: Number(m[3]),
      eventsApplied: Number(m[4]),
      backlogEvents: Number(m[5]),
      agentSnapshotKb: Number(m[6]),
      agentEntries: {all: Number(m[7])},
    }))
}

async function main(): Promise<void> {
  const fromLog = process.env.FERRYDIAG_SOAK_FROM_LOG
  if (fromLog) {
    // The summary of a run that was cut short, from its printed samples (same rule, same warm-up).
    const samples = samplesFromLog(fromLog)
    const spanMin = (samples.at(-1)?.atSec ?? 0) / 60
    const warmupSec = Number(process.env.FERRYDIAG_SOAK_WARMUP_SEC ?? 300)
    summarize(samples, {minutes: Math.round(spanMin * 10) / 10, intervalSec: NaN, warmupSec, missed: NaN, loadedBy: 'preload (checked at every sample)'})
    return
  }
  if (!(minutes > 0)) {
    console.log('soak: skipped (opt-in). Run: FERRYDIAG_SOAK_MINUTES=30 npm run bench -- soak')
    return
  }
  const intervalSec = Number(process.env.FERRYDIAG_SOAK_INTERVAL_SEC ?? (minutes >= 10 ? 30 : 10))
  // Warm-up: the tables fill to the load generator's live-row cap and, when the writer is slower than the
  // offered rate (a busy machine), the simulated binlog's unread events reach its bound and the source
  // throttles. The first sixth of the run (5 of 30 min) is left out of the verdict, and at least one sample.
  const warmupSec = Number(process.env.FERRYDIAG_SOAK_WARMUP_SEC ?? Math.min(300, (minutes * 60) / 6))
  const pipeline = await startPipeline(['--scenario=healthy', '--simulate', `--rate=${RATE}`], {nodeArgs: ['--import', REGISTER]})
  const session = await attachTarget({inspect: pipeline.fields.inspect, lease: false})
  const samples: Sample[] = []
  const startedMs = Date.now()
  let loadedBy = '?'
  let missed = 0
  try {
    while (Date.now() - startedMs < minutes * 60_000) {
      await new Promise((resolve) => setTimeout(resolve, intervalSec * 1000))
      let sample: Sample & {loadedBy: string}
      try {
        sample = await takeSample(session, pipeline.pid, startedMs)
      } catch (error) {
        // A busy machine can starve the target past a read's budget: note it, keep the run going.
        missed++
        console.log(`soak: t=${Math.round((Date.now() - startedMs) / 1000)}s sample missed: ${(error as Error).message.split('\n')[0]}`)
        if (!pipeline.alive()) throw new Error('the pipeline exited', {cause: error})
        continue
      }
      loadedBy = sample.loadedBy
      if (loadedBy !== 'preload') throw new Error(`agent loaded by '${loadedBy}', expected 'preload'`)
      samples.push(sample)
      console.log(
        `soak: t=${sample.atSec}s heap ${sample.heapUsedMb.toFixed(1)} MB rss ${sample.rssMb.toFixed(0)} MB ` +
          `applied ${sample.eventsApplied} backlog ${sample.backlogEvents} agent snapshot ${sample.agentSnapshotKb.toFixed(0)} kB ` +
          `agent entries ${sum(sample.agentEntries)} (${Object.entries(sample.agentEntries).map(([k, v]) => `${k} ${v}`).join(', ')})`,
      )
    }
  } finally {
    await session.detach().catch(() => undefined)
    await pipeline.stop('SIGTERM')
  }
  summarize(samples, {minutes, intervalSec, warmupSec, missed, loadedBy})
}

await main()
