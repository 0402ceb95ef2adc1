// The throwaway MariaDB harness: a source/target pair with ROW binlogs and a replication account that
// can read the binlog position, and stop() that leaves neither process nor datadir behind.

import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {after, describe, it, type TestContext} from 'node:test'
import {setTimeout as sleep} from 'node:timers/promises'
import {DatabaseUnavailableError, databaseOrSkip, ensureMariaDbInstalled, openConnection, sharedDatabase, startSourceAndTarget} from './helpers/mariadb.js'

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('mariadb harness', () => {
  const db = sharedDatabase(() => startSourceAndTarget())
  after(() => db.stop())

  it('starts a source and a target on distinct ports and server ids with ROW binlogs', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const {source, target} = pair
    assert.notEqual(source.port, target.port)
    assert.notEqual(source.serverId, target.serverId)
    assert.match(source.adminDsn, /^mysql:\/\/root:[^@]+@127\.0\.0\.1:\d+\/ferrydiag$/)
    for (const instance of [source, target]) {
      const conn = await openConnection(instance.adminDsn)
      try {
        const [rows] = await conn.query(
          'SELECT @@log_bin AS logBin, @@binlog_format AS format, @@binlog_row_image AS image, @@server_id AS serverId',
        )
        assert.deepEqual({...(rows as object[])[0]}, {logBin: 1, format: 'ROW', image: 'FULL', serverId: instance.serverId})
      } finally {
        await conn.end()
      }
    }
  })

  it('gives a replication account that can read SHOW MASTER STATUS but not write', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const conn = await openConnection(pair.source.replicationDsn)
    try {
      const [status] = await conn.query('SHOW MASTER STATUS')
      assert.match(String((status as Array<{File: string}>)[0]!.File), /^binlog\.\d{6}$/)
      const [grants] = await conn.query('SHOW GRANTS')
      const text = JSON.stringify(grants)
      assert.match(text, /REPLICATION SLAVE/)
      assert.match(text, /BINLOG MONITOR|REPLICATION CLIENT/)
      await assert.rejects(conn.query('CREATE TABLE ferrydiag.nope (id INT)'), {code: 'ER_TABLEACCESS_DENIED_ERROR'})
    } finally {
      await conn.end()
    }
  })

  it('stop() ends mariadbd and removes its datadir, and is idempotent', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    if (pair.source.external) return t.skip('servers given by env DSN are not ours to stop')
    const {source, target} = pair
    assert.ok(isAlive(source.pid) && isAlive(target.pid))
    const startedMs = Date.now()
    await pair.stop()
    const stopMs = Date.now() - startedMs
    assert.equal(isAlive(source.pid), false, `source mariadbd ${source.pid} still running`)
    assert.equal(isAlive(target.pid), false, `target mariadbd ${target.pid} still running`)
    assert.equal(existsSync(source.datadir), false)
    assert.equal(existsSync(target.datadir), false)
    assert.ok(stopMs < 10_000, `stop took ${stopMs} ms`)
    await pair.stop()
  })
})

describe('databaseOrSkip', () => {
  // A stand-in for the TestContext: only skip() is used.
  function fakeContext(): {t: TestContext; skipped: string[]} {
    const skipped: string[] = []
    return {t: {skip: (message?: string) => void skipped.push(message ?? '')} as unknown as TestContext, skipped}
  }
  const unavailable = (): Promise<never> => Promise.reject(new DatabaseUnavailableError('no mariadbd here'))

  it('skips with the reason when CI is not set', async () => {
    const saved = process.env.CI
    delete process.env.CI
    try {
      const {t, skipped} = fakeContext()
      assert.equal(await databaseOrSkip(t, unavailable), undefined)
      assert.deepEqual(skipped, ['no database: no mariadbd here'])
    } finally {
      if (saved !== undefined) process.env.CI = saved
    }
  })

  it('fails with the reason when CI is set', async () => {
    const saved = process.env.CI
    process.env.CI = 'true'
    try {
      const {t, skipped} = fakeContext()
      await assert.rejects(databaseOrSkip(t, unavailable), /database required in CI but unavailable: no mariadbd here/)
      assert.deepEqual(skipped, [])
    } finally {
      if (saved === undefined) delete process.env.CI
      else process.env.CI = saved
    }
  })

  it('passes the database through when it can be had', async () => {
    const {t, skipped} = fakeContext()
    assert.equal(await databaseOrSkip(t, Promise.resolve(42)), 42)
    assert.deepEqual(skipped, [])
  })
})

describe('mariadb harness cleanup', () => {
  it('finds the installed server', (t) => {
    const found = ensureMariaDbInstalled()
    if (found.status === 'missing') {
      if (process.env.CI) assert.fail(`mariadbd missing in CI: ${found.reason}`)
      return t.skip(found.reason)
    }
    assert.match(found.serverBinary ?? '', /\/(mariadbd|mysqld)$/)
    assert.match(found.version ?? '', /^\d+\.\d+\.\d+/)
  })

  it('leaves no mariadbd or datadir behind when the test process is killed with SIGKILL', async (t) => {
    const helper = new URL('./helpers/mariadb.js', import.meta.url).href
    const script = `import {startMariaDb} from ${JSON.stringify(helper)}
      const instance = await startMariaDb({name: 'orphan'})
      console.log(JSON.stringify({pid: instance.pid, datadir: instance.datadir}))
      setInterval(() => {}, 1000)`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const started = await databaseOrSkip(
      t,
      new Promise<{pid: number; datadir: string}>((resolve, reject) => {
        let stdout = ''
        child.stdout.on('data', (chunk) => {
          stdout += chunk
          if (stdout.includes('\n')) resolve(JSON.parse(stdout))
        })
        child.once('exit', (code) => reject(new Error(`child exited ${code} before starting: ${stderr.trim().split('\n').slice(-3).join(' | ')}`)))
      }),
    )
    if (!started) {
      child.kill('SIGKILL')
      return
    }
    assert.ok(isAlive(started.pid))
    child.kill('SIGKILL')
    // The guard notices its stdin closing, TERMs mariadbd (~50 ms) and removes the directory.
    for (let i = 0; i < 100 && (isAlive(started.pid) || existsSync(started.datadir)); i++) await sleep(100)
    assert.equal(isAlive(started.pid), false, `mariadbd ${started.pid} outlived its test process`)
    assert.equal(existsSync(started.datadir), false, `${started.datadir} left behind`)
  })
})
