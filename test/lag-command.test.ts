// End-to-end tests of `ferrydiag lag`: the built CLI (node bin/run.js lag) against the reference
// pipeline in simulator mode and against MariaDB (harness), plus bad input, Ctrl-C and targets that go away.
import {once} from 'node:events'
import {after, describe, it} from 'node:test'
import assert from 'node:assert/strict'

import type {LagResult} from '../src/model/lag-result.js'
import {EXIT} from '../src/errors.js'
import {killAllTargets, spawnTarget} from './helpers/child-process.js'
import {REPLICATION_USER, createUser, databaseOrSkip, freshDatabase, openConnection, sharedDatabase, startMariaDb, startSourceAndTarget, type MariaDbInstance} from './helpers/mariadb.js'
import {lagOf, pause, startPipeline, waitForSnapshot, type RunningPipeline} from './helpers/pipeline-process.js'
import {runCli, type RunResult as CliResult} from './helpers/run-node.js'


/** Runs `node bin/run.js lag ...args`; `whileRunning` may act on the child (e.g. send SIGINT). */
function runLag(args: readonly string[], options: {whileRunning?: (pid: number) => Promise<void>; timeoutMs?: number} = {}): Promise<CliResult> {
  const {whileRunning} = options
  return runCli(['lag', ...args], {timeoutMs: options.timeoutMs, onStart: whileRunning && ((child) => whileRunning(child.pid!))})
}

function parseJson(result: CliResult): LagResult {
  try {
    return JSON.parse(result.stdout) as LagResult
  } catch {
    throw new Error(`not JSON (exit ${result.code}): ${result.stdout.slice(0, 500)} / stderr: ${result.stderr}`)
  }
}

/** A one-line error: no stack, names the code. */
function assertOneLineError(result: CliResult, exit: number, pattern: RegExp): void {
  assert.equal(result.code, exit, `exit ${result.code}; stdout: ${result.stdout}; stderr: ${result.stderr}`)
  // oclif wraps the message at 80 columns behind " › ": join it back before matching.
  const flat = result.stderr.replace(/\s*\n\s*›?\s*/g, ' ').replace(/\s+/g, ' ')
  assert.match(flat, pattern)
  assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+\)?\n/, 'a stack trace was printed')
  assert.equal(result.stdout, '')
}

const pipelines: RunningPipeline[] = []
async function pipelineFor(args: string[], warmMs = 1500): Promise<RunningPipeline> {
  const p = await startPipeline(args)
  pipelines.push(p)
  await pause(warmMs)
  return p
}
after(async () => {
  await Promise.all(pipelines.map((p) => p.stop('SIGKILL').catch(() => undefined)))
  await killAllTargets()
})

describe('lag against the simulated pipeline', () => {
  it('init-race (placeholder): stuck, naming the streamer blocked on the orphaned buffer, and pointing to stacks', async () => {
    const p = await pipelineFor(['--scenario=init-race', '--simulate'])
    const result = await runLag(['--inspect', p.fields.inspect, '--duration', '2s'])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /^Verdict: STUCK - no progress by binlog-streamer/m)
    assert.match(result.stdout, /binlog-streamer blocked in channel-send on "binlog-events" for \d/)
    assert.match(result.stdout, /binlog-streamer\.[jt]s:\d+:\d+/)
    assert.match(result.stdout, /Next: run `ferrydiag stacks --inspect 127\.0\.0\.1:\d+`/)
    assert.match(result.stdout, /Catch-up: never/)
    assert.ok(p.alive())
  })

  it('init-race (never-created slot): stuck with the uninitialized-channel-send evidence', async () => {
    const p = await pipelineFor(['--scenario=init-race', '--race-shape=never-created', '--simulate'], 2500)
    const report = parseJson(await runLag(['--inspect', p.fields.inspect, '--duration', '1s', '--json']))
    assert.equal(report.verdict, 'stuck')
    const slot = report.evidence.find((f) => f.kind === 'uninitialized-channel-send')
    assert.ok(slot, JSON.stringify(report.evidence))
    assert.equal(slot.evidence.stage, 'binlog-streamer')
    assert.equal(report.catchUp.state, 'never')
  })

  it('slow-target: falling behind, writer the bottleneck, streamer back-pressured most of each second', async () => {
    const p = await pipelineFor(['--scenario=slow-target', '--simulate'])
    const result = await runLag(['--inspect', p.fields.inspect, '--duration', '3s', '--json'])
    assert.equal(result.code, 0, result.stderr)
    const report = parseJson(result)
    assert.equal(report.schema, 'ferrydiag.lag')
    assert.equal(report.version, 2)
    assert.equal(report.verdict, 'falling-behind', report.summary)
    assert.equal(report.bottleneck?.stageName, 'binlog-writer')
    const streamer = report.stages.find((s) => s.name === 'binlog-streamer')!
    const writer = report.stages.find((s) => s.name === 'binlog-writer')!
    assert.ok(streamer.backPressuredMsPerSec > 700, `streamer back-pressured ${streamer.backPressuredMsPerSec} ms/s`)
    assert.ok(writer.busyMsPerSec > 800, `writer busy ${writer.busyMsPerSec} ms/s`)
    for (const s of report.stages) assert.ok(Math.abs(s.accountedMsPerSec - 1000) < 30, `${s.name}: ${s.accountedMsPerSec} ms/s`)
    assert.ok(report.lag!.transactionLagGrowthSecPerSec! > 0.1, `growth ${report.lag!.transactionLagGrowthSecPerSec}`)
    assert.ok(report.lag!.bytesBehind! > 0)
    assert.equal(report.catchUp.state, 'never')
    assert.ok(report.evidence.some((f) => /tune-batch/.test(f.suggestion)))
    const buffer = report.buffers.find((b) => b.name === 'binlog-events' && b.eventsInPerSec > 0)!
    assert.ok(buffer.fullShare > 0.7, `full share ${buffer.fullShare}`)
    assert.equal(report.window.sourceFrom, 'registered')
  })

  it('slow-target text: names the bottleneck and points to tune-batch', async () => {
    const p = await pipelineFor(['--scenario=slow-target', '--simulate'])
    const result = await runLag(['--inspect', p.fields.inspect, '--duration', '2s'])
    assert.match(result.stdout, /^Verdict: FALLING-BEHIND - lag is growing .*bottleneck: binlog-writer/m)
    assert.match(result.stdout, /Next: run `ferrydiag tune-batch --inspect 127\.0\.0\.1:\d+`/)
    assert.match(result.stdout, /│ binlog-streamer +│ +\d+ │ +\d+ │ +9\d\d │/)
  })

  it('healthy text: the replaced placeholder buffer is folded into one line; --json keeps it', async () => {
    const p = await pipelineFor(['--scenario=healthy', '--simulate'], 1000)
    const text = await runLag(['--inspect', p.fields.inspect, '--duration', '2s'])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^\(1 unused buffer not shown: binlog-events #1\)$/m)
    assert.doesNotMatch(text.stdout, /│ binlog-events #1 /)
    assert.match(text.stdout, /│ binlog-events #2 +│/)
    const report = parseJson(await runLag(['--inspect', p.fields.inspect, '--duration', '2s', '--json']))
    const placeholder = report.buffers.find((b) => b.id === 1)
    assert.ok(placeholder, JSON.stringify(report.buffers))
    assert.equal(placeholder.unused, true)
    assert.equal(report.buffers.find((b) => b.id === 2)?.unused, false)
    await p.stop('SIGKILL')
  })

  it('init-race text: the orphaned buffer the streamer is blocked on stays in the table', async () => {
    const p = await pipelineFor(['--scenario=init-race', '--simulate'])
    const result = await runLag(['--inspect', p.fields.inspect, '--duration', '1s'])
    assert.match(result.stdout, /│ binlog-events #1 +│/)
    assert.doesNotMatch(result.stdout, /binlog-events #1\)/)
    await p.stop('SIGKILL')
  })

  it('healthy: healthy, the pipeline keeps running and loses nothing while sampled', async () => {
    const p = await pipelineFor(['--scenario=healthy', '--simulate', '--stop-load-after=6', '--summary'], 1000)
    const before = await p.snapshot()
    const result = await runLag(['--inspect', p.fields.inspect, '--duration', '3s', '--json'])
    const report = parseJson(result)
    assert.equal(report.verdict, 'healthy', report.summary)
    assert.equal(report.bottleneck, null)
    for (const s of report.stages) assert.ok(Math.abs(s.accountedMsPerSec - 1000) < 30, `${s.name}: ${s.accountedMsPerSec} ms/s`)
    assert.ok(report.window.snapshotCount >= 10, `snapshots ${report.window.snapshotCount}`)
    const during = await p.snapshot()
    assert.ok(during.counters.eventsApplied! > before.counters.eventsApplied! + 2000, 'counters kept rising while sampled')
    await waitForSnapshot(p, (s) => lagOf(s).caughtUp && s.counters.rowsWritten === s.counters.eventsApplied, {timeoutMs: 15_000, what: 'catch-up after the load stopped'})
    const exit = await p.stop('SIGTERM')
    const summary = JSON.parse(exit.stdout.split('\n').find((l) => l.startsWith('{"summary"'))!).summary
    assert.equal(summary.eventsApplied, summary.eventsProduced)
    assert.deepEqual(summary.target, summary.source)
  })

  it('load off: idle', async () => {
    const p = await pipelineFor(['--scenario=healthy', '--simulate', '--load=off'], 500)
    const report = parseJson(await runLag(['--inspect', p.fields.inspect, '--duration', '1s', '--json']))
    assert.equal(report.verdict, 'idle', report.summary)
    assert.equal(report.catchUp.state, 'caught-up')
  })

  it('Ctrl-C during the window: prints what was measured and exits 130, the target untouched', async () => {
    const p = await pipelineFor(['--scenario=healthy', '--simulate'], 500)
    // Interrupt 2 s into the window, counted from the attach (FERRYDIAG_TRACE marks it), not from the
    // spawn: on a loaded machine the CLI alone can take seconds to start.
    let attached: () => void = () => undefined
    const attachedNow = new Promise<void>((resolve) => (attached = resolve))
    let signalledAtMs = 0
    const result = await runCli(['lag', '--inspect', p.fields.inspect, '--duration', '30s'], {
      env: {FERRYDIAG_TRACE: '1'},
      onStderr: (stderr) => {
        if (/^ferrydiag-trace attached/m.test(stderr)) attached()
      },
      onStart: async (child) => {
        await attachedNow
        await pause(2000)
        signalledAtMs = performance.now()
        child.kill('SIGINT')
      },
    })
    assert.equal(result.code, 130, result.stderr)
    const afterSignalMs = performance.now() - signalledAtMs
    assert.ok(afterSignalMs < 10_000, `took ${afterSignalMs} ms after the signal`)
    assert.match(result.stdout, /window ended early: interrupted/)
    assert.match(result.stdout, /^Verdict: HEALTHY/m)
    assert.ok(p.alive())
    const s1 = await p.snapshot()
    await waitForSnapshot(p, (s) => s.counters.eventsApplied! > s1.counters.eventsApplied!, {what: 'the pipeline still applying events'})
  })

  it('target exits mid-window: prints what was measured, exits 17 with one line on stderr', async () => {
    const p = await startPipeline(['--scenario=healthy', '--simulate'])
    pipelines.push(p)
    let attached: () => void = () => undefined
    const attachedNow = new Promise<void>((resolve) => (attached = resolve))
    const result = await runCli(['lag', '--inspect', p.fields.inspect, '--duration', '6s'], {
      env: {FERRYDIAG_TRACE: '1'},
      onStderr: (stderr) => {
        if (/^ferrydiag-trace attached/m.test(stderr)) attached()
      },
      onStart: async () => {
        await attachedNow // the target must exit mid-window, not before the CLI attached
        await pause(2000)
        await p.stop('SIGKILL')
      },
    })
    assert.equal(result.code, EXIT.targetExited, result.stderr)
    assert.match(result.stdout, /window ended early: the target exited/)
    assert.match(result.stdout, /^Verdict: /m)
    assert.match(result.stderr, /^ferrydiag lag: window ended early \(exit 17\)/m)
  })

  it('--watch redraws every second until Ctrl-C (exit 0); --watch --json prints one document per line', async () => {
    const p = await pipelineFor(['--scenario=healthy', '--simulate'], 500)
    // Ctrl-C once the output shows `count` frames (a condition, not a delay: the CLI may start slowly).
    const watchUntil = (args: string[], count: (stdout: string) => number) => {
      let enough: () => void = () => undefined
      const shown = new Promise<void>((resolve) => (enough = resolve))
      return runCli(['lag', ...args], {
        onStdout: (stdout) => {
          if (count(stdout) >= 2) enough()
        },
        onStart: async (child) => {
          await shown
          child.kill('SIGINT')
        },
      })
    }
    // --watch samples once a second and draws from the second sample on.
    const text = await watchUntil(['--inspect', p.fields.inspect, '--watch', '--duration', '2s'], (out) => (out.match(/^HEALTHY: /gm) ?? []).length)
    assert.equal(text.code, 0, text.stderr)
    const frames = text.stdout.match(/^HEALTHY: /gm) ?? []
    assert.ok(frames.length >= 2, `frames: ${frames.length}\n${text.stdout}`)
    assert.match(text.stdout, /│ binlog-writer +│/)
    const json = await watchUntil(['--inspect', p.fields.inspect, '--watch', '--json', '--duration', '2s'], (out) => out.split('\n').filter((line) => line.startsWith('{')).length)
    assert.equal(json.code, 0, json.stderr)
    const docs = json.stdout.trim().split('\n').map((line) => JSON.parse(line) as LagResult)
    assert.ok(docs.length >= 2)
    for (const doc of docs) {
      assert.equal(doc.schema, 'ferrydiag.lag')
      assert.ok(doc.window.durationMs <= 2100, `sliding window ${doc.window.durationMs} ms`)
      // One agent snapshot a second: a 2 s window holds at most 3 (4 if a read ran late).
      assert.ok(doc.window.snapshotCount >= 2 && doc.window.snapshotCount <= 4, `snapshots ${doc.window.snapshotCount}`)
    }
  })
})

describe('lag bad input', () => {
  for (const [value, why] of [['0', 'zero'], ['-2s', 'negative'], ['fast', 'not a number']] as const) {
    it(`--duration ${value}: one line, exit 21 (${why})`, async () => {
      const result = await runLag(['--inspect', '127.0.0.1:1', `--duration=${value}`])
      assertOneLineError(result, EXIT.badDuration, new RegExp(`--duration.*${why}`))
    })
  }

  it('nothing listening on --inspect: exit 10', async () => {
    assertOneLineError(await runLag(['--inspect', '127.0.0.1:1', '--duration', '1s']), EXIT.connectRefused, /Try this/i)
  })

  it('malformed --source: exit 34 before attaching', async () => {
    assertOneLineError(await runLag(['--source', 'postgres://u:p@h/db', '--duration', '1s']), EXIT.badDsn, /Malformed DSN/)
  })

  it('--source unreachable: exit 30', async () => {
    assertOneLineError(await runLag(['--source', 'mysql://u:p@127.0.0.1:1/db', '--duration', '1s']), EXIT.mysqlUnreachable, /connection refused/)
  })

  it('a target without the agent, nothing the probes know, no --source: unknown naming what would measure it, target untouched', async () => {
    const target = await spawnTarget({script: "setInterval(() => {}, 1000); console.log('ready')", execArgv: ['--inspect=127.0.0.1:0']})
    const result = await runLag(['--inspect', `127.0.0.1:${target.inspectPort}`, '--duration', '1s', '--json'])
    assert.equal(result.code, 0, result.stderr)
    const report = parseJson(result)
    assert.equal(report.verdict, 'unknown')
    assert.deepEqual(report.missing, ['pipeline', 'source'])
    assert.equal(report.probes?.state, 'nothing-found')
    assert.ok(target.isAlive())
    await target.kill()
  })
})

describe('lag with MariaDB (--source)', () => {
  const db = sharedDatabase(() => startSourceAndTarget())
  after(() => db.stop())

  /** Binlog Dump threads on the source opened by the replication account (lag's row count; the pipelines use root). */
  async function lagDumpThreads(source: MariaDbInstance): Promise<number> {
    const conn = await openConnection(source.adminDsn)
    try {
      const [rows] = await conn.query('SHOW PROCESSLIST')
      return (rows as Array<Record<string, unknown>>).filter((r) => String(r.Command).startsWith('Binlog Dump') && r.User === REPLICATION_USER).length
    } finally {
      await conn.end()
    }
  }

  /** Waits (up to 5 s) for lag's dump thread to be gone; a dump nobody stopped stays while the source is quiet. */
  async function assertNoLagDumpThread(source: MariaDbInstance): Promise<void> {
    let threads = await lagDumpThreads(source)
    for (let i = 0; i < 25 && threads > 0; i++) {
      await pause(200)
      threads = await lagDumpThreads(source)
    }
    assert.equal(threads, 0, 'lag left its binlog dump thread on the source')
  }

  /** Runs a pipeline on fresh databases for one test and stops it after, so the next test's source is quiet. */
  async function withPipeline<T>(
    pair: {source: MariaDbInstance; target: MariaDbInstance},
    name: string,
    args: string[],
    warmMs: number,
    body: (p: RunningPipeline) => Promise<T>,
  ): Promise<T> {
    const dsn = await freshDatabase(pair.source, pair.target, name)
    const p = await pipelineFor([...args, `--source=${dsn.source}`, `--target=${dsn.target}`], warmMs)
    try {
      return await body(p)
    } finally {
      await p.stop('SIGKILL').catch(() => undefined)
    }
  }

  it('healthy pipeline: healthy, with bytes behind from the binlog and the source rate from counted rows', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    await withPipeline(pair, 'lag_healthy', ['--scenario=healthy'], 2000, async (p) => {
      const result = await runLag(['--inspect', p.fields.inspect, '--source', pair.source.replicationDsn, '--duration', '3s', '--json'])
      const report = parseJson(result)
      assert.equal(report.verdict, 'healthy', report.summary)
      assert.equal(report.window.sourceFrom, 'flag')
      assert.ok(report.window.sourceStatusCount >= 3)
      assert.equal(report.source?.advanced, true)
      assert.ok(report.source!.bytesPerSec! > 0)
      assert.ok(report.lag?.bytesBehind !== null && report.lag!.bytesBehind! < 50_000, `bytes behind ${report.lag?.bytesBehind}`)
      assert.ok(report.positions.sourceEnd && report.positions.pipeline)
      // The load generator makes 300 row changes/s; counted on the binlog, not taken from the pipeline.
      assert.equal(report.source?.eventsPerSecFrom, 'binlog-rows')
      assert.ok(report.source!.eventsPerSec! > 150 && report.source!.eventsPerSec! < 450, `source ${report.source?.eventsPerSec} rows/s`)
      assert.equal(report.catchUp.sourceEventsPerSec, report.source!.eventsPerSec)
      assert.equal(report.window.sourceRowCount?.state, 'counting')
      assert.ok(report.window.sourceRowCount!.serverId! >= 2_000_000_000, `server id ${report.window.sourceRowCount?.serverId}`)
      assert.ok(report.window.snapshotCount >= 10, `snapshots ${report.window.snapshotCount}`)
      await assertNoLagDumpThread(pair.source)
    })
  })

  it('init-race pipeline: stuck, with the source rate counted', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    await withPipeline(pair, 'lag_race', ['--scenario=init-race'], 2500, async (p) => {
      const result = await runLag(['--inspect', p.fields.inspect, '--source', pair.source.replicationDsn, '--duration', '2s'])
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stdout, /^Verdict: STUCK/m)
      assert.match(result.stdout, /binlog-streamer blocked in channel-send/)
      assert.match(result.stdout, /Source \(--source\): advancing, \d+(\.\d)? events\/s \(binlog rows\)/)
      assert.match(result.stdout, /│ binlog-events #1 +│/)
      assert.match(result.stdout, /^Catch-up: never/m)
    })
  })

  it('slow-target pipeline: falling behind, writer the bottleneck, streamer back-pressured, catch-up decided from the source rate', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    await withPipeline(pair, 'lag_slow', ['--scenario=slow-target'], 2500, async (p) => {
      const result = await runLag(['--inspect', p.fields.inspect, '--source', pair.source.replicationDsn, '--duration', '3s', '--json'])
      assert.equal(result.code, 0, result.stderr)
      const report = parseJson(result)
      assert.equal(report.verdict, 'falling-behind', report.summary)
      assert.equal(report.bottleneck?.stageName, 'binlog-writer')
      const streamer = report.stages.find((s) => s.name === 'binlog-streamer')!
      const writer = report.stages.find((s) => s.name === 'binlog-writer')!
      assert.ok(streamer.backPressuredMsPerSec > 700, `streamer back-pressured ${streamer.backPressuredMsPerSec} ms/s`)
      assert.ok(writer.busyMsPerSec > 800, `writer busy ${writer.busyMsPerSec} ms/s`)
      assert.ok(report.lag!.transactionLagGrowthSecPerSec! > 0.1, `growth ${report.lag!.transactionLagGrowthSecPerSec}`)
      // The source makes 400 rows/s; the writer manages well under that: catch-up is never, not unknown.
      assert.equal(report.source?.eventsPerSecFrom, 'binlog-rows')
      assert.ok(report.source!.eventsPerSec! > 250, `source ${report.source?.eventsPerSec} rows/s`)
      assert.equal(report.catchUp.state, 'never', report.catchUp.note)
      assert.ok(report.catchUp.capacityEventsPerSec! < report.source!.eventsPerSec!)
      assert.ok(report.evidence.some((f) => /tune-batch/.test(f.suggestion)))
    })
  })

  it('load generator off: idle (no rows counted at the source)', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    await withPipeline(pair, 'lag_idle', ['--scenario=healthy', '--load=off'], 2000, async (p) => {
      const report = parseJson(await runLag(['--inspect', p.fields.inspect, '--source', pair.source.replicationDsn, '--duration', '3s', '--json']))
      assert.equal(report.verdict, 'idle', report.summary)
      assert.equal(report.source?.eventsPerSecFrom, 'binlog-rows')
      assert.equal(report.source?.eventsPerSec, 0)
      assert.equal(report.catchUp.state, 'caught-up')
    })
  })

  it('load generator stopped mid-run: idle once the pipeline drained', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    await withPipeline(pair, 'lag_stopped', ['--scenario=healthy', '--stop-load-after=2'], 1000, async (p) => {
      await waitForSnapshot(p, (s) => s.counters.rowsWritten! > 0 && lagOf(s).caughtUp && s.counters.rowsWritten === s.counters.eventsApplied, {
        timeoutMs: 30_000,
        what: 'the load to stop and the pipeline to drain',
      })
      await pause(2500) // past --stop-load-after, and longer than the 2 s stall threshold
      const report = parseJson(await runLag(['--inspect', p.fields.inspect, '--source', pair.source.replicationDsn, '--duration', '3s', '--json']))
      assert.equal(report.verdict, 'idle', report.summary)
      assert.equal(report.source?.eventsPerSec, 0)
      assert.ok(report.stages.every((s) => s.itemsPerSec === 0))
    })
  })

  it('account without REPLICATION SLAVE: "not measured: source event rate", exit 0', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const dsn = await createUser(pair.source, 'lag_noslave', 'pw-lag', ['REPLICATION CLIENT ON *.*', 'SELECT ON *.*'])
    const result = await runLag(['--source', dsn, '--duration', '2s'])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /^not measured: source event rate \(needs REPLICATION SLAVE\)$/m)
    assert.match(result.stdout, /^Source \(--source\): .*n\/a events\/s/m)
    const report = parseJson(await runLag(['--source', dsn, '--duration', '1s', '--json']))
    assert.equal(report.window.sourceRowCount?.state, 'no-grant')
    assert.equal(report.source?.eventsPerSec, null)
  })

  it('Ctrl-C with --source: exit 130 and the row count\'s dump thread is gone from the source', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const result = await runLag(['--source', pair.source.replicationDsn, '--duration', '30s'], {
      whileRunning: async (pid) => {
        // Wait until the count streams (its dump thread shows), then interrupt.
        for (let i = 0; i < 50 && (await lagDumpThreads(pair.source)) === 0; i++) await pause(200)
        assert.equal(await lagDumpThreads(pair.source), 1)
        await pause(1000)
        process.kill(pid, 'SIGINT')
      },
    })
    assert.equal(result.code, 130, result.stderr)
    assert.match(result.stdout, /window ended early: interrupted/)
    await assertNoLagDumpThread(pair.source)
  })

  it('--source alone: reduced report listing what was not measured', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const report = parseJson(await runLag(['--source', pair.source.replicationDsn, '--duration', '2s', '--json']))
    assert.equal(report.process.agent, 'not-attached')
    assert.ok(report.notMeasured.some((line) => /^not measured: agent/.test(line)))
    assert.ok(report.notMeasured.some((line) => /stages, buffers/.test(line)))
    assert.equal(report.stages.length, 0)
    assert.ok(report.window.sourceStatusCount >= 2)
  })

  it('a target without the agent plus --source: the source is reported, the verdict is unknown and says there is no agent', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const target = await spawnTarget({script: "setInterval(() => {}, 1000); console.log('ready')", execArgv: ['--inspect=127.0.0.1:0']})
    const result = await runLag(['--inspect', `127.0.0.1:${target.inspectPort}`, '--source', pair.source.replicationDsn, '--duration', '1s'])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /^problem: the target has no ferrydiag agent \(the pipeline does not use ferrydiag\/runtime\)$/m)
    // --source alone measures the source, not the pipeline: no verdict without the pipeline's progress.
    assert.match(result.stdout, /^Verdict: UNKNOWN/m)
    assert.match(result.stdout, /^Source \(--source\): /m)
    await target.kill()
  })

  it('wrong password: exit 31', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const url = new URL(pair.source.replicationDsn)
    url.password = 'wrong'
    assertOneLineError(await runLag(['--source', url.toString(), '--duration', '1s']), EXIT.mysqlAuth, /refused user/)
  })

  it('account without REPLICATION CLIENT: exit 32 naming it', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const dsn = await createUser(pair.source, 'lag_nogrant', 'pw-lag', ['SELECT ON *.*'])
    assertOneLineError(await runLag(['--source', dsn, '--duration', '1s']), EXIT.mysqlGrant, /REPLICATION CLIENT.*BINLOG MONITOR/)
  })

  it('source lost mid-window: prints what was measured, exit 35', async (t) => {
    const own = await databaseOrSkip(t, startMariaDb({name: 'lag-lost'}))
    if (!own) return
    try {
      const result = await runLag(['--source', own.replicationDsn, '--duration', '6s'], {
        whileRunning: async () => {
          await pause(2500)
          await own.stop()
        },
      })
      assert.equal(result.code, EXIT.mysqlLost, `${result.stdout}\n${result.stderr}`)
      assert.match(result.stdout, /window ended early: the source connection was lost/)
      assert.match(result.stdout, /^Verdict: /m)
      assert.match(result.stderr, /exit 35/)
    } finally {
      await own.stop()
    }
  })
})
