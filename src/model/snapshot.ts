// The agent's snapshot: the one plain-JSON shape read from an inspected process and used by every
// analysis, by --json and by the pprof export. Times are epoch milliseconds unless a name says otherwise.

/** Schema tag and version the agent writes; the CLI refuses versions it does not know. */
export const SNAPSHOT_SCHEMA = 'ferrydiag.snapshot'
export const SNAPSHOT_VERSION = 1

/** The global key under which the agent lives inside the inspected process. */
export const AGENT_GLOBAL_KEY = 'ferrydiag.agent'

/** One frame of an await site, parsed from a V8 stack. Lines and columns are 1-based. */
export interface StackFrame {
  functionName: string
  url: string
  line: number
  column: number
  /**
   * Heap route only: how line/column were found when the suspended await's live position could not be
   * read (the task and the others parked at the same site moved on before it was looked up). Absent
   * when the line is the await's own, read from V8.
   * - 'only-await': the function's source has exactly one await/yield/for-await of its own: that one.
   * - 'awaited-call': of the function's awaits, the only one whose expression calls the function this
   *   frame awaits (the next frame inward), e.g. `await this.flush()` above a `flush` frame.
   * - 'await-candidates': several awaits are possible; line/column are the first, `awaitCandidates`
   *   lists them all.
   * - 'function-definition': nothing better was found (source not readable, or no await recognised in
   *   it): line/column are the function's header.
   */
  lineOf?: FrameLineOf
  /** With lineOf 'await-candidates': every await the frame may be suspended at, in source order (1-based). */
  awaitCandidates?: Array<{line: number; column: number}>
}

export type FrameLineOf = 'only-await' | 'awaited-call' | 'await-candidates' | 'function-definition'

/** A frame's site, "url:line:col": how evidence, groups and the text report name a place in the code. */
export function formatSite(frame: StackFrame): string {
  // V8 gives some frames no source position ("async Promise.all (index 1)"): show what it said.
  return frame.line === 0 ? frame.url : `${frame.url}:${frame.line}:${frame.column}`
}

/** How a wait's record came to be. */
export type TaskKind =
  | 'channel-send' // blocked in Channel.send: buffer full, or no receiver on a rendezvous
  | 'channel-receive' // blocked in Channel.receive: buffer empty
  | 'slot-wait' // awaiting a ChannelSlot that has never been filled (Go's nil channel)
  | 'stream-write' // a Node stream whose write() returned false, waiting for 'drain'
  | 'promise' // any other pending await (heap route or promise-hook mode)

/**
 * blocked: waiting on something that could still happen.
 * never-resumes: the buffer it waits on was garbage-collected while it waited, or (heap route) the
 *   promise it awaits has no reachable resolver. Nothing can ever wake it.
 */
export type TaskState = 'blocked' | 'never-resumes'

/** A pending wait: the Node equivalent of one goroutine parked on a channel. */
export interface TaskRecord {
  id: number
  kind: TaskKind
  state: TaskState
  /** Channel (or slot, or stream) the task waits on; absent for plain promises. */
  channelId?: number
  channelName?: string
  /** Stage the waiting code belongs to, when the pipeline said so. */
  stageName?: string
  sinceMs: number
  /** Age of the wait when the snapshot was taken. */
  waitMs: number
  /**
   * False when nothing recorded when the wait began (heap route on a process whose agent is not in
   * await-times mode): sinceMs and waitMs are then placeholders and must not be read as ages.
   */
  waitKnown?: boolean
  /** Await site, innermost first; ferrydiag's own frames removed. Empty when not captured. */
  stack: StackFrame[]
  /** When state is never-resumes: why (e.g. 'channel-collected', 'no-resolver'). */
  reason?: string
  /** Heap route: what holds the awaited promise's resolver (data; src/render words it). */
  holder?: HolderInfo
}

/** What can settle (or, for no-resolver, merely stores) the promise a heap-route task awaits. */
export type HolderKind =
  | 'channel-queue' // resolver sits in an array-like wait list of a queue-like object
  | 'timer' // a Timeout holds it (setTimeout / setInterval)
  | 'event-listener' // an EventEmitter (or EventTarget) listener holds it
  | 'object' // some other object's property holds it
  | 'task-locals' // the locals of another suspended async function that can still run
  | 'closure-variable' // a variable captured by a closure holds it
  | 'promise-reaction' // it settles when another promise settles (then/Promise combinator)
  | 'async-function' // the awaited promise is another async function's result
  | 'root' // held directly from a GC root (global handle, module, native)
  | 'native' // no JavaScript resolver: a native handle (fs request, socket, …) owns the promise
  | 'waiting-task-only' // the resolver is reachable only through suspended tasks that cannot run
  | 'no-resolver' // no resolve function in the heap and no native owner: it can never settle
  | 'unknown'

/**
 * Holder of an awaited promise as data, free of heap object ids so that thousands of tasks held the
 * same way group together. Every field but kind is optional.
 */
export interface HolderInfo {
  kind: HolderKind
  /** Constructor name of the object that holds it ('Timeout', 'EventEmitter', 'Gate', …). */
  objectClass?: string
  /** Property path from that object, indexes left out: "Pool.waiting[]", "Timeout._onTimeout". */
  path?: string
  /** The `name` (or `label`, `id`) string property of a queue-like holder. */
  channelName?: string
  /** The wait list property of a queue-like holder ('waiting', 'takers', …). */
  queueProperty?: string
  /** event-listener: the event the listener is for. */
  eventName?: string
  /** closure-variable (or via a closure): the variable and the closure's function name. */
  variable?: string
  closure?: string
  /** async-function / task-locals / waiting-task-only: the async function concerned. */
  functionName?: string
  /** Held through another promise that settles this one (then/combinator/thenable adoption). */
  throughPromise?: boolean
  /** Why the kind is 'unknown': 'not-recognised', 'through-tasks' or 'internal'. */
  detail?: 'not-recognised' | 'through-tasks' | 'internal'
}

export type ChannelKind = 'channel' | 'slot' | 'stream'

/** A bounded hand-off buffer (or a slot that will hold one, or a stream adapter). */
export interface ChannelRecord {
  id: number
  name: string
  kind: ChannelKind
  /** Items it can hold; 0 is a rendezvous. For a stream, its highWaterMark in items or bytes. */
  capacity: number
  length: number
  closed: boolean
  /** True once the object was garbage-collected (the record outlives it). */
  collected: boolean
  createdAtMs: number
  itemsIn: number
  itemsOut: number
  /** Distinct call sites that have ever sent / received (a stand-in for "distinct goroutines"). */
  sendersEver: number
  receiversEver: number
  /** Waits currently blocked on each side. */
  blockedSenders: number
  blockedReceivers: number
  /** Cumulative blocked time per side, including waits still in progress at snapshot time. */
  sendBlockedMs: number
  receiveBlockedMs: number
  /** Cumulative time the buffer was at capacity (full), including the current stretch. */
  fullMs: number
  /** Integral of length over time (item·ms), for the mean fill between two snapshots. */
  fillItemMs: number
  /** For a slot: whether it has been filled with a channel yet, and that channel's id. */
  filled?: boolean
  filledWithChannelId?: number
}

export type StageState = 'busy' | 'idle' | 'back-pressured'

/** Time accounting for the code around a buffer (Flink's busy / idle / back-pressured). */
export interface StageRecord {
  name: string
  state: StageState
  stateSinceMs: number
  /** Cumulative milliseconds in each state since the stage was created, including the current one. */
  busyMs: number
  idleMs: number
  backPressuredMs: number
  createdAtMs: number
  /** Items the stage reported as handled, and when it last reported progress. */
  itemsHandled: number
  lastProgressAtMs: number | null
  /** Source timestamp of the newest item handled (for transaction lag), when known. */
  lastItemTimestampMs: number | null
  /** Where the stage is in its input (binlog file/offset/GTID), when it reports one. */
  position: BinlogPosition | null
}

export interface BinlogPosition {
  file: string
  offset: number
  gtid?: string
}

/** One batch write: the (B, T) point of the cost model T = m·B + o. */
export interface BatchSample {
  stageName: string
  atMs: number
  events: number
  ms: number
  ok: boolean
  /** Write statements the batch took (the probes count them; absent when unknown): one per event is a row-by-row writer. */
  statements?: number
}

/** Batch samples kept by the agent, bounded: the most recent ones and a uniform sample since start. */
export interface BatchSampleSummary {
  recent: BatchSample[]
  /** Uniform reservoir sample over every batch since the stage started (Algorithm R). */
  reservoir: BatchSample[]
  totalCount: number
  totalFailed: number
}

/** The source end as the pipeline sees it (SHOW MASTER STATUS, or the simulator's equivalent). */
export interface SourceStatus {
  name: string
  kind: 'mysql' | 'simulated'
  end: BinlogPosition
  /** Events produced since the source was registered (simulated sources know this exactly). */
  eventsProduced?: number
  /** Timestamp of the newest event at the source end. */
  lastEventTimestampMs?: number
  error?: string
}

/** A runtime knob the pipeline exposes (e.g. BinlogEventBatchSize) that ferrydiag may read or vary. */
export interface SettingRecord {
  name: string
  value: number
  writable: boolean
}

export type AgentMode = 'channels' | 'await-times'

export interface ProcessInfo {
  pid: number
  nodeVersion: string
  uptimeSec: number
  argv: string[]
  title: string
  agentMode: AgentMode
  /** How the agent got into the process. */
  agentLoadedBy: 'preload' | 'import' | 'inject'
  agentVersion: string
  agentStartedAtMs: number
}

export interface AgentSnapshot {
  schema: typeof SNAPSHOT_SCHEMA
  version: typeof SNAPSHOT_VERSION
  takenAtMs: number
  /** performance.now() of the target at snapshot time, for deltas immune to clock changes. */
  monotonicMs: number
  process: ProcessInfo
  channels: ChannelRecord[]
  tasks: TaskRecord[]
  stages: StageRecord[]
  samples: BatchSampleSummary
  sources: SourceStatus[]
  settings: SettingRecord[]
  /** Named monotonically increasing counters the pipeline exposes (e.g. eventsApplied). */
  counters: Record<string, number>
  /** Time the agent spent building this snapshot inside the target. */
  buildMs: number
}
