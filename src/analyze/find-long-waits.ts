// Waits that could still end but have lasted long enough to look at: a producer held back for a minute,
// or (when the operator asks with --min-wait) anything waiting longer than they care to see.

import type {StacksInput} from '../model/dump.js'
import type {Finding} from '../model/findings.js'
import type {ChannelRecord, TaskKind, TaskRecord} from '../model/snapshot.js'
import {formatDurationMs} from '../units.js'
import {
  collectSites,
  describeChannel,
  describeWaitVerb,
  describeWaiters,
  formatChannelRef,
  groupStacks,
  isPlural,
} from './group-stacks.js'

/** Threshold (ms) when the operator gave no --min-wait: a producer held back this long is news. */
export const DEFAULT_LONG_WAIT_MS = 60_000

/**
 * Kinds judged without --min-wait. Only waits that mean "a consumer is not taking items": a receiver
 * idle on an empty buffer is how a pipeline looks when its source is quiet, and a plain promise may be a
 * timer or an accept loop, so neither is a warning unless the operator sets a threshold.
 */
const DEFAULT_KINDS: ReadonlySet<TaskKind> = new Set(['channel-send', 'stream-write', 'slot-wait'])

export interface FindLongWaitsOptions {
  /**
   * The operator's --min-wait (ms). When given (> 0), every blocked task of any kind waiting at least
   * this long is reported; 0 means "show everything" and warns about nothing. When absent,
   * DEFAULT_LONG_WAIT_MS applies to DEFAULT_KINDS only.
   */
  minWaitMs?: number
  /** Task ids an error finding already explains; they are not warned about twice. */
  coveredTaskIds?: ReadonlySet<number>
}

/** The threshold findLongWaits will use for these options (ms), or null when it warns about nothing. */
export function resolveLongWaitMs(options: Pick<FindLongWaitsOptions, 'minWaitMs'>): number | null {
  if (options.minWaitMs === undefined) return DEFAULT_LONG_WAIT_MS
  return options.minWaitMs > 0 ? options.minWaitMs : null
}

/** long-wait warnings, one per group of same-shaped tasks (see groupStacks). */
export function findLongWaits(input: StacksInput, options: FindLongWaitsOptions = {}): Finding[] {
  const thresholdMs = resolveLongWaitMs(options)
  if (thresholdMs === null) return []
  const covered = options.coveredTaskIds ?? new Set<number>()
  const kindFilter = options.minWaitMs === undefined ? DEFAULT_KINDS : null
  const candidates = input.tasks.filter(
    (task) =>
      task.state === 'blocked' &&
      task.waitMs >= thresholdMs &&
      !covered.has(task.id) &&
      (kindFilter === null || kindFilter.has(task.kind)),
  )
  const tasksById = new Map(candidates.map((task) => [task.id, task]))
  const channelsById = new Map(input.channels.map((channel) => [channel.id, channel]))

  return groupStacks(candidates).map((group) => {
    const tasks = group.taskIds.map((id) => tasksById.get(id)!)
    const first = tasks[0]!
    const channel = first.channelId === undefined ? undefined : channelsById.get(first.channelId)
    const target =
      first.kind === 'promise' ? 'a promise' : describeChannel(first.channelName ?? channel?.name, first.channelId)
    return {
      kind: 'long-wait',
      severity: 'warning',
      summary:
        `${describeWaiters(tasks)} ${isPlural(tasks) ? 'have' : 'has'} been ${describeWaitVerb(first.kind)} ${target} ` +
        `for ${formatDurationMs(group.maxWaitMs)}${describeState(first, channel)}`,
      evidence: {
        sites: collectSites([first]),
        channels: group.channelIds.map((id) => formatChannelRef(channelsById.get(id)?.name ?? group.channelName, id)),
        taskIds: group.taskIds,
        waitMs: group.maxWaitMs,
        thresholdMs,
      },
      suggestion: suggestFor(first.kind, first.channelName ?? channel?.name),
    }
  })
}

/** What the buffer looks like, so the reader knows which side to look at. */
function describeState(task: TaskRecord, channel: ChannelRecord | undefined): string {
  if (!channel || channel.kind === 'slot') return ''
  if (task.kind === 'channel-send') {
    return `; it holds ${channel.length} of ${channel.capacity} and its receivers have taken ${channel.itemsOut} items in all`
  }
  if (task.kind === 'channel-receive') return `; it is empty and has been sent ${channel.itemsIn} items in all`
  return ''
}

function suggestFor(kind: TaskKind, name: string | undefined): string {
  const buffer = name === undefined ? 'this buffer' : `'${name}'`
  switch (kind) {
    case 'channel-send':
    case 'stream-write':
      return `The consumer of ${buffer} has not taken an item for this long: take a second dump to see whether it moves, and look at what the receiving stage is doing (a slow target shows as a busy stage).`
    case 'channel-receive':
      return `Nothing has been put into ${buffer} for this long: look upstream at its producer, or raise --min-wait if the source is simply quiet.`
    case 'slot-wait':
      return `Nothing has filled ${buffer} yet: check that the stage meant to create it has started.`
    case 'promise':
      return 'Take a second dump to see whether it moves; if it never does, find what should settle this promise.'
  }
}
