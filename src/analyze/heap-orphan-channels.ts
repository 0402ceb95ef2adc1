// From heap-route tasks: senders parked on a channel-like object that no one receives from while a
// receiver waits on a different object with the same name: the placeholder / uninitialised channel
// shape of ghostferry #331 (a send into a nil channel), found with no preparation in the target.

import type {Finding} from '../model/findings.js'
import {formatSite, type StackFrame, type TaskKind} from '../model/snapshot.js'

/** The few task fields this analysis reads (HeapTaskRecord satisfies it). */
export interface HeapChannelWait {
  id: number
  kind: TaskKind
  channelName?: string
  /** Heap object id of the channel-like object whose wait queue holds the task's resolver. */
  channelObjectHeapId?: number
  stack: StackFrame[]
}

interface ObjectSides {
  objectHeapId: number
  senders: HeapChannelWait[]
  receivers: HeapChannelWait[]
}


export function findOrphanedHeapChannels(tasks: HeapChannelWait[]): Finding[] {
  const byName = new Map<string, Map<number, ObjectSides>>()
  for (const task of tasks) {
    if (task.kind !== 'channel-send' && task.kind !== 'channel-receive') continue
    if (task.channelName === undefined || task.channelObjectHeapId === undefined) continue
    const objects = byName.get(task.channelName) ?? new Map<number, ObjectSides>()
    byName.set(task.channelName, objects)
    const sides = objects.get(task.channelObjectHeapId) ?? {
      objectHeapId: task.channelObjectHeapId,
      senders: [],
      receivers: [],
    }
    objects.set(task.channelObjectHeapId, sides)
    if (task.kind === 'channel-send') sides.senders.push(task)
    else sides.receivers.push(task)
  }

  const findings: Finding[] = []
  for (const [name, objects] of byName) {
    if (objects.size < 2) continue
    const receiving = [...objects.values()].filter((o) => o.receivers.length > 0 && o.senders.length === 0)
    for (const orphan of objects.values()) {
      if (orphan.senders.length === 0 || orphan.receivers.length > 0) continue
      const twin = receiving.find((o) => o.objectHeapId !== orphan.objectHeapId)
      if (!twin) continue
      const senderSites = orphan.senders.map((t) => (t.stack[0] ? formatSite(t.stack[0]) : '?'))
      const receiverSites = twin.receivers.map((t) => (t.stack[0] ? formatSite(t.stack[0]) : '?'))
      findings.push({
        kind: 'uninitialized-channel-send',
        severity: 'error',
        summary:
          `${orphan.senders.length} task(s) wait to send on '${name}' object @${orphan.objectHeapId}, which no task ` +
          `receives from, while ${twin.receivers.length} receiver(s) wait on a different '${name}' object ` +
          `@${twin.objectHeapId}: the sender holds a placeholder channel that was replaced after it was read.`,
        evidence: {
          sites: senderSites,
          receiverSites,
          channels: [`${name}@${orphan.objectHeapId}`, `${name}@${twin.objectHeapId}`],
          taskIds: [...orphan.senders, ...twin.receivers].map((t) => t.id),
          sendObjectHeapId: orphan.objectHeapId,
          receiveObjectHeapId: twin.objectHeapId,
        },
        suggestion:
          `Create '${name}' before starting its producer (in the constructor, not in the consumer's run()), ` +
          `or have the producer look the channel up at send time instead of caching it.`,
      })
    }
  }
  return findings
}
