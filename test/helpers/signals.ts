// Sending a signal to the built CLI at a chosen moment: FERRYDIAG_TRACE makes it print
// `ferrydiag-trace PHASE` lines (src/trace.ts), and the signal goes a random delay after one of them.
// Shared by the safety test's random-signal loop and the many-runs bench (test/bench/signal-soak.bench.ts).
import assert from 'node:assert/strict'
import type {ChildProcess} from 'node:child_process'

import {readOwnedListeningSockets} from '../../src/attach/proc-net.js'
import type {Random} from './generate-samples.js'
import {runCli, type RunResult} from './run-node.js'

export const END_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

/** Exit statuses a signalled CLI may end with: finished first (0), or 128 + the signal. */
export const SIGNAL_EXITS = new Set([0, 129, 130, 143])

export interface SignalPick {
  signal: NodeJS.Signals
  phase: string
  delayMs: number
  label: string
}

/** A random signal, one of `phases` and a delay of 0..its max ms after it. */
export function pickSignal(random: Random, phases: Array<[phase: string, maxDelayMs: number]>): SignalPick {
  const signal = END_SIGNALS[random.integer(0, END_SIGNALS.length - 1)]
  const [phase, maxDelayMs] = phases[random.integer(0, phases.length - 1)]
  const delayMs = random.integer(0, maxDelayMs)
  return {signal, phase, delayMs, label: `${signal} ${delayMs} ms after ${phase}`}
}

/**
 * Runs the CLI with FERRYDIAG_TRACE set and sends `pick.signal` `pick.delayMs` after it printed
 * `ferrydiag-trace PHASE` (if it is still running then; a phase never reached sends nothing). On a
 * loaded machine the CLI takes seconds to start, so a delay from spawn would mostly hit a CLI that has
 * not begun. `sent` says whether the signal went out.
 */
export async function runAndSignal(args: string[], pick: Pick<SignalPick, 'signal' | 'phase' | 'delayMs'>, timeoutMs = 120_000): Promise<RunResult & {sent: boolean}> {
  let timer: NodeJS.Timeout | undefined
  let child: ChildProcess | undefined
  let sent = false
  const result = await runCli(args, {
    timeoutMs,
    env: {FERRYDIAG_TRACE: '1'},
    onStart: (started: ChildProcess) => {
      child = started
    },
    onStderr: (stderr) => {
      if (timer === undefined && stderr.includes(`ferrydiag-trace ${pick.phase}\n`)) {
        timer = setTimeout(() => {
          sent = child?.exitCode === null && child.signalCode === null && child.kill(pick.signal)
        }, pick.delayMs)
      }
    },
  })
  clearTimeout(timer)
  return {...result, sent}
}

/** True when the process listens on no TCP port (the target fixtures used with this open none of their own). */
export async function inspectorClosed(pid: number): Promise<boolean> {
  const sockets = await readOwnedListeningSockets(pid)
  return sockets !== null && sockets.length === 0
}

/** Polls `condition` every 50 ms; fails naming `what` after `timeoutMs`. */
export async function waitUntil(what: string, condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
}
