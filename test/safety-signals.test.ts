// Signals sent to the built CLI at random moments (seeded; the seed is printed) while it attaches with
// --pid, takes a heap snapshot, samples a lag window (with the agent, and with probes in a zongji + mysql2
// program), perturbs the batch size and probes a scratch table; afterwards the target must be alive, its
// inspector closed, its batch size restored, no probes and no scratch table left. Many more runs of the
// same paths: `npm run bench -- signal-soak` (test/bench/signal-soak.bench.ts). Also SIGKILL of the CLI:
// the watchdog inside the target restores and closes within its timeout.
// FERRYDIAG_SIGNAL_SEED=N repeats a run; FERRYDIAG_SIGNAL_RUNS_SCALE=K multiplies the run counts.
import assert from 'node:assert/strict'
import {fileURLToPath} from 'node:url'
import {after, before, describe, it, type TestContext} from 'node:test'

import {WATCHDOG_TIMEOUT_MS} from '../src/agent/watchdog.js'
import {attachTarget} from '../src/attach/index.js'
import {AGENT_GLOBAL_KEY} from '../src/model/snapshot.js'
import {PROBE_TABLE_PREFIX} from '../src/mysql/probe-target.js'
import {killAllTargets, spawnTarget, type TargetProcess} from './helpers/child-process.js'
import {createRandom} from './helpers/generate-samples.js'
import {openConnection, sharedDatabase, startMariaDb, startSourceAndTarget} from './helpers/mariadb.js'
import {PIPELINE_MAIN} from './helpers/pipeline-process.js'
import {assertNoProbesLeft} from './helpers/probes.js'
import {runCli, type RunResult} from './helpers/run-node.js'
import {inspectorClosed, pickSignal, runAndSignal, SIGNAL_EXITS, waitUntil} from './helpers/signals.js'
import {listWildPrograms} from './helpers/wild.js'
import {startWildPipeline} from './helpers/wild-mariadb.js'

const SEED = Number(process.env.FERRYDIAG_SIGNAL_SEED ?? Math.floor(Math.random() * 1e9))
const SCALE = Number(process.env.FERRYDIAG_SIGNAL_RUNS_SCALE ?? 1)
const random = createRandom(SEED)
const UNPREPARED_MAIN = fileURLToPath(new URL('../../fixtures/unprepared/main.mjs', import.meta.url))
/**
 * SIGUSR1 opens the targets' inspectors on a free port, not 9229: another test file or another suite on
 * the same machine may hold 9229, and the CLI would then (rightly) refuse with inspectorPortBusy.
 */
const ANY_INSPECT_PORT = ['--inspect-port=0']

const db = sharedDatabase(() => startMariaDb({name: 'signals'}))
const pair = sharedDatabase(() => startSourceAndTarget())

before(() => {
  // runAndSignal sets FERRYDIAG_TRACE for the CLI only (the test's own observer sessions print no phases).
  // The seed goes to the runner's output, so a failing interleaving can be replayed.
  process.stdout.write(`# safety-signals seed=${SEED} (FERRYDIAG_SIGNAL_SEED=${SEED} repeats it)\n`)
})

after(async () => {
  await killAllTargets()
  await db.stop()
  await pair.stop()
})

function runs(base: number): number {
  return Math.max(1, Math.round(base * SCALE))
}

async function checkAfter(t: TestContext, target: TargetProcess, run: RunResult, label: string): Promise<void> {
  t.diagnostic(`${label}: exit ${run.code ?? run.signal} after ${Math.round(run.elapsedMs)} ms`)
  // Killed by the signal itself (code null) only before the handlers are installed or after the command
  // finished, while Node tears down: the checks below still hold then.
  assert.ok(run.code === null || SIGNAL_EXITS.has(run.code), `${label}: unexpected exit ${run.code}: ${run.stderr}`)
  assert.ok(!/Error:|at .*\(.*\.js:\d+/.test(run.stderr), `${label}: stack trace or raw error: ${run.stderr}`)
  if (!target.isAlive()) {
    const exit = await target.exited
    assert.fail(`${label}: the target died (${exit.signal ?? exit.code}): ${target.stderrText.slice(-400)}`)
  }
  // The CLI verifies the close itself; a CLI killed by the signal before its handlers were installed
  // had not attached yet (SIGUSR1 is sent after they are), so the port must be closed at once.
  await waitUntil(`${label}: the inspector of ${target.pid} to close`, () => inspectorClosed(target.pid), 4000)
}

/** Reads the watchdog's record of the last session and the batch size setting (attaching anew). */
async function readAfterState(pid: number): Promise<{batchSize: number | null; lastEnd: {reason: string; undone: string[]} | null}> {
  const session = await attachTarget({pid})
  try {
    return await session.evaluate(
      `({batchSize: globalThis[Symbol.for(${JSON.stringify(AGENT_GLOBAL_KEY)})]?.snapshot().settings.find((s) => s.name === 'BinlogEventBatchSize')?.value ?? null,
        lastEnd: globalThis[Symbol.for('ferrydiag.watchdog.lastEnd')] ?? null})`,
    )
  } finally {
    await session.detach()
  }
}

describe('signals at random moments', {concurrency: false}, () => {
  it('during attach (stacks --pid): target alive, inspector closed', async (t) => {
    const target = await spawnTarget({file: UNPREPARED_MAIN, args: ['--scenario=healthy'], execArgv: ANY_INSPECT_PORT, readyLine: /^unprepared-pipeline /})
    try {
      for (let i = 0; i < runs(14); i++) {
        const p = pickSignal(random, [['handlers', 800], ['sigusr1', 150], ['attached', 300]])
        const run = await runAndSignal(['stacks', '--pid', String(target.pid)], p)
        await checkAfter(t, target, run, `run ${i} ${p.label}`)
      }
    } finally {
      await target.kill()
    }
  })

  it('during a heap snapshot (stacks --pid --heap): the snapshot is never cut off, target alive, inspector closed', async (t) => {
    const target = await spawnTarget({file: UNPREPARED_MAIN, args: ['--scenario=healthy', '--ballast-mb=40'], execArgv: ANY_INSPECT_PORT, readyLine: /^unprepared-pipeline /})
    try {
      for (let i = 0; i < runs(8); i++) {
        const p = pickSignal(random, [['heap-snapshot', 2500]])
        const run = await runAndSignal(['stacks', '--pid', String(target.pid), '--heap', '--yes'], p)
        await checkAfter(t, target, run, `run ${i} ${p.label}`)
      }
    } finally {
      await target.kill()
    }
  })

  it('during a lag sampling window (lag --pid): target alive, inspector closed, 128+signal', async (t) => {
    const target = await spawnTarget({file: PIPELINE_MAIN, args: ['--simulate', '--scenario=healthy'], execArgv: ANY_INSPECT_PORT, readyLine: /^ferrydiag-pipeline /})
    try {
      for (let i = 0; i < runs(10); i++) {
        const p = pickSignal(random, [['attached', 2500], ['sigusr1', 200]])
        const run = await runAndSignal(['lag', '--pid', String(target.pid), '--duration', '2s'], p)
        await checkAfter(t, target, run, `run ${i} ${p.label}`)
      }
    } finally {
      await target.kill()
    }
  })

  it('during lag --pid and tune-batch --pid with probes (a zongji + mysql2 program): probes removed, target alive, inspector closed', async (t) => {
    const servers = await pair.get(t)
    if (!servers) return
    const program = listWildPrograms().find((p) => p.file === 'cdc-batch-upsert.mjs')!
    const pipeline = await startWildPipeline(program, {t, servers, inspector: false, startTimeoutMs: 120_000})
    const target = pipeline.program.target
    // Phases: probes installed and sampling; attach; removing the probes; detaching.
    const phases: Array<[string, number]> = [['probes', 2500], ['attached', 800], ['remove-probes', 30], ['detach', 120]]
    for (let i = 0; i < runs(6); i++) {
      const command = i % 2 === 0 ? 'lag' : 'tune-batch'
      const p = pickSignal(random, phases)
      const run = await runAndSignal([command, '--pid', String(target.pid), '--duration', '3s'], p)
      await checkAfter(t, target, run, `run ${i} ${command} ${p.label}`)
      await assertNoProbesLeft({pid: target.pid})
      await waitUntil('the check session to close the inspector', () => inspectorClosed(target.pid), 4000)
    }
  })

  it('during tune-batch --perturb: batch size restored, target alive, inspector closed', async (t) => {
    const target = await spawnTarget({file: PIPELINE_MAIN, args: ['--simulate', '--scenario=healthy', '--batch-size=64'], execArgv: ANY_INSPECT_PORT, readyLine: /^ferrydiag-pipeline /})
    try {
      for (let i = 0; i < runs(8); i++) {
        const p = pickSignal(random, [['perturb', 3500], ['attached', 500]])
        const run = await runAndSignal(['tune-batch', '--pid', String(target.pid), '--perturb', '--duration', '3s'], p)
        await checkAfter(t, target, run, `run ${i} ${p.label}`)
        const state = await readAfterState(target.pid)
        assert.equal(state.batchSize, 64, `run ${i}: batch size not restored`)
        await waitUntil('the check session to close the inspector', () => inspectorClosed(target.pid), 4000)
      }
    } finally {
      await target.kill()
    }
  })

  it('SIGKILL during tune-batch --perturb: the watchdog restores the batch size and closes the inspector within its timeout', async (t) => {
    const target = await spawnTarget({file: PIPELINE_MAIN, args: ['--simulate', '--scenario=healthy', '--batch-size=64'], execArgv: ANY_INSPECT_PORT, readyLine: /^ferrydiag-pipeline /})
    try {
      for (let i = 0; i < runs(3); i++) {
        let killedAtMs = 0
        const run = await runCli(['tune-batch', '--pid', String(target.pid), '--perturb', '--duration', '20s'], {
          timeoutMs: 60_000,
          onStart: async (child) => {
            // Kill once the perturbation is under way: the inspector is open (the CLI attached).
            await waitUntil('the CLI to attach', async () => !(await inspectorClosed(target.pid)), 20_000)
            await new Promise((resolve) => setTimeout(resolve, random.integer(1500, 3000)))
            child.kill('SIGKILL')
            killedAtMs = performance.now()
          },
        })
        assert.equal(run.signal, 'SIGKILL')
        await waitUntil('the watchdog to close the inspector', () => inspectorClosed(target.pid), WATCHDOG_TIMEOUT_MS + 5000)
        const closedAfterMs = performance.now() - killedAtMs
        t.diagnostic(`run ${i}: inspector closed ${Math.round(closedAfterMs)} ms after SIGKILL`)
        assert.ok(target.isAlive())
        const state = await readAfterState(target.pid)
        assert.equal(state.batchSize, 64, `run ${i}: batch size not restored`)
        assert.equal(state.lastEnd?.reason, 'heartbeat lost')
        assert.ok(state.lastEnd?.undone.includes('perturb:BinlogEventBatchSize'), JSON.stringify(state.lastEnd))
        await waitUntil('the check session to close the inspector', () => inspectorClosed(target.pid), 4000)
      }
    } finally {
      await target.kill()
    }
  })

  it('during tune-batch --probe-target: no scratch table left (SIGKILL: dropped by the next run)', async (t) => {
    const instance = await db.get(t)
    if (!instance) return
    const conn = await openConnection(instance.adminDsn, {multipleStatements: true})
    const target = await spawnTarget({file: PIPELINE_MAIN, args: ['--simulate', '--scenario=healthy'], execArgv: ANY_INSPECT_PORT, readyLine: /^ferrydiag-pipeline /})
    const scratchTables = async (): Promise<string[]> => {
      const [rows] = (await conn.query('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_NAME LIKE ?', [
        `${PROBE_TABLE_PREFIX.replace(/_/g, '\\_')}%`,
      ])) as unknown as [Array<{t: string}>]
      return rows.map((r) => r.t)
    }
    try {
      await conn.query('CREATE TABLE IF NOT EXISTS rows_like (id BIGINT PRIMARY KEY, a INT NOT NULL, b VARCHAR(40) NOT NULL, c DATETIME NOT NULL, d DOUBLE NOT NULL)')
      const args = ['tune-batch', '--pid', String(target.pid), '--probe-target', instance.adminDsn, '--like', 'ferrydiag.rows_like']
      for (let i = 0; i < runs(8); i++) {
        const p = pickSignal(random, [['probe-table', 3000], ['attached', 800]])
        const run = await runAndSignal([...args, '--duration', '3s'], p)
        await checkAfter(t, target, run, `run ${i} ${p.label}`)
        assert.deepEqual(await scratchTables(), [], `run ${i}: scratch table left`)
      }
      // SIGKILL once the table exists: it stays, and the next probe drops it.
      const killed = await runCli([...args, '--duration', '20s'], {
        timeoutMs: 60_000,
        onStart: async (child) => {
          await waitUntil('the scratch table', async () => (await scratchTables()).length > 0, 30_000)
          child.kill('SIGKILL')
        },
      })
      assert.equal(killed.signal, 'SIGKILL')
      const left = await scratchTables()
      assert.equal(left.length, 1)
      assert.match(left[0], /^_ferrydiag_probe_\d+_\d+_[0-9a-f]{6}$/)
      await waitUntil('the watchdog to close the inspector', () => inspectorClosed(target.pid), WATCHDOG_TIMEOUT_MS + 5000)
      const next = await runCli([...args, '--duration', '1s'])
      assert.match(next.stderr, new RegExp(`dropped 1 scratch table\\(s\\) left by an earlier probe that was killed: .*${left[0]}`))
      assert.deepEqual(await scratchTables(), [])
    } finally {
      await conn.end()
      await target.kill()
    }
  })
})
