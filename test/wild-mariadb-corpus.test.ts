// Ground truth for the zongji + mysql2 programs of the wild corpus: each runs on real throwaway MariaDB
// servers with the load and target latency its header asks for, and the test checks from the outside
// (rows on the source and the target) that it behaves as its header says. No ferrydiag involved.

import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'
import {sharedDatabase, startSourceAndTarget} from './helpers/mariadb.js'
import {listWildPrograms} from './helpers/wild.js'
import {insertHighWater, startWildPipeline, waitUntil, type WildPipeline} from './helpers/wild-mariadb.js'

const db = sharedDatabase(() => startSourceAndTarget())
after(() => db.stop())

/** How long the target takes to hold every row the source held when called, ms. */
async function catchUpMs(pipeline: WildPipeline, timeoutMs: number): Promise<number> {
  const mark = await insertHighWater(pipeline.source)
  return waitUntil(async () => (await insertHighWater(pipeline.target)) >= mark, timeoutMs, `target reaching source row ${mark}`, pipeline.program)
}

/** A healthy copy: the target reaches the source's rows within moments, and that delay does not grow. */
async function assertKeepsUp(pipeline: WildPipeline): Promise<void> {
  const first = await catchUpMs(pipeline, 10_000)
  const loadedBefore = pipeline.load!.written
  // Let at least 3 s of load pass, then look again.
  await waitUntil(async () => pipeline.load!.written >= loadedBefore + 3 * pipeline.settings.sourceLoadPerSec, 20_000, '3 s of source load', pipeline.program)
  const second = await catchUpMs(pipeline, 10_000)
  assert.ok(second <= first + 1000, `catch-up delay grew from ${first} ms to ${second} ms`)
}

/** Falling behind: the gap between source and target grows by `growth` rows while the target still advances. */
async function assertFallsBehind(pipeline: WildPipeline, growth: number): Promise<void> {
  const gap = async () => (await insertHighWater(pipeline.source)) - (await insertHighWater(pipeline.target))
  // measure from the first rows the program wrote
  await waitUntil(async () => (await insertHighWater(pipeline.target)) > 0, 20_000, 'a first row on the target', pipeline.program)
  const firstGap = await gap()
  const firstTarget = await insertHighWater(pipeline.target)
  await waitUntil(async () => (await gap()) >= firstGap + growth, 30_000, `the gap growing by ${growth} rows from ${firstGap}`, pipeline.program)
  // slow, not stuck: the target keeps moving
  await waitUntil(async () => (await insertHighWater(pipeline.target)) > firstTarget, 20_000, `the target moving past row ${firstTarget}`, pipeline.program)
}

/** Stuck: rows keep arriving at the source and none reach the target. */
async function assertNothingReachesTarget(pipeline: WildPipeline): Promise<void> {
  const source = await insertHighWater(pipeline.source)
  const growth = 2 * pipeline.settings.sourceLoadPerSec
  await waitUntil(async () => (await insertHighWater(pipeline.source)) >= source + growth, 30_000, `${growth} more rows on the source`, pipeline.program)
  const [rows] = await pipeline.target.query('SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM orders) AS n')
  assert.equal(Number((rows as Array<{n: number}>)[0]!.n), 0, 'rows reached the target')
  assert.equal(pipeline.program.exit(), null, 'the program exited instead of staying stuck')
}

/** A program ends on SIGTERM by itself, without needing SIGKILL. */
async function assertStopsOnSigterm(pipeline: WildPipeline): Promise<void> {
  await pipeline.program.stop(5_000)
  const exit = pipeline.program.exit()
  assert.ok(exit !== null && exit.signal !== 'SIGKILL', `did not end on SIGTERM within 5 s: ${JSON.stringify(exit)}`)
}

const checks = {
  healthy: assertKeepsUp,
  'falling-behind': (pipeline: WildPipeline) => assertFallsBehind(pipeline, 300),
  stuck: assertNothingReachesTarget,
}

describe('wild corpus on MariaDB (zongji + mysql2): each program does what its header says', () => {
  const programs = listWildPrograms().filter((p) => p.needs === 'mariadb')
  it('has the three lag shapes', () => {
    const lags = programs.map((p) => p.lag)
    for (const lag of ['healthy', 'falling-behind', 'stuck'] as const) assert.ok(lags.includes(lag), `no MariaDB program with lag: ${lag}`)
  })
  for (const program of programs) {
    const check = checks[program.lag as keyof typeof checks]
    it(`${program.file}: lag ${program.lag}${program.bottleneck ? ` (${program.bottleneck})` : ''}`, async (t) => {
      assert.ok(check, `no outside check for lag: ${program.lag}`)
      const servers = await db.get(t)
      if (!servers) return
      const pipeline = await startWildPipeline(program, {t, servers})
      await check(pipeline)
      await assertStopsOnSigterm(pipeline)
    })
  }
})
