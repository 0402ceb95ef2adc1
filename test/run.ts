// The runner behind `npm test`: checks for (or, as root, installs) MariaDB once, then runs every
// compiled dist/test/**/*.test.js, each in its own `node --test`, up to --jobs files at a time, and
// ends with each file's wall time (slowest first) and one summary of all files.
//   npm test -- channel attach     only files whose path contains 'channel' or 'attach'
//   npm test -- --jobs=1           one file at a time (default: FERRYDIAG_TEST_JOBS, else 2)
// A second file starts only while the machine has a core to spare (1-minute load average below the
// number of cores): on a machine already busy with other work, files run one at a time.
// A test file whose source has a line `// test/run: alone` never runs beside another file (for tests
// whose figures depend on having the CPU, e.g. simulators whose timers would run late); those run first.
// Longest files start first: each run records its files' wall times in dist/test/times.json; before
// the first run (a fresh clone) test/times.json, a copy from a full run, gives the order; a file with no
// record counts as long. Refresh that copy now and then: `cp dist/test/times.json test/times.json`.

import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {availableParallelism, loadavg} from 'node:os'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'
import {ensureMariaDbInstalled} from './helpers/mariadb.js'

const testDir = dirname(fileURLToPath(import.meta.url)) // dist/test
const timesFile = join(testDir, 'times.json')
const seedTimesFile = join(testDir, '..', '..', 'test', 'times.json')
// Benchmarks and helpers are not tests, even if a file there ends in .test.js.
const SKIPPED_DIRS = new Set(['bench', 'helpers'])
const ALONE_MARKER = /^\/\/ test\/run: alone\b/m
const COUNTERS = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'] as const
type Counter = (typeof COUNTERS)[number]

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

function parseJobs(argv: string[]): number {
  let value = process.env.FERRYDIAG_TEST_JOBS ?? '2'
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg.startsWith('--jobs=')) value = arg.slice('--jobs='.length)
    else if (arg === '--jobs' || arg === '-j') value = argv[++i] ?? ''
  }
  const jobs = Number(value)
  if (!Number.isInteger(jobs) || jobs < 1) {
    console.error(`test/run: --jobs (or FERRYDIAG_TEST_JOBS) must be a whole number >= 1, got '${value}'`)
    process.exit(1)
  }
  return jobs
}

function readTimes(): Record<string, number> {
  for (const file of [timesFile, seedTimesFile]) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>
    } catch {
      // not there yet (or unreadable): try the next, else no order
    }
  }
  return {}
}

interface FileResult {
  name: string
  wallMs: number
  exit: string
  counts: Partial<Record<Counter, number>>
}

// Counters from the reporter's closing summary: TAP (`# pass 3`) or spec (`ℹ pass 3`).
function readCounts(output: string): Partial<Record<Counter, number>> {
  const counts: Partial<Record<Counter, number>> = {}
  // eslint-disable-next-line no-control-regex
  const plain = output.replace(/\u001B\[[0-9;]*m/g, '')
  for (const match of plain.matchAll(/^(?:# |ℹ )(tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) {
    counts[match[1] as Counter] = Number(match[2])
  }
  return counts
}

const argv = process.argv.slice(2)
const jobs = parseJobs(argv)
const filters = argv.filter((arg, i) => !arg.startsWith('-') && argv[i - 1] !== '--jobs' && argv[i - 1] !== '-j')
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

const previous = readTimes()
const name = (file: string): string => relative(testDir, file)
const alone = new Set(files.filter((file) => ALONE_MARKER.test(readFileSync(file, 'utf8'))))
// Files that run alone first, one by one; then the rest longest first (unknown counts as longest), so
// that the last file to start is a short one.
const queue = [...files].sort(
  (a, b) => Number(alone.has(b)) - Number(alone.has(a)) || (previous[name(b)] ?? Infinity) - (previous[name(a)] ?? Infinity) || a.localeCompare(b),
)
const loadAtStart = loadavg()[0]
console.log(
  `test/run: ${files.length} test file${files.length === 1 ? '' : 's'}${filters.length > 0 ? ` matching ${filters.join(', ')}` : ''}, ` +
    `up to ${jobs} at a time${alone.size > 0 ? ` (${alone.size} alone: ${[...alone].map(name).join(', ')})` : ''}; load average ${loadAtStart.toFixed(2)}`,
)

// spec to a terminal for people; TAP otherwise (its summary lines are what CI logs read).
const tty = process.stdout.isTTY
const reporter = tty ? ['--test-reporter=spec'] : []
const running = new Map<string, ChildProcess>()
const results: FileResult[] = []
let interrupted: NodeJS.Signals | undefined
/** Seconds a worker waited for a core to spare before starting a file beside another. */
let besideBusy = 0

// One file in its own `node --test`. With one job its output streams through; with more it is held
// and printed whole when the file ends, so files never interleave.
function runFile(file: string): Promise<FileResult> {
  const started = performance.now()
  const stream = jobs === 1
  const child = spawn(process.execPath, ['--test', ...reporter, file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: tty ? {...process.env, FORCE_COLOR: process.env.FORCE_COLOR ?? '1'} : process.env,
  })
  running.set(file, child)
  let output = ''
  for (const pipe of [child.stdout!, child.stderr!]) {
    pipe.setEncoding('utf8')
    pipe.on('data', (chunk: string) => {
      output += chunk
      if (stream) (pipe === child.stdout ? process.stdout : process.stderr).write(chunk)
    })
  }
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      running.delete(file)
      const wallMs = performance.now() - started
      if (!stream) process.stdout.write(`# test/run: ${name(file)}\n${output}${output.endsWith('\n') ? '' : '\n'}`)
      resolve({name: name(file), wallMs, exit: signal ?? String(code), counts: readCounts(output)})
    })
  })
}

async function worker(): Promise<void> {
  while (queue.length > 0 && interrupted === undefined) {
    // Files start in queue order. An alone file waits for the others to end; nothing starts beside it.
    const busy = running.size > 0 && loadavg()[0] >= availableParallelism()
    if ((alone.has(queue[0]) && running.size > 0) || busy || [...running.keys()].some((file) => alone.has(file))) {
      if (busy) besideBusy++
      await new Promise((resolve) => setTimeout(resolve, busy ? 1000 : 100))
      continue
    }
    const file = queue.shift()!
    results.push(await runFile(file))
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // Forward an interrupt so the files' own cleanup runs; start nothing more.
  process.on(signal, () => {
    interrupted = signal
    for (const child of running.values()) child.kill(signal)
  })
}

const startedAll = performance.now()
await Promise.all(Array.from({length: Math.min(jobs, files.length)}, () => worker()))
const wallMs = performance.now() - startedAll

// Record this run's times for the next run's order (kept for files not run this time).
const times = {...previous}
for (const result of results) times[result.name] = Math.round(result.wallMs)
if (existsSync(testDir)) writeFileSync(timesFile, `${JSON.stringify(times, null, 2)}\n`)

const failedFiles = results.filter((r) => r.exit !== '0' || (r.counts.fail ?? 0) > 0 || r.counts.tests === undefined)
console.log(`\n# test/run: wall time per file (slowest first), ${jobs} at a time; load average ${loadAtStart.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end`)
for (const r of [...results].sort((a, b) => b.wallMs - a.wallMs)) {
  const flag = failedFiles.includes(r) ? `  FAILED (exit ${r.exit})` : ''
  console.log(`# ${(r.wallMs / 1000).toFixed(1).padStart(7)} s  ${r.name}${alone.has(join(testDir, r.name)) ? ' (alone)' : ''}${flag}`)
}
const sumMs = results.reduce((sum, r) => sum + r.wallMs, 0)
console.log(
  `# test/run: ${results.length} files in ${(wallMs / 1000).toFixed(1)} s (their times add up to ${(sumMs / 1000).toFixed(1)} s)` +
    (besideBusy > 0 ? `; a second file waited ${besideBusy} s in all for the load average to fall below ${availableParallelism()}` : ''),
)
if (results.length < files.length) console.log(`# test/run: ${files.length - results.length} files not run (interrupted by ${interrupted})`)
for (const r of failedFiles) console.log(`# test/run: FAILED ${r.name}${r.counts.tests === undefined ? ' (no summary: the file crashed or was killed)' : ''}`)
// One summary of every file, in the reporter's own summary format, for CI logs to read.
for (const counter of COUNTERS) console.log(`# ${counter} ${results.reduce((sum, r) => sum + (r.counts[counter] ?? 0), 0)}`)
console.log(`# duration_ms ${wallMs.toFixed(3)}`)

process.exitCode = interrupted !== undefined ? 128 + (interrupted === 'SIGINT' ? 2 : 15) : failedFiles.length > 0 || results.length < files.length ? 1 : 0
