// `ferrydiag replica` end to end on a real MariaDB primary and parallel replica (4 threads, optimistic,
// performance_schema off, error log captured): a healthy replica under load, a lagging one (a row lock
// held on the replica), bad input, and a replica stopped by a row written on it with sql_log_bin=0,
// watched until the stop.

import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it, type TestContext} from 'node:test'
import type {Connection} from 'mysql2/promise'
import {EXIT} from '../src/errors.js'
import type {ReplicaFinding, ReplicaReport} from '../src/model/replica.js'
import {createUser, openConnection, sharedDatabase, type MariaDbInstance} from './helpers/mariadb.js'
import {readAllSlavesStatus, readGtidBinlogPos, startPrimaryAndReplica, type PrimaryAndReplica, waitFor, waitForReplicaCaughtUp, waitForSqlThreadStopped} from './helpers/replication.js'
import {runCli, type RunResult} from './helpers/run-node.js'

const workdir = mkdtempSync(join(tmpdir(), 'ferrydiag-replica-test-'))
const errorLog = join(workdir, 'replica.err')
// Commits without an fsync each: durability is not under test, and a shared disk makes fsyncs slow.
const FAST_COMMIT = ['--innodb-flush-log-at-trx-commit=2', '--sync-binlog=0']
const topology = sharedDatabase(() =>
  startPrimaryAndReplica({parallelThreads: 4, parallelMode: 'optimistic', replicaErrorLogFile: errorLog, primaryArgs: FAST_COMMIT, replicaArgs: FAST_COMMIT}),
)
/** Per test; the whole file normally takes well under this. */
const TEST_TIMEOUT_MS = 120_000
after(async () => {
  await topology.stop()
  rmSync(workdir, {recursive: true, force: true})
})

function replicaCli(args: string[], options: Parameters<typeof runCli>[1] = {}): Promise<RunResult> {
  return runCli(['replica', ...args], {timeoutMs: 60_000, ...options})
}

function parseReport(result: RunResult): ReplicaReport {
  assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`)
  const report = JSON.parse(result.stdout) as ReplicaReport
  assert.equal(report.schema, 'ferrydiag.replica')
  assert.equal(report.version, 1)
  return report
}

function findingsOf<C extends ReplicaFinding['code']>(report: ReplicaReport, code: C): Array<Extract<ReplicaFinding, {code: C}>> {
  return report.findings.filter((f): f is Extract<ReplicaFinding, {code: C}> => f.code === code)
}

/** Inserts rows into `table` from `connections` sessions at once until `stop()` (or `rows` rows); records each row's GTID. */
function startLoad(primary: MariaDbInstance, table: string, options: {connections: number; rows?: number; firstId?: number}): {stop(): void; done: Promise<Map<number, string>>} {
  let stopped = false
  let next = options.firstId ?? 0
  const end = options.rows === undefined ? Infinity : next + options.rows
  const gtids = new Map<number, string>()
  const done = (async () => {
    const conns = await Promise.all(Array.from({length: options.connections}, () => openConnection(primary.adminDsn)))
    try {
      await Promise.all(
        conns.map(async (conn) => {
          while (!stopped && next < end) {
            const id = next++
            await conn.query(`INSERT INTO ${table} VALUES (?, ?, ?)`, [id, `p${id}`, id])
            const [rows] = await conn.query('SELECT @@last_gtid AS gtid')
            gtids.set(id, String((rows as Array<{gtid: string}>)[0]!.gtid))
          }
        }),
      )
    } finally {
      await Promise.all(conns.map((c) => c.end()))
    }
    return gtids
  })()
  return {stop: () => (stopped = true), done}
}

async function exec(instance: MariaDbInstance, ...statements: string[]): Promise<void> {
  const conn = await openConnection(instance.adminDsn)
  try {
    for (const sql of statements) await conn.query(sql)
  } finally {
    await conn.end()
  }
}

/** The shared topology, caught up, after running `statements` on the primary and replicating them. */
async function prepared(t: TestContext, ...statements: string[]): Promise<PrimaryAndReplica | undefined> {
  const topo = await topology.get(t)
  if (!topo) return undefined
  await waitForReplicaCaughtUp(topo.replica, topo.primary)
  if (statements.length === 0) return topo
  await exec(topo.primary, ...statements)
  await waitForReplicaCaughtUp(topo.replica, topo.primary)
  return topo
}

/** Transactions the replica has received but not applied. */
async function replicaBacklog(replica: MariaDbInstance): Promise<number> {
  const status = (await readAllSlavesStatus(replica)).get('')!
  const seq = (gtid: unknown): number => Number(String(gtid).split(',')[0]!.split('-')[2] ?? 0)
  return seq(status.Gtid_IO_Pos) - seq(status.Gtid_Slave_Pos)
}

describe('ferrydiag replica on a parallel MariaDB replica', () => {
  it('a healthy replica under load: threads and workers dumped, positions ordered, no error finding', {timeout: TEST_TIMEOUT_MS}, async (t) => {
    const topo = await prepared(t, 'CREATE TABLE healthy (id INT PRIMARY KEY, v VARCHAR(20), w INT)')
    if (!topo) return
    const startPos = await readGtidBinlogPos(topo.primary)
    const load = startLoad(topo.primary, 'healthy', {connections: 4})
    // Wait until the load is really flowing before reading.
    await waitFor('the load to reach the replica', async () => ((await readGtidBinlogPos(topo.primary)) !== startPos ? true : undefined))
    let result: RunResult
    try {
      result = await replicaCli(['--replica', topo.replica.adminDsn, '--json', '--duration', '1s'])
    } finally {
      load.stop()
    }
    const written = (await load.done).size
    const report = parseReport(result)
    assert.ok(written > 0, 'the load wrote rows while the replica was read')
    assert.deepEqual(
      report.findings.map((f) => f.code),
      ['healthy'],
      JSON.stringify(report.findings),
    )
    const [connection] = report.snapshot.connections
    assert.equal(connection!.io.running, 'yes')
    assert.equal(connection!.sql.running, true)
    assert.equal(report.snapshot.settings.parallelThreads, 4)
    assert.equal(report.snapshot.settings.parallelMode, 'optimistic')
    // Four workers from the process list (performance_schema is off here, and the dump says so).
    assert.equal(report.snapshot.workers.length, 4)
    assert.ok(report.snapshot.workers.every((w) => w.processlistId !== null && w.sources.includes('processlist')))
    assert.equal(report.snapshot.settings.performanceSchema, false)
    assert.ok(report.snapshot.unavailable.some((u) => /performance_schema is OFF/.test(u.reason)))
    const position = report.positions[0]!
    assert.ok(position.transactionsBehind !== null && position.transactionsBehind >= 0)
    await waitForReplicaCaughtUp(topo.replica, topo.primary)
  })

  it('a lagging replica (a row lock held on the replica): the waits and a growing distance, no failure', {timeout: TEST_TIMEOUT_MS}, async (t) => {
    const topo = await prepared(t, 'CREATE TABLE lagt (id INT PRIMARY KEY, v INT)', 'INSERT INTO lagt VALUES (1, 0)', 'CREATE TABLE lagload (id INT PRIMARY KEY, v VARCHAR(20), w INT)')
    if (!topo) return
    const holder: Connection = await openConnection(topo.replica.adminDsn)
    let load: ReturnType<typeof startLoad> | undefined
    try {
      await holder.query('BEGIN')
      await holder.query('SELECT * FROM lagt WHERE id = 1 FOR UPDATE')
      await exec(topo.primary, 'UPDATE lagt SET v = v + 1 WHERE id = 1')
      load = startLoad(topo.primary, 'lagload', {connections: 2})
      await waitFor('the replica to fall 20 transactions behind', async () => ((await replicaBacklog(topo.replica)) >= 20 ? true : undefined))
      const result = await replicaCli(['--replica', topo.replica.adminDsn, '--json', '--duration', '1s'])
      const report = parseReport(result)
      assert.deepEqual(findingsOf(report, 'first-failure'), [])
      const [lag] = findingsOf(report, 'lagging')
      assert.ok(lag, JSON.stringify(report.findings))
      assert.equal(lag.reason, 'apply-stalled', 'in-order commit: nothing commits behind the blocked transaction')
      assert.equal(lag.appliedInWindow, 0)
      assert.ok(lag.receivedInWindow! > 0, 'transactions kept arriving')
      assert.ok(lag.transactionsBehindGrowth! > 0)
      assert.ok(lag.transactionsBehind! >= 20)
      // The blocked worker waits on the row lock; the others wait for it to commit.
      assert.ok(lag.waits.length > 0, 'the waits are named')
      assert.ok(lag.waits.some((w) => /prior transaction|find_row|lock/i.test(w)), lag.waits.join('; '))
    } finally {
      load?.stop()
      await load?.done
      await holder.query('ROLLBACK').catch(() => {})
      await holder.end()
    }
    await waitForReplicaCaughtUp(topo.replica, topo.primary)
  })

  it('bad input: one line, a distinct exit status each, nothing changed on either server', {timeout: TEST_TIMEOUT_MS}, async (t) => {
    const topo = await prepared(t)
    if (!topo) return
    const before = [await readGtidBinlogPos(topo.primary), await readGtidBinlogPos(topo.replica)]
    const noMonitor = await createUser(topo.replica, 'nomonitor', 'pw', ['SELECT ON *.*'])
    const afterUser = [await readGtidBinlogPos(topo.primary), await readGtidBinlogPos(topo.replica)]
    const cases: Array<{args: string[]; code: keyof typeof EXIT; match: RegExp}> = [
      {args: ['--replica', topo.primary.adminDsn], code: 'notReplica', match: /not a replica/},
      {args: ['--replica', noMonitor], code: 'mysqlGrant', match: /REPLICA MONITOR/},
      {args: ['--replica', 'mysql://root@127.0.0.1:notaport/x'], code: 'badDsn', match: /Malformed DSN/},
      {args: ['--replica', topo.replica.adminDsn, '--connection', 'nosuch'], code: 'noSuchConnection', match: /no replication connection named 'nosuch'/},
      {args: ['--replica', topo.replica.adminDsn, '--error-log', join(workdir, 'missing.err')], code: 'unreadableErrorLog', match: /Cannot read --error-log/},
    ]
    // Run side by side: each is one short CLI run.
    const results = await Promise.all(cases.map((c) => replicaCli([...c.args, '--duration', '100ms'])))
    for (const [i, c] of cases.entries()) {
      const result = results[i]!
      assert.equal(result.code, EXIT[c.code], `${c.args.join(' ')}: ${result.stderr}`)
      assert.match(result.stderr, c.match)
      assert.doesNotMatch(result.stderr, /at .*\.js:\d+/, 'no stack trace')
      assert.doesNotMatch(result.stderr, /ferrydiag-root|:pw@/, 'no password printed')
    }
    // An unreachable primary: the dump still prints, without the primary's side.
    const closedPort = 1
    const unreachable = parseReport(await replicaCli(['--replica', topo.replica.adminDsn, '--primary', `mysql://root:secret@127.0.0.1:${closedPort}/x`, '--json', '--duration', '100ms']))
    assert.equal(unreachable.primary.state, 'unreachable')
    assert.equal(unreachable.snapshot.connections.length, 1)
    assert.deepEqual(unreachable.findings.map((f) => f.code), ['healthy'])
    // The only change was the test's own CREATE USER on the replica.
    assert.deepEqual([await readGtidBinlogPos(topo.primary), await readGtidBinlogPos(topo.replica)], afterUser)
    assert.equal(afterUser[0], before[0])
  })

  it('a conflicting row written on the replica with sql_log_bin=0: --watch names the worker, GTID, table and key, with the rows on both servers and the follow-on errors', {timeout: TEST_TIMEOUT_MS}, async (t) => {
    const topo = await prepared(t, 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), w INT)', 'CREATE TABLE gate (id INT PRIMARY KEY, v INT)', 'INSERT INTO gate VALUES (1, 0)')
    if (!topo) return
    // The key the primary will insert: written on the replica only, outside the binlog.
    await exec(topo.replica, 'SET sql_log_bin = 0', "INSERT INTO t VALUES (200, 'replica-only', 0)")
    // Hold the workers behind a row lock while the relay log fills, so every worker is busy when the
    // conflict is reached and the watch is under way before it.
    const holder = await openConnection(topo.replica.adminDsn)
    const output = join(workdir, 'stop.json')
    let cli: Promise<RunResult> | undefined
    try {
      await holder.query('BEGIN')
      await holder.query('SELECT * FROM gate WHERE id = 1 FOR UPDATE')
      await exec(topo.primary, 'UPDATE gate SET v = v + 1 WHERE id = 1')
      const gtids = await startLoad(topo.primary, 't', {connections: 8, rows: 400}).done
      const target = await readGtidBinlogPos(topo.primary)
      await waitFor('the replica to receive the whole load', async () => ((await readAllSlavesStatus(topo.replica)).get('')!.Gtid_IO_Pos === target ? true : undefined))
      let watching: () => void = () => {}
      const started = new Promise<void>((resolve) => (watching = resolve))
      cli = replicaCli(
        ['--replica', topo.replica.adminDsn, '--primary', topo.primary.adminDsn, '--watch', '--interval', '100ms', '--duration', '60s', '--error-log', errorLog, '--json', '--output', output],
        {onStderr: (text) => (/watching/.test(text) ? watching() : undefined)},
      )
      // Whichever comes first: the watch under way, or the CLI ending (then the asserts below say why).
      await Promise.race([started, cli])
      await holder.query('ROLLBACK')
      await waitForSqlThreadStopped(topo.replica)
      const result = await cli
      assert.equal(result.code, 0, result.stderr)
      const report = JSON.parse(readFileSync(output, 'utf8')) as ReplicaReport

      assert.ok(report.watch?.stopped, 'the watch saw the SQL thread stop')
      const before = report.watch!.lastRunning!
      // Up to the 4 configured workers: on a loaded machine some may have exited between the last two polls
      // (seen with two CPU hogs beside the suite: 2 of 4). The failing worker must be among them (below).
      assert.ok(before.workers.length >= 1 && before.workers.length <= 4, `the workers as they were just before the stop: ${before.workers.length}`)
      assert.equal(report.snapshot.workers.length, 0, 'gone from the process list after the stop')

      const [failure] = findingsOf(report, 'first-failure')
      assert.ok(failure, JSON.stringify(report.findings))
      assert.equal(failure.error.errno, 1062)
      assert.equal(failure.error.table, 'ferrydiag.t')
      assert.equal(failure.error.keyName, 'PRIMARY')
      assert.equal(failure.error.keyValue, '200')
      assert.equal(failure.error.gtid, gtids.get(200), 'the GTID the primary gave the insert of id 200')
      assert.equal(failure.gtidSource, 'error-log')
      const worker = before.workers.find((w) => w.index === failure.workerIndex)
      assert.ok(worker, 'the failing worker is named')
      assert.equal(worker.processlistId, failure.error.threadId)
      assert.ok(failure.followOn.length >= 1, 'other workers failed after it')
      assert.ok(failure.followOn.every((e) => e.errno === 1964 && e.threadId !== failure.error.threadId), JSON.stringify(failure.followOn))

      assert.equal(failure.transaction?.gtid, gtids.get(200))
      const writes = failure.transaction!.events.filter((e) => e.kind === 'write' && e.table === 'ferrydiag.t')
      assert.deepEqual(writes.flatMap((e) => e.rows.map((r) => r.after?.id)), [200])
      assert.deepEqual(failure.rows, [
        {table: 'ferrydiag.t', key: {id: 200}, replica: {id: 200, v: 'replica-only', w: 0}, primary: {id: 200, v: 'p200', w: 200}},
      ])
      const [position] = report.positions
      assert.ok(position!.transactionsBehind! > 0, 'received beyond executed')

      // The text dump of the stopped replica, read again afterwards (no --watch).
      const text = await replicaCli(['--replica', topo.replica.adminDsn, '--primary', topo.primary.adminDsn, '--error-log', errorLog, '--duration', '100ms'])
      assert.equal(text.code, 0, text.stderr)
      assert.match(text.stdout, new RegExp(`FIRST FAILURE \\(default connection\\): error 1062 .* on GTID ${gtids.get(200)} \\(from the error log\\)`))
      assert.match(text.stdout, /follow-on error\(s\), caused by this one/)
      assert.match(text.stdout, /on the replica: \{id: 200, v: 'replica-only', w: 0\}/)
      assert.match(text.stdout, /on the primary: \{id: 200, v: 'p200', w: 200\}/)
    } finally {
      await holder.query('ROLLBACK').catch(() => {})
      await holder.end()
      await cli?.catch(() => undefined)
    }
  })
})
