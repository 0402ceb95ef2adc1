// pprof export of a stacks dump (gzipped profile.proto, like Go's /debug/pprof/goroutine), so waits open
// in `go tool pprof` or any pprof viewer: one sample per group, labelled with state, kind and buffer.

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
 * wait is the summed wait of the group's tasks. Labels per sample: state, kind, and when known buffer
 * ("name #id", one label per instance), stage and reason. Locations are leaf first, one per distinct
 * frame (line and column kept); functions are keyed by name and file.
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

    const functionKey = JSON.stringify([frame.functionName, frame.url])
    let functionId = functionIds.get(functionKey)
    if (functionId === undefined) {
      functionId = functions.length + 1 // pprof ids are 1-based; 0 means "none"
      const name = strings.dedup(frame.functionName || '<anonymous>')
      functions.push(new PprofFunction({id: functionId, name, systemName: name, filename: strings.dedup(frame.url)}))
      functionIds.set(functionKey, functionId)
    }
    const locationId = locations.length + 1
    locations.push(new Location({id: locationId, line: [{functionId, line: frame.line, column: frame.column}]}))
    locationIds.set(locationKey, locationId)
    return locationId
  }

  const channelNames = new Map(dump.channels.map((channel) => [channel.id, channel.name]))
  const samples = dump.groups.map((group) => ({
    locationId: (group.stack.length > 0 ? group.stack : [UNKNOWN_FRAME]).map(locate),
    value: [group.count, BigInt(Math.round(group.totalWaitMs)) * NS_PER_MS],
    label: labelGroup(group, channelNames, strings),
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

function labelGroup(group: TaskGroup, channelNames: Map<number, string>, strings: StringTable): LabelInput[] {
  const label = (key: string, value: string): LabelInput => ({key: strings.dedup(key), str: strings.dedup(value)})
  const labels = [label('state', group.state), label('kind', group.kind)]
  for (const id of group.channelIds) labels.push(label('buffer', `${channelNames.get(id) ?? group.channelName ?? '(unnamed)'} #${id}`))
  if (group.channelIds.length === 0 && group.channelName !== undefined) labels.push(label('buffer', group.channelName))
  if (group.stageName !== undefined) labels.push(label('stage', group.stageName))
  if (group.reason !== undefined) labels.push(label('reason', group.reason))
  return labels
}
