// Text form of a stacks dump, read by an operator at a terminal: Go-style grouped waits, the buffers
// and stages involved (cli-table3), then findings with what to try. Deterministic: no clock, no TTY probe.

import Table from 'cli-table3'
import type {AwaitedEmitter, AwaitedStream, StacksDump, TaskGroup} from '../model/dump.js'
import type {Finding, Severity} from '../model/findings.js'
import {formatSite, type ChannelRecord, type StackFrame} from '../model/snapshot.js'
import {formatDurationMs, formatDurationRangeMs} from '../units.js'
import {describeHolder} from './stacks-holder.js'
import {maskSecretsInText} from './mask-secrets.js'

export interface RenderStacksTextOptions {
  /** ANSI colours for severities and group lines; the command passes true only for a TTY. Default false. */
  color?: boolean
  /** Wrap finding text at this many columns (>= 40). Default 100. */
  widthColumns?: number
}

const MAX_LISTED_TASK_IDS = 12
const INDENT = '    '

export function renderStacksText(dump: StacksDump, options: RenderStacksTextOptions = {}): string {
  const paint = makePainter(options.color === true)
  const widthColumns = Math.max(40, options.widthColumns ?? 100)
  const channelsById = new Map(dump.channels.map((channel) => [channel.id, channel]))
  const lines: string[] = [...renderHeader(dump), '']

  if (dump.groups.length === 0) {
    lines.push(dump.taskCount === 0 ? 'No task is waiting.' : 'No task waits long enough to show.', '')
  }
  for (const group of dump.groups) {
    lines.push(...renderGroup(group, dump.grouped, channelsById, paint), '')
  }

  if (dump.emitters && dump.emitters.length > 0) lines.push('Awaited emitters', ...dump.emitters.flatMap(renderEmitter), '')
  if (dump.channels.length > 0) lines.push('Buffers', renderChannelTable(dump.channels), '')
  if (dump.stages.length > 0) lines.push('Stages', renderStageTable(dump), '')

  lines.push(...renderFindings(dump.findings, widthColumns, paint))
  return `${lines.join('\n').trimEnd()}\n`
}

/** One emitter: the event awaited, by whom, its listeners and fields; for a stream, its pipe chain. */
function renderEmitter(emitter: AwaitedEmitter): string[] {
  const name = emitter.paths[0] ?? `${emitter.className}@${emitter.heapId}`
  const listeners = emitter.listeners
    ? Object.entries(emitter.listeners).filter(([, count]) => count > 0).map(([event, count]) => `${event} ${count}`).join(', ')
    : ''
  const lines = [
    `  '${emitter.eventName}' on ${name} (${emitter.className}): awaited by ${plural(emitter.taskIds.length, 'task')} (${listIds(emitter.taskIds)})` +
      (listeners ? `; listeners: ${listeners}` : '') +
      (emitter.streams ? describeMoved(emitter.moved, emitter.observedMs) : describeFieldsMoved(emitter.moved, emitter.observedMs)),
  ]
  if (emitter.fields && Object.keys(emitter.fields).length > 0) {
    lines.push(`${INDENT}fields: ${Object.entries(emitter.fields).map(([key, value]) => `${key}=${value}`).join(', ')}`)
  }
  for (const stream of emitter.streams ?? []) lines.push(...renderStream(stream, emitter.observedMs))
  return lines
}

function renderStream(stream: AwaitedStream, observedMs: number | null): string[] {
  const s = stream.state
  const parts: string[] = []
  if (s) {
    parts.push(`${s.writableLength}/${s.writableHighWaterMark} buffered`)
    if (s.writing) {
      const holder = stream.callbackHolder === 'none' ? 'callback held by nothing' : `callback held by ${stream.callbackHeldBy ?? stream.callbackHolder}`
      parts.push(`write in flight (${holder})`)
    } else parts.push('no write in flight')
    if (s.readableLength !== undefined) parts.push(`readable ${s.readableLength}/${s.readableHighWaterMark ?? '?'}`)
    if (s.corked > 0) parts.push(`corked ${s.corked}`)
    if (s.ended) parts.push('ended')
    if (s.destroyed) parts.push('destroyed')
    if (s.errored !== null) parts.push(`errored: ${s.errored}`)
  } else parts.push('state not read (no second look)')
  const lines = [`${INDENT}stream ${stream.className}: ${parts.join(', ')}${describeMoved(stream.moved, observedMs)}`]
  for (const method of stream.implementation) lines.push(`${INDENT}  ${method}`)
  return lines
}

function describeFieldsMoved(moved: boolean | null, observedMs: number | null): string {
  if (moved === null || observedMs === null) return ''
  return moved ? `; its fields changed during the ${formatDurationMs(observedMs)} look` : `; its fields did not change in ${formatDurationMs(observedMs)}`
}

function describeMoved(moved: boolean | null, observedMs: number | null): string {
  if (moved === null || observedMs === null) return ''
  // Only state changes can be seen: a stream refilled as fast as it drains looks unchanged.
  return moved ? `; its state changed during the ${formatDurationMs(observedMs)} look` : `; state unchanged for ${formatDurationMs(observedMs)}`
}

function renderHeader(dump: StacksDump): string[] {
  const info = dump.process
  const shown = dump.groups.reduce((sum, group) => sum + group.count, 0)
  const lines = [
    `ferrydiag stacks: pid ${info.pid}, node ${info.nodeVersion}, up ${formatDurationMs(info.uptimeSec * 1000)}, ${maskSecretsInText(info.title)}`,
    info.agentLoadedBy === 'none'
      ? `data from ${dump.source.kind} (no ferrydiag agent in the process)`
      : `data from ${dump.source.kind} (agent ${info.agentVersion}, ${info.agentMode} mode, loaded by ${info.agentLoadedBy})`,
    `taken at ${new Date(dump.takenAtMs).toISOString()}: ${plural(dump.taskCount, 'task')} waiting` +
      (dump.grouped ? `, ${plural(dump.groups.length, 'group')}` : ''),
  ]
  if (dump.hiddenTaskCount > 0 && dump.thresholds.minWaitMs !== null) {
    lines.push(
      `${plural(dump.hiddenTaskCount, 'task')} waiting less than ${formatDurationMs(dump.thresholds.minWaitMs)} not shown (${shown} shown)`,
    )
  }
  for (const note of dump.source.notes) lines.push(`note: ${note}`)
  return lines
}

/** "waiting 4.3 s", "waiting 1–9 s", or "wait unknown" where nothing recorded when the waits began. */
function describeWait(group: TaskGroup): string {
  if (group.unknownWaitCount === group.count) return 'wait unknown'
  const known = `waiting ${formatDurationRangeMs(group.minWaitMs, group.maxWaitMs)}`
  return group.unknownWaitCount === 0 ? known : `${known}, ${group.unknownWaitCount} of unknown age`
}

function renderGroup(
  group: TaskGroup,
  grouped: boolean,
  channelsById: Map<number, ChannelRecord>,
  paint: Painter,
): string[] {
  const channel = group.channelIds.length > 0 ? channelsById.get(group.channelIds[0]!) : undefined
  const state = group.state === 'never-resumes' ? ', never resumes' : ''
  const bracket = `[${labelKind(group, channel)}${state}, ${describeWait(group)}]`
  const who = grouped ? `${group.count} @ ` : `task ${group.taskIds[0]} `
  const stage = group.stageName === undefined ? '' : ` stage ${group.stageName}`
  const lines = [paint.bold(`${who}${bracket}${stage}`)]

  if (group.stack.length === 0) lines.push(`${INDENT}(no await site captured)`)
  for (const frame of group.stack) lines.push(`${INDENT}${formatFrame(frame)}`)

  for (const id of group.channelIds) {
    lines.push(`${INDENT}waits on ${describeTarget(channelsById.get(id), group.channelName, id)}`)
  }
  if (group.holder !== undefined) lines.push(`${INDENT}resolver: ${describeHolder(group.holder)}`)
  if (group.state === 'never-resumes') lines.push(`${INDENT}never resumes: ${explainReason(group.reason)}`)
  if (grouped) lines.push(`${INDENT}${group.count === 1 ? 'task' : 'tasks'} ${listIds(group.taskIds)}`)
  return lines
}

/** Go's wait reasons, with a qualifier when the buffer explains the wait ("chan send (nil chan)"). */
function labelKind(group: TaskGroup, channel: ChannelRecord | undefined): string {
  switch (group.kind) {
    case 'channel-send':
      if (channel?.collected) return 'chan send (buffer collected)'
      return channel && channel.receiversEver === 0 && channel.itemsOut === 0 ? 'chan send (no receiver ever)' : 'chan send'
    case 'channel-receive':
      if (channel?.collected) return 'chan receive (buffer collected)'
      return channel && channel.sendersEver === 0 && channel.itemsIn === 0 ? 'chan receive (no sender ever)' : 'chan receive'
    case 'slot-wait':
      return 'slot wait (unfilled slot)'
    case 'stream-write':
      return 'stream write (waiting for drain)'
    case 'promise':
      return 'await'
  }
}

function formatFrame(frame: StackFrame): string {
  return `${frame.functionName || '<anonymous>'} (${formatSite(frame)}${describeLineOf(frame)})`
}

/** How a heap-route frame's line was found, when V8 did not say it: see StackFrame.lineOf. */
function describeLineOf(frame: StackFrame): string {
  switch (frame.lineOf) {
    case undefined:
      return ''
    case 'only-await':
      return ", the function's only await, from its source"
    case 'awaited-call':
      return ', the await calling the frame above, from its source'
    case 'await-candidates':
      return `, one of the awaits at lines ${(frame.awaitCandidates ?? []).map((site) => site.line).join(', ')}, from its source`
    case 'function-definition':
      return ', function header: its await line could not be read'
  }
}

/** "buffer 'binlog-events' #3 (capacity 100, 100 buffered, never received from)". */
function describeTarget(channel: ChannelRecord | undefined, name: string | undefined, id: number): string {
  if (!channel) return `'${name ?? '(unnamed)'}' #${id} (no record in this snapshot)`
  const label = `'${channel.name}' #${channel.id}`
  if (channel.kind === 'slot') {
    const content = channel.filled ? `filled with #${channel.filledWithChannelId ?? '?'}` : 'never filled'
    return `slot ${label} (${content}${channel.collected ? ', garbage-collected' : ''})`
  }
  const details = [
    channel.kind === 'stream'
      ? `highWaterMark ${channel.capacity}`
      : channel.capacity === 0
        ? 'rendezvous'
        : `capacity ${channel.capacity}`,
    `${channel.length} buffered`,
  ]
  if (channel.collected) details.push('garbage-collected')
  if (channel.closed) details.push('closed')
  const neverReceived = channel.receiversEver === 0 && channel.itemsOut === 0
  const neverSent = channel.sendersEver === 0 && channel.itemsIn === 0
  if (neverReceived) details.push('never received from')
  if (neverSent) details.push('never sent to')
  if (!neverReceived && !neverSent) details.push(`${channel.itemsIn} in, ${channel.itemsOut} out`)
  return `${channel.kind === 'stream' ? 'stream' : 'buffer'} ${label} (${details.join(', ')})`
}

function explainReason(reason: string | undefined): string {
  if (reason === 'channel-collected') return 'the buffer was garbage-collected while it waited'
  if (reason === 'no-resolver') return 'nothing reachable can resolve or reject the awaited promise'
  if (reason === 'resolver-gone') return 'its resolve function is gone and no native handle owns the awaited promise'
  return reason ?? 'reason not recorded'
}

function renderChannelTable(channels: readonly ChannelRecord[]): string {
  const table = new Table({
    head: ['buffer', 'kind', 'capacity', 'length', 'in', 'out', 'blocked send', 'blocked recv', 'state'],
    colAligns: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
    style: {head: [], border: [], compact: true},
  })
  for (const channel of channels) {
    table.push([
      `${channel.name} #${channel.id}`,
      channel.kind,
      channel.kind === 'slot' ? '-' : channel.capacity,
      channel.kind === 'slot' ? '-' : channel.length,
      channel.itemsIn,
      channel.itemsOut,
      channel.blockedSenders,
      channel.blockedReceivers,
      describeChannelState(channel),
    ])
  }
  return table.toString()
}

function describeChannelState(channel: ChannelRecord): string {
  if (channel.collected) return 'collected'
  if (channel.kind === 'slot') return channel.filled ? `filled #${channel.filledWithChannelId ?? '?'}` : 'unfilled'
  if (channel.closed) return 'closed'
  if (channel.kind !== 'stream' && channel.length >= channel.capacity && channel.capacity > 0) return 'full'
  return channel.length === 0 ? 'empty' : 'open'
}

function renderStageTable(dump: StacksDump): string {
  const table = new Table({
    head: ['stage', 'state', 'for', 'items', 'last progress'],
    colAligns: ['left', 'left', 'right', 'right', 'right'],
    style: {head: [], border: [], compact: true},
  })
  for (const stage of dump.stages) {
    table.push([
      stage.name,
      stage.state,
      formatDurationMs(Math.max(0, dump.takenAtMs - stage.stateSinceMs)),
      stage.itemsHandled,
      stage.lastProgressAtMs === null ? 'never' : `${formatDurationMs(Math.max(0, dump.takenAtMs - stage.lastProgressAtMs))} ago`,
    ])
  }
  return table.toString()
}

function renderFindings(findings: readonly Finding[], widthColumns: number, paint: Painter): string[] {
  if (findings.length === 0) return ['Findings: none (no task is stuck or waiting unusually long)']
  const count = (severity: Severity) => findings.filter((finding) => finding.severity === severity).length
  const lines = [
    `Findings: ${plural(count('error'), 'error')}, ${plural(count('warning'), 'warning')}, ${count('info')} info`,
  ]
  for (const finding of findings) {
    lines.push('', paint.severity(finding.severity, `${finding.severity.toUpperCase()} ${finding.kind}`))
    lines.push(...wrap(finding.summary, '  ', '  ', widthColumns))
    const evidence = finding.evidence
    if (evidence.sites && evidence.sites.length > 0) {
      lines.push('  sites:')
      for (const site of evidence.sites) lines.push(`${INDENT}${site}`)
    }
    if (evidence.channels && evidence.channels.length > 0) lines.push(`  buffers: ${evidence.channels.join(', ')}`)
    if (evidence.resolver !== undefined) lines.push(...wrap(describeHolder(evidence.resolver), '  resolver: ', '            ', widthColumns))
    if (evidence.taskIds && evidence.taskIds.length > 0) {
      const waited = typeof evidence.waitMs === 'number' ? ` (waiting up to ${formatDurationMs(evidence.waitMs)})` : ''
      lines.push(`  tasks: ${listIds(evidence.taskIds)}${waited}`)
    }
    lines.push(...wrap(finding.suggestion, '  Try: ', '       ', widthColumns))
  }
  return lines
}

/** Greedy word wrap; words longer than a line (URLs) are kept whole. */
function wrap(text: string, firstPrefix: string, restPrefix: string, widthColumns: number): string[] {
  const lines: string[] = []
  let line = firstPrefix
  let lineHasWord = false
  for (const word of text.split(/\s+/).filter((part) => part !== '')) {
    if (lineHasWord && line.length + 1 + word.length > widthColumns) {
      lines.push(line)
      line = restPrefix + word
    } else {
      line += lineHasWord ? ` ${word}` : word
    }
    lineHasWord = true
  }
  lines.push(line)
  return lines
}

function listIds(ids: readonly number[]): string {
  const shown = ids.slice(0, MAX_LISTED_TASK_IDS).join(', ')
  return ids.length > MAX_LISTED_TASK_IDS ? `${shown} and ${ids.length - MAX_LISTED_TASK_IDS} more` : shown
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`
}

interface Painter {
  bold(text: string): string
  severity(severity: Severity, text: string): string
}

function makePainter(color: boolean): Painter {
  if (!color) return {bold: (text) => text, severity: (_severity, text) => text}
  const codes: Record<Severity, string> = {error: '31;1', warning: '33;1', info: '36'}
  return {
    bold: (text) => `\u001B[1m${text}\u001B[22m`,
    severity: (severity, text) => `\u001B[${codes[severity]}m${text}\u001B[0m`,
  }
}
