// Turn --inspect HOST:PORT or --pid N into an inspector address ferrydiag may connect to: refuse remote
// hosts unless allowed, check the pid is a live Node process, find its inspector or open one with SIGUSR1.

import {lookup} from 'node:dns/promises'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import net from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

import {FerrydiagError} from '../errors.js'
import {trace} from '../trace.js'
import {fetchInspectorTargets, formatHostPort} from './connect.js'
import {
  connectableHostFor,
  describeProcessRuntime,
  findInspectHostInArgs,
  findInspectPortInArgs,
  type ListeningSocket,
  readListeningSockets,
  readOwnedListeningSockets,
  readProcessArgv,
  readProcessNodeOptions,
} from './proc-net.js'

export const DEFAULT_INSPECT_HOST = '127.0.0.1'
export const DEFAULT_INSPECT_PORT = 9229
/** How long to wait for the inspector socket after SIGUSR1; it normally opens within ~5 ms. */
export const DEFAULT_SIGUSR1_WAIT_MS = 3000

/** Where to connect, and whether ferrydiag itself opened the inspector (so detach closes it). */
export interface ResolvedTarget {
  host: string
  port: number
  /** The process behind the inspector when known (always for --pid). */
  pid: number | null
  /** True when ferrydiag sent SIGUSR1 and a new inspector socket appeared as a result. */
  openedBySignal: boolean
  via: 'inspect' | 'pid'
}

export interface ResolveTargetOptions {
  /** HOST:PORT, [IPv6]:PORT or PORT. Ignored when pid is given. */
  inspect?: string
  pid?: number
  allowRemote?: boolean
  sigusr1WaitMs?: number
  /** Budget for each /json/list probe of an existing socket, in milliseconds. */
  probeTimeoutMs?: number
}

/** Parses --inspect's value. Throws FerrydiagError badArgument for anything but HOST:PORT / PORT. */
export function parseInspectAddress(value: string): {host: string; port: number} {
  const text = value.trim()
  const bad = (why: string): FerrydiagError =>
    new FerrydiagError(
      'badArgument',
      `Expected --inspect as HOST:PORT, [IPv6]:PORT or PORT (e.g. 127.0.0.1:9229), got \`${value}\` (${why}).`,
      'Pass the address from the target\'s "Debugger listening on ws://HOST:PORT/…" line, e.g. --inspect 127.0.0.1:9229.',
    )
  let host: string
  let portText: string
  const bracketed = /^\[([^\]]+)\]:(\S+)$/.exec(text)
  if (bracketed) {
    ;[, host, portText] = bracketed
    if (net.isIPv6(host) === false) throw bad('not an IPv6 literal inside brackets')
  } else if (/^\d+$/.test(text)) {
    host = DEFAULT_INSPECT_HOST
    portText = text
  } else {
    const colon = text.lastIndexOf(':')
    if (colon <= 0) throw bad('missing :PORT')
    host = text.slice(0, colon)
    portText = text.slice(colon + 1)
    if (host.includes(':')) throw bad('an IPv6 host needs brackets, e.g. [::1]:9229')
    if (!/^[A-Za-z0-9.-]+$/.test(host)) throw bad('host has characters a host name cannot have')
  }
  if (!/^\d+$/.test(portText)) throw bad('port is not a number')
  const port = Number(portText)
  if (port < 1 || port > 65535) throw bad('port must be 1–65535')
  return {host, port}
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and the name localhost. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true
  if (net.isIPv4(host)) return host.startsWith('127.')
  if (net.isIPv6(host)) {
    const lower = host.toLowerCase()
    return lower === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(lower) || /^::ffff:127\./.test(lower)
  }
  return false
}

/**
 * Resolves the CLI's target flags. With neither inspect nor pid, uses 127.0.0.1:9229.
 * Throws FerrydiagError: badArgument, remoteRefused, noSuchProcess, signalDenied, notNode, ownSigusr1, inspectorPortBusy.
 */
export async function resolveTarget(options: ResolveTargetOptions): Promise<ResolvedTarget> {
  if (options.pid !== undefined) return resolvePid(options.pid, options)
  const {host, port} = parseInspectAddress(options.inspect ?? `${DEFAULT_INSPECT_HOST}:${DEFAULT_INSPECT_PORT}`)
  if (!isLoopbackHost(host) && !options.allowRemote) {
    throw new FerrydiagError(
      'remoteRefused',
      `Refusing to attach to ${formatHostPort(host, port)}: it is not a loopback address, and the inspector protocol is unauthenticated and can run any code in the target.`,
      'Tunnel the port instead (ssh -L 9229:127.0.0.1:9229 HOST) and use --inspect 127.0.0.1:9229, or pass --allow-remote if the network path is trusted.',
    )
  }
  return {host: await toIpLiteral(host), port, pid: null, openedBySignal: false, via: 'inspect'}
}

/** Node's inspector only accepts a Host header that is an IP literal or localhost, so resolve names. */
async function toIpLiteral(host: string): Promise<string> {
  if (net.isIP(host)) return host
  if (host.toLowerCase() === 'localhost') return DEFAULT_INSPECT_HOST
  try {
    return (await lookup(host)).address
  } catch (error) {
    throw new FerrydiagError(
      'badArgument',
      `Cannot resolve the --inspect host \`${host}\` (${(error as {code?: string}).code ?? 'lookup failed'}).`,
      'Use an IP address, e.g. --inspect 127.0.0.1:9229.',
      {cause: error},
    )
  }
}

async function resolvePid(pid: number, options: ResolveTargetOptions): Promise<ResolvedTarget> {
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    throw new FerrydiagError(
      'badArgument',
      `Expected --pid to be a positive integer, got \`${pid}\`.`,
      'Find the pid with `pgrep -af node`.',
    )
  }
  checkSignalable(pid)
  if (await isZombie(pid)) {
    throw new FerrydiagError(
      'noSuchProcess',
      `Process ${pid} has exited (it is a zombie waiting for its parent to reap it).`,
      'Find the live pid with `pgrep -af node`.',
    )
  }
  const runtime = await describeProcessRuntime(pid)
  if (!runtime.isNode) {
    throw new FerrydiagError(
      'notNode',
      `Process ${pid} runs ${runtime.seen}, not node; expected a Node.js process.`,
      'Pass the pid of the node process itself (not a shell or npm wrapper): `pgrep -af node`.',
    )
  }

  const argv = await readProcessArgv(pid)
  const nodeOptions = (await readProcessNodeOptions(pid)).split(/\s+/).filter(Boolean)
  const flaggedPort = findInspectPortInArgs([...nodeOptions, ...argv])
  // The port SIGUSR1 will open: --inspect-port / --inspect's port, else Node's default.
  const debugPort = flaggedPort ?? DEFAULT_INSPECT_PORT
  const probeTimeoutMs = options.probeTimeoutMs ?? 1500

  const before = await readOwnedListeningSockets(pid)
  if (before === null) return resolvePidBlind(pid, debugPort, [...nodeOptions, ...argv], options)
  // The inspector is usually on the debug port; an application may also have opened it elsewhere with
  // inspector.open(port), and then SIGUSR1 is a no-op, so look at its other loopback sockets too
  // (a GET /json/list to an application's own HTTP port is harmless).
  const onDebugPort = before.filter((socket) => debugPort === 0 || socket.port === debugPort)
  const elsewhere = before.filter((socket) => !onDebugPort.includes(socket)).slice(0, 8)
  const existing = await findInspectorAmong([...onDebugPort, ...elsewhere], probeTimeoutMs)
  if (existing) return {...existing, pid, openedBySignal: false, via: 'pid'}
  await checkSafeToSignal(pid, [...nodeOptions, ...argv], debugPort, options)

  if (debugPort !== 0) {
    const holder = (await readListeningSockets(pid)).find(
      (socket) => socket.port === debugPort && !before.some((own) => own.inode === socket.inode),
    )
    if (holder) {
      throw new FerrydiagError(
        'inspectorPortBusy',
        `Process ${pid} has no inspector open, and port ${debugPort} (where SIGUSR1 would open it) is already taken by another process, so SIGUSR1 cannot open it.`,
        `Free port ${debugPort} (\`ss -ltnp | grep ${debugPort}\`), or restart the target with --inspect=127.0.0.1:0 and pass --inspect with the port it prints.`,
      )
    }
  }

  sendSigusr1(pid)
  const waitMs = options.sigusr1WaitMs ?? DEFAULT_SIGUSR1_WAIT_MS
  const deadline = performance.now() + waitMs
  const known = new Set(before.map((socket) => socket.inode))
  while (performance.now() < deadline) {
    await sleep(10)
    const now = await readOwnedListeningSockets(pid)
    if (now === null) {
      checkSignalable(pid)
      continue
    }
    const fresh = now.filter((socket) => !known.has(socket.inode))
    if (fresh.length > 0) {
      const opened = await findInspectorAmong(fresh, probeTimeoutMs)
      if (opened) return {...opened, pid, openedBySignal: true, via: 'pid'}
      // A socket the application opened at the same moment: keep waiting for the inspector's.
      for (const socket of fresh) known.add(socket.inode)
    }
  }
  checkSignalable(pid) // a process that died on the signal reads better as noSuchProcess
  await recordSigusr1Refusal(pid)
  throw ownSigusr1Error(pid, waitMs, null)
}

/** Without /proc/PID/fd (e.g. a non-dumpable process) the port is known only from flags or defaults. */
async function resolvePidBlind(pid: number, debugPort: number, args: string[], options: ResolveTargetOptions): Promise<ResolvedTarget> {
  const port = debugPort === 0 ? DEFAULT_INSPECT_PORT : debugPort
  const host = DEFAULT_INSPECT_HOST
  if (await isPortOpen(host, port)) {
    await fetchInspectorTargets({host, port, timeoutMs: options.probeTimeoutMs ?? 1500})
    return {host, port, pid, openedBySignal: false, via: 'pid'}
  }
  await checkSafeToSignal(pid, args, debugPort, options)
  sendSigusr1(pid)
  const waitMs = options.sigusr1WaitMs ?? DEFAULT_SIGUSR1_WAIT_MS
  const deadline = performance.now() + waitMs
  while (performance.now() < deadline) {
    await sleep(20)
    if (await isPortOpen(host, port)) {
      await fetchInspectorTargets({host, port, timeoutMs: options.probeTimeoutMs ?? 1500})
      return {host, port, pid, openedBySignal: true, via: 'pid'}
    }
  }
  checkSignalable(pid)
  await recordSigusr1Refusal(pid)
  throw ownSigusr1Error(pid, waitMs, null)
}

/**
 * Before SIGUSR1: refuse when the process's flags would open the inspector on a non-loopback address
 * (0.0.0.0: every interface, as --inspect itself refuses for such a host), and when an earlier attempt
 * showed that the process handles SIGUSR1 itself (sending it again would only run its handler again).
 */
async function checkSafeToSignal(pid: number, args: string[], debugPort: number, options: ResolveTargetOptions): Promise<void> {
  const host = findInspectHostInArgs(args)
  if (host !== null && !isLoopbackHost(host) && !options.allowRemote) {
    throw new FerrydiagError(
      'remoteRefused',
      `Refusing to send SIGUSR1 to process ${pid}: its flags would open the inspector on ${formatHostPort(host, debugPort)}, a non-loopback address where anyone who can reach it can run any code in the process.`,
      'Restart the target with --inspect-port=127.0.0.1:PORT, or pass --allow-remote if that network is trusted.',
    )
  }
  const refusedAt = await readSigusr1Refusal(pid)
  if (refusedAt !== null) throw ownSigusr1Error(pid, 0, refusedAt)
}

/**
 * The inspector did not open on SIGUSR1: Node gives the signal to the application's own
 * process.on('SIGUSR1') handler instead, so that handler ran (whatever it does: reopen logs, dump
 * state). `earlierAt` is when an earlier ferrydiag found this, in which case no signal was sent now.
 */
function ownSigusr1Error(pid: number, waitMs: number, earlierAt: number | null): FerrydiagError {
  const what =
    earlierAt === null
      ? `Sent SIGUSR1 to process ${pid} but no inspector opened within ${waitMs} ms: the process handles SIGUSR1 itself (process.on('SIGUSR1')), so its own handler ran instead, once, and did whatever it does on SIGUSR1.`
      : `Did not send SIGUSR1 to process ${pid}: ferrydiag found at ${new Date(earlierAt).toISOString()} that it handles SIGUSR1 itself (its own handler ran then instead of the inspector opening), so sending it again would only run that handler again.`
  return new FerrydiagError(
    'ownSigusr1',
    what,
    "Restart it with --inspect=127.0.0.1:9229 and use --inspect, or preload the agent (node --import ferrydiag/register app.js) and attach with --inspect.",
  )
}

/** Where ferrydiag remembers processes whose own SIGUSR1 handler ran: per user, per process start. */
async function sigusr1RefusalFile(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const startTicks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
    const dir = path.join(os.tmpdir(), `ferrydiag-${process.getuid?.() ?? 'user'}`)
    return path.join(dir, `sigusr1-refused-${pid}-${startTicks}`)
  } catch {
    return null
  }
}

async function readSigusr1Refusal(pid: number): Promise<number | null> {
  const file = await sigusr1RefusalFile(pid)
  if (file === null) return null
  try {
    return Number((await readFile(file, 'utf8')).trim()) || null
  } catch {
    return null
  }
}

async function recordSigusr1Refusal(pid: number): Promise<void> {
  const file = await sigusr1RefusalFile(pid)
  if (file === null) return
  try {
    await mkdir(path.dirname(file), {recursive: true, mode: 0o700})
    await writeFile(file, String(Date.now()))
  } catch {
    // Only a memo: without it the next attempt sends the signal again and says so.
  }
}

/** Probes sockets (loopback or wildcard only) with GET /json/list; the first inspector wins. */
async function findInspectorAmong(
  sockets: ListeningSocket[],
  probeTimeoutMs: number,
): Promise<{host: string; port: number} | null> {
  for (const socket of sockets) {
    const host = connectableHostFor(socket.address)
    if (!isLoopbackHost(host)) continue
    try {
      await fetchInspectorTargets({host, port: socket.port, timeoutMs: probeTimeoutMs})
      return {host, port: socket.port}
    } catch {
      // Not an inspector (an application port): try the next one.
    }
  }
  return null
}

function checkSignalable(pid: number): void {
  try {
    process.kill(pid, 0)
  } catch (error) {
    throw signalError(pid, error)
  }
}

function sendSigusr1(pid: number): void {
  trace('sigusr1')
  try {
    process.kill(pid, 'SIGUSR1')
  } catch (error) {
    throw signalError(pid, error)
  }
}

function signalError(pid: number, error: unknown): FerrydiagError {
  const code = (error as {code?: string}).code
  if (code === 'EPERM') {
    return new FerrydiagError(
      'signalDenied',
      `Not allowed to signal process ${pid} (EPERM): it belongs to another user.`,
      'Run ferrydiag as the same user as the target (e.g. sudo -u THAT_USER ferrydiag …), or start the target with --inspect and use --inspect.',
      {cause: error},
    )
  }
  return new FerrydiagError(
    'noSuchProcess',
    `No process with pid ${pid} (${code ?? 'kill failed'}).`,
    'Find the pid with `pgrep -af node`.',
    {cause: error},
  )
}

async function isZombie(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // Field 3 follows the parenthesised command name, which may itself contain spaces or ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return false
  }
}

/** True when a TCP connection to host:port is accepted within 500 ms. */
export function isPortOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({host, port})
    const done = (open: boolean): void => {
      socket.destroy()
      resolve(open)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
