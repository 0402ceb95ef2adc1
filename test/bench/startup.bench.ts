// CLI start-up: wall time of `ferrydiag --version`, of every command's --help and of a bad flag (each in a
// fresh process, as a user runs them), beside a bare `node` and the load time of each heavy dependency.
// The goal is well under 0.3 s on an idle machine; run with nothing else busy, since the figures are wall
// times. Run: npm run bench -- startup   (STARTUP_ROUNDS=N for more rounds; default 5).
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {fileURLToPath} from 'node:url'
import Table from 'cli-table3'

const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
const MANIFEST = fileURLToPath(new URL('../../../oclif.manifest.json', import.meta.url))
const ROUNDS = Number(process.env.STARTUP_ROUNDS ?? 5)

/** Wall ms of one run of `node args`, checked to end with the expected status. */
function timeRun(args: readonly string[], expectOk: boolean): number {
  const started = performance.now()
  const result = spawnSync(process.execPath, args, {encoding: 'utf8'})
  const ms = performance.now() - started
  if ((result.status === 0) !== expectOk) {
    throw new Error(`node ${args.join(' ')} exited ${result.status}: ${result.stderr.split('\n')[0]}`)
  }
  return ms
}

function summarise(samples: number[]): {min: number; median: number} {
  const sorted = [...samples].sort((a, b) => a - b)
  return {min: sorted[0]!, median: sorted[Math.floor(sorted.length / 2)]!}
}

const commands = Object.keys((JSON.parse(readFileSync(MANIFEST, 'utf8')) as {commands: Record<string, unknown>}).commands)
  .map((id) => id.split(':'))
  .sort()

const cases: Array<{label: string; args: string[]; ok: boolean}> = [
  {label: 'node -e 0 (baseline)', args: ['-e', '0'], ok: true},
  ...['mysql2/promise', '@vlasky/zongji', 'chrome-remote-interface', 'cli-table3', '@oclif/core'].map((name) => ({
    label: `node: import('${name}')`,
    args: ['--input-type=module', '-e', `await import(${JSON.stringify(name)})`],
    ok: true,
  })),
  {label: 'ferrydiag --version', args: [RUN_JS, '--version'], ok: true},
  ...commands.map((words) => ({label: `ferrydiag ${words.join(' ')} --help`, args: [RUN_JS, ...words, '--help'], ok: true})),
  ...commands.map((words) => ({label: `ferrydiag ${words.join(' ')} --no-such-flag`, args: [RUN_JS, ...words, '--no-such-flag'], ok: false})),
]

const table = new Table({head: ['run', 'min ms', 'median ms'], colAligns: ['left', 'right', 'right']})
for (const c of cases) {
  const samples: number[] = []
  for (let i = 0; i < ROUNDS; i++) samples.push(timeRun(c.args, c.ok))
  const {min, median} = summarise(samples)
  table.push([c.label, min.toFixed(0), median.toFixed(0)])
}
console.log(table.toString())
console.log(`${ROUNDS} round(s) each, node ${process.version}; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')} (wall times grow with it)`)
