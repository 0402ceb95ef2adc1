// The runner behind `npm test`: checks for (or, as root, installs) MariaDB once, then runs every
// compiled dist/test/**/*.test.js in one `node --test` with one file at a time.
// `npm test -- channel attach` runs only files whose path contains 'channel' or 'attach'.

import {spawn} from 'node:child_process'
import {readdirSync} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'
import {ensureMariaDbInstalled} from './helpers/mariadb.js'

const testDir = dirname(fileURLToPath(import.meta.url)) // dist/test
// Benchmarks and helpers are not tests, even if a file there ends in .test.js.
const SKIPPED_DIRS = new Set(['bench', 'helpers'])

function findTestFiles(dir: string): string[] {
  const files: string[] = []
  for (const entry of readdirSync(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (dir === testDir && SKIPPED_DIRS.has(entry.name)) continue
      files.push(...findTestFiles(path))
    } else if (entry.isFile() && entry.name.endsWith('.test.js')) {
      files.push(path)
    }
  }
  return files.sort()
}

const filters = process.argv.slice(2).filter((arg) => !arg.startsWith('-'))
const all = findTestFiles(testDir)
const files = filters.length === 0 ? all : all.filter((file) => filters.some((f) => relative(testDir, file).includes(f)))
if (files.length === 0) {
  console.error(`test/run: no test files under ${relative(process.cwd(), testDir) || '.'} match ${filters.map((f) => `'${f}'`).join(', ')}`)
  process.exit(1)
}

const db = ensureMariaDbInstalled({log: (line) => console.log(`test/run: ${line}`)})
if (db.status === 'missing') {
  console.log(`test/run: MariaDB unavailable (${db.reason}); database tests will ${process.env.CI ? 'FAIL (CI is set)' : 'be skipped'}`)
} else {
  console.log(`test/run: MariaDB ${db.status === 'installed' ? 'installed' : 'found'}: ${db.serverBinary} (${db.version ?? 'version unknown'})`)
}
console.log(`test/run: ${files.length} test file${files.length === 1 ? '' : 's'}${filters.length > 0 ? ` matching ${filters.join(', ')}` : ''}`)

// spec to a terminal for people; TAP otherwise (its summary lines are what CI logs read).
const reporter = process.stdout.isTTY ? ['--test-reporter=spec'] : []
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...reporter, ...files], {stdio: 'inherit'})
// Forward an interrupt so the files' own cleanup runs before we exit.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => {
  process.exit(code ?? (signal === null ? 1 : 128 + (signal === 'SIGINT' ? 2 : 15)))
})
