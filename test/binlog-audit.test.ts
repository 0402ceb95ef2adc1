// Fast tests of binlog audit's pieces on plain data: the positions log parser, the auditor's rules on
// synthetic event streams (file tails lost, GTID acks, resume points, checksum damage, pending tails),
// and the raw event decoder and file reader on a binlog built byte by byte.

import {strict as assert} from 'node:assert'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {crc32} from 'node:zlib'
import {BinlogAuditor} from '../src/analyze/binlog-audit.js'
import {FerrydiagError} from '../src/errors.js'
import type {BinlogEventRecord, ConsumerAck} from '../src/model/binlog-audit.js'
import {BINLOG_MAGIC, readBinlogFile} from '../src/mysql/binlog-events.js'
import {parseConsumerPositions} from '../src/mysql/binlog-positions.js'

describe('positions log', () => {
  it('reads file:end_pos, GTIDs and both, skipping comments and blank lines', () => {
    const acks = parseConsumerPositions('# header\nbinlog.000001:1234\n\n0-1-17\nbinlog.000002:339 0-1-18  # both\n3e11fa47-71ca-11e1-9e33-c80aa9429562:23\n', 'p.log')
    assert.deepEqual(acks, [
      {line: 2, file: 'binlog.000001', pos: 1234, gtid: null},
      {line: 4, file: null, pos: null, gtid: '0-1-17'},
      {line: 5, file: 'binlog.000002', pos: 339, gtid: '0-1-18'},
      {line: 6, file: null, pos: null, gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:23'},
    ])
  })

  it('names the line that does not parse', () => {
    assert.throws(
      () => parseConsumerPositions('binlog.000001:12\nbinlog.000001\n', 'p.log'),
      (error: unknown) => error instanceof FerrydiagError && error.code === 'badPositions' && /p\.log line 2: .*got `binlog\.000001`/.test(error.message),
    )
  })
})

/** A synthetic binlog: files of transactions (Gtid, Table_map, Write_rows, Xid), each file ended by a Rotate. */
function synthesize(files: Array<{name: string; txns: number}>): {events: BinlogEventRecord[]; txnEnds: Map<string, number[]>; rotateEnd: Map<string, number>} {
  const events: BinlogEventRecord[] = []
  const txnEnds = new Map<string, number[]>()
  const rotateEnd = new Map<string, number>()
  let seq = 1
  files.forEach(({name, txns}, index) => {
    let pos = 4
    const push = (type: number, typeName: string, size: number, extra: Partial<BinlogEventRecord> = {}): void => {
      events.push({file: name, startPos: pos, endPos: pos + size, sizeBytes: size, type, typeName, timestampSec: 1, serverId: 1, flags: 0, artificial: false, checksum: 'ok', ...extra})
      pos += size
    }
    push(15, 'Format_desc', 252)
    const ends: number[] = []
    for (let i = 0; i < txns; i++) {
      push(162, 'Gtid', 42, {gtid: `0-1-${seq}`})
      push(19, 'Table_map', 50, {table: 'app.t'})
      push(23, 'Write_rows_v1', 90, {table: 'app.t'})
      push(16, 'Xid', 31)
      ends.push(pos)
      seq++
    }
    txnEnds.set(name, ends)
    if (index < files.length - 1) {
      push(4, 'Rotate', 44, {rotate: {nextFile: files[index + 1]!.name, nextPos: 4}})
      rotateEnd.set(name, pos)
    }
  })
  return {events, txnEnds, rotateEnd}
}

function runAudit(events: BinlogEventRecord[], acks: ConsumerAck[], listLimit = 1000) {
  const auditor = new BinlogAuditor({
    acks,
    consumer: {kind: 'positions-file', name: 'test', acks: acks.length, gtidAcks: 0},
    files: [],
    listLimit,
    read: {kind: 'local-files', from: 'test', serverId: null, checksumsVerified: true},
  })
  for (const event of events) auditor.onEvent(event)
  return auditor.finish(1)
}

const at = (file: string, pos: number, line: number): ConsumerAck => ({line, file, pos, gtid: null})

describe('auditor', () => {
  const {events, txnEnds, rotateEnd} = synthesize([
    {name: 'b.1', txns: 4},
    {name: 'b.2', txns: 5},
    {name: 'b.3', txns: 4},
  ])
  const every = (files: string[]): ConsumerAck[] => files.flatMap((file) => txnEnds.get(file)!.map((pos) => ({file, pos}))).map(({file, pos}, i) => at(file, pos, i + 1))

  it('a consumer that acknowledged every transaction is complete', () => {
    const report = runAudit(events, every(['b.1', 'b.2', 'b.3']))
    assert.equal(report.verdict, 'complete')
    assert.deepEqual(report.files.map((f) => [f.file, f.status, f.deliveredTransactions]), [['b.1', 'complete', 4], ['b.2', 'complete', 5], ['b.3', 'complete', 4]])
    assert.equal(report.files[0]!.rotateEndPos, rotateEnd.get('b.1'))
  })

  it('a skipped file tail is lost, with every event of it, and the gap points at the next delivery', () => {
    const acks = every(['b.1', 'b.2', 'b.3']).filter((ack) => !(ack.file === 'b.2' && ack.pos! > txnEnds.get('b.2')![1]!))
    const report = runAudit(events, acks)
    assert.equal(report.verdict, 'lost')
    assert.deepEqual(report.lostTotals, {transactions: 3, events: 12})
    assert.deepEqual([...new Set(report.lost.map((e) => e.gtid))], ['0-1-7', '0-1-8', '0-1-9'])
    assert.equal(report.files[1]!.status, 'tail-lost')
    assert.equal(report.files[1]!.lastAckedPos, txnEnds.get('b.2')![1])
    assert.deepEqual(report.gaps[0]!.deliveredAfter, {file: 'b.3', startPos: 256})
    // The list is bounded, the totals are not.
    const short = runAudit(events, acks, 3)
    assert.equal(short.lost.length, 3)
    assert.equal(short.lostTotals.events, 12)
  })

  it('a GTID acknowledgement delivers its transaction; undelivered ones after the last are pending, not lost', () => {
    const acks: ConsumerAck[] = [1, 2, 3, 4, 5].map((seq) => ({line: seq, file: null, pos: null, gtid: `0-1-${seq}`}))
    const report = runAudit(events, acks)
    assert.equal(report.verdict, 'complete')
    assert.deepEqual(report.pendingTotals, {transactions: 8, events: 32})
    assert.equal(report.files[1]!.status, 'pending')
  })

  it('a position inside an event is an invalid resume point, and delivers nothing', () => {
    const acks = [...every(['b.1']), at('b.2', rotateEnd.get('b.1')!, 5), ...every(['b.3']).map((a) => ({...a, line: a.line + 5}))]
    const report = runAudit(events, acks)
    assert.equal(report.verdict, 'invalid-resume-point')
    const point = report.invalidResumePoints[0]!
    assert.equal(point.line, 5)
    assert.equal(point.reason, 'not-event-boundary')
    assert.deepEqual(point.rotateOf, {file: 'b.1', rotateEndPos: rotateEnd.get('b.1')})
    assert.ok(point.insideEvent!.startPos < point.pos && point.pos < point.insideEvent!.endPos)
    // b.2's four transactions before the position, and the fifth it falls in, would be skipped; all were lost.
    assert.deepEqual([point.wouldSkip.transactions, point.wouldSkip.firstGtid, point.wouldSkip.lastGtid], [5, '0-1-5', '0-1-9'])
    assert.equal(report.lostTotals.transactions, 5)
  })

  it('a position past the last event of its file is invalid', () => {
    const report = runAudit(events, [...every(['b.1']), at('b.1', rotateEnd.get('b.1')! + 100, 9)])
    assert.equal(report.invalidResumePoints[0]!.reason, 'beyond-file-end')
  })

  it('checksum damage makes the verdict corrupt, worst first', () => {
    const damaged = events.map((event, i) => (i === 10 ? {...event, checksum: 'mismatch' as const, crcStored: 1, crcComputed: 2} : event))
    const report = runAudit(damaged, every(['b.1', 'b.2', 'b.3']))
    assert.equal(report.verdict, 'corrupt')
    assert.deepEqual(report.checksumProblems.map((p) => [p.kind, p.offset]), [['crc-mismatch', events[10]!.startPos]])
  })
})

describe('raw binlog file reader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrydiag-binlog-unit-'))
  after(() => rmSync(dir, {recursive: true, force: true}))

  /** One event with a CRC32; `endPos` is where it ends in the file. */
  function event(type: number, body: Buffer, startPos: number): Buffer {
    const size = 19 + body.length + 4
    const header = Buffer.alloc(19)
    header.writeUInt32LE(1_700_000_000, 0)
    header[4] = type
    header.writeUInt32LE(7, 5)
    header.writeUInt32LE(size, 9)
    header.writeUInt32LE(startPos + size, 13)
    const bytes = Buffer.concat([header, body, Buffer.alloc(4)])
    bytes.writeUInt32LE(crc32(bytes.subarray(0, size - 4)), size - 4)
    return bytes
  }

  function formatDescription(startPos: number): Buffer {
    const body = Buffer.alloc(2 + 50 + 4 + 1 + 1) // version, server version, created, header length, checksum alg
    body.writeUInt16LE(4, 0)
    body[56] = 19
    body[57] = 1 // CRC32
    return event(15, body, startPos)
  }

  function gtid(seq: number, startPos: number): Buffer {
    const body = Buffer.alloc(19)
    body.writeBigUInt64LE(BigInt(seq), 0)
    body.writeUInt32LE(0, 8)
    return event(162, body, startPos)
  }

  it('decodes headers, GTIDs and CRC32, and tells a torn tail from a corrupt event', async () => {
    const parts: Buffer[] = [BINLOG_MAGIC]
    let pos = 4
    for (const make of [formatDescription, (p: number) => gtid(41, p), (p: number) => gtid(42, p)]) {
      const bytes = make(pos)
      parts.push(bytes)
      pos += bytes.length
    }
    const whole = Buffer.concat(parts)
    const good = join(dir, 'good.000001')
    writeFileSync(good, whole)
    const seen: string[] = []
    const summary = await readBinlogFile(good, (e) => seen.push(`${e.typeName}@${e.startPos}..${e.endPos}:${e.gtid ?? ''}:${e.checksum}`), {verifyChecksums: true})
    assert.deepEqual(seen, ['Format_desc@4..85::ok', 'Gtid@85..127:0-7-41:ok', 'Gtid@127..169:0-7-42:ok'])
    assert.equal(summary.damage, undefined)

    const torn = join(dir, 'torn.000001')
    writeFileSync(torn, whole.subarray(0, whole.length - 10))
    const tornSummary = await readBinlogFile(torn, () => {}, {verifyChecksums: true})
    assert.deepEqual(tornSummary.damage, {kind: 'torn-tail', offset: 127, declaredSizeBytes: 42, availableBytes: 32, declaredEndPos: 169})

    const flipped = Buffer.from(whole)
    flipped[106] = flipped[106]! ^ 0xff // inside the first Gtid event's body
    const corrupt = join(dir, 'corrupt.000001')
    writeFileSync(corrupt, flipped)
    const checks: string[] = []
    await readBinlogFile(corrupt, (e) => checks.push(e.checksum), {verifyChecksums: true})
    assert.deepEqual(checks, ['ok', 'mismatch', 'ok'])
  })
})
