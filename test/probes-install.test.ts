// The attach-time probes in a live process, without a database: installed once (a marker, and the lease
// for a second CLI), every patched method restored to the very same function on removal, libraries of an
// unknown version left alone and reported, and a target that exits while they are installed.

import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {after, describe, it} from 'node:test'
import {attachTarget} from '../src/attach/index.js'
import {installProbesIn, readProbes, removeProbes} from '../src/collect/probe-session.js'
import {EXIT} from '../src/errors.js'
import type {LagResult} from '../src/model/lag-result.js'
import {spawnTarget} from './helpers/child-process.js'
import {readProbeTraces} from './helpers/probes.js'
import {runCli} from './helpers/run-node.js'
import {REPO_ROOT} from './helpers/wild.js'

const MYSQL2 = path.join(REPO_ROOT, 'node_modules', 'mysql2')

/**
 * An ESM program that imports mysql2 and @vlasky/zongji by name (no connection) and keeps their originals
 * aside. Written inside the repository (dist/) so the bare names resolve to its node_modules.
 */
const LIBRARIES_PROGRAM = `
import {createRequire} from 'node:module'
import ZongJi from '@vlasky/zongji'
import 'mysql2'
const require = createRequire(import.meta.url)
const Base = require(${JSON.stringify(path.join(MYSQL2, 'lib', 'base', 'connection.js'))})
globalThis.__originals = {addCommand: Base.prototype.addCommand, pause: Base.prototype.pause, resume: Base.prototype.resume, zongjiOwnEmit: Object.hasOwn(ZongJi.prototype, 'emit')}
globalThis.__protos = {Base: Base.prototype, ZongJi: ZongJi.prototype}
setInterval(() => {}, 1000)
console.log('ready')
`

const SAME_AS_ORIGINALS = `(() => { const o = globalThis.__originals, p = globalThis.__protos;
  return o.addCommand === p.Base.addCommand && o.pause === p.Base.pause && o.resume === p.Base.resume &&
    !Object.hasOwn(p.ZongJi, 'emit') && !o.zongjiOwnEmit })()`

const temps: string[] = []

/** Starts the libraries program (or a variant) from a file inside the repository. */
function startLibrariesProgram(script = LIBRARIES_PROGRAM) {
  const dir = mkdtempSync(path.join(REPO_ROOT, 'dist', 'probes-test-'))
  temps.push(dir)
  writeFileSync(path.join(dir, 'main.mjs'), script)
  return spawnTarget({file: path.join(dir, 'main.mjs'), execArgv: ['--inspect=127.0.0.1:0']})
}
after(() => {
  for (const dir of temps) rmSync(dir, {recursive: true, force: true})
})

describe('probes: install, refuse a second, restore exactly', () => {
  it('patches mysql2 and @vlasky/zongji (ESM, reached again through the main loader), then restores the very same functions', async (t) => {
    const target = await startLibrariesProgram()
    t.after(() => target.kill())
    const inspect = `127.0.0.1:${target.inspectPort}`
    const session = await attachTarget({inspect})
    try {
      const status = await installProbesIn(session)
      assert.equal(status.installed, true)
      const byName = new Map(status.libraries.map((l) => [l.name, l]))
      assert.equal(byName.get('mysql2')?.state, 'patched', JSON.stringify(status.libraries))
      assert.equal(byName.get('@vlasky/zongji')?.state, 'patched', JSON.stringify(status.libraries))
      assert.equal(await session.evaluate(SAME_AS_ORIGINALS), false, 'methods are patched while installed')
      t.diagnostic(`install ${status.installMs.toFixed(1)} ms in the target; queryObjects ${status.queryObjectsMs?.toFixed(1) ?? '-'} ms`)
      // Never installed twice, even by the same session.
      await assert.rejects(installProbesIn(session), (error: {code?: string}) => error.code === 'probesPresent')
      // A second CLI is refused by the lease while this session holds the target.
      const second = await runCli(['lag', '--inspect', inspect, '--duration', '1s', '--json'], {timeoutMs: 30_000})
      assert.equal(second.code, EXIT.sessionBusy, second.stdout + second.stderr)
      assert.ok((await readProbes(session)) !== null)
      assert.equal(await removeProbes(session), true)
      assert.equal(await session.evaluate(SAME_AS_ORIGINALS), true, 'every patched method is the original function again')
    } finally {
      await session.detach()
    }
    const traces = await readProbeTraces(inspect)
    assert.deepEqual({marker: traces.marker, undo: traces.undoEntry, mysql2: traces.mysql2Patched, zongji: traces.zongjiPatched}, {marker: false, undo: false, mysql2: 0, zongji: 0})
  })

  it('a CLI killed while its probes are installed: the watchdog removes them', async (t) => {
    const target = await startLibrariesProgram()
    t.after(() => target.kill())
    const inspect = `127.0.0.1:${target.inspectPort}`
    await runCli(['lag', '--inspect', inspect, '--duration', '30s'], {
      timeoutMs: 60_000,
      onStart: async (child) => {
        // Wait until the probes are in, then kill the CLI outright.
        const probe = await attachProbeWatcher(inspect)
        child.kill('SIGKILL')
        return probe
      },
    })
    const deadline = Date.now() + 15_000
    let traces = await readProbeTracesWhenFree(inspect, deadline)
    assert.equal(traces.marker, false, 'probes still installed after the watchdog timeout')
    assert.equal(await evaluateOnce(inspect, SAME_AS_ORIGINALS), true)
    traces = await readProbeTraces(inspect)
    assert.equal(traces.mysql2Patched + traces.zongjiPatched, 0)
  })

  it('libraries of versions the probes do not know are reported and left alone', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ferrydiag-probes-'))
    temps.push(dir)
    // mysql2 2.x had no lib/base/; a zongji 0.4 exports a class with another shape.
    mkdirSync(path.join(dir, 'node_modules', 'mysql2', 'lib'), {recursive: true})
    writeFileSync(path.join(dir, 'node_modules', 'mysql2', 'package.json'), JSON.stringify({name: 'mysql2', version: '2.3.3', main: 'index.js'}))
    writeFileSync(path.join(dir, 'node_modules', 'mysql2', 'index.js'), "module.exports = require('./lib/connection.js')")
    writeFileSync(path.join(dir, 'node_modules', 'mysql2', 'lib', 'connection.js'), 'class Connection { query() {} }\nmodule.exports = Connection')
    mkdirSync(path.join(dir, 'node_modules', 'zongji'), {recursive: true})
    writeFileSync(path.join(dir, 'node_modules', 'zongji', 'package.json'), JSON.stringify({name: 'zongji', version: '0.4.7', main: 'index.js'}))
    writeFileSync(path.join(dir, 'node_modules', 'zongji', 'index.js'), 'function ZongJi() {}\nZongJi.prototype.start = function () {}\nmodule.exports = ZongJi')
    writeFileSync(
      path.join(dir, 'main.cjs'),
      "const Conn = require('mysql2'); const Z = require('zongji'); globalThis.__keep = {q: Conn.prototype.query, s: Z.prototype.start, Conn, Z}\nsetInterval(() => {}, 1000)\nconsole.log('ready')\n",
    )
    const target = await spawnTarget({file: path.join(dir, 'main.cjs'), execArgv: ['--inspect=127.0.0.1:0'], cwd: dir})
    t.after(() => target.kill())
    const inspect = `127.0.0.1:${target.inspectPort}`
    const run = await runCli(['lag', '--inspect', inspect, '--duration', '1s', '--json'], {timeoutMs: 30_000})
    const report = JSON.parse(run.stdout) as LagResult
    assert.equal(report.verdict, 'unknown')
    assert.equal(report.probes?.state, 'nothing-found')
    const byName = new Map(report.probes!.libraries.map((l) => [l.name, l]))
    assert.equal(byName.get('mysql2')?.state, 'unrecognised', JSON.stringify(report.probes))
    assert.equal(byName.get('mysql2')?.version, '2.3.3')
    assert.equal(byName.get('zongji')?.state, 'unrecognised')
    assert.equal(byName.get('zongji')?.version, '0.4.7')
    const untouched = await evaluateOnce(
      inspect,
      "(() => { const k = globalThis.__keep; return k.q === k.Conn.prototype.query && k.s === k.Z.prototype.start && Object.getOwnPropertyNames(k.Z.prototype).join() === 'constructor,start' && globalThis[Symbol.for('ferrydiag.probes')] === undefined })()",
    )
    assert.equal(untouched, true)
  })

  it('the target exits while probes are installed: lag ends early with what it measured (exit 17)', async (t) => {
    const target = await startLibrariesProgram(LIBRARIES_PROGRAM.replace("console.log('ready')", "console.log('ready'); process.stdin.on('data', () => process.exit(0))"))
    t.after(() => target.kill())
    const inspect = `127.0.0.1:${target.inspectPort}`
    const run = await runCli(['lag', '--inspect', inspect, '--duration', '20s', '--json'], {
      timeoutMs: 60_000,
      onStart: async () => {
        await attachProbeWatcher(inspect)
        // Into the window (it lasts 20 s): the probes have been read at least once.
        await new Promise((resolve) => setTimeout(resolve, 2000))
        target.sendLine('exit')
      },
    })
    assert.equal(run.code, EXIT.targetExited, run.stderr)
    const report = JSON.parse(run.stdout) as LagResult
    assert.equal(report.window?.endedBy, 'target-exited', run.stdout)
    assert.equal(report.probes?.state, 'used')
  })
})

/** Polls the target's globals (a read-only evaluation through /json, no lease) until the probes are in. */
async function attachProbeWatcher(inspect: string): Promise<void> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const present = await evaluateOnce(inspect, "globalThis[Symbol.for('ferrydiag.probes')]?.read !== undefined").catch(() => false)
    if (present === true) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error('the probes never appeared in the target')
}

/** One evaluation over a raw inspector connection (no ferrydiag session, so no lease is taken). */
async function evaluateOnce(inspect: string, expression: string): Promise<unknown> {
  const {default: CDP} = await import('chrome-remote-interface')
  const [host, port] = inspect.split(':')
  const client = await CDP({host, port: Number(port)})
  try {
    const answer = await client.send('Runtime.evaluate', {expression, returnByValue: true, awaitPromise: true})
    return answer.result.value
  } finally {
    await client.close()
  }
}

/** Reads the traces once the lease of a killed CLI has expired (the watchdog ran its undo entries). */
async function readProbeTracesWhenFree(inspect: string, deadline: number) {
  for (;;) {
    const present = await evaluateOnce(inspect, "globalThis[Symbol.for('ferrydiag.probes')] !== undefined")
    if (present === false || Date.now() > deadline) return readProbeTraces(inspect)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
