// Golden text outputs in fixtures/golden/: one comparison for every test file, so a missing golden file
// fails the same way everywhere (it is never written silently; UPDATE_GOLDEN=1 writes or rewrites it).
import assert from 'node:assert/strict'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname} from 'node:path'
import {goldenPath} from './make-snapshot.js'

export const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1'

/** Compares `actual` with fixtures/golden/`fileName`, or (UPDATE_GOLDEN=1) writes it. */
export function assertGolden(fileName: string, actual: string): void {
  const path = goldenPath(fileName)
  if (UPDATE_GOLDEN) {
    mkdirSync(dirname(path), {recursive: true})
    writeFileSync(path, actual)
    return
  }
  assert.ok(existsSync(path), `golden file ${path} is missing: run with UPDATE_GOLDEN=1 to create it`)
  assert.equal(actual, readFileSync(path, 'utf8'), `text output differs from ${path} (UPDATE_GOLDEN=1 to accept, then review the diff)`)
}
