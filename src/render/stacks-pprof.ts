// pprof export of a stacks dump (gzipped profile.proto, like Go's /debug/pprof/goroutine), so waits open
// in `go tool pprof` or any pprof viewer: one sample per group, labelled with state, kind and buffer.

import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {gzipSync} from 'node:zlib'
import {Function as PprofFunction, Location, Profile, StringTable} from 'pprof-format'
import type {LabelInput} from 'pprof-format'
import type {StacksDump, TaskGroup} from '../model/dump.js'
import type {StackFrame} from '../model/snapshot.js'

const NS_PER_MS = 1_000_000n

/** Stand-in frame for a group whose await site was not captured, so its sample still has a location. */
const UNKNOWN_FRAME: StackFrame = {functionName: '(no await site captured)', url: '', line: 0, column: 0}

/**
 * Encodes the dump as a gzipped pprof profile. Sample types: [count/count, wait/nanoseconds], where
 * wait is the summed wait of the group's tasks whose wait is known. A group with tasks of unknown wait
 * (heap route without the agent's await-times) carries the label `wait`: "unknown" when no task's wait
 * is known (its wait value is then no measurement, not a wait of 0 ns), "unknown for N of M tasks"
 * otherwise. Labels per sample: state, kind, and when known buffer ("name #id" from the agent, one label
 * per instance; on the heap route the holder's class and name), instance (heap route: the property path
 * and heap id of a queue instance a finding names, so two same-named instances stay apart), holder
 * (heap route: the property that holds the resolver), stage and reason. Locations are leaf first, one
 * per distinct frame (line and column kept); functions are keyed by name and file; files are plain
 * paths, and frames with no source file (`Promise.all (index 1)`) keep that text in the function name
 * and have no file.
 */
export function renderStacksPprof(dump: StacksDump): Buffer {
  const strings = new StringTable()
  const functionIds = new Map<string, number>()
  const locationIds = new Map<string, number>()
  const functions: PprofFunction[] = []
  const locations: Location[] = []

  const locate = (frame: StackFrame): number => {
    const locationKey = JSON.stringify([frame.functionName, frame.url, frame.line, frame.column])
    const known = locationIds.get(locationKey)
    if (known !== undefined) return known

    const {name: functionName, file} = nameAndFile(frame)
    const functionKey = JSON.stringify([functionName, file])
    let functionId = functionIds.get(functionKey)
    if (functionId === undefined) {
      functionId = functions.length + 1 // pprof ids are 1-based; 0 means "none"
      const name = strings.dedup(functionName)
      functions.push(new PprofFunction({id: functionId, name, systemName: name, filename: strings.dedup(file)}))
      functionIds.set(functionKey, functionId)
    }
    const locationId = locations.length + 1
    locations.push(new Location({id: locationId, line: [{functionId, line: frame.line, column: frame.column}]}))
    locationIds.set(locationKey, locationId)
    return locationId
  }

  const channelNames = new Map(dump.channels.map((channel) => [channel.id, channel.name]))
  const instancesByTask = instancesOfTasks(dump)
  const samples = dump.groups.map((group) => ({
    locationId: (group.stack.length > 0 ? group.stack : [UNKNOWN_FRAME]).map(locate),
    value: [group.count, BigInt(Math.round(group.totalWaitMs)) * NS_PER_MS],
    label: labelGroup(group, channelNames, instancesByTask, strings),
  }))

  const countType = {type: strings.dedup('count'), unit: strings.dedup('count')}
  const profile = new Profile({
    sampleType: [countType, {type: strings.dedup('wait'), unit: strings.dedup('nanoseconds')}],
    sample: samples,
    location: locations,
    function: functions,
    stringTable: strings,
    timeNanos: BigInt(Math.round(dump.takenAtMs)) * NS_PER_MS,
    periodType: countType,
    period: 1,
    comment: [
      strings.dedup(`ferrydiag stacks: pid ${dump.process.pid}, ${dump.process.nodeVersion}, source ${dump.source.kind}`),
    ],
    defaultSampleType: countType.type,
  })
  return gzipSync(profile.encode())
}

function labelGroup(
  group: TaskGroup,
  channelNames: Map<number, string>,
  instancesByTask: Map<number, string[]>,
  strings: StringTable,
): LabelInput[] {
  const label = (key: string, value: string): LabelInput => ({key: strings.dedup(key), str: strings.dedup(value)})
  const labels = [label('state', group.state), label('kind', group.kind)]
  if (group.unknownWaitCount > 0) {
    labels.push(label('wait', group.unknownWaitCount >= group.count ? 'unknown' : `unknown for ${group.unknownWaitCount} of ${group.count} tasks`))
  }
  for (const id of group.channelIds) labels.push(label('buffer', `${channelNames.get(id) ?? group.channelName ?? '(unnamed)'} #${id}`))
  const holder = group.holder
  if (group.channelIds.length === 0) {
    const held = group.channelName ?? holder?.channelName
    const buffer = holder?.objectClass !== undefined && held !== undefined ? `${holder.objectClass} '${held}'` : (held ?? holder?.objectClass)
    if (buffer !== undefined) labels.push(label('buffer', buffer))
  }
  const instances = new Set(group.taskIds.flatMap((id) => instancesByTask.get(id) ?? []))
  for (const instance of [...instances].sort()) labels.push(label('instance', instance))
  if (holder?.path !== undefined) labels.push(label('holder', holder.eventName === undefined ? holder.path : `${holder.path} '${holder.eventName}'`))
  if (group.stageName !== undefined) labels.push(label('stage', group.stageName))
  if (group.reason !== undefined) labels.push(label('reason', group.reason))
  return labels
}

/**
 * Task id → the queue instances findings name for it (heap route: `evidence.instances[]` with paths,
 * heap id and task ids), as "path, other path (Class @heapId)": what two same-named buffers differ by.
 */
function instancesOfTasks(dump: StacksDump): Map<number, string[]> {
  const byTask = new Map<number, string[]>()
  for (const finding of dump.findings) {
    const instances = finding.evidence.instances
    if (!Array.isArray(instances)) continue
    for (const instance of instances as Array<{className?: string; paths?: string[]; heapId?: number; taskIds?: number[]}>) {
      const where = instance.paths?.length ? instance.paths.join(', ') : '(no path)'
      const text = `${where} (${instance.className ?? 'object'} @${instance.heapId ?? '?'})`
      for (const id of instance.taskIds ?? []) byTask.set(id, [...(byTask.get(id) ?? []), text])
    }
  }
  return byTask
}

/**
 * The pprof function name and file of a frame. A file:// URL becomes its path; an absolute path and a
 * node: module id stay as they are. Anything else is no file: V8's pseudo-frames with no position
 * (`Promise.all (index 1)`, parsed as function "Promise.all" at "index 1") keep that text in the name.
 */
function nameAndFile(frame: StackFrame): {name: string; file: string} {
  const name = frame.functionName || '<anonymous>'
  const url = frame.url
  if (url.startsWith('file://')) {
    try {
      return {name, file: fileURLToPath(url)}
    } catch {
      return {name, file: ''}
    }
  }
  if (path.isAbsolute(url) || url.startsWith('node:')) return {name, file: url}
  if (frame.line === 0 && url !== '') return {name: `${name} (${url})`, file: ''}
  return {name, file: ''}
}
