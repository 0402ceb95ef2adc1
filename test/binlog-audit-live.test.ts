// End to end: `ferrydiag binlog audit --inspect/--pid` (the built CLI) against running zongji pipelines
// (fixtures/binlog-audit/zongji-pipeline.mjs) on a real MariaDB under concurrent writes with the smallest
// max_binlog_size: the pipeline that restarts its stream at each rotation with startAtEnd loses the head of
// new files, and every lost transaction is named; the steady one is complete across 20+ rotations; nothing
// is left in either target afterwards, on a normal end, Ctrl-C, and a killed CLI; and the bad inputs.

import {strict as assert} from 'node:assert'
import {mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it, type TestContext} from 'node:test'
import {startInsertLoad, type LoadHandle} from '../fixtures/binlog-audit/load.js'
import {attachTarget} from '../src/attach/index.js'
import {EXIT} from '../src/errors.js'
import type {BinlogAuditReport} from '../src/model/binlog-audit.js'
import {killAllTargets, spawnTarget, type TargetProcess} from './helpers/child-process.js'
import {sharedDatabase, startMariaDb} from './helpers/mariadb.js'
import {assertNoProbesLeft} from './helpers/probes.js'
import {runCli} from './helpers/run-node.js'
import {REPO_ROOT} from './helpers/wild.js'

const PIPELINE = join(REPO_ROOT, 'fixtures', 'binlog-audit', 'zongji-pipeline.mjs')
const work = mkdtempSync(join(tmpdir(), 'ferrydiag-audit-live-'))
const KEEP = process.env.KEEP_AUDIT_LIVE === '1'
const db = sharedDatabase(() => startMariaDb({name: 'audit-live', extraArgs: ['--max-binlog-size=4096']}))
after(async () => {
  await killAllTargets()
  await db.stop()
  if (!KEEP) rmSync(work, {recursive: true, force: true})
})

let outboxes = 0

async function startPipeline(adminDsn: string, mode: 'steady' | 'restart-on-rotate'): Promise<{target: TargetProcess; outbox: string; inspect: string}> {
  const outbox = join(work, `outbox-${mode}-${++outboxes}.txt`)
  const target = await spawnTarget({file: PIPELINE, execArgv: ['--inspect=127.0.0.1:0'], args: [adminDsn, 'ferrydiag', 'audit_rows', outbox, mode], startTimeoutMs: 60_000})
  return {target, outbox, inspect: `127.0.0.1:${target.inspectPort}`}
}

function outboxSize(path: string): number {
  try {
    return statSync(path).size
  } catch {
    return 0
  }
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** GTIDs the pipeline handed on (its outbox: "GTID kind id" per row change). */
function deliveredGtids(path: string): Set<string> {
  return new Set(readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => line.split(' ')[0]!))
}

/** A second session finds no probe, no tap and no undo entry of any kind. */
async function assertNothingLeft(inspect: string): Promise<void> {
  await assertNoProbesLeft(inspect)
  const session = await attachTarget({inspect})
  try {
    const left = await session.evaluate<{tap: boolean; undo: string[]}>(
      "(() => { const m = globalThis[Symbol.for('ferrydiag.undo')]; return {tap: globalThis[Symbol.for('ferrydiag.binlog-positions')] !== undefined, undo: m instanceof Map ? [...m.keys()] : []} })()",
      {awaitPromise: false},
    )
    assert.equal(left.tap, false, 'position tap left in the target')
    // The second session's own watchdog registers nothing in the undo map; any entry is a leftover.
    assert.deepEqual(left.undo, [], 'undo entries left in the target')
  } finally {
    await session.detach()
  }
}

function seq(gtid: string): number {
  return Number(gtid.split('-')[2])
}

function oneLine(stderr: string): string {
  assert.doesNotMatch(stderr, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace')
  const lines = stderr.trim().split('\n').filter((line) => !line.startsWith('ferrydiag-trace'))
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`)
  assert.match(lines[0]!, /^ferrydiag binlog audit: .* \(code \w+, exit \d+\)\. Try this: .+$/)
  return lines[0]!
}

describe('binlog audit --inspect/--pid: the live route on MariaDB', {timeout: 600_000}, () => {
  let load: LoadHandle | undefined
  after(() => load?.stop())

  /** One writer's load and the steady pipeline, once it hands rows on. */
  async function steadyUnderLoad(t: TestContext) {
    const server = await db.get(t)
    if (!server) return undefined
    load = await startInsertLoad(server.adminDsn, {writers: 1})
    const steady = await startPipeline(server.adminDsn, 'steady')
    await waitFor(() => outboxSize(steady.outbox) > 0, 'the pipeline to hand rows on')
    return {server, steady}
  }

  it('names every transaction the restart-on-rotate pipeline lost; the steady pipeline is complete across 20+ rotations; nothing is left in either', async (t) => {
    const server = await db.get(t)
    if (!server) return
    load = await startInsertLoad(server.adminDsn, {writers: 2})
    const buggy = await startPipeline(server.adminDsn, 'restart-on-rotate')
    const steady = await startPipeline(server.adminDsn, 'steady')
    await waitFor(() => outboxSize(buggy.outbox) > 0 && outboxSize(steady.outbox) > 0, 'both pipelines to hand rows on')
    const audit = async (inspect: string) => {
      const result = await runCli(['binlog', 'audit', '--source', server.replicationDsn, '--inspect', inspect, '--window', '4s', '--list-limit', '100000', '--json'], {timeoutMs: 180_000})
      return {code: result.code, stderr: result.stderr, report: JSON.parse(result.stdout) as BinlogAuditReport}
    }
    const [lossy, fine] = await Promise.all([audit(buggy.inspect), audit(steady.inspect)])
    await load.stop()
    load = undefined
    await assertNothingLeft(buggy.inspect)
    await assertNothingLeft(steady.inspect)
    // The outboxes are the ground truth: stop the pipelines so every line is written.
    for (const p of [buggy, steady]) {
      p.target.child.kill('SIGTERM')
      await p.target.exited
    }

    // Steady: complete, across at least 20 rotations inside the judged range, no false alarm.
    assert.equal(fine.code, 0, fine.stderr)
    const ok = fine.report
    assert.equal(ok.verdict, 'complete')
    assert.equal(ok.consumer.kind, 'live-pipeline')
    assert.equal(ok.version, 2)
    assert.equal(ok.live?.endedBy, 'window')
    assert.equal(ok.live?.missed, 0)
    assert.equal(ok.lostTotals.transactions, 0)
    const rotated = ok.files.filter((file) => file.rotateEndPos !== null && file.deliveredTransactions > 0).length
    assert.ok(rotated >= 20, `at least 20 rotations in the judged range, got ${rotated}`)
    t.diagnostic(`steady: ${ok.live?.records} positions over ${ok.files.length} files, ${ok.pendingTotals.transactions} not yet delivered at the end`)

    // Restart-on-rotate: exactly the transactions between its first and last delivery it never handed on.
    assert.equal(lossy.code, EXIT.auditLost, lossy.stderr)
    const report = lossy.report
    assert.equal(report.verdict, 'lost')
    assert.ok(report.live !== null && report.live.first !== null && report.live.last !== null)
    assert.ok(report.live.streamer.instances > 1, 'the pipeline restarted its stream during the window')
    const delivered = deliveredGtids(buggy.outbox)
    const [domain, serverId] = report.live.first.gtid!.split('-')
    const expected: string[] = []
    for (let s = seq(report.live.first.gtid!) + 1; s < seq(report.live.last.gtid!); s++) {
      const gtid = `${domain}-${serverId}-${s}`
      if (!delivered.has(gtid)) expected.push(gtid)
    }
    assert.ok(expected.length > 0, 'the restart-on-rotate pipeline really lost transactions')
    const reported = [...new Set(report.lost.map((event) => event.gtid))]
    if (KEEP) writeFileSync(join(work, 'report.json'), JSON.stringify(report, null, 1))
    assert.deepEqual(reported.sort(), expected.sort(), 'exactly the transactions it never handed on')
    assert.equal(report.lostTotals.transactions, expected.length)
    for (const event of report.lost) {
      assert.ok(event.startPos >= 4 && event.endPos > event.startPos, `a real position: ${JSON.stringify(event)}`)
      assert.ok(!delivered.has(event.gtid!))
    }
    assert.ok(report.lost.some((event) => /^Write_rows/.test(event.type) && event.table === 'ferrydiag.audit_rows'))
    // The losses are at the head of new files: each gap starts before the first delivery in its file.
    for (const gap of report.gaps) {
      assert.notEqual(gap.deliveredBefore?.file, gap.file, `gap ${gap.file}:${gap.startPos} follows a delivery in another file`)
    }
    t.diagnostic(`restart-on-rotate: ${report.lostTotals.transactions} lost in ${report.gaps.length} gaps over ${report.live.streamer.instances} zongji instances`)
  })

  it('Ctrl-C ends the window early with the audit of what was delivered; a killed CLI leaves nothing behind either', async (t) => {
    const running = await steadyUnderLoad(t)
    if (!running) return
    const {server, steady} = running

    const args = ['binlog', 'audit', '--source', server.replicationDsn, '--inspect', steady.inspect, '--window', '60s', '--json']
    let sizeAtStart = 0
    const interrupted = await runCli(args, {
      env: {FERRYDIAG_TRACE: '1'},
      timeoutMs: 180_000,
      onStart: (child) =>
        new Promise<void>((resolve) => {
          const poll = setInterval(() => {
            // Recording, and the pipeline handed more rows on since: Ctrl-C.
            if (sizeAtStart > 0 && outboxSize(steady.outbox) > sizeAtStart) {
              clearInterval(poll)
              child.kill('SIGINT')
              resolve()
            }
          }, 50)
        }),
      onStderr: (text) => {
        if (sizeAtStart === 0 && text.includes('ferrydiag-trace binlog-audit recording')) sizeAtStart = outboxSize(steady.outbox) || 1
      },
    })
    assert.equal(interrupted.code, 130, interrupted.stderr)
    const report = JSON.parse(interrupted.stdout) as BinlogAuditReport
    assert.equal(report.live?.endedBy, 'interrupted')
    assert.equal(report.verdict, 'complete')
    assert.ok(report.live!.windowMs < 60_000)
    await assertNothingLeft(steady.inspect)

    // SIGKILL the CLI while it records: the watchdog undoes everything once its heartbeat stops.
    let cli: {kill(signal: NodeJS.Signals): boolean} | undefined
    const killed = await runCli(args, {
      env: {FERRYDIAG_TRACE: '1'},
      timeoutMs: 180_000,
      onStart: (child) => {
        cli = child
      },
      onStderr: (text) => {
        if (text.includes('ferrydiag-trace binlog-audit recording')) cli?.kill('SIGKILL')
      },
    })
    assert.equal(killed.signal, 'SIGKILL')
    // A second attach expires the stale lease (running its undo entries) or finds them already undone.
    const started = Date.now()
    for (;;) {
      try {
        await assertNothingLeft(steady.inspect)
        break
      } catch (error) {
        if (Date.now() - started > 60_000) throw error
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    }
    await load?.stop()
    load = undefined
    await steady.target.kill()
  })

  it('the pipeline exiting mid-window: what it delivered until then is audited, exit 17', async (t) => {
    const running = await steadyUnderLoad(t)
    if (!running) return
    const {server, steady} = running
    let drained = false
    const result = await runCli(['binlog', 'audit', '--source', server.replicationDsn, '--inspect', steady.inspect, '--window', '60s'], {
      env: {FERRYDIAG_TRACE: '1'},
      timeoutMs: 180_000,
      onStart: () =>
        new Promise<void>((resolve) => {
          const poll = setInterval(() => {
            // Positions were drained from the target: kill the pipeline mid-window.
            if (drained) {
              clearInterval(poll)
              void steady.target.kill().then(resolve)
            }
          }, 50)
        }),
      onStderr: (text) => {
        drained ||= text.includes('ferrydiag-trace binlog-audit drained')
      },
    })
    await load?.stop()
    load = undefined
    assert.equal(result.code, EXIT.targetExited, result.stderr)
    assert.match(result.stdout, /the pipeline exited during the window: what it delivered until then is audited/, result.stderr)
    assert.match(result.stdout, /binlog audit: complete/)
    assert.match(result.stderr, /the pipeline exited during the window \(exit 17\)/)
  })

  it('a target without zongji: one line, exit 79, the target untouched', async (t) => {
    const server = await db.get(t)
    if (!server) return
    const plain = await spawnTarget({script: "setInterval(() => {}, 1000); console.log('ready')", execArgv: ['--inspect=127.0.0.1:0']})
    const inspect = `127.0.0.1:${plain.inspectPort}`
    const result = await runCli(['binlog', 'audit', '--source', server.replicationDsn, '--inspect', inspect, '--window', '2s'], {timeoutMs: 120_000})
    assert.equal(result.code, EXIT.noZongji, result.stderr)
    assert.match(oneLine(result.stderr), /has no zongji the probes recognise/)
    assert.equal(result.stdout, '')
    await assertNothingLeft(inspect)
    await plain.kill()
  })

  it('--pid or --inspect with --positions is refused before anything is touched', async () => {
    for (const flag of [['--pid', String(process.pid)], ['--inspect', '127.0.0.1:9']]) {
      const result = await runCli(['binlog', 'audit', '--source', 'mysql://u:p@127.0.0.1:9', ...flag, '--positions', '/nonexistent'], {timeoutMs: 60_000})
      assert.equal(result.code, EXIT.badArgument, result.stderr)
      assert.match(oneLine(result.stderr), /cannot be used with --positions/)
    }
  })
})
