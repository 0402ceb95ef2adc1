// The stacks dump: what `ferrydiag stacks` reports about one snapshot of a running pipeline (grouped
// waits, the buffers and stages they involve, and findings). This is the stable `--json` shape.

import type {Finding} from './findings.js'
import type {
  AgentSnapshot,
  ChannelRecord,
  HolderInfo,
  ProcessInfo,
  StackFrame,
  StageRecord,
  TaskKind,
  TaskState,
} from './snapshot.js'

/**
 * The process as a dump reports it: the snapshot's ProcessInfo, except that a dump built without any
 * agent (the heap route on an unprepared process) says 'none' for how the agent was loaded and its mode.
 */
export type DumpProcessInfo = Omit<ProcessInfo, 'agentMode' | 'agentLoadedBy'> & {
  agentMode: ProcessInfo['agentMode'] | 'none'
  agentLoadedBy: ProcessInfo['agentLoadedBy'] | 'none'
}

/** Schema tag and version of the dump; bumped only on a change that breaks existing readers. */
export const DUMP_SCHEMA = 'ferrydiag.stacks'
export const DUMP_VERSION = 2

/**
 * How the waits were obtained.
 * agent-preloaded: the agent ran from process start (`--import ferrydiag/register`): every wait on an
 *   instrumented buffer since start is recorded.
 * agent-injected: the CLI injected the agent over the inspector: hooks installed then see only waits
 *   that begin afterwards, so older waits (often the stuck ones) may be missing.
 * heap-snapshot: no agent; suspended async functions were recovered from a V8 heap snapshot (tasks of
 *   kind 'promise'; no buffer records, no stage records).
 */
export type DumpSourceKind = 'agent-preloaded' | 'agent-injected' | 'heap-snapshot'

/** Where the data came from and what that route cannot see. */
export interface DumpSource {
  /** The route taken (see DumpSourceKind). */
  kind: DumpSourceKind
  /** Limits of this route a reader should know about, one sentence each (may be empty). */
  notes: string[]
  /**
   * Only when the agent was injected (kind 'agent-injected', or a heap dump merged with an injected
   * agent): which run injected it. The agent stays in the process after detach, so a later run finds
   * it: 'earlier-run'. cliPid is null for an agent injected by a ferrydiag that did not record it.
   */
  injection?: AgentInjection
}

/** Which ferrydiag run injected the agent, and when. */
export interface AgentInjection {
  by: 'this-run' | 'earlier-run'
  /** Pid of the CLI that injected it; null when not recorded. */
  cliPid: number | null
  /** When it was injected, ms since the epoch. */
  atMs: number
}

/**
 * Tasks with the same kind, state, reason, buffer name, stage, holder and await stack: Go's grouped
 * goroutine dump (`N @ [chan send, 6019 minutes]`). In an ungrouped dump every group has count 1.
 */
export interface TaskGroup {
  /** Number of tasks in the group (= taskIds.length). */
  count: number
  /** What the tasks wait in (channel-send, channel-receive, slot-wait, stream-write, promise). */
  kind: TaskKind
  /** blocked: could still be woken; never-resumes: nothing can ever wake them. */
  state: TaskState
  /** For never-resumes: why nothing can wake these tasks ('channel-collected', 'no-resolver', ...). */
  reason?: string
  /** Name of the buffer, slot or stream waited on; absent for plain promises. */
  channelName?: string
  /**
   * Distinct ids of the buffers waited on, ascending. Usually one; several when same-named instances
   * share a stack (look each up in StacksDump.channels).
   */
  channelIds: number[]
  /** Stage the waiting code belongs to, when the pipeline declared one. */
  stageName?: string
  /** Heap route: what holds the awaited promise's resolver (data, see HolderInfo), when known. */
  holder?: HolderInfo
  /** Await site, innermost first (source-mapped when the caller supplied a mapping). */
  stack: StackFrame[]
  /** Tasks in the group whose wait age is unknown (heap route); the wait figures below leave them out. */
  unknownWaitCount: number
  /** Shortest wait of the tasks in the group (ms). */
  minWaitMs: number
  /** Longest wait of the tasks in the group (ms). */
  maxWaitMs: number
  /** Sum of the tasks' waits (ms): the pprof `wait` value. */
  totalWaitMs: number
  /** Ids of the tasks in the group, ascending. */
  taskIds: number[]
}

/** Thresholds the analysis used, so a reader can tell why something was or was not reported. */
export interface DumpThresholds {
  /** --min-wait as given (ms), or null: groups only show tasks waiting at least this long. */
  minWaitMs: number | null
  /**
   * A blocked task waiting at least this long (ms) gets a long-wait warning (see find-long-waits);
   * null when none are made (--min-wait=0).
   */
  longWaitMs: number | null
  /** Waits at least this long (ms) may be called stuck: deadlock, orphan buffer, unfilled slot. */
  stuckAfterMs: number
}

/** The whole dump. Times are epoch milliseconds unless a name says otherwise. */
export interface StacksDump {
  /** Always 'ferrydiag.stacks'. */
  schema: typeof DUMP_SCHEMA
  /** Shape version (1); readers should refuse versions they do not know. */
  version: typeof DUMP_VERSION
  /** When the agent (or heap snapshot) captured the data; every waitMs is relative to this. */
  takenAtMs: number
  /** The inspected process and how the agent got into it (from the snapshot). */
  process: DumpProcessInfo
  /** How the data was obtained, and that route's blind spots. */
  source: DumpSource
  /** False for `--debug=2`: one group per task. */
  grouped: boolean
  thresholds: DumpThresholds
  /** Tasks in the snapshot. */
  taskCount: number
  /** How many of them the --min-wait filter left out of `groups`. */
  hiddenTaskCount: number
  /** Most tasks first (ungrouped: by task id). */
  groups: TaskGroup[]
  /** Every buffer, slot and stream the agent knows, by id (including collected ones). */
  channels: ChannelRecord[]
  /** Every stage the pipeline declared, with its current state and time accounting. */
  stages: StageRecord[]
  /** Errors first, then warnings, then info; computed over all tasks, not only the shown ones. */
  findings: Finding[]
  /**
   * Heap route (added in version 2, optional): each emitter a task awaits an event on, with its state
   * and, for a stream, the state of every stream down its pipes. Absent when no task awaits an event.
   */
  emitters?: AwaitedEmitter[]
}

/**
 * A Writable side's state as read from the target (`_writableState`, and `_readableState` for a
 * duplex), at the end of the second look (or at its start when the look was cut short).
 */
export interface StreamState {
  /** writableLength: items (objectMode) or bytes buffered, the write in flight included. */
  writableLength: number
  writableHighWaterMark: number
  /** A write is in flight: handed to _write/_writev/_transform and its callback not called yet. */
  writing: boolean
  /** Writes that were accepted and whose callbacks have not run yet. */
  pendingCallbacks: number
  /** cork() depth (0: not corked). */
  corked: number
  needDrain: boolean
  ended: boolean
  destroyed: boolean
  /** The error message when the stream errored, else null. */
  errored: string | null
  /** Readable side of a duplex/transform, when it has one. */
  readableLength?: number
  readableHighWaterMark?: number
}

/** One stream of an awaited emitter's pipe chain (the awaited stream first, then downstream). */
export interface AwaitedStream {
  className: string
  heapId: number
  /** The user's write implementation(s): "_transform at file:line:col" (node's own are left out). */
  implementation: string[]
  /**
   * Who holds the callback of the write in flight, besides the stream state itself: 'none' when
   * nothing does (so no one can ever call it), 'stream' when the stream keeps it for later (a
   * Transform waiting for its readable side to be read), 'other' (a timer, a socket request, a closure).
   */
  callbackHolder: 'none' | 'stream' | 'other'
  /** What holds it, for 'stream' / 'other' (e.g. "Timeout", "Transform.<symbol kCallback>"). */
  callbackHeldBy?: string
  /** State read in the target; null when it could not be read. */
  state: StreamState | null
  /** Whether a write completed (or the state changed) during the second look; null: not observed. */
  moved: boolean | null
}

/** An emitter one or more tasks await an event on (heap route). */
export interface AwaitedEmitter {
  className: string
  heapId: number
  /** Short property paths reaching it ("sink", "feed.connection"), best first; may be empty. */
  paths: string[]
  /** The event awaited (not the 'error' listener that events.once also adds). */
  eventName: string
  taskIds: number[]
  /** Listener counts by event name, and its own numeric fields / list lengths, as last read. */
  listeners: Record<string, number> | null
  fields: Record<string, number> | null
  /** Whether its fields changed during the second look; null when not observed. */
  moved: boolean | null
  /** Length of the second look, ms; null when none was taken. */
  observedMs: number | null
  /** For a stream: the awaited stream then each stream down its pipes. */
  streams?: AwaitedStream[]
}

/**
 * What the stacks analyses read from a snapshot. A heap-snapshot route with no agent passes empty
 * channels and stages.
 */
export type StacksInput = Pick<AgentSnapshot, 'takenAtMs' | 'tasks' | 'channels' | 'stages'>
