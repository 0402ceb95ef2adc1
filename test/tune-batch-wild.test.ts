// tune-batch through the attach-time probes on the wild corpus's zongji + mysql2 programs (they never
// import ferrydiag), on real MariaDB behind the latency proxy:
// - cdc-row-by-row (one statement per row change, m·R ≥ 1): `unsustainable`, with m measured by the active
//   probe written the way the pipeline writes (one INSERT per row); the writer's real throughput at the
//   target is below the source rate (so m·R ≥ 1 holds for real); after detach nothing of the probes
//   remains and the pipeline's throughput at the target is within noise of before.

import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'
import type {Connection} from 'mysql2/promise'
import type {TuneBatchResult} from '../src/analyze/tune-batch.js'
import {sharedDatabase, startSourceAndTarget} from './helpers/mariadb.js'
import {assertNoProbesLeft} from './helpers/probes.js'
import {runCli} from './helpers/run-node.js'
import {startWildPipeline, waitUntil} from './helpers/wild-mariadb.js'
import {listWildPrograms} from './helpers/wild.js'

const db = sharedDatabase(() => startSourceAndTarget())
after(() => db.stop())

function wildProgram(file: string) {
  const program = listWildPrograms().find((p) => p.file === file)
  if (!program) throw new Error(`fixtures/wild/${file} not found`)
  return program
}

/**
 * Row changes the target server has applied so far: its INSERT, UPDATE and DELETE statements (server-wide;
 * the row-by-row applier writes one statement per change; MariaDB 10.11 has no InnoDB row counters).
 */
async function targetRowOps(target: Connection): Promise<number> {
  const [rows] = await target.query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_insert', 'Com_update', 'Com_delete')")
  const values = rows as Array<{Value: string}>
  assert.equal(values.length, 3, 'Com_insert, Com_update and Com_delete from SHOW GLOBAL STATUS')
  return values.reduce((sum, r) => sum + Number(r.Value), 0)
}

/** Row changes per second the target applied over `ms` (wall time measured, not assumed). */
async function targetRowsPerSec(target: Connection, ms: number): Promise<number> {
  const before = await targetRowOps(target)
  const started = performance.now()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const after = await targetRowOps(target)
  return ((after - before) * 1000) / (performance.now() - started)
}

async function tuneBatchJson(args: readonly string[]): Promise<TuneBatchResult> {
  const run = await runCli(['tune-batch', ...args, '--json'], {timeoutMs: 120_000})
  assert.ok(run.stdout.trim().startsWith('{'), `tune-batch printed no JSON (exit ${run.code}): ${run.stderr}`)
  return JSON.parse(run.stdout) as TuneBatchResult
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

describe('tune-batch through the probes on wild zongji + mysql2 programs (real MariaDB)', () => {
  it('cdc-row-by-row (m·R ≥ 1): unsustainable; nothing of the probes left; throughput at the target within noise of before', async (t) => {
    const servers = await db.get(t)
    if (!servers) return
    const pipeline = await startWildPipeline(wildProgram('cdc-row-by-row.mjs'), {t, servers})
    const inspect = `127.0.0.1:${pipeline.program.inspectPort}`
    // Saturated: the writer is behind and busy (the program's own stats line says so).
    await waitUntil(async () => /behind (\d{3,}) rows/.test(pipeline.program.stdout()), 60_000, 'a backlog of 100+ rows', pipeline.program)

    // Throughput before attaching: two windows, whose difference is the noise.
    const before = [await targetRowsPerSec(pipeline.target, 4000), await targetRowsPerSec(pipeline.target, 4000)]
    assert.ok(Math.min(...before) > 0, 'the pipeline writes nothing to the target')

    const database = new URL(pipeline.targetDsn).pathname.slice(1)
    const result = await tuneBatchJson([
      '--inspect', inspect,
      '--source', servers.source.replicationDsn,
      '--probe-target', pipeline.programTargetDsn, '--like', `${database}.users`,
      '--duration', '8s',
    ])
    t.diagnostic(`tune-batch: ${result.summary}`)
    assert.equal(result.probes?.state, 'used')
    assert.equal(result.mode, 'probe')
    assert.equal(result.samples.writeShape, 'row-per-statement', 'the probe wrote one INSERT per row, as the pipeline does')
    assert.equal(result.currentBatchSizeFrom, 'observed')
    assert.equal(result.currentBatchSize, 100, 'the pipeline writes 100 changes per transaction')
    assert.ok(result.model && result.rate, `no model or rate: ${result.summary}`)
    const m = result.model.mMsPerEvent
    const r = result.rate.meanEventsPerSec
    t.diagnostic(`m ${m.toFixed(3)} ms/row, o ${result.model.oMs.toFixed(2)} ms, R mean ${r.toFixed(0)}/s, peak ${result.rate.peakEventsPerSec.toFixed(0)}/s, m·R(mean) ${((m * r) / 1000).toFixed(2)}; writer before: ${before.map((x) => x.toFixed(0)).join(', ')} rows/s`)
    // Ground truth for m·R ≥ 1: the writer, saturated, applies fewer rows per second than the source produces.
    assert.ok(mean(before) < r, `the writer's throughput ${mean(before).toFixed(0)}/s is not below the source rate ${r.toFixed(0)}/s`)
    assert.equal(result.verdict, 'unsustainable', result.summary)

    await assertNoProbesLeft(inspect)
    const afterDetach = [await targetRowsPerSec(pipeline.target, 4000), await targetRowsPerSec(pipeline.target, 4000)]
    // Within noise: the two before-windows' relative difference, tripled, at least 15 % (a loaded 2-core
    // machine), at most 30 % (beyond that the comparison says nothing).
    const noise = Math.abs(before[0]! - before[1]!) / mean(before)
    const tolerance = Math.min(0.3, Math.max(0.15, 3 * noise))
    t.diagnostic(`throughput at the target: before ${mean(before).toFixed(1)} rows/s, after ${mean(afterDetach).toFixed(1)} rows/s (${afterDetach.map((x) => x.toFixed(0)).join(', ')}), tolerance ${(tolerance * 100).toFixed(0)} %`)
    assert.ok(
      Math.abs(mean(afterDetach) - mean(before)) <= tolerance * mean(before),
      `throughput after detach ${mean(afterDetach).toFixed(1)} rows/s vs before ${mean(before).toFixed(1)} rows/s`,
    )
  })
})
