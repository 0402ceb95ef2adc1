// Queues a program creates after the probes were installed (issue 11, item 2): fixtures/wild/
// fastq-late-workers.cjs starts its fastq pool and its async.queue on SIGUSR2, which this test sends once
// `lag` has installed its probes (its 'probes' trace line). lag finds both anyway (fastq's and async's queues are plain objects the program reaches through its own
// binding of the factory: the late heap lookup at a read finds them, its cost in probes.queueLookupMs), and
// leaves nothing behind.

import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import type {LagResult} from '../src/model/lag-result.js'
import {assertNoProbesLeft, readQueueProbeTraces} from './helpers/probes.js'
import {runCli} from './helpers/run-node.js'
import {listWildPrograms, startWildProgram} from './helpers/wild.js'

describe('queues created after the probes were installed', () => {
  it('fastq-late-workers.cjs: lag attached before the queues exist sees both, with the lookup cost reported', {timeout: 180_000}, async (t) => {
    const program = listWildPrograms().find((p) => p.file === 'fastq-late-workers.cjs')!
    const child = await startWildProgram(program, {t, extraArgs: ['--warm-up-on-signal']})
    const inspect = `127.0.0.1:${child.inspectPort}`
    let signalled = false
    const result = await runCli(['lag', '--inspect', inspect, '--duration', '9s', '--json'], {
      timeoutMs: 120_000,
      env: {FERRYDIAG_TRACE: '1'},
      onStderr: (stderr) => {
        if (!signalled && /ferrydiag-trace probes\n/.test(stderr)) {
          signalled = true
          process.kill(child.pid, 'SIGUSR2')
        }
      },
    })
    assert.ok(result.stdout.trim().startsWith('{'), `lag printed no JSON (exit ${result.code}): ${result.stderr}`)
    const report = JSON.parse(result.stdout) as LagResult
    const detail = `${report.summary} | stages ${report.stages.map((s) => `${s.name} ${s.itemsPerSec.toFixed(1)}/s`).join('; ')} | probes ${JSON.stringify(report.probes)}`
    const started = /workers started at (\d+)/.exec(child.stdout())
    assert.ok(started, `the program never started its workers: ${child.stdout()}`)
    assert.equal(report.probes?.state, 'used', detail)
    assert.ok(report.probes!.installedAtMs! < Number(started[1]), `the probes were installed before the queues existed (${report.probes!.installedAtMs} < ${started[1]})`)
    assert.ok(report.stages.some((s) => /^fastq#\d+ workers$/.test(s.name)), detail)
    assert.ok(report.stages.some((s) => /^async#\d+ workers$/.test(s.name)), detail)
    assert.ok((report.probes!.queuesAdopted ?? 0) >= 2, detail)
    assert.ok((report.probes!.queueLookupMs ?? 0) > 0, `the lookups' cost is reported: ${detail}`)
    await assertNoProbesLeft(inspect)
    assert.deepEqual(await readQueueProbeTraces(inspect), {undoEntry: false, wrapped: 0})
  })
})
