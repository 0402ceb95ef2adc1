// The one interrupt and termination path of every command: SIGINT (Ctrl-C), SIGTERM, SIGHUP and a closed
// terminal (stdout/stderr failing with EPIPE/EIO). The first one ends a sampling window early so the
// command still reports (and cleans up in its own finally); without a window, or on a second signal, the
// registered cleanups run (src/cleanup.ts: detach, which restores settings and closes the inspector
// ferrydiag opened, and lets a heap snapshot in progress finish first; dropping a scratch table), then the
// CLI exits 128 + the signal number. A third signal exits at once: the watchdog in the target then
// restores it within its timeout.

import {runCleanups} from '../cleanup.js'
import {trace} from '../trace.js'

/** Exit status after Ctrl-C ended the window early (128 + SIGINT, as shells report it). */
export const EXIT_INTERRUPTED = 130

/** How the CLI was told to end. 'closed-terminal' is stdout or stderr failing (EPIPE, EIO). */
export type EndSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'closed-terminal'

/** 128 + signal number, as shells report it; a closed terminal counts as SIGHUP. */
export const EXIT_FOR: Record<EndSignal, number> = {SIGINT: 130, SIGTERM: 143, SIGHUP: 129, 'closed-terminal': 129}

/**
 * After the first signal, a sampling window gets this long to report and clean up on its own before
 * the registered cleanups are run for it, ms.
 */
export const GRACEFUL_END_MS = 15_000

export interface Interrupt {
  /** Aborted by the first signal (or by abort()). */
  readonly signal: AbortSignal
  /** Ends the window as a signal would, e.g. when a probe running beside it failed. */
  abort(): void
  /** The exit status for how the window was ended (130 for Ctrl-C, 143 SIGTERM, 129 SIGHUP). */
  readonly exitCode: number
  /** Stops listening; call in a finally. */
  dispose(): void
}

interface State {
  installed: boolean
  received: EndSignal | null
  count: number
  forcing: boolean
  listeners: Set<AbortController>
}

const state: State = {installed: false, received: null, count: 0, forcing: false, listeners: new Set()}

/** True once a signal (or a closed terminal) asked the CLI to end. */
export function isTerminating(): boolean {
  return state.received !== null
}

/** The signal that asked the CLI to end, if any. */
export function receivedSignal(): EndSignal | null {
  return state.received
}

/**
 * Installs the handlers once per process (the base command does, for every command). Idempotent.
 * Output errors after the terminal closed are swallowed: nobody can read them.
 */
export function installTerminationHandlers(): void {
  if (state.installed) return
  state.installed = true
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(name, () => onEnd(name))
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE' || error.code === 'EIO' || error.code === 'ENXIO') onEnd('closed-terminal')
    })
  }
  trace('handlers')
}

function onEnd(name: EndSignal): void {
  if (state.received === null) state.received = name
  state.count++
  if (state.count >= 3) {
    // The user will not wait for cleanup; the watchdog in the target restores it within its timeout.
    note(`ferrydiag: ${name} again: exiting without waiting for cleanup (the target's watchdog restores it within seconds)`)
    process.exit(EXIT_FOR[state.received])
  }
  const graceful = [...state.listeners]
  if (state.count === 1 && graceful.length > 0) {
    for (const controller of graceful) controller.abort()
    setTimeout(() => void force(), GRACEFUL_END_MS).unref()
    return
  }
  if (state.count === 2) note(`ferrydiag: ${name}: cleaning up before exiting (${name} once more to quit at once)`)
  void force()
}

async function force(): Promise<void> {
  if (state.forcing) return
  state.forcing = true
  for (const controller of state.listeners) controller.abort()
  await runCleanups(60_000)
  process.exit(EXIT_FOR[state.received ?? 'SIGINT'])
}

function note(line: string): void {
  try {
    process.stderr.write(`${line}\n`)
  } catch {
    // The terminal is gone.
  }
}

/**
 * For a command with a sampling window: the first signal aborts `signal` (instead of exiting) so the
 * command reports what it measured and cleans up in its own finally.
 */
export function listenForInterrupt(): Interrupt {
  installTerminationHandlers()
  const controller = new AbortController()
  state.listeners.add(controller)
  if (state.received !== null) controller.abort()
  return {
    signal: controller.signal,
    abort: () => controller.abort(),
    get exitCode() {
      return EXIT_FOR[state.received ?? 'SIGINT']
    },
    dispose: () => {
      state.listeners.delete(controller)
    },
  }
}
