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

/** Waits until the load has written `seconds` worth of row changes to the source (a clock that a busy machine slows down with the load). */
async function waitForLoad(pipeline: WildPipeline, seconds: number): Promise<void> {
  const before = pipeline.load!.written
  const rows = seconds * pipeline.settings.sourceLoadPerSec
  await waitUntil(async () => pipeline.load!.written >= before + rows, 30_000, `${seconds} s of source load`, pipeline.program)
}

/** A healthy copy: the target reaches the source's rows within moments, and that delay does not grow. */
async function assertKeepsUp(pipeline: WildPipeline): Promise<void> {
  const first = await catchUpMs(pipeline, 10_000)
  await waitForLoad(pipeline, 3)
  const second = await catchUpMs(pipeline, 10_000)
  // falling behind at half the source rate, the delay would grow by 3 s here
  assert.ok(second <= first + 2500, `catch-up delay grew from ${first} ms to ${second} ms`)
}

/**
 * Falling behind: over two windows of 3 s of load each, the gap between source and target grows by at
 * least a third of what the source gained, in both (a healthy copy that stalls for a moment catches up
 * again in the next), and the target still advances.
 */
async function assertFallsBehind(pipeline: WildPipeline): Promise<void> {
  const sample = async () => {
    const source = await insertHighWater(pipeline.source)
    return {source, target: await insertHighWater(pipeline.target)}
  }
  // measure from a second after the first rows the program wrote (past start-up: metadata fetches, JIT)
  await waitUntil(async () => (await insertHighWater(pipeline.target)) > 0, 20_000, 'a first row on the target', pipeline.program)
  await waitForLoad(pipeline, 1)
  const samples = [await sample()]
  for (let window = 0; window < 2; window++) {
    await waitForLoad(pipeline, 3)
    samples.push(await sample())
  }
  for (let i = 1; i < samples.length; i++) {
    const [before, after] = [samples[i - 1]!, samples[i]!]
    const gained = after.source - before.source
    const gapGrowth = after.source - after.target - (before.source - before.target)
    assert.ok(gapGrowth >= gained / 3, `window ${i}: source gained ${gained} rows, the gap only ${gapGrowth} (samples ${JSON.stringify(samples)})`)
  }
  // slow, not stuck: the target keeps moving
  assert.ok(samples[2]!.target > samples[0]!.target, `the target did not move (${JSON.stringify(samples)}): stuck, not slow`)
}

/** Stuck: rows keep arriving at the source and none reach the target. */
async function assertNothingReachesTarget(pipeline: WildPipeline): Promise<void> {
  const source = await insertHighWater(pipeline.source)
  await waitForLoad(pipeline, 3)
  assert.ok((await insertHighWater(pipeline.source)) > source, 'no rows arrived at the source')
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
  'falling-behind': assertFallsBehind,
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
