// Parses the DSNs ferrydiag accepts for a MySQL/MariaDB source or target into mysql2 connection options.
// Forms: `mysql://user:pass@host:port/db?params` (also mariadb://) and Go's `user:pass@tcp(host:port)/db`.

import type {ConnectionOptions} from 'mysql2'
import {FerrydiagError} from '../errors.js'

export interface ParsedDsn {
  user: string
  password: string
  /** Empty when a unix socket is used. */
  host: string
  port: number
  socketPath?: string
  database?: string
  /** Connect timeout from `?connectTimeout=` in milliseconds, when given. */
  connectTimeoutMs?: number
  /** TLS: 'off' (default), 'required' (verify the certificate) or 'skip-verify'. */
  tls: 'off' | 'required' | 'skip-verify'
  charset?: string
  /** The DSN as given, password replaced by ****: safe to print. */
  masked: string
}

export const DEFAULT_MYSQL_PORT = 3306

/** Query parameters understood in either form (Go's names where they exist). */
const KNOWN_PARAMS = ['connectTimeout', 'timeout', 'tls', 'ssl', 'charset', 'socket'] as const

const EXAMPLE = 'mysql://user:password@host:3306/database'

/** The DSN with its password replaced by ****, also for strings that do not parse. */
export function maskDsn(dsn: string): string {
  // userinfo runs to the LAST '@' before the host part: passwords may contain '@', ':' or '/'.
  const schemeMatch = /^([a-z][a-z0-9+.-]*:\/\/)/i.exec(dsn)
  const scheme = schemeMatch?.[1] ?? ''
  const rest = dsn.slice(scheme.length)
  const at = findUserinfoEnd(rest, scheme !== '')
  if (at < 0) return dsn
  const userinfo = rest.slice(0, at)
  const colon = userinfo.indexOf(':')
  if (colon < 0) return dsn
  return `${scheme}${userinfo.slice(0, colon)}:****${rest.slice(at)}`
}

// Index of the '@' ending the userinfo, or -1. URL form: the last '@' before the query string that
// is followed by a host. Go form: the last '@' before `tcp(`/`unix(`, else the last '@' before the last '/'.
function findUserinfoEnd(rest: string, urlForm: boolean): number {
  if (!urlForm) {
    const proto = /@(tcp|tcp6|unix)\(/.exec(rest)
    if (proto) return rest.lastIndexOf('@', proto.index)
    const slash = rest.lastIndexOf('/')
    return rest.lastIndexOf('@', slash < 0 ? rest.length : slash)
  }
  const query = rest.lastIndexOf('?')
  const candidate = rest.lastIndexOf('@', query < 0 ? rest.length : query)
  return candidate >= 0 ? candidate : rest.lastIndexOf('@')
}

function bad(dsn: string, problem: string): FerrydiagError {
  return new FerrydiagError(
    'badDsn',
    `Malformed DSN \`${maskDsn(dsn)}\`: ${problem}`,
    `Write it as ${EXAMPLE} (percent-encode special characters in the password, e.g. @ as %40).`,
  )
}

function decode(dsn: string, part: string, what: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw bad(dsn, `the ${what} has a malformed %-escape`)
  }
}

function parsePort(dsn: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw bad(dsn, `expected a port number 1-65535, got \`${text}\``)
  }
  return Number(text)
}

// "host", "host:port", "[v6]" or "[v6]:port"
function parseHostPort(dsn: string, text: string): {host: string; port: number} {
  if (text === '') throw bad(dsn, 'no host')
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(text)
  if (v6) return {host: v6[1]!, port: v6[2] === undefined ? DEFAULT_MYSQL_PORT : parsePort(dsn, v6[2])}
  const colon = text.lastIndexOf(':')
  if (colon < 0) return {host: text, port: DEFAULT_MYSQL_PORT}
  if (text.indexOf(':') !== colon) throw bad(dsn, `IPv6 host \`${text}\` must be in brackets, e.g. [::1]:3306`)
  const host = text.slice(0, colon)
  if (host === '') throw bad(dsn, 'no host before the port')
  return {host, port: parsePort(dsn, text.slice(colon + 1))}
}

// Durations: plain milliseconds ("5000") or Go's "5s" / "500ms" / "1m".
function parseDurationMs(dsn: string, name: string, text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text)
  if (!match) throw bad(dsn, `expected ${name} as milliseconds or a duration like 5s, got \`${text}\``)
  const value = Number(match[1]) * (match[2] === 's' ? 1000 : match[2] === 'm' ? 60_000 : 1)
  if (!(value > 0)) throw bad(dsn, `expected ${name} > 0, got \`${text}\``)
  return Math.round(value)
}

function applyParams(dsn: string, query: string, parsed: ParsedDsn): void {
  if (query === '') return
  for (const pair of query.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const name = eq < 0 ? pair : pair.slice(0, eq)
    const value = eq < 0 ? '' : decode(dsn, pair.slice(eq + 1), `parameter ${name}`)
    switch (name as (typeof KNOWN_PARAMS)[number]) {
      case 'connectTimeout':
      case 'timeout':
        parsed.connectTimeoutMs = parseDurationMs(dsn, name, value)
        break
      case 'tls':
      case 'ssl': {
        const tls = value.toLowerCase()
        if (tls === 'true' || tls === 'required' || tls === '1') parsed.tls = 'required'
        else if (tls === 'false' || tls === '0' || tls === 'off' || tls === 'disabled') parsed.tls = 'off'
        else if (tls === 'skip-verify' || tls === 'preferred') parsed.tls = 'skip-verify'
        else throw bad(dsn, `expected ${name}=true|false|skip-verify, got \`${value}\``)
        break
      }
      case 'charset':
        if (!/^\w+$/.test(value)) throw bad(dsn, `expected charset as a name like utf8mb4, got \`${value}\``)
        parsed.charset = value
        break
      case 'socket':
        if (!value.startsWith('/')) throw bad(dsn, `expected socket as an absolute path, got \`${value}\``)
        parsed.socketPath = value
        break
      default:
        throw bad(dsn, `unknown parameter \`${name}\` (known: ${KNOWN_PARAMS.join(', ')})`)
    }
  }
}

/** Parses a DSN; throws FerrydiagError('badDsn') naming what is wrong, password masked. */
export function parseDsn(dsn: string): ParsedDsn {
  if (typeof dsn !== 'string' || dsn.trim() === '') throw bad(String(dsn ?? ''), `expected ${EXAMPLE}, got an empty string`)
  dsn = dsn.trim()
  const schemeMatch = /^([a-z][a-z0-9+.-]*):\/\//i.exec(dsn)
  if (schemeMatch && !/^(mysql|mariadb)$/i.test(schemeMatch[1]!)) {
    throw bad(dsn, `expected scheme mysql:// or mariadb://, got \`${schemeMatch[1]}://\``)
  }
  const urlForm = schemeMatch !== null
  const rest = urlForm ? dsn.slice(schemeMatch[0].length) : dsn
  const at = findUserinfoEnd(rest, urlForm)
  if (at < 0) throw bad(dsn, 'no user (expected user:password@ before the host)')
  const userinfo = rest.slice(0, at)
  const colon = userinfo.indexOf(':')
  const user = decode(dsn, colon < 0 ? userinfo : userinfo.slice(0, colon), 'user')
  if (user === '') throw bad(dsn, 'empty user name')
  // The URL form percent-encodes the password; Go's form takes it literally.
  const rawPassword = colon < 0 ? '' : userinfo.slice(colon + 1)
  const password = urlForm ? decode(dsn, rawPassword, 'password') : rawPassword
  const after = rest.slice(at + 1)

  const parsed: ParsedDsn = {user, password, host: '', port: DEFAULT_MYSQL_PORT, tls: 'off', masked: maskDsn(dsn)}
  let pathAndQuery: string
  if (urlForm) {
    const end = after.search(/[/?]/)
    const hostPort = end < 0 ? after : after.slice(0, end)
    Object.assign(parsed, parseHostPort(dsn, hostPort))
    pathAndQuery = end < 0 ? '' : after.slice(end)
  } else {
    const proto = /^(tcp|tcp6|unix)\(([^)]*)\)/.exec(after)
    if (!proto) {
      throw bad(dsn, `expected mysql://… or Go's user:password@tcp(host:port)/db, got \`${after.split('/')[0]}\` after the @`)
    }
    if (proto[1] === 'unix') {
      if (!proto[2]!.startsWith('/')) throw bad(dsn, `expected unix(/absolute/path), got \`unix(${proto[2]})\``)
      parsed.socketPath = proto[2]
      parsed.port = 0
    } else {
      Object.assign(parsed, parseHostPort(dsn, proto[2] === '' ? '127.0.0.1' : proto[2]!))
    }
    pathAndQuery = after.slice(proto[0].length)
    if (pathAndQuery !== '' && !pathAndQuery.startsWith('/')) {
      throw bad(dsn, `expected /database after ${proto[1]}(…), got \`${pathAndQuery}\``)
    }
  }
  const q = pathAndQuery.indexOf('?')
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q)
  const database = decode(dsn, path.replace(/^\//, ''), 'database name')
  if (database.includes('/')) throw bad(dsn, `expected one database name, got \`${database}\``)
  if (database !== '') parsed.database = database
  applyParams(dsn, q < 0 ? '' : pathAndQuery.slice(q + 1), parsed)
  if (parsed.socketPath !== undefined && urlForm) parsed.port = 0
  return parsed
}

/** mysql2 options for a parsed DSN; defaultConnectTimeoutMs applies when the DSN names none. */
export function toConnectionOptions(parsed: ParsedDsn, defaultConnectTimeoutMs = 5000): ConnectionOptions {
  const options: ConnectionOptions = {
    user: parsed.user,
    password: parsed.password,
    database: parsed.database,
    connectTimeout: parsed.connectTimeoutMs ?? defaultConnectTimeoutMs,
    // Large binlog positions and ids stay exact.
    supportBigNumbers: true,
    bigNumberStrings: false,
  }
  if (parsed.socketPath !== undefined) options.socketPath = parsed.socketPath
  else {
    options.host = parsed.host
    options.port = parsed.port
  }
  if (parsed.charset !== undefined) options.charset = parsed.charset
  if (parsed.tls === 'required') options.ssl = {rejectUnauthorized: true}
  else if (parsed.tls === 'skip-verify') options.ssl = {rejectUnauthorized: false}
  return options
}

/** host:port (or the socket path) for messages. */
export function describeEndpoint(parsed: ParsedDsn): string {
  if (parsed.socketPath !== undefined) return `socket ${parsed.socketPath}`
  return parsed.host.includes(':') ? `[${parsed.host}]:${parsed.port}` : `${parsed.host}:${parsed.port}`
}
