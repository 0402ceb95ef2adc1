// `ferrydiag binlog diff` against real MariaDB servers: the same GTID with different content, a failover
// where replication carries on silently, 10,000 identical transactions, and bad input (one line each,
// distinct exit statuses).

import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import path from 'node:path'
import {after, describe, it} from 'node:test'
import {setImmediate as yieldToLoop} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'
import {captureOutput} from '@oclif/test'
import BinlogDiff from '../commands/binlog/diff.js'
import {
  failoverSilentDivergence,
  loadIdentical,
  sameGtidDifferentContent,
  type FixtureServer,
} from '../fixtures/binlog-diff/scenarios.js'
import {EXIT} from '../src/errors.js'
import type {BinlogDiffReport} from '../src/model/binlog-diff.js'
import {createUser, openConnection, REPLICATION_USER, sharedDatabase, startMariaDb, type MariaDbInstance} from './helpers/mariadb.js'
import {runCli} from './helpers/run-node.js'

interface Pair {
  a: MariaDbInstance
  b: MariaDbInstance
  stop(): Promise<void>
}

const pair = sharedDatabase<Pair>(async () => {
  const [a, b] = await Promise.all([startMariaDb({name: 'diff-a'}), startMariaDb({name: 'diff-b'})])
  return {a, b, stop: async () => void (await Promise.all([a.stop(), b.stop()]))}
})
after(() => pair.stop())

function fixtureServer(instance: MariaDbInstance): FixtureServer {
  return {adminDsn: instance.adminDsn, host: instance.host, port: instance.port}
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..') // package root

type CaughtError = Error & {oclif?: {exit?: number}; suggestions?: string[]}

/**
 * Runs `binlog diff` in-process (a spawned CLI takes ~5 s to start on a loaded machine); yields first and
 * resets process.exitCode after, as node:test needs. With --json, `report` is the parsed stdout.
 */
async function diff(args: string[]): Promise<{exit: number; stdout: string; stderr: string; error?: CaughtError; report?: BinlogDiffReport}> {
  await yieldToLoop()
  const output = await captureOutput<BinlogDiffReport>(() => BinlogDiff.run(args, {root}))
  const exitCode = process.exitCode
  process.exitCode = undefined
  const error = output.error as CaughtError | undefined
  const exit = error?.oclif?.exit ?? (typeof exitCode === 'number' ? exitCode : 0)
  let report: BinlogDiffReport | undefined
  if (error === undefined && args.includes('--json')) report = JSON.parse(output.stdout) as BinlogDiffReport
  return {exit, stdout: output.stdout, stderr: output.stderr, error, report}
}

/** Where each GTID's event starts, read independently with SHOW BINLOG EVENTS. */
async function gtidPositions(instance: MariaDbInstance): Promise<Map<string, string>> {
  const conn = await openConnection(instance.adminDsn)
  try {
    const positions = new Map<string, string>()
    const [logs] = (await conn.query('SHOW BINARY LOGS')) as unknown as [Array<{Log_name: string}>]
    for (const {Log_name: file} of logs) {
      const [events] = (await conn.query(`SHOW BINLOG EVENTS IN '${file}'`)) as unknown as [Array<Record<string, unknown>>]
      for (const event of events) {
        const match = event.Event_type === 'Gtid' ? /GTID (\d+-\d+-\d+)/.exec(String(event.Info)) : null
        if (match) positions.set(match[1]!, `${file}:${String(event.Pos)}`)
      }
    }
    return positions
  } finally {
    await conn.end()
  }
}

/** A failure: the exit status, one line naming the problem, a suggestion, and no password anywhere. */
async function assertOneLineError(args: string[], exit: number, pattern: RegExp): Promise<void> {
  const result = await diff(args)
  assert.equal(result.exit, exit, result.stderr)
  // The base command reports a failure as one line: `ferrydiag binlog diff: MESSAGE (code C, exit N). Try this: …`
  // (run in-process, oclif gives the command another id, so the id is not checked here)
  const lines = result.stderr.trim().split('\n')
  assert.equal(lines.length, 1, `expected one line, got:\n${result.stderr}`)
  assert.match(lines[0]!, new RegExp(`^ferrydiag [a-z: ]+: .* \\(code \\w+, exit ${exit}\\)\\. Try this: .+$`))
  assert.match(lines[0]!, pattern)
  for (const output of [result.stdout, result.stderr]) {
    assert.ok(!/ferrydiag-repl|ferrydiag-root|secret|pw-monitor|pw-select/.test(output), `no password printed: ${output}`)
  }
}

describe('binlog diff on MariaDB', () => {
  it('finds the GTID both servers logged with different statements, with tables and positions', async (t) => {
    const servers = await pair.get(t)
    if (!servers) return
    const fixture = await sameGtidDifferentContent(fixtureServer(servers.a), fixtureServer(servers.b))
    // Every GTID-position check calls these servers consistent.
    assert.equal(fixture.gtidBinlogPos[0], fixture.gtidBinlogPos[1])

    const {exit, report, stderr} = await diff(['--servers', `${servers.a.replicationDsn},${servers.b.replicationDsn}`, '--gtid', '0-10-1..0-10-300000', '--json'])
    assert.equal(exit, 0, stderr)
    assert.ok(report)
    assert.equal(report.schema, 'ferrydiag.binlog-diff')
    assert.equal(report.version, 1)
    assert.deepEqual(report.divergent.map((d) => d.gtid), [fixture.gtid])
    assert.equal(report.summary.different, 1)
    assert.equal(report.summary.partial, 0)
    assert.equal(report.summary.same, report.summary.compared - 1)
    assert.ok(report.summary.compared >= 60, `compared ${report.summary.compared}`)
    const [copyA, copyB] = report.divergent[0]!.copies
    assert.deepEqual(copyA!.tables, ['ferrydiag.sbtest6', 'ferrydiag.sbtest5'])
    assert.deepEqual(copyB!.tables, ['ferrydiag.sbtest5', 'ferrydiag.sbtest4'])
    const [positionsA, positionsB] = await Promise.all([gtidPositions(servers.a), gtidPositions(servers.b)])
    assert.equal(`${copyA!.position.file}:${copyA!.position.offset}`, positionsA.get(fixture.gtid))
    assert.equal(`${copyB!.position.file}:${copyB!.position.offset}`, positionsB.get(fixture.gtid))
    assert.deepEqual(report.divergent[0]!.differences, [
      {server: 1, against: 0, first: {kind: 'event', eventIndex: 0, eventA: {kind: 'update', what: 'ferrydiag.sbtest6'}, eventB: {kind: 'update', what: 'ferrydiag.sbtest5'}}},
    ])

    // The built CLI end to end: text form and --exit-code
    const text = await runCli(['binlog', 'diff', '--servers', `${servers.a.replicationDsn},${servers.b.replicationDsn}`, '--gtid', fixture.gtid, '--exit-code'], {timeoutMs: 120_000})
    assert.equal(text.code, EXIT.binlogDiverged, text.stderr)
    assert.match(text.stdout, new RegExp(`GTID ${fixture.gtid} differs`))
    assert.match(text.stdout, /1 GTIDs compared: 0 same, 1 different/)
    assert.ok(!text.stdout.includes('ferrydiag-repl'), 'password masked')
  })

  it('finds the silent divergence after a failover with MASTER_USE_GTID=current_pos', async (t) => {
    const servers = await pair.get(t)
    if (!servers) return
    const password = decodeURIComponent(new URL(servers.a.replicationDsn).password)
    const fixture = await failoverSilentDivergence(fixtureServer(servers.a), fixtureServer(servers.b), {user: REPLICATION_USER, password})
    // What the servers themselves say: replication running without error, the same gtid_binlog_pos...
    assert.deepEqual(fixture.replicaStatusOfA, {io: 'Yes', sql: 'Yes', lastError: ''})
    assert.equal(fixture.gtidBinlogPos[0], fixture.gtidBinlogPos[1])
    // ...and yet different rows.
    assert.notDeepEqual(fixture.rowOnA, fixture.rowOnB)

    const {exit, report, stderr} = await diff(['--servers', `${servers.a.replicationDsn},${servers.b.replicationDsn}`, '--last', '50', '--json'])
    assert.equal(exit, 0, stderr)
    assert.ok(report)
    assert.deepEqual(report.divergent.map((d) => d.gtid), [fixture.divergentGtid])
    const first = report.divergent[0]!.differences?.[0]?.first
    assert.ok(first?.kind === 'row', JSON.stringify(first))
    assert.equal(first.table, 'ferrydiag.accounts')
    assert.ok(first.columns.includes('owner'))
    assert.equal(first.rowA.before?.owner, 'late-on-A')
    assert.equal(first.rowB.before?.owner, 'bob')
    assert.deepEqual(first.rowA.after, first.rowB.after)
    // The late write exists on A only: listed, not an error.
    assert.deepEqual(report.partial.map((p) => [p.gtid, p.presentOn, p.missingOn]), [[fixture.errantGtid, [0], [1]]])
    const positionsA = await gtidPositions(servers.a)
    assert.equal(`${report.partial[0]!.position.file}:${report.partial[0]!.position.offset}`, positionsA.get(fixture.errantGtid))

    // mariadb-binlog, in its default strict mode, refuses A's binlog at the repeated sequence number.
    const url = new URL(servers.a.replicationDsn)
    const strict = spawnSync('mariadb-binlog', ['--read-from-remote-server', `--host=${url.hostname}`, `--port=${url.port}`, `--user=${REPLICATION_USER}`, 'binlog.000001'], {
      env: {...process.env, MYSQL_PWD: password},
      encoding: 'utf8',
      timeout: 60_000,
    })
    assert.equal(strict.status, 1, strict.stderr)
    assert.match(strict.stderr, new RegExp(`out of order GTID. Got ${fixture.divergentGtid} after ${fixture.errantGtid}`))
  })

  it('reports no difference between two servers holding the same 10,000 transactions', async (t) => {
    const servers = await pair.get(t)
    if (!servers) return
    const positions = await loadIdentical([fixtureServer(servers.a), fixtureServer(servers.b)], {transactions: 10_000})
    assert.deepEqual(positions, ['0-7-10001', '0-7-10001'])
    const {exit, report, stderr} = await diff(['--servers', `${servers.a.replicationDsn},${servers.b.replicationDsn}`, '--last', '10000', '--json'])
    assert.equal(exit, 0, stderr)
    assert.ok(report)
    assert.deepEqual(report.summary, {compared: 10_000, same: 10_000, different: 0, partial: 0})
    assert.deepEqual(report.divergent, [])
    for (const server of report.servers) assert.equal(server.transactionsSelected, 10_000)

    // --since: everything was logged within the last hour (the CREATE TABLE too).
    const since = await diff(['--servers', `${servers.a.replicationDsn},${servers.b.replicationDsn}`, '--since', '1h', '--json'])
    assert.equal(since.exit, 0, since.stderr)
    assert.deepEqual(since.report?.summary, {compared: 10_001, same: 10_001, different: 0, partial: 0})

    // --since starts at the newest file whose first transaction is older than TIME: rotate, write one
    // transaction, let the clock pass a whole second (binlog timestamps are whole seconds), write two more.
    const write = async (sql: string): Promise<void> => {
      for (const instance of [servers.a, servers.b]) {
        const conn = await openConnection(instance.adminDsn, {multipleStatements: true})
        try {
          await conn.query(`SET SESSION server_id = 7; ${sql}`)
        } finally {
          await conn.end()
        }
      }
    }
    await write("FLUSH BINARY LOGS; INSERT INTO ferrydiag.sbtest1 (id, k, c) VALUES (20001, 1, 'x')")
    const sinceMs = (Math.floor(Date.now() / 1000) + 1) * 1000
    while (Date.now() < sinceMs) await new Promise((resolve) => setTimeout(resolve, sinceMs - Date.now()))
    await write("INSERT INTO ferrydiag.sbtest1 (id, k, c) VALUES (20002, 1, 'x'); INSERT INTO ferrydiag.sbtest1 (id, k, c) VALUES (20003, 1, 'x')")
    const recent = await diff(['--servers', `${servers.a.replicationDsn},${servers.b.replicationDsn}`, '--since', new Date(sinceMs).toISOString(), '--json'])
    assert.equal(recent.exit, 0, recent.stderr)
    assert.deepEqual(recent.report?.summary, {compared: 2, same: 2, different: 0, partial: 0})
    assert.deepEqual(recent.report?.servers.map((s) => s.readFrom), [{file: 'binlog.000002', offset: 4}, {file: 'binlog.000002', offset: 4}])

    // --gtid starts at the file whose Gtid_list precedes the GTID, and stops once past it.
    const one = await diff(['--servers', `${servers.a.replicationDsn},${servers.b.replicationDsn}`, '--gtid', '0-7-10003', '--json'])
    assert.equal(one.exit, 0, one.stderr)
    assert.deepEqual(one.report?.summary, {compared: 1, same: 1, different: 0, partial: 0})
    for (const server of one.report!.servers) {
      assert.deepEqual(server.readFrom, {file: 'binlog.000002', offset: 4})
      assert.equal(server.transactionsRead, 2, '0-7-10002 and 0-7-10003, stopping at 0-7-10004')
    }
  })

  it('bad input: one line and a distinct exit status each', async (t) => {
    const servers = await pair.get(t)
    if (!servers) return
    const both = `${servers.a.replicationDsn},${servers.b.replicationDsn}`
    await loadIdentical([fixtureServer(servers.a), fixtureServer(servers.b)], {transactions: 100})
    await assertOneLineError(['--servers', both, '--gtid', '0-1-x'], EXIT.badGtid, /Malformed GTID `0-1-x`/)
    await assertOneLineError(['--servers', both, '--gtid', '0-1-200..100'], EXIT.badGtid, /runs backwards/)
    await assertOneLineError(['--servers', both], EXIT.badArgument, /one of --gtid, --last or --since/)
    await assertOneLineError(['--servers', servers.a.replicationDsn, '--last', '5'], EXIT.badArgument, /two or more servers/)
    await assertOneLineError(['--servers', `${servers.a.replicationDsn},mysql://x:secret@127.0.0.1:1/db`, '--last', '5'], EXIT.mysqlUnreachable, /127\.0\.0\.1:1: connection refused/)

    // GTIDs absent from every server
    await assertOneLineError(['--servers', both, '--gtid', '9-9-9'], EXIT.noTransactions, /No server holds a transaction for 9-9-9/)

    const monitorOnly = await createUser(servers.a, 'diff_monitor', 'pw-monitor', ['BINLOG MONITOR ON *.*', 'SELECT ON *.*'])
    await assertOneLineError(['--servers', `${monitorOnly},${servers.b.replicationDsn}`, '--gtid', '0-7-5'], EXIT.mysqlGrant, /lacks REPLICATION SLAVE/)
    const selectOnly = await createUser(servers.a, 'diff_select', 'pw-select', ['SELECT ON *.*'])
    await assertOneLineError(['--servers', `${selectOnly},${servers.b.replicationDsn}`, '--gtid', '0-7-5'], EXIT.mysqlGrant, /lacks REPLICATION CLIENT/)

    // A table dropped since its rows were logged: zongji has no column names for its row events.
    for (const instance of [servers.a, servers.b]) {
      const admin = await openConnection(instance.adminDsn, {multipleStatements: true})
      try {
        await admin.query('SET SESSION server_id = 7; DROP TABLE ferrydiag.sbtest1')
      } finally {
        await admin.end()
      }
    }
    await assertOneLineError(['--servers', both, '--last', '5'], EXIT.binlogUnreadable, /no column metadata for table ferrydiag\.sbtest1/)

    // Purge the oldest binlog on A: GTIDs from it can no longer be compared. The server keeps a file
    // while InnoDB may still need it for crash recovery (the fixture commits with
    // innodb_flush_log_at_trx_commit=0) or a reader uses it, so rotate and purge until it is gone.
    const admin = await openConnection(servers.a.adminDsn, {multipleStatements: true})
    try {
      const deadline = Date.now() + 60_000
      for (;;) {
        await admin.query('FLUSH BINARY LOGS')
        const [logs] = (await admin.query('SHOW BINARY LOGS')) as unknown as [Array<{Log_name: string}>]
        await admin.query(`PURGE BINARY LOGS TO '${logs[logs.length - 1]!.Log_name}'`)
        const [left] = (await admin.query('SHOW BINARY LOGS')) as unknown as [Array<{Log_name: string}>]
        if (left[0]!.Log_name !== 'binlog.000001') break
        assert.ok(Date.now() < deadline, `binlog.000001 still not purged: ${left.map((l) => l.Log_name).join(', ')}`)
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    } finally {
      await admin.end()
    }
    await assertOneLineError(['--servers', both, '--gtid', '0-7-5..0-7-10'], EXIT.binlogPurged, /no longer has the binlog for domain 0 from sequence 5/)

    const off = await startMariaDb({name: 'diff-nobinlog', extraArgs: ['--skip-log-bin']})
    try {
      await assertOneLineError(['--servers', `${servers.b.replicationDsn},${off.replicationDsn}`, '--last', '5'], EXIT.mysqlConfig, /binary logging off/)
    } finally {
      await off.stop()
    }
  })
})
