// Throwaway GTID replication for tests: a primary (or several, for multi-source) and a replica started with
// the MariaDB harness, the replica connected with CHANGE MASTER ... MASTER_USE_GTID=slave_pos, plus waits on
// replication conditions (caught up, SQL thread stopped) instead of sleeps.
//
//   const topo = await startPrimaryAndReplica({parallelThreads: 4, parallelMode: 'optimistic'})
//   ... write on topo.primary, await waitForReplicaCaughtUp(topo.replica, topo.primary) ...
//   await topo.stop()
//
// For a failover: stopReplication(replica), then configureReplication(oldPrimary, replica) points the old
// primary at the promoted replica (MASTER_USE_GTID=slave_pos from the new primary's current position).

import {setTimeout as sleep} from 'node:timers/promises'
import {parseMariaDbGtidList} from '../../src/analyze/replica-findings.js'
import {openConnection, REPLICATION_USER, startMariaDb, type MariaDbInstance, type StartMariaDbOptions} from './mariadb.js'

const REPLICATION_PASSWORD = 'ferrydiag-repl'

export type ParallelMode = 'optimistic' | 'conservative' | 'aggressive' | 'minimal' | 'none'

export interface ReplicationOptions {
  /** Named connection ('' = the default, unnamed one). */
  connectionName?: string
  /** @@slave_parallel_threads on the replica (0 = serial apply). Global: applies to every connection. */
  parallelThreads?: number
  /** @@slave_parallel_mode (default optimistic when parallelThreads > 0). */
  parallelMode?: ParallelMode
  /** MASTER_DELAY in seconds. */
  delaySeconds?: number
  /** Start the IO and SQL threads (default true). */
  start?: boolean
}

export interface PrimaryAndReplicaOptions extends Omit<ReplicationOptions, 'connectionName'> {
  /** Names of the connections, one primary each (default ['']: one primary, the default connection). */
  connectionNames?: string[]
  /** Extra mariadbd options for the primaries / the replica (e.g. '--gtid-strict-mode=1'). */
  primaryArgs?: string[]
  replicaArgs?: string[]
  startOptions?: Omit<StartMariaDbOptions, 'extraArgs' | 'name' | 'errorLogFile'>
  /** Append the replica's error log (where MariaDB records every worker's failure) to this file. */
  replicaErrorLogFile?: string
}

export interface PrimaryAndReplica {
  /** The first primary (the only one unless connectionNames has several). */
  primary: MariaDbInstance
  replica: MariaDbInstance
  /** One primary per connection name, in connectionNames order. */
  primaries: Array<{connectionName: string; primary: MariaDbInstance}>
  stop(): Promise<void>
}

type Row = Record<string, unknown>

function quoteName(name: string): string {
  return `'${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

async function withConnection<T>(instance: MariaDbInstance, fn: (conn: Awaited<ReturnType<typeof openConnection>>) => Promise<T>): Promise<T> {
  const conn = await openConnection(instance.adminDsn)
  try {
    return await fn(conn)
  } finally {
    await conn.end()
  }
}

async function queryRows(instance: MariaDbInstance, sql: string, values: unknown[] = []): Promise<Row[]> {
  return withConnection(instance, async (conn) => (await conn.query(sql, values))[0] as Row[])
}

/** @@gtid_binlog_pos of a server: everything it has written to its binlog. */
export async function readGtidBinlogPos(instance: MariaDbInstance): Promise<string> {
  return String((await queryRows(instance, 'SELECT @@gtid_binlog_pos AS pos'))[0]!.pos ?? '')
}

/**
 * Points `replica` at `primary` over GTID (MASTER_USE_GTID=slave_pos), starting from what the primary has
 * already written (so the replica does not replay the primary's account set-up), and starts it.
 */
export async function configureReplication(replica: MariaDbInstance, primary: MariaDbInstance, options: ReplicationOptions = {}): Promise<void> {
  const name = options.connectionName ?? ''
  const primaryPos = await readGtidBinlogPos(primary)
  await withConnection(replica, async (conn) => {
    const [current] = (await conn.query('SELECT @@gtid_slave_pos AS pos'))[0] as Row[]
    // Merge per domain: a multi-source replica keeps the other primaries' domains.
    const byDomain = new Map<string, string>()
    for (const gtid of [...String(current!.pos ?? '').split(','), ...primaryPos.split(',')]) {
      const trimmed = gtid.trim()
      if (trimmed !== '') byDomain.set(trimmed.split('-')[0]!, trimmed)
    }
    // gtid_slave_pos and the parallel settings can only change while every connection is stopped.
    await conn.query('STOP ALL SLAVES')
    await conn.query('SET GLOBAL gtid_slave_pos = ?', [[...byDomain.values()].join(',')])
    if (options.parallelThreads !== undefined) {
      await conn.query('SET GLOBAL slave_parallel_threads = ?', [options.parallelThreads])
      if (options.parallelThreads > 0) await conn.query('SET GLOBAL slave_parallel_mode = ?', [options.parallelMode ?? 'optimistic'])
    }
    await conn.query(
      `CHANGE MASTER ${quoteName(name)} TO MASTER_HOST='127.0.0.1', MASTER_PORT=${Number(primary.port)}, ` +
        `MASTER_USER=${quoteName(REPLICATION_USER)}, MASTER_PASSWORD=${quoteName(REPLICATION_PASSWORD)}, ` +
        `MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_DELAY=${Number(options.delaySeconds ?? 0)}`,
    )
    if (options.start ?? true) await conn.query('START ALL SLAVES')
  })
}

/** STOP SLAVE for one connection (default: the unnamed one). */
export async function stopReplication(replica: MariaDbInstance, connectionName = ''): Promise<void> {
  await withConnection(replica, (conn) => conn.query(`STOP SLAVE ${quoteName(connectionName)}`))
}

/** SHOW ALL SLAVES STATUS rows keyed by Connection_name. */
export async function readAllSlavesStatus(replica: MariaDbInstance): Promise<Map<string, Row>> {
  const rows = await queryRows(replica, 'SHOW ALL SLAVES STATUS')
  return new Map(rows.map((row) => [String(row.Connection_name ?? ''), row]))
}

export interface WaitOptions {
  connectionName?: string
  /** Default 30 s. */
  timeoutMs?: number
  /** Poll interval, default 50 ms. */
  intervalMs?: number
}

/** Polls until check() returns a value (not undefined), or throws after timeoutMs naming what it waited for. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, options: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000)
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`)
    await sleep(options.intervalMs ?? 50)
  }
}

/** Waits until the replica's SQL thread for the connection has stopped; returns its status row. */
export async function waitForSqlThreadStopped(replica: MariaDbInstance, options: WaitOptions = {}): Promise<Row> {
  const name = options.connectionName ?? ''
  return waitFor(`the SQL thread of connection '${name}' to stop`, async () => {
    const row = (await readAllSlavesStatus(replica)).get(name)
    return row !== undefined && row.Slave_SQL_Running === 'No' ? row : undefined
  }, options)
}

/** Waits until the replica has applied everything the primary has written (per-domain GTID comparison). */
export async function waitForReplicaCaughtUp(replica: MariaDbInstance, primary: MariaDbInstance, options: WaitOptions = {}): Promise<void> {
  const target = await readGtidBinlogPos(primary)
  const wanted = parseMariaDbGtidList(target)
  await waitFor(`the replica to reach ${target}`, async () => {
    const rows = await queryRows(replica, 'SELECT @@gtid_slave_pos AS pos')
    const have = parseMariaDbGtidList(String(rows[0]!.pos ?? ''))
    for (const [domain, gtid] of wanted) {
      const got = have.get(domain)
      if (got === undefined || got.seqNo < gtid.seqNo) return undefined
    }
    return true
  }, options)
}

/**
 * Starts primaries (one per connection name; each its own gtid_domain_id when there are several) and a
 * replica replicating from all of them over GTID. stop() stops every server.
 */
export async function startPrimaryAndReplica(options: PrimaryAndReplicaOptions = {}): Promise<PrimaryAndReplica> {
  const names = options.connectionNames ?? ['']
  const started: MariaDbInstance[] = []
  const stopAll = async (): Promise<void> => {
    await Promise.all(started.map((instance) => instance.stop()))
  }
  try {
    const primaries: PrimaryAndReplica['primaries'] = []
    for (const [index, connectionName] of names.entries()) {
      const domainArgs = names.length > 1 ? [`--gtid-domain-id=${index + 1}`] : []
      const primary = await startMariaDb({...options.startOptions, name: `primary${index}`, extraArgs: [...domainArgs, ...(options.primaryArgs ?? [])]})
      started.push(primary)
      primaries.push({connectionName, primary})
    }
    const replica = await startMariaDb({
      ...options.startOptions,
      name: 'replica',
      errorLogFile: options.replicaErrorLogFile,
      extraArgs: ['--skip-slave-start', ...(options.replicaArgs ?? [])],
    })
    started.push(replica)
    for (const [index, {connectionName, primary}] of primaries.entries()) {
      await configureReplication(replica, primary, {
        ...options,
        connectionName,
        // The global parallel settings need every connection stopped: set them with the first one.
        parallelThreads: index === 0 ? options.parallelThreads : undefined,
      })
    }
    return {primary: primaries[0]!.primary, replica, primaries, stop: stopAll}
  } catch (error) {
    await stopAll()
    throw error
  }
}
