// Attach side against real child processes: --inspect and --pid (SIGUSR1) routes, snapshot reading and
// injection, every refusal with its FerrydiagError code, and a target left as it was found.

import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {after, afterEach, before, describe, test} from 'node:test'
import {fileURLToPath} from 'node:url'

import {attachTarget, InspectorSession, resolveTarget, TargetEvaluationError} from '../src/attach/index.js'
import {
  decodeProcNetAddress,
  findInspectPortInArgs,
  parseProcNetTcp,
  readOwnedListeningSockets,
} from '../src/attach/proc-net.js'
import {isPortOpen} from '../src/attach/target.js'
import {EXIT, FerrydiagError, type ExitName} from '../src/errors.js'
import {SNAPSHOT_SCHEMA} from '../src/model/snapshot.js'
import {killAllTargets, spawnOther, spawnTarget, type TargetProcess} from './helpers/child-process.js'
import {streamingFakeAgent} from './helpers/fake-agent.js'
import {REPO_ROOT} from './helpers/make-snapshot.js'

/** uid and gid of 'nobody' on Debian. */
const NOBODY = 65534

const distDir = path.dirname(path.dirname(fileURLToPath(import.meta.url))) // dist/
const registerPath = path.join(distDir, 'src/agent/register.js')
const injectSourcePath = path.join(distDir, 'src/agent/inject-source.js')

/** An idle target that answers 'ping' on stdin with 'pong', so a test can see it still works. */
const IDLE_TARGET = `
  setInterval(() => {}, 1000)
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (text) => { for (const line of text.split('\\n')) if (line === 'ping') console.log('pong') })
  console.log('ready')
`

const unhandled: unknown[] = []
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason)
}
before(() => process.on('unhandledRejection', onUnhandled))
after(async () => {
  process.off('unhandledRejection', onUnhandled)
  await killAllTargets()
})

/** Asserts that `promise` rejects with a FerrydiagError of `code`; returns it for further checks. */
async function rejectsWith(promise: Promise<unknown>, code: ExitName): Promise<FerrydiagError> {
  let caught: unknown
  try {
    await promise
  } catch (error) {
    caught = error
  }
  assert.ok(caught instanceof FerrydiagError, `expected FerrydiagError ${code}, got ${String(caught)}`)
  assert.equal(caught.code, code, caught.message)
  assert.ok(!caught.message.includes('\n'), `message is one line: ${caught.message}`)
  assert.ok(caught.suggestion.length > 0)
  return caught
}

async function pingTarget(target: TargetProcess): Promise<void> {
  await target.request('ping', /^pong$/, 10_000)
}

/** A loopback port with nothing listening (bound then released). */
async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as net.AddressInfo).port
}

/** Closes a server and destroys its open connections (a paused socket would otherwise hold it open). */
function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    for (const socket of serverSockets.get(server) ?? []) socket.destroy()
  })
}

const serverSockets = new WeakMap<net.Server, Set<net.Socket>>()
function trackSockets<S extends net.Server>(server: S): S {
  const sockets = new Set<net.Socket>()
  serverSockets.set(server, sockets)
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  return server
}

describe('/proc parsing', () => {
  test('decodes IPv4 and IPv6 addresses from /proc/net/tcp', () => {
    assert.equal(decodeProcNetAddress('0100007F'), '127.0.0.1')
    assert.equal(decodeProcNetAddress('00000000'), '0.0.0.0')
    assert.equal(decodeProcNetAddress('00000000000000000000000001000000'), '::1')
    assert.equal(decodeProcNetAddress('00000000000000000000000000000000'), '::')
    assert.equal(decodeProcNetAddress('0000000000000000FFFF00000100007F'), '127.0.0.1')
    assert.throws(() => decodeProcNetAddress('123'), RangeError)
  })

  test('keeps only LISTEN rows with their inode and port', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:240D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000 100 0 0 10 0',
      '   1: 0100007F:240D 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000 20 4 30 10 -1',
    ].join('\n')
    assert.deepEqual(parseProcNetTcp(text, 4), [{inode: 4242, address: '127.0.0.1', port: 9229, family: 4}])
  })

  test('finds the inspector port in node flags', () => {
    assert.equal(findInspectPortInArgs(['node', 'app.js']), null)
    assert.equal(findInspectPortInArgs(['node', '--inspect', 'app.js']), 9229)
    assert.equal(findInspectPortInArgs(['node', '--inspect=127.0.0.1:9333', 'app.js']), 9333)
    assert.equal(findInspectPortInArgs(['node', '--inspect-port=0', 'app.js']), 0)
    assert.equal(findInspectPortInArgs(['--inspect-brk=[::1]:9444']), 9444)
    assert.equal(findInspectPortInArgs(['--inspect=localhost']), 9229)
  })
})

describe('target flags', () => {
  test('refuses a remote host unless allowed', async () => {
    const refused = await rejectsWith(resolveTarget({inspect: '10.1.2.3:9229'}), 'remoteRefused')
    assert.match(refused.message, /10\.1\.2\.3:9229/)
    const allowed = await resolveTarget({inspect: '10.1.2.3:9229', allowRemote: true})
    assert.deepEqual([allowed.host, allowed.port, allowed.openedBySignal], ['10.1.2.3', 9229, false])
  })

  test('accepts loopback forms and a bare port', async () => {
    assert.equal((await resolveTarget({inspect: 'localhost:9333'})).host, '127.0.0.1')
    assert.equal((await resolveTarget({inspect: '[::1]:9333'})).host, '::1')
    assert.deepEqual(await resolveTarget({inspect: '9444'}), {
      host: '127.0.0.1',
      port: 9444,
      pid: null,
      openedBySignal: false,
      via: 'inspect',
    })
    assert.equal((await resolveTarget({})).port, 9229)
  })

  test('rejects malformed addresses as badArgument', async () => {
    for (const bad of ['nonsense', '127.0.0.1:99999', '127.0.0.1:0', '::1:9229', 'host name:1', '127.0.0.1:abc']) {
      await rejectsWith(resolveTarget({inspect: bad}), 'badArgument')
    }
    await rejectsWith(resolveTarget({pid: -4}), 'badArgument')
  })
})

describe('attach via --inspect', () => {
  let target: TargetProcess
  let session: InspectorSession | undefined
  before(async () => {
    target = await spawnTarget({script: IDLE_TARGET, execArgv: ['--inspect=127.0.0.1:0']})
  })
  afterEach(async () => {
    await session?.detach()
    session = undefined
  })
  after(() => target.kill())

  test('evaluates by value and leaves an inspector it did not open', async () => {
    session = await attachTarget({inspect: `127.0.0.1:${target.inspectPort}`})
    assert.equal(session.target.openedBySignal, false)
    assert.equal(await session.evaluate('process.pid'), target.pid)
    assert.deepEqual(await session.evaluate('({a: [1, 2], b: "x"})'), {a: [1, 2], b: 'x'})
    assert.equal(await session.evaluate('Promise.resolve(41).then((n) => n + 1)'), 42)
    const result = await session.detach()
    session = undefined
    assert.equal(result.inspectorClosed, null)
    assert.equal(await isPortOpen('127.0.0.1', target.inspectPort!), true)
    await pingTarget(target)
  })

  test('a synchronous overrun is stopped by V8 and the target keeps working', async () => {
    session = await attachTarget({inspect: `127.0.0.1:${target.inspectPort}`})
    const error = await rejectsWith(session.evaluate('for (;;) {}', {budgetMs: 300}), 'evaluateTimeout')
    assert.match(error.message, /300 ms/)
    assert.equal(await session.evaluate('1 + 1'), 2)
    await pingTarget(target)
  })

  test('a promise that never settles times out on the client side', async () => {
    session = await attachTarget({inspect: `127.0.0.1:${target.inspectPort}`})
    await rejectsWith(session.evaluate('new Promise(() => {})', {budgetMs: 300}), 'evaluateTimeout')
    assert.equal(await session.evaluate('"still attached"'), 'still attached')
  })

  test('an exception in the target is a TargetEvaluationError', async () => {
    session = await attachTarget({inspect: `127.0.0.1:${target.inspectPort}`})
    await assert.rejects(session.evaluate('throw new RangeError("boom")'), (error: unknown) => {
      assert.ok(error instanceof TargetEvaluationError)
      assert.match(error.message, /RangeError: boom/)
      return true
    })
  })

  test('without an agent: readSnapshot is null and ensureAgent without injection is noAgent', async () => {
    session = await attachTarget({inspect: `127.0.0.1:${target.inspectPort}`})
    assert.equal(await session.readSnapshot(), null)
    assert.equal(await session.hasAgent(), false)
    await rejectsWith(session.ensureAgent({inject: false}), 'noAgent')
  })
})

describe('attach via --pid', () => {
  test('opens the inspector with SIGUSR1 and closes it again on detach', async () => {
    // --inspect-port=0 makes SIGUSR1 open a free port, so parallel runs never fight over 9229.
    const target = await spawnTarget({script: IDLE_TARGET, execArgv: ['--inspect-port=0']})
    try {
      assert.deepEqual(await readOwnedListeningSockets(target.pid), [])
      const session = await attachTarget({pid: target.pid})
      assert.equal(session.target.openedBySignal, true)
      assert.equal(session.target.pid, target.pid)
      assert.equal(await session.evaluate('process.pid'), target.pid)
      const port = session.target.port
      const result = await session.detach()
      assert.equal(result.inspectorClosed, true)
      assert.deepEqual(await readOwnedListeningSockets(target.pid), [])
      assert.equal(await isPortOpen('127.0.0.1', port), false)
      assert.ok(target.isAlive())
      await pingTarget(target)

      // A second attach opens and closes it again: the first detach left nothing half-open.
      const again = await attachTarget({pid: target.pid})
      assert.equal(again.target.openedBySignal, true)
      assert.equal((await again.detach()).inspectorClosed, true)
      await pingTarget(target)
    } finally {
      await target.kill()
    }
  })

  test('uses an inspector that is already open and leaves it open', async () => {
    const target = await spawnTarget({script: IDLE_TARGET, execArgv: ['--inspect=127.0.0.1:0']})
    try {
      const session = await attachTarget({pid: target.pid})
      assert.equal(session.target.openedBySignal, false)
      assert.equal(session.target.port, target.inspectPort)
      assert.equal((await session.detach()).inspectorClosed, null)
      assert.equal(await isPortOpen('127.0.0.1', target.inspectPort!), true)
    } finally {
      await target.kill()
    }
  })

  test('opens on the default port 9229 when no flag is given (skipped if 9229 is busy)', async (t) => {
    if (await isPortOpen('127.0.0.1', 9229)) {
      t.skip('port 9229 is in use on this machine')
      return
    }
    const target = await spawnTarget({script: IDLE_TARGET})
    try {
      const session = await attachTarget({pid: target.pid})
      assert.equal(session.target.port, 9229)
      assert.equal((await session.detach()).inspectorClosed, true)
      await pingTarget(target)
    } finally {
      await target.kill()
    }
  })

  test('a process with its own SIGUSR1 handler is ownSigusr1 and keeps running', async () => {
    const target = await spawnTarget({
      script: `process.on('SIGUSR1', () => console.log('got SIGUSR1'))\n${IDLE_TARGET}`,
      execArgv: ['--inspect-port=0'],
    })
    try {
      const error = await rejectsWith(attachTarget({pid: target.pid, sigusr1WaitMs: 1000}), 'ownSigusr1')
      assert.match(error.message, /SIGUSR1/)
      assert.match(error.suggestion, /--inspect|register/)
      await target.waitForLine(/^got SIGUSR1$/)
      await pingTarget(target)
    } finally {
      await target.kill()
    }
  })

  test('a dead pid is noSuchProcess', async () => {
    const target = await spawnTarget({script: 'console.log("ready")'})
    await target.exited
    await rejectsWith(attachTarget({pid: target.pid}), 'noSuchProcess')
  })

  test('a non-Node pid is notNode', async () => {
    const sleeper = spawnOther('sleep', ['30'])
    try {
      // Give exec() a moment to replace the forked child's image with /bin/sleep.
      await new Promise((resolve) => setTimeout(resolve, 200))
      const error = await rejectsWith(attachTarget({pid: sleeper.pid}), 'notNode')
      assert.match(error.message, /sleep/)
    } finally {
      await sleeper.kill()
    }
  })

  test('a pid owned by another user is signalDenied, and the target is untouched', async (t) => {
    if (process.getuid?.() !== 0) {
      // Not root: pid 1 belongs to root, so signalling it is refused.
      await rejectsWith(attachTarget({pid: 1}), 'signalDenied')
      return
    }
    // Root may signal anything, so run the real CLI as 'nobody' against a target that root owns.
    // (Lowering only the effective uid is not enough: kill() also accepts a matching real uid.)
    const cli = path.join(REPO_ROOT, 'bin', 'run.js')
    const asNobody = {uid: NOBODY, gid: NOBODY, env: {...process.env, HOME: tmpdir()}, encoding: 'utf8' as const, timeout: 30_000}
    if (spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(cli)})`], asNobody).status !== 0) {
      t.skip(`this checkout is not readable to uid ${NOBODY} (${cli}), so the CLI cannot run as another user`)
      return
    }
    const target = await spawnTarget({script: IDLE_TARGET})
    const result = spawnSync(process.execPath, [cli, 'stacks', '--pid', String(target.pid)], asNobody)
    assert.equal(result.status, EXIT.signalDenied, result.stderr)
    assert.match(result.stderr, /Not allowed to signal process \d+ \(EPERM\)/)
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace')
    assert.deepEqual(await readOwnedListeningSockets(target.pid), [], 'no inspector was opened in the target')
    assert.equal(target.child.exitCode, null, 'the target is still running')
  })
})

describe('refusals while connecting', () => {
  test('nothing listening is connectRefused', async () => {
    const port = await freePort()
    const error = await rejectsWith(attachTarget({inspect: `127.0.0.1:${port}`}), 'connectRefused')
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`))
  })

  test('an HTTP server that is not an inspector is notInspector', async () => {
    const bodies: Array<[number, string]> = [
      [404, 'not found'],
      [200, '<html>hello</html>'],
      [200, '[{"id": "x"}]'],
    ]
    for (const [status, body] of bodies) {
      const server = trackSockets(
        http.createServer((_, response) => {
          response.writeHead(status, {'content-type': 'text/plain'})
          response.end(body)
        }),
      )
      const port = await listen(server)
      try {
        const error = await rejectsWith(attachTarget({inspect: `127.0.0.1:${port}`}), 'notInspector')
        assert.match(error.message, status === 404 ? /HTTP 404/ : /expected a Node inspector/)
      } finally {
        await closeServer(server)
      }
    }
  })

  test('a TCP service that never speaks HTTP is notInspector within the timeout', async () => {
    const silent = trackSockets(net.createServer(() => undefined))
    const chatty = trackSockets(net.createServer((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n')))
    const silentPort = await listen(silent)
    const chattyPort = await listen(chatty)
    try {
      const started = Date.now()
      const error = await rejectsWith(
        attachTarget({inspect: `127.0.0.1:${silentPort}`, connectTimeoutMs: 800}),
        'notInspector',
      )
      assert.match(error.message, /800 ms/)
      assert.ok(Date.now() - started < 10_000)
      await rejectsWith(attachTarget({inspect: `127.0.0.1:${chattyPort}`}), 'notInspector')
    } finally {
      await closeServer(silent)
      await closeServer(chatty)
    }
  })
})

describe('targets that misbehave while attached', () => {
  test('a target exiting mid-evaluation is targetExited, with no unhandled rejection', async () => {
    const target = await spawnTarget({script: IDLE_TARGET, execArgv: ['--inspect=127.0.0.1:0']})
    try {
      const session = await attachTarget({inspect: `127.0.0.1:${target.inspectPort}`, pid: undefined})
      const error = await rejectsWith(
        session.evaluate('new Promise((resolve) => setTimeout(() => { process.exit(0); resolve(1) }, 100))', {
          budgetMs: 20_000,
        }),
        'targetExited',
      )
      assert.match(error.message, /inspector/)
      assert.equal(session.attached, false)
      await rejectsWith(session.evaluate('1'), 'targetExited')
      await rejectsWith(session.readSnapshot(), 'targetExited')
      const result = await session.detach()
      assert.equal(result.inspectorClosed, null)
      await target.exited
      // Give any stray rejection a chance to surface before checking.
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.deepEqual(unhandled, [])
    } finally {
      await target.kill()
    }
  })

  test('an agent snapshot of an unknown version is unknownSnapshot naming the version', async () => {
    const target = await spawnTarget({
      script: `globalThis[Symbol.for('ferrydiag.agent')] = ${streamingFakeAgent(`JSON.stringify({schema: '${SNAPSHOT_SCHEMA}', version: 999, wire: 2, tasks: [], stacks: []})`)}
        ${IDLE_TARGET}`,
      execArgv: ['--inspect=127.0.0.1:0'],
    })
    try {
      const session = await attachTarget({inspect: `127.0.0.1:${target.inspectPort}`})
      try {
        assert.equal(await session.hasAgent(), true)
        const error = await rejectsWith(session.readSnapshot(), 'unknownSnapshot')
        assert.match(error.message, /version 999/)
        // An agent that is present is never replaced by injection.
        assert.deepEqual(await session.ensureAgent({inject: true}), {injected: false})
      } finally {
        await session.detach()
      }
    } finally {
      await target.kill()
    }
  })

  test('a foreign schema, or an object at the agent key that does not stream its snapshot, is unknownSnapshot', async () => {
    for (const [agentSource, pattern] of [
      [streamingFakeAgent(`'{"schema":"other","version":1}'`), /schema "other"/],
      [`{snapshotJson: () => '{}'}`, /no streamSnapshot/],
    ] as const) {
      const target = await spawnTarget({
        script: `globalThis[Symbol.for('ferrydiag.agent')] = ${agentSource}
          ${IDLE_TARGET}`,
        execArgv: ['--inspect=127.0.0.1:0'],
      })
      try {
        const session = await attachTarget({inspect: `127.0.0.1:${target.inspectPort}`})
        try {
          const error = await rejectsWith(session.readSnapshot(), 'unknownSnapshot')
          assert.match(error.message, pattern)
        } finally {
          await session.detach()
        }
      } finally {
        await target.kill()
      }
    }
  })
})

describe('the real agent (dist/src/agent/register.js and inject-source.js)', () => {
  test('reads a snapshot from a target preloaded with the agent', async () => {
    assert.ok(existsSync(registerPath), `${registerPath} is built with the rest`)
    const target = await spawnTarget({script: IDLE_TARGET, execArgv: ['--import', registerPath, '--inspect=127.0.0.1:0']})
    try {
      const session = await attachTarget({pid: target.pid})
      try {
        assert.deepEqual(await session.ensureAgent({inject: false}), {injected: false})
        const snapshot = await session.readSnapshot()
        assert.ok(snapshot)
        assert.equal(snapshot.schema, SNAPSHOT_SCHEMA)
        assert.equal(snapshot.process.pid, target.pid)
        assert.notEqual(snapshot.process.agentLoadedBy, 'inject')
      } finally {
        await session.detach()
      }
    } finally {
      await target.kill()
    }
  })

  test('injects the agent into a target without one, then reads its snapshot', async () => {
    assert.ok(existsSync(injectSourcePath), `${injectSourcePath} is built with the rest`)
    const target = await spawnTarget({script: IDLE_TARGET, execArgv: ['--inspect-port=0']})
    try {
      const session = await attachTarget({pid: target.pid})
      try {
        assert.equal(await session.readSnapshot(), null)
        const first = await session.ensureAgent({inject: true})
        assert.equal(first.injected, true)
        assert.equal(session.agentLoadedBy, 'inject')
        const snapshot = await session.readSnapshot()
        assert.ok(snapshot)
        assert.equal(snapshot.process.agentLoadedBy, 'inject')
        assert.equal(snapshot.process.pid, target.pid)
        assert.deepEqual(await session.ensureAgent({inject: true}), {injected: false})
      } finally {
        assert.equal((await session.detach()).inspectorClosed, true)
      }
      await pingTarget(target)
    } finally {
      await target.kill()
    }
  })
})
