// src/mysql: DSN parsing, connect error mapping, source status and binlog distance, grant and format
// checks, and counting row events on a real MariaDB binlog.

import assert from 'node:assert/strict'
import {createServer, type Server, type Socket} from 'node:net'
import {after, describe, it} from 'node:test'
import {FerrydiagError, EXIT} from '../src/errors.js'
import {BinlogCounter, COUNTER_SERVER_ID_MAX, COUNTER_SERVER_ID_MIN, pickReplicationServerId} from '../src/mysql/binlog-counter.js'
import {connectMysql} from '../src/mysql/connect.js'
import {maskDsn, parseDsn, toConnectionOptions} from '../src/mysql/dsn.js'
import {binlogBytesBehind, checkRowFormat, checkSourceGrants, readSourceStatus, type BinaryLogFile} from '../src/mysql/source-status.js'
import {createUser, openConnection, sharedDatabase, startMariaDb, startSourceAndTarget} from './helpers/mariadb.js'

/** Asserts a FerrydiagError with the given code, and returns it for more checks. */
async function rejectsWith(promise: Promise<unknown>, code: FerrydiagError['code']): Promise<FerrydiagError> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof FerrydiagError, `expected FerrydiagError, got ${String(error)}`)
    assert.equal(error.code, code, error.message)
    assert.equal(error.exit, EXIT[code])
    assert.doesNotMatch(error.message, /\n/, 'one-line message')
    assert.ok(error.suggestion.length > 0)
    return error
  }
  assert.fail(`expected rejection with ${code}`)
}

function throwsWith(fn: () => unknown, code: FerrydiagError['code']): FerrydiagError {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof FerrydiagError, `expected FerrydiagError, got ${String(error)}`)
    assert.equal(error.code, code, error.message)
    return error
  }
  assert.fail(`expected ${code}`)
}

describe('parseDsn', () => {
  it('parses the URL form with a percent-encoded password', () => {
    const dsn = parseDsn('mysql://repl:p%40ss%3Aw%2Fd@db.example.com:3307/shop?connectTimeout=2s&charset=utf8mb4')
    assert.deepEqual(
      {...dsn},
      {
        user: 'repl',
        password: 'p@ss:w/d',
        host: 'db.example.com',
        port: 3307,
        database: 'shop',
        connectTimeoutMs: 2000,
        charset: 'utf8mb4',
        tls: 'off',
        masked: 'mysql://repl:****@db.example.com:3307/shop?connectTimeout=2s&charset=utf8mb4',
      },
    )
    const options = toConnectionOptions(dsn)
    assert.equal(options.host, 'db.example.com')
    assert.equal(options.port, 3307)
    assert.equal(options.password, 'p@ss:w/d')
    assert.equal(options.connectTimeout, 2000)
  })

  it('defaults the port, allows no database, a raw @ in the password, IPv6 and mariadb://', () => {
    assert.deepEqual(
      [parseDsn('mysql://u:pw@host').port, parseDsn('mysql://u:pw@host').database, parseDsn('mysql://u@host/').password],
      [3306, undefined, ''],
    )
    assert.equal(parseDsn('mysql://u:a@b@127.0.0.1:3310/db').password, 'a@b')
    assert.deepEqual([parseDsn('mariadb://u:p@[::1]:3309/x').host, parseDsn('mariadb://u:p@[::1]:3309/x').port], ['::1', 3309])
    assert.deepEqual(toConnectionOptions(parseDsn('mysql://u:p@h/db?tls=skip-verify')).ssl, {rejectUnauthorized: false})
    const socket = parseDsn('mysql://u:p@localhost/db?socket=/run/mysqld/mysqld.sock')
    assert.equal(toConnectionOptions(socket).socketPath, '/run/mysqld/mysqld.sock')
    assert.equal(toConnectionOptions(socket).host, undefined)
  })

  it("parses Go's tcp() and unix() forms, password taken literally", () => {
    const tcp = parseDsn('repl:se%cret@tcp(10.0.0.5:3316)/orders?timeout=500ms')
    assert.deepEqual([tcp.user, tcp.password, tcp.host, tcp.port, tcp.database, tcp.connectTimeoutMs], ['repl', 'se%cret', '10.0.0.5', 3316, 'orders', 500])
    assert.equal(tcp.masked, 'repl:****@tcp(10.0.0.5:3316)/orders?timeout=500ms')
    const unix = parseDsn('root:x@unix(/tmp/my.sock)/app')
    assert.deepEqual([unix.socketPath, unix.database], ['/tmp/my.sock', 'app'])
  })

  const badCases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['postgres://u:secret1@h/db', /scheme/],
    ['mysql://u:secret1@host:99999/db', /port number 1-65535, got `99999`/],
    ['mysql://u:secret1@host:abc/db', /got `abc`/],
    ['mysql://u:secret1@/db', /no host/],
    ['mysql://host:3306/db', /no user/],
    ['mysql://u:secret1@host/db?sslmode=require', /unknown parameter `sslmode`/],
    ['mysql://u:secret1@host/db?connectTimeout=soon', /connectTimeout/],
    ['mysql://u:secret1@fe80::1:3306/db', /IPv6.*brackets/],
    ['u:secret1@host:3306/db', /tcp\(host:port\)/],
    ['mysql://u:%ZZsecret1@host/db', /password has a malformed %-escape/],
  ]
  for (const [dsn, problem] of badCases) {
    it(`rejects ${JSON.stringify(dsn)} naming the problem, password masked`, () => {
      const error = throwsWith(() => parseDsn(dsn), 'badDsn')
      assert.match(error.message, problem)
      assert.doesNotMatch(error.message, /secret1/)
      assert.equal(error.exit, EXIT.badDsn)
    })
  }

  it('masks passwords in strings that do not parse', () => {
    assert.equal(maskDsn('mysql://u:hunter2@h:1/db'), 'mysql://u:****@h:1/db')
    assert.equal(maskDsn('u:hun@ter2@tcp(h:1)/db'), 'u:****@tcp(h:1)/db')
    assert.equal(maskDsn('mysql://nopassword@h/db'), 'mysql://nopassword@h/db')
  })
})

describe('binlogBytesBehind', () => {
  const logs: BinaryLogFile[] = [
    {name: 'binlog.000007', sizeBytes: 1000},
    {name: 'binlog.000008', sizeBytes: 500},
    {name: 'binlog.000009', sizeBytes: 300},
  ]
  it('counts within one file, across rotations, and backwards', () => {
    assert.equal(binlogBytesBehind(logs, {file: 'binlog.000008', offset: 100}, {file: 'binlog.000008', offset: 450}), 350)
    assert.equal(binlogBytesBehind(logs, {file: 'binlog.000007', offset: 900}, {file: 'binlog.000009', offset: 200}), 100 + 500 + 200)
    assert.equal(binlogBytesBehind(logs, {file: 'binlog.000009', offset: 200}, {file: 'binlog.000007', offset: 900}), -800)
  })
  it('returns null for a file the server no longer lists', () => {
    assert.equal(binlogBytesBehind(logs, {file: 'binlog.000003', offset: 4}, {file: 'binlog.000009', offset: 200}), null)
  })
})

// A TCP server that accepts and never speaks: the handshake must time out.
async function silentServer(): Promise<{server: Server; port: number; sockets: Socket[]}> {
  const sockets: Socket[] = []
  const server = createServer((socket) => sockets.push(socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {server, port: (server.address() as {port: number}).port, sockets}
}

describe('connectMysql error mapping (no server needed)', () => {
  it('maps a refused port to mysqlUnreachable without the password', async () => {
    const {server, port} = await silentServer()
    await new Promise((resolve) => server.close(resolve)) // now nothing listens on port
    const error = await rejectsWith(connectMysql(`mysql://u:topsecret@127.0.0.1:${port}/db`, {role: 'source'}), 'mysqlUnreachable')
    assert.match(error.message, new RegExp(`source at 127\\.0\\.0\\.1:${port}: connection refused`))
    assert.doesNotMatch(error.message + error.suggestion, /topsecret/)
  })

  it('gives up on a server that never answers within the connect timeout', async () => {
    const {server, port, sockets} = await silentServer()
    try {
      const startedMs = Date.now()
      const error = await rejectsWith(connectMysql(`mysql://u:p@127.0.0.1:${port}/db`, {connectTimeoutMs: 300}), 'mysqlUnreachable')
      assert.match(error.message, /no answer within 300 ms/)
      assert.ok(Date.now() - startedMs < 2000)
    } finally {
      for (const socket of sockets) socket.destroy()
      server.close()
    }
  })

  it('rejects a malformed DSN before connecting', async () => {
    await rejectsWith(connectMysql('mysql://u:p@host:0/db'), 'badDsn')
  })
})

describe('src/mysql against MariaDB', () => {
  const db = sharedDatabase(() => startSourceAndTarget())
  after(() => db.stop())

  it('connects with the DSN and maps a wrong password to mysqlAuth', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const conn = await connectMysql(pair.source.adminDsn)
    try {
      const [rows] = await conn.query('SELECT 1 + 1 AS two')
      assert.equal((rows as Array<{two: number}>)[0]!.two, 2)
    } finally {
      await conn.end()
    }
    const wrong = `mysql://ferry_repl:not-the-password@127.0.0.1:${pair.source.port}/ferrydiag`
    const error = await rejectsWith(connectMysql(wrong, {role: 'source'}), 'mysqlAuth')
    assert.match(error.message, /refused user `ferry_repl`/)
    assert.doesNotMatch(error.message, /not-the-password/)
    const noDb = await rejectsWith(connectMysql(pair.source.replicationDsn.replace(/\/ferrydiag$/, '/no_such_db')), 'badDsn')
    assert.match(noDb.message, /no database `no_such_db`/)
  })

  it('maps a user without REPLICATION CLIENT to mysqlGrant naming both privilege names', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const dsn = await createUser(pair.source, 'ferry_plain', 'plain-pw', ['SELECT ON *.*'])
    const conn = await connectMysql(dsn)
    try {
      const error = await rejectsWith(checkSourceGrants(conn), 'mysqlGrant')
      assert.match(error.message, /REPLICATION CLIENT/)
      assert.match(error.message, /BINLOG MONITOR/)
      await rejectsWith(readSourceStatus(conn), 'mysqlGrant')
    } finally {
      await conn.end()
    }
    const repl = await connectMysql(pair.source.replicationDsn)
    try {
      await checkSourceGrants(repl)
      assert.deepEqual(await checkRowFormat(repl), {binlogFormat: 'ROW', binlogRowImage: 'FULL'})
    } finally {
      await repl.end()
    }
  })

  it('reads the binlog end and counts bytes across a FLUSH BINARY LOGS rotation', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const admin = await openConnection(pair.source.adminDsn, {multipleStatements: true})
    const repl = await connectMysql(pair.source.replicationDsn)
    try {
      await admin.query('CREATE TABLE IF NOT EXISTS rotation (id INT PRIMARY KEY AUTO_INCREMENT, note VARCHAR(200))')
      const before = await readSourceStatus(repl)
      assert.equal(before.flavor, 'mariadb')
      assert.equal(before.serverId, pair.source.serverId)
      const lastBefore = before.binaryLogs.at(-1)!
      assert.deepEqual(lastBefore, {name: before.end.file, sizeBytes: before.end.offset})

      await admin.query("INSERT INTO rotation (note) VALUES (REPEAT('a', 150)), (REPEAT('b', 150))")
      await admin.query('FLUSH BINARY LOGS')
      await admin.query("INSERT INTO rotation (note) VALUES (REPEAT('c', 150))")
      const afterRotation = await readSourceStatus(repl)

      assert.notEqual(afterRotation.end.file, before.end.file)
      assert.ok(afterRotation.binaryLogs.length >= before.binaryLogs.length + 1)
      assert.ok(afterRotation.end.gtid && afterRotation.end.gtid !== before.end.gtid, `gtid ${afterRotation.end.gtid}`)
      // Independent check: the binlog only grew, so the distance is the growth of the total size.
      const total = (logs: BinaryLogFile[]): number => logs.reduce((sum, log) => sum + log.sizeBytes, 0)
      const grownBytes = total(afterRotation.binaryLogs) - total(before.binaryLogs)
      const behind = binlogBytesBehind(afterRotation.binaryLogs, before.end, afterRotation.end)
      assert.equal(behind, grownBytes)
      assert.ok(behind! > 300, `two 150-byte rows and a rotation are more than ${behind} bytes`)
    } finally {
      await repl.end()
      await admin.end()
    }
  })

  it('picks a replication server id in the high range, avoiding ids in use', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const conn = await connectMysql(pair.source.replicationDsn)
    try {
      const picks = [pair.source.serverId, 2_000_000_123]
      const choice = await pickReplicationServerId(conn, () => picks.shift()!)
      assert.ok(choice.idsInUse.includes(pair.source.serverId))
      assert.equal(choice.serverId, 2_000_000_123)
      const random = await pickReplicationServerId(conn)
      assert.ok(random.serverId >= COUNTER_SERVER_ID_MIN && random.serverId <= COUNTER_SERVER_ID_MAX)
    } finally {
      await conn.end()
    }
  })

  it('counts exactly the rows and row events written after it started', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const admin = await openConnection(pair.source.adminDsn)
    try {
      await admin.query('CREATE TABLE IF NOT EXISTS counted (id INT PRIMARY KEY, v INT)')
      await admin.query('INSERT INTO counted VALUES (1000, 0), (1001, 0)') // before start: not counted
      const counter = await BinlogCounter.start(pair.source.replicationDsn)
      assert.ok(counter.serverId >= COUNTER_SERVER_ID_MIN)
      await admin.query('INSERT INTO counted VALUES (1, 1), (2, 1), (3, 1), (4, 1), (5, 1)') // 5 rows, 1 event
      for (const id of [6, 7, 8]) await admin.query('INSERT INTO counted VALUES (?, 2)', [id]) // 3 rows, 3 events
      await admin.query('UPDATE counted SET v = 9 WHERE id IN (1, 2)') // 2 rows, 1 event
      await admin.query('DELETE FROM counted WHERE id = 8') // 1 row, 1 event
      await counter.waitForRows(11, 10_000)
      // Give a stray extra event the chance to arrive before the totals are read.
      await admin.query('SELECT SLEEP(0.2)')
      const summary = await counter.stop()
      assert.equal(summary.rows, 11)
      assert.equal(summary.rowEvents, 6)
      assert.deepEqual(summary.rowsByKind, {write: 8, update: 2, delete: 1})
      assert.deepEqual(summary.rowsByTable, {'ferrydiag.counted': 11})
      assert.equal(summary.buckets.reduce((sum, bucket) => sum + bucket.rows, 0), 11)
      assert.equal(summary.buckets.reduce((sum, bucket) => sum + bucket.rowEvents, 0), 6)
      const nowSec = Math.floor(Date.now() / 1000)
      for (const bucket of summary.buckets) assert.ok(Math.abs(bucket.atSec - nowSec) < 30, `bucket second ${bucket.atSec}`)
      assert.equal(summary.error, undefined)
      // The dump thread is gone from the source after stop().
      const [threads] = await admin.query('SHOW PROCESSLIST')
      const dumps = (threads as Array<{Command: string}>).filter((row) => row.Command.startsWith('Binlog Dump'))
      assert.equal(dumps.length, 0, JSON.stringify(dumps))
    } finally {
      await admin.end()
    }
  })

  it('reports mysqlLost when another stream takes over its server id', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const errors: FerrydiagError[] = []
    const first = await BinlogCounter.start(pair.source.replicationDsn, {serverId: 3_000_000_001, onError: (e) => errors.push(e)})
    const second = await BinlogCounter.start(pair.source.replicationDsn, {serverId: 3_000_000_001})
    try {
      const admin = await openConnection(pair.source.adminDsn)
      try {
        // The server notices the duplicate when it next sends to the first stream.
        await admin.query('CREATE TABLE IF NOT EXISTS collide (id INT PRIMARY KEY)')
        await admin.query('INSERT INTO collide VALUES (1)')
      } finally {
        await admin.end()
      }
      await second.waitForRows(1, 10_000)
      for (let i = 0; i < 50 && first.error === undefined; i++) await new Promise((r) => setTimeout(r, 100))
      assert.ok(first.error, 'the first stream should have been closed by the server')
      assert.equal(first.error.code, 'mysqlLost', first.error.message)
      assert.match(first.error.message, /server id 3000000001/)
      assert.equal(errors.length, 1)
      assert.equal(second.error, undefined)
    } finally {
      await first.stop()
      await second.stop()
    }
  })
})

describe('checkRowFormat against a STATEMENT-format source', () => {
  const db = sharedDatabase(() => startMariaDb({name: 'statement', binlogFormat: 'STATEMENT'}))
  after(() => db.stop())

  it('throws mysqlConfig naming the format', async (t) => {
    const instance = await db.get(t)
    if (!instance) return
    const conn = await connectMysql(instance.replicationDsn)
    try {
      const error = await rejectsWith(checkRowFormat(conn), 'mysqlConfig')
      assert.match(error.message, /binlog_format is STATEMENT, expected ROW/)
    } finally {
      await conn.end()
    }
  })
})
