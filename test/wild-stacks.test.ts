// `ferrydiag stacks --heap` on the wild corpus (fixtures/wild/): programs written the ordinary way, with
// no ferrydiag in them. Each program's header is its ground truth: a bug program must get the error
// finding of its shape naming its stuck-at line(s); a healthy or slow one no error and no warning; the
// program with thousands of waiting tasks a short text dump. Programs with `needs: mariadb` run on
// throwaway MariaDB servers with their header's load (test/helpers/wild-mariadb.ts); with CI set, a
// missing MariaDB fails them instead of skipping.

import assert from 'node:assert/strict'
import {after, describe, it, type TestContext} from 'node:test'
import {fileURLToPath} from 'node:url'
import type {StacksDump} from '../src/model/dump.js'
import type {Finding} from '../src/model/findings.js'
import {killAllTargets} from './helpers/child-process.js'
import {sharedDatabase, startSourceAndTarget} from './helpers/mariadb.js'
import {runCli} from './helpers/run-node.js'
import {listWildPrograms, startWildProgram, type WildProcess, type WildProgram} from './helpers/wild.js'
import {startWildPipeline} from './helpers/wild-mariadb.js'

const TEST_TIMEOUT_MS = 180_000
const programs = listWildPrograms()

const db = sharedDatabase(() => startSourceAndTarget())
after(async () => {
  await killAllTargets()
  await db.stop()
})

/** Starts a program as its header says: plain, or (`needs: mariadb`) with its servers, load and proxy. Null: MariaDB missing, test skipped (never with CI set). */
async function startProgram(program: WildProgram, t: TestContext): Promise<WildProcess | null> {
  if (program.needs !== 'mariadb') return startWildProgram(program, {t})
  const servers = await db.get(t)
  if (!servers) return null
  return (await startWildPipeline(program, {t, servers})).program
}

/** The finding kind each bug shape must produce (orphan-emitter: see the README's finding table). */
const EXPECTED_KIND: Record<Exclude<WildProgram['bug'], 'none'>, Finding['kind']> = {
  'lost-resolver': 'never-resumes',
  'split-queue': 'uninitialized-channel-send',
  'stalled-stream-write': 'stalled-stream-write',
  'orphan-emitter': 'uninitialized-channel-send',
}

async function dumpOf(program: WildProgram, port: number, extra: string[] = []): Promise<{dump: StacksDump; text: string}> {
  const result = await runCli(['stacks', '--inspect', `127.0.0.1:${port}`, '--heap', '--yes', ...extra], {timeoutMs: 150_000})
  assert.equal(result.code, 0, `${program.file}: exit ${result.code}\n${result.stderr}`)
  if (extra.includes('--json')) return {dump: JSON.parse(result.stdout) as StacksDump, text: ''}
  return {dump: undefined as never, text: result.stdout}
}

/** "path:line:" of each stuck-at line (sites are file URLs for ESM, plain paths for CommonJS). */
function siteNames(program: WildProgram): string[] {
  return program.stuckAt.map((at) => `${at.path}:${at.line}:`)
}

function plainPath(site: string): string {
  return site.startsWith('file://') ? fileURLToPath(site.replace(/:\d+:\d+$/, '')) + /:\d+:\d+$/.exec(site)![0] : site
}

/**
 * Instance paths a finding does not give yet, by program and instance index (checked as todo subtests).
 * quote-stream-stale-session: the live instance is sometimes named by the last variable on the
 * reachability walk's path (`session.quotes`, seen in one run) rather than from the module binding
 * `client` (named in another): the path follows whichever referrer the walk met first.
 */
const INSTANCE_PATH_GAPS: ReadonlyMap<string, {index: number; why: string}> = new Map([
  ['quote-stream-stale-session.mjs', {index: 0, why: 'the twin may be named from the walk\'s last variable instead of the module binding'}],
])

/** Bug shapes the heap route does not name yet (reported as todo, not hidden). */
const NOT_YET: ReadonlySet<WildProgram['bug']> = new Set([])

function describeFindings(dump: StacksDump): string {
  return JSON.stringify(
    {findings: dump.findings, groups: dump.groups.map((g) => [g.count, g.state, g.kind, g.stack.map((f) => `${f.functionName}:${f.line}`), g.holder])},
    null,
    1,
  ).slice(0, 6000)
}

describe('stacks --heap on the wild corpus', () => {
  for (const program of programs) {
    const todo = NOT_YET.has(program.bug) ? `issue 9: ${program.bug} is not named yet` : undefined
    it(`${program.file} (${program.truth}, bug: ${program.bug})`, {timeout: TEST_TIMEOUT_MS, todo}, async (t) => {
      const started = await startProgram(program, t)
      if (!started) return
      try {
        const {dump} = await dumpOf(program, started.inspectPort, ['--json'])
        if (program.bug === 'none') {
          const alarms = dump.findings.filter((f) => f.severity === 'error' || f.severity === 'warning')
          assert.deepEqual(alarms, [], `${program.file} is ${program.truth}: no error or warning expected\n${describeFindings(dump)}`)
          return
        }
        const kind = EXPECTED_KIND[program.bug]
        const errors = dump.findings.filter((f) => f.severity === 'error' && f.kind === kind)
        assert.ok(errors.length > 0, `${program.file}: expected an error ${kind}\n${describeFindings(dump)}`)
        const sites = errors.flatMap((f) => f.evidence.sites ?? []).map(plainPath)
        for (const wanted of siteNames(program)) {
          assert.ok(
            sites.some((site) => site.startsWith(wanted)),
            `${program.file}: the ${kind} finding does not name ${wanted}\n${describeFindings(dump)}`,
          )
        }
        if (program.bug === 'split-queue') {
          const finding = errors[0]
          const instances = finding.evidence.instances as Array<{side: string; paths: string[]}>
          assert.equal(instances.length, 2, describeFindings(dump))
          assert.notEqual(finding.evidence.sendObjectHeapId, finding.evidence.receiveObjectHeapId)
          // the header's sender-side and receiver-side paths, each among the paths of its instance
          program.instances.forEach((wanted, side) => {
            assert.ok(instances[side]!.paths.includes(wanted), `${program.file}: ${instances[side]!.side} instance is not reached by ${wanted}\n${describeFindings(dump)}`)
          })
        }
        if (program.bug === 'orphan-emitter') {
          // Both instances by the property paths of the header: the one the program emits on, then the awaited one.
          const instances = errors[0].evidence.instances as Array<{side: string; paths: string[]}>
          assert.deepEqual(instances.map((i) => i.side), ['emit', 'wait'], describeFindings(dump))
          const checkPath = (path: string, index: number) => assert.ok(instances[index].paths.includes(path), `${program.file}: instance ${path} not named\n${describeFindings(dump)}`)
          const gap = INSTANCE_PATH_GAPS.get(program.file)
          program.instances.forEach((path, index) => {
            if (gap?.index !== index) checkPath(path, index)
          })
          // A path the finding does not name yet: reported as a todo subtest, not hidden.
          if (gap) await t.test(`${program.file}: ${program.instances[gap.index]} named`, {todo: gap.why}, () => checkPath(program.instances[gap.index]!, gap.index))
        }
        if (program.bug === 'stalled-stream-write') {
          // The awaited stream's state is shown: a write in flight somewhere down its pipes, with no progress.
          const emitter = dump.emitters?.find((e) => e.taskIds.some((id) => errors[0].evidence.taskIds?.includes(id)))
          assert.ok(emitter?.streams?.some((s) => s.state?.writing === true && s.moved === false), describeFindings(dump))
        }
      } finally {
        await started.stop()
      }
    })
  }

  const crowd = programs.find((p) => p.file.startsWith('plimit-feed-poller'))
  it('prints thousands of legitimately waiting tasks in at most 200 lines', {timeout: TEST_TIMEOUT_MS}, async (t) => {
    assert.ok(crowd, 'the corpus has no plimit-feed-poller program (renamed?): this test needs a program with thousands of waiting tasks')
    const started = await startWildProgram(crowd!, {t})
    try {
      const {text} = await dumpOf(crowd!, started.inspectPort)
      const taskCount = Number(/: (\d+) tasks waiting/.exec(text)?.[1] ?? 0)
      assert.ok(taskCount >= 3000, `expected >= 3000 tasks: ${text.slice(0, 2000)}`)
      const lines = text.trimEnd().split('\n').length
      assert.ok(lines <= 200, `${lines} lines for ${taskCount} tasks:\n${text.slice(0, 4000)}`)
    } finally {
      await started.stop()
    }
  })
})
