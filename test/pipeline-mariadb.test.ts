// The reference pipeline against real MariaDB source and target servers (started by the test harness):
// healthy copies every row, init-race copies nothing, slow-target lags through a latency proxy at the
// default batch size and keeps up above the B* measured from its own batch samples; bad input fails early.
// test/run: alone (the slow-target test asserts backlog growth at the load generator's real rate)
import {fitOrdinaryLeastSquares} from '../src/analyze/fit-cost-model.js'
import {after, describe, it} from 'node:test'
import assert from 'node:assert/strict'
import type {AgentSnapshot, BatchSample} from '../src/model/snapshot.js'
import {TABLES, checksumSql} from '../fixtures/pipeline/schema.js'
import {createUser, openConnection, sharedDatabase, startMariaDb, startSourceAndTarget, databaseOrSkip, freshDatabase, withDatabase} from './helpers/mariadb.js'
import {lagOf, pause, runPipelineToExit, startPipeline, waitForSnapshot, type RunningPipeline} from './helpers/pipeline-process.js'

const db = sharedDatabase(() => startSourceAndTarget())
after(() => db.stop())

/** Row count and checksum per table, through the same SQL on either server. */
async function tableChecksums(dsn: string): Promise<Record<string, string>> {
  const conn = await openConnection(dsn)
  try {
    const out: Record<string, string> = {}
    for (const table of TABLES) {
      const [rows] = (await conn.query(checksumSql(table))) as unknown as [Array<{row_count: number; crc_sum: string | number}>]
      out[table.name] = `${rows[0].row_count} rows, crc ${rows[0].crc_sum}`
    }
    return out
  } finally {
    await conn.end()
  }
}

async function tableNames(dsn: string): Promise<string[]> {
  const conn = await openConnection(dsn)
  try {
    const [rows] = (await conn.query('SHOW TABLES')) as unknown as [Array<Record<string, string>>]
    return rows.map((r) => Object.values(r)[0])
  } finally {
    await conn.end()
  }
}

/** Rows written by the load generator minus rows applied by the writer (both counted in the pipeline). */
function backlog(s: AgentSnapshot): number {
  return (s.counters.rowsWritten ?? 0) - (s.counters.eventsApplied ?? 0)
}

function allSamples(s: AgentSnapshot): BatchSample[] {
  const seen = new Map<string, BatchSample>()
  for (const sample of [...s.samples.reservoir, ...s.samples.recent]) seen.set(`${sample.atMs}:${sample.events}:${sample.ms}`, sample)
  return [...seen.values()]
}

/** The writer has written a few batches. */
const writing = (s: AgentSnapshot): boolean => s.samples.totalCount >= 20

/** Waits for `warmedUp` (a condition, not a time), then measures over a window of real timestamps. */
async function window(p: RunningPipeline, warmedUp: (s: AgentSnapshot) => boolean, windowMs: number): Promise<{first: AgentSnapshot; second: AgentSnapshot}> {
  const first = await waitForSnapshot(p, warmedUp, {what: 'the pipeline warmed up'})
  await pause(windowMs)
  return {first, second: await p.snapshot()}
}

describe('pipeline against MariaDB', () => {
  it('healthy: every source row reaches the target, lag returns to 0', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const dsn = await freshDatabase(pair.source, pair.target, 'p_healthy')
    const ROWS = 1200 // a row count, not a time: a busy machine writes fewer rows in a fixed time
    const pipeline = await startPipeline(['--scenario=healthy', `--source=${dsn.source}`, `--target=${dsn.target}`, `--stop-load-after-rows=${ROWS}`])
    try {
      assert.equal(pipeline.fields.mode, 'mariadb')
      assert.match(pipeline.fields['server-id'], /^\d+$/)
      const settled = await waitForSnapshot(pipeline, (s) => s.counters.rowsWritten === ROWS && lagOf(s).caughtUp && backlog(s) === 0, {
        timeoutMs: 60_000,
        what: 'writer at the source binlog end after the load stopped',
      })
      assert.equal(lagOf(settled).lagMs, 0)
      const [onSource, onTarget] = await Promise.all([tableChecksums(dsn.source), tableChecksums(dsn.target)])
      assert.deepEqual(onTarget, onSource)
      const exit = await pipeline.stop('SIGTERM')
      assert.equal(exit.code, 0, exit.stderr)
    } finally {
      if (pipeline.alive()) await pipeline.stop('SIGKILL')
    }
  })

  it('init-race (both shapes): no event reaches the target while lag grows with wall clock', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const shapes = ['placeholder', 'never-created'] as const
    const dsns = await Promise.all(shapes.map((shape) => freshDatabase(pair.source, pair.target, `p_race_${shape.replace('-', '_')}`)))
    const pipelines = await Promise.all(
      shapes.map((shape, i) => startPipeline(['--scenario=init-race', `--race-shape=${shape}`, `--source=${dsns[i].source}`, `--target=${dsns[i].target}`])),
    )
    try {
      // Warm up on a condition (the load has reached the source), then measure over a fixed window.
      await Promise.all(pipelines.map((p) => waitForSnapshot(p, (s) => (s.counters.rowsWritten ?? 0) > 300, {timeoutMs: 60_000, what: 'source rows written'})))
      const windows = await Promise.all(pipelines.map((p) => window(p, () => true, 3000)))
      for (const [i, shape] of shapes.entries()) {
        const {first, second} = windows[i]
        assert.ok(pipelines[i].alive(), `${shape}: alive`)
        assert.equal(second.counters.eventsApplied ?? 0, 0, `${shape}: nothing applied`)
        assert.ok((second.counters.rowsWritten ?? 0) > 300, `${shape}: source got ${second.counters.rowsWritten} rows`)
        const growth = (lagOf(second).lagMs - lagOf(first).lagMs) / (second.takenAtMs - first.takenAtMs)
        assert.ok(growth > 0.8 && growth < 1.2, `${shape}: lag grows ~1 s per s, got ${growth.toFixed(2)}`)
        const kind = shape === 'placeholder' ? 'channel-send' : 'slot-wait'
        const stuck = second.tasks.find((task) => task.kind === kind && task.channelName === 'binlog-events')
        assert.ok(stuck && stuck.stack.some((f) => /binlog-streamer\.(ts|js)$/.test(f.url)), `${shape}: ${JSON.stringify(second.tasks)}`)
        const onTarget = await tableChecksums(dsns[i].target)
        for (const table of TABLES) assert.match(onTarget[table.name], /^0 rows/, `${shape}: target ${table.name} empty`)
      }
    } finally {
      await Promise.all(pipelines.map((p) => p.stop('SIGTERM')))
    }
  })

  it('slow-target: lags at the default batch size, keeps up above the measured B* = o·R/(1 − m·R)', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const [a, probe] = await Promise.all([freshDatabase(pair.source, pair.target, 'p_slow_default'), freshDatabase(pair.source, pair.target, 'p_slow_probe')])
    // The default run shows the lag; the probe (a large B) gives batches of varied size to fit m and o.
    const slow = await startPipeline(['--scenario=slow-target', `--source=${a.source}`, `--target=${a.target}`])
    const wide = await startPipeline(['--scenario=slow-target', `--source=${probe.source}`, `--target=${probe.target}`, '--batch-size=200', '--load-shape=bursts'])
    let fit
    const rate = Number(slow.fields.rate)
    try {
      assert.ok(Number(slow.fields['target-latency-ms']) > 0, 'writes go through the latency proxy')
      const [slowWindow, wideWindow] = await Promise.all([window(slow, writing, 5000), window(wide, writing, 5000)])
      const grew = backlog(slowWindow.second) - backlog(slowWindow.first)
      assert.ok(grew > 0.2 * rate * 5, `default B=${slow.fields['batch-size']}: backlog grew by ${grew} rows in 5 s`)
      assert.ok(lagOf(slowWindow.second).lagMs > lagOf(slowWindow.first).lagMs, 'lag grows at the default batch size')
      // Back-pressure reaches the binlog connection: zongji's socket was paused rather than buffering without bound.
      assert.ok((slowWindow.second.counters.binlogReadPauses ?? 0) > 0, 'binlog reading paused while the streamer was blocked')
      const points = [...allSamples(slowWindow.second), ...allSamples(wideWindow.second)].filter((sample) => sample.ok)
      fit = points.length >= 2 ? {...fitOrdinaryLeastSquares(points), count: points.length} : undefined
    } finally {
      await Promise.all([slow.stop('SIGTERM'), wide.stop('SIGTERM')])
    }
    assert.ok(fit, 'enough batch samples to fit T = m·B + o')
    const m = Math.max(fit.mMsPerEvent, 0) / 1000
    const o = fit.oMs / 1000
    assert.ok(o > 0 && m * rate < 1, `measured m=${(m * 1000).toFixed(3)} ms, o=${(o * 1000).toFixed(1)} ms`)
    const bStar = (o * rate) / (1 - m * rate)
    const big = Math.ceil(2 * bStar) + 5
    t.diagnostic(`measured m=${fit.mMsPerEvent.toFixed(4)} ms/event (used ${(m * 1000).toFixed(4)}) o=${(o * 1000).toFixed(1)} ms from ${fit.count} batches; B*=${bStar.toFixed(1)}; trying B=${big}`)
    assert.ok(Number(slow.fields['batch-size']) < bStar, `default batch size below B*=${bStar.toFixed(1)}`)
    const b = await freshDatabase(pair.source, pair.target, 'p_slow_large')
    const fast = await startPipeline(['--scenario=slow-target', `--source=${b.source}`, `--target=${b.target}`, `--batch-size=${big}`])
    try {
      const {first, second} = await window(fast, writing, 5000)
      assert.ok(backlog(second) - backlog(first) < 0.05 * rate * 5, `B=${big}: backlog steady (${backlog(first)} -> ${backlog(second)})`)
      assert.ok(backlog(second) < rate, `B=${big}: backlog under one second of load, got ${backlog(second)}`)
    } finally {
      await fast.stop('SIGTERM')
    }
  })

  it('bad input: one line naming the problem, non-zero exit, nothing written to the target', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const dsn = await freshDatabase(pair.source, pair.target, 'p_bad')
    const wrongPassword = new URL(dsn.source)
    wrongPassword.password = 'not-the-password'
    const noReplication = withDatabase(await createUser(pair.source, 'no_repl', 'pw-no-repl', ['SELECT, INSERT, UPDATE, DELETE, CREATE ON `p_bad`.*']), 'p_bad')
    const cases: Array<[string, string[], RegExp]> = [
      ['unreachable source', [`--source=mysql://root:x@127.0.0.1:1/p_bad`, `--target=${dsn.target}`], /Cannot reach the source at 127\.0\.0\.1:1.*Fix: /],
      ['wrong credentials', [`--source=${wrongPassword}`, `--target=${dsn.target}`], /source .* refused user `root`.*Fix: /],
      ['no replication grant', [`--source=${noReplication}`, `--target=${dsn.target}`], /lacks REPLICATION SLAVE.*Fix: GRANT REPLICATION SLAVE/],
      ['batch size 0', [`--source=${dsn.source}`, `--target=${dsn.target}`, '--batch-size=0'], /--batch-size.*Fix: /],
      ['unreachable target', [`--source=${dsn.source}`, `--target=mysql://root:x@127.0.0.1:1/p_bad`], /Cannot reach the target.*Fix: /],
    ]
    for (const [what, args, expected] of cases) {
      const result = await runPipelineToExit(['--scenario=healthy', ...args])
      assert.notEqual(result.code, 0, `${what}: exit code`)
      assert.equal(result.stderr.trim().split('\n').length, 1, `${what}: one line, got ${result.stderr}`)
      assert.match(result.stderr, expected, what)
      assert.deepEqual(await tableNames(dsn.target), [], `${what}: nothing created on the target`)
    }
  })

  it('bad input: a source whose binlog is not ROW is refused before the target is touched', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const statementSource = await databaseOrSkip(t, startMariaDb({binlogFormat: 'STATEMENT', name: 'statement-source'}))
    if (!statementSource) return
    try {
      const dsn = await freshDatabase(statementSource, pair.target, 'p_stmt')
      const result = await runPipelineToExit(['--scenario=healthy', `--source=${dsn.source}`, `--target=${dsn.target}`])
      assert.equal(result.code, 33, result.stderr)
      assert.match(result.stderr, /binlog_format is STATEMENT, not ROW.*Fix: SET GLOBAL binlog_format='ROW'/)
      assert.deepEqual(await tableNames(dsn.target), [])
    } finally {
      await statementSource.stop()
    }
  })
})
