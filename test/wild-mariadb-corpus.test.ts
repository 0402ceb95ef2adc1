// Ground truth for the zongji + mysql2 programs of the wild corpus: each runs on real throwaway MariaDB
// servers with the load and target latency its header asks for, and the test checks from the outside
// (rows on the source and the target) that it behaves as its header says. No ferrydiag involved.

import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'
import {sharedDatabase, startSourceAndTarget} from './helpers/mariadb.js'
import {insertHighWater, readWildMariaDbProgram, startWildPipeline, waitUntil, type WildPipeline} from './helpers/wild-mariadb.js'

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
  await waitUntil(async () => pipeline.load!.written >= loadedBefore + 3 * pipeline.header.sourceLoadPerSec, 20_000, '3 s of source load', pipeline.program)
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
  const growth = 2 * pipeline.header.sourceLoadPerSec
  await waitUntil(async () => (await insertHighWater(pipeline.source)) >= source + growth, 30_000, `${growth} more rows on the source`, pipeline.program)
  const [rows] = await pipeline.target.query('SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM orders) AS n')
  assert.equal(Number((rows as Array<{n: number}>)[0]!.n), 0, 'rows reached the target')
  assert.ok(pipeline.program.isAlive(), 'the program exited instead of staying stuck')
}

async function start(file: string, t: Parameters<typeof db.get>[0]): Promise<WildPipeline | undefined> {
  const servers = await db.get(t)
  if (!servers) return undefined
  return startWildPipeline(readWildMariaDbProgram(file), {t, servers})
}

describe('wild corpus on MariaDB (zongji + mysql2)', () => {
  it('cdc-batch-upsert.mjs (healthy) keeps the target up with the source', async (t) => {
    const pipeline = await start('cdc-batch-upsert.mjs', t)
    if (!pipeline) return
    await assertKeepsUp(pipeline)
  })

  it('cdc-batch-upsert-slow-target.mjs (small batches, target 3 ms away) falls behind but keeps writing', async (t) => {
    const pipeline = await start('cdc-batch-upsert-slow-target.mjs', t)
    if (!pipeline) return
    await assertFallsBehind(pipeline, 300)
  })

  it('cdc-row-by-row.mjs (one statement per change, target 2 ms away) falls behind but keeps writing', async (t) => {
    const pipeline = await start('cdc-row-by-row.mjs', t)
    if (!pipeline) return
    await assertFallsBehind(pipeline, 300)
  })

  it('cdc-late-queue.mjs (ghostferry #331: streamer and writer on different queues) copies nothing while the source grows', async (t) => {
    const pipeline = await start('cdc-late-queue.mjs', t)
    if (!pipeline) return
    await assertNothingReachesTarget(pipeline)
  })
})
