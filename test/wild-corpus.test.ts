// The wild corpus keeps its contract (fixtures/wild/README.md): every header parses, every stuck-at line
// is an await, no program leans on this repository, and every in-process program starts, prints its
// ready line under the inspector and ends on SIGTERM.

import assert from 'node:assert/strict'
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {after, describe, it} from 'node:test'
import {killAllTargets} from './helpers/child-process.js'
import {listWildPrograms, parseWildHeader, startWildProgram, substituteWildArgs, WILD_DIR} from './helpers/wild.js'

const programs = listWildPrograms()

after(() => killAllTargets())

describe('wild corpus headers', () => {
  it('has programs of every truth and every bug shape', () => {
    assert.ok(programs.length >= 15, `only ${programs.length} programs`)
    const truths = new Set(programs.map((p) => p.truth))
    const bugs = new Set(programs.map((p) => p.bug))
    for (const truth of ['healthy', 'slow', 'stuck']) assert.ok(truths.has(truth as never), `no program with truth ${truth}`)
    for (const bug of ['lost-resolver', 'split-queue', 'stalled-stream-write', 'orphan-emitter']) {
      assert.ok(bugs.has(bug as never), `no program with bug ${bug}`)
    }
  })

  it('rejects headers that break the contract', () => {
    const base = ['/* ferrydiag-wild', ' * about: x', ' * libraries: none', ' * ready: ^go']
    const header = (...lines: string[]): string => [...base, ...lines, ' */', ''].join('\n')
    assert.throws(() => parseWildHeader('a.mjs', 'console.log(1)'), /does not start with/)
    assert.throws(() => parseWildHeader('a.mjs', header(' * truth: stuck', ' * bug: none')), /contradicts/)
    assert.throws(() => parseWildHeader('a.mjs', header(' * truth: stuck', ' * bug: lost-resolver')), /needs stuck-at/)
    assert.throws(
      () => parseWildHeader('a.mjs', header(' * truth: stuck', ' * bug: split-queue', ' * stuck-at: a.mjs:3, a.mjs:4')),
      /needs instances/,
    )
    assert.throws(() => parseWildHeader('a.mjs', header(' * truth: sluggish', ' * bug: none')), /not one of/)
    const ok = parseWildHeader(
      'a.mjs',
      header(' * truth: stuck', ' * bug: orphan-emitter', ' * stuck-at: a.mjs:12', ' * instances: x.old, y.bus', ' * args: --source ${SOURCE}', ' * colour: blue'),
    )
    assert.deepEqual(ok.stuckAt.map((s) => `${s.file}:${s.line}`), ['a.mjs:12'])
    assert.deepEqual(ok.instances, ['x.old', 'y.bus'])
    assert.deepEqual(ok.libraries, [])
    assert.equal(ok.header.colour, 'blue')
    assert.deepEqual(substituteWildArgs(ok, {source: 'mysql://u@h:1/d'}), ['--source', 'mysql://u@h:1/d'])
    assert.throws(() => substituteWildArgs(ok, {}), /needs a source DSN/)
  })

  for (const program of programs) {
    it(`${program.file}: stuck-at lines are awaits, and it imports nothing of ferrydiag`, () => {
      assert.ok(program.about.length > 20, 'about is a sentence')
      for (const site of program.stuckAt) {
        assert.ok(existsSync(site.path), `${site.file} does not exist`)
        const lines = readFileSync(site.path, 'utf8').split('\n')
        assert.ok(site.line >= 1 && site.line <= lines.length, `${site.file}:${site.line} is past the end`)
        assert.match(lines[site.line - 1], /\bawait\b/, `${site.file}:${site.line} is not an await: ${lines[site.line - 1].trim()}`)
      }
      const dir = path.dirname(program.path)
      const text = readFileSync(program.path, 'utf8')
      const body = text.slice(text.indexOf('*/'))
      assert.doesNotMatch(body, /ferrydiag/i)
      for (const [, spec] of body.matchAll(/(?:from\s+|require\(\s*|import\(\s*)['"]([^'"]+)['"]/g)) {
        if (spec.startsWith('.')) {
          const resolved = path.resolve(dir, spec)
          assert.ok(resolved.startsWith(WILD_DIR + path.sep), `${program.file} imports ${spec} from outside fixtures/wild`)
        }
      }
    })
  }
})

// The programs are independent (each its own process and inspector port): four start at a time.
describe('wild corpus programs start under the inspector', {concurrency: 4}, () => {
  for (const program of programs.filter((p) => p.needs === undefined)) {
    it(`${program.file} prints its ready line and ends on SIGTERM`, {timeout: 60_000}, async (t) => {
      const started = await startWildProgram(program, {t})
      assert.ok(started.inspectPort > 0)
      const lines = started.stdout().split('\n')
      assert.ok(lines.some((line) => program.ready.test(line)), `no line matches ${program.ready}: ${started.stdout()}`)
      // Alive once ready: a stuck program is kept running by something else, as in production.
      await new Promise((resolve) => setTimeout(resolve, 300))
      assert.equal(started.exit(), null, `exited early: ${started.stderr()}`)
      await started.stop()
      const exit = started.exit()
      assert.ok(exit !== null, 'still running after stop()')
      assert.ok(exit.signal === 'SIGTERM' || exit.code === 0, `ended by ${exit.signal ?? exit.code} instead of its SIGTERM handling`)
    })
  }
})
