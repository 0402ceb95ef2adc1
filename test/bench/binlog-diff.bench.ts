// `ferrydiag binlog diff` figures: transactions compared per second over 100,000 single-row transactions
// on two servers (identical content, so every GTID is compared), the diff process's peak memory, and the
// time `mariadb-binlog` takes to read and decode the same binlogs from the same servers.
// Run: npm run bench -- binlog-diff (or node dist/test/bench/binlog-diff.bench.js [TRANSACTIONS]).
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {fileURLToPath} from 'node:url'
import Table from 'cli-table3'

import {loadIdentical} from '../../fixtures/binlog-diff/scenarios.js'
import {runBinlogDiff} from '../../src/mysql/binlog-diff-run.js'
import {startMariaDb, type MariaDbInstance} from '../helpers/mariadb.js'

const SELF = fileURLToPath(import.meta.url)

interface Measured {
  elapsedMs: number
  compared: number
  different: number
  maxRssMb: number
  peakHeapMb: number
}

/** Child mode: one diff in a fresh process, so its peak RSS is the diff's alone. */
async function measure(dsns: string[], transactions: number): Promise<void> {
  let peakHeap = 0
  const sampler = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 50)
  const started = performance.now()
  const report = await runBinlogDiff({dsns, selection: {mode: 'last', transactions}})
  const elapsedMs = performance.now() - started
  clearInterval(sampler)
  const result: Measured = {
    elapsedMs,
    compared: report.summary.compared,
    different: report.summary.different,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    peakHeapMb: Math.max(peakHeap, process.memoryUsage().heapUsed) / 1024 / 1024,
  }
  process.stdout.write(JSON.stringify(result))
}

async function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ms: number; stdout: string; code: number | null}> {
  const started = performance.now()
  const child = spawn(command, args, {stdio: ['ignore', 'pipe', 'inherit'], env})
  let stdout = ''
  let bytes = 0
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    bytes += d.length
    if (stdout.length < 1_000_000) stdout += d
  })
  const [code] = (await once(child, 'close')) as [number | null]
  return {ms: performance.now() - started, stdout: command === process.execPath ? stdout : String(bytes), code}
}

/** mariadb-binlog reading one server's binlog remotely, rows decoded (-v), output discarded. */
function mariadbBinlog(server: MariaDbInstance): Promise<{ms: number; stdout: string; code: number | null}> {
  const url = new URL(server.replicationDsn)
  return run(
    'mariadb-binlog',
    ['--read-from-remote-server', `--host=${url.hostname}`, `--port=${url.port}`, `--user=${decodeURIComponent(url.username)}`, '--base64-output=DECODE-ROWS', '--verbose', 'binlog.000001'],
    {...process.env, MYSQL_PWD: decodeURIComponent(url.password)},
  )
}

async function main(): Promise<void> {
  const transactions = Number(process.argv[2] ?? 100_000)
  const [a, b] = await Promise.all([startMariaDb({name: 'bench-diff-a'}), startMariaDb({name: 'bench-diff-b'})])
  try {
    const loadStarted = performance.now()
    await loadIdentical([a, b], {transactions})
    console.log(`loaded ${transactions} single-row transactions (+1 CREATE TABLE) on each of two servers in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`)
    const dsns = [a.replicationDsn, b.replicationDsn]

    const rows: string[][] = []
    for (let round = 1; round <= 2; round++) {
      const child = await run(process.execPath, [SELF, '--measure', String(transactions), ...dsns])
      if (child.code !== 0) throw new Error(`diff child exited ${child.code}`)
      const m = JSON.parse(child.stdout) as Measured
      rows.push([
        `binlog diff, round ${round}`,
        `${(m.elapsedMs / 1000).toFixed(2)} s`,
        `${Math.round(m.compared / (m.elapsedMs / 1000))} compared/s (${m.compared} compared, ${m.different} different)`,
        `max RSS ${m.maxRssMb.toFixed(0)} MB, peak heap ${m.peakHeapMb.toFixed(0)} MB`,
      ])
    }
    for (let round = 1; round <= 2; round++) {
      const [ra, rb] = await Promise.all([mariadbBinlog(a), mariadbBinlog(b)])
      if (ra.code !== 0 || rb.code !== 0) throw new Error(`mariadb-binlog exited ${ra.code}/${rb.code}`)
      rows.push([
        `mariadb-binlog -R --base64-output=DECODE-ROWS -v, both servers at once, round ${round}`,
        `${(Math.max(ra.ms, rb.ms) / 1000).toFixed(2)} s`,
        `${(ra.ms / 1000).toFixed(2)} s and ${(rb.ms / 1000).toFixed(2)} s; ${(Number(ra.stdout) / 1e6).toFixed(0)} MB of text each; no comparison`,
        '',
      ])
    }
    const table = new Table({head: ['what', 'wall time', 'rate', 'memory'], style: {head: [], border: [], compact: true}})
    for (const row of rows) table.push(row)
    console.log(table.toString())
    console.log('mariadb-binlog: whole file binlog.000001 from each server, default options otherwise (--gtid-strict-mode on: these binlogs are in GTID order, so it reads them all; it would stop at an out-of-order GTID).')
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
}

if (process.argv[2] === '--measure') await measure(process.argv.slice(4), Number(process.argv[3]))
else await main()
