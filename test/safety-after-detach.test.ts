// What stays in a target after ferrydiag detaches (README "Safety"): the agent `stacks` injected (and the
// record of which run injected it), and the watchdog's note of how the last session ended; no lease, no
// undo entry, no watchdog timer, no probes, and the inspector that --pid opened is closed. A later dump
// says truthfully that an earlier run (by its CLI pid and time) injected the agent, not "just now".
import assert from 'node:assert/strict'
import {fileURLToPath} from 'node:url'
import {after, describe, it} from 'node:test'

import {AGENT_INJECTION_KEY} from '../src/agent/inject-source.js'
import {LEASE_KEY, UNDO_KEY, WATCHDOG_KEY} from '../src/agent/watchdog.js'
import {attachTarget} from '../src/attach/index.js'
import type {StacksDump} from '../src/model/dump.js'
import {AGENT_GLOBAL_KEY} from '../src/model/snapshot.js'
import {killAllTargets, spawnTarget} from './helpers/child-process.js'
import {runCli} from './helpers/run-node.js'
import {inspectorClosed, waitUntil} from './helpers/signals.js'

const UNPREPARED_MAIN = fileURLToPath(new URL('../../fixtures/unprepared/main.mjs', import.meta.url))

after(() => killAllTargets())

/** `stacks --pid PID --json`, with the CLI's own pid. */
async function stacksJson(pid: number): Promise<{dump: StacksDump; cliPid: number}> {
  let cliPid = 0
  const run = await runCli(['stacks', '--pid', String(pid), '--json'], {timeoutMs: 120_000, onStart: (child) => void (cliPid = child.pid!)})
  assert.equal(run.code, 0, run.stderr)
  return {dump: JSON.parse(run.stdout) as StacksDump, cliPid}
}

interface LeftInTarget {
  agent: boolean
  injection: {cliPid: number; atMs: number} | null
  lease: boolean
  watchdog: boolean
  undo: string[] | null
  probes: boolean
  lastEnd: {reason: string; cliPid: number} | null
}

/** Read by an observer session that takes no lease and installs nothing (it closes the inspector it opens). */
async function readLeftInTarget(pid: number): Promise<LeftInTarget> {
  const session = await attachTarget({pid, lease: false})
  try {
    const key = (name: string): string => `globalThis[Symbol.for(${JSON.stringify(name)})]`
    return await session.evaluate<LeftInTarget>(`({
      agent: ${key(AGENT_GLOBAL_KEY)} !== undefined,
      injection: ${key(AGENT_INJECTION_KEY)} ?? null,
      lease: ${key(LEASE_KEY)} !== undefined,
      watchdog: ${key(WATCHDOG_KEY)} !== undefined,
      undo: ${key(UNDO_KEY)} instanceof Map ? [...${key(UNDO_KEY)}.keys()] : null,
      probes: ${key('ferrydiag.probes')} !== undefined,
      lastEnd: ${key('ferrydiag.watchdog.lastEnd')} ?? null })`)
  } finally {
    await session.detach()
  }
}

describe('after detach', () => {
  it('stacks --pid twice: the agent stays with the record of the run that injected it; nothing else stays; the second dump names the first run', async () => {
    const target = await spawnTarget({file: UNPREPARED_MAIN, args: ['--scenario=healthy'], readyLine: /^unprepared-pipeline /, startTimeoutMs: 60_000})
    try {
      const first = await stacksJson(target.pid)
      assert.equal(first.dump.source.kind, 'agent-injected')
      assert.equal(first.dump.source.injection?.by, 'this-run')
      assert.equal(first.dump.source.injection?.cliPid, first.cliPid)
      assert.match(first.dump.source.notes[0]!, new RegExp(`^The agent was injected by this run \\(ferrydiag pid ${first.cliPid}\\) `))
      await waitUntil('the inspector opened by --pid to close', () => inspectorClosed(target.pid), 5000)

      const left = await readLeftInTarget(target.pid)
      assert.deepEqual(
        {...left, lastEnd: left.lastEnd && {reason: left.lastEnd.reason, cliPid: left.lastEnd.cliPid}},
        {
          agent: true,
          injection: {cliPid: first.cliPid, atMs: first.dump.source.injection!.atMs},
          lease: false,
          watchdog: false,
          undo: left.undo === null ? null : [],
          probes: false,
          lastEnd: {reason: 'detach', cliPid: first.cliPid},
        },
      )
      await waitUntil('the observer to close the inspector', () => inspectorClosed(target.pid), 5000)

      const second = await stacksJson(target.pid)
      const injection = second.dump.source.injection
      assert.deepEqual(injection, {by: 'earlier-run', cliPid: first.cliPid, atMs: first.dump.source.injection!.atMs})
      const note = second.dump.source.notes[0]!
      assert.match(note, new RegExp(`^The agent was injected by an earlier ferrydiag run \\(CLI pid ${first.cliPid}\\) at ${new Date(injection!.atMs).toISOString().replace(/\./g, '\\.')}, `))
      assert.doesNotMatch(note, /just now|by this run/)
      assert.ok(second.dump.takenAtMs > first.dump.takenAtMs)
      await waitUntil('the second run to close the inspector', () => inspectorClosed(target.pid), 5000)
      assert.ok(target.isAlive())
    } finally {
      await target.kill()
    }
  })
})
