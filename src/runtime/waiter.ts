// A parked wait (blocked send, receive, slot get or stream write): its agent task, the stage state it
// entered, and its abort wiring. Kept apart so channels, slots and streams cancel the same way.
import type {AgentApi, AgentChannelRec, AgentStageRec, AgentStageToken, AgentTask, WaitSide} from '../agent/agent-core.cjs'
import type {StageState, TaskKind} from '../model/snapshot.js'
import type {WaitOptions} from './channel.js'
import {stageRecordOf} from './stage.js'

// Promise executor without a per-call closure: new Promise(captureResolvers) leaves the resolving
// functions here, and takeResolve / takeReject hand them out (and clear them at once, so this module
// never keeps a settled promise, or what awaits it, alive).
let capturedResolve: ((value: never) => void) | undefined
let capturedReject: ((error: unknown) => void) | undefined

/** Executor for `new Promise(captureResolvers)`; read the functions back with takeResolvers(). */
export function captureResolvers(resolve: (value: never) => void, reject: (error: unknown) => void): void {
  capturedResolve = resolve
  capturedReject = reject
}

/**
 * One blocked call. All fields are set in the constructor (one hidden class for every waiter). The
 * agent's task holds only plain data; the resolving functions live here, on the channel's side, because
 * through them the agent would keep the awaiting function (and the channel in its locals) alive.
 */
export class Waiter<V, R> {
  /** True once taken off its queue (handed an item, closed) or cancelled; queues skip done waiters. */
  done = false
  task: AgentTask | undefined = undefined
  stageRec: AgentStageRec | undefined = undefined
  stageToken: AgentStageToken | undefined = undefined
  signal: AbortSignal | undefined = undefined
  onAbort: (() => void) | undefined = undefined
  readonly resolve: (result: R) => void
  readonly reject: (error: unknown) => void

  /** Call right after `new Promise(captureResolvers)`: takes over the functions it captured. */
  constructor(readonly value: V) {
    this.resolve = capturedResolve as (result: R) => void
    this.reject = capturedReject as (error: unknown) => void
    capturedResolve = undefined
    capturedReject = undefined
  }

  /** Ends the wait's records. Called once, by whoever takes the waiter (hand-off, close or abort). */
  finish(agent: AgentApi): void {
    this.done = true
    if (this.task !== undefined) agent.endWait(this.task)
    if (this.stageRec !== undefined) agent.stagePop(this.stageRec, this.stageToken as AgentStageToken)
    if (this.onAbort !== undefined) (this.signal as AbortSignal).removeEventListener('abort', this.onAbort)
  }
}

export interface ParkSpec<V, R> {
  agent: AgentApi
  rec: AgentChannelRec
  kind: TaskKind
  side: WaitSide
  value: V
  opts: WaitOptions | undefined
  /** Cache key for the await-site stack (an iterator), when the stage does not give one. */
  key: object | undefined
  /** The public method the caller called: frames from it inward are not part of the await site. */
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  above: Function
  stageState: StageState
  enqueue: (waiter: Waiter<V, R>) => void
  /** Called after an abort took the waiter out (it is already marked done). */
  cancelled: (waiter: Waiter<V, R>) => void
}

/**
 * Arms a new waiter: records the task (the stack is captured only here, when a call really blocks),
 * enters the stage state and wires abort. onCancel runs after an abort took the waiter out (it is
 * then already done and finished); the caller still has to queue the waiter.
 */
export function armWaiter<V, R>(
  agent: AgentApi,
  rec: AgentChannelRec,
  waiter: Waiter<V, R>,
  opts: WaitOptions | undefined,
  kind: TaskKind,
  side: WaitSide,
  key: object | undefined,
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  above: Function,
  stageState: StageState,
  onCancel: (waiter: Waiter<V, R>) => void,
): void {
  if (opts === undefined) {
    // The common case: no stage, no signal.
    waiter.task = agent.beginWait(rec, kind, side, undefined, key, above)
    return
  }
  const stage = opts.stage
  const stageRec = stage === undefined ? undefined : stageRecordOf(stage)
  waiter.task = agent.beginWait(rec, kind, side, stageRec, stageRec ?? key, above)
  if (stageRec !== undefined) {
    waiter.stageRec = stageRec
    waiter.stageToken = agent.stagePush(stageRec, stageState)
  }
  const signal = opts.signal
  if (signal !== undefined) {
    waiter.signal = signal
    waiter.onAbort = () => {
      if (waiter.done) return
      waiter.finish(agent)
      onCancel(waiter)
      waiter.reject(signal.reason)
    }
    signal.addEventListener('abort', waiter.onAbort, {once: true})
  }
}

/** Parks a wait (slots and streams; channels arm their waiters inline to save allocations). */
export function park<V, R>(spec: ParkSpec<V, R>): Promise<R> {
  const promise = new Promise<R>(captureResolvers)
  const waiter = new Waiter<V, R>(spec.value)
  armWaiter(spec.agent, spec.rec, waiter, spec.opts, spec.kind, spec.side, spec.key, spec.above, spec.stageState, spec.cancelled)
  spec.enqueue(waiter)
  return promise
}
