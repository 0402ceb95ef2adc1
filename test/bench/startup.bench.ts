// CLI start-up: `ferrydiag --version`, `--help`, every command's --help, and every command started with
// a bad flag (its module imported and run() begun: it fails in this.parse, the first line of run()), each
// in a fresh process as a user runs them, beside a bare `node` and the load time of each heavy dependency.
// Per case: wall time (min and median; the target is well under 0.3 s), the child's CPU time (user +
// sys, read from this process's cutime/cstime in /proc, 10 ms ticks; it grows less than wall time when
// other work shares the cores) and how many files Node loaded (NODE_DEBUG=module,esm, one extra run:
// independent of load). Cases alternate round by round, so a change in the machine's load falls on all.
// Run: npm run bench -- startup   (STARTUP_ROUNDS=N rounds, default 10)
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {fileURLToPath} from 'node:url'
import Table from 'cli-table3'

const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
const MANIFEST = fileURLToPath(new URL('../../../oclif.manifest.json', import.meta.url))
const ROUNDS = Number(process.env.STARTUP_ROUNDS ?? 10)
const TARGET_MS = 300

/** CPU ms used so far by this process's reaped children (Linux /proc; undefined elsewhere). */
function childrenCpuMs(): number | undefined {
  try {
    // Fields after the `(comm)`: state is the 1st, cutime the 14th and cstime the 15th, in clock ticks.
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[13]) + Number(fields[14])) * 10 // USER_HZ is 100 on Linux
  } catch {
    return undefined
  }
}

/** Wall and CPU ms of one run of `node args`, checked to end with the expected status. */
function timeRun(args: readonly string[], expectOk: boolean): {wallMs: number; cpuMs: number | undefined} {
  const cpuBefore = childrenCpuMs()
  const started = performance.now()
  const result = spawnSync(process.execPath, args, {encoding: 'utf8'})
  const wallMs = performance.now() - started
  const cpuAfter = childrenCpuMs()
  if ((result.status === 0) !== expectOk) {
    throw new Error(`node ${args.join(' ')} exited ${result.status}: ${result.stderr.split('\n')[0]}`)
  }
  return {wallMs, cpuMs: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore}
}

/** How many distinct files (CommonJS or ESM, not built-ins) one run of `node args` loads. */
function countModules(args: readonly string[]): number {
  const result = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    env: {...process.env, NODE_DEBUG: 'module,esm'},
    maxBuffer: 256 * 1024 * 1024,
  })
  const files = new Set<string>()
  for (const match of result.stderr.matchAll(/^MODULE \d+: load "([^"]+)"/gm)) files.add(match[1]!)
  for (const match of result.stderr.matchAll(/^ESM \d+: Storing (file:\/\/\S+)/gm)) files.add(fileURLToPath(match[1]!))
  return files.size
}

function summarise(samples: number[]): {min: number; median: number} {
  const sorted = [...samples].sort((a, b) => a - b)
  return {min: sorted[0]!, median: sorted[Math.floor(sorted.length / 2)]!}
}

const commands = Object.keys((JSON.parse(readFileSync(MANIFEST, 'utf8')) as {commands: Record<string, unknown>}).commands)
  .map((id) => id.split(':'))
  .sort()

const cases: Array<{label: string; args: string[]; ok: boolean; cli: boolean}> = [
  {label: 'node -e 0 (baseline)', args: ['-e', '0'], ok: true, cli: false},
  ...['mysql2/promise', '@vlasky/zongji', 'chrome-remote-interface', 'cli-table3', '@oclif/core'].map((name) => ({
    label: `node: import('${name}')`,
    args: ['--input-type=module', '-e', `await import(${JSON.stringify(name)})`],
    ok: true,
    cli: false,
  })),
  {label: 'ferrydiag --version', args: [RUN_JS, '--version'], ok: true, cli: true},
  {label: 'ferrydiag --help', args: [RUN_JS, '--help'], ok: true, cli: true},
  ...commands.map((words) => ({label: `ferrydiag ${words.join(' ')} --help`, args: [RUN_JS, ...words, '--help'], ok: true, cli: true})),
  ...commands.map((words) => ({
    label: `ferrydiag ${words.join(' ')} --no-such-flag (run() begun)`,
    args: [RUN_JS, ...words, '--no-such-flag'],
    ok: false,
    cli: true,
  })),
]

const wall = cases.map(() => [] as number[])
const cpu = cases.map(() => [] as number[])
const isTty = process.stderr.isTTY
for (let round = 0; round < ROUNDS; round++) {
  if (isTty) process.stderr.write(`\rround ${round + 1}/${ROUNDS}`)
  cases.forEach((c, i) => {
    const {wallMs, cpuMs} = timeRun(c.args, c.ok)
    wall[i]!.push(wallMs)
    if (cpuMs !== undefined) cpu[i]!.push(cpuMs)
  })
}
if (isTty) process.stderr.write('\r')

const table = new Table({
  head: ['run', 'wall min ms', 'wall median ms', `target ${TARGET_MS} ms`, 'cpu min ms', 'cpu median ms', 'files loaded'],
  colAligns: ['left', 'right', 'right', 'left', 'right', 'right', 'right'],
})
cases.forEach((c, i) => {
  const w = summarise(wall[i]!)
  const c2 = cpu[i]!.length > 0 ? summarise(cpu[i]!) : undefined
  const verdict = !c.cli ? '' : w.median < TARGET_MS ? 'under (median)' : w.min < TARGET_MS ? 'under (min only)' : 'OVER'
  table.push([c.label, w.min.toFixed(0), w.median.toFixed(0), verdict, c2?.min.toFixed(0) ?? '-', c2?.median.toFixed(0) ?? '-', countModules(c.args)])
})
console.log(table.toString())
console.log(
  `${ROUNDS} round(s) each, node ${process.version}; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')} ` +
    '(wall times grow with it; cpu times much less)',
)
