// The lifecycle of one throwaway MariaDB instance: its own datadir, port, socket and server-id, a guard
// that stops it when the test process dies (even by SIGKILL), and its removal when stopped.
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {appendFileSync, mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {provision, provisionedDsns} from './mariadb-accounts.js'
import {DatabaseUnavailableError, isRoot, requireBinaries} from './mariadb-install.js'

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
    ...provisionedDsns('127.0.0.1', spec.port),
    external: false,
    pid: serverPid,
    stop,
  }
}
