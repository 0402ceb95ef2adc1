// Figures behind the headers of the zongji + mysql2 programs in fixtures/wild/ (fixtures/wild/README.md):
// each program runs for WINDOW_S on real throwaway MariaDB servers with the load and target latency its
// header asks for; printed are the rows/s written to the source and reaching the target (measured from
// outside), the program's own stats lines (rows/s in and out, rows and ms per batch), and, for programs
// behind the latency proxy, single statements timed independently through a proxy of the same latency
// (m for one row change applied alone, so m·R for the row-by-row writer).
// Run: npm run build && node dist/test/bench/wild-mariadb.bench.js   (about 90 s)
import Table from 'cli-table3'
import type {Connection} from 'mysql2/promise'
import {startLatencyProxy} from '../../fixtures/pipeline/latency-proxy.js'
import {openConnection, startSourceAndTarget} from '../helpers/mariadb.js'
import {listWildPrograms} from '../helpers/wild.js'
import {insertHighWater, startWildPipeline} from '../helpers/wild-mariadb.js'

const WINDOW_S = 12
const WARM_UP_S = 2

interface StatsLine {
  inPerSec: number
  outPerSec: number
  rowsPerBatch: number
  msPerBatch: number
}

function parseStats(line: string): StatsLine | null {
  const m = /^stats: in (\d+) rows\/s, out (\d+) rows\/s, .*batches \d+ \(avg ([\d.]+) rows, ([\d.]+) ms\)/.exec(line)
  return m ? {inPerSec: Number(m[1]), outPerSec: Number(m[2]), rowsPerBatch: Number(m[3]), msPerBatch: Number(m[4])} : null
}

function mean(values: number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length
}

/** Median time of `run` over `times` calls, ms. */
async function timeMedian(times: number, run: () => Promise<unknown>): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < times; i++) {
    const started = performance.now()
    await run()
    samples.push(performance.now() - started)
  }
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!
}

interface StatementTimes {
  beginCommitMs: number
  /** One row change applied as its own INSERT ... ON DUPLICATE KEY UPDATE. */
  oneRowMs: number
  /** Multi-row INSERT ... ON DUPLICATE KEY UPDATE of 8 and of 200 rows. */
  rows8Ms: number
  rows200Ms: number
}

async function timeStatementsThroughProxy(targetDsn: string, host: string, port: number, latencyMs: number): Promise<StatementTimes> {
  const proxy = await startLatencyProxy({host, port}, latencyMs)
  const url = new URL(targetDsn)
  url.hostname = proxy.host
  url.port = String(proxy.port)
  const conn: Connection = await openConnection(url.toString())
  try {
    await conn.query('CREATE TABLE IF NOT EXISTS bench_rows (id BIGINT PRIMARY KEY, v VARCHAR(40))')
    let id = 0
    const beginCommitMs = await timeMedian(40, async () => {
      await conn.query('BEGIN')
      await conn.query('COMMIT')
    })
    const oneRowMs = await timeMedian(200, () => conn.query('INSERT INTO bench_rows SET ? ON DUPLICATE KEY UPDATE ?', [{id: ++id % 50, v: 'x'}, {v: 'y'}]))
    const upsertRows = (count: number) => {
      const rows = Array.from({length: count}, (_, i) => [(++id % 1000) + 1000 * (i % 3), `value ${id}`])
      return conn.query('INSERT INTO bench_rows (id, v) VALUES ? ON DUPLICATE KEY UPDATE v = VALUES(v)', [rows])
    }
    const rows8Ms = await timeMedian(60, () => upsertRows(8))
    const rows200Ms = await timeMedian(60, () => upsertRows(200))
    return {beginCommitMs, oneRowMs, rows8Ms, rows200Ms}
  } finally {
    await conn.end()
    await proxy.close()
  }
}

async function main(): Promise<void> {
  const servers = await startSourceAndTarget()
  const table = new Table({
    head: ['program', 'header lag', 'load/s', 'latency ms', 'source rows/s', 'target rows/s', 'gap start→end', 'prog in/s', 'prog out/s', 'rows/batch', 'ms/batch', 'statement ms'],
    style: {head: [], border: [], compact: true},
  })
  try {
    for (const program of listWildPrograms().filter((p) => p.needs === 'mariadb')) {
      const pipeline = await startWildPipeline(program, {servers})
      try {
        await new Promise((resolve) => setTimeout(resolve, WARM_UP_S * 1000))
        const first = {at: performance.now(), loaded: pipeline.load?.written ?? 0, source: await insertHighWater(pipeline.source), target: await insertHighWater(pipeline.target)}
        const linesBefore = pipeline.program.stdout().split('\n').length
        await new Promise((resolve) => setTimeout(resolve, WINDOW_S * 1000))
        const last = {at: performance.now(), loaded: pipeline.load?.written ?? 0, source: await insertHighWater(pipeline.source), target: await insertHighWater(pipeline.target)}
        const seconds = (last.at - first.at) / 1000
        const stats = pipeline.program.stdout().split('\n').slice(linesBefore).map(parseStats).filter((s): s is StatsLine => s !== null)
        // source rows/s: row changes the load wrote; target rows/s: target's insert high-water, scaled to the source's
        const insertShare = (last.source - first.source) / Math.max(1, last.loaded - first.loaded)
        let statement = ''
        if (pipeline.settings.targetLatencyMs > 0) {
          const timed = await timeStatementsThroughProxy(pipeline.targetDsn, servers.target.host, servers.target.port, pipeline.settings.targetLatencyMs)
          const rate = pipeline.settings.sourceLoadPerSec
          const batchedRowMs = (timed.rows200Ms - timed.rows8Ms) / 192
          statement =
            `BEGIN+COMMIT ${timed.beginCommitMs.toFixed(1)}; alone: 1 row ${timed.oneRowMs.toFixed(1)} (m·R ${((timed.oneRowMs / 1000) * rate).toFixed(2)}); ` +
            `batched: 8 rows ${timed.rows8Ms.toFixed(1)}, 200 rows ${timed.rows200Ms.toFixed(1)} (m ${batchedRowMs.toFixed(3)}, m·R ${((batchedRowMs / 1000) * rate).toFixed(3)})`
        }
        table.push([
          program.file,
          program.lag ?? '',
          pipeline.settings.sourceLoadPerSec,
          pipeline.settings.targetLatencyMs,
          ((last.loaded - first.loaded) / seconds).toFixed(0),
          ((last.target - first.target) / insertShare / seconds).toFixed(0),
          `${first.source - first.target} → ${last.source - last.target}`,
          mean(stats.map((s) => s.inPerSec)).toFixed(0),
          mean(stats.map((s) => s.outPerSec)).toFixed(0),
          mean(stats.map((s) => s.rowsPerBatch)).toFixed(1),
          mean(stats.map((s) => s.msPerBatch)).toFixed(1),
          statement,
        ])
      } finally {
        await pipeline.stop()
      }
    }
  } finally {
    await servers.stop()
  }
  console.log(table.toString())
  console.log('gap = source minus target insert high-water (max id of users + orders); rows/s on the target = its high-water rate over the share of changes that were inserts')
}

await main()
