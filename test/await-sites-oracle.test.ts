// The await scan (src/analyze/await-sites.ts) against a real parser: TypeScript's (a devDependency,
// used here as an independent oracle only) on the libraries real pipelines await in (p-queue, fastq,
// async, mysql2, zongji) and on the wild corpus. For every function with an await, yield or for-await
// of its own, the scan must find exactly the same lines, looked up by the position V8 records.

import assert from 'node:assert/strict'
import {readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'
import {describe, it} from 'node:test'
import ts from 'typescript'
import {scanScript} from '../src/analyze/await-sites.js'
import {REPO_ROOT, WILD_DIR} from './helpers/wild.js'

function scripts(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const file = path.join(dir, entry)
    if (statSync(file).isDirectory()) {
      if (entry !== 'node_modules') scripts(file, out)
    } else if (/\.(c|m)?js$/.test(entry) && !entry.endsWith('.min.js')) out.push(file)
  }
  return out
}

/** Per function with awaits of its own: the 0-based position V8 records for it and the 1-based await lines. */
function oracle(file: string, text: string): Array<{line: number; column: number; lines: number[]; name: string}> {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.JS)
  const found: Array<{line: number; column: number; lines: number[]; name: string}> = []
  const lineOf = (pos: number): number => source.getLineAndCharacterOfPosition(pos).line + 1
  const own = (fn: ts.Node): number[] => {
    const lines: number[] = []
    const walk = (node: ts.Node): void => {
      if (node !== fn && ts.isFunctionLike(node)) return
      if (ts.isAwaitExpression(node) || ts.isYieldExpression(node)) lines.push(lineOf(node.getStart(source)))
      if (ts.isForOfStatement(node) && node.awaitModifier) lines.push(lineOf(node.awaitModifier.getStart(source)))
      ts.forEachChild(node, walk)
    }
    ts.forEachChild(fn, walk)
    return lines.sort((a, b) => a - b)
  }
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const lines = own(node)
      const paren = node.getChildren(source).find((c) => c.kind === ts.SyntaxKind.OpenParenToken)
      const at = paren ? paren.getStart(source) : node.parameters[0]?.getStart(source)
      if (lines.length > 0 && at !== undefined) {
        const {line, character} = source.getLineAndCharacterOfPosition(at)
        found.push({line, column: character, lines, name: `${path.basename(file)}:${lineOf(node.getStart(source))}`})
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

describe('await scan agrees with a real parser', () => {
  const roots = ['p-queue', 'fastq', 'async/dist', 'mysql2/lib', '@vlasky/zongji', 'p-limit'].map((p) => path.join(REPO_ROOT, 'node_modules', p))
  const files = [...roots.flatMap((root) => scripts(root)), ...scripts(WILD_DIR)]

  it(`every function with awaits of its own, in ${files.length} library and corpus files`, () => {
    let functions = 0
    const wrong: string[] = []
    for (const file of files) {
      const text = readFileSync(file, 'utf8')
      const scanned = scanScript(text)
      for (const fn of oracle(file, text)) {
        functions++
        const lines = scanned.awaitsOf(fn.line, fn.column)?.map((s) => s.line) ?? null
        if (JSON.stringify(lines) !== JSON.stringify(fn.lines)) wrong.push(`${fn.name}: parser ${fn.lines.join(',')}, scan ${lines?.join(',') ?? 'null'}`)
      }
    }
    assert.ok(functions > 50, `only ${functions} functions with awaits`)
    assert.deepEqual(wrong, [])
  })
})
