// `ferrydiag lag` on the wild corpus's in-process queue and stream programs (fastq, async queue/cargo,
// p-queue, Node streams; no ferrydiag, no MariaDB): the queue probes installed at attach time find each
// queue or data-path stream, the verdict matches the program's `lag:` header (when the header names the
// writer as bottleneck, the bottleneck is the pipeline's last stage, its sink), and after detach neither
// the probes nor a wrapped put or wait method remains.

import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import type {LagResult} from '../src/model/lag-result.js'
import {assertNoProbesLeft, readQueueProbeTraces} from './helpers/probes.js'
import {runCli} from './helpers/run-node.js'
import {listWildPrograms, startWildProgram} from './helpers/wild.js'

const QUEUE_LIBRARIES = ['fastq', 'async', 'p-queue', 'node:stream']
/** Every in-process program with a `lag:` header built on a queue library or the streams the probes know. */
const PROGRAMS = listWildPrograms().filter(
  (p) => p.needs === undefined && p.lag !== undefined && p.libraries.some((l) => QUEUE_LIBRARIES.includes(l)),
)

async function lagJson(args: readonly string[]): Promise<LagResult> {
  const result = await runCli(['lag', ...args, '--json'], {timeoutMs: 90_000})
  assert.ok(result.stdout.trim().startsWith('{'), `lag printed no JSON (exit ${result.code}): ${result.stderr}`)
  return JSON.parse(result.stdout) as LagResult
}

describe('lag on the wild queue and stream programs (queue probes)', () => {
  it('the corpus has queue programs of every verdict here', () => {
    const verdicts = new Set(PROGRAMS.map((p) => p.lag))
    for (const v of ['healthy', 'falling-behind', 'stuck']) assert.ok(verdicts.has(v as never), `no queue program with lag: ${v}`)
  })
  for (const program of PROGRAMS) {
    const expected = program.lag!
    it(`${program.file}: lag says ${expected}${program.bottleneck ? ` (bottleneck ${program.bottleneck})` : ''} from its ${program.libraries.join(', ')} queue, nothing left afterwards`, {timeout: 180_000}, async (t) => {
      const child = await startWildProgram(program, {t})
      const inspect = `127.0.0.1:${child.inspectPort}`
      const report = await lagJson(['--inspect', inspect, '--duration', '4s'])
      const detail = `${report.summary} | missing ${report.missing.join(',')} | stages ${report.stages.map((s) => `${s.name} busy ${Math.round(s.busyMsPerSec)} ${s.itemsPerSec.toFixed(1)}/s`).join('; ')}`
      assert.equal(report.probes?.state, 'used', detail)
      for (const name of program.libraries.filter((l) => QUEUE_LIBRARIES.includes(l))) {
        assert.equal(report.probes!.libraries.find((l) => l.name === name)?.state, 'patched', `${name}: ${JSON.stringify(report.probes!.libraries)}`)
      }
      assert.ok((report.probes!.queuesAdopted ?? 0) >= 1, 'the queue instance was found')
      assert.ok(report.stages.some((s) => / workers$/.test(s.name)), detail)
      assert.equal(report.verdict, expected, detail)
      if (expected === 'healthy') assert.ok(report.flow.length > 0, 'healthy comes with flow evidence')
      if (expected === 'stuck') assert.ok(report.evidence.length > 0, 'stuck comes with evidence')
      if (program.bottleneck === 'writer') {
        // The sink: the queue's workers (they call the slow API) or the last stream of the chain.
        assert.match(report.bottleneck?.stageName ?? '', / workers$/, `bottleneck ${JSON.stringify(report.bottleneck)}`)
        assert.equal(report.bottleneck?.stageName, report.pipelineOrder.stages.at(-1), `order ${report.pipelineOrder.stages.join(' > ')}`)
      }
      await assertNoProbesLeft(inspect)
      assert.deepEqual(await readQueueProbeTraces(inspect), {undoEntry: false, wrapped: 0})
    })
  }
})
