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
  // the program has been running a moment: measure from a first gap and target position
  const firstGap = await gap()
  const firstTarget = await insertHighWater(pipeline.target)
  await waitUntil(async () => (await gap()) >= firstGap + growth, 30_000, `the gap growing by ${growth} rows from ${firstGap}`, pipeline.program)
  const lastTarget = await insertHighWater(pipeline.target)
  assert.ok(lastTarget > firstTarget, `the target stopped advancing (${firstTarget} -> ${lastTarget}): stuck, not slow`)
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
})
