// The shared CLI layer: duration parsing, the target flags, and the base command's error handling
// (one line + "Try this:", the FerrydiagError's exit status, no stack trace; --json error objects).

import assert from 'node:assert/strict'
import path from 'node:path'
import {after, describe, test} from 'node:test'
import {setImmediate as yieldToLoop} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

import {Errors, Flags} from '@oclif/core'
import {Exit, handle} from '@oclif/core/handle'
import {captureOutput} from '@oclif/test'

import {FerrydiagCommand, toCliError} from '../src/cli/base-command.js'
import {formatDuration, parseDuration} from '../src/cli/duration.js'
import {durationFlag, targetFlags, targetOptionsFromFlags} from '../src/cli/flags.js'
import {parseSize} from '../src/cli/size.js'
import {formatBytes, GIB, MIB} from '../src/units.js'
import {EXIT, FerrydiagError} from '../src/errors.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..') // package root

/** A command shaped like the real ones: target flags, a duration, and a failure chosen by --fail. */
class ProbeCommand extends FerrydiagCommand {
  static flags = {
    ...targetFlags,
    wait: durationFlag({name: 'wait', summary: 'How long to wait.', defaultMs: 5000}),
    fail: Flags.string({options: ['ferrydiag', 'plain', 'multiline', 'none']}),
  }

  async run(): Promise<{waitMs: number; target: unknown}> {
    const {flags} = await this.parse(ProbeCommand)
    if (flags.fail === 'ferrydiag') {
      throw new FerrydiagError('noSuchProcess', 'No process with pid 424242 (ESRCH).', 'Find the pid with `pgrep -af node`.')
    }
    if (flags.fail === 'plain') throw new TypeError('cannot read properties of undefined')
    if (flags.fail === 'multiline') throw new Error('first line\n    at somewhere (file.js:1:1)')
    return {waitMs: flags.wait, target: targetOptionsFromFlags(flags)}
  }
}

type CaughtError = Error & {oclif?: {exit?: number}; code?: string; suggestions?: string[]}

/** Runs ProbeCommand in-process; yields first and resets exitCode after, as node:test needs. */
async function runProbe(argv: string[]) {
  await yieldToLoop()
  const output = await captureOutput<{waitMs: number; target: unknown}>(() => ProbeCommand.run(argv, {root}))
  const exitCode = process.exitCode
  process.exitCode = undefined
  return {...output, exitCode} as typeof output & {error?: CaughtError; exitCode: typeof exitCode}
}

/** What the user sees: oclif's top-level handler output, with its process.exit stubbed. */
async function renderLikeBin(error: Error): Promise<{stderr: string; exit: number | undefined}> {
  const originalExit = Exit.exit
  let exit: number | undefined
  Exit.exit = ((code?: number) => {
    exit = code
  }) as typeof Exit.exit
  try {
    await yieldToLoop()
    const output = await captureOutput(() => handle(error))
    return {stderr: output.stderr, exit}
  } finally {
    Exit.exit = originalExit
    process.exitCode = undefined
  }
}

after(() => {
  process.exitCode = undefined
})

describe('parseDuration', () => {
  test('reads ms, s, m, h and bare seconds', () => {
    assert.equal(parseDuration('500ms'), 500)
    assert.equal(parseDuration('5s'), 5000)
    assert.equal(parseDuration('1.5s'), 1500)
    assert.equal(parseDuration('2m'), 120_000)
    assert.equal(parseDuration('1h'), 3_600_000)
    assert.equal(parseDuration('30'), 30_000)
    assert.equal(parseDuration(' 10S '), 10_000)
  })

  test('rejects malformed, zero, negative and sub-millisecond values as badDuration', () => {
    for (const bad of ['', 'abc', '5x', '5 s s', '0', '0s', '-1s', '-5', '0.2ms', 'Infinity', '1e3', 's']) {
      assert.throws(
        () => parseDuration(bad, '--wait'),
        (error: unknown) => {
          assert.ok(error instanceof FerrydiagError, `for ${JSON.stringify(bad)}`)
          assert.equal(error.code, 'badDuration')
          assert.equal(error.exit, EXIT.badDuration)
          assert.ok(error.message.includes(`\`${bad}\``))
          return true
        },
      )
    }
  })

  test('formatDuration round-trips', () => {
    for (const ms of [1, 500, 1500, 5000, 120_000, 3_600_000, 90_000]) assert.equal(parseDuration(formatDuration(ms)), ms)
  })

  test('parseSize reads MB and MiB as the same binary unit, and reads back what formatBytes prints', () => {
    assert.equal(parseSize('20MB', '--heap-max'), 20 * MIB)
    assert.equal(parseSize('20 MiB', '--heap-max'), 20 * MIB)
    assert.equal(parseSize('1.5g', '--heap-max'), 1.5 * GIB)
    assert.equal(parseSize('4096KB', '--heap-max'), 4 * MIB)
    assert.equal(parseSize('512', '--heap-max'), 512)
    for (const bytes of [3 * MIB, 2 * GIB]) assert.equal(parseSize(formatBytes(bytes), '--heap-max'), bytes)
    for (const bad of ['20XB', '0MB', 'MB', '-1MB', '20 MiBs']) assert.throws(() => parseSize(bad, '--heap-max'), {code: 'badArgument'})
  })
})

describe('FerrydiagCommand', () => {
  test('passes flags through on success', async () => {
    const {result, error} = await runProbe(['--pid', '42', '--wait', '2m'])
    assert.equal(error, undefined)
    assert.deepEqual(result, {waitMs: 120_000, target: {inspect: undefined, pid: 42, allowRemote: false}})
    const defaults = await runProbe(['--inspect', '127.0.0.1:9333', '--allow-remote'])
    assert.deepEqual(defaults.result, {
      waitMs: 5000,
      target: {inspect: '127.0.0.1:9333', pid: undefined, allowRemote: true},
    })
  })

  test('a FerrydiagError is printed as one line with its exit status, code and suggestion', async () => {
    const {stderr, exitCode, error} = await runProbe(['--fail', 'ferrydiag'])
    assert.equal(error, undefined)
    assert.equal(exitCode, EXIT.noSuchProcess)
    const lines = stderr.split('\n').filter((line) => line.trim() !== '')
    assert.equal(lines.length, 1, stderr)
    assert.match(lines[0], /No process with pid 424242 \(ESRCH\) \(code noSuchProcess, exit 12\)\. Try this: Find the pid with `pgrep -af node`\./)
  })


  test('a bad duration flag is badDuration on one line naming the flag', async () => {
    const {stderr, exitCode} = await runProbe(['--wait', '-3s'])
    assert.equal(exitCode, EXIT.badDuration)
    assert.equal(stderr.trim().split('\n').length, 1, stderr)
    assert.match(stderr, /--wait: Expected --wait as a positive duration/)
  })


  test('an unknown error is one line with exit 1 and no stack trace', async () => {
    const plain = await runProbe(['--fail', 'plain'])
    assert.equal(plain.exitCode, 1)
    assert.match(plain.stderr, /TypeError: cannot read properties of undefined \(code unexpected, exit 1\)/)
    const multi = await runProbe(['--fail', 'multiline'])
    assert.equal(multi.exitCode, 1)
    assert.match(multi.stderr, /first line/)
    assert.doesNotMatch(multi.stderr, /\n\s+at /)
  })


  test("oclif's own usage errors keep exit 2 (--inspect and --pid are exclusive)", async () => {
    const both = await runProbe(['--inspect', '127.0.0.1:9229', '--pid', '42'])
    assert.equal(both.exitCode, 2)
    assert.match(both.stderr, /(--pid|--inspect).*\(code usage, exit 2\)/)
    const zeroPid = await runProbe(['--pid', '0'])
    assert.equal(zeroPid.exitCode, 2)
  })


  test('--json prints a stable error object on stdout', async () => {
    const {error, stdout, exitCode} = await runProbe(['--fail', 'ferrydiag', '--json'])
    // In --json mode oclif reports instead of throwing; the exit status is still the error's own.
    assert.equal(error, undefined)
    assert.equal(exitCode, EXIT.noSuchProcess)
    assert.deepEqual(JSON.parse(stdout), {
      error: {
        code: 'noSuchProcess',
        exit: EXIT.noSuchProcess,
        message: 'No process with pid 424242 (ESRCH).',
        suggestion: 'Find the pid with `pgrep -af node`.',
      },
    })
  })

  test('toCliError keeps oclif errors\' exit status and codes flag errors `usage`', () => {
    const usage = toCliError(new Errors.CLIError('bad flag\nSee more help with --help', {exit: 2})) as Errors.CLIError & {code?: string}
    assert.equal(usage.oclif?.exit, 2)
    assert.equal(usage.code, 'usage')
    assert.equal(usage.message, 'bad flag')
    const exit = new Errors.ExitError(3)
    assert.equal(toCliError(exit), exit)
  })
})
