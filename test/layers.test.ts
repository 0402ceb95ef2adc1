// Imports run one way: commands over cli/collect, collect over attach/mysql/analyze, analyze and render
// over model, everything over the shared errors.ts and units.ts. A module that imports a layer above
// its own (or beside it, where the layers must stay apart) fails this test with the import named.
import assert from 'node:assert/strict'
import {dirname, relative, resolve, sep} from 'node:path'
import {test} from 'node:test'
import ts from 'typescript'
import {listSourceFiles, relativeImportsOf, REPO_ROOT} from './helpers/source-files.js'

/** What each layer may import besides itself (errors.ts, units.ts and cleanup.ts are single-file layers). */
const ALLOWED: Record<string, readonly string[]> = {
  // A parser in model (GTIDs) throws the one error type.
  model: ['units', 'errors'],
  agent: ['model'],
  runtime: ['agent', 'model'],
  analyze: ['model', 'units', 'errors'],
  render: ['model', 'units'],
  // The attach and mysql sides may call pure analyses (a heap graph walk, a binlog fold); never the reverse.
  attach: ['trace', 'agent', 'analyze', 'model', 'units', 'errors', 'cleanup'],
  mysql: ['trace', 'analyze', 'model', 'units', 'errors', 'cleanup'],
  // collect injects agent code (the probes) as text.
  collect: ['trace', 'agent', 'attach', 'mysql', 'analyze', 'model', 'units', 'errors', 'cleanup'],
  cli: ['trace', 'collect', 'attach', 'mysql', 'render', 'model', 'units', 'errors', 'cleanup'],
  commands: ['trace', 'cli', 'collect', 'attach', 'mysql', 'analyze', 'render', 'model', 'units', 'errors', 'cleanup'],
  errors: [],
  units: [],
  // What to undo when the CLI ends, however it ends: open to the layers that change things.
  cleanup: ['errors', 'trace'],
  // Phase lines for tests and operators (FERRYDIAG_TRACE=1).
  trace: [],
}

function layerOf(file: string): string {
  const parts = relative(REPO_ROOT, file).split(sep)
  if (parts[0] === 'commands') return 'commands'
  const second = parts[1] ?? ''
  return parts.length === 2 ? second.replace(/\.c?[jt]s$/, '') : second
}

test('imports in src/ and commands/ only run downward', () => {
  const problems: string[] = []
  const files = listSourceFiles(['src', 'commands'])
  assert.ok(files.length > 40, `found only ${files.length} source files`)
  for (const file of files) {
    const from = layerOf(file)
    const allowed = ALLOWED[from]
    assert.ok(allowed, `${relative(REPO_ROOT, file)}: layer '${from}' is not in the table; add it`)
    for (const spec of relativeImportsOf(file)) {
      const to = layerOf(resolve(dirname(file), spec))
      if (to !== from && !allowed.includes(to)) problems.push(`${relative(REPO_ROOT, file)} (${from}) imports ${spec} (${to})`)
    }
  }
  assert.deepEqual(problems, [], 'upward imports (shared types belong in src/model)')
})
