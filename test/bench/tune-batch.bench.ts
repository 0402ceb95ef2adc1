// Time to a confident batch-size recommendation on the simulated reference pipeline (m = 0.5 ms, o = 10 ms):
// a fresh pipeline per window, tune-batch with --duration 2, 5, 10 and 15 s, printing the estimates and
// the 95% interval widths. "Confident" = m and o each known within ±10% (95%) and a recommendation made.
// Run: node dist/test/bench/tune-batch.bench.js   (about 80 s)
import {spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import Table from 'cli-table3'
import type {TuneBatchResult} from '../../src/model/tune-batch.js'
import {startPipeline} from '../helpers/pipeline-process.js'

const BIN = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
const WINDOWS_S = [2, 5, 10, 15]

interface Setup {
  label: string
  pipelineArgs: string[]
  cliArgs: string[]
}

const SETUPS: Setup[] = [
  {
    // Bursts (1 s at 1000/s, 1 s idle) make the writer's batches vary on their own: passive mode.
    label: 'passive, bursty load (R peak 1000/s, B = 100)',
    pipelineArgs: ['--scenario=slow-target', '--load-shape=bursts', '--rate=500', '--batch-size=100'],
    cliArgs: [],
  },
  {
    // Steady 1000/s at B = 10: saturated, only full batches; --perturb supplies the spread.
    label: 'perturb, steady load (R 1000/s, B = 10)',
    pipelineArgs: ['--scenario=slow-target'],
    cliArgs: ['--perturb'],
  },
]

function relativeHalfWidth(interval: {low: number; high: number}, value: number): number {
  return (interval.high - interval.low) / 2 / Math.abs(value)
}

async function main(): Promise<void> {
  for (const setup of SETUPS) {
    const table = new Table({
      head: ['window', 'samples', 'fit', 'm ms/event (±95%)', 'o ms (±95%)', 'R peak/s', 'verdict', 'B (range)', 'confident', 'wall s'],
      style: {head: [], border: [], compact: true},
    })
    let firstConfident: number | null = null
    for (const seconds of WINDOWS_S) {
      const pipeline = await startPipeline(['--simulate', ...setup.pipelineArgs])
      const started = performance.now()
      const run = spawnSync(process.execPath, [BIN, 'tune-batch', '--inspect', pipeline.fields.inspect, '--duration', `${seconds}s`, '--json', ...setup.cliArgs], {
        encoding: 'utf8',
        timeout: 60_000,
      })
      const wallS = (performance.now() - started) / 1000
      await pipeline.stop()
      let result: TuneBatchResult
      try {
        result = JSON.parse(run.stdout) as TuneBatchResult
      } catch {
        table.push([`${seconds} s`, '', `exit ${run.status}: ${run.stderr.trim().split('\n')[0]}`, '', '', '', '', '', '', wallS.toFixed(1)])
        continue
      }
      const model = result.model
      const mWidth = model ? relativeHalfWidth(model.mIntervalMsPerEvent, model.mMsPerEvent) : Infinity
      const oWidth = model ? relativeHalfWidth(model.oIntervalMs, model.oMs) : Infinity
      const confident = model !== null && mWidth <= 0.1 && oWidth <= 0.1 && result.verdict !== 'insufficient-data'
      if (confident && firstConfident === null) firstConfident = seconds
      const range = result.recommendedRange
      table.push([
        `${seconds} s`,
        String(result.samples.used),
        result.fit.status,
        model ? `${model.mMsPerEvent.toFixed(3)} (±${(mWidth * 100).toFixed(1)}%)` : '-',
        model ? `${model.oMs.toFixed(2)} (±${(oWidth * 100).toFixed(1)}%)` : '-',
        result.rate ? result.rate.peakEventsPerSec.toFixed(0) : '-',
        result.verdict,
        result.recommendedBatchSize === null ? '-' : `${result.recommendedBatchSize} (${range?.low}..${range?.high ?? '∞'})`,
        confident ? 'yes' : 'no',
        wallS.toFixed(1),
      ])
    }
    process.stdout.write(`\n${setup.label}\n${table.toString()}\n`)
    process.stdout.write(`time to a confident recommendation: ${firstConfident === null ? 'not within 15 s' : `${firstConfident} s window`} (target ≤ 15 s)\n`)
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`)
  process.exitCode = 1
})
