// The watchdog ferrydiag installs in a target at attach: it holds the session's lease, and when the CLI's
// heartbeat stops (the CLI was killed) or the CLI detaches, it runs every undo function ferrydiag code
// registered inside the target and closes the inspector if ferrydiag opened it. Runs INSIDE the target:
// `installWatchdog` is serialised with toString(), so it must stay self-contained (no imports, no helpers).

/**
 * Contract shared with everything ferrydiag installs in a target (probes, --perturb, …):
 * `globalThis[Symbol.for(UNDO_KEY)]` is a `Map<string, () => void>` created on first use with `??=`;
 * register an undo function under a unique name and delete it yourself when you undo normally.
 */
export const UNDO_KEY = 'ferrydiag.undo'
/** `globalThis[Symbol.for(LEASE_KEY)] = {token, cliPid, since, lastBeatMs, timeoutMs}` while a CLI is attached. */
export const LEASE_KEY = 'ferrydiag.lease'
/** The watchdog's own handle (beat, release), for the CLI. */
export const WATCHDOG_KEY = 'ferrydiag.watchdog'

/** The CLI evaluates a heartbeat this often while attached, ms. */
export const HEARTBEAT_INTERVAL_MS = 1000
/**
 * The watchdog expires the session after this long without a heartbeat, ms: five missed beats. Long
 * enough for a CLI delayed by a loaded machine (beats are tiny evaluations), short enough that a killed
 * CLI leaves a lowered batch size or an open inspector for seconds, not minutes.
 */
export const WATCHDOG_TIMEOUT_MS = 5000
/** How often the watchdog's unref'd timer looks at the last beat, ms. */
export const WATCHDOG_CHECK_MS = 500

export interface WatchdogInstallOptions {
  token: string
  cliPid: number
  timeoutMs: number
  checkMs: number
  /** Close the inspector when the session ends: ferrydiag opened it with SIGUSR1. */
  closeInspector: boolean
  /** closeInspectorWhenIdle's poll interval and longest wait, ms. */
  closePollMs: number
  closeMaxWaitMs: number
}

/** What the install expression answers (JSON-encoded). */
export type WatchdogInstallStatus =
  | {installed: true; expiredPrevious: boolean}
  | {installed: false; busy: {cliPid: number; since: number; lastBeatAgoMs: number; timeoutMs: number}}

/** What release answers: the undo entries that ran and those that threw. */
export interface WatchdogReleaseStatus {
  released: boolean
  undone: string[]
  failed: string[]
}

/** How often closeInspectorWhenIdle looks for connections to the inspector, ms. */
export const CLOSE_POLL_MS = 50
/**
 * The longest closeInspectorWhenIdle waits for the connections to end before closing anyway, ms. A
 * connection still open after this is idle (not ours: ours closes right after the release), and close()
 * ends idle connections safely.
 */
export const CLOSE_MAX_WAIT_MS = 3000

/**
 * Closes the inspector of the process that runs it (the target) once no WebSocket connection to it is
 * open or closing. Calling `inspector.close()` while a connection's close handshake is in flight crashes
 * Node 20: the inspector's I/O thread is joined and torn down while its close-frame write is pending,
 * and the write's callback (WsHandler::OnCloseFrameWritten) then runs on a freed handler: SIGSEGV, seen
 * in core dumps from `npm run bench -- signal-soak` (a fixed 50 ms delay after the release crashed 3 of
 * ~150 interrupted runs on a loaded machine). So it waits until /proc/self/net/tcp{,6} shows no socket on
 * the inspector's port other than the listener and TIME_WAIT (no handler left), then one more poll, then
 * closes; after `maxWaitMs` it closes anyway. Where /proc cannot be read it waits `maxWaitMs`.
 * Self-contained (serialised with toString()): no imports, no helpers.
 */
export function closeInspectorWhenIdle(options: {pollMs: number; maxWaitMs: number}): void {
  const proc = (globalThis as {process?: NodeJS.Process}).process
  const get = <T>(name: string): T | undefined => {
    try {
      // require: the console's command-line API, for a Node without getBuiltinModule (before 20.16).
      return (proc?.getBuiltinModule?.(name) ?? (typeof require === 'function' ? require(name) : undefined)) as T | undefined
    } catch {
      return undefined
    }
  }
  const inspector = get<typeof import('node:inspector')>('node:inspector')
  const fs = get<typeof import('node:fs')>('node:fs')
  if (!inspector) return
  let port = 0
  try {
    const url = inspector.url()
    if (url) port = Number(new URL(url).port)
  } catch {
    // No URL: the inspector is already closed.
  }
  // true: a connection to the inspector is open or closing; null: cannot tell.
  const connected = (): boolean | null => {
    if (!fs || !(port > 0)) return null
    let read = false
    for (const file of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
      let text: string
      try {
        text = fs.readFileSync(file, 'latin1')
      } catch {
        continue
      }
      read = true
      for (const line of text.split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/)
        if (fields.length < 4) continue
        const local = fields[1]!
        const state = fields[3]
        // 0A: LISTEN (the inspector's own listener); 06: TIME_WAIT (closed, no handler left).
        if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port && state !== '0A' && state !== '06') return true
      }
    }
    return read ? false : null
  }
  const startedMs = Date.now()
  let idlePolls = 0
  const attempt = (): void => {
    const state = connected()
    idlePolls = state === false ? idlePolls + 1 : 0
    if (idlePolls < 2 && Date.now() - startedMs < options.maxWaitMs) {
      const timer = setTimeout(attempt, options.pollMs)
      timer.unref?.()
      return
    }
    try {
      inspector.close()
    } catch {
      // Already closed.
    }
  }
  const timer = setTimeout(attempt, options.pollMs)
  timer.unref?.()
}

/** An expression that closes the target's inspector once no connection to it is open (closeInspectorWhenIdle). */
export function closeInspectorWhenIdleExpression(): string {
  return `((${closeInspectorWhenIdle.toString()})(${JSON.stringify({pollMs: CLOSE_POLL_MS, maxWaitMs: CLOSE_MAX_WAIT_MS})}), true)`
}

/**
 * Installs the watchdog in the process that evaluates it (the target). Refuses when another live
 * session holds the lease (its last beat is younger than its timeout); a stale lease (its CLI died and
 * the target was too busy for its watchdog to notice yet) is expired first, running its undo entries.
 * `closeWhenIdle` is closeInspectorWhenIdle, passed in because this function is serialised alone.
 */
export function installWatchdog(
  options: WatchdogInstallOptions,
  closeWhenIdle: (options: {pollMs: number; maxWaitMs: number}) => void,
): WatchdogInstallStatus {
  const g = globalThis as unknown as Record<symbol, unknown>
  const leaseKey = Symbol.for('ferrydiag.lease')
  const undoKey = Symbol.for('ferrydiag.undo')
  const dogKey = Symbol.for('ferrydiag.watchdog')
  type Lease = {token: string; cliPid: number; since: number; lastBeatMs: number; timeoutMs: number}
  type Dog = {token: string; expire: (reason: string) => {undone: string[]; failed: string[]}}
  const now = Date.now()
  const held = g[leaseKey] as Lease | undefined
  let expiredPrevious = false
  if (held !== undefined && held.token !== options.token) {
    const ago = now - held.lastBeatMs
    if (ago < held.timeoutMs) {
      return {installed: false, busy: {cliPid: held.cliPid, since: held.since, lastBeatAgoMs: ago, timeoutMs: held.timeoutMs}}
    }
    const previous = g[dogKey] as Dog | undefined
    if (previous && typeof previous.expire === 'function') previous.expire('stale lease')
    expiredPrevious = true
  }

  const runUndo = (): {undone: string[]; failed: string[]} => {
    const undone: string[] = []
    const failed: string[] = []
    const entries = g[undoKey] as Map<string, () => void> | undefined
    if (entries instanceof Map) {
      for (const [name, undo] of [...entries]) {
        entries.delete(name)
        try {
          undo()
          undone.push(name)
        } catch {
          failed.push(name)
        }
      }
    }
    return {undone, failed}
  }
  const lease: Lease = {token: options.token, cliPid: options.cliPid, since: now, lastBeatMs: now, timeoutMs: options.timeoutMs}
  g[leaseKey] = lease
  let lastCheckMs = now
  let ended = false
  // Deferred until the CLI's connection has closed (see closeInspectorWhenIdle).
  const closeInspector = (): void => closeWhenIdle({pollMs: options.closePollMs, maxWaitMs: options.closeMaxWaitMs})
  const end = (reason: string, close: boolean): {undone: string[]; failed: string[]} => {
    if (ended) return {undone: [], failed: []}
    ended = true
    clearInterval(timer)
    const result = runUndo()
    if (g[leaseKey] === lease) delete g[leaseKey]
    if ((g[dogKey] as Dog | undefined)?.token === options.token) delete g[dogKey]
    if (close) closeInspector()
    // Kept after the session: what the last session's end undid, and why it ended (tests, post-mortems).
    g[Symbol.for('ferrydiag.watchdog.lastEnd')] = {reason, atMs: Date.now(), cliPid: options.cliPid, ...result}
    return result
  }
  const timer = setInterval(() => {
    const t = Date.now()
    // The target itself was stopped (a heap snapshot, a long synchronous task): the CLI could not beat
    // either, so the silence proves nothing. Give it a full timeout from now.
    if (t - lastCheckMs > 2 * options.checkMs + 250) lease.lastBeatMs = Math.max(lease.lastBeatMs, t)
    lastCheckMs = t
    if (t - lease.lastBeatMs > lease.timeoutMs) end('heartbeat lost', options.closeInspector)
  }, options.checkMs)
  timer.unref?.()
  const dog = {
    token: options.token,
    /** The CLI's heartbeat: false when this session has already expired (its undo entries ran). */
    beat(token: string): boolean {
      if (ended || token !== options.token) return false
      lease.lastBeatMs = Date.now()
      return true
    },
    /** Normal detach: undo everything, drop the lease, close the inspector if ferrydiag opened it. */
    release(token: string): {released: boolean; undone: string[]; failed: string[]} {
      if (token !== options.token || ended) return {released: false, undone: [], failed: []}
      return {released: true, ...end('detach', options.closeInspector)}
    },
    expire: (reason: string) => end(reason, false),
  }
  g[dogKey] = dog
  return {installed: true, expiredPrevious}
}

/** The expression that installs the watchdog; it answers a JSON WatchdogInstallStatus. */
export function watchdogInstallExpression(
  options: Omit<WatchdogInstallOptions, 'timeoutMs' | 'checkMs' | 'closePollMs' | 'closeMaxWaitMs'> & Partial<WatchdogInstallOptions>,
): string {
  const full: WatchdogInstallOptions = {
    timeoutMs: WATCHDOG_TIMEOUT_MS,
    checkMs: WATCHDOG_CHECK_MS,
    closePollMs: CLOSE_POLL_MS,
    closeMaxWaitMs: CLOSE_MAX_WAIT_MS,
    ...options,
  }
  return `JSON.stringify((${installWatchdog.toString()})(${JSON.stringify(full)}, ${closeInspectorWhenIdle.toString()}))`
}

/** The heartbeat expression: true while the session holds its lease. */
export function heartbeatExpression(token: string): string {
  return `globalThis[Symbol.for(${JSON.stringify(WATCHDOG_KEY)})]?.beat(${JSON.stringify(token)}) === true`
}

/** The release expression (normal detach); answers a JSON WatchdogReleaseStatus. */
export function releaseExpression(token: string): string {
  return `JSON.stringify(globalThis[Symbol.for(${JSON.stringify(WATCHDOG_KEY)})]?.release(${JSON.stringify(token)}) ?? {released: false, undone: [], failed: []})`
}

/**
 * An expression that registers `undoSource` (a function expression, evaluated in the target) under
 * `name` in the shared undo map, creating the map on first use.
 */
export function registerUndoExpression(name: string, undoSource: string): string {
  return `((globalThis[Symbol.for(${JSON.stringify(UNDO_KEY)})] ??= new Map()).set(${JSON.stringify(name)}, (${undoSource})), true)`
}

/** An expression that forgets the undo entry `name` (after undoing it normally). */
export function forgetUndoExpression(name: string): string {
  return `(globalThis[Symbol.for(${JSON.stringify(UNDO_KEY)})]?.delete(${JSON.stringify(name)}) ?? false)`
}
