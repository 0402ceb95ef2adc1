// One inspector session with a Node target: evaluate with a time budget, read the agent's snapshot,
// inject the agent when allowed, and detach leaving the target as it was (closing an inspector we opened).

import type CDP from 'chrome-remote-interface'
import {setTimeout as sleep} from 'node:timers/promises'

import {expandWireSnapshot, SNAPSHOT_WIRE_FORMAT, type WireSnapshot} from '../agent/agent-core.cjs'
import {
  CLOSE_MAX_WAIT_MS,
  closeInspectorWhenIdleExpression,
  forgetUndoExpression,
  HEARTBEAT_INTERVAL_MS,
  heartbeatExpression,
  registerUndoExpression,
  releaseExpression,
  watchdogInstallExpression,
  type WatchdogInstallStatus,
  type WatchdogReleaseStatus,
} from '../agent/watchdog.js'
import {registerCleanup} from '../cleanup.js'
import {FerrydiagError} from '../errors.js'
import {trace} from '../trace.js'
import {formatDurationMs} from '../units.js'
import {
  AGENT_GLOBAL_KEY,
  type AgentMode,
  type AgentSnapshot,
  SNAPSHOT_SCHEMA,
  SNAPSHOT_VERSION,
} from '../model/snapshot.js'
import {connectInspector, formatHostPort, type InspectorListEntry} from './connect.js'
import {snapshotInFlight} from './heap-snapshot.js'
import {readOwnedListeningSockets} from './proc-net.js'
import {isPortOpen, resolveTarget, type ResolvedTarget, type ResolveTargetOptions} from './target.js'

/** Default budget for one evaluation, in milliseconds. */
export const DEFAULT_EVALUATE_BUDGET_MS = 5000

export interface EvaluateOptions {
  /** Wall-clock budget for the whole evaluation (including awaiting a returned promise), ms. */
  budgetMs?: number
  /** Await a promise the expression returns (default true). */
  awaitPromise?: boolean
  /** Give the expression the console's command-line API (a working `require`, `$_`, …). */
  includeCommandLineAPI?: boolean
}

/** The expression threw inside the target; the message is the target's exception description. */
export class TargetEvaluationError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'TargetEvaluationError'
  }
}

export interface EnsureAgentResult {
  /** True when this call injected the agent; false when it was already there. */
  injected: boolean
  /** The injection expression's own status (parsed JSON), when injected. */
  status?: unknown
}

export interface DetachResult {
  /**
   * Only when ferrydiag opened the inspector with SIGUSR1: whether the port was seen closed again
   * after detaching. null when the inspector was already open before and was left as found.
   */
  inspectorClosed: boolean | null
  /** Time from the start of detach until the port was seen closed (or the check gave up), ms. */
  detachMs: number
}

export interface AttachOptions extends ResolveTargetOptions {
  /** Budget for /json/list and for the WebSocket handshake, each, in ms. */
  connectTimeoutMs?: number
  /** The command's flag that sets evaluation budgets (e.g. '--timeout'), named when one runs out. */
  budgetFlag?: string
  /**
   * false: a read-only observer that changes nothing in the target (e.g. a test reading the agent's
   * snapshot beside the CLI) takes no lease and installs no watchdog. Default true: every command does.
   */
  lease?: boolean
}

/**
 * Resolves the target flags, opens a session and takes the target's lease (installing the watchdog).
 * The caller must `detach()` (use try/finally). The session is also registered with the process's
 * cleanups, so a signal detaches it (src/cli/interrupt.ts); a signal that arrives while attaching
 * detaches as soon as the attach completes. Throws FerrydiagError sessionBusy when another ferrydiag
 * session holds the target.
 */
export async function attachTarget(options: AttachOptions): Promise<InspectorSession> {
  const attaching = openSession(options).then(async (session) => {
    session.budgetFlag = options.budgetFlag
    if (options.lease === false) return session
    try {
      await session.acquireLease({budgetMs: options.connectTimeoutMs})
    } catch (error) {
      await session.detach()
      throw error
    }
    return session
  })
  // Registered before the SIGUSR1 is sent: an interrupted attach still closes what it opened, once the
  // attach (lease included) has completed.
  const unregister = registerCleanup('detach from the target', async () => {
    const session = await attaching.catch(() => null)
    await session?.detach()
  })
  let session: InspectorSession
  try {
    session = await attaching
  } catch (error) {
    unregister()
    throw error
  }
  session.onDetached(unregister)
  trace('attached')
  return session
}

async function openSession(options: AttachOptions): Promise<InspectorSession> {
  const target = await resolveTarget(options)
  try {
    const {client, target: listEntry} = await connectInspector({
      host: target.host,
      port: target.port,
      timeoutMs: options.connectTimeoutMs,
      handshakeTimeoutMs: options.connectTimeoutMs,
    })
    return new InspectorSession(client, target, listEntry)
  } catch (error) {
    // We opened it but cannot use it: leave no unauthenticated port behind if we can help it. Without a
    // session there is no way to ask the target to close it, so say so.
    if (target.openedBySignal && error instanceof FerrydiagError) {
      throw new FerrydiagError(
        error.code,
        `${error.message} (ferrydiag opened this inspector with SIGUSR1 and could not close it again.)`,
        `${error.suggestion} To close the inspector, restart the target or run \`require('node:inspector').close()\` in it.`,
        {cause: error.cause},
      )
    }
    throw error
  }
}

type AttachState = 'attached' | 'detaching' | 'gone'

/** A live CDP session. Never enables the Debugger domain and never pauses the target. */
export class InspectorSession {
  readonly target: ResolvedTarget
  readonly inspectorTarget: InspectorListEntry
  /** Set when this session injected the agent. */
  agentLoadedBy: 'inject' | null = null
  /** The command's flag that sets evaluation budgets, named in timeout messages (see AttachOptions). */
  budgetFlag: string | undefined
  /** Set when the watchdog expired this session (no heartbeat for its timeout): its undo entries ran. */
  leaseLost = false
  /** What the watchdog undid at detach (names of undo entries), for tests and notes. */
  lastRelease: WatchdogReleaseStatus | null = null
  private readonly client: CDP.Client
  private state: AttachState = 'attached'
  private leaseToken: string | null = null
  private heartbeat: NodeJS.Timeout | undefined
  private detaching: Promise<DetachResult> | undefined
  private readonly detachedCallbacks: Array<() => void> = []

  constructor(client: CDP.Client, target: ResolvedTarget, inspectorTarget: InspectorListEntry) {
    this.client = client
    this.target = target
    this.inspectorTarget = inspectorTarget
    client.on('disconnect', () => {
      if (this.state === 'attached') this.state = 'gone'
    })
  }

  /** True until the target goes away or detach() starts. */
  get attached(): boolean {
    return this.state === 'attached'
  }

  /** The raw CDP client, for routes that need other domains (e.g. HeapProfiler). */
  get cdp(): CDP.Client {
    return this.client
  }

  /** HOST:PORT of the inspector, for messages. */
  get address(): string {
    return formatHostPort(this.target.host, this.target.port)
  }

  /** Calls `callback` once the session has detached. */
  onDetached(callback: () => void): void {
    this.detachedCallbacks.push(callback)
  }

  /**
   * Installs the watchdog and takes the target's lease, then beats every HEARTBEAT_INTERVAL_MS. Throws
   * FerrydiagError sessionBusy when another live ferrydiag session holds it.
   */
  async acquireLease(options: {budgetMs?: number} = {}): Promise<void> {
    const token = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`
    const raw = await this.evaluate<string>(
      watchdogInstallExpression({token, cliPid: process.pid, closeInspector: this.target.openedBySignal}),
      {budgetMs: options.budgetMs, awaitPromise: false},
    )
    const status = JSON.parse(raw) as WatchdogInstallStatus
    if (!status.installed) {
      const busy = status.busy
      throw new FerrydiagError(
        'sessionBusy',
        `Another ferrydiag session (CLI pid ${busy.cliPid}, attached ${formatDurationMs(Date.now() - busy.since)} ago, last heartbeat ${formatDurationMs(busy.lastBeatAgoMs)} ago) is attached to the target at ${this.address}; two sessions would undo each other's changes.`,
        `Wait for it to finish (\`ps -p ${busy.cliPid}\`); if that CLI was killed, its session expires ${formatDurationMs(Math.max(0, busy.timeoutMs - busy.lastBeatAgoMs))} from now and you can attach again.`,
      )
    }
    this.leaseToken = token
    const beat = heartbeatExpression(token)
    this.heartbeat = setInterval(() => {
      if (this.state !== 'attached') return
      const request = this.client.send('Runtime.evaluate', {expression: beat, returnByValue: true, silent: true, timeout: 500})
      request.then(
        (answer) => {
          if (answer.result?.value === false && this.state === 'attached') this.leaseLost = true
        },
        () => undefined,
      )
    }, HEARTBEAT_INTERVAL_MS)
    this.heartbeat.unref()
  }

  /**
   * Registers, inside the target, an undo function (`undoSource`: a function expression evaluated
   * there) that the watchdog runs if this CLI disappears, or that detach runs. Forget it with forgetUndo
   * once undone normally.
   */
  async registerUndo(name: string, undoSource: string): Promise<void> {
    await this.evaluate(registerUndoExpression(name, undoSource), {budgetMs: 2000, awaitPromise: false})
  }

  async forgetUndo(name: string): Promise<void> {
    await this.evaluate(forgetUndoExpression(name), {budgetMs: 2000, awaitPromise: false})
  }

  /**
   * Evaluates an expression in the target and returns its value (by value, i.e. JSON-compatible).
   * Throws FerrydiagError evaluateTimeout when the budget runs out, targetExited when the target goes
   * away, and TargetEvaluationError when the expression throws.
   *
   * Two timers guard the budget. V8's own `timeout` terminates a synchronous part that runs too long,
   * scoped to this evaluation only. The client-side timer covers a returned promise that never settles;
   * such a promise holds no running code, so it is simply abandoned. Runtime.terminateExecution is
   * never sent: if it arrived after the evaluation ended, it would abort whatever application code runs
   * at that moment.
   */
  async evaluate<T = unknown>(expression: string, options: EvaluateOptions = {}): Promise<T> {
    const budgetMs = options.budgetMs ?? DEFAULT_EVALUATE_BUDGET_MS
    if (!(budgetMs > 0) || !Number.isFinite(budgetMs)) {
      throw new RangeError(`Expected budgetMs to be a finite number > 0, got \`${budgetMs}\``)
    }
    this.assertAttached('evaluating an expression')
    const request = this.client.send('Runtime.evaluate', {
      expression,
      returnByValue: true,
      awaitPromise: options.awaitPromise ?? true,
      includeCommandLineAPI: options.includeCommandLineAPI ?? false,
      // silent: exceptions neither pause the target nor reach its console.
      silent: true,
      timeout: Math.ceil(budgetMs),
    })
    let timer: NodeJS.Timeout | undefined
    const overrun = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.timeoutError(budgetMs)), budgetMs)
    })
    // The request may still settle after a timeout; it must not become an unhandled rejection.
    request.catch(() => undefined)
    let response: Awaited<typeof request>
    try {
      response = await Promise.race([request, overrun])
    } catch (error) {
      throw this.translateError(error, budgetMs)
    } finally {
      clearTimeout(timer)
    }
    if (response.exceptionDetails) {
      const details = response.exceptionDetails
      const description = details.exception?.description ?? details.exception?.value ?? details.text
      if (/^Error: Execution was terminated|^Execution was terminated/.test(String(description))) {
        throw this.timeoutError(budgetMs)
      }
      throw new TargetEvaluationError(`The expression threw in the target: ${String(description).split('\n')[0]}`)
    }
    return response.result.value as T
  }

  /**
   * Reads the agent's snapshot. Returns null when the target has no agent; throws FerrydiagError
   * unknownSnapshot when the agent writes a schema or version this CLI does not know.
   */
  async readSnapshot(options: {budgetMs?: number} = {}): Promise<AgentSnapshot | null> {
    // Preferred: the agent writes the snapshot in slices across event-loop turns (each <= ~4 ms) and we
    // fetch it in pieces of 64k characters as they are written (streamSnapshot), because returning the
    // whole document in one answer makes the inspector serialise it in one turn (~0.8 s for a 34 MB
    // document). 4 ms / 64k rather than 8 ms / 256k measured 12-15 ms instead of ~28 ms of target stall at
    // 10k waits (31-33 vs 48-60 ms at 100k) in test/bench/stacks.bench.ts, at the same total time. Every
    // released agent streams; an object at the agent's key that does not is no agent this CLI reads. The
    // budget applies to each evaluation.
    const agentExpr = `globalThis[Symbol.for(${JSON.stringify(AGENT_GLOBAL_KEY)})]`
    const first = await this.evaluate<{id: number} | 'no-stream' | null>(
      `(() => { const agent = ${agentExpr};
        if (!agent) return null;
        if (typeof agent.streamSnapshot !== 'function' || typeof agent.nextSnapshotPiece !== 'function') return 'no-stream';
        return {id: agent.streamSnapshot({sliceMs: 4, pieceChars: 65536}).id} })()`,
      {budgetMs: options.budgetMs, awaitPromise: false},
    )
    if (first === null) return null
    if (first === 'no-stream' || typeof first.id !== 'number') throw unknownSnapshotError('no streamSnapshot/nextSnapshotPiece')
    const text = await this.readStreamedSnapshot(agentExpr, first.id, options.budgetMs)
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw unknownSnapshotError('text that is not JSON')
    }
    const record = (parsed ?? {}) as {schema?: unknown; version?: unknown; wire?: unknown}
    if (record.schema !== SNAPSHOT_SCHEMA) {
      throw unknownSnapshotError(`schema ${JSON.stringify(record.schema ?? null)}`)
    }
    if (record.version !== SNAPSHOT_VERSION) {
      throw unknownSnapshotError(`version ${JSON.stringify(record.version ?? null)}`)
    }
    return modelOfSnapshotDocument(parsed as WireSnapshot)
  }

  // Two requests in flight: while one piece travels and is parsed here, the target already answers the
  // next one. The agent answers nextSnapshotPiece calls in call order. More in flight would not help:
  // answers queued together in the target are serialised back to back, in one longer turn.
  private async readStreamedSnapshot(agentExpr: string, id: number, budgetMs: number | undefined): Promise<string> {
    const pieces: string[] = []
    let requested = 0
    let ended = false
    const fetchPieces = async (): Promise<void> => {
      try {
        while (!ended) {
          const index = requested++
          const piece = await this.evaluate<string | null>(`${agentExpr}.nextSnapshotPiece(${id})`, {budgetMs, awaitPromise: true})
          if (piece === null) {
            ended = true
            return
          }
          if (typeof piece !== 'string') throw unknownSnapshotError('a snapshot piece that is not text')
          pieces[index] = piece
        }
      } catch (error) {
        ended = true // the other request loop stops too
        throw error
      }
    }
    await Promise.all([fetchPieces(), fetchPieces()])
    // The null that ends the stream comes after every piece: a gap means pieces were lost.
    for (let i = 0; i < pieces.length; i++) if (typeof pieces[i] !== 'string') throw unknownSnapshotError('a streamed snapshot that ended early')
    return pieces.join('')
  }

  /** Whether the target has a usable agent (one with snapshotJson). */
  async hasAgent(options: {budgetMs?: number} = {}): Promise<boolean> {
    return this.evaluate<boolean>(
      `typeof globalThis[Symbol.for(${JSON.stringify(AGENT_GLOBAL_KEY)})]?.snapshotJson === 'function'`,
      {budgetMs: options.budgetMs, awaitPromise: false},
    )
  }

  /**
   * Makes sure the agent is in the target. When absent: injects it if `inject`, else throws
   * FerrydiagError noAgent. An injected agent sees only waits that begin after injection.
   */
  /**
   * Makes sure the agent is in the target, injecting it when allowed. `declinedSuggestion` is what to
   * tell the user when injection is not allowed (it names the caller's own flags).
   */
  async ensureAgent(options: {inject: boolean; mode?: AgentMode; budgetMs?: number; declinedSuggestion?: string}): Promise<EnsureAgentResult> {
    if (await this.hasAgent(options)) return {injected: false}
    if (!options.inject) {
      throw new FerrydiagError(
        'noAgent',
        `The target at ${this.address} has no ferrydiag agent, and injection was declined.`,
        options.declinedSuggestion ?? 'Start the target with `node --import ferrydiag/register app.js`.',
      )
    }
    // Loaded on demand: most attaches find a preloaded agent and never need the injection source.
    const {agentInjectionExpression} = await import('../agent/inject-source.js')
    const raw = await this.evaluate<unknown>(agentInjectionExpression({mode: options.mode, cliPid: process.pid}), {
      budgetMs: options.budgetMs,
      awaitPromise: true,
      includeCommandLineAPI: true,
    })
    let status: unknown = raw
    if (typeof raw === 'string') {
      try {
        status = JSON.parse(raw)
      } catch {
        status = raw
      }
    }
    if (!(await this.hasAgent(options))) {
      throw new FerrydiagError(
        'noAgent',
        `Injecting the agent into ${this.address} did not install it (status: ${JSON.stringify(status)}).`,
        'Start the target with `node --import ferrydiag/register app.js` instead.',
      )
    }
    this.agentLoadedBy = 'inject'
    return {injected: true, status}
  }

  /**
   * Closes the session, once (later calls share the first one's result). First waits for a heap snapshot
   * in progress to finish: closing the socket while V8 writes one can crash the target. Then the watchdog
   * runs every undo entry, drops the lease and, if ferrydiag opened the inspector with SIGUSR1, schedules
   * `inspector.close()` (it cannot run synchronously: close() waits for open sessions, ours included);
   * then checks from outside that the port closed. Never throws.
   */
  detach(options: {verifyTimeoutMs?: number} = {}): Promise<DetachResult> {
    this.detaching ??= this.detachOnce(options).finally(() => {
      for (const callback of this.detachedCallbacks.splice(0)) callback()
    })
    return this.detaching
  }

  private async detachOnce(options: {verifyTimeoutMs?: number}): Promise<DetachResult> {
    const startedAt = performance.now()
    trace('detach')
    const inFlight = snapshotInFlight(this.client)
    if (inFlight) await inFlight
    const wasAttached = this.state === 'attached'
    this.state = 'detaching'
    clearInterval(this.heartbeat)
    let scheduled = false
    if (wasAttached && this.leaseToken !== null) {
      try {
        const raw = await this.sendEvaluate<string>(releaseExpression(this.leaseToken), 2000)
        this.lastRelease = JSON.parse(raw) as WatchdogReleaseStatus
        scheduled = this.lastRelease.released && this.target.openedBySignal
      } catch {
        // The target went away meanwhile: nothing left to restore or close.
      }
    }
    if (wasAttached && this.target.openedBySignal && !scheduled) {
      try {
        // No watchdog (it expired, or was never installed): have the target close the inspector once
        // our connection has closed (closing it mid-handshake crashes the target; see the function).
        await this.sendEvaluate(closeInspectorWhenIdleExpression(), 2000)
        scheduled = true
      } catch {
        // The target went away meanwhile: nothing left to close.
      }
    }
    try {
      // An unref'd timer: a close that answers at once must not keep the CLI alive for the full second.
      await Promise.race([this.client.close(), sleep(1000, undefined, {ref: false})])
    } catch {
      // Already closed by the other side.
    }
    this.state = 'gone'
    if (!this.target.openedBySignal) return {inspectorClosed: null, detachMs: performance.now() - startedAt}
    const closed = scheduled
      ? await this.waitForInspectorClosed(options.verifyTimeoutMs ?? CLOSE_MAX_WAIT_MS + 2000)
      : !(await isPortOpen(this.target.host, this.target.port))
    return {inspectorClosed: closed, detachMs: performance.now() - startedAt}
  }

  private async waitForInspectorClosed(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs
    const pid = this.target.pid
    while (performance.now() < deadline) {
      if (pid !== null) {
        const sockets = await readOwnedListeningSockets(pid)
        if (sockets === null || !sockets.some((socket) => socket.port === this.target.port)) {
          // null: the process is gone or unreadable; fall back to a connection attempt.
          if (sockets !== null || !(await isPortOpen(this.target.host, this.target.port))) return true
        }
      } else if (!(await isPortOpen(this.target.host, this.target.port))) {
        return true
      }
      await sleep(20)
    }
    return false
  }

  /** Evaluate used by detach: no state checks, includeCommandLineAPI for the require fallback. */
  private async sendEvaluate<T = unknown>(expression: string, budgetMs: number): Promise<T> {
    const request = this.client.send('Runtime.evaluate', {
      expression,
      returnByValue: true,
      includeCommandLineAPI: true,
      silent: true,
      timeout: budgetMs,
    })
    request.catch(() => undefined)
    let timer: NodeJS.Timeout | undefined
    try {
      const response = await Promise.race([
        request,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), budgetMs)
        }),
      ])
      if (response.exceptionDetails) throw new Error(response.exceptionDetails.text)
      return response.result.value as T
    } finally {
      clearTimeout(timer)
    }
  }

  private assertAttached(doing: string): void {
    if (this.state === 'attached') return
    if (this.state === 'gone') throw this.exitedError(doing)
    throw new RangeError(`Cannot go on ${doing}: the session is detaching`)
  }

  private translateError(error: unknown, budgetMs: number): unknown {
    if (error instanceof FerrydiagError) return error
    const message = (error as Error)?.message ?? String(error)
    if (/Execution was terminated/.test(message)) return this.timeoutError(budgetMs)
    // process.exit() during an awaited evaluation answers "Execution context was destroyed." just
    // before the socket closes; the rest are the socket itself going away.
    if (
      /Execution context was destroyed|Cannot find context with specified id|WebSocket connection closed|WebSocket is not open|ECONNRESET|EPIPE/.test(
        message,
      )
    ) {
      this.state = 'gone'
      return this.exitedError('evaluating an expression')
    }
    return error
  }

  private timeoutError(budgetMs: number): FerrydiagError {
    return new FerrydiagError(
      'evaluateTimeout',
      `An evaluation in the target at ${this.address} did not finish within its ${budgetMs} ms budget; it was abandoned (V8 stopped any synchronous part).`,
      `The target may be busy in a long synchronous task (check CPU with \`top\`); retry${this.budgetFlag ? `, or raise the budget with ${this.budgetFlag}` : ' once it is less busy'}.`,
    )
  }

  private exitedError(doing: string): FerrydiagError {
    const pid = this.target.pid
    let alive: boolean | null = null
    if (pid !== null) {
      try {
        process.kill(pid, 0)
        alive = true
      } catch {
        alive = false
      }
    }
    const what =
      alive === true
        ? `process ${pid} closed its inspector connection`
        : alive === false
          ? `process ${pid} exited`
          : 'the target closed the inspector connection (it exited or closed its inspector)'
    return new FerrydiagError(
      'targetExited',
      `While ${doing}, ${what} (inspector ${this.address}).`,
      'Check whether the pipeline is still running (its logs, `pgrep -af node`), then attach again.',
    )
  }
}

/**
 * The model form of a parsed snapshot document: the agent writes each distinct stack once, and its
 * tasks' stackRefs are expanded (tasks at one site share one stack array).
 */
function modelOfSnapshotDocument(doc: WireSnapshot): AgentSnapshot {
  if (doc.wire !== SNAPSHOT_WIRE_FORMAT) throw unknownSnapshotError(`wire format ${JSON.stringify(doc.wire ?? null)}`)
  try {
    return expandWireSnapshot(doc)
  } catch (error) {
    if (error instanceof TypeError) throw unknownSnapshotError(`a malformed stack table (${error.message})`)
    throw error
  }
}

function unknownSnapshotError(seen: string): FerrydiagError {
  return new FerrydiagError(
    'unknownSnapshot',
    `The target's agent wrote a snapshot with ${seen}; this ferrydiag reads schema "${SNAPSHOT_SCHEMA}" version ${SNAPSHOT_VERSION}.`,
    'Use the ferrydiag version that matches the agent in the target (the one its ferrydiag/register or ferrydiag/runtime comes from).',
  )
}

