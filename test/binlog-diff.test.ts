// binlog diff on plain data: choosing the start file from Gtid_list events, comparing fingerprints GTID by
// GTID, finding the first differing event or row, and the text/JSON renderings.

import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {chooseStartFile, compareFingerprints, findFirstDifference, type BinlogFileGtids} from '../src/analyze/binlog-diff.js'
import type {BinlogDiffReport, TransactionDetail, TransactionFingerprint} from '../src/model/binlog-diff.js'
import {parseGtidSelection, parseMariadbGtidList, seqBoundsByDomain} from '../src/model/gtid.js'
import {renderBinlogDiffJson, renderBinlogDiffText} from '../src/render/binlog-diff-text.js'
import {formatDurationMs} from '../src/units.js'
import {parseSince} from '../commands/binlog/diff.js'
import {createBinlogDiffProgress, formatBinlogDiffProgress} from '../src/render/binlog-diff-progress.js'

const files: BinlogFileGtids[] = [
  {file: 'binlog.000004', gtidList: parseMariadbGtidList('[0-1-100]')},
  {file: 'binlog.000005', gtidList: parseMariadbGtidList('[0-1-200,1-5-7]')},
  {file: 'binlog.000006', gtidList: parseMariadbGtidList('[0-1-250,0-2-300,1-5-9]')},
]

function bounds(text: string) {
  return seqBoundsByDomain(parseGtidSelection(text))
}

describe('chooseStartFile', () => {
  it('starts at the last file whose Gtid_list lies below the wanted sequence', () => {
    assert.deepEqual(chooseStartFile(files, bounds('0-1-150')), {kind: 'file', file: 'binlog.000004'})
    assert.deepEqual(chooseStartFile(files, bounds('0-1-201')), {kind: 'file', file: 'binlog.000005'})
    // the highest sequence of the domain counts, whatever server id logged it
    assert.deepEqual(chooseStartFile(files, bounds('0-1-299..400')), {kind: 'file', file: 'binlog.000005'})
    assert.deepEqual(chooseStartFile(files, bounds('0-2-301')), {kind: 'file', file: 'binlog.000006'})
  })
  it('takes the earliest start over domains; a domain never listed starts at the oldest file', () => {
    assert.deepEqual(chooseStartFile(files, bounds('0-1-301,1-5-8')), {kind: 'file', file: 'binlog.000005'})
    assert.deepEqual(chooseStartFile(files, bounds('0-1-301,2-1-1')), {kind: 'file', file: 'binlog.000006'})
  })
  it('reports GTIDs older than the oldest file as purged', () => {
    assert.deepEqual(chooseStartFile(files, bounds('0-1-50..150')), {kind: 'purged', domainId: 0, wantedFromSeq: 50, purgedThroughSeq: 100, oldestFile: 'binlog.000004'})
  })
})

function tx(gtid: string, fingerprint: string, offset = 100): TransactionFingerprint {
  return {
    gtid,
    position: {file: 'binlog.000001', offset},
    endPosition: {file: 'binlog.000001', offset: offset + 50},
    fingerprint,
    tables: ['db.t'],
    events: 1,
    rows: 1,
    timestampMs: 0,
  }
}

function server(...txs: TransactionFingerprint[]): Map<string, TransactionFingerprint> {
  return new Map(txs.map((t) => [t.gtid, t]))
}

describe('compareFingerprints', () => {
  it('counts same and different GTIDs and lists those missing from some servers, in GTID order', () => {
    const a = server(tx('0-1-10', 'x'), tx('0-1-2', 'p'), tx('0-1-3', 'q'), tx('0-1-4', 'only-a'))
    const b = server(tx('0-1-2', 'p', 200), tx('0-1-3', 'Q', 300), tx('0-1-10', 'x'))
    const c = server(tx('0-1-2', 'p'), tx('0-1-3', 'q'))
    const result = compareFingerprints([a, b, c])
    assert.deepEqual(result.summary, {compared: 3, same: 2, different: 1, partial: 2})
    assert.deepEqual(
      result.divergent.map((d) => [d.gtid, d.copies.map((copy) => [copy.server, copy.position.offset, copy.fingerprint])]),
      [['0-1-3', [[0, 100, 'q'], [1, 300, 'Q'], [2, 100, 'q']]]],
    )
    assert.deepEqual(
      result.partial.map((p) => [p.gtid, p.presentOn, p.missingOn]),
      [
        ['0-1-4', [0], [1, 2]],
        ['0-1-10', [0, 1], [2]],
      ],
    )
  })
  it('reports nothing for identical servers', () => {
    const make = () => server(...Array.from({length: 50}, (_, i) => tx(`0-7-${i + 1}`, `f${i}`)))
    assert.deepEqual(compareFingerprints([make(), make()]), {summary: {compared: 50, same: 50, different: 0, partial: 0}, divergent: [], partial: []})
  })
})

function detail(events: TransactionDetail['events']): TransactionDetail {
  return {gtid: '0-1-1', position: {file: 'binlog.000001', offset: 4}, events}
}

describe('findFirstDifference', () => {
  it('names the first event whose table differs (the reference incident)', () => {
    const a = detail([{kind: 'update', table: 'db1.sbtest6', rows: [{before: {id: 1}, after: {id: 1}}]}])
    const b = detail([{kind: 'update', table: 'db1.sbtest5', rows: [{before: {id: 1}, after: {id: 1}}]}])
    assert.deepEqual(findFirstDifference(a, b), {kind: 'event', eventIndex: 0, eventA: {kind: 'update', what: 'db1.sbtest6'}, eventB: {kind: 'update', what: 'db1.sbtest5'}})
  })
  it('names the first differing row and its columns, before or after image', () => {
    const same = {kind: 'write' as const, table: 'db.t', rows: [{id: 1, v: 'a'}]}
    const a = detail([same, {kind: 'update', table: 'db.t', rows: [{before: {id: 1, v: 'a', n: 1}, after: {id: 1, v: 'a', n: 2}}, {before: {id: 2, v: 'x', n: 1}, after: {id: 2, v: 'y', n: 1}}]}])
    const b = detail([same, {kind: 'update', table: 'db.t', rows: [{before: {id: 1, v: 'a', n: 1}, after: {id: 1, v: 'a', n: 2}}, {before: {id: 2, v: 'late', n: 1}, after: {id: 2, v: 'y', n: 1}}]}])
    const first = findFirstDifference(a, b)
    assert.equal(first.kind, 'row')
    assert.deepEqual(first.kind === 'row' && [first.eventIndex, first.rowIndex, first.columns, first.rowB.before], [1, 1, ['v'], {id: 2, v: 'late', n: 1}])
  })
  it('tells differing statements, row counts and event counts apart, and equal copies', () => {
    const q = (query: string) => ({kind: 'query' as const, schema: 'db', query})
    assert.equal(findFirstDifference(detail([q('DROP TABLE t')]), detail([q('DROP TABLE u')])).kind, 'event')
    assert.deepEqual(findFirstDifference(detail([{kind: 'delete', table: 'db.t', rows: [{id: 1}]}]), detail([{kind: 'delete', table: 'db.t', rows: [{id: 1}, {id: 2}]}])), {
      kind: 'rowCount',
      eventIndex: 0,
      table: 'db.t',
      rowsA: 1,
      rowsB: 2,
    })
    assert.deepEqual(findFirstDifference(detail([q('X')]), detail([q('X'), q('Y')])), {kind: 'eventCount', eventIndex: 1, eventsA: 1, eventsB: 2})
    assert.deepEqual(findFirstDifference(detail([q('X')]), detail([q('X')])), {kind: 'none'})
  })
})

describe('rendering', () => {
  const report: BinlogDiffReport = {
    schema: 'ferrydiag.binlog-diff',
    version: 1,
    selection: {mode: 'gtid', text: '0-10-295533'},
    servers: [0, 1].map((i) => ({
      dsn: `mysql://repl:****@db${i + 1}:3306`,
      serverId: i + 1,
      version: '10.11.19-MariaDB',
      gtidBinlogPos: '0-10-295533',
      readFrom: {file: 'binlog.000221', offset: 4},
      readTo: {file: 'binlog.000221', offset: 12000},
      transactionsRead: 40,
      transactionsSelected: 1,
      elapsedMs: 65_400,
    })),
    summary: {compared: 1, same: 0, different: 1, partial: 0},
    divergent: [
      {
        gtid: '0-10-295533',
        copies: [
          {server: 0, position: {file: 'binlog.000223', offset: 11590}, fingerprint: 'AAAAAAAAAAAAAAAA', tables: ['db1.sbtest6', 'db1.sbtest5'], rows: 2, timestampMs: 0},
          {server: 1, position: {file: 'binlog.000221', offset: 9912}, fingerprint: 'BBBBBBBBBBBBBBBB', tables: ['db1.sbtest5', 'db1.sbtest4'], rows: 2, timestampMs: 0},
        ],
        differences: [{server: 1, against: 0, first: {kind: 'row', eventIndex: 0, table: 'db1.sbtest5', rowIndex: 0, columns: ['c'], rowA: {before: {c: 'x'}, after: {c: 'y'}}, rowB: {before: {c: 'x'}, after: {c: 'z'}}}}],
      },
    ],
    partial: [],
  }
  it('text names the GTID, both positions, the tables and the differing columns; durations via the units module', () => {
    const text = renderBinlogDiffText(report)
    assert.match(text, /GTID 0-10-295533 differs:/)
    assert.match(text, /binlog\.000223:11590 .*db1\.sbtest6, db1\.sbtest5/)
    assert.match(text, /binlog\.000221:9912 .*db1\.sbtest5, db1\.sbtest4/)
    assert.match(text, /row #1 differs in c:/)
    assert.match(text, /#2: before c="x"; after c="z"/)
    assert.ok(text.includes(`│ ${formatDurationMs(65_400)} │`))
    assert.match(text, /1 GTIDs compared: 0 same, 1 different; 0 missing/)
  })
  it('JSON is the report itself, on one line', () => {
    const json = renderBinlogDiffJson(report)
    assert.doesNotMatch(json, /\n/)
    assert.deepEqual(JSON.parse(json), report)
  })
})

describe('--since', () => {
  it('takes an ISO time or a duration back from now', () => {
    assert.equal(parseSince('2026-11-27T16:00:00Z', 0), Date.UTC(2026, 10, 27, 16))
    assert.equal(parseSince('15m', 1_000_000_000), 1_000_000_000 - 900_000)
    assert.throws(() => parseSince('2026-13-45T99', 0), /ISO time/)
    assert.throws(() => parseSince('soon', 0), /positive duration/)
  })
})

describe('progress line', () => {
  it('is drawn only on a TTY without --json, at most every interval, and erased', () => {
    const written: string[] = []
    let clock = 0
    const stream = {isTTY: true, columns: 200, write: (text: string) => written.push(text) > 0}
    const progress = createBinlogDiffProgress({servers: 2, json: false, stream, intervalMs: 250, nowMs: () => clock})
    progress.update(0, {transactionsRead: 10, at: {file: 'binlog.000001', offset: 900}})
    clock = 100
    progress.update(1, {transactionsRead: 12, at: {file: 'binlog.000001', offset: 950}})
    clock = 300
    progress.update(0, {transactionsRead: 20, at: {file: 'binlog.000002', offset: 400}})
    progress.clear()
    assert.deepEqual(written, [
      `\r${formatBinlogDiffProgress([{transactionsRead: 10, at: {file: 'binlog.000001', offset: 900}}, {transactionsRead: 0, at: {file: '', offset: 0}}])}\x1b[K`,
      '\rreading binlogs: #1 20 tx at binlog.000002:400 · #2 12 tx at binlog.000001:950\x1b[K',
      '\r\x1b[K',
    ])
    for (const [isTTY, json] of [[false, false], [true, true]] as const) {
      const silent: string[] = []
      const quiet = createBinlogDiffProgress({servers: 1, json, stream: {isTTY, write: (text: string) => silent.push(text) > 0}})
      quiet.update(0, {transactionsRead: 1, at: {file: 'f', offset: 4}})
      quiet.clear()
      assert.deepEqual(silent, [])
    }
  })
})
