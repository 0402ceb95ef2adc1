// End to end: the built CLI (`node bin/run.js stacks …`) against the reference pipeline (agent in the
// process), against a pipeline with no preparation (--heap), against MariaDB, and with bad input.

import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'
import {gunzipSync} from 'node:zlib'

import {Profile} from 'pprof-format'

import {EXIT} from '../src/errors.js'
import type {StacksDump} from '../src/model/dump.js'
import type {Finding} from '../src/model/findings.js'
import {openConnection, sharedDatabase, startSourceAndTarget, type MariaDbInstance} from './helpers/mariadb.js'
import {lagOf, startPipeline, waitForSnapshot, type RunningPipeline} from './helpers/pipeline-process.js'
import {killAllTargets, spawnTarget, type TargetProcess} from './helpers/child-process.js'
import {runCli, testTimeoutMs, type RunResult as CliResult} from './helpers/run-node.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const UNPREPARED_MAIN = path.join(REPO, 'fixtures', 'unprepared', 'main.mjs')

/** Runs `node bin/run.js stacks ARGS`; `onStderr` sees stderr as it arrives (e.g. to act mid-run). */
function runStacks(args: string[], options: {onStderr?: (text: string) => void; timeoutMs?: number} = {}): Promise<CliResult> {
  return runCli(['stacks', ...args], {...options, cwd: REPO})
}

async function dumpJson(args: string[]): Promise<StacksDump> {
  const result = await runStacks([...args, '--json'])
  assert.equal(result.code, 0, `stacks ${args.join(' ')} failed: ${result.stderr}${result.stdout}`)
  return JSON.parse(result.stdout) as StacksDump
}

const errors = (dump: StacksDump): Finding[] => dump.findings.filter((finding) => finding.severity === 'error')

/** The #331 verdict: an error finding naming the streamer's await site and the 'binlog-events' buffer. */
function assertInitRaceFinding(dump: StacksDump, label: string, options: {bufferInEvidence: boolean}): Finding {
  const context = `${label}: ${JSON.stringify(dump.findings, null, 1)}\ngroups ${JSON.stringify(dump.groups, null, 1)}`
  const finding = errors(dump).find((f) => f.kind === 'uninitialized-channel-send' || f.kind === 'never-resumes')
  assert.ok(finding, context)
  assert.ok((finding.evidence.sites ?? []).some((site) => /binlog-streamer\.(ts|js|mjs):\d+:\d+$/.test(site)), context)
  const buffers = (finding.evidence.channels ?? []).map(String)
  if (options.bufferInEvidence) assert.ok(buffers.some((b) => b.startsWith('binlog-events')), context)
  else assert.ok(dump.groups.some((g) => g.channelName === 'binlog-events'), context)
  return finding
}

function inspectArg(pipeline: RunningPipeline): string[] {
  return ['--inspect', pipeline.fields.inspect]
}

/** Starts fixtures/unprepared/main.mjs (no ferrydiag at all) with --inspect on a free port. */
async function startUnprepared(args: string[]): Promise<TargetProcess & {inspect: string}> {
  const target = await spawnTarget({
    file: UNPREPARED_MAIN,
    execArgv: ['--inspect=127.0.0.1:0'],
    args,
    readyLine: /^unprepared-pipeline /,
    startTimeoutMs: testTimeoutMs(120_000),
  })
  return Object.assign(target, {inspect: `127.0.0.1:${target.inspectPort}`})
}

describe('ferrydiag stacks (agent route, reference pipeline in simulator mode)', {timeout: testTimeoutMs(400_000)}, () => {
  const pipelines: Record<string, RunningPipeline> = {}
  before(async () => {
    // Each is recorded as soon as it runs, so that after() stops it even when another failed to start.
    const starts: Array<[string, string[]]> = [
      ['placeholder', ['--scenario=init-race', '--race-shape=placeholder', '--simulate']],
      ['neverCreated', ['--scenario=init-race', '--race-shape=never-created', '--simulate']],
      ['slow', ['--scenario=slow-target', '--simulate']],
    ]
    const results = await Promise.allSettled(
      starts.map(async ([name, args]) => {
        pipelines[name] = await startPipeline(args)
      }),
    )
    const failed = results.find((result) => result.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason
  })
  after(async () => {
    await Promise.all(Object.values(pipelines).map((p) => p.stop('SIGKILL')))
  })

  for (const shape of ['placeholder', 'never-created'] as const) {
    it(`init-race ${shape}: an error finding names the streamer's await site and 'binlog-events'`, async () => {
      const pipeline = shape === 'placeholder' ? pipelines.placeholder! : pipelines.neverCreated!
      // The unfilled slot counts as stuck after --stuck-after; wait until the streamer has waited longer.
      await waitForSnapshot(pipeline, (s) => s.tasks.some((t) => t.stageName === 'binlog-streamer' && t.waitMs > 1500), {
        what: 'the streamer blocked for 1.5 s',
      })
      const dump = await dumpJson([...inspectArg(pipeline), '--stuck-after', '1s'])
      assert.equal(dump.schema, 'ferrydiag.stacks')
      assert.equal(dump.source.kind, 'agent-preloaded')
      assert.equal(dump.process.pid, pipeline.pid)
      const finding = assertInitRaceFinding(dump, shape, {bufferInEvidence: true})
      assert.equal(finding.kind, 'uninitialized-channel-send')
      assert.ok(pipeline.alive())

      // The text form says the same to an operator, with the header naming the source.
      const text = await runStacks([...inspectArg(pipeline), '--stuck-after', '1s'])
      assert.equal(text.code, 0, text.stderr)
      assert.match(text.stdout, new RegExp(`^ferrydiag stacks: pid ${pipeline.pid}, node v\\d+`, 'm'))
      assert.match(text.stdout, /data from agent-preloaded/)
      assert.match(text.stdout, /ERROR uninitialized-channel-send/)
      assert.match(text.stdout, /binlog-streamer\.ts:\d+:\d+/)
    })
  }

  it('--debug=2 lists every task separately; --min-wait hides short waits', async () => {
    const pipeline = pipelines.placeholder!
    const grouped = await dumpJson(inspectArg(pipeline))
    const ungrouped = await dumpJson([...inspectArg(pipeline), '--debug', '2'])
    assert.equal(ungrouped.grouped, false)
    assert.ok(ungrouped.groups.every((g) => g.count === 1 && g.taskIds.length === 1))
    assert.equal(ungrouped.groups.length, ungrouped.taskCount)
    assert.ok(grouped.grouped)
    const filtered = await dumpJson([...inspectArg(pipeline), '--min-wait', '1h'])
    assert.equal(filtered.thresholds.minWaitMs, 3_600_000)
    assert.equal(filtered.groups.length, 0)
    assert.equal(filtered.hiddenTaskCount, filtered.taskCount)
    // Findings still consider every task.
    assert.ok(errors(filtered).length > 0)
  })

  it('healthy: no error finding, and the pipeline keeps applying events during and after dumps, losing none', async () => {
    // Started here, and the first snapshot waits until events flow while the load still runs (a row
    // count, not a time: a busy machine may take longer than a fixed load lasts just to attach).
    const ROWS = 6000
    const pipeline = await startPipeline(['--scenario=healthy', '--simulate', `--stop-load-after-rows=${ROWS}`])
    pipelines.healthy = pipeline
    const before = await waitForSnapshot(pipeline, (s) => (s.counters.eventsApplied ?? 0) > 0 && (s.counters.rowsWritten ?? 0) < ROWS, {
      what: 'events applied while the load runs',
    })
    // One after the other: a second ferrydiag session on the same target is refused (the lease).
    const dumps = [await dumpJson(inspectArg(pipeline)), await dumpJson([...inspectArg(pipeline), '--debug', '2'])]
    const during = await pipeline.snapshot()
    for (const dump of dumps) assert.deepEqual(errors(dump), [], JSON.stringify(dump.findings))
    assert.ok(
      (during.counters.eventsApplied ?? 0) > (before.counters.eventsApplied ?? 0),
      `eventsApplied ${before.counters.eventsApplied} -> ${during.counters.eventsApplied}`,
    )
    // The load stops after ROWS rows; then every produced event must have been applied.
    const settled = await waitForSnapshot(pipeline, (s) => s.counters.rowsWritten === ROWS && lagOf(s).caughtUp && lagOf(s).backlogEvents === 0, {
      what: 'healthy pipeline caught up after the load stopped',
    })
    // Every row the load wrote was applied, none lost to the dumps (whether or not the load outlasted them).
    assert.ok((settled.counters.eventsApplied ?? 0) >= (during.counters.eventsApplied ?? 0))
    assert.equal(settled.counters.eventsApplied, ROWS)
    assert.equal(lagOf(settled).backlogEvents, 0)
  })

  it('slow-target: lagging is not stuck, so no error finding', async () => {
    const dump = await dumpJson(inspectArg(pipelines.slow!))
    assert.deepEqual(errors(dump), [], JSON.stringify(dump.findings))
    assert.ok(dump.taskCount >= 1)
  })

  it('--format pprof --output writes a gzipped profile that decodes and holds the groups', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ferrydiag-pprof-'))
    try {
      const file = path.join(dir, 'waits.pb.gz')
      const result = await runStacks([...inspectArg(pipelines.placeholder!), '--format', 'pprof', '--output', file])
      assert.equal(result.code, 0, result.stderr)
      const profile = Profile.decode(gunzipSync(readFileSync(file)))
      const strings = profile.stringTable.strings
      assert.ok(profile.sample.length >= 2, `samples: ${profile.sample.length}`)
      assert.ok(strings.includes('BinlogStreamer.run'), strings.join(' | '))
      assert.ok(strings.some((s) => /^binlog-events #\d+$/.test(s)), strings.join(' | '))
      assert.ok(strings.includes('channel-send') && strings.includes('channel-receive'))
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

describe('ferrydiag stacks --heap (a pipeline with no preparation)', {timeout: testTimeoutMs(400_000)}, () => {
  after(async () => {
    await killAllTargets()
  })

  for (const shape of ['placeholder', 'never-created'] as const) {
    it(`init-race ${shape}: found from a heap snapshot alone; the target keeps running`, async () => {
      const target = await startUnprepared(['--scenario=init-race', `--race-shape=${shape}`])
      try {
        const result = await runStacks(['--inspect', target.inspect, '--heap', '--yes', '--json'])
        assert.equal(result.code, 0, result.stderr)
        // The estimate goes to stderr before the snapshot, so --json stays clean.
        assert.match(result.stderr, /--heap: the target's JavaScript heap holds [\d.]+ [KMG]iB\. A heap snapshot stops its JavaScript for about [\d.]+ m?s/)
        const dump = JSON.parse(result.stdout) as StacksDump
        assert.equal(dump.source.kind, 'heap-snapshot')
        assert.equal(dump.process.pid, target.pid)
        if (shape === 'placeholder') {
          // The heap route names the two instances by the property paths that reach them (no `name` needed).
          const finding = errors(dump).find((f) => f.kind === 'uninitialized-channel-send')
          assert.ok(finding, JSON.stringify(dump.findings, null, 1))
          assert.ok((finding.evidence.sites ?? []).some((site) => /binlog-streamer\.mjs:\d+:\d+$/.test(site)), JSON.stringify(finding.evidence))
          assert.deepEqual(finding.evidence.channels, ['ferry.streamer.eventBuffer', 'ferry.writer.buffer'])
        } else {
          const finding = assertInitRaceFinding(dump, `heap ${shape}`, {bufferInEvidence: false})
          assert.equal(finding.kind, 'never-resumes')
        }
        assert.ok(target.isAlive(), 'target still running')
      } finally {
        await target.kill()
      }
    })
  }

  it('without --heap, an injected agent cannot see the stuck plain-promise task and says to use --heap', async () => {
    const target = await startUnprepared(['--scenario=init-race', '--race-shape=never-created'])
    try {
      const dump = await dumpJson(['--inspect', target.inspect])
      assert.equal(dump.source.kind, 'agent-injected')
      assert.equal(dump.process.agentLoadedBy, 'inject')
      assert.deepEqual(errors(dump), [])
      assert.ok(dump.source.notes.some((note) => /--heap/.test(note)), dump.source.notes.join('\n'))
      assert.ok(target.isAlive())
    } finally {
      await target.kill()
    }
  })

  it('--heap declined (no TTY, no --yes): exit 43, nothing taken; --no-inject without an agent: exit 20', async () => {
    const target = await startUnprepared(['--scenario=init-race'])
    try {
      const declined = await runStacks(['--inspect', target.inspect, '--heap'])
      assert.equal(declined.code, EXIT.heapDeclined, declined.stderr)
      assert.match(declined.stderr, /heapDeclined/)
      assert.match(declined.stderr, /--heap: the target's JavaScript heap holds/)
      // Also shows that the declined run injected nothing.
      const noInject = await runStacks(['--inspect', target.inspect, '--no-inject'])
      assert.equal(noInject.code, EXIT.noAgent, noInject.stderr)
      assert.ok(target.isAlive())
    } finally {
      await target.kill()
    }
  })

  it('the target exiting during the heap snapshot: exit 17 (targetExited)', async () => {
    const target = await startUnprepared(['--scenario=init-race', '--ballast-mb=60'])
    try {
      let killed = false
      const result = await runStacks(['--inspect', target.inspect, '--heap', '--yes', '--heap-max', '4GB'], {
        onStderr: (text) => {
          if (!killed && text.includes('--heap: the target')) {
            killed = true
            void target.kill()
          }
        },
      })
      assert.ok(killed)
      assert.equal(result.code, EXIT.targetExited, result.stderr)
      assert.match(result.stderr, /targetExited/)
    } finally {
      await target.kill()
    }
  })
})

describe('ferrydiag stacks: bad input fails on one line with a distinct status', {timeout: testTimeoutMs(240_000)}, () => {
  // Nothing listens on this port: a command that attached first would fail with connectRefused (10).
  const nowhere = ['--inspect', '127.0.0.1:1']

  const cases: Array<[string, string[], number, RegExp]> = [
    ['malformed --min-wait', [...nowhere, '--min-wait', 'soon'], EXIT.badDuration, /badDuration/],
    ['zero --stuck-after', [...nowhere, '--stuck-after', '0'], EXIT.badDuration, /badDuration/],
    ['pprof without --output', [...nowhere, '--format', 'pprof'], EXIT.badArgument, /needs --output/],
    ['output in a missing directory', [...nowhere, '--output', '/nonexistent-dir/x.txt'], EXIT.outputUnwritable, /outputUnwritable/],
    ['output is a directory', [...nowhere, '--format', 'pprof', '--output', tmpdir()], EXIT.outputUnwritable, /is a directory/],
    ['nothing listening', nowhere, EXIT.connectRefused, /connectRefused/],
    ['remote host without --allow-remote', ['--inspect', '10.255.255.1:9229'], EXIT.remoteRefused, /remoteRefused/],
    ['--debug out of range', [...nowhere, '--debug', '3'], 2, /debug/],
  ]
  for (const [label, args, exit, pattern] of cases) {
    it(label, async () => {
      const result = await runStacks(args)
      assert.equal(result.code, exit, `${label}: ${result.stderr}`)
      assert.match(result.stderr, pattern)
      assert.equal(result.stdout, '')
    })
  }

  it('an unwritable existing file is refused before attaching', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ferrydiag-out-'))
    try {
      const file = path.join(dir, 'locked.txt')
      writeFileSync(file, '')
      chmodSync(file, 0o444)
      const result = await runStacks([...nowhere, '--output', file])
      // root can write anything: then the attach is what fails.
      const expected = process.getuid?.() === 0 ? EXIT.connectRefused : EXIT.outputUnwritable
      assert.equal(result.code, expected, result.stderr)
      assert.ok(existsSync(file))
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('--json errors are one JSON object with code and exit', async () => {
    const result = await runStacks([...nowhere, '--json'])
    assert.equal(result.code, EXIT.connectRefused)
    const parsed = JSON.parse(result.stdout) as {error: {code: string; exit: number}}
    assert.equal(parsed.error.code, 'connectRefused')
    assert.equal(parsed.error.exit, EXIT.connectRefused)
  })
})

describe('ferrydiag stacks against MariaDB', {timeout: testTimeoutMs(400_000)}, () => {
  const db = sharedDatabase(() => startSourceAndTarget())
  after(() => db.stop())

  it('init-race placeholder with the real MariaDB pipeline: the same error finding', async (t) => {
    const pair = await db.get(t)
    if (!pair) return
    const dsn = await freshDatabase(pair.source, pair.target, 'stacks_race')
    const pipeline = await startPipeline(['--scenario=init-race', '--race-shape=placeholder', `--source=${dsn.source}`, `--target=${dsn.target}`])
    try {
      await waitForSnapshot(pipeline, (s) => s.tasks.some((task) => task.kind === 'channel-send' && task.waitMs > 500), {
        what: 'the streamer blocked on the placeholder buffer',
      })
      const dump = await dumpJson([...inspectArg(pipeline), '--stuck-after', '1s'])
      const finding = assertInitRaceFinding(dump, 'mariadb placeholder', {bufferInEvidence: true})
      assert.equal(finding.kind, 'uninitialized-channel-send')
      assert.ok(pipeline.alive())
    } finally {
      await pipeline.stop('SIGKILL')
    }
  })
})

async function freshDatabase(source: MariaDbInstance, target: MariaDbInstance, name: string): Promise<{source: string; target: string}> {
  const dsns: string[] = []
  for (const instance of [source, target]) {
    const conn = await openConnection(instance.adminDsn)
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
    await conn.query(`CREATE DATABASE \`${name}\``)
    await conn.end()
    const url = new URL(instance.adminDsn)
    url.pathname = `/${name}`
    dsns.push(url.toString())
  }
  return {source: dsns[0]!, target: dsns[1]!}
}
