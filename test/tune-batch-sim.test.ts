// tune-batch end to end against the simulated reference pipeline with a known cost model (m, o) and rate
// R: --perturb recovers them within 5%, the verdicts at m·R ≈ 0.5 and ≈ 1.3, the degenerate passive case,
// the setting restored (also after Ctrl-C), and bad arguments.
import assert from 'node:assert/strict'
import {once} from 'node:events'
import {after, describe, it} from 'node:test'
import type {TuneBatchResult} from '../src/analyze/tune-batch.js'
import {EXIT} from '../src/errors.js'
import {startPipeline, type RunningPipeline} from './helpers/pipeline-process.js'
import {runCli} from './helpers/run-node.js'


function within(actual: number, expected: number, share: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= share * expected, `${what}: ${actual} not within ${share * 100}% of ${expected}`)
}

const running: RunningPipeline[] = []
after(async () => {
  for (const p of running) await p.stop()
})

async function pipeline(args: string[]): Promise<RunningPipeline> {
  const p = await startPipeline(['--simulate', ...args])
  running.push(p)
  return p
}

describe('tune-batch on the simulated pipeline', {concurrency: false}, () => {
  it('m·R ≈ 0.5, B = 10: --perturb recovers m, o and R within 5% and says too small (B* = 20, B ≈ 34)', async () => {
    const p = await pipeline(['--scenario=slow-target', '--sim-m-ms=0.5', '--sim-o-ms=10', '--rate=1000', '--batch-size=10'])
    const run = await runCli(['tune-batch', '--inspect', p.fields.inspect, '--duration', '12s', '--perturb', '--json'])
    assert.equal(run.code, 0, run.stderr)
    const result = JSON.parse(run.stdout) as TuneBatchResult
    assert.equal(result.mode, 'perturb')
    within(result.model!.mMsPerEvent, 0.5, 0.05, 'm')
    within(result.model!.oMs, 10, 0.05, 'o')
    within(result.model!.rMeanEventsPerSec!, 1000, 0.05, 'R mean')
    assert.equal(result.rate!.kind, 'agent-source')
    assert.equal(result.verdict, 'too-small')
    assert.equal(result.currentBatchSize, 10)
    within(result.stabilityBoundary!, 20, 0.15, 'B*')
    within(result.recommendedBatchSize!, 34, 0.15, 'recommended B')
    assert.ok(result.recommendedRange!.low <= result.recommendedBatchSize! && result.recommendedBatchSize! <= (result.recommendedRange!.high ?? Infinity))
    // The setting is back where it was.
    const snapshot = await p.snapshot()
    assert.equal(snapshot.settings.find((s) => s.name === 'BinlogEventBatchSize')!.value, 10)
  })

  it('m·R ≈ 1.3: unsustainable, at most 1/m events/s, 2 writers', async () => {
    const p = await pipeline(['--scenario=unsustainable', '--sim-m-ms=1.3', '--sim-o-ms=10', '--rate=1000', '--batch-size=100'])
    const run = await runCli(['tune-batch', '--inspect', p.fields.inspect, '--duration', '6s', '--perturb', '--json'])
    assert.equal(run.code, 0, run.stderr)
    const result = JSON.parse(run.stdout) as TuneBatchResult
    within(result.model!.mMsPerEvent, 1.3, 0.05, 'm')
    within(result.model!.oMs, 10, 0.1, 'o')
    assert.equal(result.verdict, 'unsustainable')
    assert.equal(result.recommendedBatchSize, null)
    within(result.recommendation!.maxSustainableEventsPerSec!, 1000 / 1.3, 0.05, '1/m')
    assert.equal(result.recommendation!.parallelWritersNeeded, 2)
  })

  it('passively, a saturated writer gives a degenerate spread: says so, suggests --probe-target and --perturb', async () => {
    const p = await pipeline(['--scenario=slow-target'])
    const run = await runCli(['tune-batch', '--inspect', p.fields.inspect, '--duration', '2s'])
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stdout, /Verdict: INSUFFICIENT-DATA — batch sizes barely vary/)
    assert.match(run.stdout, /try: --probe-target DSN --like DB\.TABLE/)
    assert.match(run.stdout, /try: --perturb/)
    assert.match(run.stdout, /source in the agent/)
  })

  it('restores BinlogEventBatchSize after Ctrl-C mid-window and exits 130', async () => {
    const p = await pipeline(['--scenario=slow-target'])
    const run = await runCli(['tune-batch', '--inspect', p.fields.inspect, '--duration', '20s', '--perturb'], {
      onStart: (child) => {
        // Wait until the perturbation has moved the setting, then interrupt.
        const poll = setInterval(async () => {
          const value = (await p.snapshot()).settings.find((s) => s.name === 'BinlogEventBatchSize')!.value
          if (value !== 10) {
            clearInterval(poll)
            child.kill('SIGINT')
          }
        }, 100)
        child.once('exit', () => clearInterval(poll))
      },
    })
    assert.equal(run.code, 130, run.stderr)
    assert.equal((await p.snapshot()).settings.find((s) => s.name === 'BinlogEventBatchSize')!.value, 10)
  })

  it('with no batches written (load off): too few samples, says how many more, exit 40', async () => {
    const p = await pipeline(['--scenario=healthy', '--load=off'])
    const run = await runCli(['tune-batch', '--inspect', p.fields.inspect, '--duration', '1s'])
    assert.equal(run.code, EXIT.tooFewSamples, run.stderr)
    assert.match(run.stdout, /only 0 usable batch sample\(s\); 8 more needed/)
    assert.match(run.stderr, /exit 40/)
  })

  it('rejects a target utilisation outside (0, 1] and an unwritable --plot before attaching', async () => {
    const bad = await runCli(['tune-batch', '--inspect', '127.0.0.1:1', '--target-utilization', '1.5'])
    assert.equal(bad.code, EXIT.badArgument, bad.stderr)
    assert.match(bad.stderr, /--target-utilization.*\(0, 1\], got `1\.5`/)
    const plot = await runCli(['tune-batch', '--inspect', '127.0.0.1:1', '--plot', '/nonexistent-dir/x.svg'])
    assert.equal(plot.code, EXIT.outputUnwritable, plot.stderr)
  })
})
