// tune-batch end to end against the simulated reference pipeline with a known cost model (m, o) and rate
// R: --perturb recovers them within 5%, the verdicts at m·R ≈ 0.5 and ≈ 1.3, the degenerate passive case,
// the setting restored (also after Ctrl-C), and bad arguments.
// test/run: alone (its figures come from real timers; a file beside it would make them run late)
import assert from 'node:assert/strict'
import {once} from 'node:events'
import {after, describe, it} from 'node:test'
import type {TuneBatchResult} from '../src/model/tune-batch.js'
import {fitTheilSen} from '../src/analyze/fit-cost-model.js'
import type {AgentSnapshot, BatchSample} from '../src/model/snapshot.js'
import {EXIT} from '../src/errors.js'
import {startPipeline, type RunningPipeline} from './helpers/pipeline-process.js'
import {runCli} from './helpers/run-node.js'


function within(actual: number, expected: number, share: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= share * expected, `${what}: ${actual} not within ${share * 100}% of ${expected}`)
}

/**
 * What the simulator really did during tune-batch's window: its timers run late on a busy machine, so the
 * written batches took longer than m·B + o and the load may have fallen behind its nominal rate. The cost
 * model is refitted (Theil–Sen) from the writer's own recorded batch samples (their realised ms) inside the
 * window, and R is the source's events produced per second between snapshots taken around the run.
 */
function realised(before: AgentSnapshot, after: AgentSnapshot, result: TuneBatchResult): {mMs: number; oMs: number; rPerSec: number; samples: number} {
  const seen = new Map<string, BatchSample>()
  for (const sample of [...after.samples.reservoir, ...after.samples.recent]) seen.set(`${sample.atMs}:${sample.events}:${sample.ms}`, sample)
  const inWindow = [...seen.values()].filter(
    (s) => s.ok && s.stageName === 'binlog-writer' && s.atMs >= result.window.startedAtMs && s.atMs <= result.window.endedAtMs,
  )
  assert.ok(inWindow.length >= 8, `batch samples recorded in the window: ${inWindow.length}`)
  const fit = fitTheilSen(inWindow)
  const produced = after.sources[0].eventsProduced! - before.sources[0].eventsProduced!
  return {mMs: fit.mMsPerEvent, oMs: fit.oMs, rPerSec: (produced * 1000) / (after.takenAtMs - before.takenAtMs), samples: inWindow.length}
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
  it('m·R ≈ 0.5, B = 10: --perturb recovers m, o and R within 5% and says too small (B* = 20, B ≈ 34 nominally)', async (t) => {
    const p = await pipeline(['--scenario=slow-target', '--sim-m-ms=0.5', '--sim-o-ms=10', '--rate=1000', '--batch-size=10'])
    const before = await p.snapshot()
    const run = await runCli(['tune-batch', '--inspect', p.fields.inspect, '--duration', '12s', '--perturb', '--json'])
    const after = await p.snapshot()
    assert.equal(run.code, 0, run.stderr)
    const result = JSON.parse(run.stdout) as TuneBatchResult
    assert.equal(result.mode, 'perturb')
    // Compared with what the simulator did (nominally m = 0.5 ms, o = 10 ms, R = 1000/s).
    const real = realised(before, after, result)
    t.diagnostic(`realised m=${real.mMs.toFixed(3)} ms o=${real.oMs.toFixed(2)} ms R=${real.rPerSec.toFixed(0)}/s from ${real.samples} batches`)
    within(result.model!.mMsPerEvent, real.mMs, 0.05, 'm')
    within(result.model!.oMs, real.oMs, 0.05, 'o')
    within(result.rate!.meanEventsPerSec, real.rPerSec, 0.05, 'R mean')
    assert.equal(result.rate!.kind, 'agent-source')
    assert.equal(result.verdict, 'too-small')
    assert.equal(result.currentBatchSize, 10)
    // B* = o·R/(1 − m·R) and B = o·R/(ρ − m·R) at the realised m and o and the rate the tool designs for.
    const r = result.rate!.designEventsPerSec
    const mR = (real.mMs / 1000) * r
    within(result.stabilityBoundary!, ((real.oMs / 1000) * r) / (1 - mR), 0.15, 'B*')
    within(result.recommendedBatchSize!, ((real.oMs / 1000) * r) / (result.targetUtilisation - mR), 0.15, 'recommended B')
    assert.ok(result.recommendedRange!.low <= result.recommendedBatchSize! && result.recommendedBatchSize! <= (result.recommendedRange!.high ?? Infinity))
    // The setting is back where it was.
    const snapshot = await p.snapshot()
    assert.equal(snapshot.settings.find((s) => s.name === 'BinlogEventBatchSize')!.value, 10)
  })

  it('m·R ≈ 1.3: unsustainable, at most 1/m events/s, 2 writers', async (t) => {
    const p = await pipeline(['--scenario=unsustainable', '--sim-m-ms=1.3', '--sim-o-ms=10', '--rate=1000', '--batch-size=100'])
    const before = await p.snapshot()
    const run = await runCli(['tune-batch', '--inspect', p.fields.inspect, '--duration', '6s', '--perturb', '--json'])
    const after = await p.snapshot()
    assert.equal(run.code, 0, run.stderr)
    const result = JSON.parse(run.stdout) as TuneBatchResult
    // Compared with what the simulator did (nominally m = 1.3 ms, o = 10 ms).
    const real = realised(before, after, result)
    t.diagnostic(`realised m=${real.mMs.toFixed(3)} ms o=${real.oMs.toFixed(2)} ms R=${real.rPerSec.toFixed(0)}/s from ${real.samples} batches`)
    within(result.model!.mMsPerEvent, real.mMs, 0.05, 'm')
    within(result.model!.oMs, real.oMs, 0.1, 'o')
    assert.equal(result.verdict, 'unsustainable')
    assert.equal(result.recommendedBatchSize, null)
    within(result.unsustainable!.maxSustainableEventsPerSec!, 1000 / real.mMs, 0.05, '1/m')
    assert.equal(result.unsustainable!.parallelWritersNeeded, 2)
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
