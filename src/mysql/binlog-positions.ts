// What a consumer acknowledged, read from its positions log (one `file:end_pos` and/or GTID per line)
// or from the checkpoint table it keeps on its target (read-only: one SELECT).

import {readFile} from 'node:fs/promises'
import {FerrydiagError} from '../errors.js'
import type {ConsumerAck} from '../model/binlog-audit.js'
import {connectMysql} from './connect.js'
import {describeEndpoint, parseDsn} from './dsn.js'

const FILE_POS = /^([^\s:]+):(\d+)$/
const MARIADB_GTID = /^\d+-\d+-\d+$/
const MYSQL_GTID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:\d+$/i

/**
 * Parses a positions log: per line a `file:end_pos` (the end position of an event the consumer handed
 * on, as zongji's nextPosition), a GTID (`domain-server-seq`, or MySQL's `uuid:seq`), or both separated
 * by white space. Blank lines and `#` comments are skipped. Throws badPositions naming the line.
 */
export function parseConsumerPositions(text: string, name: string): ConsumerAck[] {
  const acks: ConsumerAck[] = []
  const lines = text.split('\n')
  for (let index = 0; index < lines.length; index++) {
    const content = lines[index]!.replace(/#.*/, '').trim()
    if (content === '') continue
    const ack: ConsumerAck = {line: index + 1, file: null, pos: null, gtid: null}
    for (const token of content.split(/\s+/)) {
      const position = MYSQL_GTID.test(token) ? null : FILE_POS.exec(token)
      if (position !== null && ack.file === null && Number.isSafeInteger(Number(position[2]))) {
        ack.file = position[1]!
        ack.pos = Number(position[2])
      } else if ((MARIADB_GTID.test(token) || MYSQL_GTID.test(token)) && ack.gtid === null) {
        ack.gtid = token
      } else {
        throw new FerrydiagError(
          'badPositions',
          `${name} line ${index + 1}: expected file:end_pos (e.g. binlog.000042:1337) or a GTID (e.g. 0-1-815), got \`${token.slice(0, 60)}\``,
          'Write one acknowledged position per line: file:end_pos and/or a GTID; # starts a comment.',
        )
      }
    }
    acks.push(ack)
  }
  return acks
}

/** Reads and parses a positions log; badPositions when it cannot be read or parsed. */
export async function readPositionsFile(path: string): Promise<ConsumerAck[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new FerrydiagError('badPositions', `Cannot read the positions log ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, 'Check the path given to --positions.', {cause: error})
  }
  return parseConsumerPositions(text, path)
}

const TABLE_NAME = /^`?([A-Za-z0-9_$]+)`?\.`?([A-Za-z0-9_$]+)`?$/

/**
 * Reads a consumer's checkpoint table on its target (`db.table`): every row is one resume point. The
 * columns are found by name: the file (/file|log_name/), the position (/pos|offset/) and/or a GTID
 * (/gtid/). Only SELECT is run. Throws badPositions when the table has none of them.
 */
export async function readCheckpointTable(dsn: string, table: string): Promise<ConsumerAck[]> {
  const parsed = parseDsn(dsn)
  const match = TABLE_NAME.exec(table.trim())
  if (match === null) {
    throw new FerrydiagError('badPositions', `--checkpoint-table expects db.table, got \`${table}\``, 'Name the checkpoint table with its database, e.g. --checkpoint-table app.binlog_checkpoint.')
  }
  const conn = await connectMysql(parsed, {role: 'checkpoint server'})
  try {
    let rows: Array<Record<string, unknown>>
    try {
      ;[rows] = (await conn.query(`SELECT * FROM \`${match[1]}\`.\`${match[2]}\` LIMIT 100000`)) as unknown as [Array<Record<string, unknown>>]
    } catch (error) {
      const e = error as {code?: string; sqlMessage?: string}
      throw new FerrydiagError(
        e.code === 'ER_TABLEACCESS_DENIED_ERROR' ? 'mysqlGrant' : 'badPositions',
        `Cannot read the checkpoint table ${table} on ${describeEndpoint(parsed)}: ${e.sqlMessage ?? String(error)}`,
        e.code === 'ER_TABLEACCESS_DENIED_ERROR' ? `GRANT SELECT ON ${table} TO the --checkpoint user.` : 'Check --checkpoint-table names the consumer\'s checkpoint table.',
        {cause: error},
      )
    }
    const columns = rows.length > 0 ? Object.keys(rows[0]!) : []
    const fileColumn = columns.find((c) => /file|log_name/i.test(c))
    const posColumn = columns.find((c) => /pos|offset/i.test(c))
    const gtidColumn = columns.find((c) => /gtid/i.test(c))
    if (rows.length > 0 && (fileColumn === undefined || posColumn === undefined) && gtidColumn === undefined) {
      throw new FerrydiagError(
        'badPositions',
        `The checkpoint table ${table} has no binlog file + position or GTID column (columns: ${columns.join(', ')})`,
        'Name its columns after what they hold (e.g. binlog_file, binlog_pos, gtid).',
      )
    }
    return rows.map((row, index) => {
      const pos = posColumn === undefined ? null : Number(row[posColumn])
      const gtid = gtidColumn === undefined || row[gtidColumn] === null ? null : String(row[gtidColumn]).trim()
      const file = fileColumn === undefined || row[fileColumn] === null ? null : String(row[fileColumn])
      if (file !== null && (pos === null || !Number.isSafeInteger(pos))) {
        throw new FerrydiagError('badPositions', `The checkpoint table ${table} row ${index + 1}: position \`${String(row[posColumn!])}\` is not a number`, 'Check the checkpoint row.')
      }
      return {line: index + 1, file, pos: file === null ? null : pos, gtid: gtid === '' ? null : gtid}
    })
  } finally {
    await conn.end().catch(() => conn.destroy())
  }
}
