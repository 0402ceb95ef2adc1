// Groups pending waits with the same shape, as Go's goroutine dump does, so that 500 identical parked
// senders read as one block. Also the small helpers every stacks finding uses to name a task or a site.

import type {TaskGroup} from '../model/dump.js'
import {formatSite, type HolderInfo, type StackFrame, type TaskRecord} from '../model/snapshot.js'

export interface GroupStacksOptions {
  /** Leave out tasks waiting less than this many milliseconds (>= 0). Default: keep all. */
  minWaitMs?: number
  /** One group per task (`--debug=2`), ordered by task id. Default: false. */
  ungrouped?: boolean
}

/**
 * Groups tasks whose kind, state, reason, channel name, stage, holder and every stack frame are equal.
 * Channel ids are not part of the key (Go groups by stack, not by channel value); a group lists the
 * distinct ids it covers. Order: most tasks first, then longest wait, then lowest task id.
 */
export function groupStacks(tasks: readonly TaskRecord[], options: GroupStacksOptions = {}): TaskGroup[] {
  const minWaitMs = options.minWaitMs ?? 0
  if (!Number.isFinite(minWaitMs) || minWaitMs < 0) {
    throw new RangeError(`Expected \`minWaitMs\` to be a finite number >= 0, got \`${minWaitMs}\` (${typeof minWaitMs})`)
  }
  // A wait of unknown age cannot be said to be shorter than --min-wait: keep it visible.
  const shown = tasks.filter((task) => task.waitKnown === false || task.waitMs >= minWaitMs)

  if (options.ungrouped) {
    return [...shown].sort((a, b) => a.id - b.id).map((task) => finishGroup(startGroup(task)))
  }

  const byKey = new Map<string, TaskGroup>()
  for (const task of shown) {
    const key = groupKey(task)
    const group = byKey.get(key)
    if (group) addToGroup(group, task)
    else byKey.set(key, startGroup(task))
  }
  const groups = [...byKey.values()]
  for (const group of groups) finishGroup(group)
  return groups.sort(
    (a, b) => b.count - a.count || b.maxWaitMs - a.maxWaitMs || a.taskIds[0]! - b.taskIds[0]!,
  )
}

/**
 * Who is waiting, for a sentence: the stage if the pipeline named one, else the innermost function,
 * else "task N".
 */
export function describeWaiter(task: TaskRecord): string {
  if (task.stageName) return task.stageName
  const inner = task.stack[0]
  if (inner && inner.functionName) return inner.functionName
  return `task ${task.id}`
}

/** The heap route's holder of the awaited promise, when the task has one. */
export function readHolder(task: TaskRecord): HolderInfo | undefined {
  return task.holder
}

/**
 * The stack part of a group key, once per stack array: tasks at one await site share their frames
 * array (the agent and the wire expansion do so), so 100k tasks cost a few distinct stringifications.
 */
const stackKeys = new WeakMap<readonly StackFrame[], string>()

function stackKey(stack: readonly StackFrame[]): string {
  let key = stackKeys.get(stack)
  if (key === undefined) {
    key = JSON.stringify(stack.map((frame) => [frame.functionName, frame.url, frame.line, frame.column]))
    stackKeys.set(stack, key)
  }
  return key
}

function groupKey(task: TaskRecord): string {
  // JSON of an array keeps field boundaries unambiguous whatever the names contain.
  return `${JSON.stringify([task.kind, task.state, task.reason ?? null, task.channelName ?? null, task.stageName ?? null, readHolder(task) ?? null])}${stackKey(task.stack)}`
}

function startGroup(task: TaskRecord): TaskGroup {
  const group: TaskGroup = {
    count: 1,
    kind: task.kind,
    state: task.state,
    channelIds: task.channelId === undefined ? [] : [task.channelId],
    stack: task.stack.map((frame) => ({...frame})),
    unknownWaitCount: 0,
    minWaitMs: Infinity,
    maxWaitMs: 0,
    totalWaitMs: 0,
    taskIds: [task.id],
  }
  countWait(group, task)
  if (task.reason !== undefined) group.reason = task.reason
  if (task.channelName !== undefined) group.channelName = task.channelName
  if (task.stageName !== undefined) group.stageName = task.stageName
  const holder = readHolder(task)
  if (holder !== undefined) group.holder = holder
  return group
}

function addToGroup(group: TaskGroup, task: TaskRecord): void {
  group.count += 1
  group.taskIds.push(task.id)
  if (task.channelId !== undefined && !group.channelIds.includes(task.channelId)) {
    group.channelIds.push(task.channelId)
  }
  countWait(group, task)
}

function finishGroup(group: TaskGroup): TaskGroup {
  group.taskIds.sort((a, b) => a - b)
  group.channelIds.sort((a, b) => a - b)
  if (group.unknownWaitCount === group.count) group.minWaitMs = 0 // no known age at all
  return group
}

function countWait(group: TaskGroup, task: TaskRecord): void {
  if (task.waitKnown === false) {
    group.unknownWaitCount += 1
    return
  }
  group.minWaitMs = Math.min(group.minWaitMs, task.waitMs)
  group.maxWaitMs = Math.max(group.maxWaitMs, task.waitMs)
  group.totalWaitMs += task.waitMs
}

/** "'binlog-events' #3": how findings name one buffer instance (names repeat; ids do not). */
export function describeChannel(name: string | undefined, id: number | undefined): string {
  const quoted = name === undefined ? 'an unnamed buffer' : `'${name}'`
  return id === undefined ? quoted : `${quoted} #${id}`
}

/** The phrase for what a task of this kind is doing, to be followed by a channel description. */
export function describeWaitVerb(kind: TaskRecord['kind']): string {
  switch (kind) {
    case 'channel-send':
      return 'sending into'
    case 'channel-receive':
      return 'waiting to receive from'
    case 'slot-wait':
      return 'waiting for slot'
    case 'stream-write':
      return 'waiting for stream'
    case 'promise':
      return 'awaiting'
  }
}

/** Every distinct site of the given tasks' stacks, each stack innermost first, in task order. */
export function collectSites(tasks: readonly TaskRecord[]): string[] {
  const sites: string[] = []
  for (const task of tasks) {
    for (const frame of task.stack) {
      if (frame.line === 0) continue // not a place in the source
      const site = formatSite(frame)
      if (!sites.includes(site)) sites.push(site)
    }
  }
  return sites
}

/** "stage 'streamer'", "stage 'a' and stage 'b'", "BinlogStreamer.run", "2 tasks of stage 'writer'". */
export function describeWaiters(tasks: readonly TaskRecord[]): string {
  const names: string[] = []
  for (const task of tasks) {
    const name = task.stageName ? `stage '${task.stageName}'` : describeWaiter(task)
    if (!names.includes(name)) names.push(name)
  }
  const joined = names.length <= 2 ? names.join(' and ') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`
  return tasks.length > names.length ? `${tasks.length} tasks of ${joined}` : joined
}

/** True when a sentence about these tasks needs a plural verb. */
export function isPlural(tasks: readonly TaskRecord[]): boolean {
  return tasks.length > 1
}

/** "binlog-events #3" for evidence lists (unquoted: evidence is data, not a sentence). */
export function formatChannelRef(name: string | undefined, id: number | undefined): string {
  return `${name ?? '(unnamed)'}${id === undefined ? '' : ` #${id}`}`
}

/** Longest wait among the tasks, ms (0 for none). */
export function maxWaitMs(tasks: readonly TaskRecord[]): number {
  return tasks.reduce((max, task) => Math.max(max, task.waitMs), 0)
}

/** Distinct task ids, ascending. */
export function sortedTaskIds(tasks: readonly TaskRecord[]): number[] {
  return [...new Set(tasks.map((task) => task.id))].sort((a, b) => a - b)
}
