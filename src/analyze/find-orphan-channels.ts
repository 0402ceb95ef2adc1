// Waits on buffers that nobody serves: sends into a buffer that never had a receiver, waits on a slot
// never filled (Go's nil channel, ghostferry #331), and waits whose buffer or resolver is gone for good.

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
  isPlural,
  maxWaitMs,
  readHolder,
  sortedTaskIds,
} from './group-stacks.js'

export interface FindOrphanChannelsOptions {
  /**
   * A send into a never-received buffer, or a wait on an unfilled slot, is reported only once its
   * oldest task has waited this long (ms): at startup a producer may legitimately run ahead of a
   * consumer that is still connecting. A sender whose same-named twin buffer has a blocked receiver is
   * reported at once: that shape has no innocent reading.
   */
  stuckAfterMs: number
}

/**
 * uninitialized-channel-send findings, one per orphan buffer or slot. Three shapes, all state
 * 'blocked' tasks on live (not collected, not closed) records:
 * - replaced-buffer: senders blocked on buffer X (receiversEver 0, itemsOut 0, no blocked receiver)
 *   while a receiver is blocked on a different buffer Y with the same name.
 * - never-received: the same sender shape with no such twin, oldest send >= stuckAfterMs.
 * - unfilled-slot: 'slot-wait' tasks on a slot not filled, oldest wait >= stuckAfterMs; receivers
 *   blocked on a same-named buffer are named as the likely buffer that never went into the slot.
 * Tasks already in state never-resumes are left to findNeverResumes.
 */
export function findOrphanChannels(input: StacksInput, options: FindOrphanChannelsOptions): Finding[] {
  const channelsById = new Map(input.channels.map((channel) => [channel.id, channel]))
  const blocked = input.tasks.filter((task) => task.state === 'blocked')
  const findings: Finding[] = []

  for (const [channelId, senders] of tasksByChannel(blocked, 'channel-send')) {
    const channel = channelsById.get(channelId)
    if (!channel || !isNeverReceived(channel)) continue
    const twins = blocked.filter(
      (task) => task.kind === 'channel-receive' && task.channelName === channel.name && task.channelId !== channel.id,
    )
    const oldestMs = maxWaitMs(senders)
    if (twins.length > 0) findings.push(reportReplacedBuffer(channel, senders, twins, channelsById))
    else if (oldestMs >= options.stuckAfterMs) findings.push(reportNeverReceived(channel, senders))
  }

  for (const [slotId, waiters] of tasksByChannel(blocked, 'slot-wait')) {
    const slot = channelsById.get(slotId)
    // A slot-wait task only exists while the slot is empty; a record saying otherwise is a stale task.
    if (slot?.filled === true || slot?.collected === true) continue
    if (maxWaitMs(waiters) < options.stuckAfterMs) continue
    const name = slot?.name ?? waiters[0]!.channelName
    const twins = blocked.filter(
      (task) => task.kind === 'channel-receive' && name !== undefined && task.channelName === name && task.channelId !== slotId,
    )
    findings.push(reportUnfilledSlot(slotId, name, waiters, twins))
  }
  return findings
}

/**
 * never-resumes findings: tasks whose buffer was garbage-collected while they waited, or (heap route)
 * whose awaited promise has no reachable resolver. One finding per buffer (or per reason and await
 * site when there is no buffer).
 */
export function findNeverResumes(input: StacksInput): Finding[] {
  const channelsById = new Map(input.channels.map((channel) => [channel.id, channel]))
  const byKey = new Map<string, TaskRecord[]>()
  for (const task of input.tasks) {
    if (task.state !== 'never-resumes') continue
    const where = task.channelId !== undefined ? `#${task.channelId}` : `@${collectSites([task])[0] ?? `task ${task.id}`}`
    const key = `${task.kind}|${task.reason ?? ''}|${where}`
    const list = byKey.get(key)
    if (list) list.push(task)
    else byKey.set(key, [task])
  }

  const findings: Finding[] = []
  for (const tasks of byKey.values()) {
    const first = tasks[0]!
    const channel = first.channelId === undefined ? undefined : channelsById.get(first.channelId)
    const who = describeWaiters(tasks)
    const what =
      first.kind === 'promise'
        ? 'a promise'
        : describeChannel(first.channelName ?? channel?.name, first.channelId)
    const oldestMs = maxWaitMs(tasks)
    const ageKnown = tasks.some((task) => task.waitKnown !== false)
    const waited = ageKnown && oldestMs > 0 ? ` (waiting ${formatDurationMs(oldestMs)})` : ''
    let summary: string
    let suggestion: string
    if (first.reason === 'channel-collected' || channel?.collected === true) {
      summary = `${who} ${isPlural(tasks) ? 'are' : 'is'} ${describeWaitVerb(first.kind)} ${what}, which was garbage-collected while ${isPlural(tasks) ? 'they' : 'it'} waited: nothing can ever wake ${isPlural(tasks) ? 'them' : 'it'}${waited}`
      if (first.kind === 'channel-send' && channel && channel.receiversEver === 0 && channel.itemsOut === 0) {
        summary += '; that buffer never had a receiver either'
      }
      suggestion =
        `Something dropped the last reference to ${what} while a stage still waited on it (typically a buffer replaced on restart or retry). ` +
        'Close a buffer before replacing it, so pending waits end (ChannelClosedError or {ok: false}), and hand every stage the same instance.'
    } else if (first.reason === 'no-resolver') {
      summary = `${who} ${isPlural(tasks) ? 'are' : 'is'} awaiting a promise that nothing can settle: no resolve or reject function for it is reachable except through the waiting task itself${waited}`
      suggestion =
        'Keep whatever should settle this promise reachable (the resolve function, or the emitter, buffer or timer holding it), ' +
        'or reject it on shutdown; with no resolver the await is a send into a nil channel.'
    } else if (first.reason === 'resolver-gone') {
      summary = `${who} ${isPlural(tasks) ? 'are' : 'is'} awaiting a promise that can never settle: no resolve function for it exists any more and no native handle owns it (its resolver was overwritten or dropped, or it is the result of an async function that was itself garbage-collected while stuck)${waited}`
      suggestion =
        'Find where this promise\'s resolve function is stored and what replaced or dropped it (a second wait overwriting a single `resolve` field, a wait list entry removed without being called); keep one resolver per waiter, or reject waiters you drop.'
    } else {
      const reason = first.reason === undefined ? '' : ` (${first.reason})`
      summary = `${who} ${isPlural(tasks) ? 'are' : 'is'} ${describeWaitVerb(first.kind)} ${what} and can never resume${reason}${waited}`
      suggestion = 'Find what should wake this wait and why it no longer can; take a second dump to confirm nothing moved.'
    }
    findings.push({
      kind: 'never-resumes',
      severity: 'error',
      summary,
      evidence: {
        sites: collectSites(tasks),
        channels: first.kind === 'promise' ? [] : [formatChannelRef(first.channelName ?? channel?.name, first.channelId)],
        taskIds: sortedTaskIds(tasks),
        ...(ageKnown ? {waitMs: oldestMs} : {}),
        ...(readHolder(first) === undefined ? {} : {resolver: readHolder(first)}),
        reason: first.reason ?? null,
      },
      suggestion,
    })
  }
  return findings
}

/** A live, open buffer that nothing has ever received from and nobody is waiting to receive from. */
function isNeverReceived(channel: ChannelRecord): boolean {
  return (
    channel.kind === 'channel' &&
    !channel.collected &&
    !channel.closed &&
    channel.receiversEver === 0 &&
    channel.itemsOut === 0 &&
    channel.blockedReceivers === 0
  )
}

function reportReplacedBuffer(
  channel: ChannelRecord,
  senders: TaskRecord[],
  twins: TaskRecord[],
  channelsById: Map<number, ChannelRecord>,
): Finding {
  const twinIds = [...new Set(twins.map((task) => task.channelId!))].sort((a, b) => a - b)
  const twinList = twinIds.map((id) => `#${id}`).join(', ')
  const oldestMs = maxWaitMs(senders)
  const summary =
    `${describeWaiters(senders)} ${isPlural(senders) ? 'have' : 'has'} been sending into ${describeChannel(channel.name, channel.id)} ` +
    `for ${formatDurationMs(oldestMs)}, but that buffer has never had a receiver; ` +
    `${describeWaiters(twins)} ${isPlural(twins) ? 'are' : 'is'} receiving from a different '${channel.name}' ${twinList} ` +
    '(the buffer was replaced after the sender captured it)'
  return {
    kind: 'uninitialized-channel-send',
    severity: 'error',
    summary,
    evidence: {
      shape: 'replaced-buffer',
      sites: collectSites([...senders, ...twins]),
      channels: [channel.id, ...twinIds].map((id) => formatChannelRef(channelsById.get(id)?.name ?? channel.name, id)),
      taskIds: sortedTaskIds([...senders, ...twins]),
      waitMs: oldestMs,
      itemsBuffered: channel.length,
    },
    suggestion:
      `Create '${channel.name}' once, before starting any stage that uses it, and give both sides that same instance; ` +
      'never reassign a buffer after a stage has captured it (ghostferry #331: the writer created its buffer in Run(), after the streamer had captured the nil one).',
  }
}

function reportNeverReceived(channel: ChannelRecord, senders: TaskRecord[]): Finding {
  const oldestMs = maxWaitMs(senders)
  return {
    kind: 'uninitialized-channel-send',
    severity: 'error',
    summary:
      `${describeWaiters(senders)} ${isPlural(senders) ? 'have' : 'has'} been sending into ${describeChannel(channel.name, channel.id)} ` +
      `for ${formatDurationMs(oldestMs)}, but nothing has ever received from that buffer ` +
      `(${channel.length} of ${channel.capacity} buffered, none taken out)`,
    evidence: {
      shape: 'never-received',
      sites: collectSites(senders),
      channels: [formatChannelRef(channel.name, channel.id)],
      taskIds: sortedTaskIds(senders),
      waitMs: oldestMs,
      itemsBuffered: channel.length,
    },
    suggestion:
      `Make sure a stage receives from this very instance of '${channel.name}': start the consumer before (or with) the producer ` +
      'and pass both the same buffer; if the consumer failed at startup, its error is in the log from that time.',
  }
}

function reportUnfilledSlot(
  slotId: number,
  name: string | undefined,
  waiters: TaskRecord[],
  twins: TaskRecord[],
): Finding {
  const oldestMs = maxWaitMs(waiters)
  let summary =
    `${describeWaiters(waiters)} ${isPlural(waiters) ? 'have' : 'has'} been waiting ${formatDurationMs(oldestMs)} for slot ` +
    `${describeChannel(name, slotId)}, which has never been filled (Go's nil channel)`
  const twinIds = [...new Set(twins.map((task) => task.channelId!))].sort((a, b) => a - b)
  if (twins.length > 0) {
    summary +=
      `; ${describeWaiters(twins)} ${isPlural(twins) ? 'are' : 'is'} receiving from ${twinIds.map((id) => describeChannel(name, id)).join(', ')}, ` +
      'a buffer that was created but never put in the slot'
  }
  const quoted = name === undefined ? 'the slot' : `slot '${name}'`
  return {
    kind: 'uninitialized-channel-send',
    severity: 'error',
    summary,
    evidence: {
      shape: 'unfilled-slot',
      sites: collectSites([...waiters, ...twins]),
      channels: [slotId, ...twinIds].map((id) => formatChannelRef(name, id)),
      taskIds: sortedTaskIds([...waiters, ...twins]),
      waitMs: oldestMs,
    },
    suggestion:
      `Fill ${quoted} (slot.set(buffer)) before the stages that wait on it start, or create the buffer up front and pass it in; ` +
      'a slot that is never filled is a nil channel and its waiters sleep forever.',
  }
}

/** Blocked tasks of one kind, by the channel id they wait on (tasks without an id are skipped). */
function tasksByChannel(tasks: readonly TaskRecord[], kind: TaskRecord['kind']): Map<number, TaskRecord[]> {
  const byId = new Map<number, TaskRecord[]>()
  for (const task of tasks) {
    if (task.kind !== kind || task.channelId === undefined) continue
    const list = byId.get(task.channelId)
    if (list) list.push(task)
    else byId.set(task.channelId, [task])
  }
  return byId
}
