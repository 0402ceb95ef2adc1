// tune-batch through the attach-time probes on the wild corpus's zongji + mysql2 programs (they never
// import ferrydiag), on real MariaDB behind the latency proxy:
// - cdc-row-by-row (one statement per row change, m·R ≥ 1): `unsustainable`, with m measured by the active
//   probe written the way the pipeline writes (one INSERT per row); the writer's real throughput at the
//   target is below the source rate (so m·R ≥ 1 holds for real); after detach nothing of the probes
//   remains and the pipeline's throughput at the target is within noise of before.
// - cdc-batch-upsert-slow-target (batches of 8 through a 3 ms proxy): `lag` says falling-behind; tune-batch
//   (--probe-target, multi-row like the pipeline) recommends a batch size; the program restarted with it
//   (`--batch-size B`, as its author made it configurable) keeps up: `lag` says healthy.

import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'
import type {Connection} from 'mysql2/promise'
import type {TuneBatchResult} from '../src/model/tune-batch.js'
import type {LagResult} from '../src/model/lag-result.js'
import {sharedDatabase, startSourceAndTarget} from './helpers/mariadb.js'
import {assertNoProbesLeft} from './helpers/probes.js'
import {runCli} from './helpers/run-node.js'
import {startWildPipeline, waitUntil, type WildPipeline} from './helpers/wild-mariadb.js'
import {listWildPrograms} from './helpers/wild.js'

const db = sharedDatabase(() => startSourceAndTarget())
after(() => db.stop())

function wildProgram(file: string) {
  const program = listWildPrograms().find((p) => p.file === file)
  if (!program) throw new Error(`fixtures/wild/${file} not found`)
  return program
}

/**
 * Rows each database on the target has changed so far (inserted, updated, deleted), from MariaDB's
 * information_schema.TABLE_STATISTICS (on once `userstat` is set; MariaDB 10.11 has no InnoDB row counters).
 */
async function rowsChanged(target: Connection, databases: readonly string[]): Promise<number[]> {
  const [rows] = await target.query(
    'SELECT TABLE_SCHEMA AS db, SUM(ROWS_CHANGED) AS n FROM information_schema.TABLE_STATISTICS WHERE TABLE_SCHEMA IN (?) GROUP BY TABLE_SCHEMA',
    [databases],
  )
  const byDb = new Map((rows as Array<{db: string; n: string}>).map((r) => [r.db, Number(r.n)]))
  return databases.map((d) => byDb.get(d) ?? 0)
}

/**
 * Rows/s each database on the target changed in five consecutive 2-s windows, read at the same instants
 * (wall time measured, not assumed): one series per database.
 */
async function throughputSeries(target: Connection, databases: readonly string[]): Promise<number[][]> {
  const series: number[][] = databases.map(() => [])
  let last = await rowsChanged(target, databases)
  let lastAt = performance.now()
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const now = await rowsChanged(target, databases)
    const at = performance.now()
    databases.forEach((_, j) => series[j]!.push(((now[j]! - last[j]!) * 1000) / (at - lastAt)))
    last = now
    lastAt = at
  }
  return series
}

/** tune-batch on `pipeline` over 8 s, R from the source's binlog, m and o from --probe-target through the proxy. */
async function tuneBatchWithProbeTarget(pipeline: WildPipeline, sourceDsn: string, like: string, extra: string[] = []): Promise<TuneBatchResult> {
  const database = new URL(pipeline.targetDsn).pathname.slice(1)
  const args = ['--inspect', `127.0.0.1:${pipeline.program.inspectPort}`, '--source', sourceDsn, '--duration', '8s']
  args.push('--probe-target', pipeline.programTargetDsn, '--like', `${database}.${like}`, ...extra)
  const run = await runCli(['tune-batch', ...args, '--json'], {timeoutMs: 120_000})
  assert.ok(run.stdout.trim().startsWith('{'), `tune-batch printed no JSON (exit ${run.code}): ${run.stderr}`)
  return JSON.parse(run.stdout) as TuneBatchResult
}

async function lagJson(args: readonly string[]): Promise<LagResult> {
  const run = await runCli(['lag', ...args, '--json'], {timeoutMs: 60_000})
  assert.ok(run.stdout.trim().startsWith('{'), `lag printed no JSON (exit ${run.code}): ${run.stderr}`)
  return JSON.parse(run.stdout) as LagResult
}

const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

describe('tune-batch through the probes on wild zongji + mysql2 programs (real MariaDB)', () => {
  it('cdc-row-by-row (m·R ≥ 1): unsustainable; nothing of the probes left; throughput at the target within noise of before', async (t) => {
    const servers = await db.get(t)
    if (!servers) return
    const program = wildProgram('cdc-row-by-row.mjs')
    const pipeline = await startWildPipeline(program, {t, servers})
    // A control: the same program on its own databases, never attached. Machine load moves both alike,
    // so the attached pipeline's throughput is compared as a share of the control's in the same windows.
    const control = await startWildPipeline(program, {t, servers})
    const inspect = `127.0.0.1:${pipeline.program.inspectPort}`
    await pipeline.target.query('SET GLOBAL userstat = 1')
    // Saturated: the writer is behind and busy (the program's own stats line says so).
    for (const p of [pipeline, control]) {
      await waitUntil(async () => /behind (\d{3,}) rows/.test(p.program.stdout()), 60_000, 'a backlog of 100+ rows', p.program)
    }
    const databases = [pipeline, control].map((p) => new URL(p.targetDsn).pathname.slice(1))
    const ratios = ([attached, reference]: number[][]) => attached!.map((a, i) => a / reference![i]!)

    // Throughput before attaching: five windows, whose spread is the noise; the load's own rate alongside.
    const loadStart = {written: pipeline.load!.written, at: performance.now()}
    const [before, controlBefore] = await throughputSeries(pipeline.target, databases)
    const loadPerSec = ((pipeline.load!.written - loadStart.written) * 1000) / (performance.now() - loadStart.at)
    assert.ok(median(before!) > 0 && median(controlBefore!) > 0, 'a pipeline writes nothing to the target')
    const ratioBefore = ratios([before!, controlBefore!])

    const result = await tuneBatchWithProbeTarget(pipeline, servers.source.replicationDsn, 'users')
    t.diagnostic(`tune-batch: ${result.summary}`)
    assert.equal(result.probes?.state, 'used')
    assert.equal(result.mode, 'probe')
    assert.equal(result.samples.writeShape, 'row-per-statement', 'the probe wrote one INSERT per row, as the pipeline does')
    assert.equal(result.currentBatchSizeFrom, 'observed')
    assert.equal(result.currentBatchSize, 100, 'the pipeline writes 100 changes per transaction')
    assert.ok(result.model && result.rate, `no model or rate: ${result.summary}`)
    const m = result.model.mMsPerEvent
    const r = result.rate.meanEventsPerSec
    t.diagnostic(`m ${m.toFixed(3)} ms/row, o ${result.model.oMs.toFixed(2)} ms, R mean ${r.toFixed(0)}/s, peak ${result.rate.peakEventsPerSec.toFixed(0)}/s, m·R(mean) ${((m * r) / 1000).toFixed(2)}; its own load ${loadPerSec.toFixed(0)} rows/s; writer before: median ${median(before!).toFixed(0)} rows/s`)
    // Ground truth for m·R ≥ 1: the writer, saturated, applies fewer rows per second than its load writes
    // to the source in the same windows (tune-batch's R counts the whole binlog: the control's load too).
    assert.ok(median(before!) < loadPerSec, `the writer's throughput ${median(before!).toFixed(0)}/s is not below its load's ${loadPerSec.toFixed(0)}/s`)
    assert.equal(result.verdict, 'unsustainable', result.summary)

    await assertNoProbesLeft(inspect)
    const [afterDetach, controlAfter] = await throughputSeries(pipeline.target, databases)
    const ratioAfter = ratios([afterDetach!, controlAfter!])
    // Within noise: the median share of the control's throughput after detach differs from before by no
    // more than the before-windows' own spread of that share ((max − min) / median), and at least 15 %.
    const noise = (Math.max(...ratioBefore) - Math.min(...ratioBefore)) / median(ratioBefore)
    const tolerance = Math.max(0.15, noise)
    const show = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ')
    t.diagnostic(
      `rows/s at the target, attached pipeline / control: before ${show(before!)} / ${show(controlBefore!)}, after detach ${show(afterDetach!)} / ${show(controlAfter!)}; ` +
        `share of the control: before ${median(ratioBefore).toFixed(3)}, after ${median(ratioAfter).toFixed(3)}, tolerance ${(tolerance * 100).toFixed(0)} %`,
    )
    assert.ok(
      Math.abs(median(ratioAfter) - median(ratioBefore)) <= tolerance * median(ratioBefore),
      `throughput after detach ${median(ratioAfter).toFixed(3)} of the control's vs ${median(ratioBefore).toFixed(3)} before (tolerance ${(tolerance * 100).toFixed(0)} %)`,
    )
  })

  it('cdc-batch-upsert-slow-target: falling-behind; the batch size tune-batch recommends, applied with a restart, keeps up (lag: healthy)', async (t) => {
    const servers = await db.get(t)
    if (!servers) return
    const program = wildProgram('cdc-batch-upsert-slow-target.mjs')
    const slow = await startWildPipeline(program, {t, servers})
    const inspect = `127.0.0.1:${slow.program.inspectPort}`
    const lagBefore = await lagJson(['--inspect', inspect, '--source', servers.source.replicationDsn, '--duration', '4s'])
    assert.equal(lagBefore.verdict, 'falling-behind', lagBefore.summary)

    // Headroom for a shared machine whose round trips were seen to double from one minute to the next
    // (load average 30 on 2 cores): at the default 0.8 the recommended 56 still lagged after the restart.
    const result = await tuneBatchWithProbeTarget(slow, servers.source.replicationDsn, 'orders', ['--target-utilization', '0.5'])
    t.diagnostic(`tune-batch: ${result.summary}; knob ${result.knob ? `${result.knob.path} = ${result.knob.value}` : "none found"}; m ${result.model?.mMsPerEvent.toFixed(4)} ms/row, o ${result.model?.oMs.toFixed(2)} ms, R peak ${result.rate?.peakEventsPerSec.toFixed(0)}/s`)
    assert.equal(result.probes?.state, 'used')
    assert.equal(result.samples.writeShape, 'multi-row')
    assert.equal(result.currentBatchSize, 8)
    assert.equal(result.verdict, 'too-small', result.summary)
    const recommended = result.recommendedBatchSize
    assert.ok(recommended !== null && recommended > 8, `recommended ${recommended}`)
    await assertNoProbesLeft(inspect)
    await slow.stop()

    // The same program restarted with the recommended size, against the same source load and proxy.
    const fixed = await startWildPipeline(program, {t, servers, extraArgs: ['--batch-size', String(recommended)]})
    assert.match(fixed.program.stdout(), new RegExp(`batches of up to ${recommended}\\b`))
    // A 10-s window: at the larger size a batch fills for about a second, and the binlog distance grows
    // while it does; a short window sees that saw-tooth, not the trend.
    await waitUntil(async () => /^stats: /m.test(fixed.program.stdout()), 30_000, 'a first stats line', fixed.program)
    const lagAfter = await lagJson(['--inspect', `127.0.0.1:${fixed.program.inspectPort}`, '--source', servers.source.replicationDsn, '--duration', '10s'])
    t.diagnostic(`lag after the restart with --batch-size ${recommended}: ${lagAfter.verdict}: ${lagAfter.summary}`)
    assert.equal(lagAfter.verdict, 'healthy', lagAfter.summary)
  })
})
