// A one-line progress note on stderr while `binlog diff` reads the servers' binlogs: transactions read
// per server and where each is. Only on a TTY and never with --json; erased when done.

import type {BinlogPosition} from '../model/snapshot.js'
import type {ProgressStream} from './progress.js'

export interface ServerProgress {
  transactionsRead: number
  at: BinlogPosition
}

/** The text of the line, e.g. "reading binlogs: #1 52000 tx at binlog.000001:1400000 · #2 …". Exposed for tests. */
export function formatBinlogDiffProgress(servers: readonly ServerProgress[]): string {
  return `reading binlogs: ${servers.map((s, i) => `#${i + 1} ${s.transactionsRead} tx at ${s.at.file}:${s.at.offset}`).join(' · ')}`
}

export interface BinlogDiffProgress {
  update(server: number, progress: ServerProgress): void
  clear(): void
}

/** Redraws at most every `intervalMs` (default 250 ms). */
export function createBinlogDiffProgress(options: {servers: number; json: boolean; stream?: ProgressStream; intervalMs?: number; nowMs?: () => number}): BinlogDiffProgress {
  const stream = options.stream ?? process.stderr
  const enabled = stream.isTTY === true && !options.json
  const now = options.nowMs ?? (() => performance.now())
  const state: ServerProgress[] = Array.from({length: options.servers}, () => ({transactionsRead: 0, at: {file: '', offset: 0}}))
  let lastDrawMs = -Infinity
  let drawn = false
  return {
    update(server, progress) {
      if (!enabled) return
      state[server] = progress
      if (now() - lastDrawMs < (options.intervalMs ?? 250)) return
      lastDrawMs = now()
      const width = Math.max(20, (stream.columns ?? 80) - 1)
      stream.write(`\r${formatBinlogDiffProgress(state).slice(0, width)}\x1b[K`)
      drawn = true
    },
    clear() {
      if (!drawn) return
      stream.write('\r\x1b[K')
      drawn = false
    },
  }
}
