// Whole-pipeline deadlock from one snapshot: every stage parked on a buffer for a long time while
// timers or sockets keep the process alive (Node never says "all goroutines are asleep").

import type {StacksInput} from '../model/dump.js'
import type {Finding} from '../model/findings.js'
import type {ChannelRecord, TaskRecord} from '../model/snapshot.js'
import {formatDurationMs} from '../units.js'
import {
  collectSites,
  describeChannel,
  describeWaitVerb,
  describeWaiters,
  formatChannelRef,
  sortedTaskIds,
} from './group-stacks.js'

export interface FindDeadlockOptions {
  /** How long (ms) every wait and every stage state must have lasted. Default in stacks-findings: 10 s. */
  stuckAfterMs: number
  /**
   * Error findings already made. When they name every task of the deadlock, the deadlock is their
   * consequence: it is still reported, as 'info', so the root cause stays the one error to act on.
   */
  explainedBy?: readonly Finding[]
}

/**
 * Reports a deadlock when ALL of these hold in the snapshot (a single snapshot cannot see progress, so
 * long-lasting waits stand in for "no progress"):
 * 1. at least one task waits on an instrumented buffer, slot or stream (kind other than 'promise';
 *    heap-route promises carry no buffer state, so they alone never make a deadlock);
 * 2. every such task has waited >= stuckAfterMs;
 * 3. no stage is 'busy', and every stage has been in its current state (idle or back-pressured) for
 *    >= stuckAfterMs, so no stage has done work or changed state within the window;
 * 4. every stage has a task among those waits: a stage idle with no buffer wait is waiting on
 *    something outside the pipeline (its source, a timer) that can still wake it;
 * 5. every live, open buffer or stream that has ever been used has a waiter on it: a buffer nobody
 *    waits on could still be carrying items between stages that are not in the dump;
 * 6. at least one wait holds items back or cannot end by itself (a send, a stream write, a slot wait,
 *    or a never-resumes task): receivers idle on empty buffers alone are a pipeline with no input.
 * Returns null when any condition fails.
 */
export function findDeadlock(input: StacksInput, options: FindDeadlockOptions): Finding | null {
  const waits = input.tasks.filter((task) => task.kind !== 'promise')
  if (waits.length === 0) return null
  const shortestMs = waits.reduce((min, task) => Math.min(min, task.waitMs), Infinity)
  if (shortestMs < options.stuckAfterMs) return null

  const holdsBack = waits.some((task) => task.kind !== 'channel-receive' || task.state === 'never-resumes')
  if (!holdsBack) return null

  const waitingStages = new Set(waits.map((task) => task.stageName))
  for (const stage of input.stages) {
    if (stage.state === 'busy') return null
    if (input.takenAtMs - stage.stateSinceMs < options.stuckAfterMs) return null
    if (!waitingStages.has(stage.name)) return null
  }

  const waitedOn = new Set(waits.map((task) => task.channelId).filter((id) => id !== undefined))
  for (const channel of input.channels) {
    if (!canCarryItems(channel)) continue
    const hasWaiter = channel.blockedSenders + channel.blockedReceivers > 0 || waitedOn.has(channel.id)
    if (!hasWaiter) return null
  }

  const channelsById = new Map(input.channels.map((channel) => [channel.id, channel]))
  const explained = explainedTaskIds(options.explainedBy ?? [])
  const isExplained = waits.every((task) => explained.ids.has(task.id))
  const stalled =
    `${countWaits(waits.length)} on buffers ${waits.length === 1 ? 'has' : 'have'} lasted at least ` +
    `${formatDurationMs(shortestMs)} and no stage is busy (${describeWaits(waits, channelsById)})`
  const evidence = {
    sites: collectSites(waits),
    channels: [...waitedOn].sort((a, b) => a - b).map((id) => formatChannelRef(channelsById.get(id)?.name, id)),
    taskIds: sortedTaskIds(waits),
    // Longest wait, as in every finding; the shortest is what the rule compared with stuckAfterMs.
    waitMs: waits.reduce((max, task) => Math.max(max, task.waitMs), 0),
    shortestWaitMs: shortestMs,
    stages: input.stages.map((stage) => `${stage.name}: ${stage.state}`),
  }
  if (isExplained) {
    return {
      kind: 'deadlock',
      severity: 'info',
      summary: `pipeline stalled as a consequence of the ${explained.kinds.join(' and ')} finding${explained.kinds.length > 1 ? 's' : ''} above: ${stalled}`,
      evidence,
      suggestion: 'Fix the finding above; once its buffer is served, the rest of the pipeline can move again.',
    }
  }
  return {
    kind: 'deadlock',
    severity: 'error',
    summary: `pipeline deadlocked: ${stalled}; nothing inside the pipeline can wake these waits`,
    evidence,
    suggestion:
      'Each stage waits for another one. Follow the waits above to the cycle (typically a stage sending into a full buffer whose ' +
      'only receiver is itself blocked sending back) and break it: receive the feedback path in its own loop, give it room, ' +
      'or close buffers on shutdown so that waits end.',
  }
}

/** A record that could still move items now: a live, open buffer or stream that has been used. */
function canCarryItems(channel: ChannelRecord): boolean {
  if (channel.kind === 'slot' || channel.collected || channel.closed) return false
  return (
    channel.itemsIn > 0 ||
    channel.itemsOut > 0 ||
    channel.sendersEver > 0 ||
    channel.receiversEver > 0 ||
    channel.blockedSenders + channel.blockedReceivers > 0
  )
}

/** "stage 'streamer' sending into 'binlog-events' #3 (full), ..." — at most four, then "and N more". */
function describeWaits(waits: readonly TaskRecord[], channelsById: Map<number, ChannelRecord>): string {
  const byTarget = new Map<string, TaskRecord[]>()
  for (const task of waits) {
    const key = `${task.stageName ?? ''}|${task.kind}|${task.channelId ?? task.channelName ?? ''}`
    const list = byTarget.get(key)
    if (list) list.push(task)
    else byTarget.set(key, [task])
  }
  const parts = [...byTarget.values()].map((tasks) => {
    const first = tasks[0]!
    const channel = first.channelId === undefined ? undefined : channelsById.get(first.channelId)
    return `${describeWaiters(tasks)} ${describeWaitVerb(first.kind)} ${describeChannel(first.channelName ?? channel?.name, first.channelId)}${describeFill(first, channel)}`
  })
  const shown = parts.slice(0, 4).join(', ')
  return parts.length > 4 ? `${shown} and ${parts.length - 4} more` : shown
}

function describeFill(task: TaskRecord, channel: ChannelRecord | undefined): string {
  if (!channel || channel.kind === 'slot') return ''
  if (task.kind === 'channel-send' && channel.length >= channel.capacity) return ' (full)'
  if (task.kind === 'channel-receive' && channel.length === 0) return ' (empty)'
  return ''
}

function explainedTaskIds(findings: readonly Finding[]): {ids: Set<number>; kinds: string[]} {
  const ids = new Set<number>()
  const kinds: string[] = []
  for (const finding of findings) {
    if (finding.severity !== 'error') continue
    for (const id of finding.evidence.taskIds ?? []) ids.add(id)
    if (!kinds.includes(finding.kind)) kinds.push(finding.kind)
  }
  return {ids, kinds}
}

function countWaits(count: number): string {
  if (count === 1) return 'the only wait'
  return count === 2 ? 'both waits' : `all ${count} waits`
}
