// The source mapper on real tsc output (dist/ next to its .js.map) and on hand-written cases: inline
// maps, files without a map, positions the map does not cover, and urls that are not local files.

import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {after, describe, it} from 'node:test'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {createSourceMapper} from '../src/attach/source-maps.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))

/** 1-based line and column of the first occurrence of `needle` in a file. */
function locate(file: string, needle: string): {line: number; column: number} {
  const lines = readFileSync(file, 'utf8').split('\n')
  const index = lines.findIndex((line) => line.includes(needle))
  assert.ok(index >= 0, `${needle} not in ${file}`)
  return {line: index + 1, column: lines[index]!.indexOf(needle) + 1}
}

describe('createSourceMapper', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferrydiag-maps-'))
  after(() => rmSync(dir, {recursive: true, force: true}))

  it("maps a compiled await site to its TypeScript line and column (tsc's .js.map next to the file)", () => {
    const js = path.join(REPO, 'dist', 'fixtures', 'pipeline', 'binlog-streamer.js')
    const ts = path.join(REPO, 'fixtures', 'pipeline', 'binlog-streamer.ts')
    const needle = 'buffer.send(event'
    const compiled = locate(js, needle)
    const original = locate(ts, needle)
    const mapper = createSourceMapper()
    const frame = {functionName: 'BinlogStreamer.run', url: pathToFileURL(js).href, ...compiled}
    const mapped = mapper.mapFrame(frame)
    assert.deepEqual(mapped, {functionName: 'BinlogStreamer.run', url: pathToFileURL(ts).href, ...original})
    assert.deepEqual(frame.url, pathToFileURL(js).href, 'input frame not modified')
    // A plain absolute path works too, and the map is read once.
    assert.equal(mapper.mapFrame({...frame, url: js}).url, pathToFileURL(ts).href)
    assert.equal(mapper.stats.filesWithMap, 1)
    assert.equal(mapper.stats.framesMapped, 2)
  })

  it('keeps how a line was found and maps each await candidate', () => {
    const js = path.join(REPO, 'dist', 'fixtures', 'pipeline', 'binlog-streamer.js')
    const ts = path.join(REPO, 'fixtures', 'pipeline', 'binlog-streamer.ts')
    const needles = ['await this.readNext(signal)', 'await buffer.send(event']
    const [first, second] = needles.map((needle) => locate(js, needle))
    const mapped = createSourceMapper().mapFrame({
      functionName: 'BinlogStreamer.run',
      url: pathToFileURL(js).href,
      ...first!,
      lineOf: 'await-candidates',
      awaitCandidates: [first!, second!],
    })
    assert.equal(mapped.lineOf, 'await-candidates')
    assert.deepEqual(mapped.awaitCandidates, needles.map((needle) => locate(ts, needle)))
    assert.deepEqual({line: mapped.line, column: mapped.column}, locate(ts, needles[0]!))
  })

  it('reads an inline base64 map and resolves sources against sourceRoot', () => {
    const file = path.join(dir, 'inline.js')
    // One mapping: generated line 1 column 0 -> source 0, line 5 (0-based 4), column 2.
    const map = {version: 3, sources: ['inline.ts'], sourceRoot: 'src', names: [], mappings: 'AAIE'}
    const encoded = Buffer.from(JSON.stringify(map)).toString('base64')
    writeFileSync(file, `await x\n//# sourceMappingURL=data:application/json;base64,${encoded}\n`)
    const mapped = createSourceMapper().mapFrame({functionName: 'f', url: pathToFileURL(file).href, line: 1, column: 1})
    assert.deepEqual(mapped, {functionName: 'f', url: pathToFileURL(path.join(dir, 'src', 'inline.ts')).href, line: 5, column: 3})
  })

  it('leaves frames alone when there is nothing to map them with', () => {
    const plain = path.join(dir, 'plain.js')
    writeFileSync(plain, 'await x\n')
    const broken = path.join(dir, 'broken.js')
    writeFileSync(broken, 'await x\n')
    writeFileSync(`${broken}.map`, '{not json')
    const mapper = createSourceMapper()
    const frames = [
      {functionName: 'a', url: pathToFileURL(plain).href, line: 1, column: 1}, // no map
      {functionName: 'b', url: pathToFileURL(broken).href, line: 1, column: 1}, // unreadable map
      {functionName: 'c', url: pathToFileURL(path.join(dir, 'missing.js')).href, line: 1, column: 1},
      {functionName: 'd', url: 'node:internal/streams/writable', line: 10, column: 3},
      {functionName: 'Promise.all', url: 'index 1', line: 0, column: 0},
      {functionName: 'e', url: 'https://example.com/app.js', line: 1, column: 1},
    ]
    for (const frame of frames) assert.deepEqual(mapper.mapFrame(frame), frame)
    assert.equal(mapper.stats.framesMapped, 0)
  })

  it('does not map a line the map has no entry for (findEntry would answer with an earlier line)', () => {
    const js = path.join(REPO, 'dist', 'fixtures', 'pipeline', 'binlog-streamer.js')
    const lineCount = readFileSync(js, 'utf8').split('\n').length
    const frame = {functionName: 'x', url: pathToFileURL(js).href, line: lineCount + 50, column: 1}
    assert.deepEqual(createSourceMapper().mapFrame(frame), frame)
  })
})
