// Fast tests of the live route's pieces on plain data: the position tap's ring in this process over a
// zongji-shaped class (one record per transaction, Rotate skipped, overflow counted, exact removal), the
// CLI's compact index of delivered positions, and the rows subscription zongji's filters make.

import {strict as assert} from 'node:assert'
import {EventEmitter} from 'node:events'
import {describe, it} from 'node:test'
import {installPositionTap, type PositionTapDrain} from '../src/agent/probes-core.cjs'
import {BinlogAuditor, rowsSubscriptionOf} from '../src/analyze/binlog-audit.js'
import {DeliveredPositionsBuilder} from '../src/collect/live-positions.js'
import type {BinlogEventRecord} from '../src/model/binlog-audit.js'

const g = globalThis as unknown as Record<symbol, unknown>
const PROBES = Symbol.for('ferrydiag.probes')
const TAP = Symbol.for('ferrydiag.binlog-positions')
const UNDO = Symbol.for('ferrydiag.undo')

class FakeZongJi extends EventEmitter {
  options = {filename: 'binlog.000001'}
  filters = {includeSchema: {app: ['t']}}
  ctrlConnection = {config: {host: '127.0.0.1', port: 3306}}
}
// The probes patch the class's own emit; the tap wraps whatever emit is there.
Object.defineProperty(FakeZongJi.prototype, 'emit', {value: EventEmitter.prototype.emit, writable: true, configurable: true})

const event = (name: string, nextPosition: number, gtid?: string) => ({getEventName: () => name, nextPosition, gtid})

describe('position tap (in the target)', () => {
  it('records one position per transaction, skips Rotate, counts what a full ring cannot keep, and restores emit exactly', () => {
    const ownEmit = FakeZongJi.prototype.emit
    g[PROBES] = {prototypes: {zongji: FakeZongJi.prototype}}
    try {
      assert.deepEqual(installPositionTap(3), {installed: true, reason: null, capacity: 3})
      assert.equal(installPositionTap(3).installed, false, 'never twice')
      const z = new FakeZongJi()
      const seen: unknown[] = []
      z.on('binlog', (e) => seen.push(e))
      z.emit('binlog', event('tablemap', 400, '0-1-1'))
      z.emit('binlog', event('writerows', 500, '0-1-1'))
      z.emit('binlog', event('writerows', 900, '0-1-2'))
      z.options.filename = 'binlog.000002'
      z.emit('binlog', event('rotate', 4200))
      z.emit('binlog', event('writerows', 600, '0-1-3'))
      z.emit('binlog', event('writerows', 700, '0-1-4')) // the ring (3) is full: missed
      assert.equal(seen.length, 6, 'the pipeline still gets every event')
      const tap = g[TAP] as {drain(max: number): string; uninstall(): void}
      const first = JSON.parse(tap.drain(2)) as PositionTapDrain
      assert.deepEqual(first.pos, [400, 900])
      assert.equal(first.more, true)
      assert.equal(first.eventsSeen, 6)
      assert.deepEqual(first.missed, {count: 1, first: {file: 'binlog.000002', pos: 700}, last: {file: 'binlog.000002', pos: 700}})
      assert.deepEqual(first.streamers, [{id: 1, host: '127.0.0.1', port: 3306, filters: {includeSchema: {app: ['t']}}}])
      const second = JSON.parse(tap.drain(10)) as PositionTapDrain
      assert.deepEqual([second.files[second.file[0]!], second.pos, second.gtid, second.more, second.missed], ['binlog.000002', [600], ['0-1-3'], false, null])
      const undo = g[UNDO] as Map<string, () => void>
      undo.get('binlog-positions')!()
      assert.equal(FakeZongJi.prototype.emit, ownEmit)
      assert.equal(g[TAP], undefined)
      assert.equal(undo.has('binlog-positions'), false)
    } finally {
      delete g[PROBES]
      delete g[TAP]
    }
  })

  it('refuses without the probes (no zongji class found)', () => {
    assert.deepEqual(installPositionTap(8), {installed: false, reason: 'no-probes', capacity: 8})
  })
})

describe('delivered positions (CLI side)', () => {
  it('keeps distinct positions per file, sorts a restarted stream, drops what lies before a judged-from point', () => {
    const b = new DeliveredPositionsBuilder()
    for (const [file, pos] of [['f.1', 100], ['f.1', 100], ['f.1', 300], ['f.2', 50], ['f.2', 20], ['f.2', 80]] as const) b.add(file, pos, null)
    b.add('f.2', 0, '0-1-9')
    assert.equal(b.records, 7)
    assert.deepEqual(b.first, {file: 'f.1', pos: 100, gtid: null})
    const index = b.index()
    assert.deepEqual([...index.files], [['f.1', [100, 300]], ['f.2', [20, 50, 80]]])
    assert.deepEqual([...index.gtids], ['0-1-9'])
    assert.deepEqual([...b.index({file: 'f.2', pos: 20}).files], [['f.2', [50, 80]]])
  })
})

describe('rows subscription', () => {
  it('zongji filters become the rows judged: a transaction on a table the stream does not subscribe to is not lost', () => {
    const sub = rowsSubscriptionOf({includeEvents: ['tablemap', 'writerows'], includeSchema: {app: ['t']}})
    assert.deepEqual(sub, {includeSchema: {app: ['t']}, excludeSchema: null, kinds: ['write']})
    assert.equal(rowsSubscriptionOf({}).kinds, null)
    // Three transactions: app.t (delivered), app.other (filtered out by the pipeline), app.t (delivered).
    const events: BinlogEventRecord[] = []
    let pos = 4
    const push = (type: number, typeName: string, size: number, extra: Partial<BinlogEventRecord> = {}): void => {
      events.push({file: 'f.1', startPos: pos, endPos: pos + size, sizeBytes: size, type, typeName, timestampSec: 1, serverId: 1, flags: 0, artificial: false, checksum: 'none', ...extra})
      pos += size
    }
    const ends: number[] = []
    for (const [i, table] of ['app.t', 'app.other', 'app.t'].entries()) {
      push(162, 'Gtid', 42, {gtid: `0-1-${i + 1}`})
      push(19, 'Table_map', 50, {table})
      push(23, 'Write_rows_v1', 90, {table})
      ends.push(pos)
      push(16, 'Xid', 31)
    }
    const audit = (subscription?: ReturnType<typeof rowsSubscriptionOf>) => {
      const auditor = new BinlogAuditor({
        acks: [],
        delivered: {files: new Map([['f.1', [ends[0]!, ends[2]!]]]), gtids: new Set()},
        subscription,
        consumer: {kind: 'live-pipeline', name: 'test', acks: 2, gtidAcks: 0},
        files: [],
        listLimit: 100,
        read: {kind: 'local-files', from: 'test', serverId: null, checksumsVerified: false},
      })
      for (const e of events) auditor.onEvent(e)
      return auditor.finish(1)
    }
    assert.equal(audit().verdict, 'lost', 'without the subscription the filtered table looks lost')
    const report = audit(sub)
    assert.equal(report.verdict, 'complete')
    assert.equal(report.files[0]!.transactions, 2)
  })
})
