// Linux /proc readers used to resolve --pid: what a process runs (its executable and argv) and which
// TCP sockets it listens on, so ferrydiag can find an inspector port without guessing.

import {readFile, readdir, readlink} from 'node:fs/promises'
import path from 'node:path'

/** A TCP socket in LISTEN state, as /proc/PID/net/tcp{,6} shows it. */
export interface ListeningSocket {
  /** Kernel socket inode: the key that ties a socket to a process's file descriptors. */
  inode: number
  /** Bound address as text: '127.0.0.1', '0.0.0.0', '::1', '::' or another literal. */
  address: string
  port: number
  family: 4 | 6
}

/** /proc/net/tcp state code for LISTEN (see include/net/tcp_states.h). */
const TCP_LISTEN_STATE = '0A'

/** Reads argv of a process; [] when it cannot be read (zombie, kernel thread, no permission). */
export async function readProcessArgv(pid: number): Promise<string[]> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8')
    return raw.split('\0').filter((part) => part.length > 0)
  } catch {
    return []
  }
}

/** Reads the NODE_OPTIONS a process started with; '' when absent or unreadable. */
export async function readProcessNodeOptions(pid: number): Promise<string> {
  try {
    const raw = await readFile(`/proc/${pid}/environ`, 'utf8')
    const entry = raw.split('\0').find((part) => part.startsWith('NODE_OPTIONS='))
    return entry ? entry.slice('NODE_OPTIONS='.length) : ''
  } catch {
    return ''
  }
}

/** Path of the process's executable, or null when the link cannot be read (other user, kernel thread). */
export async function readProcessExecutable(pid: number): Promise<string | null> {
  try {
    return await readlink(`/proc/${pid}/exe`)
  } catch {
    return null
  }
}

/**
 * Whether the process runs a Node.js binary. Judged by the executable's file name (node, nodejs,
 * node20, ...) and, when /proc/PID/exe is unreadable, by argv[0].
 * Returns the name that was judged, for the error message.
 */
export async function describeProcessRuntime(pid: number): Promise<{isNode: boolean; seen: string}> {
  const executable = await readProcessExecutable(pid)
  const argv = await readProcessArgv(pid)
  const candidate = executable ?? argv[0] ?? ''
  // A deleted binary (upgraded package) shows as '/usr/bin/node (deleted)'.
  const base = path.basename(candidate.replace(/ \(deleted\)$/, ''))
  return {isNode: /^(node|nodejs)[\d.-]*$/i.test(base), seen: candidate || '(unreadable)'}
}

/** Socket inodes among the process's open file descriptors; null when /proc/PID/fd is unreadable. */
export async function readSocketInodes(pid: number): Promise<Set<number> | null> {
  let entries: string[]
  try {
    entries = await readdir(`/proc/${pid}/fd`)
  } catch {
    return null
  }
  const inodes = new Set<number>()
  await Promise.all(
    entries.map(async (fd) => {
      try {
        const target = await readlink(`/proc/${pid}/fd/${fd}`)
        const match = /^socket:\[(\d+)\]$/.exec(target)
        if (match) inodes.add(Number(match[1]))
      } catch {
        // The descriptor closed between readdir and readlink: not ours to report.
      }
    }),
  )
  return inodes
}

/** Decodes a /proc/net/tcp address: IPv4 is one little-endian 32-bit word, IPv6 four of them. */
export function decodeProcNetAddress(hex: string): string {
  if (hex.length === 8) {
    const bytes = Buffer.from(hex, 'hex').reverse()
    return Array.from(bytes).join('.')
  }
  if (hex.length === 32) {
    const words: Buffer[] = []
    for (let i = 0; i < 32; i += 8) words.push(Buffer.from(hex.slice(i, i + 8), 'hex').reverse())
    const bytes = Buffer.concat(words)
    // An IPv4-mapped address (::ffff:a.b.c.d) reads best in its IPv4 form.
    if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
      return Array.from(bytes.subarray(12)).join('.')
    }
    const groups: string[] = []
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16))
    return compressIpv6(groups)
  }
  throw new RangeError(`Expected an 8- or 32-digit hex address from /proc/net/tcp, got \`${hex}\``)
}

function compressIpv6(groups: string[]): string {
  // Replace the longest run of zero groups with '::' (RFC 5952), enough for '::' and '::1'.
  let bestStart = -1
  let bestLength = 0
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < groups.length && groups[j] === '0') j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  if (bestLength < 2) return groups.join(':')
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`
}

/** Parses the text of /proc/net/tcp or tcp6 into its LISTEN sockets. */
export function parseProcNetTcp(text: string, family: 4 | 6): ListeningSocket[] {
  const sockets: ListeningSocket[] = []
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/)
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    if (fields.length < 10 || fields[3] !== TCP_LISTEN_STATE) continue
    const [addressHex, portHex] = fields[1].split(':')
    sockets.push({
      inode: Number(fields[9]),
      address: decodeProcNetAddress(addressHex),
      port: Number.parseInt(portHex, 16),
      family,
    })
  }
  return sockets
}

/**
 * Every LISTEN socket in the process's network namespace (read through /proc/PID/net so a process in
 * another namespace is judged by its own table).
 */
export async function readListeningSockets(pid: number): Promise<ListeningSocket[]> {
  const tables: Array<[string, 4 | 6]> = [
    [`/proc/${pid}/net/tcp`, 4],
    [`/proc/${pid}/net/tcp6`, 6],
  ]
  const sockets: ListeningSocket[] = []
  for (const [file, family] of tables) {
    try {
      sockets.push(...parseProcNetTcp(await readFile(file, 'utf8'), family))
    } catch {
      // tcp6 is absent on kernels without IPv6.
    }
  }
  return sockets
}

/** LISTEN sockets owned by the process (matched by inode); null when its descriptors are unreadable. */
export async function readOwnedListeningSockets(pid: number): Promise<ListeningSocket[] | null> {
  const inodes = await readSocketInodes(pid)
  if (inodes === null) return null
  const sockets = await readListeningSockets(pid)
  return sockets.filter((socket) => inodes.has(socket.inode))
}

/**
 * The inspector port named by --inspect / --inspect-brk / --inspect-port / --inspect-wait in argv or
 * NODE_OPTIONS: 9229 when a flag has no port, null when no flag is present. Port 0 means "any" and is
 * returned as 0 (the caller must look at the sockets to learn the real port).
 */
export function findInspectPortInArgs(args: string[]): number | null {
  let port: number | null = null
  for (const arg of args) {
    const match = /^--inspect(?:-brk|-wait|-port)?(?:=(.*))?$/.exec(arg)
    if (!match) continue
    const value = match[1]
    if (value === undefined || value === '') {
      port ??= 9229
      continue
    }
    // Forms: PORT, HOST:PORT, [IPv6]:PORT, or HOST alone.
    const portText = /(?:^|:)(\d+)$/.exec(value)?.[1]
    port = portText === undefined ? 9229 : Number(portText)
  }
  return port
}

/**
 * The host the inspector would listen on, from --inspect / --inspect-port / --inspect-brk values in
 * the target's argv and NODE_OPTIONS (the last one wins, as in Node); null when none names a host
 * (Node's default 127.0.0.1).
 */
export function findInspectHostInArgs(args: string[]): string | null {
  let host: string | null = null
  for (const arg of args) {
    const match = /^--inspect(?:-brk|-wait|-port)?=(.+)$/.exec(arg)
    if (!match) continue
    const value = match[1]
    const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value)
    if (bracketed) host = bracketed[1]
    else if (/^\d+$/.test(value)) continue
    else host = value.replace(/:\d+$/, '')
  }
  return host
}

/** Loopback or wildcard addresses that a local client reaches through loopback. */
export function connectableHostFor(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1'
  if (address === '::') return '::1'
  return address
}
