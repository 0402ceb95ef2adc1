// tune-batch from the probes on a program that never imported ferrydiag: a mysql2 writer (callback API)
// writing one transaction per batch (BEGIN; multi-row INSERT ... ON DUPLICATE KEY UPDATE; COMMIT) of
// varying size (1 to 1000 rows of ~560 bytes) through a latency proxy (10 ms, 5 MB/s each way) to a real
// MariaDB. m must agree within 20 % (o within 50 % under load, see below) with an independent timing: the test writes the same batches itself, at the same time as the program (so on the
// same loaded machine, not minutes apart), on its own mysql2 connection through the same proxy into a table
// of the same shape, and fits its own clock. They must also agree with the writer's own clock around the
// same transactions (which checks the probes' measurement rather than the fit).
// test/run: alone (its figures come from real timers; a file beside it would make them run late)

import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'
import {loadavg} from 'node:os'
import path from 'node:path'
import {fitCostModel} from '../src/analyze/fit-cost-model.js'
import type {TuneBatchResult} from '../src/model/tune-batch.js'
import type {BatchSample} from '../src/model/snapshot.js'
import {startLatencyProxy} from '../fixtures/pipeline/latency-proxy.js'
import {spawnTarget} from './helpers/child-process.js'
import {freshDatabase, openConnection, sharedDatabase, startSourceAndTarget} from './helpers/mariadb.js'
import {assertNoProbesLeft} from './helpers/probes.js'
import {runCli} from './helpers/run-node.js'
import {REPO_ROOT} from './helpers/wild.js'

const db = sharedDatabase(() => startSourceAndTarget())
after(() => db.stop())

const LINK_DELAY_MS = 10
const LINK_BYTES_PER_SEC = 5_000_000

/** Batch sizes, shuffled per round; the same list for the program and for the test's own timing. */
const SIZES = [1, 10, 50, 100, 200, 400, 700, 1000]
const TABLE_DDL = `CREATE TABLE IF NOT EXISTS ledger (
  id BIGINT NOT NULL PRIMARY KEY, email VARCHAR(120) NOT NULL, name VARCHAR(80) NOT NULL,
  created_at DATETIME NOT NULL, balance DECIMAL(12,2) NOT NULL, note VARCHAR(600) NOT NULL) ENGINE=InnoDB`

/** The same batch as the program writes, as SQL text (ids from `first`). */
function batchSql(first: number, size: number): string {
  const rows: string[] = []
  for (let i = 0; i < size; i++) {
    const id = first + i
    rows.push(`(${id}, 'user${id}@example.com', 'User ${id}', '2026-01-01 00:00:00', ${(id % 1000) + 0.5}, '${'n'.repeat(500)}')`)
  }
  return `INSERT INTO ledger (id, email, name, created_at, balance, note) VALUES ${rows.join(', ')} ON DUPLICATE KEY UPDATE balance = VALUES(balance), name = VALUES(name)`
}

/** The writer program: never imports ferrydiag; mysql2's callback API from the repository's node_modules. */
function writerProgram(dsn: string): string {
  return `
const mysql = require(${JSON.stringify(path.join(REPO_ROOT, 'node_modules', 'mysql2'))})
const SIZES = ${JSON.stringify(SIZES)}
${batchSql.toString()}
const conn = mysql.createConnection(${JSON.stringify(dsn)})
const q = (sql) => new Promise((resolve, reject) => conn.query(sql, (err, r) => (err ? reject(err) : resolve(r))))
let next = 1, batches = 0
async function main() {
  await q(${JSON.stringify(TABLE_DDL)})
  for (;;) {
    const order = [...SIZES].sort(() => Math.random() - 0.5)
    for (const size of order) {
      const started = performance.now()
      await q('BEGIN'); await q(batchSql(next, size)); await q('COMMIT')
      console.log('batch ' + size + ' ' + (performance.now() - started).toFixed(3) + ' ' + Date.now())
      next += size
      if (++batches === 1) console.log('ready')
    }
  }
}
main().catch((e) => { console.error(e); process.exit(1) })
process.on('SIGTERM', () => process.exit(0))
`
}

/**
 * The test's own timing of the same transactions through the same DSN, into its own table of the same
 * shape, until `stop` fires: the program's sizes, shuffled per round, one transaction each.
 */
async function timeWritesOurselves(dsn: string, stop: AbortSignal): Promise<BatchSample[]> {
  const conn = await openConnection(dsn)
  const samples: BatchSample[] = []
  try {
    await conn.query(TABLE_DDL.replace('ledger', 'ledger_reference'))
    let next = 1
    while (!stop.aborted) {
      for (const size of [...SIZES].sort(() => Math.random() - 0.5)) {
        // As the program does: the statement is built after BEGIN, inside the timed span (on a starved CPU,
        // building 400 rows of SQL text is part of the per-row cost the probes see).
        const started = performance.now()
        await conn.query('BEGIN')
        await conn.query(batchSql(next, size).replace('INSERT INTO ledger ', 'INSERT INTO ledger_reference '))
        await conn.query('COMMIT')
        next += size
        samples.push({stageName: 'test', atMs: Date.now(), events: size, ms: performance.now() - started, ok: true})
      }
    }
  } finally {
    await conn.end()
  }
  return samples
}

describe('tune-batch from probes (mysql2 writer, real MariaDB behind a latency proxy)', () => {
  it('fits m and o within 10 % of the writer\'s own clock on the same transactions, m within 20 % (o within 50 %) of the test\'s own writes timed side by side; the probes are gone afterwards', async (t) => {
    const servers = await db.get(t)
    if (!servers) return
    const dsns = await freshDatabase(servers.source, servers.target, `probes_tb_${process.pid}`)
    // A 10-ms link of 5 MB/s each way (per connection): o is mostly the proxy's three round trips per batch
    // (BEGIN, INSERT, COMMIT: ~60 ms) and m mostly the ~560 bytes of each row crossing the link (~0.11
    // ms/row), so m·B is most of T at the larger sizes. Both are set by the link, not by how late the two
    // processes' timers run on a loaded machine, which is what made the earlier 2-ms, 100-byte-row version
    // disagree by up to 35 % (m·B was a small part of T there).
    const proxy = await startLatencyProxy({host: servers.target.host, port: servers.target.port}, LINK_DELAY_MS, LINK_BYTES_PER_SEC)
    t.after(() => proxy.close())
    const url = new URL(dsns.target)
    url.hostname = proxy.host
    url.port = String(proxy.port)
    const viaProxy = url.toString()
    const program = await spawnTarget({script: writerProgram(viaProxy), moduleType: 'cjs', execArgv: ['--inspect=127.0.0.1:0'], startTimeoutMs: 30_000})
    t.after(() => program.kill())
    const inspect = `127.0.0.1:${program.inspectPort}`

    // The test's own writes run for the whole tune-batch run; only those inside its window are compared.
    const stopOurs = new AbortController()
    const oursPromise = timeWritesOurselves(viaProxy, stopOurs.signal)
    let run
    try {
      // 15 s: on a loaded machine a batch was seen to take 200 ms, and 8 s gave only 34 of them.
      run = await runCli(['tune-batch', '--inspect', inspect, '--duration', '15s', '--json'], {timeoutMs: 90_000})
    } finally {
      stopOurs.abort()
    }
    const oursAll = await oursPromise
    assert.ok(run.stdout.trim().startsWith('{'), `tune-batch printed no JSON (exit ${run.code}): ${run.stderr}`)
    const result = JSON.parse(run.stdout) as TuneBatchResult
    assert.ok(result.model, `no model: ${result.summary}`)
    assert.equal(result.currentBatchSizeFrom, 'observed')
    assert.equal(result.probes?.state, 'used')
    assert.equal(result.samples.writeShape, 'multi-row')
    const installedAtMs = result.probes!.installedAtMs!
    assert.match(result.samples.stageName ?? '', /mysql2 writer/)
    await assertNoProbesLeft(inspect)
    await program.kill()
    const inWindow = (b: BatchSample) => b.atMs >= installedAtMs && b.atMs <= result.window.endedAtMs
    // The writer's own clock around each of the same transactions, from the probes' install (their samples
    // start there) to the window's end.
    const own: BatchSample[] = program.stdoutLines
      .map((l) => /^batch (\d+) ([\d.]+) (\d+)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({stageName: 'self', atMs: Number(m[3]), events: Number(m[1]), ms: Number(m[2]), ok: true}))
      .filter(inWindow)
    const self = fitCostModel(own)
    const ours = fitCostModel(oursAll.filter(inWindow))
    assert.equal(self.status, 'fitted', `the program's own timing: ${own.length} batches in the window`)
    assert.equal(ours.status, 'fitted', `the test's own timing: ${oursAll.filter(inWindow).length} batches in the window`)
    if (self.status !== 'fitted' || ours.status !== 'fitted') return
    const m = result.model.mMsPerEvent
    const o = result.model.oMs
    t.diagnostic(
      `probes: m ${m.toFixed(4)} ms/row, o ${o.toFixed(2)} ms (${result.samples.used} batches); ` +
        `the test's own writes, same window: m ${ours.model.mMsPerEvent.toFixed(4)} ms/row, o ${ours.model.oMs.toFixed(2)} ms (${ours.sampleCount} batches); ` +
        `writer's own clock: m ${self.model.mMsPerEvent.toFixed(4)} ms/row, o ${self.model.oMs.toFixed(2)} ms`,
    )
    const perRowShare = (m * SIZES.at(-1)!) / (m * SIZES.at(-1)! + o)
    t.diagnostic(`m·B is ${(perRowShare * 100).toFixed(0)} % of T at B = ${SIZES.at(-1)}; load average ${loadavg()[0].toFixed(1)}`)
    // Against the test's own copies of the writes, timed side by side through the same proxy: these are other
    // transactions from another process, so they carry that process's own delays. m within 20 %, o within
    // 50 %: beside two CPU hogs (load average 37-42) the two processes' event loops wake at different delays,
    // three times per batch, and that is o: probes / writer's own clock / test's copies gave m 0.883 / 0.892 /
    // 0.924 ms/row (4 %), o 313 / 313 / 224 ms (40 %); in a full CI run beside a soak and a hog (load 5.9),
    // m 0.2236 / 0.2235 / 0.2012 (11 %). The 10 % is held against the writer's own clock on the very
    // same transactions (below): an independent timing of the same writes, not read through the probes.
    assert.ok(Math.abs(m - ours.model.mMsPerEvent) <= 0.2 * ours.model.mMsPerEvent, `m ${m} vs the test's own ${ours.model.mMsPerEvent}`)
    assert.ok(Math.abs(o - ours.model.oMs) <= 0.5 * ours.model.oMs, `o ${o} vs the test's own ${ours.model.oMs}`)
    assert.ok(Math.abs(m - self.model.mMsPerEvent) <= 0.1 * self.model.mMsPerEvent, `m ${m} vs the writer's own ${self.model.mMsPerEvent}`)
    assert.ok(Math.abs(o - self.model.oMs) <= 0.1 * self.model.oMs, `o ${o} vs the writer's own ${self.model.oMs}`)
  })
})
