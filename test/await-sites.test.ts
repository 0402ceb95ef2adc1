// The source scan behind heap-route await lines (src/analyze/await-sites.ts): each function's own
// awaits, nested functions' awaits left out, strings/templates/regexes/comments not mistaken for code.

import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {scanScript} from '../src/analyze/await-sites.js'

/** 0-based line and column of the first occurrence of `marker` (how V8 records a function's position). */
function at(text: string, marker: string): [number, number] {
  const offset = text.indexOf(marker)
  assert.ok(offset >= 0, marker)
  const before = text.slice(0, offset).split('\n')
  return [before.length - 1, before.at(-1)!.length]
}

const lines = (sites: Array<{line: number}> | null): number[] | null => (sites === null ? null : sites.map((s) => s.line))

const SOURCE = `#!/usr/bin/env node
class WorkQueue {
  #items = []
  async push(item) {
    while (this.#items.length >= 20) {
      await new Promise((resolve) => this.#pushers.push(async () => { await resolve() }))
    }
    const note = \`waiting \${'}'} for \${item.id} /* not a comment */\` // await in a comment
    const re = /await\\/[}{]/g
    return note.match(re)
  }
  async run() {
    for (;;) {
      const records = await this.source.nextChunk()
      if (records.length > 100) await this.queue.onSizeLessThan(50)
      const label = { await: 1, 'x': "await" }.await
    }
  }
  async *lines(stream) {
    for await (const chunk of stream) {
      yield chunk
    }
  }
}
const pending = async (x) =>
  await fetchOne(x)
const sleepy = async () => { items.map(async (i) => await i); return 1 }
export default async function main() {
  await new WorkQueue().run()
}
await main()
`
const T = SOURCE.split('\n').length

describe('await sites from source text', () => {
  const script = scanScript(SOURCE)
  const lineOf = (marker: string): number => SOURCE.split('\n').findIndex((l) => l.includes(marker)) + 1

  it('a method with one await of its own: the nested arrow functions keep theirs', () => {
    assert.deepEqual(lines(script.awaitsOf(...at(SOURCE, '(item) {'))), [lineOf('await new Promise')])
    assert.deepEqual(lines(script.awaitsOf(...at(SOURCE, 'async () => { await resolve'))), [lineOf('await new Promise')])
  })

  it('several awaits: every one, with the names each calls', () => {
    const sites = script.awaitsOf(...at(SOURCE, '() {\n    for (;;)'))!
    assert.deepEqual(lines(sites), [lineOf('nextChunk'), lineOf('onSizeLessThan')])
    assert.deepEqual(sites[1]!.calls, ['onSizeLessThan'])
    assert.ok(sites[0]!.calls.includes('nextChunk'))
    assert.equal(sites[1]!.column, SOURCE.split('\n')[lineOf('onSizeLessThan') - 1]!.indexOf('await') + 1)
  })

  it('an async generator: for await and yield', () => {
    assert.deepEqual(lines(script.awaitsOf(...at(SOURCE, '(stream) {'))), [lineOf('for await'), lineOf('yield chunk')])
  })

  it('arrow functions with an expression body, across a line break', () => {
    assert.deepEqual(lines(script.awaitsOf(...at(SOURCE, 'async (x) =>'))), [lineOf('await fetchOne')])
    assert.deepEqual(lines(script.awaitsOf(...at(SOURCE, 'async () => { items'))), [])
    assert.deepEqual(lines(script.awaitsOf(...at(SOURCE, 'async (i) =>'))), [lineOf('await i)')])
  })

  it('a function declaration and the module body', () => {
    assert.deepEqual(lines(script.awaitsOf(...at(SOURCE, '() {\n  await new WorkQueue'))), [lineOf('await new WorkQueue')])
    assert.deepEqual(lines(script.awaitsOf(0, 0, true)), [T - 1])
  })

  it('no function at a position: null, not a guess', () => {
    assert.equal(script.awaitsOf(...at(SOURCE, 'const note')), null)
  })

  it('text it cannot follow throws rather than guessing', () => {
    assert.throws(() => scanScript('const s = `open ${x}'), SyntaxError)
  })
})
