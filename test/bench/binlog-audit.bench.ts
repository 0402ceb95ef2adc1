// `ferrydiag binlog audit` figures: events audited per second next to `mariadb-binlog` reading the same
// range on the same machine (over replication from the server, and from the local files), and the
// audit's peak memory (max RSS of its process) as the range grows, with a full positions log (one line
// per transaction) and with only the range's two ends acknowledged.
// Run: npm run bench -- binlog-audit (needs mariadbd; FERRYDIAG_BENCH_AUDIT_TXNS=20000,80000 to change sizes).

import {spawnSync} from 'node:child_process'
import {mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import Table from 'cli-table3'

import {auditBinlog} from '../../src/mysql/binlog-audit-read.js'
import {readBinlogFile} from '../../src/mysql/binlog-events.js'
import {parseConsumerPositions} from '../../src/mysql/binlog-positions.js'
import {openConnection, startMariaDb} from '../helpers/mariadb.js'

const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
const SIZES = (process.env.FERRYDIAG_BENCH_AUDIT_TXNS ?? '10000,40000,160000').split(',').map(Number)

interface Measured {
  /** Wall time of the whole process, start-up included. */
  ms: number
  /** The audit's own reading-and-judging time (its report's readMs); null for mariadb-binlog. */
  readMs: number | null
  maxRssMb: number
  status: number | null
}

/** Runs a command under /usr/bin/time for its wall time and max RSS; a JSON report on stdout is read for readMs. */
function measure(command: string, args: string[]): Measured {
  const started = performance.now()
  const result = spawnSync('/usr/bin/time', ['-f', '%M', command, ...args], {encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe']})
  const ms = performance.now() - started
  const kb = Number(result.stderr.trim().split('\n').at(-1))
  let readMs: number | null = null
  if (result.stdout.startsWith('{')) readMs = (JSON.parse(result.stdout) as {readMs: number}).readMs
  return {ms, readMs, maxRssMb: kb / 1024, status: result.status}
}

async function main(): Promise<void> {
  const db = await startMariaDb({name: 'audit-bench', extraArgs: ['--max-binlog-size=16777216', '--innodb-flush-log-at-trx-commit=0', '--sync-binlog=0']})
  const work = mkdtempSync(join(tmpdir(), 'ferrydiag-audit-bench-'))
  try {
    const conn = await openConnection(db.adminDsn, {multipleStatements: true})
    await conn.query('CREATE TABLE rows_bench (id BIGINT AUTO_INCREMENT PRIMARY KEY, a INT, b VARCHAR(64))')
    const url = new URL(db.replicationDsn)
    const table = new Table({
      head: ['txns', 'events', 'binlog MB', 'audit -R ev/s (read / process)', 'mariadb-binlog -R ev/s', 'audit file+CRC ev/s (read / process)', 'mariadb-binlog file+CRC ev/s', 'audit RSS MB (full log / 2 acks)', 'audit live heap MB after GC (2 acks)'],
      style: {head: [], border: []},
    })
    let written = 0
    for (const size of SIZES) {
      // Grow the binlog to `size` single-row transactions (about 5 events each: Gtid, Annotate, Table_map, Write_rows, Xid).
      while (written < size) {
        const batch = Math.min(2000, size - written)
        await conn.query(Array.from({length: batch}, (_, i) => `INSERT INTO rows_bench (a, b) VALUES (${written + i}, 'payload-${written + i}')`).join(';'))
        written += batch
      }
      await conn.query('FLUSH BINARY LOGS')
      const files = readdirSync(db.datadir).filter((name) => /^binlog\.\d+$/.test(name)).sort()
      const closed = files.slice(0, -1) // the newest file is the one just opened by FLUSH
      // A full positions log (every transaction's end, as a correct follower writes it) and the range's ends.
      const ends: string[] = []
      let events = 0
      let bytes = 0
      for (const file of closed) {
        const summary = await readBinlogFile(join(db.datadir, file), (event) => {
          if (event.type === 16) ends.push(`${event.file}:${event.endPos}`)
        })
        events += summary.events
        bytes += summary.sizeBytes
      }
      const fullLog = join(work, `full-${size}.log`)
      writeFileSync(fullLog, `${ends.join('\n')}\n`)
      const endsLog = join(work, `ends-${size}.log`)
      writeFileSync(endsLog, `${ends[0]}\n${ends.at(-1)}\n`)
      const source = db.replicationDsn
      const replication = measure(process.execPath, [RUN_JS, 'binlog', 'audit', '--source', source, '--positions', fullLog, '--from', `${closed[0]}:4`, '--json'])
      const twoAcks = measure(process.execPath, [RUN_JS, 'binlog', 'audit', '--source', source, '--positions', endsLog, '--json'])
      const local = measure(process.execPath, [RUN_JS, 'binlog', 'audit', ...closed.flatMap((f) => ['--binlog-file', join(db.datadir, f)]), '--positions', fullLog, '--verify-checksums', '--json'])
      const mariadbRemote = measure('mariadb-binlog', [
        '--read-from-remote-server',
        `--host=${url.hostname}`,
        `--port=${url.port}`,
        `--user=${decodeURIComponent(url.username)}`,
        `--password=${decodeURIComponent(url.password)}`,
        ...closed,
      ])
      const mariadbLocal = measure('mariadb-binlog', ['--verify-binlog-checksum', ...closed.map((f) => join(db.datadir, f))])
      // In this process: the largest live heap (after a full GC, every 4096 events) while auditing the range
      // with only its two ends acknowledged (every transaction between them lost: the lists' worst case).
      const gc = (globalThis as {gc?: () => void}).gc
      let liveMaxMb = Number.NaN
      if (gc !== undefined) {
        // Counted above what this benchmark itself holds (e.g. the positions it just wrote).
        gc()
        const baselineMb = process.memoryUsage().heapUsed / 1024 / 1024
        liveMaxMb = 0
        const acks = parseConsumerPositions(`${ends[0]}\n${ends.at(-1)}\n`, 'ends')
        await auditBinlog({
          acks,
          consumer: {kind: 'positions-file', name: 'ends', acks: 2, gtidAcks: 0},
          source,
          verifyChecksums: false,
          listLimit: 1000,
          onProgress: () => {
            gc()
            liveMaxMb = Math.max(liveMaxMb, process.memoryUsage().heapUsed / 1024 / 1024 - baselineMb)
          },
        })
      }
      const perSec = (ms: number): number => Math.round(events / (ms / 1000))
      const rate = (m: Measured): string =>
        `${m.readMs === null ? '' : `${perSec(m.readMs)} / `}${perSec(m.ms)}${m.status === 0 ? '' : ` (exit ${m.status})`}`
      table.push([
        size,
        events,
        (bytes / 1024 / 1024).toFixed(1),
        rate(replication),
        rate(mariadbRemote),
        rate(local),
        rate(mariadbLocal),
        `${replication.maxRssMb.toFixed(0)} / ${twoAcks.maxRssMb.toFixed(0)}`,
        liveMaxMb.toFixed(1),
      ])
    }
    await conn.end()
    process.stdout.write(`${table.toString()}\n`)
    process.stdout.write(
      'ev/s = events in the range / time: "read" is the audit\'s own streaming and judging time (its readMs), "process" the whole\n' +
        'process\'s wall time, Node and oclif start-up included. mariadb-binlog decodes every event to text (discarded); the audit\n' +
        'decodes headers, GTIDs and table maps and judges every transaction. RSS: peak resident memory of the audit process, with a\n' +
        'positions log of one line per transaction / with only the range\'s two ends; live heap: the largest growth of the heap in use\n' +
        '(right after a full GC, every 4096 events) while auditing the range in-process with only its two ends acknowledged.\n',
    )
  } finally {
    rmSync(work, {recursive: true, force: true})
    await db.stop()
  }
}

await main()
