// Production safety of the CLI's edges: secrets masked in dumps (text and --json) and in usage errors,
// --pid refusing an inspector that would open on 0.0.0.0 and saying that the target's own SIGUSR1
// handler ran, a second concurrent session refused (sessionBusy), the heap route refused above its
// ceiling, and the smaller items: one line per error, flag errors coded `usage`, --json --output honoured.
import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {after, describe, it} from 'node:test'

import {estimateHeapRouteCost, checkHeapRouteAllowed} from '../src/attach/heap-snapshot.js'
import {readOwnedListeningSockets} from '../src/attach/proc-net.js'
import {EXIT} from '../src/errors.js'
import {maskArgv, maskSecretsDeep, maskSecretsInText} from '../src/render/mask-secrets.js'
import {killAllTargets, spawnTarget} from './helpers/child-process.js'
import {runCli} from './helpers/run-node.js'

const UNPREPARED_MAIN = fileURLToPath(new URL('../../fixtures/unprepared/main.mjs', import.meta.url))
const PASSWORD = 'Sup3rS3cret-pw'
const dir = mkdtempSync(path.join(tmpdir(), 'ferrydiag-safety-cli-'))

after(async () => {
  await killAllTargets()
  rmSync(dir, {recursive: true, force: true})
})

function assertOneLine(stderr: string): void {
  const lines = stderr.split('\n').filter((line) => line.trim() !== '')
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`)
}

describe('secrets', () => {
  it('masks DSN passwords, password flags and variables in text, argv and JSON values', () => {
    assert.equal(maskSecretsInText(`--source=mysql://root:${PASSWORD}@db:3306/shop`), '--source=mysql://root:****@db:3306/shop')
    assert.equal(maskSecretsInText(`root:${PASSWORD}@tcp(db:3306)/shop`), 'root:****@tcp(db:3306)/shop')
    assert.equal(maskSecretsInText(`MYSQL_PASSWORD=${PASSWORD} --db-password=${PASSWORD}`), 'MYSQL_PASSWORD=**** --db-password=****')
    assert.deepEqual(maskArgv(['node', 'app.js', '--password', PASSWORD, '--port', '80']), ['node', 'app.js', '--password', '****', '--port', '80'])
    const masked = JSON.stringify(maskSecretsDeep({process: {argv: ['a', `mysql://u:${PASSWORD}@h`], title: `x --token=${PASSWORD}`}, password: PASSWORD}))
    assert.ok(!masked.includes(PASSWORD), masked)
    assert.equal(maskSecretsInText('mysql://u:****@h and nothing else'), 'mysql://u:****@h and nothing else')
    assert.equal(maskSecretsInText(`app.js --password ${PASSWORD} --port 80`), 'app.js --password **** --port 80')
  })

  it('stacks --json and text of a target started with a password in argv and env print **** instead', async () => {
    const target = await spawnTarget({
      script: `process.title = process.argv.slice(1).join(' '); setInterval(() => {}, 1000); console.log('ready')`,
      args: [`--source=mysql://root:${PASSWORD}@127.0.0.1:3306/shop`, '--password', PASSWORD],
      execArgv: ['--inspect=127.0.0.1:0'],
      env: {...process.env, MYSQL_PWD: PASSWORD, SOURCE_DSN: `mysql://root:${PASSWORD}@127.0.0.1/x`},
    })
    try {
      const inspect = `127.0.0.1:${target.inspectPort}`
      const json = await runCli(['stacks', '--inspect', inspect, '--json'])
      assert.equal(json.code, 0, json.stderr)
      assert.ok(!json.stdout.includes(PASSWORD), 'password in --json dump')
      assert.ok(json.stdout.includes('mysql://root:****@127.0.0.1:3306/shop'), json.stdout.slice(0, 600))
      const text = await runCli(['stacks', '--inspect', inspect])
      assert.equal(text.code, 0, text.stderr)
      assert.ok(!text.stdout.includes(PASSWORD) && !text.stderr.includes(PASSWORD), 'password in text dump')
      const file = path.join(dir, 'dump.json')
      const toFile = await runCli(['stacks', '--inspect', inspect, '--json', '--output', file])
      assert.equal(toFile.code, 0, toFile.stderr)
      assert.ok(existsSync(file), '--json --output wrote no file')
      const written = readFileSync(file, 'utf8')
      assert.equal(JSON.parse(written).schema, 'ferrydiag.stacks')
      assert.ok(!written.includes(PASSWORD))
      assert.equal(toFile.stdout.trim(), '', 'the document went to the file, not stdout')
    } finally {
      await target.kill()
    }
  })

  it('tune-batch --perturb --probe-target mysql://u:PW@…: the usage error is masked in text and --json, one line, code usage', async () => {
    const args = ['tune-batch', '--perturb', '--probe-target', `mysql://u:${PASSWORD}@127.0.0.1:3306/x`, '--like', 'x.y']
    const text = await runCli(args)
    assert.equal(text.code, EXIT.usage)
    assert.ok(!text.stderr.includes(PASSWORD) && !text.stdout.includes(PASSWORD), text.stderr)
    assert.match(text.stderr, /mysql:\/\/u:\*\*\*\*@127\.0\.0\.1:3306\/x/)
    assertOneLine(text.stderr)
    const json = await runCli([...args, '--json'])
    assert.equal(json.code, EXIT.usage)
    assert.ok(!json.stdout.includes(PASSWORD), json.stdout)
    assert.equal(JSON.parse(json.stdout).error.code, 'usage')
  })
})

describe('errors', () => {
  it('an unknown flag: code usage, exit 2, one line, no help page', async () => {
    const text = await runCli(['stacks', '--no-such-flag'])
    assert.equal(text.code, 2)
    assertOneLine(text.stderr)
    assert.match(text.stderr, /Nonexistent flag: --no-such-flag \(code usage, exit 2\)/)
    assert.doesNotMatch(text.stdout + text.stderr, /USAGE/)
    const json = await runCli(['stacks', '--no-such-flag', '--json'])
    assert.equal(json.code, 2)
    assert.deepEqual(JSON.parse(json.stdout).error.code, 'usage')
  })

  it('errors are one line with their code, even long ones', async () => {
    const run = await runCli(['stacks', '--pid', '999999999'])
    assert.equal(run.code, EXIT.noSuchProcess)
    assertOneLine(run.stderr)
    assert.match(run.stderr, /\(code noSuchProcess, exit 12\)\. Try this: /)
  })

  it('--timeout 1ms reports the budget, not the target', async () => {
    const target = await spawnTarget({file: UNPREPARED_MAIN, args: ['--scenario=healthy'], execArgv: ['--inspect=127.0.0.1:0'], readyLine: /^unprepared-pipeline /})
    try {
      const run = await runCli(['stacks', '--inspect', `127.0.0.1:${target.inspectPort}`, '--timeout', '1ms'])
      assert.notEqual(run.code, 0)
      assertOneLine(run.stderr)
      assert.doesNotMatch(run.stderr, /notInspector|gave no HTTP answer|not a Node inspector/)
      assert.match(run.stderr, /--timeout/)
    } finally {
      await target.kill()
    }
  })
})

describe('--pid', () => {
  it('refuses before SIGUSR1 when the inspector would open on 0.0.0.0, unless --allow-remote', async () => {
    const target = await spawnTarget({file: UNPREPARED_MAIN, args: ['--scenario=healthy'], execArgv: ['--inspect-port=0.0.0.0:0'], readyLine: /^unprepared-pipeline /})
    try {
      const run = await runCli(['stacks', '--pid', String(target.pid)])
      assert.equal(run.code, EXIT.remoteRefused, run.stderr)
      assertOneLine(run.stderr)
      assert.match(run.stderr, /0\.0\.0\.0/)
      assert.doesNotMatch(target.stderrText, /Debugger listening/, 'SIGUSR1 was sent anyway')
      assert.deepEqual(await readOwnedListeningSockets(target.pid), [])
      const allowed = await runCli(['stacks', '--pid', String(target.pid), '--allow-remote'])
      assert.equal(allowed.code, 0, allowed.stderr)
      assert.deepEqual(await readOwnedListeningSockets(target.pid), [], 'the inspector ferrydiag opened was not closed')
    } finally {
      await target.kill()
    }
  })

  it("says that the target's own SIGUSR1 handler ran, and does not send it a second time", async () => {
    const target = await spawnTarget({
      script: `let n = 0; process.on('SIGUSR1', () => console.log('own-handler ' + ++n)); setInterval(() => {}, 1000); console.log('ready')`,
      // A free port for SIGUSR1: 9229 may be held by another test file or suite on this machine.
      execArgv: ['--inspect-port=0'],
    })
    try {
      const first = await runCli(['stacks', '--pid', String(target.pid)])
      assert.equal(first.code, EXIT.ownSigusr1)
      assertOneLine(first.stderr)
      assert.match(first.stderr, /its own handler ran instead/)
      await target.waitForLine(/^own-handler 1$/)
      const second = await runCli(['stacks', '--pid', String(target.pid)])
      assert.equal(second.code, EXIT.ownSigusr1)
      assert.match(second.stderr, /Did not send SIGUSR1/)
      assert.ok(!target.stdoutLines.includes('own-handler 2'), 'the handler ran again')
    } finally {
      await target.kill()
    }
  })

  it('a second concurrent session is refused with sessionBusy, naming the first CLI', async () => {
    const target = await spawnTarget({file: UNPREPARED_MAIN, args: ['--scenario=healthy'], execArgv: ['--inspect=127.0.0.1:0'], readyLine: /^unprepared-pipeline /})
    try {
      const inspect = `127.0.0.1:${target.inspectPort}`
      const {attachTarget} = await import('../src/attach/index.js')
      const first = await attachTarget({inspect})
      try {
        const second = await runCli(['stacks', '--inspect', inspect])
        assert.equal(second.code, EXIT.sessionBusy, second.stderr)
        assertOneLine(second.stderr)
        assert.match(second.stderr, new RegExp(`CLI pid ${process.pid}`))
      } finally {
        await first.detach()
      }
      const third = await runCli(['stacks', '--inspect', inspect])
      assert.equal(third.code, 0, third.stderr)
    } finally {
      await target.kill()
    }
  })
})

describe('heap route limits', () => {
  it('the estimate has a band, and large-object heaps cost far less than small-object ones', () => {
    const small = estimateHeapRouteCost(300 * 2 ** 20, 0)
    const large = estimateHeapRouteCost(300 * 2 ** 20, 290 * 2 ** 20)
    assert.ok(small.stallMsLow < small.stallMs && small.stallMs < small.stallMsHigh)
    assert.ok(small.extraMemoryBytesLow < small.extraMemoryBytes && small.extraMemoryBytes < small.extraMemoryBytesHigh)
    assert.ok(large.stallMsHigh < small.stallMsLow, JSON.stringify({small, large}))
    // The reported incident (308 MB of row objects: 38-42 s, +2.3 GB) lies inside the band.
    const incident = estimateHeapRouteCost(308 * 2 ** 20, 0)
    assert.ok(incident.stallMsLow < 38_000 && incident.stallMsHigh > 42_000, JSON.stringify(incident))
    assert.ok(incident.extraMemoryBytesHigh > 2.3 * 2 ** 30, JSON.stringify(incident))
  })

  it('refuses above --heap-max and above the host memory, naming the flag', () => {
    const estimate = {...estimateHeapRouteCost(308 * 2 ** 20, 0), usedHeapBytes: 308 * 2 ** 20}
    assert.throws(
      () => checkHeapRouteAllowed(estimate, {heapMaxBytes: 2 ** 30, hostAvailableBytes: 64 * 2 ** 30}),
      (error: {code?: string; suggestion?: string}) => error.code === 'heapTooLarge' && /--heap-max \d+MiB/.test(error.suggestion ?? ''),
    )
    assert.doesNotThrow(() => checkHeapRouteAllowed(estimate, {heapMaxBytes: 8 * 2 ** 30, hostAvailableBytes: 64 * 2 ** 30}))
    assert.throws(
      () => checkHeapRouteAllowed(estimate, {heapMaxBytes: 8 * 2 ** 30, hostAvailableBytes: 2 ** 30}),
      (error: {code?: string; message: string}) => error.code === 'heapTooLarge' && /MemAvailable/.test(error.message),
    )
  })

  it('stacks --heap on a target above the ceiling refuses before any snapshot (exit 48)', async () => {
    const target = await spawnTarget({file: UNPREPARED_MAIN, args: ['--scenario=healthy', '--ballast-mb=30'], execArgv: ['--inspect=127.0.0.1:0'], readyLine: /^unprepared-pipeline /})
    try {
      const run = await runCli(['stacks', '--inspect', `127.0.0.1:${target.inspectPort}`, '--heap', '--yes', '--heap-max', '20MB'])
      assert.equal(run.code, EXIT.heapTooLarge, run.stderr)
      assert.match(run.stderr, /above the 20 MiB ceiling.*--heap-max/)
      assert.ok(target.isAlive())
    } finally {
      await target.kill()
    }
  })
})
