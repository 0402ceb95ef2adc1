// The replica analysis on recorded evidence (fixtures/replica) and plain snapshots: error-log parsing,
// first failure with follow-on errors, lag versus noise, positions, and the MySQL 8 status shape.

import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'
import {errorLogShowsStop, parseErrorLog, parseErrorMessage} from '../src/analyze/replica-errors.js'
import {analyzeReplica, findFirstFailure, transactionsBetween} from '../src/analyze/replica-findings.js'
import type {ReplicaConnection, ReplicaSnapshot} from '../src/model/replica.js'
import {mergeWorkers, parseStatusRow} from '../src/mysql/replica-status.js'

const fixture = (name: string): string => readFileSync(new URL(`../../fixtures/replica/${name}`, import.meta.url), 'utf8')

// A MariaDB SHOW ALL SLAVES STATUS row after the recorded stop (the fields ferrydiag reads).
const STOPPED_ROW = {
  Connection_name: '',
  Slave_IO_State: 'Waiting for master to send event',
  Slave_SQL_State: '',
  Master_Host: '127.0.0.1',
  Master_Port: 46063,
  Master_Log_File: 'binlog.000001',
  Read_Master_Log_Pos: 94666,
  Relay_Log_File: 'mariadbd-relay-bin.000002',
  Relay_Log_Pos: 47074,
  Relay_Master_Log_File: 'binlog.000001',
  Slave_IO_Running: 'Yes',
  Slave_SQL_Running: 'No',
  Last_SQL_Errno: 1062,
  Last_SQL_Error:
    "Could not execute Write_rows_v1 event on table ferrydiag.t; Duplicate entry '200' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log binlog.000001, end_log_pos 48192",
  Exec_Master_Log_Pos: 47990,
  Seconds_Behind_Master: null,
  Last_IO_Errno: 0,
  Last_IO_Error: '',
  Using_Gtid: 'Slave_Pos',
  Gtid_IO_Pos: '0-89240-409',
  Parallel_Mode: 'optimistic',
  SQL_Delay: 0,
  SQL_Remaining_Delay: null,
  Slave_SQL_Running_State: '',
  Retried_transactions: 1,
  Gtid_Slave_Pos: '0-89240-209',
}

function snapshotOf(connections: ReplicaConnection[], workers: ReplicaSnapshot['workers'] = []): ReplicaSnapshot {
  return {
    takenAtMs: 0,
    settings: {
      flavor: 'mariadb',
      version: '10.11.19-MariaDB',
      serverId: 2,
      parallelThreads: 4,
      parallelMode: 'optimistic',
      performanceSchema: false,
      gtidSlavePos: connections[0]?.sql.executedGtid ?? '',
      gtidCurrentPos: '',
      gtidSlavePosTable: [],
      status: {},
    },
    connections,
    workers,
    unavailable: [],
  }
}

describe('replica error messages and error logs', () => {
  it('reads table, key, GTID and the primary coordinate from an applier error', () => {
    const parsed = parseErrorMessage(
      "Could not execute Write_rows_v1 event on table shop.orders; Duplicate entry '7-it''s' for key 'uniq_a_b', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY; the event's master log binlog.000003, end_log_pos 4711, Gtid 0-1-42, Internal MariaDB error code: 1062",
    )
    assert.deepEqual(parsed, {table: 'shop.orders', keyName: 'uniq_a_b', keyValue: "7-it's", gtid: '0-1-42', primaryEventEnd: {file: 'binlog.000003', pos: 4711}})
    const notFound = parseErrorMessage("Could not execute Update_rows_v1 event on table shop.orders; Can't find record in 'orders', Error_code: 1032; handler error HA_ERR_KEY_NOT_FOUND")
    assert.equal(notFound.table, 'shop.orders')
    assert.equal(notFound.keyName, null)
  })

  it('parses the recorded error log: the 1062 with its GTID and thread, then three 1964s', () => {
    const text = fixture('mariadb-10.11-parallel-1062.err')
    const entries = parseErrorLog(text)
    assert.deepEqual(
      entries.map((e) => [e.errno, e.threadId, e.gtid]),
      [
        [1062, 11, '0-89240-210'],
        [1964, 10, null],
        [1964, 9, null],
        [1964, 8, null],
      ],
    )
    assert.equal(entries[0]!.table, 'ferrydiag.t')
    assert.equal(entries[0]!.keyValue, '200')
    assert.ok(errorLogShowsStop(text, ''))
    // A restart forgets the earlier stop.
    const restarted = `${text}2026-11-27 16:40:00 12 [Note] Slave SQL thread initialized, starting replication in log 'binlog.000001' at position 47990\n`
    assert.deepEqual(parseErrorLog(restarted), [])
    assert.equal(errorLogShowsStop(restarted, ''), false)
  })

  it('reads lines written before 10:00, whose hour MariaDB pads with a space, and MySQL ISO 8601 stamps', () => {
    // The recorded log above was written in the afternoon; between midnight and 10:00 MariaDB writes
    // '2026-11-28  0:17:28' (the hour space-padded), which the parser once skipped, line by line.
    const text = fixture('mariadb-10.11-parallel-1062.err').replace(/^(\d{4}-\d\d-\d\d) \d\d:/gm, '$1  0:')
    assert.match(text, /^\d{4}-\d\d-\d\d  0:\d\d:\d\d /m)
    const entries = parseErrorLog(text)
    assert.deepEqual(entries.map((e) => [e.errno, e.threadId, e.gtid]), [[1062, 11, '0-89240-210'], [1964, 10, null], [1964, 9, null], [1964, 8, null]])
    assert.equal(entries[0]!.atMs, new Date(2026, 10, 27, 0, 38, 41).getTime(), 'the 1062 line, 16:38:41 in the recording, read as 0:38:41')
    assert.ok(errorLogShowsStop(text, ''))
    const iso = '2026-11-28T07:05:09.123456Z 14 [ERROR] [MY-010584] [Repl] Slave SQL for channel \'\': Worker 1 failed executing transaction; Error_code: 1062\n'
    assert.equal(parseErrorLog(iso)[0]?.atMs, Date.UTC(2026, 10, 28, 7, 5, 9, 123))
  })

  it('keeps multi-source connections apart', () => {
    const log = [
      "2026-01-01 10:00:00 5 [Note] Master 'east': Slave SQL thread initialized, starting replication",
      "2026-01-01 10:00:01 6 [ERROR] Master 'east': Slave SQL: Could not execute Delete_rows_v1 event on table a.b; Can't find record in 'b', Error_code: 1032; handler error HA_ERR_KEY_NOT_FOUND; the event's master log bin.000001, end_log_pos 900, Gtid 1-10-5, Internal MariaDB error code: 1032",
      "2026-01-01 10:00:02 7 [ERROR] Master 'west': Slave SQL: Error 'Table 'x.y' doesn't exist' on query. Default database: 'x'. Query: 'INSERT INTO y VALUES (1)', Gtid 2-20-9, Internal MariaDB error code: 1146",
    ].join('\n')
    assert.deepEqual(
      parseErrorLog(log).map((e) => [e.connectionName, e.errno, e.gtid]),
      [
        ['east', 1032, '1-10-5'],
        ['west', 1146, '2-20-9'],
      ],
    )
  })
})

describe('replica findings', () => {
  it('names the first failure, attaches follow-on errors, and the worker from the last running sample', () => {
    const connection = parseStatusRow(STOPPED_ROW)
    const snapshot = snapshotOf([connection])
    const lastRunning = snapshotOf(
      [parseStatusRow({...STOPPED_ROW, Slave_SQL_Running: 'Yes', Last_SQL_Errno: 0, Last_SQL_Error: ''})],
      mergeWorkers(null, [8, 9, 10, 11].map((id) => ({id, command: 'Slave_worker', state: 'Waiting for prior transaction to commit', info: null, timeSec: 0})), 'mariadb'),
    )
    const errorLog = parseErrorLog(fixture('mariadb-10.11-parallel-1062.err'))
    const failure = findFirstFailure(snapshot, connection, {lastRunning, errorLog})
    assert.ok(failure)
    assert.equal(failure.error.errno, 1062)
    assert.equal(failure.error.gtid, '0-89240-210')
    assert.equal(failure.gtidSource, 'error-log')
    assert.equal(failure.error.threadId, 11)
    assert.equal(failure.workerIndex, 4, 'thread 11 was the fourth worker')
    // The status row's copy of the same 1062 is not a follow-on; the three 1964s are.
    assert.deepEqual(failure.followOn.map((e) => [e.errno, e.threadId]), [[1964, 10], [1964, 9], [1964, 8]])
  })

  it('without the error log: the worker from performance_schema and the GTID inferred from the executed position', () => {
    const psRows = JSON.parse(fixture('mariadb-10.11-ps-workers-after-1062.json')) as Array<Record<string, unknown>>
    // The status row of that run carried the same message as the failing worker's P_S row.
    const connection = parseStatusRow({...STOPPED_ROW, Gtid_Slave_Pos: '0-351640-208', Gtid_IO_Pos: '0-351640-409', Last_SQL_Error: psRows[0]!.LAST_ERROR_MESSAGE})
    const snapshot = snapshotOf([connection], mergeWorkers(psRows, [], 'mariadb'))
    const failure = findFirstFailure(snapshot, connection, {lastRunning: null, errorLog: []})
    assert.ok(failure)
    assert.equal(failure.workerIndex, 1)
    assert.equal(failure.error.gtid, '0-351640-209')
    assert.equal(failure.gtidSource, 'inferred')
    assert.deepEqual(failure.followOn, [])
  })

  it('a lone 1964 is still reported as the failure (nothing earlier is known)', () => {
    const connection = parseStatusRow({...STOPPED_ROW, Last_SQL_Errno: 1964, Last_SQL_Error: 'Commit failed due to failure of an earlier commit on which this one depends'})
    const failure = findFirstFailure(snapshotOf([connection]), connection, {lastRunning: null, errorLog: []})
    assert.equal(failure?.error.errno, 1964)
  })

  it('lag: a stalled apply and a slow apply are lagging; a few transactions of noise under load are not', () => {
    const running = (io: string, executed: string, secondsBehind: number | null = 0): ReplicaConnection =>
      parseStatusRow({...STOPPED_ROW, Slave_SQL_Running: 'Yes', Last_SQL_Errno: 0, Last_SQL_Error: '', Gtid_IO_Pos: io, Gtid_Slave_Pos: executed, Seconds_Behind_Master: secondsBehind})
    const verdict = (before: ReplicaConnection, after: ReplicaConnection): unknown => {
      const {findings} = analyzeReplica(snapshotOf([after]), {lastRunning: null, errorLog: [], earlier: snapshotOf([before])}, {lagThresholdSec: 5})
      const f = findings[0]!
      return f.code === 'lagging' ? [f.code, f.reason, f.transactionsBehindGrowth, f.receivedInWindow, f.appliedInWindow] : f.code
    }
    assert.deepEqual(verdict(running('0-1-100', '0-1-80'), running('0-1-150', '0-1-80')), ['lagging', 'apply-stalled', 50, 50, 0])
    assert.deepEqual(verdict(running('0-1-100', '0-1-80'), running('0-1-200', '0-1-110')), ['lagging', 'apply-slower-than-arrival', 70, 100, 30])
    assert.equal(verdict(running('0-1-100', '0-1-95'), running('0-1-300', '0-1-290')), 'healthy')
    assert.deepEqual(verdict(running('0-1-100', '0-1-100', 4), running('0-1-100', '0-1-100', 9)), ['lagging', 'seconds-behind', 0, 0, 0], 'MASTER_DELAY-like: nothing queued, far behind in time')
  })

  it("multi-source: each connection is measured on its own primary's GTID domains", () => {
    // Gtid_IO_Pos and Gtid_Slave_Pos as a two-connection MariaDB 10.11 replica reported them (domain 0 is
    // the replica's own, 1 and 2 the primaries').
    const row = (name: string, serverId: number, io: string) => ({
      ...STOPPED_ROW,
      Connection_name: name,
      Slave_SQL_Running: 'Yes',
      Last_SQL_Errno: 0,
      Last_SQL_Error: '',
      Master_Server_Id: serverId,
      Gtid_IO_Pos: io,
      Gtid_Slave_Pos: '0-317450-8,1-317448-10,2-317449-7',
    })
    const snapshot = snapshotOf([parseStatusRow(row('east', 317448, '1-317448-10,2-317449-8')), parseStatusRow(row('west', 317449, '1-317448-8,2-317449-10'))])
    const {positions} = analyzeReplica(snapshot, {lastRunning: null, errorLog: [], earlier: null}, {lagThresholdSec: 5})
    assert.deepEqual(
      positions.map((p) => [p.connectionName, p.receivedGtid, p.executedGtid, p.transactionsBehind]),
      [
        ['east', '1-317448-10', '1-317448-10', 0],
        ['west', '2-317449-10', '2-317449-7', 3],
      ],
    )
  })

  it('counts transactions between GTID positions: MariaDB per domain, MySQL per source UUID', () => {
    assert.equal(transactionsBetween('0-1-10,1-2-5', '0-1-15,1-2-9'), 9)
    assert.equal(transactionsBetween('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100', '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-130:140'), 31)
    assert.equal(transactionsBetween('', ''), null)
  })
})

describe('MySQL 8 status shape (field names from the MySQL 8.0.22+ manual, not a recording)', () => {
  it('reads SHOW REPLICA STATUS fields as the same connection model', () => {
    const c = parseStatusRow({
      Channel_Name: 'east',
      Replica_IO_State: 'Waiting for source to send event',
      Source_Host: '10.0.0.5',
      Source_Port: 3306,
      Source_Log_File: 'binlog.000007',
      Read_Source_Log_Pos: 1200,
      Relay_Log_File: 'relay.000002',
      Relay_Log_Pos: 900,
      Relay_Source_Log_File: 'binlog.000007',
      Replica_IO_Running: 'Yes',
      Replica_SQL_Running: 'No',
      Last_SQL_Errno: 1062,
      Last_SQL_Error: "Coordinator stopped because there were error(s) in the worker(s). The most recent failure being: Worker 2 failed executing transaction 'aaaa:12' at source log binlog.000007, end_log_pos 1100.",
      Exec_Source_Log_Pos: 1000,
      Seconds_Behind_Source: null,
      Retrieved_Gtid_Set: 'aaaa:1-20',
      Executed_Gtid_Set: 'aaaa:1-11',
      Replica_SQL_Running_State: '',
      Last_SQL_Error_Timestamp: '231127 16:38:41',
    })
    assert.equal(c.name, 'east')
    assert.equal(c.io.running, 'yes')
    assert.equal(c.sql.running, false)
    assert.deepEqual(c.sql.executed, {file: 'binlog.000007', pos: 1000})
    assert.equal(c.sql.lastError?.gtid, 'aaaa:12')
    assert.equal(transactionsBetween(c.sql.executedGtid, c.io.receivedGtid), 9)
  })
})
