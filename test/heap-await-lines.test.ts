// Exact await lines on the heap route (issue 9, item 6): on the stuck programs of the wild corpus, every
// frame of a task parked at a header's stuck-at line, library frames included, points at an `await`
// in the source file itself (read here, independently of the inspector), never at a function header.
// On busy programs (tasks that finish between the snapshot and any lookup), every frame of every task
// is an await line too, or a list of candidate awaits each of which is one; what the tool says it
// resolved is what is checked, so a busy machine changes which route a line takes, not the verdict.

import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {after, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'
import CDP from 'chrome-remote-interface'
import {collectHeapTasks, type HeapTaskRecord} from '../src/attach/heap-tasks.js'
import type {StackFrame} from '../src/model/snapshot.js'
import {killAllTargets} from './helpers/child-process.js'
import {testTimeoutMs} from './helpers/run-node.js'
import {listWildPrograms, startWildProgram} from './helpers/wild.js'

after(() => killAllTargets())

const localPath = (url: string): string | null => (url.startsWith('file://') ? fileURLToPath(url) : url.startsWith('/') ? url : null)

/** The source text at a frame's 1-based line and column. */
function textAt(frame: Pick<StackFrame, 'url' | 'line' | 'column'>): string {
  const file = localPath(frame.url)
  assert.ok(file, `not a local file: ${frame.url}`)
  const line = readFileSync(file, 'utf8').split('\n')[frame.line - 1] ?? ''
  return line.slice(frame.column - 1)
}

/** At an `await` (or `yield`), or inside the head of a `for await (…)` loop (V8 points at its binding). */
function isAwait(frame: Pick<StackFrame, 'url' | 'line' | 'column'>): boolean {
  const rest = textAt(frame)
  if (/^(await|yield)\b/.test(rest)) return true
  const file = localPath(frame.url)!
  const line = readFileSync(file, 'utf8').split('\n')[frame.line - 1] ?? ''
  const loop = /\bfor\s+await\s*\(/.exec(line)
  return loop !== null && loop.index < frame.column - 1 && !line.slice(loop.index, frame.column - 1).includes(')')
}

const show = (task: HeapTaskRecord): string =>
  task.stack.map((f, i) => `${f.functionName} ${f.url}:${f.line}:${f.column} [${task.frames[i]!.siteSource}] ${localPath(f.url) ? JSON.stringify(textAt(f).slice(0, 40)) : ''}`).join('\n  ')

/** Busy programs: their tasks resume and finish within milliseconds, long before a lookup can reach them. */
const BUSY = ['geocode-two-queues.mjs', 'pqueue-throttled-import.mjs', 'http-ingest-loop.mjs']

describe('heap route: exact await lines on the wild corpus', () => {
  const stuck = listWildPrograms().filter((p) => p.truth === 'stuck' && p.needs === undefined)
  for (const program of stuck) {
    // the orphaned-emitter shape's waiting task is not always recovered yet (issue 9, item 4: another area)
    it(`${program.file}: every frame of the tasks at ${program.header['stuck-at']} is an await`, {timeout: testTimeoutMs(120_000)}, async (t) => {
      const started = await startWildProgram(program, {t})
      const client = await CDP({host: '127.0.0.1', port: started.inspectPort})
      try {
        const result = await collectHeapTasks(client, {observeMs: 0})
        const atSite = (task: HeapTaskRecord): boolean =>
          task.stack.some((f) => program.stuckAt.some((site) => localPath(f.url) === site.path && f.line === site.line))
        const parked = result.tasks.filter(atSite)
        const all = result.tasks.map(show).join('\n')
        for (const site of program.stuckAt) {
          assert.ok(parked.some((task) => task.stack.some((f) => localPath(f.url) === site.path && f.line === site.line)), `no task at ${site.file}:${site.line}\n  ${all}`)
        }
        for (const task of parked) {
          task.stack.forEach((frame, depth) => {
            if (localPath(frame.url) === null) return // node: internals and the like
            assert.notEqual(task.frames[depth]!.siteSource, 'function-definition', `frame ${depth} shows the function's header\n  ${show(task)}`)
            assert.ok(isAwait(frame), `frame ${depth} is not at an await\n  ${show(task)}`)
          })
        }
      } finally {
        await client.close()
        await started.stop()
      }
    })
  }

  for (const file of BUSY) {
    it(`${file} (busy): every frame of every task is at an await, library frames included`, {timeout: testTimeoutMs(120_000)}, async (t) => {
      const program = listWildPrograms().find((p) => p.file === file)
      assert.ok(program, `fixtures/wild/${file} is missing`)
      const started = await startWildProgram(program, {t})
      const client = await CDP({host: '127.0.0.1', port: started.inspectPort})
      try {
        const result = await collectHeapTasks(client, {observeMs: 0})
        const all = result.tasks.map(show).join('\n  ')
        let checked = 0
        for (const task of result.tasks) {
          task.stack.forEach((frame, depth) => {
            if (localPath(frame.url) === null) return // node: internals and the like
            checked++
            const source = task.frames[depth]!.siteSource
            assert.notEqual(source, 'function-definition', `frame ${depth} shows the function's header\n  ${show(task)}`)
            assert.equal(frame.lineOf, ['generator-location', 'representative'].includes(source) ? undefined : source, `${source}: ${JSON.stringify(frame)}`)
            if (frame.lineOf === 'await-candidates') {
              assert.ok(frame.awaitCandidates && frame.awaitCandidates.length > 1, JSON.stringify(frame))
              assert.deepEqual(frame.awaitCandidates[0], {line: frame.line, column: frame.column})
              for (const site of frame.awaitCandidates) assert.ok(isAwait({url: frame.url, ...site}), `candidate ${site.line}:${site.column} is not an await\n  ${show(task)}`)
            } else {
              assert.ok(isAwait(frame), `frame ${depth} is not at an await\n  ${show(task)}`)
            }
          })
        }
        assert.ok(checked > 0, `no frame in a local file\n  ${all}`)
        // p-queue's own frames (its task runner, onSizeLessThan) are among them
        if (file === 'pqueue-throttled-import.mjs') assert.ok(result.tasks.some((task) => task.stack.some((f) => f.url.includes('/node_modules/p-queue/'))), all)
        assert.equal(result.stats.framesBySource['function-definition'] ?? 0, 0, JSON.stringify(result.stats.framesBySource))
      } finally {
        await client.close()
        await started.stop()
      }
    })
  }

  it('a library frame (p-queue, in node_modules) shows its await line', {timeout: testTimeoutMs(120_000)}, async (t) => {
    const program = stuck.find((p) => p.file === 'pqueue-checkpoint-flush.mjs')
    assert.ok(program, 'fixtures/wild/pqueue-checkpoint-flush.mjs is missing')
    const started = await startWildProgram(program, {t})
    const client = await CDP({host: '127.0.0.1', port: started.inspectPort})
    try {
      const result = await collectHeapTasks(client, {observeMs: 0})
      const libraryFrames = result.tasks.flatMap((task) =>
        task.stack.flatMap((frame, depth) => (frame.url.includes('/node_modules/p-queue/') ? [{frame, source: task.frames[depth]!.siteSource}] : [])),
      )
      assert.ok(libraryFrames.length > 0, result.tasks.map(show).join('\n  '))
      for (const {frame, source} of libraryFrames) {
        // read from V8, or from a function with a single await of its own (which needs no lookup)
        assert.ok(source === 'generator-location' || source === 'only-await', `${source}: ${JSON.stringify(frame)}`)
        assert.match(textAt(frame), /^await\b/, JSON.stringify(frame))
      }
    } finally {
      await client.close()
      await started.stop()
    }
  })
})
