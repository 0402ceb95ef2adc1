// Benchmark of `ferrydiag stacks`: attach-to-printed-dump time and the target's own event-loop stall
// with 10k and 100k pending waits (agent route), and --heap on a ~100 MB heap. Standalone:
// `node dist/test/bench/stacks.bench.js` (after tsc). Targets: 10k ≤ 0.3 s / stall ≤ 20 ms,
// 100k ≤ 1 s / stall ≤ 50 ms, --heap at 100 MB ≤ 3 s end to end.

import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import Table from 'cli-table3'

import {attachTarget} from '../../src/attach/index.js'
import {buildCollectedStacksDump, collectStacks} from '../../src/collect/stacks-source.js'
import type {StacksDump} from '../../src/model/dump.js'
import {renderStacksJson} from '../../src/render/stacks-json.js'
import {spawnTarget} from '../helpers/child-process.js'

const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const BIN = path.join(REPO, 'bin', 'run.js')
const RUNTIME_URL = pathToFileURL(path.join(REPO, 'dist', 'src', 'runtime', 'index.js')).href

/**
 * The target: N receivers blocked on empty instrumented Channels (10 await sites × 100 channels), or
 * none with `--plain` (no ferrydiag at all), plus BALLAST_MB of live heap. Reads commands on stdin:
 * `reset` clears its event-loop delay histogram, `report` prints the max delay (ms) since the reset.
 */
const TARGET_SOURCE = `
import {monitorEventLoopDelay} from 'node:perf_hooks'
import {createInterface} from 'node:readline'
const [count, mode, ballastMb] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])]
globalThis.ballast = Array.from({length: Math.round(ballastMb * 1000)}, (_, i) => ({id: i, image: Buffer.alloc(1000, 120).toString('latin1')}))
if (mode === 'runtime') {
  const {Channel} = await import(${JSON.stringify(RUNTIME_URL)})
  const channels = Array.from({length: 100}, (_, i) => new Channel('bench-' + (i % 10), 1))
  const sites = [
    (c) => c.receive(), (c) => c.receive(), (c) => c.receive(), (c) => c.receive(), (c) => c.receive(),
    (c) => c.receive(), (c) => c.receive(), (c) => c.receive(), (c) => c.receive(), (c) => c.receive(),
  ]
  async function wait(i) { await sites[i % 10](channels[i % 100]) }
  for (let i = 0; i < count; i++) wait(i)
}
setInterval(() => {}, 1000)
const histogram = monitorEventLoopDelay({resolution: 1})
histogram.enable()
createInterface({input: process.stdin}).on('line', (line) => {
  if (line === 'reset') { histogram.reset(); console.log('reset-done') }
  if (line === 'report') console.log('max-delay-ms ' + (histogram.max / 1e6).toFixed(1))
})
setTimeout(() => console.log('ready'), 200)
`

interface Target {
  inspect: string
  command(line: string, answer: RegExp): Promise<string>
  stop(): Promise<void>
}

async function startTarget(file: string, count: number, mode: 'runtime' | 'plain', ballastMb: number): Promise<Target> {
  const target = await spawnTarget({
    file,
    execArgv: ['--inspect=127.0.0.1:0'],
    args: [String(count), mode, String(ballastMb)],
    startTimeoutMs: 60_000,
  })
  return {
    inspect: `127.0.0.1:${target.inspectPort}`,
    command: (line, answer) => target.request(line, answer, 60_000),
    stop: () => target.kill(),
  }
}

interface CliRun {
  /** Until the last byte of output arrived (the dump is printed after detach). */
  printedMs: number
  /** Until the process exited. */
  exitMs: number
  code: number | null
  stdout: string
  stderr: string
}

async function runCli(args: string[]): Promise<CliRun> {
  const start = performance.now()
  const child = spawn(process.execPath, [BIN, 'stacks', ...args], {stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  let printedMs = 0
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
    printedMs = performance.now() - start
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
    printedMs = performance.now() - start
  })
  const [code] = (await once(child, 'close')) as [number | null]
  return {printedMs, exitMs: performance.now() - start, code, stdout, stderr}
}

/** attach → collect → analyse → JSON text, in this process: the dump's cost without CLI start-up. */
async function dumpInProcess(inspect: string): Promise<{ms: number; dump: StacksDump}> {
  const start = performance.now()
  const session = await attachTarget({inspect})
  try {
    const collected = await collectStacks(session, {heap: false, inject: false})
    const dump = buildCollectedStacksDump(collected)
    renderStacksJson(dump)
    return {ms: performance.now() - start, dump}
  } finally {
    await session.detach()
  }
}

async function maxStallMs(target: Target, run: () => Promise<unknown>): Promise<number> {
  await target.command('reset', /^reset-done$/)
  await run()
  const line = await target.command('report', /^max-delay-ms /)
  return Number(line.split(' ')[1])
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferrydiag-stacks-bench-'))
  const file = path.join(dir, 'target.mjs')
  writeFileSync(file, TARGET_SOURCE)
  const table = new Table({
    head: ['case', 'tasks', 'in-process attach→dump', 'CLI start→printed', 'CLI start→exit', 'CLI start-up', 'target stall (max)', 'target'],
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  })
  const started = performance.now()
  try {
    // CLI start-up alone: the same command failing at once (nothing listens on port 1).
    const startup = await runCli(['--inspect', '127.0.0.1:1'])

    for (const [count, limitMs, stallLimitMs] of [
      [10_000, 300, 20],
      [100_000, 1000, 50],
    ] as const) {
      const target = await startTarget(file, count, 'runtime', 0)
      try {
        let inProcess = {ms: 0, dump: null as StacksDump | null}
        const libraryStall = await maxStallMs(target, async () => {
          inProcess = await dumpInProcess(target.inspect)
        })
        let cli: CliRun = {printedMs: 0, exitMs: 0, code: 0, stdout: '', stderr: ''}
        const cliStall = await maxStallMs(target, async () => {
          cli = await runCli(['--inspect', target.inspect, '--json'])
        })
        if (cli.code !== 0) throw new Error(`stacks failed: ${cli.stderr}`)
        const taskCount = (JSON.parse(cli.stdout) as StacksDump).taskCount
        table.push([
          `agent, ${count / 1000}k waits`,
          taskCount,
          seconds(inProcess.ms),
          seconds(cli.printedMs),
          seconds(cli.exitMs),
          seconds(startup.printedMs),
          `${Math.max(libraryStall, cliStall)} ms`,
          `≤ ${seconds(limitMs)}, stall ≤ ${stallLimitMs} ms`,
        ])
      } finally {
        await target.stop()
      }
    }

    const heapTarget = await startTarget(file, 0, 'plain', 100)
    try {
      let heap: CliRun = {printedMs: 0, exitMs: 0, code: 0, stdout: '', stderr: ''}
      const stall = await maxStallMs(heapTarget, async () => {
        heap = await runCli(['--inspect', heapTarget.inspect, '--heap', '--yes', '--json'])
      })
      if (heap.code !== 0) throw new Error(`stacks --heap failed: ${heap.stderr}`)
      const usedMb = /holds (\d+) MB/.exec(heap.stderr)?.[1] ?? '?'
      table.push([`--heap, ${usedMb} MB heap`, (JSON.parse(heap.stdout) as StacksDump).taskCount, '-', seconds(heap.printedMs), seconds(heap.exitMs), seconds(startup.printedMs), `${stall} ms`, '≤ 3 s end to end'])
    } finally {
      await heapTarget.stop()
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
  console.log(table.toString())
  console.log(`total ${seconds(performance.now() - started)}`)
}

await main()
