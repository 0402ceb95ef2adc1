// `ferrydiag lag` on the wild corpus's zongji + mysql2 programs (they never import ferrydiag): probes are
// installed at attach time, the verdict matches each program's `lag:` / `bottleneck:` header, and after
// detach nothing of the probes remains in the target.

import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'
import type {LagResult} from '../src/model/lag-result.js'
import {sharedDatabase, startSourceAndTarget} from './helpers/mariadb.js'
import {runCli} from './helpers/run-node.js'
import {startWildPipeline, type WildPipeline} from './helpers/wild-mariadb.js'
import {listWildPrograms} from './helpers/wild.js'
import {spawnTarget} from './helpers/child-process.js'
import {assertNoProbesLeft} from './helpers/probes.js'

const db = sharedDatabase(() => startSourceAndTarget())
after(() => db.stop())

/** Every MariaDB program of the corpus with a `lag:` header. */
const PROGRAMS = listWildPrograms().filter((p) => p.needs === 'mariadb' && p.lag !== undefined)

export async function runLagJson(args: readonly string[]): Promise<LagResult> {
  const result = await runCli(['lag', ...args, '--json'], {timeoutMs: 60_000})
  assert.ok(result.stdout.trim().startsWith('{'), `lag printed no JSON (exit ${result.code}): ${result.stderr}`)
  return JSON.parse(result.stdout) as LagResult
}

describe('lag on the wild zongji + mysql2 programs (probes, real MariaDB)', () => {
  for (const program of PROGRAMS) {
    const expected = program.lag!
    const bottleneck = program.bottleneck
    it(`${program.file}: lag --source says ${expected}${bottleneck ? ` (bottleneck ${bottleneck})` : ''}, and the probes are gone afterwards`, async (t) => {
      const servers = await db.get(t)
      if (!servers) return
      const pipeline: WildPipeline = await startWildPipeline(program, {t, servers})
      const inspect = `127.0.0.1:${pipeline.program.inspectPort}`
      const report = await runLagJson(['--inspect', inspect, '--source', servers.source.replicationDsn, '--duration', '4s'])
      assert.equal(report.verdict, expected, `${report.summary} | missing ${report.missing.join(',')} | ${report.notMeasured.join(' | ')}`)
      assert.equal(report.probes?.state, 'used')
      if (bottleneck === 'writer') {
        assert.match(report.bottleneck?.stageName ?? '', /writer/, `bottleneck ${JSON.stringify(report.bottleneck)}`)
      }
      if (expected === 'healthy') assert.ok(report.flow.length > 0, 'healthy comes with flow evidence')
      await assertNoProbesLeft(inspect)
    })
  }
})

/** A pipeline of hand-rolled parts only (an array queue between two timers): nothing the probes know. */
const INVISIBLE = `
const queue = []
let copied = 0
setInterval(() => { for (let i = 0; i < 20; i++) queue.push({id: i}) }, 10)
setInterval(() => { copied += queue.splice(0, 50).length }, 10)
console.log('ready')
`

describe('lag on a program whose parts it cannot see', () => {
  it('a hand-rolled queue between timers (no ferrydiag, no zongji, no mysql2): unknown, naming what is missing, nothing left behind', async (t) => {
    const child = await spawnTarget({script: INVISIBLE, moduleType: 'cjs', execArgv: ['--inspect=127.0.0.1:0']})
    t.after(() => child.kill())
    const inspect = `127.0.0.1:${child.inspectPort}`
    const report = await runLagJson(['--inspect', inspect, '--duration', '2s'])
    assert.equal(report.verdict, 'unknown', report.summary)
    assert.deepEqual(report.missing, ['pipeline', 'source'])
    assert.equal(report.probes?.state, 'nothing-found')
    const text = await runCli(['lag', '--inspect', inspect, '--duration', '1s'], {timeoutMs: 60_000})
    assert.match(text.stdout, /Verdict: UNKNOWN/)
    assert.match(text.stdout, /ferrydiag stacks --heap --inspect/)
    await assertNoProbesLeft(inspect)
  })
})
