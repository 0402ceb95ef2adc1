// `ferrydiag lag` figures: time to a verdict with the default 5 s window, and the target's overhead while
// sampled (simulated pipeline at 40 000 events/s: events applied per second and the target's own CPU
// time, with and without `lag --watch` attached, alternating phases). Run: node dist/test/bench/lag.bench.js.
import {spawn, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import Table from 'cli-table3'

import {pause, startPipeline, type RunningPipeline} from '../helpers/pipeline-process.js'

const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
const PHASE_MS = 4000
const PHASE_PAIRS = 2

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
  for (let i = 0; i < PHASE_PAIRS; i++) {
    without.push(await measurePhase(flatOut, PHASE_MS))
    const watcher = startLag(['--inspect', flatOut.fields.inspect, '--watch', '--duration', '5s'])
    watcher.stdout!.resume()
    watcher.stderr!.resume()
    await pause(1000) // attached and sampling before the phase starts
    withWatch.push(await measurePhase(flatOut, PHASE_MS))
    watcher.kill('SIGINT')
    await once(watcher, 'exit')
  }
  await flatOut.stop()

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
  const timing = new Table({head: ['measure', 'value'], style: {head: [], border: []}})
  for (const [i, v] of verdicts.entries()) timing.push([`time to verdict, run ${i + 1} (default 5 s window)`, `${(v.ms / 1000).toFixed(2)} s (${v.verdict})`])
  process.stdout.write(`${timing.toString()}\n`)

  const overhead = new Table({
    head: ['phase pair', 'events/s without', 'events/s with lag --watch', 'ratio', 'target CPU ms/s without', 'with', 'ratio'],
    style: {head: [], border: []},
  })
  for (let i = 0; i < PHASE_PAIRS; i++) {
    const a = without[i]!
    const b = withWatch[i]!
    overhead.push([String(i + 1), Math.round(a.eventsPerSec), Math.round(b.eventsPerSec), (b.eventsPerSec / a.eventsPerSec).toFixed(3),
      Math.round(a.cpuMsPerSec), Math.round(b.cpuMsPerSec), (b.cpuMsPerSec / a.cpuMsPerSec).toFixed(3)])
  }
  const events = mean(withWatch.map((p) => p.eventsPerSec)) / mean(without.map((p) => p.eventsPerSec))
  const cpu = mean(withWatch.map((p) => p.cpuMsPerSec)) / mean(without.map((p) => p.cpuMsPerSec))
  overhead.push(['mean', Math.round(mean(without.map((p) => p.eventsPerSec))), Math.round(mean(withWatch.map((p) => p.eventsPerSec))), events.toFixed(3),
    Math.round(mean(without.map((p) => p.cpuMsPerSec))), Math.round(mean(withWatch.map((p) => p.cpuMsPerSec))), cpu.toFixed(3)])
  process.stdout.write(`${overhead.toString()}\n`)
  process.stdout.write(
    `throughput while sampled: ${((1 - events) * 100).toFixed(1)} % lower (target <= 3 %); target CPU ${((cpu - 1) * 100).toFixed(1)} % higher. ` +
      `Phases of ${PHASE_MS} ms on a shared 2-core machine: a few % is within noise.\n`,
  )
}

await main()
