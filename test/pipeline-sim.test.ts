// The reference pipeline in simulator mode, run as a child process and observed through the ferrydiag
// agent over its inspector: healthy catches up, both init-race shapes apply nothing while lag grows with
// wall-clock time, slow-target lags only below B* = o·R/(1 − m·R), unsustainable lags at every B.
// test/run: alone (its figures come from real timers; a file beside it would make them run late)
import {describe, it} from 'node:test'
import assert from 'node:assert/strict'
import {fitTheilSen} from '../src/analyze/fit-cost-model.js'
import type {AgentSnapshot, BatchSample} from '../src/model/snapshot.js'
import {lagOf, pause, runPipelineToExit, stageNamed, startPipeline, waitForSnapshot, type RunningPipeline} from './helpers/pipeline-process.js'

/** Lag growth over a window, from two snapshots: ms of lag gained per ms of wall clock. */
function lagGrowthPerSec(first: AgentSnapshot, second: AgentSnapshot): number {
  return (lagOf(second).lagMs - lagOf(first).lagMs) / (second.takenAtMs - first.takenAtMs)
}

/**
 * Waits until `warmedUp` holds (a condition, not a time: a busy machine may start slowly), then measures
 * over a window; the growth is computed from the snapshots' own timestamps, so a late timer only
 * lengthens the window.
 */
async function measureLagGrowth(
  pipeline: RunningPipeline,
  warmedUp: (s: AgentSnapshot) => boolean,
  what: string,
  windowMs: number,
): Promise<{first: AgentSnapshot; second: AgentSnapshot; growth: number}> {
  const first = await waitForSnapshot(pipeline, warmedUp, {what})
  await pause(windowMs)
  const second = await pipeline.snapshot()
  return {first, second, growth: lagGrowthPerSec(first, second)}
}

/** The writer's successful batches recorded between the two snapshots of a measurement (realised ms). */
function batchSamplesIn({first, second}: {first: AgentSnapshot; second: AgentSnapshot}): BatchSample[] {
  const seen = new Map<string, BatchSample>()
  for (const sample of [...second.samples.reservoir, ...second.samples.recent]) seen.set(`${sample.atMs}:${sample.events}:${sample.ms}`, sample)
  return [...seen.values()].filter((s) => s.ok && s.stageName === 'binlog-writer' && s.atMs >= first.takenAtMs && s.atMs <= second.takenAtMs)
}

/** The writer has written at least `batches` batches and the source has produced events. */
function writing(batches: number): (s: AgentSnapshot) => boolean {
  return (s) => s.samples.totalCount >= batches && (s.sources[0]?.eventsProduced ?? 0) > 0
}

async function withPipeline<R>(args: string[], body: (p: RunningPipeline) => Promise<R>): Promise<R> {
  const pipeline = await startPipeline(args)
  try {
    return await body(pipeline)
  } finally {
    if (pipeline.alive()) await pipeline.stop('SIGKILL')
  }
}

describe('pipeline --simulate', {concurrency: true}, () => {
  it('healthy: applies every produced event, lag returns to 0, target equals source', async () => {
    // The load stops after a row count, not a time: on a busy machine a fixed time produces fewer rows.
    // Enough rows (~30 s at the nominal 1000/s) that a slow attach still finds the load running.
    const ROWS = 30_000
    const pipeline = await startPipeline(['--scenario=healthy', '--simulate', `--stop-load-after-rows=${ROWS}`, '--summary'])
    try {
      assert.equal(pipeline.fields.scenario, 'healthy')
      assert.equal(pipeline.fields.mode, 'simulate')
      const during = await waitForSnapshot(pipeline, (s) => (s.counters.eventsApplied ?? 0) > 500 && (s.counters.rowsWritten ?? 0) < ROWS, {
        what: 'events applied while the load runs',
      })
      assert.ok(lagOf(during).lagMs < 1000, `lag while loading ${lagOf(during).lagMs} ms`)
      // After the load stops, wait until the writer has applied everything the source produced.
      const settled = await waitForSnapshot(
        pipeline,
        (s) => s.counters.rowsWritten === ROWS && s.sources[0].eventsProduced === ROWS && lagOf(s).caughtUp && s.counters.eventsApplied === ROWS,
        {what: 'caught up after the load stopped'},
      )
      const produced = settled.sources[0].eventsProduced!
      assert.equal(produced, ROWS)
      assert.equal(settled.counters.eventsApplied, produced)
      assert.equal(lagOf(settled).lagMs, 0)
      const exit = await pipeline.stop('SIGINT')
      assert.equal(exit.code, 0, exit.stderr)
      const summary = JSON.parse(exit.stdout.trim().split('\n').at(-1)!).summary
      assert.equal(summary.eventsApplied, produced)
      assert.deepEqual(summary.target, summary.source)
      assert.ok(summary.source.users.rows > 0 && summary.source.orders.rows > 0)
    } finally {
      if (pipeline.alive()) await pipeline.stop('SIGKILL')
    }
  })

  it('healthy with failing writes: retried batches still leave the target equal to the source', async () => {
    const ROWS = 2000
    const pipeline = await startPipeline(['--scenario=healthy', '--simulate', '--sim-fail-rate=0.2', `--stop-load-after-rows=${ROWS}`, '--summary'])
    try {
      const settled = await waitForSnapshot(
        pipeline,
        (s) => s.counters.rowsWritten === ROWS && s.sources[0].eventsProduced === ROWS && s.counters.eventsApplied === ROWS && lagOf(s).caughtUp,
        {what: 'caught up despite failures'},
      )
      assert.ok((settled.counters.batchWriteFailures ?? 0) > 0, 'some writes failed')
      assert.equal(settled.samples.totalFailed, settled.counters.batchWriteFailures, 'failed batches recorded as samples')
      assert.equal(settled.counters.eventsApplied, settled.sources[0].eventsProduced)
      const exit = await pipeline.stop('SIGTERM')
      assert.equal(exit.code, 0, exit.stderr)
      const summary = JSON.parse(exit.stdout.trim().split('\n').at(-1)!).summary
      assert.deepEqual(summary.target, summary.source)
    } finally {
      if (pipeline.alive()) await pipeline.stop('SIGKILL')
    }
  })

  for (const shape of ['placeholder', 'never-created'] as const) {
    it(`init-race (${shape}): nothing applied, lag grows with wall clock, streamer stuck in binlog-streamer`, () =>
      withPipeline(['--scenario=init-race', `--race-shape=${shape}`, '--simulate'], async (pipeline) => {
        assert.equal(pipeline.fields.shape, shape)
        const expectedKind = shape === 'placeholder' ? 'channel-send' : 'slot-wait'
        const stuckIn = (s: AgentSnapshot) => s.tasks.filter((t) => t.kind === expectedKind && t.channelName === 'binlog-events')
        // Warmed up once the source has produced and the streamer is parked on the channel.
        const warmedUp = (s: AgentSnapshot) => (s.sources[0]?.eventsProduced ?? 0) > 0 && stuckIn(s).length > 0
        const {first, second, growth} = await measureLagGrowth(pipeline, warmedUp, 'the streamer stuck on binlog-events', 3000)
        assert.ok(pipeline.alive(), 'process stays alive')
        assert.equal(second.counters.eventsApplied ?? 0, 0, 'no event reaches the target')
        assert.ok((second.sources[0].eventsProduced ?? 0) > (first.sources[0].eventsProduced ?? 0), 'source keeps producing')
        assert.ok(growth > 0.8 && growth < 1.2, `lag grows ~1 s per s, got ${growth.toFixed(2)}`)
        const stuck = stuckIn(second)
        assert.equal(stuck.length, 1, `one ${expectedKind} task on binlog-events: ${JSON.stringify(second.tasks)}`)
        assert.ok(stuck[0].stack.some((f) => /binlog-streamer\.(ts|js)$/.test(f.url)), `await site in binlog-streamer: ${JSON.stringify(stuck[0].stack)}`)
        // Stuck before the first snapshot and through the whole measured window (real timestamps).
        const windowMs = second.takenAtMs - first.takenAtMs
        assert.ok(stuck[0].waitMs >= windowMs, `stuck through the ${windowMs} ms window, waitMs ${stuck[0].waitMs}`)
        // A blocked send shows as back-pressure; how a slot wait is accounted is the runtime's choice.
        if (shape === 'placeholder') assert.equal(stageNamed(second, 'binlog-streamer').state, 'back-pressured')
        const named = second.channels.filter((c) => c.name === 'binlog-events')
        if (shape === 'placeholder') {
          // The orphan placeholder is full and never read; the writer's own buffer is empty with a reader waiting.
          const orphan = named.find((c) => c.kind === 'channel' && c.itemsIn > 0)
          assert.ok(orphan && orphan.itemsOut === 0 && orphan.length === orphan.capacity && orphan.blockedSenders === 1, JSON.stringify(named))
          assert.ok(named.some((c) => c.kind === 'channel' && c.id !== orphan.id && c.blockedReceivers === 1 && c.itemsIn === 0))
        } else {
          assert.ok(named.some((c) => c.kind === 'slot' && c.filled === false), JSON.stringify(named))
        }
      }),
    )
  }

  it('slow-target: lags at the default batch size, keeps up above B* = o·R/(1 − m·R)', async (t) => {
    const probe = await startPipeline(['--scenario=slow-target', '--simulate'])
    const m = Number(probe.fields['sim-m-ms']) / 1000
    const o = Number(probe.fields['sim-o-ms']) / 1000
    const rate = Number(probe.fields.rate)
    const nominalBStar = (o * rate) / (1 - m * rate)
    assert.ok(Number(probe.fields['batch-size']) < nominalBStar, `default batch ${probe.fields['batch-size']} is below B* ${nominalBStar}`)
    // A second pipeline at 3·B* (nominal) writes batches of other sizes, so that m and o can be refitted from
    // what the simulator really did: on a busy machine its timers run late and every batch takes longer.
    const wide = await startPipeline(['--scenario=slow-target', '--simulate', `--batch-size=${Math.ceil(3 * nominalBStar)}`])
    let bStar: number
    try {
      const [slow, other] = await Promise.all([
        measureLagGrowth(probe, writing(20), 'default B writing', 5000),
        measureLagGrowth(wide, writing(20), 'wide B writing', 5000),
      ])
      assert.ok(slow.growth > 0.15, `default B=${probe.fields['batch-size']}: lag grows, got ${slow.growth.toFixed(2)} s/s`)
      assert.ok(slow.second.sources[0].eventsProduced! - slow.second.counters.eventsApplied! > slow.first.sources[0].eventsProduced! - slow.first.counters.eventsApplied!, 'backlog grows')
      const slowStreamer = stageNamed(slow.second, 'binlog-streamer')
      const windowMs = slow.second.takenAtMs - slow.first.takenAtMs
      const backPressuredShare = (slowStreamer.backPressuredMs - stageNamed(slow.first, 'binlog-streamer').backPressuredMs) / windowMs
      assert.ok(backPressuredShare > 0.5, `streamer mostly back-pressured at the default B, got ${backPressuredShare.toFixed(2)}`)
      // The realised cost model and source rate over the windows.
      const points = [...batchSamplesIn(slow), ...batchSamplesIn(other)]
      const fit = fitTheilSen(points)
      const mReal = fit.mMsPerEvent / 1000
      const oReal = fit.oMs / 1000
      const rReal = ((slow.second.sources[0].eventsProduced! - slow.first.sources[0].eventsProduced!) * 1000) / windowMs
      t.diagnostic(`realised m=${fit.mMsPerEvent.toFixed(3)} ms o=${fit.oMs.toFixed(2)} ms R=${rReal.toFixed(0)}/s from ${points.length} batches (nominal ${m * 1000}, ${o * 1000}, ${rate})`)
      assert.ok(oReal > 0 && mReal * rReal < 1, `the simulator's realised m·R = ${(mReal * rReal).toFixed(2)} must stay below 1 for any B to keep up`)
      bStar = (oReal * rReal) / (1 - mReal * rReal)
      assert.ok(Number(probe.fields['batch-size']) < bStar, `default batch ${probe.fields['batch-size']} is below the realised B* ${bStar.toFixed(1)}`)
    } finally {
      await Promise.all([probe.stop('SIGKILL'), wide.stop('SIGKILL')])
    }
    const big = Math.ceil(3 * bStar)
    const large = await startPipeline(['--scenario=slow-target', '--simulate', `--batch-size=${big}`])
    try {
      const fast = await measureLagGrowth(large, writing(20), `B=${big} writing`, 5000)
      assert.ok(lagOf(fast.second).lagMs < 1000, `B=${big} (realised B*=${bStar.toFixed(1)}): lag stays small, got ${lagOf(fast.second).lagMs} ms`)
      assert.ok(fast.growth < 0.05, `B=${big}: lag does not grow, got ${fast.growth.toFixed(3)} s/s`)
    } finally {
      await large.stop('SIGKILL')
    }
  })

  it('unsustainable: lag grows at every batch size tried', async () => {
    const sizes = [20, 100, 400]
    const pipelines = await Promise.all(sizes.map((b) => startPipeline(['--scenario=unsustainable', '--simulate', `--batch-size=${b}`])))
    try {
      const m = Number(pipelines[0].fields['sim-m-ms']) / 1000
      assert.ok(m * Number(pipelines[0].fields.rate) >= 1.3, 'm·R ≥ 1.3 by default')
      const results = await Promise.all(pipelines.map((p, i) => measureLagGrowth(p, writing(5), `B=${sizes[i]} writing`, 4000)))
      // What the simulator really did in each window (its timers run late on a busy machine), for the message.
      const realised = results.map(({first, second}) => {
        const sec = (second.takenAtMs - first.takenAtMs) / 1000
        const produced = (second.sources[0].eventsProduced! - first.sources[0].eventsProduced!) / sec
        const applied = ((second.counters.eventsApplied ?? 0) - (first.counters.eventsApplied ?? 0)) / sec
        return `produced ${produced.toFixed(0)}/s, applied ${applied.toFixed(0)}/s over ${sec.toFixed(1)} s`
      })
      results.forEach(({growth}, i) => assert.ok(growth > 0.1, `B=${sizes[i]}: lag grows, got ${growth.toFixed(2)} s/s (${realised[i]})`))
    } finally {
      await Promise.all(pipelines.map((p) => p.stop('SIGKILL')))
    }
  })

  it('rejects bad input with one line naming the problem and a non-zero exit', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--scenario=healthy', '--simulate', '--batch-size=0'], /--batch-size.*integer >= 1.*`0`/],
      [['--scenario=healthy', '--simulate', '--batch-size=abc'], /--batch-size.*`abc`/],
      [['--scenario=healthy', '--simulate', '--batch-size=-5'], /--batch-size/],
      [['--scenario=bogus', '--simulate'], /Unknown scenario `bogus`.*healthy\|init-race/],
      [['--scenario=healthy'], /Missing --source or --target/],
      [['--scenario=init-race', '--simulate', '--race-shape=odd'], /Unknown race shape/],
    ]
    const results = await Promise.all(cases.map(([args]) => runPipelineToExit(args)))
    results.forEach((result, i) => {
      assert.notEqual(result.code, 0, `exit code for ${cases[i][0].join(' ')}`)
      const lines = result.stderr.trim().split('\n')
      assert.equal(lines.length, 1, `one line: ${result.stderr}`)
      assert.match(lines[0], cases[i][1])
      assert.match(lines[0], /Fix: /)
      assert.equal(result.stdout, '')
    })
  })

  it('stops cleanly on SIGTERM and by itself after --duration', async () => {
    const byDuration = await runPipelineToExit(['--scenario=healthy', '--simulate', '--duration=1.5'])
    assert.equal(byDuration.code, 0, byDuration.stderr)
    assert.match(byDuration.stdout, /^ferrydiag-pipeline pid=\d+ inspect=none scenario=healthy mode=simulate /)
    const pipeline = await startPipeline(['--scenario=init-race', '--simulate'])
    const exit = await pipeline.stop('SIGTERM')
    assert.equal(exit.code, 0, exit.stderr)
  })
})
