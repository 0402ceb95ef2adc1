// Finding (or, as root, installing) the MariaDB server binaries for the test harness.
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {delimiter, join} from 'node:path'

export interface MariaDbInstallation {
  /** found: binaries present; installed: this call ran apt-get; missing: none and none installed. */
  status: 'found' | 'installed' | 'missing'
  serverBinary?: string
  installDbBinary?: string
  version?: string
  /** Why it is missing (status 'missing'). */
  reason?: string
}

/** Raised when a database cannot be had; databaseOrSkip() turns it into a skip (or a CI failure). */
export class DatabaseUnavailableError extends Error {
  constructor(message: string, options?: {cause?: unknown}) {
    super(message, options)
    this.name = 'DatabaseUnavailableError'
  }
}

// Debian puts the server in /usr/sbin, which is not on a non-root PATH.
const EXTRA_BIN_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/mysql/bin']

function findExecutable(names: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_BIN_DIRS]
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = join(dir, name)
      if (existsSync(candidate)) return candidate
    }
  }
  return undefined
}

function locateBinaries(): {serverBinary?: string; installDbBinary?: string} {
  return {
    serverBinary: findExecutable(['mariadbd', 'mysqld']),
    installDbBinary: findExecutable(['mariadb-install-db', 'mysql_install_db']),
  }
}

function readServerVersion(serverBinary: string): string | undefined {
  const result = spawnSync(serverBinary, ['--version'], {encoding: 'utf8', timeout: 10_000})
  // "/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)"
  const line = (result.stdout ?? '').trim().split('\n')[0]!.replace(/^\S+\s+Ver\s+/, '')
  return line === '' ? undefined : line
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0
}

let installation: MariaDbInstallation | undefined

/**
 * Finds mariadbd/mysqld and mariadb-install-db; when they are missing and we run as root, installs
 * Debian's mariadb-server with apt-get (about 20 s). The result is remembered for the process.
 */
export function ensureMariaDbInstalled(options: {log?: (line: string) => void} = {}): MariaDbInstallation {
  if (installation !== undefined) return installation
  let found = locateBinaries()
  let status: MariaDbInstallation['status'] = 'found'
  if (found.serverBinary === undefined || found.installDbBinary === undefined) {
    if (!isRoot()) {
      installation = {
        status: 'missing',
        reason:
          'no mariadbd/mysqld and mariadb-install-db on PATH or in /usr/sbin, /usr/local/sbin, and not root ' +
          'so cannot install mariadb-server (install it, or set FERRYDIAG_TEST_SOURCE_DSN/_TARGET_DSN)',
      }
      return installation
    }
    if (findExecutable(['apt-get']) === undefined) {
      installation = {status: 'missing', reason: 'no mariadbd and no apt-get to install mariadb-server with'}
      return installation
    }
    options.log?.('mariadb: mariadbd not found; installing mariadb-server with apt-get (about 20-60 s)')
    const env = {...process.env, DEBIAN_FRONTEND: 'noninteractive'}
    for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'mariadb-server']]) {
      const result = spawnSync('apt-get', args, {env, encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20})
      if (result.status !== 0) {
        const tail = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-5).join(' | ')
        installation = {
          status: 'missing',
          reason: `apt-get ${args.join(' ')} failed (exit ${result.status ?? result.signal}): ${tail}`,
        }
        return installation
      }
    }
    found = locateBinaries()
    status = 'installed'
    if (found.serverBinary === undefined || found.installDbBinary === undefined) {
      installation = {status: 'missing', reason: 'apt-get installed mariadb-server but mariadbd is still not found'}
      return installation
    }
  }
  installation = {status, ...found, version: readServerVersion(found.serverBinary!)}
  return installation
}

export function requireBinaries(): {serverBinary: string; installDbBinary: string} {
  // Tests never install on their own: the runner (test/run.ts) does that once up front.
  const found = installation?.status === 'missing' ? {} : locateBinaries()
  if (found.serverBinary === undefined || found.installDbBinary === undefined) {
    throw new DatabaseUnavailableError(
      installation?.reason ?? 'no mariadbd/mysqld and mariadb-install-db found (PATH, /usr/sbin, /usr/local/sbin)',
    )
  }
  return {serverBinary: found.serverBinary, installDbBinary: found.installDbBinary}
}
