// The active probe of tune-batch: writes batches of varied sizes into a scratch table of its own on the
// target (CREATE TABLE _ferrydiag_probe_<pid>_<unix s>_<hex> LIKE db.table), one transaction per batch like
// the writer, times each, and always drops the table again: on success, on error, on a signal. If the CLI
// is killed outright, the next probe of that database finds the table and drops it: each probe holds a
// server-side named lock (GET_LOCK) named after its table for as long as its connection lives, so a
// scratch table whose lock is free belongs to a probe that is gone.
import {randomBytes} from 'node:crypto'
import type {Connection} from 'mysql2/promise'
import {registerCleanup} from '../cleanup.js'
import {FerrydiagError} from '../errors.js'
import {trace} from '../trace.js'
import type {BatchSample} from '../model/snapshot.js'
import {connectMysql, isConnectionLost, mapConnectError} from './connect.js'
import {describeEndpoint, parseDsn, type ParsedDsn} from './dsn.js'

export const PROBE_TABLE_PREFIX = '_ferrydiag_probe_'
export const PROBE_STAGE_NAME = 'probe'

export interface ProbeTargetOptions {
  dsn: string
  /** `db.table` whose columns the scratch table copies. */
  like: string
  /** Batch sizes, events (default: 12 log-spaced sizes from 1 to maxBatchSize). */
  sizes?: number[]
  /** Default 500. */
  maxBatchSize?: number
  /** Times each size is written (default 5). */
  repeats?: number
  /** Aborting stops after the batch in flight; the table is still dropped. */
  signal?: AbortSignal
  onSample?: (sample: BatchSample) => void
  /** Called once the scratch table exists (tests use it to send SIGINT mid-probe). */
  onTableCreated?: (qualifiedName: string) => void
  /** Uniform [0,1) source for the order of batches (default Math.random). */
  random?: () => number
  /**
   * How a batch is written, like the pipeline writes its own: one multi-row INSERT (default), or one
   * single-row INSERT per row inside the transaction (a row-by-row applier's cost is per statement).
   */
  shape?: ProbeWriteShape
  /**
   * multi-row only: the rows of a batch are split over this many INSERTs (at most one per row), like a
   * writer that issues one statement per table (default 1). Each statement is a round trip: part of o.
   */
  statementsPerBatch?: number
}

/** multi-row: one INSERT ... VALUES (..), (..) per batch; row-per-statement: one INSERT per row. */
export type ProbeWriteShape = 'multi-row' | 'row-per-statement'

export interface ProbeTargetResult {
  /** `db`.`_ferrydiag_probe_<pid>_<unix s>_<hex>` as created. */
  table: string
  /** Scratch tables of earlier probes that were killed before dropping theirs, dropped now. */
  swept: string[]
  samples: BatchSample[]
  /** False when the probe was aborted before every batch was written. */
  completed: boolean
  dropped: boolean
  columnsWritten: string[]
  columnsLeftToDefaults: string[]
  shape: ProbeWriteShape
}

/** `rows` in `parts` consecutive chunks as even as can be (fewer when there are fewer rows). */
export function splitRows<T>(rows: readonly T[], parts: number): T[][] {
  const n = Math.max(1, Math.min(rows.length, Math.round(parts)))
  const out: T[][] = []
  for (let i = 0; i < n; i++) out.push(rows.slice(Math.floor((i * rows.length) / n), Math.floor(((i + 1) * rows.length) / n)))
  return out
}

/** Log-spaced integer sizes from 1 to max, distinct. */
export function logSpacedSizes(max: number, count = 12): number[] {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`Expected max to be an integer >= 1, got ${max}`)
  const sizes = new Set<number>()
  for (let i = 0; i < count; i++) sizes.add(Math.max(1, Math.round(max ** (i / Math.max(1, count - 1)))))
  return [...sizes].sort((a, b) => a - b)
}

/** Each size `repeats` times, in a shuffled order (Fisher–Yates), so drift cannot masquerade as slope. */
export function buildProbePlan(sizes: readonly number[], repeats: number, random: () => number): number[] {
  const plan: number[] = []
  for (let r = 0; r < repeats; r++) plan.push(...sizes)
  for (let i = plan.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[plan[i], plan[j]] = [plan[j], plan[i]]
  }
  return plan
}

export function parseQualifiedTable(text: string): {database: string; table: string} {
  const match = /^`?([A-Za-z0-9_$]+)`?\.`?([A-Za-z0-9_$]+)`?$/.exec(text.trim())
  if (!match) {
    throw new FerrydiagError(
      'badArgument',
      `Expected --like as DB.TABLE (letters, digits, _ and $), got \`${text}\``,
      'Pass the table the pipeline writes to, e.g. --like shop.orders.',
    )
  }
  return {database: match[1], table: match[2]}
}

function quote(identifier: string): string {
  return `\`${identifier.replace(/`/g, '``')}\``
}

/** Column facts the generator needs (information_schema.COLUMNS). */
export interface ColumnInfo {
  name: string
  dataType: string
  columnType: string
  nullable: boolean
  extra: string
  maxLength: number | null
  numericPrecision: number | null
  numericScale: number | null
  hasDefault: boolean
}

/**
 * A value for row `seq` of the probe compatible with the column type, or undefined to leave the column to
 * its default (auto-increment and generated columns). Values grow with seq, so unique keys hold.
 */
export function syntheticValue(column: ColumnInfo, seq: number): unknown {
  const type = column.dataType.toLowerCase()
  const unsigned = /unsigned/i.test(column.columnType)
  switch (type) {
    case 'tinyint':
      return unsigned ? seq % 256 : (seq % 256) - 128
    case 'smallint':
      return unsigned ? seq % 65536 : (seq % 65536) - 32768
    case 'mediumint':
    case 'int':
    case 'integer':
    case 'bigint':
      return seq
    case 'bit':
      return seq % 2
    case 'decimal':
    case 'numeric': {
      const digits = Math.max(1, (column.numericPrecision ?? 10) - (column.numericScale ?? 0))
      return digits >= 15 ? seq : seq % 10 ** digits
    }
    case 'float':
    case 'double':
    case 'real':
      return seq / 4
    case 'date':
      return new Date(Date.UTC(2000, 0, 1) + (seq % 3_650_000) * 86_400_000).toISOString().slice(0, 10)
    case 'datetime':
    case 'timestamp':
      return new Date(Date.UTC(2001, 0, 1) + (seq % 1_000_000_000) * 1000).toISOString().slice(0, 19).replace('T', ' ')
    case 'time':
      return `${String(Math.floor((seq % 3_000_000) / 3600) % 838).padStart(2, '0')}:${String(Math.floor(seq / 60) % 60).padStart(2, '0')}:${String(seq % 60).padStart(2, '0')}`
    case 'year':
      return 1901 + (seq % 254)
    case 'char':
    case 'varchar':
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext': {
      const limit = Math.max(1, Math.min(column.maxLength ?? 255, 255))
      const id = seq.toString(36)
      // A quoted string is valid JSON too: MariaDB's JSON type is LONGTEXT with a json_valid() check.
      const text = `"p${id}-ferrydiag-probe-row"`
      return text.length <= limit ? text : id.slice(-limit)
    }
    case 'binary':
    case 'varbinary':
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob': {
      const limit = Math.max(1, Math.min(column.maxLength ?? 255, 64))
      const bytes = Buffer.alloc(Math.min(limit, 8))
      bytes.writeUIntBE(seq % 2 ** 48, 0, Math.min(6, bytes.length))
      return bytes
    }
    case 'enum': {
      const first = /^enum\('((?:[^']|'')*)'/i.exec(column.columnType)
      return first ? first[1].replace(/''/g, "'") : ''
    }
    case 'set':
      return ''
    case 'json':
      return JSON.stringify({probe: seq})
    default:
      return column.nullable ? null : unsupportedType(column)
  }
}

function unsupportedType(column: ColumnInfo): never {
  throw new FerrydiagError(
    'badArgument',
    `The probe cannot make values for column \`${column.name}\` of type ${column.columnType} (NOT NULL, no default)`,
    'Probe with --like naming a table of plain column types, or measure passively (drop --probe-target).',
  )
}

/** Columns the probe leaves to the server: auto-increment and generated ones. */
function leftToServer(column: ColumnInfo): boolean {
  return /auto_increment|generated|virtual|persistent|stored/i.test(column.extra)
}

interface PrivilegeCheck {
  missing: string[]
}

/**
 * Which of CREATE, DROP and INSERT the current account lacks on the database, from information_schema's
 * privilege views (they show the current account's own grants). Checked before creating anything: a
 * table created by an account that cannot drop it would be left behind. Privileges granted only through
 * a role that is not active do not show here; the CREATE itself is then the final word.
 */
async function findMissingPrivileges(conn: Connection, database: string): Promise<PrivilegeCheck> {
  const [[row]] = (await conn.query('SELECT CURRENT_USER() AS who')) as unknown as [[{who: string}]]
  const who = String(row.who)
  const at = who.lastIndexOf('@')
  const grantee = `'${who.slice(0, at)}'@'${who.slice(at + 1)}'`
  const held = new Set<string>()
  const [global] = (await conn.query('SELECT PRIVILEGE_TYPE AS p FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?', [grantee])) as unknown as [Array<{p: string}>]
  for (const r of global) held.add(String(r.p).toUpperCase())
  const [schema] = (await conn.query(
    'SELECT PRIVILEGE_TYPE AS p, TABLE_SCHEMA AS s FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ?',
    [grantee],
  )) as unknown as [Array<{p: string; s: string}>]
  for (const r of schema) {
    // Schema grants may use LIKE wildcards (`shop\_%`); an exact or wildcard match counts.
    if (matchesGrantPattern(String(r.s), database)) held.add(String(r.p).toUpperCase())
  }
  return {missing: ['CREATE', 'DROP', 'INSERT'].filter((p) => !held.has(p))}
}

/** MySQL grant database patterns: `_` and `%` are wildcards, `\_` and `\%` literal. */
export function matchesGrantPattern(pattern: string, name: string): boolean {
  let regex = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '\\' && i + 1 < pattern.length) regex += pattern[++i].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    else if (c === '%') regex += '.*'
    else if (c === '_') regex += '.'
    else regex += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${regex}$`).test(name)
}

function grantError(parsed: ParsedDsn, database: string, privileges: string[], cause?: unknown): FerrydiagError {
  return new FerrydiagError(
    'mysqlGrant',
    `The probe target at ${describeEndpoint(parsed)} does not allow \`${parsed.user}\` ${privileges.join(', ')} on \`${database}\` ` +
      `(the probe creates, fills and drops a scratch table there)`,
    `GRANT ${privileges.join(', ')} ON \`${database}\`.* TO the probe user, or measure passively (drop --probe-target).`,
    cause === undefined ? undefined : {cause},
  )
}

async function readColumns(conn: Connection, database: string, table: string): Promise<ColumnInfo[]> {
  const [rows] = (await conn.query(
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS dataType, COLUMN_TYPE AS columnType, IS_NULLABLE AS nullable,
            EXTRA AS extra, CHARACTER_MAXIMUM_LENGTH AS maxLength, NUMERIC_PRECISION AS numericPrecision,
            NUMERIC_SCALE AS numericScale, COLUMN_DEFAULT AS columnDefault
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [database, table],
  )) as unknown as [Array<Record<string, unknown>>]
  return rows.map((r) => ({
    name: String(r.name),
    dataType: String(r.dataType),
    columnType: String(r.columnType),
    nullable: r.nullable === 'YES',
    extra: String(r.extra ?? ''),
    maxLength: r.maxLength === null ? null : Number(r.maxLength),
    numericPrecision: r.numericPrecision === null ? null : Number(r.numericPrecision),
    numericScale: r.numericScale === null ? null : Number(r.numericScale),
    hasDefault: r.columnDefault !== null,
  }))
}

/** Triggers or foreign keys on the scratch table would write elsewhere; CREATE ... LIKE copies neither. */
async function checkNoSideEffects(conn: Connection, database: string, table: string): Promise<string[]> {
  const [triggers] = (await conn.query('SELECT TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?', [
    database,
    table,
  ])) as unknown as [Array<{n: string}>]
  const [keys] = (await conn.query(
    'SELECT CONSTRAINT_NAME AS n FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?',
    [database, table],
  )) as unknown as [Array<{n: string}>]
  return [...triggers.map((t) => `trigger ${t.n}`), ...keys.map((k) => `foreign key ${k.n}`)]
}

/** The scratch table's name: recognisable, with the creating CLI's pid and time (unix seconds). */
export function probeTableName(pid: number, atMs: number, suffix: string): string {
  return `${PROBE_TABLE_PREFIX}${pid}_${Math.floor(atMs / 1000)}_${suffix}`
}

/**
 * Drops the scratch tables that probes killed before they could drop their own left in `database`: those
 * whose named lock (held by the creating probe's connection while it lives) is free. A table of a probe
 * running now, from another CLI, is left alone. Returns the tables dropped.
 */
export async function sweepOrphanedProbeTables(conn: Connection, database: string): Promise<string[]> {
  const [rows] = (await conn.query('SELECT TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE ?', [
    database,
    `${PROBE_TABLE_PREFIX.replace(/_/g, '\\_')}%`,
  ])) as unknown as [Array<{n: string}>]
  const dropped: string[] = []
  for (const {n} of rows) {
    const name = String(n)
    const [[lock]] = (await conn.query('SELECT IS_FREE_LOCK(?) AS free', [name])) as unknown as [[{free: number | null}]]
    if (Number(lock.free) !== 1) continue
    await conn.query(`DROP TABLE IF EXISTS ${quote(database)}.${quote(name)}`)
    dropped.push(`${quote(database)}.${quote(name)}`)
  }
  return dropped
}

/** Drops the scratch table, on a fresh connection if the probe's own one is gone. Never throws. */
async function dropProbeTable(conn: Connection | undefined, parsed: ParsedDsn, qualified: string): Promise<boolean> {
  const sql = `DROP TABLE IF EXISTS ${qualified}`
  if (conn) {
    try {
      await conn.query(sql)
      return true
    } catch (error) {
      if (!isConnectionLost(error)) {
        // fall through to a fresh connection: the old one may be mid-transaction
      }
    }
  }
  try {
    const fresh = await connectMysql(parsed, {role: 'probe target'})
    try {
      await fresh.query(sql)
      return true
    } finally {
      await fresh.end().catch(() => fresh.destroy())
    }
  } catch {
    return false
  }
}

/**
 * Runs the probe. Throws FerrydiagError noSuchTable (--like missing), mysqlGrant (CREATE, DROP or INSERT
 * missing, named), badArgument (a column type it cannot fill), or the connect errors. The scratch table
 * never outlives this call unless the server itself goes away (then the error says so).
 */
export async function probeTarget(options: ProbeTargetOptions): Promise<ProbeTargetResult> {
  const parsed = parseDsn(options.dsn)
  const {database, table} = parseQualifiedTable(options.like)
  const repeats = options.repeats ?? 5
  if (!Number.isInteger(repeats) || repeats < 1) throw new RangeError(`Expected repeats to be an integer >= 1, got ${repeats}`)
  const sizes = options.sizes ?? logSpacedSizes(options.maxBatchSize ?? 500)
  const plan = buildProbePlan(sizes, repeats, options.random ?? Math.random)
  const shape = options.shape ?? 'multi-row'
  const conn = await connectMysql(parsed, {role: 'probe target'})
  const scratch = probeTableName(process.pid, Date.now(), randomBytes(3).toString('hex'))
  const qualified = `${quote(database)}.${quote(scratch)}`
  let created = false
  let swept: string[] = []
  // On a signal the probe loop stops and the finally below drops the table; if that is cut short, this
  // drops it on a fresh connection before the CLI exits.
  let unregister: (() => void) | undefined
  const samples: BatchSample[] = []
  let completed = false
  let dropped = false
  let columnsWritten: string[] = []
  let columnsLeft: string[] = []
  try {
    const [found] = (await conn.query('SELECT TABLE_TYPE AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, table])) as unknown as [
      Array<{t: string}>,
    ]
    if (found.length === 0 || !/BASE TABLE/i.test(String(found[0].t))) {
      throw new FerrydiagError(
        'noSuchTable',
        `--like names \`${database}\`.\`${table}\`, which is ${found.length === 0 ? 'not a table' : `a ${found[0].t}, not a base table`} on ${describeEndpoint(parsed)} (or \`${parsed.user}\` cannot see it)`,
        'Name the table the pipeline writes to on the target, as DB.TABLE.',
      )
    }
    const {missing} = await findMissingPrivileges(conn, database)
    if (missing.length > 0) throw grantError(parsed, database, missing)
    const columns = await readColumns(conn, database, table)
    const written = columns.filter((c) => !leftToServer(c))
    columnsWritten = written.map((c) => c.name)
    columnsLeft = columns.filter(leftToServer).map((c) => c.name)
    // Fail on unfillable columns before creating anything.
    for (const c of written) syntheticValue(c, 1)

    swept = await sweepOrphanedProbeTables(conn, database)
    // Held by this connection until it ends, however it ends (the server releases it when the
    // connection dies): the next probe's sweep tells a live probe's table from an orphan by it.
    const [[lock]] = (await conn.query('SELECT GET_LOCK(?, 0) AS got', [scratch])) as unknown as [[{got: number | null}]]
    if (Number(lock.got) !== 1) throw new RangeError(`the probe's lock ${scratch} is already held`)
    unregister = registerCleanup('drop the probe table', async () => {
      await dropProbeTable(undefined, parsed, qualified)
    })
    try {
      await conn.query(`CREATE TABLE ${qualified} LIKE ${quote(database)}.${quote(table)}`)
      created = true
    } catch (error) {
      const code = (error as {code?: string}).code
      if (code === 'ER_TABLEACCESS_DENIED_ERROR' || code === 'ER_DBACCESS_DENIED_ERROR' || code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR') {
        throw grantError(parsed, database, ['CREATE'], error)
      }
      throw mapConnectError(error, parsed, {role: 'probe target'})
    }
    options.onTableCreated?.(qualified)
    trace('probe-table')
    const sideEffects = await checkNoSideEffects(conn, database, scratch)
    if (sideEffects.length > 0) {
      throw new FerrydiagError(
        'badArgument',
        `The scratch table copied ${sideEffects.join(', ')} from \`${database}\`.\`${table}\`; the probe would write elsewhere, so it stopped`,
        'Probe with --like naming a table without triggers or foreign keys.',
      )
    }

    const columnList = written.map((c) => quote(c.name)).join(', ')
    const rowPlaceholder = `(${written.map(() => '?').join(', ')})`
    let seq = 0
    const insertRows = (rows: number, values: unknown[]): string =>
      conn.format(
        written.length === 0
          ? `INSERT INTO ${qualified} () VALUES ${new Array(rows).fill('()').join(', ')}`
          : `INSERT INTO ${qualified} (${columnList}) VALUES ${new Array(rows).fill(rowPlaceholder).join(', ')}`,
        values,
      )
    for (const size of plan) {
      if (options.signal?.aborted) break
      const rowValues: unknown[][] = []
      for (let i = 0; i < size; i++) {
        seq++
        rowValues.push(written.map((c) => syntheticValue(c, seq)))
      }
      // The statement text is built before the clock starts: the writer, too, has its batch ready.
      const statements = shape === 'row-per-statement' ? rowValues.map((row) => insertRows(1, row)) : splitRows(rowValues, options.statementsPerBatch ?? 1).map((rows) => insertRows(rows.length, rows.flat()))
      const startedMs = performance.now()
      let ok = true
      try {
        await conn.query('BEGIN')
        for (const statement of statements) await conn.query(statement)
        await conn.query('COMMIT')
      } catch (error) {
        ok = false
        await conn.query('ROLLBACK').catch(() => {})
        const code = (error as {code?: string}).code
        if (code === 'ER_TABLEACCESS_DENIED_ERROR') throw grantError(parsed, database, ['INSERT'], error)
        if (isConnectionLost(error)) throw mapConnectError(error, parsed, {role: 'probe target'})
        throw new FerrydiagError(
          'badArgument',
          `A probe batch of ${size} synthetic rows was refused by the target: ${(error as Error).message}`,
          'Probe with --like naming a simpler table of the same row size, or measure passively.',
          {cause: error},
        )
      }
      const sample: BatchSample = {stageName: PROBE_STAGE_NAME, atMs: Date.now(), events: size, ms: performance.now() - startedMs, ok, statements: statements.length}
      samples.push(sample)
      options.onSample?.(sample)
    }
    completed = !options.signal?.aborted
  } finally {
    if (created) {
      dropped = await dropProbeTable(conn, parsed, qualified)
    }
    unregister?.()
    await conn.end().catch(() => conn.destroy())
  }
  if (created && !dropped) {
    throw new FerrydiagError(
      'mysqlLost',
      `Could not drop the probe's scratch table ${qualified} on ${describeEndpoint(parsed)}`,
      `Drop it by hand (DROP TABLE ${qualified};), or let the next --probe-target run on that database drop it.`,
    )
  }
  return {table: qualified, swept, samples, completed, dropped, columnsWritten, columnsLeftToDefaults: columnsLeft, shape}
}
