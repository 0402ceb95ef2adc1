// End to end: `ferrydiag binlog audit` (the built CLI) against real MariaDB instances and real consumers
// (fixtures/binlog-audit): a pika_hub-rule file follower that loses file tails under concurrent load, a
// fixed follower across 20+ rotations, a consumer that checkpoints the Rotate's position with the new
// file's name and restarts from it, damaged copies of a binlog file, and every bad input.

import {strict as assert} from 'node:assert'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer, connect, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {makeDamagedCopies} from '../fixtures/binlog-audit/damaged-copies.js'
import {followBinlogFiles} from '../fixtures/binlog-audit/follow-files.js'
import {startInsertLoad} from '../fixtures/binlog-audit/load.js'
import {alignBoundaryAt, runRotateCheckpointConsumer} from '../fixtures/binlog-audit/rotate-checkpoint.js'
import {EXIT} from '../src/errors.js'
import type {BinlogAuditReport} from '../src/model/binlog-audit.js'
import {createUser, openConnection, sharedDatabase, startMariaDb, type MariaDbInstance} from './helpers/mariadb.js'
import {runCli} from './helpers/run-node.js'

const work = mkdtempSync(join(tmpdir(), 'ferrydiag-audit-'))
after(() => rmSync(work, {recursive: true, force: true}))

// max_binlog_size 4096 (the minimum): a rotation every ~10 transactions.
const small = sharedDatabase(() => startMariaDb({name: 'audit-small', extraArgs: ['--max-binlog-size=4096']}))
const plain = sharedDatabase(() => startMariaDb({name: 'audit-plain'}))
after(() => Promise.all([small.stop(), plain.stop()]))

async function audit(args: string[]): Promise<{code: number | null; report: BinlogAuditReport; stderr: string}> {
  const result = await runCli(['binlog', 'audit', ...args, '--json'], {timeoutMs: 120_000})
  return {code: result.code, report: JSON.parse(result.stdout) as BinlogAuditReport, stderr: result.stderr}
}

async function auditFails(args: string[]): Promise<{code: number | null; stderr: string; stdout: string}> {
  const result = await runCli(['binlog', 'audit', ...args], {timeoutMs: 120_000})
  return {code: result.code, stderr: result.stderr, stdout: result.stdout}
}

/**
 * One line naming the problem, `ferrydiag binlog audit: MESSAGE (code C, exit N). Try this: …`, and no
 * stack trace. Returns the message.
 */
function assertOneLine(stderr: string): string {
  assert.doesNotMatch(stderr, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace')
  const lines = stderr.trim().split('\n')
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`)
  const match = /^ferrydiag binlog audit: (.*) \(code \w+, exit \d+\)\. Try this: .+$/.exec(lines[0]!)
  assert.ok(match, `expected "ferrydiag binlog audit: … (code …, exit …). Try this: …", got:\n${stderr}`)
  return match[1]!
}

async function currentFile(dsn: string): Promise<string> {
  const conn = await openConnection(dsn)
  try {
    const [rows] = await conn.query('SHOW MASTER STATUS')
    return String((rows as Array<{File: string}>)[0]!.File)
  } finally {
    await conn.end()
  }
}

describe('binlog audit on MariaDB', {timeout: 600_000}, () => {
  it('names every transaction the pika_hub-rule follower lost at file tails; the fixed follower across 20+ rotations is complete', async (t) => {
    const db = await small.get(t)
    if (!db) return
    const admin = db.adminDsn
    const first = await currentFile(admin)
    const pikaLog = join(work, 'pika-positions.log')
    const fixedLog = join(work, 'fixed-positions.log')
    const pika = followBinlogFiles({datadir: db.datadir, file: first, rule: 'switch-when-next-exists', positionsPath: pikaLog})
    const fixed = followBinlogFiles({datadir: db.datadir, file: first, rule: 'switch-when-drained', positionsPath: fixedLog})
    const load = await startInsertLoad(admin, {writers: 4})
    // Run until the fixed follower saw 25 rotations and the buggy one has really lost something (or a
    // bound). Being behind is not a loss: a transaction the fixed follower delivered from file F by time
    // t is lost to the buggy one only if it is still missing once the buggy one has moved past F.
    const deadline = Date.now() + 240_000
    let candidates: {missing: string[]; file: string} | null = null
    let confirmedLoss = false
    while ((fixed.switches < 25 || !confirmedLoss) && Date.now() < deadline && fixed.switches < 400) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      if (candidates && pika.file > candidates.file) {
        confirmedLoss ||= candidates.missing.some((gtid) => !pika.deliveredGtids.has(gtid))
        candidates = null
      }
      if (!candidates && !confirmedLoss) {
        candidates = {missing: [...fixed.deliveredGtids].filter((gtid) => !pika.deliveredGtids.has(gtid)), file: fixed.file}
      }
    }
    let committed = await load.stop()
    // One last transaction, in the newest file both followers read: losses before it are then "lost",
    // not "pending" after the consumer's last delivery.
    const conn = await openConnection(admin)
    await conn.query("INSERT INTO audit_rows (writer, payload) VALUES (99, 'last')")
    await conn.end()
    committed++
    await pika.drainAndStop()
    await fixed.drainAndStop()
    t.diagnostic(`committed ${committed}, fixed delivered ${fixed.delivered} over ${fixed.switches} rotations, pika_hub rule delivered ${pika.delivered}`)
    assert.equal(fixed.delivered, committed, 'the fixed follower delivered every committed transaction')
    assert.ok(fixed.switches >= 20, `at least 20 rotations, got ${fixed.switches}`)
    const truthLost = [...fixed.deliveredGtids].filter((gtid) => !pika.deliveredGtids.has(gtid))
    assert.ok(truthLost.length > 0, 'the pika_hub rule lost file tails under load')

    const fixedAudit = await audit(['--source', db.replicationDsn, '--positions', fixedLog, '--verify-checksums'])
    assert.equal(fixedAudit.code, 0, fixedAudit.stderr)
    assert.equal(fixedAudit.report.verdict, 'complete')
    assert.equal(fixedAudit.report.lostTotals.transactions, 0)
    assert.ok(fixedAudit.report.eventsChecksummed > 0 && fixedAudit.report.checksumProblems.length === 0)
    assert.ok(fixedAudit.report.files.filter((file) => file.rotateEndPos !== null).length >= 20)

    const pikaAudit = await audit(['--source', db.replicationDsn, '--positions', pikaLog])
    assert.equal(pikaAudit.code, EXIT.auditLost)
    const report = pikaAudit.report
    assert.equal(report.verdict, 'lost')
    assert.equal(report.pendingTotals.transactions, 0)
    assert.equal(report.lostTotals.transactions, truthLost.length)
    const lostGtids = new Set(report.lost.map((event) => event.gtid))
    assert.deepEqual([...lostGtids].sort(), [...truthLost].sort(), 'exactly the transactions the follower never delivered')
    for (const event of report.lost) {
      assert.ok(event.endPos > event.startPos && event.startPos >= 4 && event.gtid !== null && event.type !== '')
    }
    assert.ok(report.lost.some((event) => event.type === 'Write_rows_v1' && event.table === 'ferrydiag.audit_rows'))
    // Every loss is a file tail: each gap runs to the file's Rotate and the next delivery is in the next file.
    for (const gap of report.gaps) {
      const file = report.files.find((f) => f.file === gap.file)!
      assert.equal(file.status, 'tail-lost')
      assert.ok(file.rotateEndPos !== null && gap.endPos <= file.rotateEndPos && file.lastAckedPos! < gap.startPos + 1)
      assert.notEqual(gap.deliveredAfter?.file, gap.file)
    }
  })

  it('flags a checkpoint that pairs the Rotate position with the new file name, and what a restart from it skips', async (t) => {
    const db = await plain.get(t)
    if (!db) return
    const conn = await openConnection(db.adminDsn)
    try {
      // Variant 1: the position falls inside an event of the new file: the server refuses the restart.
      await conn.query('CREATE TABLE rot1 (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT)')
      const first = await currentFile(db.adminDsn)
      for (let i = 0; i < 5; i++) await conn.query("INSERT INTO rot1 (v) VALUES (REPEAT('a', 50))")
      await conn.query('FLUSH BINARY LOGS')
      for (let i = 0; i < 40; i++) await conn.query("INSERT INTO rot1 (v) VALUES (REPEAT('b', 60))")
      const log1 = join(work, 'rotate-refused.log')
      const run1 = await runRotateCheckpointConsumer(db.replicationDsn, first, log1)
      const refused = await audit(['--source', db.replicationDsn, '--positions', log1, '--list-limit', '10000'])
      assert.equal(refused.code, EXIT.auditInvalidResume)
      const point = refused.report.invalidResumePoints[0]!
      assert.equal(refused.report.invalidResumePoints.length, 1)
      assert.deepEqual({file: point.file, pos: point.pos, line: point.line}, {file: run1.checkpoint.file, pos: run1.checkpoint.pos, line: run1.deliveredBefore + 1})
      assert.equal(point.rotateOf?.file, first)
      assert.equal(point.rotateOf?.rotateEndPos, run1.checkpoint.pos)
      if (point.reason === 'not-event-boundary') {
        assert.match(run1.restartError ?? '', /middle of event|bogus|stopped streaming/, 'MariaDB refused to start inside an event')
        assert.ok(point.insideEvent !== null && point.insideEvent.startPos < point.pos && point.pos < point.insideEvent.endPos)
      }
      assert.ok(point.wouldSkip.transactions > 0 && point.wouldSkip.listed.every((event) => event.file === point.file && event.startPos < point.pos))

      // Variant 2: a transaction of the new file ends exactly there: the server accepts the restart and
      // silently skips everything before it; the audit names those transactions as lost.
      await conn.query('CREATE TABLE rot2 (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT)')
      const second = await currentFile(db.adminDsn)
      for (let i = 0; i < 5; i++) await conn.query("INSERT INTO rot2 (v) VALUES (REPEAT('a', 50))")
      await conn.query('FLUSH BINARY LOGS')
      const [logs] = await conn.query('SHOW BINARY LOGS')
      const rotateEnd = Number((logs as Array<{Log_name: string; File_size: number}>).find((l) => l.Log_name === second)!.File_size)
      await alignBoundaryAt(db.adminDsn, 'rot2', rotateEnd)
      for (let i = 0; i < 10; i++) await conn.query("INSERT INTO rot2 (v) VALUES (REPEAT('c', 50))")
      const log2 = join(work, 'rotate-skipped.log')
      const run2 = await runRotateCheckpointConsumer(db.replicationDsn, second, log2)
      assert.equal(run2.restartError, null, 'the server accepted the restart')
      assert.equal(run2.firstEventAfterRestart?.startPos, rotateEnd)
      const skipped = await audit(['--source', db.replicationDsn, '--positions', log2, '--list-limit', '10000'])
      assert.equal(skipped.code, EXIT.auditInvalidResume)
      const point2 = skipped.report.invalidResumePoints[0]!
      assert.equal(point2.reason, 'rotate-position-with-new-file')
      assert.equal(point2.pos, rotateEnd)
      const skippedGtids = [...new Set(point2.wouldSkip.listed.map((event) => event.gtid))]
      const lostGtids = [...new Set(skipped.report.lost.map((event) => event.gtid))]
      assert.ok(skippedGtids.length >= 3)
      assert.deepEqual(lostGtids, skippedGtids, 'what the restart skipped is exactly what was lost')
      assert.equal(skipped.report.lostTotals.transactions, point2.wouldSkip.transactions)

      // The same checkpoint kept in a table on the target: read with one SELECT, judged the same way.
      await conn.query('CREATE TABLE binlog_checkpoint (pipeline VARCHAR(32) PRIMARY KEY, binlog_file VARCHAR(64), binlog_pos BIGINT)')
      await conn.query('INSERT INTO binlog_checkpoint VALUES (?, ?, ?)', ['orders', run2.checkpoint.file, run2.checkpoint.pos])
      const fromTable = await audit(['--source', db.replicationDsn, '--checkpoint', db.adminDsn, '--checkpoint-table', 'ferrydiag.binlog_checkpoint'])
      assert.equal(fromTable.code, EXIT.auditInvalidResume)
      assert.equal(fromTable.report.consumer.kind, 'checkpoint-table')
      assert.deepEqual(
        fromTable.report.invalidResumePoints.map((p) => [p.line, p.reason, p.pos, p.wouldSkip.transactions]),
        [[1, 'rotate-position-with-new-file', rotateEnd, point2.wouldSkip.transactions]],
      )
    } finally {
      await conn.end()
    }
  })

  it('tells a torn tail from a corrupt event in copies of a binlog file, with offsets; the intact file is complete', async (t) => {
    const db = await plain.get(t)
    if (!db) return
    const conn = await openConnection(db.adminDsn)
    let file: string
    try {
      await conn.query('CREATE TABLE copies (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT)')
      file = await currentFile(db.adminDsn)
      for (let i = 0; i < 30; i++) await conn.query("INSERT INTO copies (v) VALUES (REPEAT('x', 100))")
      await conn.query('FLUSH BINARY LOGS')
    } finally {
      await conn.end()
    }
    const copies = await makeDamagedCopies(join(db.datadir, file), work)
    const intact = await audit(['--binlog-file', join(db.datadir, file), '--verify-checksums'])
    assert.equal(intact.code, 0)
    assert.equal(intact.report.verdict, 'complete')
    assert.ok(intact.report.eventsChecksummed > 100)

    const torn = await audit(['--binlog-file', copies.truncatedPath, '--verify-checksums'])
    assert.equal(torn.code, EXIT.auditCorrupt)
    assert.deepEqual(
      torn.report.checksumProblems.map((p) => ({kind: p.kind, offset: p.offset, declared: p.declaredSizeBytes, available: p.availableBytes})),
      [{kind: 'torn-tail', offset: copies.truncatedAt.offset, declared: copies.truncatedAt.sizeBytes, available: copies.truncatedAt.bytesLeft}],
    )
    const flipped = await audit(['--binlog-file', copies.flippedPath, '--verify-checksums'])
    assert.equal(flipped.code, EXIT.auditCorrupt)
    assert.deepEqual(
      flipped.report.checksumProblems.map((p) => ({kind: p.kind, offset: p.offset, type: p.type})),
      [{kind: 'crc-mismatch', offset: copies.flippedAt.eventOffset, type: copies.flippedAt.type}],
    )
    const text = await runCli(['binlog', 'audit', '--binlog-file', copies.flippedPath, '--binlog-file', copies.truncatedPath, '--verify-checksums'])
    assert.match(text.stdout, new RegExp(`offset ${copies.flippedAt.eventOffset}: Write_rows_v1 event of \\d+ bytes is corrupt: CRC32 stored`))
    assert.match(text.stdout, new RegExp(`offset ${copies.truncatedAt.offset}: torn tail: the event declares ${copies.truncatedAt.sizeBytes} bytes, only ${copies.truncatedAt.bytesLeft} remain`))
  })

  describe('bad input: one line, distinct exit status, nothing written', () => {
    it('unreachable source', async () => {
      const server = createServer()
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const port = (server.address() as {port: number}).port
      await new Promise<void>((resolve) => server.close(() => resolve()))
      const positions = join(work, 'one.log')
      writeFileSync(positions, 'binlog.000001:400\n')
      const result = await auditFails(['--source', `mysql://u:secret@127.0.0.1:${port}`, '--positions', positions])
      assert.equal(result.code, EXIT.mysqlUnreachable)
      assert.match(assertOneLine(result.stderr), /connection refused/)
      assert.doesNotMatch(result.stderr + result.stdout, /secret/)
    })

    it('missing BINLOG MONITOR, then missing REPLICATION SLAVE: the grant is named', async (t) => {
      const db = await plain.get(t)
      if (!db) return
      const positions = join(work, 'grants.log')
      writeFileSync(positions, `${await currentFile(db.adminDsn)}:400\n`)
      const selectOnly = await createUser(db, 'audit_select', 'pw1', ['SELECT ON *.*'])
      const noMonitor = await auditFails(['--source', selectOnly, '--positions', positions])
      assert.equal(noMonitor.code, EXIT.mysqlGrant)
      assert.match(assertOneLine(noMonitor.stderr), /BINLOG MONITOR/)
      // No database in the DSN: the account may not use any.
      const monitorOnly = (await createUser(db, 'audit_monitor', 'pw2', ['BINLOG MONITOR ON *.*'])).replace(/\/ferrydiag$/, '')
      const noSlave = await auditFails(['--source', monitorOnly, '--positions', positions])
      assert.equal(noSlave.code, EXIT.mysqlGrant)
      assert.match(assertOneLine(noSlave.stderr), /REPLICATION SLAVE/)
    })

    it('a positions log that does not parse names its line', async () => {
      const positions = join(work, 'bad.log')
      writeFileSync(positions, '# consumer positions\nbinlog.000001:400\n\nbinlog.000001:12x\n')
      const result = await auditFails(['--source', 'mysql://u:p@127.0.0.1:1', '--positions', positions])
      assert.equal(result.code, EXIT.badPositions)
      assert.match(assertOneLine(result.stderr), /line 4: expected file:end_pos .* got `binlog\.000001:12x`/)
    })

    it('a range whose files were purged names them', async (t) => {
      const db = await plain.get(t)
      if (!db) return
      const conn = await openConnection(db.adminDsn)
      let purgedFile: string
      try {
        purgedFile = await currentFile(db.adminDsn)
        await conn.query('FLUSH BINARY LOGS')
        await conn.query('FLUSH BINARY LOGS')
        await conn.query(`PURGE BINARY LOGS TO '${await currentFile(db.adminDsn)}'`)
      } finally {
        await conn.end()
      }
      const positions = join(work, 'purged.log')
      writeFileSync(positions, `${purgedFile}:400\n`)
      const result = await auditFails(['--source', db.replicationDsn, '--positions', positions])
      assert.equal(result.code, EXIT.binlogPurged)
      assert.match(assertOneLine(result.stderr), new RegExp(`no longer has ${purgedFile.replace('.', '\\.')}.*purged`))
    })

    it('a source that goes away mid-read', async (t) => {
      const db = await plain.get(t)
      if (!db) return
      const conn = await openConnection(db.adminDsn)
      const first = await currentFile(db.adminDsn)
      try {
        await conn.query('CREATE TABLE IF NOT EXISTS bulk (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT)')
        for (let i = 0; i < 100; i++) await conn.query("INSERT INTO bulk (v) VALUES (REPEAT('z', 8000))")
      } finally {
        await conn.end()
      }
      // A proxy that cuts both sides once 200 kB of the server's answer went through: the source "goes away".
      const proxy = await cuttingProxy(db, 200_000)
      try {
        const positions = join(work, 'lost-source.log')
        writeFileSync(positions, `${first}:4\n${await currentFile(db.adminDsn)}:4\n`)
        const dsn = db.replicationDsn.replace(`:${db.port}/`, `:${proxy.port}/`)
        const result = await auditFails(['--source', dsn, '--positions', positions])
        assert.equal(result.code, EXIT.mysqlLost, result.stderr)
        assert.match(assertOneLine(result.stderr), /Lost the binlog stream/)
        assert.ok(proxy.cut(), 'the proxy did cut the stream')
      } finally {
        proxy.server.close()
      }
    })
  })
})

async function cuttingProxy(db: MariaDbInstance, afterBytes: number): Promise<{server: Server; port: number; cut(): boolean}> {
  let cut = false
  // Only the connection that streams the binlog carries this much; short query connections pass.
  const server = createServer((client: Socket) => {
    const upstream = connect(db.port, db.host)
    let bytes = 0
    upstream.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > afterBytes) {
        cut = true
        client.destroy()
        upstream.destroy()
        return
      }
      client.write(chunk)
    })
    client.on('data', (chunk: Buffer) => upstream.write(chunk))
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {server, port: (server.address() as {port: number}).port, cut: () => cut}
}
