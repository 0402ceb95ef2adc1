// Counts row events on a source's binlog from its current end (zongji), in per-second buckets of the
// events' own timestamps, under a replication server id chosen not to collide with the pipeline's.

import {randomInt} from 'node:crypto'
import type ZongJi from '@vlasky/zongji'
import type {AnyBinlogEvent, RowsEvent} from '@vlasky/zongji'
import type {Connection} from 'mysql2/promise'
import {FerrydiagError} from '../errors.js'
import {connectMysql, isConnectionLost, loadZongJi, mapConnectError} from './connect.js'
import {describeEndpoint, parseDsn, toConnectionOptions, type ParsedDsn} from './dsn.js'

/** Rows and row events whose binlog timestamp falls in one second. */
export interface RowCountBucket {
  /** Epoch second of the events (binlog timestamps have 1-second resolution). */
  atSec: number
  /** Rows changed: a write_rows event inserting 5 rows counts 5. */
  rows: number
  /** Row events (write/update/delete_rows): that same event counts 1. */
  rowEvents: number
}

export interface BinlogCountSummary {
  serverId: number
  startedAtMs: number
  stoppedAtMs: number
  rows: number
  rowEvents: number
  rowsByKind: {write: number; update: number; delete: number}
  /** Rows per `schema.table`. */
  rowsByTable: Record<string, number>
  /** Oldest first; seconds with no events are absent. */
  buckets: RowCountBucket[]
  /** Set when the stream ended on its own (source gone, id collision, missing grant). */
  error?: FerrydiagError
}

export interface BinlogCounterOptions {
  /** Replication server id for our stream; default: pickReplicationServerId(). */
  serverId?: number
  /** Count only these schemas/tables (zongji includeSchema), e.g. {shop: ['orders']} or {shop: true}. */
  includeSchema?: Record<string, string[] | true>
  /** Time allowed to connect and reach the binlog end, in ms (default 10 000). */
  startTimeoutMs?: number
  /** Called once if the stream fails after starting. */
  onError?: (error: FerrydiagError) => void
}

/** Replication ids we pick from: high, where hand-configured replicas and zongji's default (1) are not. */
export const COUNTER_SERVER_ID_MIN = 2_000_000_000
export const COUNTER_SERVER_ID_MAX = 4_294_967_294

export interface ServerIdChoice {
  serverId: number
  /** Ids known to be in use: the source's own and registered replicas (SHOW SLAVE HOSTS). */
  idsInUse: number[]
  /** Binlog Dump threads visible in the processlist (needs PROCESS to see other accounts' threads). */
  binlogDumpThreads: number
}

/**
 * Picks a random replication server id in [2e9, 2^32-2] that is neither the source's own nor a
 * registered replica's. A second stream with an id already streaming makes the server kill the FIRST
 * one, i.e. the pipeline's, so this must not collide. Unregistered streams (zongji does not register)
 * cannot be listed by id; the high random range is what keeps those apart.
 */
export async function pickReplicationServerId(conn: Connection, random: (min: number, max: number) => number = randomInt): Promise<ServerIdChoice> {
  const idsInUse = new Set<number>()
  const [own] = (await conn.query('SELECT @@server_id AS id'))[0] as Array<{id: number}>
  idsInUse.add(Number(own!.id))
  try {
    // MariaDB 10.5+ needs REPLICATION MASTER ADMIN for this; without it we rely on the range alone.
    const [hosts] = await conn.query('SHOW SLAVE HOSTS')
    for (const host of hosts as Array<Record<string, unknown>>) idsInUse.add(Number(host.Server_id))
  } catch {
    // not permitted: nothing more to learn
  }
  let binlogDumpThreads = 0
  try {
    const [threads] = await conn.query('SHOW PROCESSLIST')
    binlogDumpThreads = (threads as Array<Record<string, unknown>>).filter((t) => String(t.Command).startsWith('Binlog Dump')).length
  } catch {
    // not permitted
  }
  let serverId: number
  do serverId = random(COUNTER_SERVER_ID_MIN, COUNTER_SERVER_ID_MAX + 1)
  while (idsInUse.has(serverId))
  return {serverId, idsInUse: [...idsInUse].sort((a, b) => a - b), binlogDumpThreads}
}

interface DriverError {
  code?: string
  errno?: number
  message?: string
}

// MariaDB/MySQL errnos for "another replica connected with the same server id" (it kills the older one).
const SAME_SERVER_ID_ERRNOS = new Set([4052, 1236])

export function mapStreamError(error: unknown, parsed: ParsedDsn, serverId: number): FerrydiagError {
  if (error instanceof FerrydiagError) return error
  const e = (error ?? {}) as DriverError
  const where = describeEndpoint(parsed)
  if (e.errno !== undefined && SAME_SERVER_ID_ERRNOS.has(e.errno) && /server.?id|same/i.test(e.message ?? '')) {
    return new FerrydiagError(
      'mysqlLost',
      `The binlog stream from ${where} was closed: another replica connected with server id ${serverId}`,
      'Run again (a new random id is picked), or pass a server id no replica or pipeline uses.',
      {cause: error},
    )
  }
  if (e.code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR') {
    // zongji reads the binlog end (needs REPLICATION CLIENT) before it streams (needs REPLICATION SLAVE).
    const monitor = /BINLOG MONITOR|REPLICATION CLIENT|SUPER/i.test(e.message ?? '')
    return new FerrydiagError(
      'mysqlGrant',
      monitor
        ? `The source at ${where} refused \`${parsed.user}\` the binlog position: the account lacks REPLICATION CLIENT (named BINLOG MONITOR on MariaDB 10.5+)`
        : `The source at ${where} refused to stream its binlog to \`${parsed.user}\`: the account lacks REPLICATION SLAVE (named REPLICATION REPLICA on MySQL 8.0.22+/MariaDB 10.5+)`,
      'GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO the DSN user.',
      {cause: error},
    )
  }
  if (isConnectionLost(error)) {
    return new FerrydiagError(
      'mysqlLost',
      `Lost the binlog stream from ${where} (${e.code})`,
      'Check that the source is still up, then run again.',
      {cause: error},
    )
  }
  return mapConnectError(error, parsed, {role: 'source'})
}

/** A running count; read it live (rows, buckets()) or stop() for the final summary. */
export class BinlogCounter {
  readonly serverId: number
  readonly startedAtMs: number
  private readonly zongji: ZongJi
  private readonly parsed: ParsedDsn
  private readonly bucketsBySec = new Map<number, RowCountBucket>()
  private readonly byTable: Record<string, number> = {}
  private readonly byKind = {write: 0, update: 0, delete: 0}
  private rowTotal = 0
  private eventTotal = 0
  private failure: FerrydiagError | undefined
  private stopped: Promise<BinlogCountSummary> | undefined
  private stoppedAtMs = 0
  private streamStopped = false
  private readonly waiters = new Set<() => void>()
  private readonly onError: ((error: FerrydiagError) => void) | undefined

  private constructor(zongji: ZongJi, parsed: ParsedDsn, serverId: number, onError?: (error: FerrydiagError) => void) {
    this.zongji = zongji
    this.parsed = parsed
    this.serverId = serverId
    this.startedAtMs = Date.now()
    this.onError = onError
    zongji.on('stopped', () => {
      this.streamStopped = true
    })
  }

  /**
   * Connects, picks a server id, and starts streaming at the binlog's current end; resolves once the
   * stream is positioned, so every row written after this resolves is counted.
   */
  static async start(dsn: string | ParsedDsn, options: BinlogCounterOptions = {}): Promise<BinlogCounter> {
    const parsed = typeof dsn === 'string' ? parseDsn(dsn) : dsn
    const startTimeoutMs = options.startTimeoutMs ?? 10_000
    let serverId = options.serverId
    if (serverId === undefined) {
      const conn = await connectMysql(parsed, {role: 'source', connectTimeoutMs: startTimeoutMs})
      try {
        serverId = (await pickReplicationServerId(conn)).serverId
      } finally {
        await conn.end().catch(() => conn.destroy())
      }
    }
    const {default: ZongJiClass} = await loadZongJi()
    const zongji = new ZongJiClass(toConnectionOptions(parsed, startTimeoutMs))
    const counter = new BinlogCounter(zongji, parsed, serverId, options.onError)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        zongji.stop()
        reject(
          new FerrydiagError(
            'mysqlUnreachable',
            `The binlog stream from ${describeEndpoint(parsed)} was not ready within ${startTimeoutMs} ms`,
            'Check that the source is reachable and not overloaded.',
          ),
        )
      }, startTimeoutMs)
      zongji.once('ready', () => {
        clearTimeout(timer)
        resolve()
      })
      zongji.on('error', (error: Error) => {
        const mapped = mapStreamError(error, parsed, serverId)
        if (!zongji.ready && counter.failure === undefined && counter.stopped === undefined) {
          clearTimeout(timer)
          counter.failure = mapped
          zongji.stop()
          reject(mapped)
          return
        }
        counter.fail(mapped)
      })
      zongji.on('binlog', (event: AnyBinlogEvent) => counter.record(event))
      zongji.start({
        serverId,
        startAtEnd: true,
        includeEvents: ['tablemap', 'writerows', 'updaterows', 'deleterows'],
        ...(options.includeSchema === undefined ? {} : {includeSchema: options.includeSchema}),
      })
    })
    return counter
  }

  private record(event: AnyBinlogEvent): void {
    const name = event.getEventName()
    if (name !== 'writerows' && name !== 'updaterows' && name !== 'deleterows') return
    const rows = (event as RowsEvent & {rows: unknown[]}).rows.length
    const atSec = Math.floor(event.timestamp / 1000)
    let bucket = this.bucketsBySec.get(atSec)
    if (bucket === undefined) {
      bucket = {atSec, rows: 0, rowEvents: 0}
      this.bucketsBySec.set(atSec, bucket)
    }
    bucket.rows += rows
    bucket.rowEvents += 1
    this.rowTotal += rows
    this.eventTotal += 1
    this.byKind[name === 'writerows' ? 'write' : name === 'updaterows' ? 'update' : 'delete'] += rows
    const table = (event as RowsEvent).tableMap?.[(event as RowsEvent).tableId]
    if (table !== undefined) {
      const key = `${table.parentSchema}.${table.tableName}`
      this.byTable[key] = (this.byTable[key] ?? 0) + rows
    }
    this.wake()
  }

  private fail(error: FerrydiagError): void {
    if (this.failure !== undefined || this.stopped !== undefined) return
    this.failure = error
    this.stoppedAtMs = Date.now()
    this.zongji.stop()
    this.wake()
    this.onError?.(error)
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter()
  }

  /** Rows counted so far. */
  get rows(): number {
    return this.rowTotal
  }

  /** Row events counted so far. */
  get rowEvents(): number {
    return this.eventTotal
  }

  /** The error that ended the stream, if it ended on its own. */
  get error(): FerrydiagError | undefined {
    return this.failure
  }

  /** Per-second counts so far, oldest first (copies). */
  buckets(): RowCountBucket[] {
    return [...this.bucketsBySec.values()].sort((a, b) => a.atSec - b.atSec).map((bucket) => ({...bucket}))
  }

  /** Resolves once at least `rows` rows were counted; rejects (tooFewSamples) after timeoutMs, or with the stream's failure. */
  waitForRows(rows: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (this.rowTotal >= rows) {
          done()
          resolve()
          return true
        }
        if (this.failure !== undefined) {
          done()
          reject(this.failure)
          return true
        }
        return false
      }
      const timer = setTimeout(() => {
        done()
        reject(
          new FerrydiagError(
            'tooFewSamples',
            `Counted ${this.rowTotal} of ${rows} rows on the binlog within ${timeoutMs} ms`,
            'Let the source produce more changes, or wait longer.',
          ),
        )
      }, timeoutMs)
      const waiter = (): void => void check()
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(waiter)
      }
      if (!check()) this.waiters.add(waiter)
    })
  }

  /** Stops the stream (kills our dump thread on the source) and returns the totals. Idempotent. */
  stop(): Promise<BinlogCountSummary> {
    this.stopped ??= new Promise<BinlogCountSummary>((resolve) => {
      const finish = (): void => {
        if (this.stoppedAtMs === 0) this.stoppedAtMs = Date.now()
        resolve(this.summary())
      }
      if (this.streamStopped) {
        finish()
        return
      }
      // zongji stops within ~1 s (it KILLs its dump thread, with a 1 s fallback); bound it regardless.
      const timer = setTimeout(finish, 3000)
      this.zongji.once('stopped', () => {
        clearTimeout(timer)
        finish()
      })
      if (!this.zongji.stopped) this.zongji.stop()
    })
    return this.stopped
  }

  private summary(): BinlogCountSummary {
    return {
      serverId: this.serverId,
      startedAtMs: this.startedAtMs,
      stoppedAtMs: this.stoppedAtMs,
      rows: this.rowTotal,
      rowEvents: this.eventTotal,
      rowsByKind: {...this.byKind},
      rowsByTable: {...this.byTable},
      buckets: this.buckets(),
      ...(this.failure === undefined ? {} : {error: this.failure}),
    }
  }
}
