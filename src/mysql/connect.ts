// Opens a mysql2/promise connection from a DSN within a bounded time, turning driver errors into
// one-line FerrydiagErrors (unreachable, auth, grant) that name the endpoint but never the password.

import type {Connection} from 'mysql2/promise'
import {FerrydiagError} from '../errors.js'
import {describeEndpoint, parseDsn, toConnectionOptions, type ParsedDsn} from './dsn.js'

export interface ConnectOptions {
  /** Time allowed for TCP connect plus handshake, in ms (default 5000, or the DSN's connectTimeout). */
  connectTimeoutMs?: number
  /** What the server is to the user, for messages: 'source', 'target'… (default 'MySQL server'). */
  role?: string
}

/** mysql2 error fields we read. */
interface DriverError {
  code?: string
  errno?: number
  sqlMessage?: string
  message?: string
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'EPIPE',
  'ENOENT', // unix socket path does not exist
  'PROTOCOL_CONNECTION_LOST',
  'HANDSHAKE_NO_SSL_SUPPORT',
])

/** Replaces every occurrence of the password in a driver message (defence in depth). */
function scrub(text: string, password: string): string {
  return password.length > 0 ? text.split(password).join('****') : text
}

/**
 * Maps an error from connecting (or from a first query) to a FerrydiagError. Errors that are already
 * FerrydiagErrors pass through; unknown ones become mysqlUnreachable with the driver's message.
 */
export function mapConnectError(error: unknown, parsed: ParsedDsn, options: ConnectOptions = {}): FerrydiagError {
  if (error instanceof FerrydiagError) return error
  const e = (error ?? {}) as DriverError
  const role = options.role ?? 'MySQL server'
  const where = describeEndpoint(parsed)
  const timeoutMs = options.connectTimeoutMs ?? parsed.connectTimeoutMs ?? 5000
  const detail = scrub(String(e.sqlMessage ?? e.message ?? error), parsed.password)
  const code = e.code ?? ''
  switch (code) {
    case 'ECONNREFUSED':
      return new FerrydiagError(
        'mysqlUnreachable',
        `Cannot reach the ${role} at ${where}: connection refused`,
        'Check the host and port in the DSN and that the server is running and listening there.',
        {cause: error},
      )
    case 'ETIMEDOUT':
      return new FerrydiagError(
        'mysqlUnreachable',
        `Cannot reach the ${role} at ${where}: no answer within ${timeoutMs} ms`,
        'Check the host, port and firewall; raise the DSN parameter ?connectTimeout=10s for a slow network.',
        {cause: error},
      )
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new FerrydiagError(
        'mysqlUnreachable',
        `Cannot reach the ${role}: host \`${parsed.host}\` not found`,
        'Check the host name in the DSN (use 127.0.0.1 rather than localhost for a local server).',
        {cause: error},
      )
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_HOST_NOT_PRIVILEGED':
    case 'ER_NOT_SUPPORTED_AUTH_MODE':
    case 'AUTH_SWITCH_PLUGIN_ERROR':
      return new FerrydiagError(
        'mysqlAuth',
        `The ${role} at ${where} refused user \`${parsed.user}\` (${code}${parsed.password === '' ? ', no password given' : ''})`,
        `Check the user and password in the DSN and that \`${parsed.user}\` may connect from this host.`,
        {cause: error},
      )
    case 'ER_DBACCESS_DENIED_ERROR':
      return new FerrydiagError(
        'mysqlGrant',
        `The ${role} at ${where} denies user \`${parsed.user}\` access to database \`${parsed.database ?? ''}\``,
        `GRANT SELECT ON \`${parsed.database ?? ''}\`.* TO the user, or leave the database out of the DSN.`,
        {cause: error},
      )
    case 'ER_BAD_DB_ERROR':
      return new FerrydiagError(
        'badDsn',
        `The ${role} at ${where} has no database \`${parsed.database ?? ''}\` (named in DSN ${parsed.masked})`,
        'Fix the database name in the DSN, or leave it out.',
        {cause: error},
      )
  }
  if (UNREACHABLE_CODES.has(code)) {
    return new FerrydiagError(
      'mysqlUnreachable',
      `Cannot reach the ${role} at ${where}: ${code}: ${detail}`,
      'Check the host, port or socket in the DSN and that the server is running.',
      {cause: error},
    )
  }
  return new FerrydiagError(
    'mysqlUnreachable',
    `Cannot connect to the ${role} at ${where}: ${code === '' ? '' : `${code}: `}${detail}`,
    'Check the DSN and the server log.',
    {cause: error},
  )
}

/**
 * Connects to the server a DSN names. Bounded: gives up after connectTimeoutMs (plus a small margin
 * for the driver's own timer). Throws FerrydiagError badDsn / mysqlUnreachable / mysqlAuth / mysqlGrant.
 */
export async function connectMysql(dsn: string | ParsedDsn, options: ConnectOptions = {}): Promise<Connection> {
  const parsed = typeof dsn === 'string' ? parseDsn(dsn) : dsn
  const timeoutMs = options.connectTimeoutMs ?? parsed.connectTimeoutMs ?? 5000
  const connectionOptions = toConnectionOptions(parsed, timeoutMs)
  connectionOptions.connectTimeout = timeoutMs
  // Loaded here, not at start-up: commands that never connect (and every --help) skip mysql2's load time.
  const {default: mysql} = await import('mysql2/promise')
  const pending = mysql.createConnection(connectionOptions)
  let timer: NodeJS.Timeout | undefined
  // mysql2 enforces connectTimeout itself; this guard only covers a driver that never settles.
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('connect timeout'), {code: 'ETIMEDOUT'})), timeoutMs + 1000)
  })
  try {
    const connection = await Promise.race([pending, guard])
    // A connection that dies later must not crash the process with an unhandled 'error' event;
    // the next query rejects instead (see isConnectionLost).
    connection.on('error', () => {})
    return connection
  } catch (error) {
    // If the guard won, close whatever the driver opens later.
    pending.then((late) => late.destroy()).catch(() => {})
    throw mapConnectError(error, parsed, {...options, connectTimeoutMs: timeoutMs})
  } finally {
    clearTimeout(timer)
  }
}

/** True for errors meaning the server went away mid-session (exit mysqlLost rather than a bug). */
export function isConnectionLost(error: unknown): boolean {
  const code = (error as DriverError | undefined)?.code ?? ''
  return code === 'PROTOCOL_CONNECTION_LOST' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ER_SERVER_SHUTDOWN'
}

/**
 * @vlasky/zongji, loaded when a binlog stream is opened rather than at start-up: with mysql2 beneath it,
 * it is most of what a command would otherwise load before it could print --help or a flag error.
 */
export function loadZongJi(): Promise<typeof import('@vlasky/zongji')> {
  return import('@vlasky/zongji')
}
