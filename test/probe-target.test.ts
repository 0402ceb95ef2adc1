// The active probe against a real MariaDB target: it writes only into its own scratch table, copies no
// triggers or foreign keys, drops the table (also after Ctrl-C mid-probe), and fails clearly for a missing
// --like table (noSuchTable) and for an account without CREATE (mysqlGrant, naming the privilege).
import assert from 'node:assert/strict'
import {once} from 'node:events'
import {after, before, describe, it} from 'node:test'
import type {Connection} from 'mysql2/promise'
import {startLatencyProxy, type LatencyProxy} from '../fixtures/pipeline/latency-proxy.js'
import type {TuneBatchResult} from '../src/model/tune-batch.js'
import {EXIT} from '../src/errors.js'
import {PROBE_TABLE_PREFIX, probeTarget} from '../src/mysql/probe-target.js'
import {createUser, openConnection, sharedDatabase, startMariaDb, type MariaDbInstance} from './helpers/mariadb.js'
import {startPipeline, type RunningPipeline} from './helpers/pipeline-process.js'
import {runCli} from './helpers/run-node.js'

const db = sharedDatabase(() => startMariaDb({name: 'probe'}))
let pipeline: RunningPipeline | undefined
let proxy: LatencyProxy | undefined

after(async () => {
  await proxy?.close()
  await pipeline?.stop()
  await db.stop()
})

async function prepare(instance: MariaDbInstance): Promise<Connection> {
  const conn = await openConnection(instance.adminDsn, {multipleStatements: true})
  await conn.query(`
    CREATE TABLE IF NOT EXISTS customers (id INT PRIMARY KEY);
    CREATE TABLE IF NOT EXISTS audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64));
    CREATE TABLE IF NOT EXISTS orders (
      id BIGINT AUTO_INCREMENT PRIMARY KEY,
      customer_id INT NOT NULL,
      status ENUM('new','paid') NOT NULL,
      total DECIMAL(10,2) NOT NULL,
      ref VARCHAR(24) NOT NULL,
      created_at DATETIME NOT NULL,
      payload JSON NULL,
      UNIQUE KEY ref_unique (ref),
      CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
    );
    DROP TRIGGER IF EXISTS orders_audit;
    CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (note) VALUES ('order');
  `)
  return conn
}

async function probeTables(conn: Connection): Promise<string[]> {
  const [rows] = (await conn.query(
    'SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_NAME LIKE ?',
    [`${PROBE_TABLE_PREFIX.replace(/_/g, '\\_')}%`],
  )) as unknown as [Array<{t: string}>]
  return rows.map((r) => r.t)
}

describe('probe-target on MariaDB', {concurrency: false}, () => {
  before(async () => {
    pipeline = await startPipeline(['--simulate', '--scenario=slow-target'])
  })

  it('writes batches into its own table only, copies no trigger or foreign key, and drops it', async (t) => {
    const instance = await db.get(t)
    if (!instance) return
    const conn = await prepare(instance)
    try {
      const seen: string[] = []
      const result = await probeTarget({
        dsn: instance.adminDsn,
        like: `${instance.database}.orders`,
        maxBatchSize: 50,
        repeats: 2,
        onTableCreated: (name) => seen.push(name),
      })
      assert.equal(seen.length, 1)
      assert.match(result.table, /^`ferrydiag`\.`_ferrydiag_probe_\d+_\d+_[0-9a-f]{6}`$/)
      assert.ok(result.completed && result.dropped)
      assert.equal(result.samples.length, 2 * new Set(result.samples.map((s) => s.events)).size)
      assert.ok(result.samples.every((s) => s.ok && s.ms > 0))
      assert.deepEqual(result.columnsLeftToDefaults, ['id'])
      // The trigger on orders did not fire (not copied), orders itself untouched, and nothing left.
      const [[audit]] = (await conn.query('SELECT COUNT(*) AS n FROM audit')) as unknown as [[{n: number}]]
      const [[orders]] = (await conn.query('SELECT COUNT(*) AS n FROM orders')) as unknown as [[{n: number}]]
      assert.equal(Number(audit.n), 0)
      assert.equal(Number(orders.n), 0)
      assert.deepEqual(await probeTables(conn), [])
    } finally {
      await conn.end()
    }
  })

  it('tune-batch --probe-target fits m and o from the probe and leaves no table', async (t) => {
    const instance = await db.get(t)
    if (!instance) return
    const conn = await prepare(instance)
    try {
      const run = await runCli(['tune-batch', '--inspect', pipeline!.fields.inspect, '--probe-target', instance.adminDsn, '--like', 'ferrydiag.orders', '--probe-max-size', '200', '--duration', '1s', '--json'])
      assert.equal(run.code, 0, run.stderr)
      const result = JSON.parse(run.stdout) as TuneBatchResult
      assert.equal(result.mode, 'probe')
      assert.equal(result.fit.status, 'fitted')
      assert.ok(result.model!.mMsPerEvent > 0 && result.model!.oMs > 0)
      assert.ok(result.samples.used >= 40)
      assert.equal(result.currentBatchSize, 10)
      assert.deepEqual(await probeTables(conn), [])
    } finally {
      await conn.end()
    }
  })

  it('drops its table when interrupted with SIGINT mid-probe', async (t) => {
    const instance = await db.get(t)
    if (!instance) return
    const conn = await prepare(instance)
    // 5 ms each way makes every batch (BEGIN, INSERT, COMMIT) take ≥ 30 ms: time to interrupt it.
    proxy = await startLatencyProxy({host: instance.host, port: instance.port}, 5)
    const dsn = instance.adminDsn.replace(`:${instance.port}/`, `:${proxy.port}/`).replace('@127.0.0.1:', `@${proxy.host}:`)
    try {
      let sawTable = false
      const run = await runCli(['tune-batch', '--inspect', pipeline!.fields.inspect, '--probe-target', dsn, '--like', 'ferrydiag.orders', '--duration', '30s'], {onStart: (child) => {
        const poll = setInterval(async () => {
          if ((await probeTables(conn)).length > 0) {
            clearInterval(poll)
            sawTable = true
            // Let a few batches run first.
            setTimeout(() => child.kill('SIGINT'), 200)
          }
        }, 25)
        child.once('exit', () => clearInterval(poll))
      }})
      assert.ok(sawTable, 'the probe table existed while the probe ran')
      assert.equal(run.code, 130, run.stderr)
      assert.match(run.stdout, /the probe was interrupted after \d+ batch\(es\); its table was dropped/)
      assert.deepEqual(await probeTables(conn), [])
    } finally {
      await conn.end()
    }
  })

  it('--like naming a missing table: noSuchTable', async (t) => {
    const instance = await db.get(t)
    if (!instance) return
    const run = await runCli(['tune-batch', '--inspect', pipeline!.fields.inspect, '--probe-target', instance.adminDsn, '--like', 'ferrydiag.no_such_table', '--duration', '1s'])
    assert.equal(run.code, EXIT.noSuchTable, run.stderr)
    assert.match(run.stderr, /no_such_table/)
  })

  it('an account without CREATE: mysqlGrant naming CREATE, and nothing created', async (t) => {
    const instance = await db.get(t)
    if (!instance) return
    const conn = await prepare(instance)
    try {
      const dsn = await createUser(instance, 'probe_nocreate', 'secret-1', ['SELECT, INSERT, DROP ON ferrydiag.*'])
      const run = await runCli(['tune-batch', '--inspect', pipeline!.fields.inspect, '--probe-target', dsn, '--like', 'ferrydiag.orders', '--duration', '1s'])
      assert.equal(run.code, EXIT.mysqlGrant, run.stderr)
      assert.match(run.stderr, /CREATE/)
      assert.doesNotMatch(run.stderr, /secret-1/)
      assert.deepEqual(await probeTables(conn), [])
    } finally {
      await conn.end()
    }
  })
})
