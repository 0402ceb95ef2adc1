// `ferrydiag lag` figures: time to a verdict with the default 5 s window, and the target's overhead while
// sampled (simulated pipeline at 40 000 events/s: events applied per second and the target's own CPU
// time, alternating phases: nothing attached, `lag --watch` attached, and the sampler at the old 250 ms
// pace vs the 1000 ms --watch pace on one session, so the pace's cost is compared on the same build).
// Run: node dist/test/bench/lag.bench.js.
import {spawn, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import Table from 'cli-table3'

import {attachTarget} from '../../src/attach/index.js'
import {sampleWindow} from '../../src/collect/sample-window.js'
import {WATCH_INTERVAL_MS} from '../../src/collect/watch-window.js'
import {pause, startPipeline, type RunningPipeline} from '../helpers/pipeline-process.js'

const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
const PHASE_MS = 4000
const PHASE_ROUNDS = 3
/** Agent snapshot paces compared: the old fixed pace (ms) and the --watch pace (WATCH_INTERVAL_MS). */
const OLD_INTERVAL_MS = 250

function startLag(args: string[]): ChildProcess {
  return spawn(process.execPath, [RUN_JS, 'lag', ...args], {stdio: ['ignore', 'pipe', 'pipe']})
}

async function timeVerdict(inspect: string): Promise<{ms: number; verdict: string}> {
  const started = performance.now()
  const child = startLag(['--inspect', inspect, '--json'])
  let stdout = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  await once(child, 'exit')
  const ms = performance.now() - started
  return {ms, verdict: (JSON.parse(stdout) as {verdict: string}).verdict}
}

/** utime + stime of a process in ms (/proc/PID/stat fields 14 and 15, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

interface Phase {
  eventsPerSec: number
  /** The target's CPU ms per second of wall time. */
  cpuMsPerSec: number
}

/** Starts `lag --watch` and resolves once it drew its first frame (attached and sampling, startup done). */
async function startWatcher(inspect: string): Promise<ChildProcess> {
  const watcher = startLag(['--inspect', inspect, '--watch', '--duration', '5s'])
  watcher.stderr!.resume()
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('lag --watch drew no frame within 30 s')), 30_000)
    watcher.stdout!.once('data', () => {
      clearTimeout(timer)
      watcher.stdout!.resume()
      resolve()
    })
  })
  return watcher
}

/** One phase with the sampler reading snapshots every intervalMs over one session opened beforehand. */
async function measureSampledPhase(p: RunningPipeline, intervalMs: number): Promise<Phase> {
  const session = await attachTarget({inspect: p.fields.inspect})
  const controller = new AbortController()
  try {
    const sampling = sampleWindow({session, durationMs: 3_600_000, intervalMs, retainMs: 1000, signal: controller.signal})
    await pause(2000) // past the attach and the first snapshots before the phase starts
    const phase = await measurePhase(p, PHASE_MS)
    controller.abort()
    await sampling
    return phase
  } finally {
    await session.detach()
  }
}

/** eventsApplied per second over one phase (the agent's counter at both ends) and the target's CPU use. */
async function measurePhase(p: RunningPipeline, ms: number): Promise<Phase> {
  const a = await p.snapshot()
  const cpuA = cpuMs(p.pid)
  await pause(ms)
  const b = await p.snapshot()
  const cpuB = cpuMs(p.pid)
  const wallMs = b.takenAtMs - a.takenAtMs
  return {eventsPerSec: ((b.counters.eventsApplied! - a.counters.eventsApplied!) * 1000) / wallMs, cpuMsPerSec: ((cpuB - cpuA) * 1000) / wallMs}
}

async function main(): Promise<void> {
  // 1. Time to a verdict, default window, on a normal healthy pipeline.
  const healthy = await startPipeline(['--scenario=healthy', '--simulate'])
  await pause(1000)
  const verdicts = [await timeVerdict(healthy.fields.inspect), await timeVerdict(healthy.fields.inspect)]
  await healthy.stop()

  // 2. Overhead: no simulated write cost and a high rate the pipeline still sustains (measured: 40 000
  //    events/s keeps up here; far above that the simulated log grows without bound and GC dominates).
  //    Events/s shows whether sampling makes it fall behind; CPU ms/s shows what sampling costs it.
  const flatOut = await startPipeline(['--scenario=healthy', '--simulate', '--rate=40000', '--sim-m-ms=0', '--sim-o-ms=0', '--batch-size=500'])
  await pause(1500)
  const without: Phase[] = []
  const withWatch: Phase[] = []
  const atOldPace: Phase[] = []
  const atWatchPace: Phase[] = []
  for (let i = 0; i < PHASE_ROUNDS; i++) {
    without.push(await measurePhase(flatOut, PHASE_MS))
    const watcher = await startWatcher(flatOut.fields.inspect)
    withWatch.push(await measurePhase(flatOut, PHASE_MS))
    watcher.kill('SIGINT')
    await once(watcher, 'exit')
    // Alternate which pace goes first, so drift in the machine's load does not favour one.
    if (i % 2 === 0) {
      atOldPace.push(await measureSampledPhase(flatOut, OLD_INTERVAL_MS))
      atWatchPace.push(await measureSampledPhase(flatOut, WATCH_INTERVAL_MS))
    } else {
      atWatchPace.push(await measureSampledPhase(flatOut, WATCH_INTERVAL_MS))
      atOldPace.push(await measureSampledPhase(flatOut, OLD_INTERVAL_MS))
    }
  }
  await flatOut.stop()

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
  const timing = new Table({head: ['measure', 'value'], style: {head: [], border: []}})
  for (const [i, v] of verdicts.entries()) timing.push([`time to verdict, run ${i + 1} (default 5 s window)`, `${(v.ms / 1000).toFixed(2)} s (${v.verdict})`])
  process.stdout.write(`${timing.toString()}\n`)

  const overhead = new Table({
    // CPU per event as well: on a loaded machine the pipeline falls behind in one phase and catches up
    // in the next, which moves CPU ms/s with the events handled, not with the sampling.
    head: ['phase', 'round', 'events/s', 'vs none', 'target CPU ms/s', 'vs none', 'CPU µs/event', 'vs none'],
    style: {head: [], border: []},
  })
  const phases: Array<[string, Phase[]]> = [
    ['nothing attached', without],
    ['lag --watch (CLI)', withWatch],
    [`sampler every ${OLD_INTERVAL_MS} ms (old pace)`, atOldPace],
    [`sampler every ${WATCH_INTERVAL_MS} ms (--watch pace)`, atWatchPace],
  ]
  const meanOf = (list: Phase[], key: keyof Phase) => mean(list.map((p) => p[key]))
  const perEventUs = (p: Phase) => (p.cpuMsPerSec * 1000) / p.eventsPerSec
  const meanPerEventUs = (list: Phase[]) => (meanOf(list, 'cpuMsPerSec') * 1000) / meanOf(list, 'eventsPerSec')
  for (const [name, list] of phases) {
    for (const [i, phase] of list.entries()) {
      const base = without[i]!
      overhead.push([name, String(i + 1), Math.round(phase.eventsPerSec), (phase.eventsPerSec / base.eventsPerSec).toFixed(3),
        Math.round(phase.cpuMsPerSec), (phase.cpuMsPerSec / base.cpuMsPerSec).toFixed(3), perEventUs(phase).toFixed(2), (perEventUs(phase) / perEventUs(base)).toFixed(3)])
    }
    overhead.push([name, 'mean', Math.round(meanOf(list, 'eventsPerSec')), (meanOf(list, 'eventsPerSec') / meanOf(without, 'eventsPerSec')).toFixed(3),
      Math.round(meanOf(list, 'cpuMsPerSec')), (meanOf(list, 'cpuMsPerSec') / meanOf(without, 'cpuMsPerSec')).toFixed(3),
      meanPerEventUs(list).toFixed(2), (meanPerEventUs(list) / meanPerEventUs(without)).toFixed(3)])
  }
  process.stdout.write(`${overhead.toString()}\n`)
  const percentMore = (list: Phase[], key: keyof Phase) => ((meanOf(list, key) / meanOf(without, key) - 1) * 100).toFixed(1)
  const perEventMore = (list: Phase[]) => ((meanPerEventUs(list) / meanPerEventUs(without) - 1) * 100).toFixed(1)
  process.stdout.write(
    `lag --watch: throughput ${percentMore(withWatch, 'eventsPerSec')} % (target within -3 %), target CPU +${percentMore(withWatch, 'cpuMsPerSec')} %` +
      ` (per event ${perEventMore(withWatch)} %). Sampler alone, target CPU: ${OLD_INTERVAL_MS} ms +${percentMore(atOldPace, 'cpuMsPerSec')} % (per event ${perEventMore(atOldPace)} %),` +
      ` ${WATCH_INTERVAL_MS} ms +${percentMore(atWatchPace, 'cpuMsPerSec')} % (per event ${perEventMore(atWatchPace)} %). ` +
      `Phases of ${PHASE_MS} ms on a shared 2-core machine: a few % is within noise.\n`,
  )
}

await main()
