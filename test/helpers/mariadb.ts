// Throwaway binlog-enabled MariaDB instances for tests: each has its own datadir, port, socket and
// server-id, and is shut down (and its datadir removed) when stopped or when the test process ends.
//
// Using your own servers instead: set FERRYDIAG_TEST_SOURCE_DSN and FERRYDIAG_TEST_TARGET_DSN (both
// `mysql://user:pass@host:port/db`, an account allowed to create tables, read SHOW MASTER STATUS and
// stream the binlog) and startSourceAndTarget() returns those instead of starting anything;
// FERRYDIAG_TEST_SOURCE_REPLICATION_DSN optionally names a separate replication account (default: the
// source DSN). Tests that need a specially configured server (e.g. STATEMENT binlog format) still call
// startMariaDb() and so still need a local mariadbd.
//
// Tests use databaseOrSkip()/sharedDatabase(): when no database can be had the test is skipped with the
// reason, except with env CI set, where it fails with that reason.

import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {delimiter, join} from 'node:path'
import type {TestContext} from 'node:test'
import mysql from 'mysql2/promise'

export interface MariaDbInstance {
  host: string
  port: number
  /** Unix socket path; '' for an external server given by DSN. */
  socket: string
  /** Data directory; '' for an external server. Removed by stop(). */
  datadir: string
  serverId: number
  /** root account with every privilege: `mysql://root:PASS@127.0.0.1:PORT/ferrydiag`. */
  adminDsn: string
  /** Account with REPLICATION SLAVE, REPLICATION CLIENT (BINLOG MONITOR) and SELECT only. */
  replicationDsn: string
  /** Database created for tests ('ferrydiag'). */
  database: string
  /** True when the server was given by env DSN and is not ours to start or stop. */
  external: boolean
  /** mariadbd's pid (0 for an external server). */
  pid: number
  /** Stops the server (SIGTERM, then waits; SIGKILL after 15 s) and removes its datadir. Idempotent. */
  stop(): Promise<void>
}

export interface SourceAndTarget {
  source: MariaDbInstance
  target: MariaDbInstance
  stop(): Promise<void>
}

export interface StartMariaDbOptions {
  /** Binlog format of the server (default ROW). */
  binlogFormat?: 'ROW' | 'STATEMENT' | 'MIXED'
  /** Default: a distinct id per instance started by this process. */
  serverId?: number
  /** Extra mariadbd arguments, e.g. ['--max-binlog-size=4096']. */
  extraArgs?: string[]
  /**
   * Also append the server's error log (its stderr) to this file, e.g. for a tool that reads the error
   * log. (--log-error would hide the "ready for connections" line the harness waits for.)
   */
  errorLogFile?: string
  /** Label used in datadir names and error messages. */
  name?: string
  /** Time allowed for install + start (default 60 s). */
  startTimeoutMs?: number
}

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

export const TEST_DATABASE = 'ferrydiag'
const ROOT_PASSWORD = 'ferrydiag-root'
export const REPLICATION_USER = 'ferry_repl'
const REPLICATION_PASSWORD = 'ferrydiag-repl'

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

function isRoot(): boolean {
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

function requireBinaries(): {serverBinary: string; installDbBinary: string} {
  // Tests never install on their own: the runner (test/run.ts) does that once up front.
  const found = installation?.status === 'missing' ? {} : locateBinaries()
  if (found.serverBinary === undefined || found.installDbBinary === undefined) {
    throw new DatabaseUnavailableError(
      installation?.reason ?? 'no mariadbd/mysqld and mariadb-install-db found (PATH, /usr/sbin, /usr/local/sbin)',
    )
  }
  return {serverBinary: found.serverBinary, installDbBinary: found.installDbBinary}
}

async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

// Distinct server ids per process; the pid spreads concurrent test processes apart.
let nextServerId = 1000 + (process.pid % 50_000) * 16

// Live instances, killed synchronously if the process exits without stopping them.
const live = new Map<number, {wrapper: ChildProcess; serverPid: number; root: string}>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const {wrapper, serverPid, root} of live.values()) {
      for (const pid of [serverPid, wrapper.pid]) {
        try {
          if (pid) process.kill(pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
      rmSync(root, {recursive: true, force: true})
    }
    live.clear()
  })
  // A signal would otherwise end the process without running 'exit' handlers.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1))
    })
  }
}

// The wrapper starts mariadbd, prints its pid, and guards it: when its stdin reaches EOF (stop(), or the
// test process died, even by SIGKILL) it sends SIGTERM, waits, and removes the instance directory.
const GUARD_SCRIPT = `
set -u
root="$1"; shift
exec 3<&0
"$@" </dev/null 3<&- &
server=$!
echo "$server"
cat <&3 >/dev/null &
watcher=$!
exec 3<&-
wait -n -p ended "$server" "$watcher"
status=$?
if [ "\${ended:-}" = "$server" ]; then
  kill "$watcher" 2>/dev/null
else
  status=0
  kill -TERM "$server" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server" 2>/dev/null
  wait "$server" 2>/dev/null
fi
rm -rf "$root"
exit "$status"
`

function buildDsn(user: string, password: string, host: string, port: number, database: string): string {
  return `mysql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${database}`
}

/** Starts one throwaway MariaDB with the binlog on (about 1 s). */
export async function startMariaDb(options: StartMariaDbOptions = {}): Promise<MariaDbInstance> {
  const {serverBinary, installDbBinary} = requireBinaries()
  const name = options.name ?? 'mariadb'
  const serverId = options.serverId ?? nextServerId++
  const startTimeoutMs = options.startTimeoutMs ?? 60_000
  const userArgs = isRoot() ? ['--user=root'] : []
  // Small InnoDB files and pool keep each instance at ~25 MB on disk and quick to create.
  const sizeArgs = ['--innodb-log-file-size=8M', '--innodb-buffer-pool-size=16M']

  let lastError: Error | undefined
  // The free port can be taken between probing and binding by a concurrent process: retry a few times
  // (with a fresh directory, since a failed start removes its own).
  for (let attempt = 0; attempt < 4; attempt++) {
    // A unix socket path must stay under ~107 bytes; fall back to /tmp when TMPDIR is deep.
    const base = tmpdir().length > 60 ? '/tmp' : tmpdir()
    const root = mkdtempSync(join(base, `ferrydiag-${name}-`))
    const datadir = join(root, 'data')
    const socket = join(root, 'sock')
    // A private tmpdir: the server's temporary tables are named after its pid and a counter, and a shared
    // /tmp cleaned by someone else (or reused by a concurrent bootstrap) once made mariadb-install-db abort.
    const privateTmp = join(root, 'tmp')
    mkdirSync(privateTmp)
    const tmpArgs = [`--tmpdir=${privateTmp}`]
    const install = spawnSync(
      installDbBinary,
      ['--no-defaults', ...userArgs, `--datadir=${datadir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...tmpArgs, ...sizeArgs],
      {encoding: 'utf8', timeout: startTimeoutMs, maxBuffer: 16 << 20},
    )
    if (install.status !== 0) {
      rmSync(root, {recursive: true, force: true})
      const tail = `${install.stdout ?? ''}${install.stderr ?? ''}`.trim().split('\n').slice(-5).join(' | ')
      throw new DatabaseUnavailableError(`${installDbBinary} failed (exit ${install.status ?? install.signal}): ${tail}`)
    }
    const port = await findFreePort()
    const serverArgs = [
      '--no-defaults',
      ...userArgs,
      `--datadir=${datadir}`,
      `--socket=${socket}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--pid-file=${join(root, 'mariadbd.pid')}`,
      `--server-id=${serverId}`,
      `--log-bin=${join(datadir, 'binlog')}`,
      `--binlog-format=${options.binlogFormat ?? 'ROW'}`,
      '--binlog-row-image=FULL',
      // GTID-friendly: every transaction gets a domain-server-seq GTID; a replica of this server would
      // write what it applies to its own binlog too.
      '--gtid-domain-id=0',
      '--log-slave-updates',
      '--skip-name-resolve',
      ...tmpArgs,
      ...sizeArgs,
      ...(options.extraArgs ?? []),
    ]
    try {
      return await launch({serverBinary, serverArgs, root, datadir, socket, port, serverId, name, startTimeoutMs, errorLogFile: options.errorLogFile})
    } catch (error) {
      lastError = error as Error
      rmSync(root, {recursive: true, force: true})
      if (!/Address already in use|Can't start server: Bind/i.test(lastError.message)) break
    }
  }
  throw lastError ?? new DatabaseUnavailableError(`${name}: could not start mariadbd`)
}

interface LaunchSpec {
  serverBinary: string
  serverArgs: string[]
  root: string
  datadir: string
  socket: string
  port: number
  serverId: number
  name: string
  startTimeoutMs: number
  errorLogFile?: string
}

async function launch(spec: LaunchSpec): Promise<MariaDbInstance> {
  installExitHook()
  const wrapper = spawn('bash', ['-c', GUARD_SCRIPT, 'ferrydiag-mariadb-guard', spec.root, spec.serverBinary, ...spec.serverArgs], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  // Keep the last lines of the server log for error messages; keep draining so the pipe never fills.
  const logTail: string[] = []
  let serverPid = 0
  let ready = false
  const exited = new Promise<number | null>((resolve) => wrapper.once('exit', (code) => resolve(code)))
  const readyPromise = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new DatabaseUnavailableError(`${spec.name}: mariadbd not ready within ${spec.startTimeoutMs} ms: ${logTail.slice(-5).join(' | ')}`)),
      spec.startTimeoutMs,
    )
    wrapper.stdout!.setEncoding('utf8')
    wrapper.stdout!.on('data', (chunk: string) => {
      const pid = Number.parseInt(chunk.trim(), 10)
      if (serverPid === 0 && Number.isInteger(pid)) {
        serverPid = pid
        live.set(pid, {wrapper, serverPid: pid, root: spec.root})
      }
    })
    let partial = ''
    wrapper.stderr!.setEncoding('utf8')
    wrapper.stderr!.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        logTail.push(line)
        if (spec.errorLogFile !== undefined) appendFileSync(spec.errorLogFile, `${line}\n`)
        if (logTail.length > 40) logTail.shift()
        if (!ready && line.includes('ready for connections')) {
          ready = true
          clearTimeout(timer)
          resolve()
        }
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      if (!ready) {
        const errors = logTail.filter((line) => /ERROR|Error|error/.test(line))
        reject(new DatabaseUnavailableError(`${spec.name}: mariadbd exited (status ${code}) before it was ready: ${(errors.length > 0 ? errors : logTail).slice(-5).join(' | ')}`))
      }
    })
  })

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (serverPid !== 0) {
        try {
          process.kill(serverPid, 'SIGTERM')
        } catch {
          // already gone
        }
      }
      // Closing stdin tells the guard to finish (it also TERMs mariadbd if our signal was missed).
      wrapper.stdin!.end()
      const killTimer = setTimeout(() => {
        for (const pid of [serverPid, wrapper.pid]) {
          try {
            if (pid) process.kill(pid, 'SIGKILL')
          } catch {
            // already gone
          }
        }
      }, 15_000)
      if (wrapper.exitCode === null && wrapper.signalCode === null) await exited
      clearTimeout(killTimer)
      live.delete(serverPid)
      rmSync(spec.root, {recursive: true, force: true})
    })()
    return stopping
  }

  try {
    await readyPromise
    await provision(spec.socket)
  } catch (error) {
    await stop()
    throw error
  }

  return {
    host: '127.0.0.1',
    port: spec.port,
    socket: spec.socket,
    datadir: spec.datadir,
    serverId: spec.serverId,
    adminDsn: buildDsn('root', ROOT_PASSWORD, '127.0.0.1', spec.port, TEST_DATABASE),
    replicationDsn: buildDsn(REPLICATION_USER, REPLICATION_PASSWORD, '127.0.0.1', spec.port, TEST_DATABASE),
    database: TEST_DATABASE,
    external: false,
    pid: serverPid,
    stop,
  }
}

// Accounts over the socket as the passwordless root that mariadb-install-db created.
async function provision(socket: string): Promise<void> {
  const conn = await mysql.createConnection({socketPath: socket, user: 'root', multipleStatements: true})
  try {
    await conn.query(`
      CREATE DATABASE IF NOT EXISTS ${TEST_DATABASE};
      CREATE USER 'root'@'%' IDENTIFIED BY '${ROOT_PASSWORD}';
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
      CREATE USER '${REPLICATION_USER}'@'%' IDENTIFIED BY '${REPLICATION_PASSWORD}';
      GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '${REPLICATION_USER}'@'%';
      DROP USER IF EXISTS 'root'@'127.0.0.1';
      DROP USER IF EXISTS 'root'@'::1';
      FLUSH PRIVILEGES;
    `)
  } finally {
    await conn.end()
  }
}

/** Describes a server given by DSN (env override); it is not ours, so stop() does nothing. */
async function describeExternal(adminDsn: string, replicationDsn: string): Promise<MariaDbInstance> {
  const url = new URL(adminDsn)
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || TEST_DATABASE
  let serverId = 0
  try {
    const conn = await mysql.createConnection({
      host: url.hostname,
      port: url.port === '' ? 3306 : Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      connectTimeout: 5000,
    })
    try {
      const [rows] = await conn.query('SELECT @@server_id AS id')
      serverId = Number((rows as Array<{id: number}>)[0]!.id)
      await conn.query(`CREATE DATABASE IF NOT EXISTS \`${database.replace(/`/g, '``')}\``)
    } finally {
      await conn.end()
    }
  } catch (error) {
    throw new DatabaseUnavailableError(`cannot use ${url.hostname}:${url.port} from env DSN: ${(error as Error).message}`, {cause: error})
  }
  return {
    host: url.hostname,
    port: url.port === '' ? 3306 : Number(url.port),
    socket: '',
    datadir: '',
    serverId,
    adminDsn,
    replicationDsn,
    database,
    external: true,
    pid: 0,
    stop: async () => {},
  }
}

/** A source and a target server: the env DSNs when both are set, else two fresh local instances. */
export async function startSourceAndTarget(options: StartMariaDbOptions = {}): Promise<SourceAndTarget> {
  const sourceDsn = process.env.FERRYDIAG_TEST_SOURCE_DSN
  const targetDsn = process.env.FERRYDIAG_TEST_TARGET_DSN
  if (sourceDsn && targetDsn) {
    const source = await describeExternal(sourceDsn, process.env.FERRYDIAG_TEST_SOURCE_REPLICATION_DSN || sourceDsn)
    const target = await describeExternal(targetDsn, targetDsn)
    return {source, target, stop: async () => {}}
  }
  const source = await startMariaDb({...options, name: 'source'})
  let target: MariaDbInstance
  try {
    target = await startMariaDb({...options, name: 'target'})
  } catch (error) {
    await source.stop()
    throw error
  }
  return {
    source,
    target,
    stop: async () => {
      await Promise.all([source.stop(), target.stop()])
    },
  }
}

/**
 * Awaits a database; when it cannot be had: with env CI set, throws (the test fails with the reason),
 * otherwise skips the test with the reason and returns undefined.
 */
export async function databaseOrSkip<T>(t: TestContext, acquire: Promise<T> | (() => Promise<T>)): Promise<T | undefined> {
  try {
    return await (typeof acquire === 'function' ? acquire() : acquire)
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    if (process.env.CI) {
      throw new Error(`database required in CI but unavailable: ${reason}`, {cause: error})
    }
    t.skip(`no database: ${reason}`)
    return undefined
  }
}

/**
 * One server (or pair) shared by the tests of a file, started on first use:
 *   const db = sharedDatabase(() => startSourceAndTarget()); after(() => db.stop())
 *   it('...', async (t) => { const pair = await db.get(t); if (!pair) return; ... })
 */
export function sharedDatabase<T extends {stop(): Promise<void>}>(start: () => Promise<T>): {
  get(t: TestContext): Promise<T | undefined>
  stop(): Promise<void>
} {
  let started: Promise<T> | undefined
  return {
    get: (t) => databaseOrSkip(t, (started ??= start())),
    stop: async () => {
      if (started === undefined) return
      const value = await started.catch(() => undefined)
      await value?.stop()
    },
  }
}

/** Opens a mysql2 connection from a harness DSN (test convenience; the product uses src/mysql). */
export async function openConnection(dsn: string, options: {multipleStatements?: boolean} = {}): Promise<mysql.Connection> {
  const url = new URL(dsn)
  return mysql.createConnection({
    host: url.hostname,
    port: url.port === '' ? 3306 : Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.replace(/^\//, '')) || undefined,
    multipleStatements: options.multipleStatements ?? false,
    connectTimeout: 5000,
  })
}

/** Creates a user with exactly the given privileges (e.g. 'SELECT ON *.*') and returns its DSN. */
export async function createUser(instance: MariaDbInstance, user: string, password: string, grants: string[]): Promise<string> {
  const conn = await openConnection(instance.adminDsn)
  try {
    await conn.query('CREATE OR REPLACE USER ?@? IDENTIFIED BY ?', [user, '%', password])
    for (const grant of grants) await conn.query(`GRANT ${grant} TO ?@?`, [user, '%'])
  } finally {
    await conn.end()
  }
  return buildDsn(user, password, instance.host, instance.port, instance.database)
}

/** The same DSN pointed at another database. */
export function withDatabase(dsn: string, name: string): string {
  const url = new URL(dsn)
  url.pathname = `/${name}`
  return url.toString()
}

/**
 * Creates database `name`, empty, on both servers (each test copies into its own: the pipeline starts at
 * the binlog's end and copies nothing that was there before) and returns admin DSNs pointing at it.
 */
export async function freshDatabase(source: MariaDbInstance, target: MariaDbInstance, name: string): Promise<{source: string; target: string}> {
  for (const instance of [source, target]) {
    const conn = await openConnection(instance.adminDsn)
    try {
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
      await conn.query(`CREATE DATABASE \`${name}\``)
    } finally {
      await conn.end()
    }
  }
  return {source: withDatabase(source.adminDsn, name), target: withDatabase(target.adminDsn, name)}
}
