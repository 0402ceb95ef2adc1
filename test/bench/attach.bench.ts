// Benchmark of attach + read snapshot + detach via --inspect, via --pid (SIGUSR1 opens the inspector,
// detach closes it) and via --pid with injection, with the target's event-loop stall while it happens
// (measured inside the target with perf_hooks.monitorEventLoopDelay). Figures are printed, never asserted.

import {existsSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import Table from 'cli-table3'

import {attachTarget} from '../../src/attach/index.js'
import {killAllTargets, spawnTarget, type TargetProcess} from '../helpers/child-process.js'

const distDir = path.dirname(path.dirname(path.dirname(fileURLToPath(import.meta.url))))
const registerPath = path.join(distDir, 'src/agent/register.js')
const RUNS = 8

// Measures its own event-loop delay; 'reset' starts a window, 'report' prints it as one JSON line.
// 200 ms ticks of busy-ish work are absent on purpose: an idle target shows the stall ferrydiag adds.
const TARGET_SOURCE = `
import {monitorEventLoopDelay} from 'node:perf_hooks'
const histogram = monitorEventLoopDelay({resolution: 1})
histogram.enable()
setInterval(() => {}, 1000)
process.stdin.setEncoding('utf8')
let pending = ''
process.stdin.on('data', (text) => {
  pending += text
  const lines = pending.split('\\n')
  pending = lines.pop()
  for (const line of lines) {
    if (line === 'reset') { histogram.reset(); console.log('reset-done') }
    if (line === 'report') {
      console.log('report ' + JSON.stringify({maxMs: histogram.max / 1e6, p99Ms: histogram.percentile(99) / 1e6}))
    }
  }
})
console.log('ready')
`

interface RunSample {
  attachMs: number
  snapshotMs: number
  detachMs: number
  totalMs: number
  stallMaxMs: number
  inspectorClosed: boolean | null
}

function commandTarget(target: TargetProcess, command: 'reset' | 'report'): Promise<string> {
  return target.request(command, command === 'reset' ? /^reset-done$/ : /^report /, 10_000)
}

async function measureOnce(target: TargetProcess, route: 'inspect' | 'pid', inject: boolean): Promise<RunSample> {
  await commandTarget(target, 'reset')
  const started = performance.now()
  const session = await attachTarget(route === 'inspect' ? {inspect: `127.0.0.1:${target.inspectPort}`} : {pid: target.pid})
  const attachedAt = performance.now()
  if (inject) await session.ensureAgent({inject: true})
  const snapshot = await session.readSnapshot()
  if (snapshot === null) throw new Error('no agent in the benchmark target')
  const snapshotAt = performance.now()
  const detached = await session.detach()
  const endedAt = performance.now()
  // Let a stall that ends just after detach land in the histogram.
  await new Promise((resolve) => setTimeout(resolve, 30))
  const report = JSON.parse((await commandTarget(target, 'report')).slice('report '.length)) as {maxMs: number}
  return {
    attachMs: attachedAt - started,
    snapshotMs: snapshotAt - attachedAt,
    detachMs: endedAt - snapshotAt,
    totalMs: endedAt - started,
    stallMaxMs: report.maxMs,
    inspectorClosed: detached.inspectorClosed,
  }
}

async function baselineStall(target: TargetProcess, windowMs: number): Promise<number> {
  await commandTarget(target, 'reset')
  await new Promise((resolve) => setTimeout(resolve, windowMs))
  return (JSON.parse((await commandTarget(target, 'report')).slice('report '.length)) as {maxMs: number}).maxMs
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}
const max = (values: number[]): number => Math.max(...values)
const ms = (value: number): string => value.toFixed(1)

async function main(): Promise<void> {
  if (!existsSync(registerPath)) {
    console.log(`skipped: ${registerPath} is not built (the agent is needed to read a snapshot)`)
    return
  }
  const table = new Table({
    style: {head: [], border: []},
    head: ['route', 'runs', 'attach ms (med/max)', 'snapshot ms (med/max)', 'detach ms (med/max)', 'total ms (med/max)', 'target stall max ms (med/max)', 'inspector closed'],
  })
  const addRow = (label: string, samples: RunSample[]): void => {
    const pair = (pick: (s: RunSample) => number): string => `${ms(median(samples.map(pick)))} / ${ms(max(samples.map(pick)))}`
    const closed = samples.map((s) => s.inspectorClosed)
    table.push([
      label,
      samples.length,
      pair((s) => s.attachMs),
      pair((s) => s.snapshotMs),
      pair((s) => s.detachMs),
      pair((s) => s.totalMs),
      pair((s) => s.stallMaxMs),
      closed.every((c) => c === null) ? 'left open (not ours)' : `${closed.filter((c) => c === true).length}/${closed.length}`,
    ])
  }

  try {
    const open = await spawnTarget({script: TARGET_SOURCE, execArgv: ['--import', registerPath, '--inspect=127.0.0.1:0']})
    const idleStalls: number[] = []
    for (let i = 0; i < 3; i++) idleStalls.push(await baselineStall(open, 100))
    const inspectSamples: RunSample[] = []
    for (let i = 0; i < RUNS; i++) inspectSamples.push(await measureOnce(open, 'inspect', false))
    addRow('--inspect (preloaded agent)', inspectSamples)
    await open.kill()

    const closed = await spawnTarget({script: TARGET_SOURCE, execArgv: ['--import', registerPath, '--inspect-port=0']})
    const pidSamples: RunSample[] = []
    for (let i = 0; i < RUNS; i++) pidSamples.push(await measureOnce(closed, 'pid', false))
    addRow('--pid, SIGUSR1 (preloaded agent)', pidSamples)
    await closed.kill()

    const injectSamples: RunSample[] = []
    for (let i = 0; i < Math.ceil(RUNS / 2); i++) {
      // A fresh target each run so every run really injects.
      const bare = await spawnTarget({script: TARGET_SOURCE, execArgv: ['--inspect-port=0']})
      injectSamples.push(await measureOnce(bare, 'pid', true))
      await bare.kill()
    }
    addRow('--pid, SIGUSR1 + inject', injectSamples)

    console.log(table.toString())
    console.log(
      `Idle target, no attach, 100 ms windows: event-loop stall max ${idleStalls.map(ms).join(' / ')} ms (the noise floor on this machine).`,
    )
    console.log('attach = resolve target (+ SIGUSR1 and wait for the socket) + /json/list + WebSocket; detach includes closing an inspector ferrydiag opened and seeing its port closed.')
  } finally {
    await killAllTargets()
  }
}

await main()
