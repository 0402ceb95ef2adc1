// tune-batch end to end against MariaDB: the slow-target pipeline writes through its latency proxy and
// lags at the default batch size; restarted with the batch size tune-batch recommends, `ferrydiag lag`
// finds the lag no longer growing and the streamer back-pressured less than 10 % of each second.
// test/run: alone (its figures come from real timers; a file beside it would make them run late)
import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'
import type {LagResult} from '../src/model/lag-result.js'
import type {TuneBatchResult} from '../src/model/tune-batch.js'
import type {BufferRate, StageRate} from '../src/model/lag-report.js'
import {freshDatabase, sharedDatabase, startSourceAndTarget} from './helpers/mariadb.js'
import {startPipeline, waitForSnapshot, type RunningPipeline} from './helpers/pipeline-process.js'
import {runCli, type RunResult as CliRun} from './helpers/run-node.js'

const STREAMER = 'binlog-streamer'
const WRITER = 'binlog-writer'
/** The bar: back-pressured less than 10 % of each second, ms per s. */
const MAX_BACK_PRESSURED_MS_PER_SEC = 100
/**
 * Lag growth (s of lag per s of wall time) still counted as "not growing": lag's own threshold. The
 * transaction lag is a 0–1 s sawtooth (1-s event timestamps), whose slope over a 5-s window of 250-ms
 * samples stays within about ±0.02 s/s; lagging at B=10 it grows by about 0.5 s/s.
 */
const MAX_LAG_GROWTH_SEC_PER_SEC = 0.05

const db = sharedDatabase(() => startSourceAndTarget())
after(() => db.stop())

/** The same account and database, reached through HOST:PORT (the pipeline's latency proxy). */
function throughProxy(dsn: string, proxy: string): string {
  const url = new URL(dsn)
  const at = proxy.lastIndexOf(':')
  url.hostname = proxy.slice(0, at)
  url.port = proxy.slice(at + 1)
  return url.toString()
}

function parseJson<T>(run: CliRun, what: string): T {
  assert.equal(run.code, 0, `${what}: exit ${run.code}; stderr: ${run.stderr}; stdout: ${run.stdout.slice(0, 2000)}`)
  try {
    return JSON.parse(run.stdout) as T
  } catch {
    throw new Error(`${what}: not JSON: ${run.stdout.slice(0, 500)} / stderr: ${run.stderr}`)
  }
}

async function measureLag(pipeline: RunningPipeline, sourceDsn: string): Promise<LagResult> {
  const run = await runCli(['lag', '--inspect', pipeline.fields.inspect, '--source', sourceDsn, '--duration', '5s', '--json'])
  return parseJson<LagResult>(run, 'lag')
}

function streamerOf(result: LagResult): StageRate {
  const stage = result.stages.find((s) => s.name === STREAMER)
  assert.ok(stage, `no ${STREAMER} stage in lag's stages: ${result.stages.map((s) => s.name).join(', ')}`)
  return stage
}

/**
 * The buffer between streamer and writer. The fixture's writer creates one 'binlog-events' channel in
 * its constructor and a fresh one in run(), so two share the name: the live one is the one that flows.
 */
function eventBufferOf(result: LagResult): BufferRate | undefined {
  const named = result.buffers.filter((b) => b.name === 'binlog-events')
  return named.sort((a, b) => b.eventsInPerSec - a.eventsInPerSec)[0]
}

/** One line of the figures behind a lag verdict, for t.diagnostic. */
function describeLag(result: LagResult): string {
  const streamer = streamerOf(result)
  const fixed = (n: number | null | undefined, digits = 2) => (n == null ? 'n/a' : n.toFixed(digits))
  const buffer = eventBufferOf(result)
  const writer = result.stages.find((s) => s.name === WRITER)
  return (
    `verdict=${result.verdict}; streamer back-pressured ${fixed(streamer.backPressuredMsPerSec, 0)} ms/s, ` +
    `${fixed(streamer.itemsPerSec, 0)} items/s; source writes ${fixed(result.source?.bytesPerSec, 0)} B/s of binlog; ` +
    `streamer lag ${fixed(result.lag?.transactionLagMs, 0)} ms growing ${fixed(result.lag?.transactionLagGrowthSecPerSec)} s/s; ` +
    `writer lag ${fixed(result.writerLag?.transactionLagMs, 0)} ms growing ${fixed(result.writerLag?.transactionLagGrowthSecPerSec)} s/s; ` +
    `bytes behind growing ${fixed(result.lag?.bytesBehindGrowthPerSec, 0)} B/s; ` +
    `buffer fill mean ${fixed(buffer?.meanFillItems, 1)}, max seen ${buffer?.maxFillItemsSeen ?? '?'} of ${buffer?.capacity ?? '?'} items, ` +
    `full ${fixed((buffer?.fullShare ?? NaN) * 100, 1)} % of the time; writer busy ${fixed(writer?.busyMsPerSec, 0)} ms/s`
  )
}

describe('tune-batch against MariaDB (slow target behind the latency proxy)', () => {
  it('the recommended batch size stops the lag growing and drops the streamer back-pressure below 10 %', {timeout: 180_000}, async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const startedMs = Date.now()

    // 1. The default batch size lags: the streamer waits on a full buffer most of each second.
    const lagging = await freshDatabase(pair.source, pair.target, 'tb_lagging')
    const slow = await startPipeline(['--scenario=slow-target', `--source=${lagging.source}`, `--target=${lagging.target}`])
    let tuned: TuneBatchResult
    try {
      assert.ok(Number(slow.fields['target-latency-ms']) > 0, `writes go through the latency proxy: ${slow.startLine}`)
      assert.ok(slow.fields.proxy, `the start line names the proxy address: ${slow.startLine}`)
      // Warmed up on a condition, not a time: the writer has written batches and a backlog has built up.
      await waitForSnapshot(slow, (s) => s.samples.totalCount >= 20 && (s.counters.rowsWritten ?? 0) - (s.counters.eventsApplied ?? 0) > 200, {
        what: 'the default batch size writing and falling behind',
      })
      const before = await measureLag(slow, pair.source.adminDsn)
      t.diagnostic(`B=${slow.fields['batch-size']} (default): ${describeLag(before)}`)
      assert.equal(before.verdict, 'falling-behind', before.summary)
      assert.ok(
        streamerOf(before).backPressuredMsPerSec > 500,
        `streamer back-pressured most of each second at the default batch size, got ${streamerOf(before).backPressuredMsPerSec.toFixed(0)} ms/s`,
      )

      // 2. The saturated writer writes only full batches, so probe the target actively for m and o,
      // through the pipeline's proxy so the probe pays the same round trips as the writer.
      const probeDsn = throughProxy(lagging.target, slow.fields.proxy)
      const run = await runCli([
        'tune-batch',
        '--inspect', slow.fields.inspect,
        '--source', pair.source.adminDsn,
        '--duration', '10s',
        '--probe-target', probeDsn,
        '--like', 'tb_lagging.orders',
        '--json',
      ])
      tuned = parseJson<TuneBatchResult>(run, 'tune-batch')
    } finally {
      await slow.stop('SIGTERM')
    }
    const model = tuned.model
    t.diagnostic(
      `tune-batch (${tuned.mode}, ${tuned.samples.used} batches): m=${model?.mMsPerEvent.toFixed(4)} ms/event ` +
        `[${model?.mIntervalMsPerEvent.low.toFixed(4)}, ${model?.mIntervalMsPerEvent.high.toFixed(4)}], ` +
        `o=${model?.oMs.toFixed(2)} ms [${model?.oIntervalMs.low.toFixed(2)}, ${model?.oIntervalMs.high.toFixed(2)}] (${model?.method}, R²=${model?.rSquared.toFixed(3)}); ` +
        `R mean ${tuned.rate?.meanEventsPerSec.toFixed(0)}/s, peak ${tuned.rate?.peakEventsPerSec.toFixed(0)}/s (${tuned.rate?.kind}); ` +
        `B*=${tuned.stabilityBoundary?.toFixed(1)}, recommended B=${tuned.recommendedBatchSize} ` +
        `[${tuned.recommendedRange?.low}, ${tuned.recommendedRange?.high}] at ρ=${tuned.targetUtilisation}; verdict ${tuned.verdict}`,
    )
    if (tuned.warnings.length > 0) t.diagnostic(`tune-batch warnings: ${tuned.warnings.join(' | ')}`)
    assert.equal(tuned.mode, 'probe')
    assert.equal(tuned.rate?.kind, 'binlog', `R counted on the source's binlog, got ${tuned.rate?.kind}`)
    assert.equal(tuned.currentBatchSize, Number(slow.fields['batch-size']))
    assert.equal(tuned.verdict, 'too-small', tuned.summary)
    const recommended = tuned.recommendedBatchSize
    assert.ok(recommended !== null && recommended > tuned.currentBatchSize!, `recommended B=${recommended} above the current ${tuned.currentBatchSize}`)

    // 3. A new pipeline on a fresh database at the recommended batch size keeps up.
    const healthy = await freshDatabase(pair.source, pair.target, 'tb_tuned')
    const fast = await startPipeline(['--scenario=slow-target', `--source=${healthy.source}`, `--target=${healthy.target}`, `--batch-size=${recommended}`])
    let tunedLag: LagResult
    try {
      assert.equal(Number(fast.fields['batch-size']), recommended)
      // Warmed up on a condition: the tuned writer has written batches (its start-up backlog drained).
      await waitForSnapshot(fast, (s) => s.samples.totalCount >= 20, {what: 'the tuned batch size writing'})
      tunedLag = await measureLag(fast, pair.source.adminDsn)
      assert.ok(fast.alive(), 'the tuned pipeline is still running')
    } finally {
      await fast.stop('SIGTERM')
    }
    const streamer = streamerOf(tunedLag)
    t.diagnostic(`B=${recommended} (recommended): ${describeLag(tunedLag)}`)
    t.diagnostic(`total ${((Date.now() - startedMs) / 1000).toFixed(1)} s`)
    assert.equal(tunedLag.verdict, 'healthy', tunedLag.summary)
    for (const figures of [tunedLag.lag, tunedLag.writerLag]) {
      assert.ok(figures, 'lag figures for the streamer and the writer')
      const growth = figures.transactionLagGrowthSecPerSec
      assert.ok(growth !== null && growth <= MAX_LAG_GROWTH_SEC_PER_SEC, `${figures.stageName} lag not growing: ${growth} s/s`)
    }
    // The same in binlog bytes: the distance to the source's end grows by less than 5 % of what it writes.
    const bytesGrowth = tunedLag.lag!.bytesBehindGrowthPerSec
    const sourceBytesPerSec = tunedLag.source?.bytesPerSec
    assert.ok(bytesGrowth !== null && sourceBytesPerSec != null, 'bytes behind measured with --source')
    assert.ok(bytesGrowth <= MAX_LAG_GROWTH_SEC_PER_SEC * sourceBytesPerSec, `bytes behind growing ${bytesGrowth.toFixed(0)} B/s of ${sourceBytesPerSec.toFixed(0)} B/s written`)
    assert.ok(
      streamer.backPressuredMsPerSec < MAX_BACK_PRESSURED_MS_PER_SEC,
      `streamer back-pressured ${streamer.backPressuredMsPerSec.toFixed(1)} ms/s at B=${recommended}, want < ${MAX_BACK_PRESSURED_MS_PER_SEC}`,
    )
  })
})
