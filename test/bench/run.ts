// `npm run bench`: runs every benchmark file in this folder one after another, each in its own Node
// process so one benchmark's heap and JIT state cannot skew the next. Figures are printed, never asserted.
import {spawnSync} from 'node:child_process'
import {readdirSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const only = process.argv.slice(2)
const all = readdirSync(here).filter((name) => name.endsWith('.bench.js'))
// A word that names a benchmark exactly picks that one (`soak`, not also `signal-soak`); else every
// benchmark whose name contains it.
const picks = (word: string, name: string): boolean =>
  all.some((other) => other === `${word}.bench.js`) ? name === `${word}.bench.js` : name.includes(word)
const files = all.filter((name) => only.length === 0 || only.some((word) => picks(word, name))).sort()

let failed = 0
for (const name of files) {
  process.stdout.write(`\n=== ${name.replace(/\.bench\.js$/, '')} ===\n`)
  const started = performance.now()
  const result = spawnSync(process.execPath, ['--expose-gc', join(here, name)], {stdio: 'inherit'})
  const seconds = ((performance.now() - started) / 1000).toFixed(1)
  if (result.status !== 0) {
    failed++
    process.stdout.write(`(${name} exited with status ${result.status} after ${seconds} s)\n`)
  } else {
    process.stdout.write(`(${seconds} s)\n`)
  }
}

process.exitCode = failed === 0 ? 0 : 1
