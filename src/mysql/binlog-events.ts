// A raw binlog event reader (binlog format v4, MariaDB and MySQL): each event's header (timestamp,
// type, server id, size, end position, flags), its GTID, rotate and table-map decoding, and its CRC32,
// read either from a local binlog file or from a server over its own replication connection.
//
// Generic on purpose: it knows nothing of consumers or audits. `ferrydiag binlog audit` uses it; any
// command that needs event boundaries or raw bytes can too. Memory is bounded: a file is read in 64 KiB
// chunks, and a replication stream is handled one packet at a time, synchronously (nothing queues).

import {open} from 'node:fs/promises'
import {randomInt} from 'node:crypto'
import {crc32} from 'node:zlib'
import type {Connection} from 'mysql2/promise'
import {FerrydiagError} from '../errors.js'
import type {BinlogEventHeader, BinlogEventRecord} from '../model/binlog-audit.js'
import {mapStreamError} from './binlog-counter.js'
import {connectMysql} from './connect.js'
import {describeEndpoint, parseDsn, type ParsedDsn} from './dsn.js'

/** Every v4 event starts with this 19-byte header. */
export const EVENT_HEADER_BYTES = 19
/** A binlog file starts with these 4 bytes; the first event is at offset 4. */
export const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e])
export const FIRST_EVENT_POS = 4
const CRC_BYTES = 4
/** LOG_EVENT_ARTIFICIAL_F: an event the server made up for the stream (e.g. the first Rotate); not in any file. */
export const ARTIFICIAL_EVENT_FLAG = 0x20

/** Event type codes we name (MySQL's and MariaDB's; 160+ are MariaDB's). */
export const EVENT_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'Start_v3',
  2: 'Query',
  3: 'Stop',
  4: 'Rotate',
  5: 'Intvar',
  13: 'Rand',
  14: 'User_var',
  15: 'Format_desc',
  16: 'Xid',
  19: 'Table_map',
  23: 'Write_rows_v1',
  24: 'Update_rows_v1',
  25: 'Delete_rows_v1',
  27: 'Heartbeat',
  29: 'Rows_query',
  30: 'Write_rows',
  31: 'Update_rows',
  32: 'Delete_rows',
  33: 'Gtid',
  34: 'Anonymous_gtid',
  35: 'Previous_gtids',
  160: 'Annotate_rows',
  161: 'Binlog_checkpoint',
  162: 'Gtid',
  163: 'Gtid_list',
  164: 'Start_encryption',
  165: 'Query_compressed',
  166: 'Write_rows_compressed_v1',
  167: 'Update_rows_compressed_v1',
  168: 'Delete_rows_compressed_v1',
  169: 'Write_rows_compressed',
  170: 'Update_rows_compressed',
  171: 'Delete_rows_compressed',
}

export const EVENT_TYPE = {
  query: 2,
  rotate: 4,
  formatDescription: 15,
  xid: 16,
  tableMap: 19,
  heartbeat: 27,
  mysqlGtid: 33,
  mariadbGtid: 162,
} as const

const ROWS_EVENT_TYPES = new Set([23, 24, 25, 30, 31, 32, 166, 167, 168, 169, 170, 171])

export function isRowsEventType(type: number): boolean {
  return ROWS_EVENT_TYPES.has(type)
}

export function eventTypeName(type: number): string {
  return EVENT_TYPE_NAMES[type] ?? `Unknown_${type}`
}

export type {BinlogEventHeader, ChecksumState} from '../model/binlog-audit.js'

/** One decoded event (see BinlogEventRecord), with its bytes when the decoder keeps them. */
export interface BinlogEvent extends BinlogEventRecord {
  /** The event's bytes, header included, when the decoder keeps them (a copy). */
  raw?: Buffer
}

export interface DecoderOptions {
  /** File name of the first event (updated by Rotate events). */
  file: string
  /** Check each event's CRC32 (when the binlog has checksums). */
  verifyChecksums?: boolean
  /** Attach a copy of each event's bytes. */
  keepRaw?: boolean
  /** Checksum algorithm before any Format_desc is seen (a replication stream sends a Rotate first). */
  checksumAlg?: number
}

/** Decodes whole events in order, remembering the checksum algorithm and table ids. */
export class BinlogEventDecoder {
  file: string
  private checksumAlg: number
  private readonly verify: boolean
  private readonly keepRaw: boolean
  // table id -> schema.table; cleared at each Format_desc (a new file reuses ids)
  private readonly tables = new Map<number, string>()

  constructor(options: DecoderOptions) {
    this.file = options.file
    this.verify = options.verifyChecksums ?? false
    this.keepRaw = options.keepRaw ?? false
    this.checksumAlg = options.checksumAlg ?? 0
  }

  /** Reads just the header at `offset` of `bytes` (needs 19 bytes there). */
  static readHeader(bytes: Buffer, offset = 0): BinlogEventHeader {
    return {
      timestampSec: bytes.readUInt32LE(offset),
      type: bytes[offset + 4]!,
      serverId: bytes.readUInt32LE(offset + 5),
      sizeBytes: bytes.readUInt32LE(offset + 9),
      endPos: bytes.readUInt32LE(offset + 13),
      flags: bytes.readUInt16LE(offset + 17),
    }
  }

  /**
   * Decodes one event from its whole bytes. A body too short for its type is reported as what it is
   * (the header), never thrown: corrupt input must not stop a reader that is counting damage.
   */
  decode(bytes: Buffer): BinlogEvent {
    const type = bytes[4]!
    const flags = bytes.readUInt16LE(17)
    const sizeBytes = bytes.readUInt32LE(9)
    const endPos = bytes.readUInt32LE(13)
    // One literal with every field, so all events share one object shape (this runs per event).
    const event: BinlogEvent = {
      timestampSec: bytes.readUInt32LE(0),
      type,
      serverId: bytes.readUInt32LE(5),
      sizeBytes,
      endPos,
      flags,
      file: this.file,
      startPos: endPos - sizeBytes,
      typeName: eventTypeName(type),
      artificial: (flags & ARTIFICIAL_EVENT_FLAG) !== 0 || endPos === 0,
      gtid: undefined,
      gtidStandalone: undefined,
      rotate: undefined,
      table: undefined,
      queryPrefix: undefined,
      checksumAlg: undefined,
      checksum: 'none',
      crcStored: undefined,
      crcComputed: undefined,
      raw: undefined,
    }
    const header = event
    let alg = this.checksumAlg
    if (header.type === EVENT_TYPE.formatDescription && bytes.length >= EVENT_HEADER_BYTES + 57 + CRC_BYTES + 1) {
      // The algorithm byte sits just before the 4 checksum bytes, which a Format_desc always carries.
      alg = bytes[bytes.length - CRC_BYTES - 1]!
      event.checksumAlg = alg
      this.checksumAlg = alg
      this.tables.clear()
    }
    const hasCrc = alg === 1 && bytes.length >= EVENT_HEADER_BYTES + CRC_BYTES
    const bodyEnd = hasCrc ? bytes.length - CRC_BYTES : bytes.length
    if (hasCrc && this.verify) {
      const stored = bytes.readUInt32LE(bodyEnd)
      const computed = crc32(bytes.subarray(0, bodyEnd))
      event.checksum = stored === computed ? 'ok' : 'mismatch'
      if (stored !== computed) {
        event.crcStored = stored
        event.crcComputed = computed
      }
    }
    try {
      this.decodeBody(event, bytes, bodyEnd)
    } catch {
      // a damaged body: the header is still worth reporting
    }
    if (this.keepRaw) event.raw = Buffer.from(bytes)
    return event
  }

  private decodeBody(event: BinlogEvent, bytes: Buffer, bodyEnd: number): void {
    const body = EVENT_HEADER_BYTES
    switch (event.type) {
      case EVENT_TYPE.rotate: {
        const nextPos = Number(bytes.readBigUInt64LE(body))
        const nextFile = bytes.toString('latin1', body + 8, bodyEnd)
        event.rotate = {nextFile, nextPos}
        this.file = nextFile
        break
      }
      case EVENT_TYPE.mariadbGtid: {
        const seq = bytes.readBigUInt64LE(body)
        const domain = bytes.readUInt32LE(body + 8)
        const flags = bytes[body + 12]!
        event.gtid = `${domain}-${event.serverId}-${seq}`
        event.gtidStandalone = (flags & 1) !== 0
        break
      }
      case EVENT_TYPE.mysqlGtid: {
        const sid = bytes.subarray(body + 1, body + 17).toString('hex')
        const uuid = `${sid.slice(0, 8)}-${sid.slice(8, 12)}-${sid.slice(12, 16)}-${sid.slice(16, 20)}-${sid.slice(20)}`
        event.gtid = `${uuid}:${bytes.readBigUInt64LE(body + 17)}`
        break
      }
      case EVENT_TYPE.tableMap: {
        const tableId = readUInt48(bytes, body)
        let at = body + 8
        const schemaLen = bytes[at]!
        const schema = bytes.toString('utf8', at + 1, at + 1 + schemaLen)
        at += 1 + schemaLen + 1
        const tableLen = bytes[at]!
        const table = bytes.toString('utf8', at + 1, at + 1 + tableLen)
        event.table = `${schema}.${table}`
        this.tables.set(tableId, event.table)
        break
      }
      case EVENT_TYPE.query: {
        // post-header: thread id 4, exec time 4, schema length 1, error code 2, status vars length 2
        const schemaLen = bytes[body + 8]!
        const statusLen = bytes.readUInt16LE(body + 11)
        const textAt = body + 13 + statusLen + schemaLen + 1
        event.queryPrefix = bytes.toString('utf8', textAt, Math.min(bodyEnd, textAt + 64))
        break
      }
      default:
        if (isRowsEventType(event.type)) {
          const table = this.tables.get(readUInt48(bytes, body))
          if (table !== undefined) event.table = table
        }
    }
  }
}

function readUInt48(bytes: Buffer, at: number): number {
  return bytes.readUInt32LE(at) + bytes.readUInt16LE(at + 4) * 0x1_0000_0000
}

/** What stopped a file from being read to its end. */
export interface FileDamage {
  kind: 'torn-tail' | 'bad-header' | 'bad-magic'
  /** Offset of the event (or of the file start for bad-magic). */
  offset: number
  /** Size the header declares. */
  declaredSizeBytes?: number
  /** Bytes actually there from offset to the end of the file. */
  availableBytes?: number
  /** The header's end position, which for an intact header is offset + declared size. */
  declaredEndPos?: number
}

export interface FileReadSummary {
  path: string
  file: string
  sizeBytes: number
  events: number
  /** End of the last whole event. */
  lastEndPos: number
  damage?: FileDamage
}

/**
 * Reads a binlog file from disk event by event (64 KiB reads, one event held at a time). A header that
 * declares more bytes than remain, and whose end position agrees with its size, is a torn tail (the
 * writer or the copy stopped mid-event); a header whose size and end position disagree is damaged.
 */
export async function readBinlogFile(
  path: string,
  onEvent: (event: BinlogEvent) => void,
  options: {file?: string; verifyChecksums?: boolean; keepRaw?: boolean} = {},
): Promise<FileReadSummary> {
  const file = options.file ?? path.split('/').pop()!
  const handle = await open(path, 'r')
  try {
    const sizeBytes = (await handle.stat()).size
    const summary: FileReadSummary = {path, file, sizeBytes, events: 0, lastEndPos: FIRST_EVENT_POS}
    const magic = Buffer.alloc(4)
    await handle.read(magic, 0, 4, 0)
    if (sizeBytes < 4 || !magic.equals(BINLOG_MAGIC)) {
      summary.damage = {kind: 'bad-magic', offset: 0}
      summary.lastEndPos = 0
      return summary
    }
    const decoder = new BinlogEventDecoder({file, verifyChecksums: options.verifyChecksums, keepRaw: options.keepRaw})
    let chunk = Buffer.alloc(0)
    let chunkAt = FIRST_EVENT_POS // file offset of chunk[0]
    let pos = FIRST_EVENT_POS
    const readBuffer = Buffer.alloc(64 * 1024)
    let eof = false
    // Ensure chunk holds [pos, pos + need) or as much as the file has.
    const fill = async (need: number): Promise<void> => {
      while (!eof && chunkAt + chunk.length < pos + need) {
        const {bytesRead} = await handle.read(readBuffer, 0, readBuffer.length, chunkAt + chunk.length)
        if (bytesRead === 0) {
          eof = true
          break
        }
        chunk = Buffer.concat([chunk.subarray(pos - chunkAt), readBuffer.subarray(0, bytesRead)])
        chunkAt = pos
      }
    }
    while (pos < sizeBytes) {
      await fill(EVENT_HEADER_BYTES)
      const available = sizeBytes - pos
      if (available < EVENT_HEADER_BYTES) {
        summary.damage = {kind: 'torn-tail', offset: pos, availableBytes: available}
        break
      }
      const header = BinlogEventDecoder.readHeader(chunk, pos - chunkAt)
      const consistent = header.endPos === pos + header.sizeBytes
      if (header.sizeBytes < EVENT_HEADER_BYTES || !consistent) {
        summary.damage = {kind: 'bad-header', offset: pos, declaredSizeBytes: header.sizeBytes, availableBytes: available, declaredEndPos: header.endPos}
        break
      }
      if (header.sizeBytes > available) {
        summary.damage = {kind: 'torn-tail', offset: pos, declaredSizeBytes: header.sizeBytes, availableBytes: available, declaredEndPos: header.endPos}
        break
      }
      await fill(header.sizeBytes)
      const at = pos - chunkAt
      onEvent(decoder.decode(chunk.subarray(at, at + header.sizeBytes)))
      summary.events++
      pos += header.sizeBytes
      summary.lastEndPos = pos
    }
    return summary
  } finally {
    await handle.close()
  }
}

export interface ReplicationStreamOptions {
  /** File and position to start at (position 4: the file's start). */
  file: string
  pos?: number
  /** Replication server id; default a random id in [2e9, 2^32-2] (see binlog-counter). */
  serverId?: number
  /** Stop at the end of the binlog (BINLOG_DUMP_NON_BLOCK) instead of waiting for new events. Default true. */
  nonBlocking?: boolean
  verifyChecksums?: boolean
  keepRaw?: boolean
  connectTimeoutMs?: number
  /**
   * Called for every event, artificial ones included, synchronously: the connection reads no further
   * packet until it returns. Return false to stop the stream.
   */
  onEvent: (event: BinlogEvent) => boolean | void
}

export interface ReplicationStreamSummary {
  serverId: number
  events: number
  endedBy: 'end-of-binlog' | 'stopped'
  /** Source's @@binlog_checksum: 'CRC32' or 'NONE'. */
  binlogChecksum: string
}

/** The mysql2 core connection fields this reader drives (mysql2 has no public raw binlog stream). */
interface CoreConnection {
  addCommand(command: unknown): unknown
  write(buffer: Buffer): void
  _resetSequenceId(): void
  sequenceId: number
  clientEncoding?: string
  destroy(): void
}

interface DriverPacket {
  buffer: Buffer
  offset: number
  end: number
  isEOF(): boolean
  isError(): boolean
  asError(encoding?: string): Error
}

const COM_BINLOG_DUMP = 0x12
const BINLOG_DUMP_NON_BLOCK = 1
/** MariaDB sends Annotate_rows events only when asked: we want every event the file holds. */
const BINLOG_SEND_ANNOTATE_ROWS_EVENT = 2

function dumpPacket(file: string, pos: number, serverId: number, flags: number): Buffer {
  const name = Buffer.from(file, 'latin1')
  const payload = Buffer.alloc(11 + name.length)
  payload[0] = COM_BINLOG_DUMP
  payload.writeUInt32LE(pos, 1)
  payload.writeUInt16LE(flags, 5)
  payload.writeUInt32LE(serverId, 7)
  name.copy(payload, 11)
  const header = Buffer.alloc(4)
  header.writeUIntLE(payload.length, 0, 3)
  header[3] = 0 // sequence id of a command's first packet
  return Buffer.concat([header, payload])
}

/**
 * Streams events from `file:pos` over the source's replication protocol (COM_BINLOG_DUMP) under a
 * random high server id, never one a pipeline uses. Needs REPLICATION SLAVE. The server sends events
 * as stored, checksums included, so `verifyChecksums` checks the bytes on the server's disk. Rejects
 * with FerrydiagError: mysqlGrant, mysqlLost (source gone mid-read), binlogPurged (file not there).
 */
export async function streamBinlogEvents(dsn: string | ParsedDsn, options: ReplicationStreamOptions): Promise<ReplicationStreamSummary> {
  const parsed = typeof dsn === 'string' ? parseDsn(dsn) : dsn
  const serverId = options.serverId ?? randomInt(2_000_000_000, 4_294_967_295)
  const conn = await connectMysql(parsed, {role: 'source', connectTimeoutMs: options.connectTimeoutMs})
  let binlogChecksum = 'NONE'
  try {
    binlogChecksum = await announceChecksum(conn)
    // MariaDB: receive Gtid events as they are (capability 4, MARIA_SLAVE_CAPABILITY_GTID), not rewritten as BEGIN.
    await conn.query('SET @mariadb_slave_capability = 4').catch(() => {})
  } catch (error) {
    conn.destroy()
    throw mapStreamError(error, parsed, serverId)
  }
  const core = (conn as unknown as {connection: CoreConnection}).connection
  const decoder = new BinlogEventDecoder({
    file: options.file,
    verifyChecksums: options.verifyChecksums,
    keepRaw: options.keepRaw,
    checksumAlg: binlogChecksum === 'CRC32' ? 1 : 0,
  })
  let events = 0
  return new Promise<ReplicationStreamSummary>((resolve, reject) => {
    let settled = false
    const finish = (endedBy: ReplicationStreamSummary['endedBy'] | Error): void => {
      if (settled) return
      settled = true
      conn.destroy()
      if (endedBy instanceof Error) reject(endedBy)
      else resolve({serverId, events, endedBy, binlogChecksum})
    }
    const flags = (options.nonBlocking === false ? 0 : BINLOG_DUMP_NON_BLOCK) | BINLOG_SEND_ANNOTATE_ROWS_EVENT
    // A duck-typed mysql2 command: execute() gets each packet; returning true ends the command.
    const command = {
      started: false,
      on: () => command,
      once: () => command,
      emit: () => false,
      stateName: () => 'binlog-dump',
      onResult: (error: Error) => finish(settled ? 'stopped' : mapDumpError(error, parsed, serverId, options.file)),
      execute(packet: DriverPacket | null, connection: CoreConnection): boolean {
        if (!command.started) {
          command.started = true
          connection._resetSequenceId()
          connection.write(dumpPacket(options.file, options.pos ?? FIRST_EVENT_POS, serverId, flags))
          connection.sequenceId = 1
          return false
        }
        if (packet === null || settled) return true
        if (packet.isError()) {
          finish(mapDumpError(packet.asError(connection.clientEncoding ?? 'utf8'), parsed, serverId, options.file))
          return true
        }
        if (packet.isEOF()) {
          finish('end-of-binlog')
          return true
        }
        // An OK byte (0x00), then the event as stored.
        const event = decoder.decode(packet.buffer.subarray(packet.offset + 1, packet.end))
        events++
        let more: boolean | void
        try {
          more = options.onEvent(event)
        } catch (error) {
          finish(error as Error)
          return true
        }
        if (more === false) {
          finish('stopped')
          return true
        }
        return false
      },
    }
    try {
      core.addCommand(command)
    } catch (error) {
      finish(mapDumpError(error, parsed, serverId, options.file))
    }
  })
}

/** Tells the server we handle its checksums (else it refuses to stream a checksummed binlog). */
async function announceChecksum(conn: Connection): Promise<string> {
  const [rows] = await conn.query('SELECT @@global.binlog_checksum AS alg')
  const alg = String((rows as Array<{alg: unknown}>)[0]?.alg ?? 'NONE').toUpperCase()
  await conn.query('SET @master_binlog_checksum = @@global.binlog_checksum')
  return alg
}

function mapDumpError(error: unknown, parsed: ParsedDsn, serverId: number, file: string): FerrydiagError {
  if (error instanceof FerrydiagError) return error
  const e = (error ?? {}) as {errno?: number; message?: string}
  const message = e.message ?? ''
  // ER_MASTER_FATAL_ERROR_READING_BINLOG: the file is gone from the index (purged) or never existed.
  if (e.errno === 1236 && /could not find first log file|not find.*binary log index|purged/i.test(message)) {
    return new FerrydiagError(
      'binlogPurged',
      `The source at ${describeEndpoint(parsed)} no longer has binlog ${file} (purged, or never written)`,
      'Audit a range the source still holds (SHOW BINARY LOGS), or point --binlog-file at saved copies of the purged files.',
      {cause: error},
    )
  }
  if (e.errno === 1236) {
    return new FerrydiagError(
      'mysqlConfig',
      `The source at ${describeEndpoint(parsed)} stopped streaming ${file}: ${message.replace(/\s+/g, ' ').slice(0, 200)}`,
      'Check the server log; a damaged binlog file can be checked offline with --binlog-file and --verify-checksums.',
      {cause: error},
    )
  }
  return mapStreamError(error, parsed, serverId)
}
