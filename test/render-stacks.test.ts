// Tests for the stacks renderers: text against golden files, the JSON shape, and the pprof export
// decoded back. Golden files live in fixtures/golden/ (source tree, not dist/). To regenerate them after
// an intended change to the text output, run:
//   npx tsc -p tsconfig.json && UPDATE_GOLDEN=1 node --test dist/test/render-stacks.test.js
// and review the diff of fixtures/golden/ before committing it.

import assert from 'node:assert/strict'
import {dirname} from 'node:path'
import {describe, it} from 'node:test'
import {gunzipSync} from 'node:zlib'
import {Profile} from 'pprof-format'
import {buildStacksDump} from '../src/analyze/stacks-findings.js'
import type {BuildStacksDumpOptions} from '../src/analyze/stacks-findings.js'
import type {DumpSource, StacksDump} from '../src/model/dump.js'
import {formatDurationMs, formatDurationRangeMs} from '../src/units.js'
import {renderStacksJson} from '../src/render/stacks-json.js'
import {renderStacksPprof} from '../src/render/stacks-pprof.js'
import {renderStacksText} from '../src/render/stacks-text.js'
import {SNAPSHOT_FIXTURES, loadSnapshotFixture} from './helpers/make-snapshot.js'
import {assertGolden} from './helpers/golden.js'
import type {SnapshotFixtureName} from './helpers/make-snapshot.js'

const PRELOADED: DumpSource = {kind: 'agent-preloaded', notes: []}

function dumpOf(name: SnapshotFixtureName, options: Partial<BuildStacksDumpOptions> = {}): StacksDump {
  return buildStacksDump(loadSnapshotFixture(name), {source: PRELOADED, ...options})
}


describe('renderStacksText golden files', () => {
  for (const name of SNAPSHOT_FIXTURES) {
    it(`renders ${name}`, () => {
      assertGolden(`stacks-${name}.txt`, renderStacksText(dumpOf(name)))
    })
  }

  it('renders every task separately for --debug=2', () => {
    assertGolden('stacks-healthy-debug2.txt', renderStacksText(dumpOf('healthy', {ungrouped: true})))
  })

  it('says how many tasks --min-wait hid, and prints source notes', () => {
    const source: DumpSource = {
      kind: 'agent-injected',
      notes: ['the agent was injected at attach time: waits that began before then are not recorded'],
    }
    assertGolden('stacks-healthy-min-wait.txt', renderStacksText(dumpOf('healthy', {minWaitMs: 150, source})))
  })
})

describe('renderStacksText', () => {
  it('prints the Go-style group line, the frames and what the group waits on', () => {
    const text = renderStacksText(dumpOf('init-race-placeholder'))
    assert.match(text, /^1 @ \[chan send \(no receiver ever\), waiting 6019 min\] stage binlog-streamer$/m)
    assert.match(text, /^ {4}BinlogStreamer\.run \(file:\/\/\/srv\/ferry\/dist\/fixtures\/pipeline\/binlog-streamer\.js:29:30\)$/m)
    assert.match(text, /^ {4}waits on buffer 'binlog-events' #3 \(capacity 100, 100 buffered, never received from\)$/m)
    assert.match(text, /^ERROR uninitialized-channel-send$/m)
    assert.match(text, /^ {2}Try: Create 'binlog-events' once/m)
  })

  it('shows source-mapped frames when the dump was built with mapLocation', () => {
    const dump = dumpOf('init-race-placeholder', {
      mapLocation: (frame) => ({...frame, url: frame.url.replace('/dist/', '/').replace(/\.js$/, '.ts'), line: frame.line + 4}),
    })
    const text = renderStacksText(dump)
    assert.match(text, /BinlogStreamer\.run \(file:\/\/\/srv\/ferry\/fixtures\/pipeline\/binlog-streamer\.ts:33:30\)/)
    assert.doesNotMatch(text, /binlog-streamer\.js/)
  })

  it('marks a frame whose line is the function header (heap route: the await line could not be read)', () => {
    const dump = dumpOf('init-race-placeholder')
    const plain = renderStacksText(dump)
    assert.doesNotMatch(plain, /function header/)
    const inner = dump.groups[0]!.stack[0]!
    dump.groups[0]!.stack[0] = {...inner, lineOf: 'function-definition'}
    const text = renderStacksText(dump)
    const site = `${inner.url}:${inner.line}:${inner.column}`
    assert.ok(text.includes(`(${site}, function header: its await line could not be read)`), text)
    assert.equal(JSON.parse(renderStacksJson(dump)).groups[0].stack[0].lineOf, 'function-definition')
  })

  it('says where a line placed from the source came from, and lists candidate awaits', () => {
    const dump = dumpOf('init-race-placeholder')
    const group = dump.groups.find((g) => g.stack.length >= 2)!
    const [inner, outer] = group.stack
    const candidates = [{line: inner!.line, column: 5}, {line: inner!.line + 7, column: 9}]
    group.stack[0] = {...inner!, lineOf: 'await-candidates', awaitCandidates: candidates}
    group.stack[1] = {...outer!, lineOf: 'awaited-call'}
    const text = renderStacksText(dump)
    assert.ok(text.includes(`:${inner!.column}, one of the awaits at lines ${inner!.line}, ${inner!.line + 7}, from its source)`), text)
    assert.ok(text.includes(`${outer!.url}:${outer!.line}:${outer!.column}, the await calling the frame above, from its source)`), text)
    const json = JSON.parse(renderStacksJson(dump)).groups[dump.groups.indexOf(group)].stack
    assert.deepEqual(json[0].awaitCandidates, candidates)
    assert.equal(json[1].lineOf, 'awaited-call')
    group.stack[0] = {...inner!, lineOf: 'only-await'}
    assert.ok(renderStacksText(dump).includes(`:${inner!.column}, the function's only await, from its source)`))
  })

  it('uses ANSI colours only when asked', () => {
    const dump = dumpOf('deadlock')
    assert.doesNotMatch(renderStacksText(dump), /\u001B\[/)
    const colored = renderStacksText(dump, {color: true})
    assert.match(colored, /\u001B\[31;1mERROR deadlock\u001B\[0m/)
  })

  it('wraps finding text at the requested width', () => {
    const text = renderStacksText(dumpOf('deadlock'), {widthColumns: 60})
    const findings = text.slice(text.indexOf('Findings:'))
    for (const line of findings.split('\n').filter((line) => !line.startsWith('    file://'))) {
      assert.ok(line.length <= 60, `line longer than 60 columns: ${line}`)
    }
  })
})

describe('formatDurationMs', () => {
  it('uses ms, s, min and h, truncating', () => {
    assert.equal(formatDurationMs(0), '0 ms')
    assert.equal(formatDurationMs(999.9), '999 ms')
    assert.equal(formatDurationMs(1840), '1.8 s')
    assert.equal(formatDurationMs(59_970), '59 s')
    assert.equal(formatDurationMs(90_000), '1.5 min')
    assert.equal(formatDurationMs(6019 * 60_000 + 41_870), '6019 min')
    assert.equal(formatDurationMs(8 * 24 * 3_600_000), '192 h')
    assert.equal(formatDurationRangeMs(97, 221), '97 ms..221 ms')
    assert.equal(formatDurationRangeMs(60_000, 60_500), '1 min')
  })

  it('rejects negative and non-finite durations', () => {
    assert.throws(() => formatDurationMs(-1), RangeError)
    assert.throws(() => formatDurationMs(Number.POSITIVE_INFINITY), RangeError)
  })
})

describe('renderStacksJson', () => {
  it('writes the versioned dump shape', () => {
    const json = renderStacksJson(dumpOf('init-race-slot'))
    const parsed = JSON.parse(json) as StacksDump
    assert.equal(parsed.schema, 'ferrydiag.stacks')
    assert.equal(parsed.version, 2)
    assert.deepEqual(Object.keys(parsed).slice(0, 6), ['schema', 'version', 'takenAtMs', 'process', 'source', 'grouped'])
    assert.equal(parsed.process.pid, 3117)
    assert.deepEqual(parsed.source, PRELOADED)
    assert.deepEqual(
      parsed.groups.map((group) => [group.kind, group.channelIds, group.taskIds]),
      [
        ['slot-wait', [2], [21]],
        ['channel-receive', [5], [22]],
      ],
    )
    assert.deepEqual(
      parsed.findings.map((finding) => finding.kind),
      ['uninitialized-channel-send', 'deadlock'],
    )
  })
})

describe('renderStacksPprof', () => {
  const decode = (dump: StacksDump) => {
    const profile = Profile.decode(gunzipSync(renderStacksPprof(dump)))
    const text = (index: number | bigint) => profile.stringTable.strings[Number(index)]!
    return {profile, text}
  }

  it('has one sample per group with count and summed wait in nanoseconds', () => {
    const dump = dumpOf('healthy')
    const {profile, text} = decode(dump)
    assert.deepEqual(
      profile.sampleType.map((type) => `${text(type.type)}/${text(type.unit)}`),
      ['count/count', 'wait/nanoseconds'],
    )
    assert.equal(profile.sample.length, dump.groups.length)
    profile.sample.forEach((sample, index) => {
      const group = dump.groups[index]!
      assert.deepEqual(sample.value.map(Number), [group.count, group.totalWaitMs * 1e6])
    })
    assert.equal(BigInt(profile.timeNanos), BigInt(dump.takenAtMs) * 1_000_000n)
  })

  it('labels samples with state, kind, buffer and stage, and keeps frames as locations', () => {
    const dump = dumpOf('init-race-placeholder')
    const {profile, text} = decode(dump)
    const labels = profile.sample.map((sample) =>
      Object.fromEntries(sample.label.map((label) => [text(label.key), text(label.str)])),
    )
    assert.deepEqual(labels[0], {state: 'blocked', kind: 'channel-send', buffer: 'binlog-events #3', stage: 'binlog-streamer'})
    assert.deepEqual(labels[1], {state: 'blocked', kind: 'channel-receive', buffer: 'binlog-events #7', stage: 'binlog-writer'})

    const functionsById = new Map(profile.function.map((fn) => [Number(fn.id), fn]))
    const locationsById = new Map(profile.location.map((location) => [Number(location.id), location]))
    profile.sample.forEach((sample, index) => {
      const frames = sample.locationId.map((id) => {
        const line = locationsById.get(Number(id))!.line[0]!
        const fn = functionsById.get(Number(line.functionId))!
        return {functionName: text(fn.name), url: text(fn.filename), line: Number(line.line), column: Number(line.column)}
      })
      // files are plain paths, not the file:// URLs the frames carry
      assert.deepEqual(frames, dump.groups[index]!.stack.map((frame) => ({...frame, url: frame.url.replace(/^file:\/\//, '')})))
    })
  })

  it('gives a group without a captured stack a stand-in location and labels never-resumes', () => {
    const dump = dumpOf('collected-while-blocked')
    dump.groups[0]!.stack = []
    const {profile, text} = decode(dump)
    const first = profile.sample[0]!
    assert.equal(first.locationId.length, 1)
    const location = profile.location.find((candidate) => Number(candidate.id) === Number(first.locationId[0]))!
    const fn = profile.function.find((candidate) => Number(candidate.id) === Number(location.line[0]!.functionId))!
    assert.equal(text(fn.name), '(no await site captured)')
    const labels = Object.fromEntries(first.label.map((label) => [text(label.key), text(label.str)]))
    assert.equal(labels.state, 'never-resumes')
    assert.equal(labels.reason, 'channel-collected')
  })
})
