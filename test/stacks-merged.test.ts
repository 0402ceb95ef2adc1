// `stacks --heap` on a pipeline that uses ferrydiag/runtime for one buffer (so the agent is in the
// process and the agent and heap routes are merged) and ordinary code elsewhere: the merged dump keeps
// the heap route's findings (a split hand-rolled queue, a stream whose _write dropped its callback),
// naming the await lines fixtures/mixed/runtime-and-handrolled.mjs marks with `// stuck:`.

import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {after, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'
import type {StacksDump} from '../src/model/dump.js'
import {killAllTargets, spawnTarget} from './helpers/child-process.js'
import {runCli, testTimeoutMs} from './helpers/run-node.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const PROGRAM = path.join(REPO, 'fixtures', 'mixed', 'runtime-and-handrolled.mjs')

/** "path:line:" of the line carrying `// stuck: <marker>` in the program. */
function markedSite(marker: string): string {
  const lines = readFileSync(PROGRAM, 'utf8').split('\n')
  const index = lines.findIndex((line) => line.includes(`// stuck: ${marker}`))
  assert.ok(index >= 0, `no "// stuck: ${marker}" line in ${PROGRAM}`)
  return `${PROGRAM}:${index + 1}:`
}

/** Sites are file URLs for ESM: compare as plain paths. */
function plainPath(site: string): string {
  return site.startsWith('file://') ? fileURLToPath(site.replace(/:\d+:\d+$/, '')) + /:\d+:\d+$/.exec(site)![0] : site
}

after(killAllTargets)

describe('stacks --heap merged with the agent (runtime Channel beside hand-rolled code)', {timeout: testTimeoutMs(300_000)}, () => {
  it('keeps the split-queue and stalled-stream findings of the heap route, with their await lines', async () => {
    const target = await spawnTarget({
      file: PROGRAM,
      execArgv: ['--inspect=127.0.0.1:0'],
      cwd: REPO,
      readyLine: /^ready: /,
      startTimeoutMs: testTimeoutMs(120_000),
    })
    try {
      const run = await runCli(['stacks', '--inspect', `127.0.0.1:${target.inspectPort}`, '--heap', '--yes', '--json'], {cwd: REPO, timeoutMs: testTimeoutMs(200_000)})
      assert.equal(run.code, 0, `${run.stderr}${run.stdout.slice(0, 2000)}`)
      const dump = JSON.parse(run.stdout) as StacksDump
      const context = JSON.stringify({source: dump.source, findings: dump.findings}, null, 1).slice(0, 6000)

      // The merged route: the agent's record of the runtime buffer, plus the heap's other waits.
      assert.equal(dump.source.kind, 'agent-preloaded', context)
      assert.ok(dump.source.notes.some((note) => note.startsWith('Merged with a heap snapshot')), context)
      assert.ok(dump.groups.some((group) => group.channelName === 'parsed-rows'), context)

      const errorsOf = (kind: string) => dump.findings.filter((f) => f.severity === 'error' && f.kind === kind)
      const sitesOf = (kind: string) => errorsOf(kind).flatMap((f) => f.evidence.sites ?? []).map(plainPath)

      const split = errorsOf('uninitialized-channel-send')
      assert.ok(split.length > 0, context)
      for (const marker of ['split-send', 'split-receive']) {
        const wanted = markedSite(marker)
        assert.ok(sitesOf('uninitialized-channel-send').some((site) => site.startsWith(wanted)), `${wanted} not named\n${context}`)
      }
      const instances = split[0].evidence.instances as Array<{side: string; paths: string[]}>
      assert.ok(instances[0].paths.includes('enricher.out'), context)
      assert.ok(instances[1].paths.includes('writer.queue'), context)

      const drain = markedSite('stream-drain')
      assert.ok(sitesOf('stalled-stream-write').some((site) => site.startsWith(drain)), `${drain} not named\n${context}`)
      // The task ids of the findings are the merged dump's own: each names a task of a listed group.
      const listed = new Set(dump.groups.flatMap((group) => group.taskIds))
      for (const finding of [...split, ...errorsOf('stalled-stream-write')]) {
        for (const id of finding.evidence.taskIds ?? []) assert.ok(listed.has(id), `task ${id} of ${finding.kind} is not in the dump\n${context}`)
      }
    } finally {
      await target.kill()
    }
  })
})
