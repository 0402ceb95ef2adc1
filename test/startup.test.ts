// CLI start-up stays cheap by construction: `--version` is answered without oclif, in oclif's own words;
// `--help` and `<command> --help` are drawn from oclif.manifest.json without importing any command or
// anything under src/; oclif's engine check (semver) is skipped. Module loads are read from Node's own
// NODE_DEBUG=module,esm trace, so these hold on a busy machine; the times are in `npm run bench -- startup`.

import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, test} from 'node:test'
import {fileURLToPath} from 'node:url'

import {Config} from '@oclif/core'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..') // package root
const RUN_JS = path.join(root, 'bin', 'run.js')
const manifest = JSON.parse(readFileSync(path.join(root, 'oclif.manifest.json'), 'utf8')) as {
  commands: Record<string, {hasDynamicHelp?: boolean; flags: Record<string, {hasDynamicHelp?: boolean}>}>
}
const commandIds = Object.keys(manifest.commands).sort()

interface Traced {
  status: number | null
  stdout: string
  /** Absolute paths of every file module loaded (CommonJS and ESM). */
  modules: Set<string>
}

/** Runs bin/run.js with Node's module-loading trace on, and collects the files it loaded. */
function runTraced(args: readonly string[]): Promise<Traced> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN_JS, ...args], {
      cwd: root,
      env: {...process.env, NODE_DEBUG: 'module,esm', OCLIF_DISABLE_ENGINE_WARNING: undefined},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (status) => {
      const modules = new Set<string>()
      for (const match of stderr.matchAll(/^MODULE \d+: load "([^"]+)"/gm)) modules.add(match[1]!)
      for (const match of stderr.matchAll(/^ESM \d+: Storing (file:\/\/\S+)/gm)) modules.add(fileURLToPath(match[1]!))
      resolve({status, stdout, modules})
    })
  })
}

const ours = (modules: Set<string>): string[] =>
  [...modules].filter((file) => file.startsWith(path.join(root, 'dist') + path.sep)).map((file) => path.relative(root, file))

describe('CLI start-up', {timeout: 180_000}, () => {
  test('--version prints what oclif would, without loading oclif', async () => {
    const run = await runTraced(['--version'])
    assert.equal(run.status, 0)
    assert.ok(run.modules.has(RUN_JS), 'the module trace should list bin/run.js itself')
    const config = await Config.load({root})
    assert.equal(run.stdout, `${config.userAgent}\n`)
    assert.deepEqual([...run.modules].filter((file) => file.includes(`${path.sep}node_modules${path.sep}`)), [])
  })

  test('the manifest marks no command as needing its module for --help (fixedDefaultHelp)', () => {
    for (const id of commandIds) {
      const dynamic = Object.entries(manifest.commands[id]!.flags).filter(([, flag]) => flag.hasDynamicHelp).map(([name]) => name)
      assert.deepEqual(dynamic, [], `${id}: flags whose --help default is computed at run time (use fixedDefaultHelp)`)
      assert.equal(manifest.commands[id]!.hasDynamicHelp, false, id)
    }
  })

  for (const args of [['--help'], ...commandIds.map((id) => [...id.split(':'), '--help'])]) {
    test(`ferrydiag ${args.join(' ')} loads no command module and not semver`, async () => {
      const run = await runTraced(args)
      assert.equal(run.status, 0)
      assert.match(run.stdout, /USAGE/)
      assert.ok(run.modules.has(RUN_JS), 'the module trace should list bin/run.js itself')
      assert.deepEqual(ours(run.modules), [], 'modules of ours loaded to show help')
      assert.deepEqual([...run.modules].filter((file) => file.includes(`${path.sep}semver${path.sep}`)), [])
    })
  }

  test('a command that runs loads its module (the trace sees it)', async () => {
    const run = await runTraced(['binlog', 'diff', '--no-such-flag'])
    assert.notEqual(run.status, 0)
    assert.ok(ours(run.modules).includes(path.join('dist', 'commands', 'binlog', 'diff.js')), ours(run.modules).join(', '))
  })
})
