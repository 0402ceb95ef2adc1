// The ferrydiag agent: the registry of channels, waits, stages, sources, settings and counters that lives
// inside the inspected process and answers snapshot(). installAgent is ONE self-contained function (no
// imports, no module-scope references) so its source text can also be evaluated in a target over the
// inspector. It is CommonJS so that `node --require` and ESM importers share this one file. Beside it,
// the reader's half of the agent's JSON wire format (expandWireSnapshot), so both halves change together.

import type {
  AgentMode,
  AgentSnapshot,
  BatchSample,
  BinlogPosition,
  ChannelKind,
  ChannelRecord,
  SourceStatus,
  StackFrame,
  StageState,
  TaskKind,
  TaskRecord,
} from '../model/snapshot.js'

export type AgentLoadedBy = 'preload' | 'import' | 'inject'
export type WaitSide = 'send' | 'receive'

/** Options for installAgent. mode defaults to env FERRYDIAG_AGENT_MODE, else 'channels'. */
export interface InstallOptions {
  loadedBy: AgentLoadedBy
  mode?: AgentMode | null
}

/** Per-side stack sampling state (see stackFor in installAgent). */
export interface SideStackState {
  /** Cached capture per wait key (a stage's record or an iterator), refreshed after keyedRefreshMs. */
  keyed: WeakMap<object, AgentStackEntry>
  tokens: number
  tokensAtMono: number
  last: AgentStackEntry | null
}

export interface AgentStackEntry {
  /** Formatted V8 stack. */
  raw: string
  /** Its first caller frame line: the await-site identity behind sendersEver / receiversEver. */
  site: string
  atMono: number
}

/**
 * Mutable record the agent keeps for one channel, slot or stream. The agent holds it strongly; it never
 * references the channel object itself (only ownerRef, a WeakRef), so it outlives the channel.
 * All *Mono fields are performance.now() milliseconds.
 */
export interface AgentChannelRec
  extends Pick<ChannelRecord, 'id' | 'name' | 'kind' | 'capacity' | 'length' | 'closed' | 'collected' | 'itemsIn' | 'itemsOut'> {
  collectedAtMono: number
  createdAtMono: number
  /** Identities seen (stage records, or await sites of blocked waits). */
  senders: Set<unknown>
  receivers: Set<unknown>
  anonSender: boolean
  anonReceiver: boolean
  /** Last identity noted per side, so the per-item check is one comparison. */
  lastSender: unknown
  lastReceiver: unknown
  /**
   * Stack entry behind the last blocked wait noted per side: the per-wait check is one identity
   * comparison (comparing the site strings themselves would compare their characters whenever a
   * resampled stack yields an equal but distinct string).
   */
  lastSendEntry: AgentStackEntry | null
  lastReceiveEntry: AgentStackEntry | null
  /** Blocked waits per side, as intrusive lists (cheaper per wait than a Set). */
  sendTasks: AgentTaskList
  receiveTasks: AgentTaskList
  sendBlockedDoneMs: number
  receiveBlockedDoneMs: number
  /** Start of the current full stretch, or -1 when not full. */
  fullSinceMono: number
  fullDoneMs: number
  /** Fill integral (item·ms) up to lengthSinceMono, when the length last changed. */
  fillDoneItemMs: number
  lengthSinceMono: number
  filled: boolean | undefined
  filledWithChannelId: number | undefined
  ownerRef: WeakRef<object>
  sendStacks: SideStackState
  receiveStacks: SideStackState
}

export interface AgentTaskList {
  head: AgentTask | null
  tail: AgentTask | null
  size: number
}

/** One blocked wait. Holds only plain data (never the channel, a resolver or a structured stack). */
export interface AgentTask {
  prev: AgentTask | null
  next: AgentTask | null
  /** Whether it is still in its side's list (the wait has not ended). */
  linked: boolean
  id: number
  kind: TaskKind
  side: WaitSide
  rec: AgentChannelRec
  stageName: string | undefined
  sinceMono: number
  /** Formatted V8 stack of the await site ('' when not captured); parsed lazily at snapshot time. */
  raw: string
  state: 'blocked' | 'never-resumes'
  reason: string | undefined
}

/** A snapshot document kept in the agent for a reader that fetches it piece by piece. */
export interface HeldSnapshot {
  /** Pieces not yet handed over start at next (taken ones are blanked). */
  pieces: string[]
  next: number
  /** True once the writer finished (or failed). */
  done: boolean
  error: unknown
  /** Readers waiting for a piece not written yet (streamed snapshots only). */
  waiters: Array<{resolve: (piece: string | null) => void; reject: (error: unknown) => void}>
  timer: unknown
}

/** The stack table of one wire document being written: ref per distinct raw stack, and the table's JSON. */
export interface WireStackTable {
  refs: Map<string, number>
  /** The entries written so far, comma-separated, without the enclosing brackets. */
  json: string
}

export interface AgentStageToken {
  state: StageState
}

export interface AgentStageRec {
  name: string
  state: StageState
  stateSinceMono: number
  busyMs: number
  idleMs: number
  backPressuredMs: number
  createdAtMono: number
  itemsHandled: number
  lastProgressAtMs: number | null
  lastItemTimestampMs: number | null
  position: BinlogPosition | null
  /** Active state entries; the newest one defines the state, 'idle' when none. */
  entries: AgentStageToken[]
}

export interface AgentSourceRead {
  end: BinlogPosition
  eventsProduced?: number
  lastEventTimestampMs?: number
  error?: string
}

/**
 * The shape of the agent's JSON documents (snapshotJson, snapshotJsonAsync, snapshotJsonPieces and held
 * snapshots). Waiters parked at one await site share one stack, and at 100k tasks repeating it in every
 * task made the document ~40 MB; so the document lists each distinct stack once and tasks point into
 * that list. Agents from before this format write no `wire` field and a `stack` in every task.
 */
export const SNAPSHOT_WIRE_FORMAT = 2

/** A task as written in a wire-2 document: its stack is stacks[stackRef] of the document. */
export type WireTaskRecord = Omit<TaskRecord, 'stack'> & {stackRef: number}

/** A wire-2 document: AgentSnapshot with tasks' stacks moved into one table of distinct stacks. */
export type WireSnapshot = Omit<AgentSnapshot, 'tasks'> & {
  wire: typeof SNAPSHOT_WIRE_FORMAT
  tasks: WireTaskRecord[]
  /** Each distinct await-site stack once, innermost frame first; indexed by WireTaskRecord.stackRef. */
  stacks: StackFrame[][]
}

/**
 * Turns a parsed wire-2 document into the AgentSnapshot model, in place: each task gets `stack` from the
 * table (tasks at one site share one array: treat stacks as read-only) and loses stackRef; `wire` and
 * `stacks` go. Throws TypeError when the tables do not fit (a reference outside the table, no table).
 */
export function expandWireSnapshot(doc: WireSnapshot): AgentSnapshot {
  const stacks = doc.stacks
  const tasks = doc.tasks
  if (!Array.isArray(stacks) || !Array.isArray(tasks)) {
    throw new TypeError(`Expected a wire ${SNAPSHOT_WIRE_FORMAT} snapshot with \`tasks\` and \`stacks\` arrays, got ${typeof tasks} and ${typeof stacks}`)
  }
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as WireTaskRecord & {stack?: StackFrame[]}
    const ref = task.stackRef
    const stack = stacks[ref]
    if (!Number.isInteger(ref) || !Array.isArray(stack)) {
      throw new TypeError(`Expected task ${String(task.id)}'s stackRef to index the ${stacks.length} stacks, got \`${String(ref)}\``)
    }
    // The agent writes stackRef last: deleting an object's newest property keeps the tasks' V8 shape
    // shared, where deleting any other turns each task into a slow dictionary object.
    delete (task as Partial<WireTaskRecord>).stackRef
    task.stack = stack
  }
  const model = doc as Partial<WireSnapshot>
  delete model.wire
  delete model.stacks
  return model as unknown as AgentSnapshot
}

/** The object installed at globalThis[Symbol.for('ferrydiag.agent')]. */
export interface AgentApi {
  readonly apiVersion: number
  readonly agentVersion: string
  readonly mode: AgentMode
  readonly loadedBy: AgentLoadedBy
  readonly startedAtMs: number
  /** The snapshot as the model, in this process: every task carries its stack (shared arrays; read-only). */
  snapshot(): AgentSnapshot
  /**
   * snapshot() as a wire document (WireSnapshot: `wire: 2`, a `stacks` table, `stackRef` in each task),
   * written in one synchronous turn. expandWireSnapshot(JSON.parse(text)) is the model again.
   */
  snapshotJson(): string
  /**
   * The same document as snapshotJson(), written across event-loop turns so that no turn blocks for
   * much more than sliceMs (default 8). Everything is captured synchronously at the call (clock,
   * counters, channel and stage records, the list of blocked tasks); only the tasks' JSON (and the stack
   * table, as it grows) is written later, in slices between setImmediate turns. A task that ends while
   * the slices run is still reported as it was at capture time (state, waitMs); waits that begin later
   * are not included.
   * buildMs is the time spent in the capture and the slices, not the wall time they spanned.
   */
  snapshotJsonAsync(options?: {sliceMs?: number}): Promise<string>
  /**
   * snapshotJsonAsync's document as consecutive pieces of about pieceChars characters (default 256k),
   * whose concatenation is the document. For a reader that fetches it piece by piece over the inspector.
   */
  snapshotJsonPieces(options?: {sliceMs?: number; pieceChars?: number}): Promise<string[]>
  /**
   * Takes a snapshot like snapshotJsonPieces, answers at once (after the synchronous capture) and writes
   * the pieces in the background, so that a reader fetches each piece with nextSnapshotPiece while the
   * next is written. Kept for HELD_SNAPSHOT_MS at most. Returning a 30 MB string over the inspector in one
   * answer stalls the target for ~0.8 s (the protocol serialises it on the main thread); piece by piece,
   * each turn is short.
   */
  streamSnapshot(options?: {sliceMs?: number; pieceChars?: number}): {id: number}
  /**
   * The next piece of a streamed snapshot as soon as it is written; null after the last one
   * (the snapshot is then dropped) or for an unknown id. Rejects when writing the snapshot failed.
   * Calls are answered in call order, so a reader may keep several calls in flight.
   */
  nextSnapshotPiece(id: number): Promise<string | null>
  /** Switch on await-times mode (promise start stamps); false when v8.promiseHooks is unavailable. */
  enableAwaitTimes(): boolean
  /** Frames whose URL starts with one of these prefixes are removed from await sites. */
  addOwnFrames(prefix: string): void
  registerChannel(owner: object, name: string, kind: ChannelKind, capacity: number): AgentChannelRec
  describeChannel(rec: AgentChannelRec): ChannelRecord
  noteSender(rec: AgentChannelRec, identity: unknown): void
  noteReceiver(rec: AgentChannelRec, identity: unknown): void
  setLength(rec: AgentChannelRec, length: number): void
  setFull(rec: AgentChannelRec, full: boolean): void
  beginWait(
    rec: AgentChannelRec,
    kind: TaskKind,
    side: WaitSide,
    stage: AgentStageRec | undefined,
    key: object | undefined,
    // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
    captureAbove: Function,
  ): AgentTask
  endWait(task: AgentTask): void
  registerStage(owner: object, name: string): AgentStageRec
  stagePush(rec: AgentStageRec, state: StageState): AgentStageToken
  stagePop(rec: AgentStageRec, token: AgentStageToken): void
  stageProgress(rec: AgentStageRec, items: number, itemTimestampMs: number | undefined, position: BinlogPosition | undefined): void
  recordBatch(rec: AgentStageRec, events: number, ms: number, ok: boolean): void
  registerSource(name: string, kind: 'mysql' | 'simulated', read: () => AgentSourceRead): () => void
  registerSetting(name: string, get: () => number, set?: (value: number) => void): () => void
  /** Set a registered setting (what tune-batch uses); returns the value read back. */
  writeSetting(name: string, value: number): number
  counter(name: string): {add(n?: number): void; readonly value: number}
}

export function installAgent(options: InstallOptions): AgentApi {
  'use strict'
  const g = globalThis as any
  const GLOBAL_KEY = Symbol.for('ferrydiag.agent')
  const existing = g[GLOBAL_KEY]
  if (existing !== undefined && existing !== null) {
    if (options.mode === 'await-times' && existing.mode !== 'await-times' && typeof existing.enableAwaitTimes === 'function') {
      existing.enableAwaitTimes()
    }
    return existing as AgentApi
  }

  const proc = g.process
  const perf: {now(): number; timeOrigin: number} = g.performance
  const AGENT_VERSION = '0.1.0'
  const API_VERSION = 1
  // Shape of the JSON documents (snapshotJson and its sliced forms); see WireSnapshot.
  const WIRE_FORMAT = 2
  // Stack sampling: an unkeyed blocking wait captures its await site while the side's token bucket has
  // tokens (burst STACK_BURST; once empty, one token per STACK_REFILL_MS elapsed); otherwise it reuses
  // the side's latest capture. Capturing costs ~5-15 µs, so a consumer blocking on every item at 50k
  // items/s would otherwise spend most of a core on stacks. Keyed waits (a stage, an async iterator)
  // reuse their own capture for KEYED_REFRESH_MS.
  const STACK_BURST = 32
  const STACK_REFILL_MS = 1000 / 32
  const KEYED_REFRESH_MS = 1000
  const STACK_FRAMES = 24
  const RECENT_SAMPLES = 2048
  const RESERVOIR_SAMPLES = 1024
  const KEPT_COLLECTED = 100
  const PARSE_CACHE_MAX = 10000

  // Every time the agent records (a wait's start and end, a full/not-full edge, a length change, a stage
  // state change) is one performance.now() reading, ~60 ns on Node 20. A cached reading shared by several
  // events was tried (reused until a process.nextTick cleared it): it cut the paced overhead, but a long
  // synchronous stretch between two events made the second one's time stale by that stretch, and the
  // accounting tests (blocked and full time within 1 ms of the caller's own clock) rightly failed.
  function stamp(): number {
    return perf.now()
  }

  const startMono = perf.now()
  const startedAtMs = Math.round(perf.timeOrigin + startMono)
  const envMode = proc?.env?.FERRYDIAG_AGENT_MODE
  let mode: AgentMode = 'channels'
  const requestedMode = options.mode ?? envMode
  let stopPromiseHook: (() => void) | undefined

  let channelSeq = 0
  let taskSeq = 0
  const channels = new Set<AgentChannelRec>()
  const collectedKept: AgentChannelRec[] = []
  const stages = new Set<AgentStageRec>()
  const sources = new Map<string, {kind: 'mysql' | 'simulated'; read: () => AgentSourceRead; lastEnd: BinlogPosition | undefined}>()
  const settings = new Map<string, {get: () => number; set: ((value: number) => void) | undefined}>()
  const counters = new Map<string, {value: number}>()
  const ownPrefixes: string[] = []
  const parseCache = new Map<string, Array<{functionName: string; url: string; line: number; column: number}>>()

  const recent: BatchSample[] = []
  let recentNext = 0
  const reservoir: BatchSample[] = []
  let batchTotal = 0
  let batchFailed = 0

  const channelRegistry = new FinalizationRegistry<AgentChannelRec>((rec) => markCollected(rec))
  const stageRegistry = new FinalizationRegistry<AgentStageRec>((rec) => stages.delete(rec))

  function round3(x: number): number {
    return Math.round(x * 1000) / 1000
  }

  function toEpochMs(mono: number): number {
    return Math.round(perf.timeOrigin + mono)
  }

  function newSideStacks(nowMono: number): SideStackState {
    return {keyed: new WeakMap(), tokens: STACK_BURST, tokensAtMono: nowMono, last: null}
  }

  // Formats the stack at once: a string keeps nothing alive, whereas an unformatted V8 trace holds the
  // callers' functions and receivers (and through them, possibly the channel we must see collected).
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  function captureStack(above: Function): string {
    const holder: {stack?: unknown} = {}
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = STACK_FRAMES
    try {
      Error.captureStackTrace(holder, above)
    } finally {
      Error.stackTraceLimit = limit
    }
    const stack = holder.stack
    return typeof stack === 'string' ? stack : String(stack ?? '')
  }

  function siteOf(raw: string): string {
    for (const line of raw.split('\n')) {
      const t = line.trim()
      if (!t.startsWith('at ')) continue
      let own = false
      for (const prefix of ownPrefixes) if (t.includes(prefix)) own = true
      if (!own) return t.startsWith('at async ') ? 'at ' + t.slice(9) : t
    }
    return raw
  }

  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  function stackFor(side: SideStackState, key: object | undefined, nowMono: number, above: Function): AgentStackEntry {
    if (key !== undefined) {
      const hit = side.keyed.get(key)
      if (hit !== undefined && nowMono - hit.atMono < KEYED_REFRESH_MS) return hit
      const raw = captureStack(above)
      const entry = {raw, site: siteOf(raw), atMono: nowMono}
      side.keyed.set(key, entry)
      return entry
    }
    // The bucket refills only once empty, so the usual call (empty, refill not yet due) writes nothing:
    // tokens stays a small integer and no double field is rewritten per wait.
    const last = side.last
    if (side.tokens <= 0 && last !== null) {
      const elapsedMs = nowMono - side.tokensAtMono
      if (elapsedMs < STACK_REFILL_MS) return last
      side.tokens = Math.min(STACK_BURST, Math.floor(elapsedMs / STACK_REFILL_MS))
      side.tokensAtMono = nowMono
    }
    side.tokens--
    const raw = captureStack(above)
    const entry = {raw, site: siteOf(raw), atMono: nowMono}
    side.last = entry
    return entry
  }

  function isOwnUrl(url: string): boolean {
    for (const prefix of ownPrefixes) if (url.startsWith(prefix)) return true
    return false
  }

  // V8 frame lines: "at fn (url:line:col)", "at url:line:col", "at async fn (url:line:col)",
  // "at new X (url:line:col)", "at async Promise.all (index 0)". Lines and columns are 1-based.
  function parseStack(raw: string): Array<{functionName: string; url: string; line: number; column: number}> {
    const cached = parseCache.get(raw)
    if (cached !== undefined) return cached
    const frames: Array<{functionName: string; url: string; line: number; column: number}> = []
    for (const rawLine of raw.split('\n')) {
      let body = rawLine.trim()
      if (!body.startsWith('at ')) continue
      body = body.slice(3)
      if (body.startsWith('async ')) body = body.slice(6)
      let functionName = ''
      let location = body
      if (body.endsWith(')')) {
        // Find the parenthesis matching the final one: eval locations nest parentheses.
        let depth = 0
        let open = -1
        for (let i = body.length - 1; i >= 0; i--) {
          const c = body[i]
          if (c === ')') depth++
          else if (c === '(') {
            depth--
            if (depth === 0) {
              open = i
              break
            }
          }
        }
        if (open > 0) {
          functionName = body.slice(0, open).trim()
          location = body.slice(open + 1, -1)
        }
      }
      let url = location
      let line = 0
      let column = 0
      const m = /^(.*):(\d+):(\d+)$/.exec(location)
      if (m !== null) {
        url = m[1]
        line = Number(m[2])
        column = Number(m[3])
      } else if (functionName === '' && !location.includes('/') && !location.includes('\\')) {
        functionName = location
        url = ''
      }
      if (url !== '' && isOwnUrl(url)) continue
      frames.push({functionName: functionName === '' ? '<anonymous>' : functionName, url, line, column})
    }
    if (parseCache.size >= PARSE_CACHE_MAX) parseCache.clear()
    parseCache.set(raw, frames)
    return frames
  }

  function markCollected(rec: AgentChannelRec): void {
    const nowMono = stamp()
    foldFill(rec, nowMono)
    if (rec.fullSinceMono >= 0) {
      rec.fullDoneMs += nowMono - rec.fullSinceMono
      rec.fullSinceMono = -1
    }
    rec.collected = true
    rec.collectedAtMono = nowMono
    let stuck = 0
    for (const list of [rec.sendTasks, rec.receiveTasks]) {
      for (let task = list.head; task !== null; task = task.next) {
        task.state = 'never-resumes'
        task.reason = 'channel-collected'
        stuck++
      }
    }
    // A collected buffer with nobody stuck on it is only history: keep the newest few of those.
    if (stuck === 0) {
      channels.delete(rec)
      collectedKept.push(rec)
      if (collectedKept.length > KEPT_COLLECTED) collectedKept.shift()
    }
  }

  function registerChannel(owner: object, name: string, kind: ChannelKind, capacity: number): AgentChannelRec {
    const nowMono = stamp()
    const rec: AgentChannelRec = {
      id: ++channelSeq,
      name,
      kind,
      capacity,
      length: 0,
      closed: false,
      collected: false,
      collectedAtMono: -1,
      createdAtMono: nowMono,
      itemsIn: 0,
      itemsOut: 0,
      senders: new Set(),
      receivers: new Set(),
      anonSender: false,
      anonReceiver: false,
      lastSender: null,
      lastReceiver: null,
      lastSendEntry: null,
      lastReceiveEntry: null,
      sendTasks: {head: null, tail: null, size: 0},
      receiveTasks: {head: null, tail: null, size: 0},
      sendBlockedDoneMs: 0,
      receiveBlockedDoneMs: 0,
      fullSinceMono: -1,
      fullDoneMs: 0,
      fillDoneItemMs: 0,
      lengthSinceMono: nowMono,
      filled: kind === 'slot' ? false : undefined,
      filledWithChannelId: undefined,
      ownerRef: new WeakRef(owner),
      sendStacks: newSideStacks(nowMono),
      receiveStacks: newSideStacks(nowMono),
    }
    channels.add(rec)
    channelRegistry.register(owner, rec)
    return rec
  }

  // Identity: undefined is the one anonymous identity; anything else (a stage record, a raw await-site
  // stack) counts as distinct. The anonymous one counts only while no better identity was seen.
  function noteSender(rec: AgentChannelRec, identity: unknown): void {
    rec.lastSender = identity
    if (identity === undefined) rec.anonSender = true
    else rec.senders.add(identity)
  }

  function noteReceiver(rec: AgentChannelRec, identity: unknown): void {
    rec.lastReceiver = identity
    if (identity === undefined) rec.anonReceiver = true
    else rec.receivers.add(identity)
  }

  // Fill integral and full time, updated on each length change: one clock read per change (exact).
  function setLength(rec: AgentChannelRec, length: number): void {
    const nowMono = stamp()
    foldFill(rec, nowMono)
    if (rec.kind === 'channel' && rec.capacity > 0) {
      const wasFull = rec.length >= rec.capacity
      const isFull = length >= rec.capacity
      if (wasFull !== isFull) setFullAt(rec, isFull, nowMono)
    }
    rec.length = length
  }

  /** Adds the current length's time up to nowMono to the fill integral. */
  function foldFill(rec: AgentChannelRec, nowMono: number): void {
    rec.fillDoneItemMs += rec.length * (nowMono - rec.lengthSinceMono)
    rec.lengthSinceMono = nowMono
  }

  function setFullAt(rec: AgentChannelRec, full: boolean, nowMono: number): void {
    if (full) {
      if (rec.fullSinceMono < 0) rec.fullSinceMono = nowMono
    } else if (rec.fullSinceMono >= 0) {
      rec.fullDoneMs += nowMono - rec.fullSinceMono
      rec.fullSinceMono = -1
    }
  }

  function setFull(rec: AgentChannelRec, full: boolean): void {
    setFullAt(rec, full, stamp())
  }

  function beginWait(
    rec: AgentChannelRec,
    kind: TaskKind,
    side: WaitSide,
    stage: AgentStageRec | undefined,
    key: object | undefined,
    // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
    captureAbove: Function,
  ): AgentTask {
    const nowMono = stamp()
    const entry = stackFor(side === 'send' ? rec.sendStacks : rec.receiveStacks, key, nowMono, captureAbove)
    const raw = entry.raw
    const task: AgentTask = {
      prev: null,
      next: null,
      linked: false,
      id: ++taskSeq,
      kind,
      side,
      rec,
      stageName: stage === undefined ? undefined : stage.name,
      sinceMono: nowMono,
      raw,
      state: 'blocked',
      reason: undefined,
    }
    if (side === 'send') {
      linkTask(rec.sendTasks, task)
      if (stage === undefined && entry !== rec.lastSendEntry) {
        rec.lastSendEntry = entry
        rec.senders.add(entry.site)
      }
      // A rendezvous has no buffer: it counts as full while a sender waits for a receiver.
      if (rec.kind === 'channel' && rec.capacity === 0 && rec.sendTasks.size === 1) setFullAt(rec, true, nowMono)
    } else {
      linkTask(rec.receiveTasks, task)
      if (stage === undefined && entry !== rec.lastReceiveEntry) {
        rec.lastReceiveEntry = entry
        rec.receivers.add(entry.site)
      }
    }
    return task
  }

  function linkTask(list: AgentTaskList, task: AgentTask): void {
    task.prev = list.tail
    task.next = null
    if (list.tail === null) list.head = task
    else list.tail.next = task
    list.tail = task
    task.linked = true
    list.size++
  }

  function unlinkTask(list: AgentTaskList, task: AgentTask): boolean {
    if (!task.linked) return false
    if (task.prev === null) list.head = task.next
    else task.prev.next = task.next
    if (task.next === null) list.tail = task.prev
    else task.next.prev = task.prev
    task.prev = null
    task.next = null
    task.linked = false
    list.size--
    return true
  }

  function endWait(task: AgentTask): void {
    const rec = task.rec
    const nowMono = stamp()
    if (task.side === 'send') {
      if (!unlinkTask(rec.sendTasks, task)) return
      rec.sendBlockedDoneMs += nowMono - task.sinceMono
      if (rec.kind === 'channel' && rec.capacity === 0 && rec.sendTasks.size === 0) setFullAt(rec, false, nowMono)
    } else {
      if (!unlinkTask(rec.receiveTasks, task)) return
      rec.receiveBlockedDoneMs += nowMono - task.sinceMono
    }
  }

  function describeChannel(rec: AgentChannelRec, nowMono = perf.now()): ChannelRecord {
    // After collection nothing changes any more: integrate only up to the collection time.
    const endMono = rec.collected ? rec.collectedAtMono : nowMono
    let sendBlockedMs = rec.sendBlockedDoneMs
    for (let task = rec.sendTasks.head; task !== null; task = task.next) sendBlockedMs += nowMono - task.sinceMono
    let receiveBlockedMs = rec.receiveBlockedDoneMs
    for (let task = rec.receiveTasks.head; task !== null; task = task.next) receiveBlockedMs += nowMono - task.sinceMono
    let length = rec.length
    if (rec.kind === 'stream' && !rec.collected) {
      const stream = rec.ownerRef.deref() as {writableLength?: unknown} | undefined
      if (stream !== undefined && typeof stream.writableLength === 'number') length = stream.writableLength
    }
    const out: ChannelRecord = {
      id: rec.id,
      name: rec.name,
      kind: rec.kind,
      capacity: rec.capacity,
      length,
      closed: rec.closed,
      collected: rec.collected,
      createdAtMs: toEpochMs(rec.createdAtMono),
      itemsIn: rec.itemsIn,
      itemsOut: rec.itemsOut,
      sendersEver: rec.senders.size > 0 ? rec.senders.size : rec.anonSender ? 1 : 0,
      receiversEver: rec.receivers.size > 0 ? rec.receivers.size : rec.anonReceiver ? 1 : 0,
      blockedSenders: rec.sendTasks.size,
      blockedReceivers: rec.receiveTasks.size,
      sendBlockedMs: round3(sendBlockedMs),
      receiveBlockedMs: round3(receiveBlockedMs),
      fullMs: round3(rec.fullDoneMs + (rec.fullSinceMono >= 0 ? endMono - rec.fullSinceMono : 0)),
      fillItemMs: round3(rec.fillDoneItemMs + rec.length * (endMono - rec.lengthSinceMono)),
    }
    if (rec.kind === 'slot') {
      out.filled = rec.filled === true
      if (rec.filledWithChannelId !== undefined) out.filledWithChannelId = rec.filledWithChannelId
    }
    return out
  }

  function registerStage(owner: object, name: string): AgentStageRec {
    const nowMono = stamp()
    const rec: AgentStageRec = {
      name,
      state: 'idle',
      stateSinceMono: nowMono,
      busyMs: 0,
      idleMs: 0,
      backPressuredMs: 0,
      createdAtMono: nowMono,
      itemsHandled: 0,
      lastProgressAtMs: null,
      lastItemTimestampMs: null,
      position: null,
      entries: [],
    }
    stages.add(rec)
    stageRegistry.register(owner, rec)
    return rec
  }

  function addStateTime(rec: AgentStageRec, state: StageState, ms: number): void {
    if (state === 'busy') rec.busyMs += ms
    else if (state === 'idle') rec.idleMs += ms
    else rec.backPressuredMs += ms
  }

  function refreshStageState(rec: AgentStageRec): void {
    const entries = rec.entries
    const next: StageState = entries.length === 0 ? 'idle' : entries[entries.length - 1].state
    if (next === rec.state) return
    const nowMono = stamp()
    addStateTime(rec, rec.state, nowMono - rec.stateSinceMono)
    rec.state = next
    rec.stateSinceMono = nowMono
  }

  // A stack with removal from anywhere: the newest active entry decides the state, and an entry that
  // ends out of order (interleaved async work) does not leave a stale state behind.
  function stagePush(rec: AgentStageRec, state: StageState): AgentStageToken {
    const token: AgentStageToken = {state}
    rec.entries.push(token)
    refreshStageState(rec)
    return token
  }

  function stagePop(rec: AgentStageRec, token: AgentStageToken): void {
    const entries = rec.entries
    const i = entries.lastIndexOf(token)
    if (i < 0) return
    entries.splice(i, 1)
    refreshStageState(rec)
  }

  function stageProgress(rec: AgentStageRec, items: number, itemTimestampMs: number | undefined, position: BinlogPosition | undefined): void {
    rec.itemsHandled += items
    rec.lastProgressAtMs = Date.now()
    if (itemTimestampMs !== undefined) rec.lastItemTimestampMs = itemTimestampMs
    if (position !== undefined) {
      rec.position = position.gtid === undefined
        ? {file: position.file, offset: position.offset}
        : {file: position.file, offset: position.offset, gtid: position.gtid}
    }
  }

  // Recent ring (the newest RECENT_SAMPLES) plus Algorithm R over all batches, so warm-up and bursts
  // stay represented after a long saturated steady state.
  function recordBatch(rec: AgentStageRec, events: number, ms: number, ok: boolean): void {
    const sample: BatchSample = {stageName: rec.name, atMs: Date.now(), events, ms, ok}
    batchTotal++
    if (!ok) batchFailed++
    if (recent.length < RECENT_SAMPLES) recent.push(sample)
    else recent[recentNext] = sample
    recentNext = (recentNext + 1) % RECENT_SAMPLES
    if (reservoir.length < RESERVOIR_SAMPLES) reservoir.push(sample)
    else {
      const j = Math.floor(Math.random() * batchTotal)
      if (j < RESERVOIR_SAMPLES) reservoir[j] = sample
    }
  }

  function registerSource(name: string, kind: 'mysql' | 'simulated', read: () => AgentSourceRead): () => void {
    const entry = {kind, read, lastEnd: undefined as BinlogPosition | undefined}
    sources.set(name, entry)
    return () => {
      if (sources.get(name) === entry) sources.delete(name)
    }
  }

  function registerSetting(name: string, get: () => number, set?: (value: number) => void): () => void {
    const entry = {get, set}
    settings.set(name, entry)
    return () => {
      if (settings.get(name) === entry) settings.delete(name)
    }
  }

  function writeSetting(name: string, value: number): number {
    const entry = settings.get(name)
    if (entry === undefined) throw new RangeError(`No setting named \`${name}\`; known: ${[...settings.keys()].join(', ') || 'none'}`)
    if (entry.set === undefined) throw new TypeError(`Setting \`${name}\` is read-only`)
    entry.set(value)
    return Number(entry.get())
  }

  function counter(name: string): {add(n?: number): void; readonly value: number} {
    let cell = counters.get(name)
    if (cell === undefined) {
      cell = {value: 0}
      counters.set(name, cell)
    }
    const c = cell
    return {
      add(n = 1) {
        c.value += n
      },
      get value() {
        return c.value
      },
    }
  }

  function readSource(name: string, entry: {kind: 'mysql' | 'simulated'; read: () => AgentSourceRead; lastEnd: BinlogPosition | undefined}): SourceStatus {
    try {
      const r = entry.read() as AgentSourceRead & {then?: unknown}
      if (r === null || typeof r !== 'object') throw new TypeError(`read() must return an object, got ${r === null ? 'null' : typeof r}`)
      if (typeof r.then === 'function') throw new TypeError('read() returned a promise; it must return the last known status synchronously')
      const end = r.end
      if (end === null || typeof end !== 'object' || typeof end.file !== 'string' || typeof end.offset !== 'number') {
        throw new TypeError('read() must return {end: {file: string, offset: number}}')
      }
      const status: SourceStatus = {name, kind: entry.kind, end: end.gtid === undefined ? {file: end.file, offset: end.offset} : {file: end.file, offset: end.offset, gtid: end.gtid}}
      if (typeof r.eventsProduced === 'number') status.eventsProduced = r.eventsProduced
      if (typeof r.lastEventTimestampMs === 'number') status.lastEventTimestampMs = r.lastEventTimestampMs
      if (typeof r.error === 'string') status.error = r.error
      entry.lastEnd = status.end
      return status
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      return {name, kind: entry.kind, end: entry.lastEnd ?? {file: '', offset: 0}, error: message}
    }
  }

  function taskRecordOf(task: AgentTask, t0: number): AgentSnapshot['tasks'][number] {
    const rec = task.rec
    const t: AgentSnapshot['tasks'][number] = {
      id: task.id,
      kind: task.kind,
      state: task.state,
      channelId: rec.id,
      channelName: rec.name,
      sinceMs: toEpochMs(task.sinceMono),
      waitMs: round3(t0 - task.sinceMono),
      stack: task.raw === '' ? [] : parseStack(task.raw),
    }
    if (task.stageName !== undefined) t.stageName = task.stageName
    if (task.reason !== undefined) t.reason = task.reason
    return t
  }

  // Everything but the tasks; channels in id order (the order tasks are listed in, too).
  function buildSnapshot(t0: number, ordered: AgentChannelRec[]): AgentSnapshot {
    const channelOut: ChannelRecord[] = []
    for (const rec of ordered) channelOut.push(describeChannel(rec, t0))
    const stageOut: AgentSnapshot['stages'] = []
    for (const rec of stages) {
      const current = t0 - rec.stateSinceMono
      stageOut.push({
        name: rec.name,
        state: rec.state,
        stateSinceMs: toEpochMs(rec.stateSinceMono),
        busyMs: round3(rec.busyMs + (rec.state === 'busy' ? current : 0)),
        idleMs: round3(rec.idleMs + (rec.state === 'idle' ? current : 0)),
        backPressuredMs: round3(rec.backPressuredMs + (rec.state === 'back-pressured' ? current : 0)),
        createdAtMs: toEpochMs(rec.createdAtMono),
        itemsHandled: rec.itemsHandled,
        lastProgressAtMs: rec.lastProgressAtMs,
        lastItemTimestampMs: rec.lastItemTimestampMs,
        position: rec.position === null ? null : {...rec.position},
      })
    }
    const recentOut = recent.length < RECENT_SAMPLES ? recent.slice() : [...recent.slice(recentNext), ...recent.slice(0, recentNext)]
    const sourceOut: SourceStatus[] = []
    for (const [name, entry] of sources) sourceOut.push(readSource(name, entry))
    const settingOut: AgentSnapshot['settings'] = []
    for (const [name, entry] of settings) {
      // A getter that throws has no value to show; it is left out rather than reported as a number.
      try {
        const value = Number(entry.get())
        if (Number.isFinite(value)) settingOut.push({name, value, writable: entry.set !== undefined})
      } catch {
        continue
      }
    }
    const counterOut: Record<string, number> = {}
    for (const [name, cell] of counters) counterOut[name] = cell.value
    return {
      schema: 'ferrydiag.snapshot',
      version: 1,
      takenAtMs: toEpochMs(t0),
      monotonicMs: round3(t0),
      process: {
        pid: proc?.pid ?? 0,
        nodeVersion: proc?.version ?? '',
        uptimeSec: round3(proc?.uptime?.() ?? 0),
        argv: Array.isArray(proc?.argv) ? proc.argv.slice() : [],
        title: String(proc?.title ?? ''),
        agentMode: mode,
        agentLoadedBy: options.loadedBy,
        agentVersion: AGENT_VERSION,
        agentStartedAtMs: startedAtMs,
      },
      channels: channelOut,
      tasks: [],
      stages: stageOut,
      samples: {recent: recentOut, reservoir: reservoir.slice(), totalCount: batchTotal, totalFailed: batchFailed},
      sources: sourceOut,
      settings: settingOut,
      counters: counterOut,
      buildMs: 0,
    }
  }

  function orderedChannels(): AgentChannelRec[] {
    const all = collectedKept.length === 0 ? [...channels] : [...collectedKept, ...channels]
    return all.sort((a, b) => a.id - b.id)
  }

  function snapshot(): AgentSnapshot {
    const t0 = perf.now()
    const ordered = orderedChannels()
    const snap = buildSnapshot(t0, ordered)
    for (const rec of ordered) {
      for (let task = rec.sendTasks.head; task !== null; task = task.next) snap.tasks.push(taskRecordOf(task, t0))
      for (let task = rec.receiveTasks.head; task !== null; task = task.next) snap.tasks.push(taskRecordOf(task, t0))
    }
    snap.buildMs = round3(perf.now() - t0)
    return snap
  }

  // Writes one task's wire JSON (see WIRE_FORMAT). head is the channel's shared prefix; the table numbers
  // each distinct raw stack in order of first use and writes its JSON then (inside the slice that met
  // it), so 10k waiters parked at one site cost one parse and one table entry. state is the task's state
  // at capture. stackRef is the last key, so a reader can drop it cheaply (deleting an object's newest
  // property keeps its V8 shape shared).
  function taskJson(task: AgentTask, state: AgentTask['state'], t0: number, head: string, table: WireStackTable): string {
    let ref = table.refs.get(task.raw)
    if (ref === undefined) {
      ref = table.refs.size
      table.refs.set(task.raw, ref)
      const stack = task.raw === '' ? '[]' : JSON.stringify(parseStack(task.raw))
      table.json += ref === 0 ? stack : ',' + stack
    }
    let part = `${head}${task.id},"kind":"${task.kind}","state":"${state}","sinceMs":${toEpochMs(task.sinceMono)},"waitMs":${round3(t0 - task.sinceMono)}`
    if (task.stageName !== undefined) part += `,"stageName":${JSON.stringify(task.stageName)}`
    // The reason comes with the never-resumes state (markCollected sets both, once).
    if (state !== 'blocked' && task.reason !== undefined) part += `,"reason":${JSON.stringify(task.reason)}`
    return `${part},"stackRef":${ref}}`
  }

  function channelHead(rec: AgentChannelRec): string {
    return `{"channelId":${rec.id},"channelName":${JSON.stringify(rec.name)},"id":`
  }

  /** Everything but the tasks, as wire JSON without its closing brace (tasks, stacks and buildMs follow). */
  function snapshotJsonPrefix(t0: number, ordered: AgentChannelRec[]): string {
    const snap = buildSnapshot(t0, ordered) as Partial<AgentSnapshot> & {wire?: number}
    delete snap.tasks
    delete snap.buildMs
    // Right after schema and version, so a reader sees which shape follows before the bulk.
    const {schema, version, ...rest} = snap
    return JSON.stringify({schema, version, wire: WIRE_FORMAT, ...rest}).slice(0, -1)
  }

  // The wire form of snapshot(): each task is written from cached pieces, its stack as a table reference.
  function snapshotJson(): string {
    const t0 = perf.now()
    const ordered = orderedChannels()
    const prefix = snapshotJsonPrefix(t0, ordered)
    // One growing string (a rope in V8) is cheaper than an array of parts joined at the end.
    let tasksJson = ''
    const stackTable: WireStackTable = {refs: new Map(), json: ''}
    for (const rec of ordered) {
      const head = channelHead(rec)
      for (const list of [rec.sendTasks, rec.receiveTasks]) {
        for (let task = list.head; task !== null; task = task.next) {
          const part = taskJson(task, task.state, t0, head, stackTable)
          tasksJson += tasksJson === '' ? part : ',' + part
        }
      }
    }
    return `${prefix},"tasks":[${tasksJson}],"stacks":[${stackTable.json}],"buildMs":${round3(perf.now() - t0)}}`
  }

  const SLICE_MS_DEFAULT = 8
  // Tasks written between two clock checks inside a slice (~0.5-1 µs each).
  const SLICE_CHECK_EVERY = 256

  const PIECE_CHARS_DEFAULT = 262144
  const HELD_SNAPSHOT_MS = 60000

  function positiveOr(value: unknown, fallback: number): number {
    return typeof value === 'number' && value > 0 && Number.isFinite(value) ? value : fallback
  }

  // Writes the wire document in slices, handing each piece of about pieceChars characters to emit as it
  // is completed; the promise settles once the last piece was emitted. The capture happens in the call
  // (a capture error throws there). emit returns true when the piece went straight to a waiting reader:
  // the slice then ends, so that the inspector's serialisation of that answer gets a turn of its own.
  function writeSnapshotPieces(options: {sliceMs?: number; pieceChars?: number} | undefined, emit: (piece: string) => boolean): Promise<void> {
    const sliceMs = positiveOr(options?.sliceMs, SLICE_MS_DEFAULT)
    const pieceChars = positiveOr(options?.pieceChars, PIECE_CHARS_DEFAULT)
    const t0 = perf.now()
    // The capture: references to the blocked tasks (one preallocated array; this loop is the only
    // per-task work in the first turn), and per channel its JSON head and whether it was already
    // collected. A task's own fields never change, except its state: blocked -> never-resumes when its
    // channel is collected, so a task of a channel not yet collected at capture is written as blocked.
    const captured = new Map<AgentChannelRec, {head: string; collected: boolean}>()
    const ordered = orderedChannels()
    const prefix = snapshotJsonPrefix(t0, ordered)
    let total = 0
    for (const rec of ordered) total += rec.sendTasks.size + rec.receiveTasks.size
    const tasks = new Array<AgentTask>(total)
    let filled = 0
    for (const rec of ordered) {
      if (rec.sendTasks.size + rec.receiveTasks.size === 0) continue
      captured.set(rec, {head: channelHead(rec), collected: rec.collected})
      for (let task = rec.sendTasks.head; task !== null; task = task.next) tasks[filled++] = task
      for (let task = rec.receiveTasks.head; task !== null; task = task.next) tasks[filled++] = task
    }
    const later: (callback: () => void) => void = typeof g.setImmediate === 'function' ? g.setImmediate : (callback) => g.setTimeout(callback, 0)
    const stackTable: WireStackTable = {refs: new Map(), json: ''}
    let piece = prefix + ',"tasks":['
    let spentMs = perf.now() - t0
    let next = 0
    return new Promise<void>((resolve, reject) => {
      const slice = (sliceStart: number, budgetMs: number): void => {
        try {
          let sinceCheck = 0
          while (next < tasks.length) {
            const task = tasks[next]
            const at = captured.get(task.rec) as {head: string; collected: boolean}
            const part = taskJson(task, at.collected ? task.state : 'blocked', t0, at.head, stackTable)
            piece += next === 0 ? part : ',' + part
            tasks[next] = undefined as unknown as AgentTask // let ended tasks go once written
            next++
            if (piece.length >= pieceChars) {
              const handedOver = emit(piece)
              piece = ''
              if (handedOver) break
            }
            if (++sinceCheck === SLICE_CHECK_EVERY) {
              sinceCheck = 0
              if (perf.now() - sliceStart >= budgetMs) break
            }
          }
          spentMs += perf.now() - sliceStart
          if (next < tasks.length) {
            later(() => slice(perf.now(), sliceMs))
            return
          }
          // The table is complete only once every task is written; it is small (one entry per distinct
          // await site), so it goes whole into the last piece.
          emit(`${piece}],"stacks":[${stackTable.json}],"buildMs":${round3(spentMs)}}`)
          resolve()
        } catch (error) {
          reject(error)
        }
      }
      // The first slice shares the capture's turn and budget.
      slice(perf.now(), Math.max(0, sliceMs - spentMs))
    })
  }

  function snapshotJsonPieces(options?: {sliceMs?: number; pieceChars?: number}): Promise<string[]> {
    const pieces: string[] = []
    try {
      return writeSnapshotPieces(options, (piece) => {
        pieces.push(piece)
        return false
      }).then(() => pieces)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  function snapshotJsonAsync(options?: {sliceMs?: number}): Promise<string> {
    // Concatenated, not joined: a rope costs nothing now; whoever reads it flattens it once.
    return snapshotJsonPieces({sliceMs: options?.sliceMs, pieceChars: Number.POSITIVE_INFINITY}).then((pieces) => {
      let text = ''
      for (const piece of pieces) text += piece
      return text
    })
  }

  let heldSeq = 0
  const held = new Map<number, HeldSnapshot>()

  // A reader that went away must not leave megabytes behind: every held or streamed snapshot is dropped
  // HELD_SNAPSHOT_MS after it was started, whether or not it was read.
  function newHeld(): {id: number; entry: HeldSnapshot} {
    const id = ++heldSeq
    const timer = g.setTimeout(() => dropHeld(id), HELD_SNAPSHOT_MS)
    if (typeof timer?.unref === 'function') timer.unref()
    const entry: HeldSnapshot = {pieces: [], next: 0, done: false, error: undefined, waiters: [], timer}
    held.set(id, entry)
    return {id, entry}
  }

  function dropHeld(id: number): void {
    const entry = held.get(id)
    if (entry === undefined) return
    held.delete(id)
    g.clearTimeout(entry.timer)
    entry.pieces.length = 0
    for (const waiter of entry.waiters.splice(0)) waiter.resolve(null)
  }

  // Hands over the next written piece, releasing the agent's reference to it; the snapshot is dropped
  // after its last piece.
  function shiftPiece(id: number, entry: HeldSnapshot): string {
    const piece = entry.pieces[entry.next]
    entry.pieces[entry.next] = ''
    entry.next++
    if (entry.done && entry.next >= entry.pieces.length) dropHeld(id)
    return piece
  }

  function streamSnapshot(options?: {sliceMs?: number; pieceChars?: number}): {id: number} {
    const {id, entry} = newHeld()
    let written: Promise<void>
    try {
      written = writeSnapshotPieces(options, (piece) => {
        if (!held.has(id)) return false // dropped: nobody reads it any more
        const waiter = entry.waiters.shift()
        if (waiter === undefined) {
          entry.pieces.push(piece)
          return false
        }
        waiter.resolve(piece)
        return true
      })
    } catch (error) {
      dropHeld(id)
      throw error
    }
    written.then(
      () => {
        entry.done = true
        // Waiting now means every piece was handed over: they get the end.
        if (entry.waiters.length > 0) dropHeld(id)
      },
      (error: unknown) => {
        entry.done = true
        entry.error = error
        entry.pieces.length = 0
        for (const waiter of entry.waiters.splice(0)) waiter.reject(error)
      },
    )
    return {id}
  }

  function nextSnapshotPiece(id: number): Promise<string | null> {
    const entry = held.get(id)
    if (entry === undefined) return Promise.resolve(null)
    if (entry.next < entry.pieces.length) return Promise.resolve(shiftPiece(id, entry))
    if (entry.error !== undefined) return Promise.reject(entry.error)
    if (entry.done) {
      dropHeld(id)
      return Promise.resolve(null)
    }
    return new Promise((resolve, reject) => entry.waiters.push({resolve, reject}))
  }

  // In await-times mode every new promise carries its creation time as a small integer (ms since the
  // agent started, masked to 30 bits so it stays a V8 Smi and wraps after ~12.4 days) under
  // Symbol.for('ferrydiag.promiseStartMs'). A Node 20 heap snapshot does not show Smi values, so the
  // heap route reads the stamps over the inspector just before its snapshot (src/attach/heap-tasks.ts)
  // and takes each wait's age from the promise V8 creates for the await itself. It is not the default: in test/bench/runtime.bench.ts it cut await-heavy code (1 op = 4 async
  // calls + 5 awaits) to 0.29-0.44x the ops/s of no agent, while 'channels' costs nothing per promise;
  // real I/O-bound pipelines lose less, but a diagnostic agent must be safe to leave on by default.
  function enableAwaitTimes(): boolean {
    if (stopPromiseHook !== undefined) return true
    const v8 = typeof proc?.getBuiltinModule === 'function' ? proc.getBuiltinModule('v8') : undefined
    const hooks = v8?.promiseHooks
    if (hooks === undefined || typeof hooks.onInit !== 'function') return false
    const key = Symbol.for('ferrydiag.promiseStartMs')
    stopPromiseHook = hooks.onInit((promise: Record<symbol, number>) => {
      promise[key] = (perf.now() - startMono) & 0x3fffffff
    })
    mode = 'await-times'
    return true
  }

  const agent: AgentApi = {
    apiVersion: API_VERSION,
    agentVersion: AGENT_VERSION,
    get mode() {
      return mode
    },
    loadedBy: options.loadedBy,
    startedAtMs,
    snapshot,
    snapshotJson,
    snapshotJsonAsync,
    snapshotJsonPieces,
    streamSnapshot,
    nextSnapshotPiece,
    enableAwaitTimes,
    addOwnFrames(prefix: string) {
      if (prefix !== '' && !ownPrefixes.includes(prefix)) ownPrefixes.push(prefix)
      parseCache.clear()
    },
    registerChannel,
    describeChannel: (rec) => describeChannel(rec),
    noteSender,
    noteReceiver,
    setLength,
    setFull,
    beginWait,
    endWait,
    registerStage,
    stagePush,
    stagePop,
    stageProgress,
    recordBatch,
    registerSource,
    registerSetting,
    writeSetting,
    counter,
  }
  Object.defineProperty(g, GLOBAL_KEY, {value: agent, configurable: true, enumerable: false, writable: false})
  if (requestedMode === 'await-times') enableAwaitTimes()
  return agent
}
