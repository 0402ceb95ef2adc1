// `ferrydiag lag` on the wild corpus's zongji + mysql2 programs (they never import ferrydiag): probes are
// installed at attach time, the verdict matches each program's `lag:` / `bottleneck:` header, and after
// detach nothing of the probes remains in the target.

import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'
import type {LagResult} from '../src/collect/lag-result.js'
import {sharedDatabase, startSourceAndTarget} from './helpers/mariadb.js'
import {runCli} from './helpers/run-node.js'
import {startWildPipeline, type WildPipeline} from './helpers/wild-mariadb.js'
import {listWildPrograms} from './helpers/wild.js'
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
