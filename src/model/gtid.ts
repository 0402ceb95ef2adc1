// GTIDs of both flavours as plain data, with their parsers: MariaDB `domain-server-seq` (and GTID lists such
// as @@gtid_binlog_pos or a Gtid_list event's `[0-1-100,1-2-7]`), MySQL `UUID:N[-M][:N[-M]…]` sets, and
// the selections `binlog diff --gtid` accepts (single GTIDs, lists and domain-wide sequence ranges).

import {FerrydiagError} from '../errors.js'

/** A MariaDB GTID: replication domain, originating server id, sequence number within the domain. */
export interface MariadbGtid {
  flavor: 'mariadb'
  domainId: number
  serverId: number
  seqNo: number
}

/** A MySQL GTID: source UUID (lower case) and transaction number; tag for MySQL 8.3+ tagged GTIDs. */
export interface MysqlGtid {
  flavor: 'mysql'
  uuid: string
  tag?: string
  gno: number
}

export type Gtid = MariadbGtid | MysqlGtid

/** Inclusive interval of sequence numbers (MariaDB seqNo or MySQL gno). */
export interface SeqInterval {
  from: number
  to: number
}

/** One item of a selection: one exact GTID, or every transaction whose GTID falls in a range. */
export type GtidSelectionItem =
  | {kind: 'gtid'; gtid: Gtid}
  /**
   * MariaDB: every transaction of the domain with from <= seqNo <= to, whatever its server id
   * (sequence numbers run domain-wide: a promoted primary continues the numbering).
   */
  | {kind: 'mariadbRange'; domainId: number; from: number; to: number}
  /** MySQL: transactions of one source UUID (and tag) with gno in the interval. */
  | {kind: 'mysqlInterval'; uuid: string; tag?: string; from: number; to: number}

export interface GtidSelection {
  /** The text as given, for messages and --json. */
  text: string
  items: GtidSelectionItem[]
}

const UINT32_MAX = 4_294_967_295
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i
const TAG = /^[a-z_][a-z0-9_]{0,31}$/i

const SELECTION_HELP =
  'Write a MariaDB GTID as DOMAIN-SERVER-SEQ (0-1-100), a range as 0-1-100..0-1-200 (or 0-1-100..200), a list separated by commas; MySQL: UUID:N or UUID:N-M.'

function badGtid(text: string, problem: string): FerrydiagError {
  return new FerrydiagError('badGtid', `Malformed GTID \`${text}\`: ${problem}`, SELECTION_HELP)
}

function parseUint(text: string, whole: string, what: string, max: number): number {
  if (!/^\d+$/.test(text)) throw badGtid(whole, `expected the ${what} as a whole number, got \`${text}\``)
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value > max) throw badGtid(whole, `the ${what} ${text} is above ${max === UINT32_MAX ? '2^32-1' : '2^53-1 (larger values are not supported)'}`)
  return value
}

/** Parses `domain-server-seq`; throws FerrydiagError badGtid. */
export function parseMariadbGtid(text: string): MariadbGtid {
  const parts = text.trim().split('-')
  if (parts.length !== 3) throw badGtid(text, `expected DOMAIN-SERVER-SEQ (three numbers separated by -), got ${parts.length} part${parts.length === 1 ? '' : 's'}`)
  return {
    flavor: 'mariadb',
    domainId: parseUint(parts[0]!, text, 'domain id', UINT32_MAX),
    serverId: parseUint(parts[1]!, text, 'server id', UINT32_MAX),
    seqNo: parseUint(parts[2]!, text, 'sequence number', Number.MAX_SAFE_INTEGER),
  }
}

function normaliseUuid(text: string, whole: string): string {
  if (!UUID.test(text)) throw badGtid(whole, `expected a source UUID like 3e11fa47-71ca-11e1-9e33-c80aa9429562, got \`${text}\``)
  const hex = text.replace(/-/g, '').toLowerCase()
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

function parseInterval(text: string, whole: string): SeqInterval {
  const [low, high, extra] = text.split('-')
  if (extra !== undefined || low === undefined) throw badGtid(whole, `expected N or N-M, got \`${text}\``)
  const from = parseUint(low, whole, 'transaction number', Number.MAX_SAFE_INTEGER)
  const to = high === undefined ? from : parseUint(high, whole, 'transaction number', Number.MAX_SAFE_INTEGER)
  if (from < 1) throw badGtid(whole, 'MySQL transaction numbers start at 1')
  if (to < from) throw badGtid(whole, `the interval ${text} runs backwards`)
  return {from, to}
}

/** One source of a MySQL GTID set: UUID, optional tag, intervals. */
export interface MysqlGtidSetEntry {
  uuid: string
  tag?: string
  intervals: SeqInterval[]
}

/**
 * Parses a MySQL GTID set (`uuid:1-5:7,uuid2:1-3`, tagged form `uuid:tag:1-5` from MySQL 8.3); an empty
 * string is the empty set. Throws FerrydiagError badGtid.
 */
export function parseMysqlGtidSet(text: string): MysqlGtidSetEntry[] {
  const entries: MysqlGtidSetEntry[] = []
  const body = text.replace(/\s+/g, '')
  if (body === '') return entries
  for (const part of body.split(',')) {
    const [uuidText, ...rest] = part.split(':')
    const uuid = normaliseUuid(uuidText ?? '', text)
    if (rest.length === 0) throw badGtid(text, `\`${part}\` has no transaction numbers after the UUID`)
    let tag: string | undefined
    let current: MysqlGtidSetEntry = {uuid, intervals: []}
    entries.push(current)
    for (const piece of rest) {
      if (TAG.test(piece)) {
        tag = piece.toLowerCase()
        if (current.intervals.length > 0 || current.tag !== undefined) {
          current = {uuid, tag, intervals: []}
          entries.push(current)
        } else current.tag = tag
        continue
      }
      current.intervals.push(parseInterval(piece, text))
    }
    if (entries.some((entry) => entry.intervals.length === 0)) throw badGtid(text, `\`${part}\` has a tag without transaction numbers`)
  }
  return entries
}

/** Parses one MySQL GTID `uuid:N` (or `uuid:tag:N`). */
export function parseMysqlGtid(text: string): MysqlGtid {
  const [entry, ...more] = parseMysqlGtidSet(text)
  if (entry === undefined || more.length > 0 || entry.intervals.length !== 1 || entry.intervals[0]!.from !== entry.intervals[0]!.to) {
    throw badGtid(text, 'expected one GTID UUID:N')
  }
  return {flavor: 'mysql', uuid: entry.uuid, ...(entry.tag === undefined ? {} : {tag: entry.tag}), gno: entry.intervals[0]!.from}
}

/** Either flavour, told apart by the `:` MySQL GTIDs have. */
export function parseGtid(text: string): Gtid {
  return text.includes(':') ? parseMysqlGtid(text.trim()) : parseMariadbGtid(text)
}

/** The canonical text of a GTID: `0-1-100` or `3e11fa47-…:100`. Also the key GTIDs are compared by. */
export function formatGtid(gtid: Gtid): string {
  if (gtid.flavor === 'mariadb') return `${gtid.domainId}-${gtid.serverId}-${gtid.seqNo}`
  return gtid.tag === undefined ? `${gtid.uuid}:${gtid.gno}` : `${gtid.uuid}:${gtid.tag}:${gtid.gno}`
}

/**
 * Parses a MariaDB GTID list: @@gtid_binlog_pos / @@gtid_binlog_state (`0-1-100,1-2-7`), or the Info
 * column of a Gtid_list event (`[0-1-100,1-2-7]`, `[]` when empty).
 */
export function parseMariadbGtidList(text: string): MariadbGtid[] {
  const body = text.trim().replace(/^\[/, '').replace(/\]$/, '').trim()
  if (body === '') return []
  return body.split(',').map((part) => parseMariadbGtid(part))
}

function parseSelectionItem(item: string, whole: string): GtidSelectionItem {
  const dots = item.indexOf('..')
  if (dots < 0) {
    if (item.includes(':')) {
      const [entry, ...more] = parseMysqlGtidSet(item)
      if (entry === undefined || more.length > 0 || entry.intervals.length !== 1) throw badGtid(whole, `\`${item}\`: give one interval per item`)
      const {from, to} = entry.intervals[0]!
      if (from === to) return {kind: 'gtid', gtid: {flavor: 'mysql', uuid: entry.uuid, ...(entry.tag === undefined ? {} : {tag: entry.tag}), gno: from}}
      return {kind: 'mysqlInterval', uuid: entry.uuid, ...(entry.tag === undefined ? {} : {tag: entry.tag}), from, to}
    }
    return {kind: 'gtid', gtid: parseMariadbGtid(item)}
  }
  const low = parseMariadbGtid(item.slice(0, dots))
  const highText = item.slice(dots + 2)
  const high = /^\d+$/.test(highText.trim())
    ? {domainId: low.domainId, seqNo: parseUint(highText.trim(), whole, 'sequence number', Number.MAX_SAFE_INTEGER)}
    : parseMariadbGtid(highText)
  if (high.domainId !== low.domainId) {
    throw badGtid(whole, `a range stays within one domain (sequence numbers of different domains are unrelated), got domains ${low.domainId} and ${high.domainId}`)
  }
  if (high.seqNo < low.seqNo) throw badGtid(whole, `the range ${item} runs backwards`)
  return {kind: 'mariadbRange', domainId: low.domainId, from: low.seqNo, to: high.seqNo}
}

/**
 * Parses what `--gtid` accepts: comma-separated items, each a GTID (`0-1-100`, `uuid:5`), a MariaDB range
 * (`0-1-100..0-1-200` or `0-1-100..200`: domain 0, sequence numbers 100 to 200 inclusive, any server
 * id) or a MySQL interval (`uuid:100-200`). Throws FerrydiagError badGtid.
 */
export function parseGtidSelection(text: string): GtidSelection {
  const items = text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
  if (items.length === 0) throw badGtid(text, 'empty')
  return {text, items: items.map((item) => parseSelectionItem(item, text))}
}

/** True when the selection covers the GTID. */
export function selectionCovers(selection: GtidSelection, gtid: Gtid): boolean {
  return selection.items.some((item) => {
    switch (item.kind) {
      case 'gtid':
        return formatGtid(item.gtid) === formatGtid(gtid)
      case 'mariadbRange':
        return gtid.flavor === 'mariadb' && gtid.domainId === item.domainId && gtid.seqNo >= item.from && gtid.seqNo <= item.to
      case 'mysqlInterval':
        return gtid.flavor === 'mysql' && gtid.uuid === item.uuid && gtid.tag === item.tag && gtid.gno >= item.from && gtid.gno <= item.to
    }
  })
}

/**
 * MariaDB: per domain, the lowest and highest sequence numbers the selection can match (where reading
 * must start and may stop). MySQL items do not contribute.
 */
export function seqBoundsByDomain(selection: GtidSelection): Map<number, SeqInterval> {
  const bounds = new Map<number, SeqInterval>()
  for (const item of selection.items) {
    const entry =
      item.kind === 'mariadbRange'
        ? {domainId: item.domainId, from: item.from, to: item.to}
        : item.kind === 'gtid' && item.gtid.flavor === 'mariadb'
          ? {domainId: item.gtid.domainId, from: item.gtid.seqNo, to: item.gtid.seqNo}
          : undefined
    if (entry === undefined) continue
    const known = bounds.get(entry.domainId)
    bounds.set(entry.domainId, known === undefined ? {from: entry.from, to: entry.to} : {from: Math.min(known.from, entry.from), to: Math.max(known.to, entry.to)})
  }
  return bounds
}
