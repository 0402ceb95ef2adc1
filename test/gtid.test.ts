// src/model/gtid: MariaDB domain-server-seq GTIDs and lists, MySQL UUID:N sets, and --gtid selections.

import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {EXIT, FerrydiagError} from '../src/errors.js'
import {
  formatGtid,
  parseGtid,
  parseGtidSelection,
  parseMariadbGtidList,
  parseMysqlGtidSet,
  selectionCovers,
  seqBoundsByDomain,
} from '../src/model/gtid.js'

function rejects(fn: () => unknown, pattern: RegExp): void {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof FerrydiagError, String(error))
    assert.equal(error.code, 'badGtid')
    assert.equal(error.exit, EXIT.badGtid)
    assert.doesNotMatch(error.message, /\n/)
    assert.match(error.message, pattern)
    return
  }
  assert.fail('expected badGtid')
}

const UUID = '3e11fa47-71ca-11e1-9e33-c80aa9429562'

describe('MariaDB GTIDs', () => {
  it('parses domain-server-seq and formats it back', () => {
    assert.deepEqual(parseGtid('0-1-100'), {flavor: 'mariadb', domainId: 0, serverId: 1, seqNo: 100})
    assert.equal(formatGtid(parseGtid(' 7-4294967295-9007199254740991 ')), '7-4294967295-9007199254740991')
  })
  it('parses GTID lists as the server prints them and as a Gtid_list event shows them', () => {
    assert.deepEqual(parseMariadbGtidList('0-1-100,1-2-7').map(formatGtid), ['0-1-100', '1-2-7'])
    assert.deepEqual(parseMariadbGtidList('[0-10-5, 0-11-9]').map(formatGtid), ['0-10-5', '0-11-9'])
    assert.deepEqual(parseMariadbGtidList('[]'), [])
    assert.deepEqual(parseMariadbGtidList(''), [])
  })
  it('rejects malformed GTIDs with one line naming the problem', () => {
    rejects(() => parseGtid('0-1'), /three numbers/)
    rejects(() => parseGtid('0-1-x'), /sequence number as a whole number, got `x`/)
    rejects(() => parseGtid('0-4294967296-1'), /server id 4294967296 is above 2\^32-1/)
    rejects(() => parseGtid('0-1-18446744073709551615'), /above 2\^53-1/)
    rejects(() => parseGtid('-1-1-1'), /DOMAIN-SERVER-SEQ/)
  })
})

describe('MySQL GTIDs', () => {
  it('parses UUID:N and sets with intervals, tags and upper-case UUIDs', () => {
    assert.deepEqual(parseGtid(`${UUID.toUpperCase()}:295533`), {flavor: 'mysql', uuid: UUID, gno: 295533})
    assert.equal(formatGtid(parseGtid(`${UUID}:295533`)), `${UUID}:295533`)
    assert.deepEqual(parseMysqlGtidSet(`${UUID}:1-5:7, aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa:1-3:tag_a:1`), [
      {uuid: UUID, intervals: [{from: 1, to: 5}, {from: 7, to: 7}]},
      {uuid: 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', intervals: [{from: 1, to: 3}]},
      {uuid: 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa', tag: 'tag_a', intervals: [{from: 1, to: 1}]},
    ])
    assert.deepEqual(parseMysqlGtidSet(''), [])
  })
  it('rejects a bad UUID, an empty or backwards interval and gno 0', () => {
    rejects(() => parseGtid('nope:5'), /source UUID/)
    rejects(() => parseMysqlGtidSet(UUID), /no transaction numbers/)
    rejects(() => parseMysqlGtidSet(`${UUID}:9-3`), /runs backwards/)
    rejects(() => parseGtid(`${UUID}:0`), /start at 1/)
    rejects(() => parseGtid(`${UUID}:1-4`), /one GTID/)
  })
})

describe('--gtid selections', () => {
  it('covers single GTIDs exactly, server id included', () => {
    const selection = parseGtidSelection('0-1-100')
    assert.ok(selectionCovers(selection, parseGtid('0-1-100')))
    assert.ok(!selectionCovers(selection, parseGtid('0-2-100')))
    assert.ok(!selectionCovers(selection, parseGtid('1-1-100')))
  })
  it('a MariaDB range covers its domain from..to inclusive, any server id', () => {
    for (const text of ['0-1-100..0-1-200', '0-1-100..200', '0-1-100..0-2-200']) {
      const selection = parseGtidSelection(text)
      assert.deepEqual(selection.items, [{kind: 'mariadbRange', domainId: 0, from: 100, to: 200}])
      assert.ok(selectionCovers(selection, parseGtid('0-1-100')))
      assert.ok(selectionCovers(selection, parseGtid('0-9-200')))
      assert.ok(!selectionCovers(selection, parseGtid('0-1-201')))
      assert.ok(!selectionCovers(selection, parseGtid('0-1-99')))
      assert.ok(!selectionCovers(selection, parseGtid('1-1-150')))
    }
  })
  it('lists mix items; bounds per domain span them', () => {
    const selection = parseGtidSelection('0-1-5, 0-1-100..120,3-7-9')
    assert.equal(selection.items.length, 3)
    assert.deepEqual([...seqBoundsByDomain(selection)], [
      [0, {from: 5, to: 120}],
      [3, {from: 9, to: 9}],
    ])
  })
  it('MySQL intervals select by UUID and gno', () => {
    const selection = parseGtidSelection(`${UUID}:10-20`)
    assert.ok(selectionCovers(selection, parseGtid(`${UUID}:15`)))
    assert.ok(!selectionCovers(selection, parseGtid(`${UUID}:21`)))
    assert.ok(!selectionCovers(selection, parseGtid(`aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa:15`)))
    assert.equal(seqBoundsByDomain(selection).size, 0)
  })
  it('rejects ranges across domains, backwards ranges and empty input', () => {
    rejects(() => parseGtidSelection('0-1-1..1-1-5'), /one domain/)
    rejects(() => parseGtidSelection('0-1-10..5'), /runs backwards/)
    rejects(() => parseGtidSelection(' , '), /empty/)
    rejects(() => parseGtidSelection('0-1-1..x'), /DOMAIN-SERVER-SEQ|three numbers/)
  })
})
