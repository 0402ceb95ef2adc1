// The pprof export read back by an independent reader, `go tool pprof` (Debian's golang): unknown waits
// are labelled, not passed off as 0 ns; two same-named queue instances stay apart in labels; function
// names keep their class; files are plain paths; V8's pseudo-frames are not files. First on a dump
// built by hand, then end to end on a wild program (`stacks --heap --format pprof`).

import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {after, describe, it} from 'node:test'
import {promisify} from 'node:util'
import {buildStacksDump} from '../src/analyze/stacks-findings.js'
import type {StacksDump, TaskGroup} from '../src/model/dump.js'
import {renderStacksPprof} from '../src/render/stacks-pprof.js'
import {killAllTargets} from './helpers/child-process.js'
import {loadSnapshotFixture} from './helpers/make-snapshot.js'
import {runCli, testTimeoutMs} from './helpers/run-node.js'
import {listWildPrograms, startWildProgram} from './helpers/wild.js'

const run = promisify(execFile)
const dir = mkdtempSync(path.join(tmpdir(), 'ferrydiag-pprof-reader-'))
after(async () => {
  await killAllTargets()
  rmSync(dir, {recursive: true, force: true})
})

interface RawSample {
  values: number[]
  /** Location ids, leaf first. */
  locations: number[]
  labels: Record<string, string[]>
}

interface RawProfile {
  sampleTypes: string[]
  samples: RawSample[]
  /** Location id → [function name, file, line] (one line per location: no inlining here). */
  locations: Map<number, {functionName: string; file: string; line: number}>
}

/** `go tool pprof -raw FILE`, parsed: the reader's own view of samples, labels and locations. */
async function readWithGo(file: string): Promise<RawProfile> {
  const {stdout} = await run('go', ['tool', 'pprof', '-raw', file], {env: {...process.env, GOFLAGS: '', HOME: process.env.HOME ?? tmpdir()}, timeout: testTimeoutMs(60_000)})
  const lines = stdout.split('\n')
  const start = lines.findIndex((line) => line === 'Samples:')
  assert.ok(start >= 0, `no Samples: section in\n${stdout}`)
  const sampleTypes = lines[start + 1]!.trim().split(/\s+/).map((type) => type.replace(/\[dflt\]$/, ''))
  const samples: RawSample[] = []
  let i = start + 2
  for (; i < lines.length && lines[i] !== 'Locations'; i++) {
    const line = lines[i]!
    const sample = /^\s+([\d\s]+):\s*([\d\s]*)$/.exec(line)
    if (sample) {
      const values = sample[1]!.trim().split(/\s+/).map(Number)
      samples.push({values, locations: sample[2]!.trim().split(/\s+/).filter(Boolean).map(Number), labels: {}})
      continue
    }
    // labels: key:[value] pairs; a value may hold spaces and brackets, so it ends at the "]" that is
    // followed by the next "key:[" or the end of the line.
    for (const match of line.matchAll(/([\w-]+):\[(.*?)\](?=\s+[\w-]+:\[|\s*$)/g)) {
      const current = samples.at(-1)
      assert.ok(current, `label line before any sample: ${line}`)
      ;(current.labels[match[1]!] ??= []).push(match[2]!)
    }
  }
  const locations = new Map<number, {functionName: string; file: string; line: number}>()
  for (i++; i < lines.length && lines[i] !== 'Mappings'; i++) {
    // "     1: 0x0 M=1 Handoff.put /abs/handoff.mjs:15 s=0"; a function with no file: "name :0 s=0"
    const match = /^\s*(\d+): 0x0 M=\d+ (.*) (\S*):(\d+) s=\d+$/.exec(lines[i]!)
    if (match) locations.set(Number(match[1]), {functionName: match[2]!, file: match[3]!, line: Number(match[4])})
  }
  return {sampleTypes, samples, locations}
}

const frame = (functionName: string, url: string, line: number, column = 3) => ({functionName, url, line, column})

/** A heap-route-like dump by hand: groups with unknown waits, same-named instances, pseudo-frames. */
function handMadeDump(): StacksDump {
  const base = buildStacksDump(loadSnapshotFixture('healthy'), {source: {kind: 'heap-snapshot', notes: []}})
  const group = (overrides: Partial<TaskGroup> & Pick<TaskGroup, 'taskIds' | 'stack'>): TaskGroup => ({
    count: overrides.taskIds.length,
    kind: 'promise',
    state: 'blocked',
    channelIds: [],
    unknownWaitCount: overrides.taskIds.length,
    minWaitMs: 0,
    maxWaitMs: 0,
    totalWaitMs: 0,
    ...overrides,
  })
  const holder = (path: string) => ({kind: 'object' as const, objectClass: 'BoundedQueue', channelName: 'changes', path})
  return {
    ...base,
    groups: [
      group({taskIds: [1], holder: holder('BoundedQueue.notFull[]'), stack: [frame('Streamer.start', 'file:///srv/app/streamer.mjs', 78)]}),
      group({taskIds: [2], holder: holder('BoundedQueue.notEmpty[]'), stack: [frame('Loader.start', 'file:///srv/app/loader%C3%A9.mjs', 98)]}),
      group({
        taskIds: [3, 4, 5],
        unknownWaitCount: 1,
        minWaitMs: 1000,
        maxWaitMs: 2000,
        totalWaitMs: 3000,
        stack: [frame('fetchAll', '/srv/app/fetch.cjs', 12), frame('Promise.all', 'index 1', 0, 0), frame('main', 'node:internal/main', 4)],
      }),
    ],
    findings: [
      {
        kind: 'uninitialized-channel-send',
        severity: 'error',
        summary: 'split queue',
        evidence: {
          instances: [
            {side: 'send', className: 'BoundedQueue', paths: ['streamer.queue'], heapId: 101, taskIds: [1]},
            {side: 'receive', className: 'BoundedQueue', paths: ['loader.queue'], heapId: 202, taskIds: [2]},
          ],
        },
        suggestion: '',
      },
    ],
  }
}

describe('stacks pprof export, read by go tool pprof', () => {
  it('labels unknown waits, keeps same-named instances apart, writes plain paths and no pseudo-files', {timeout: testTimeoutMs(90_000)}, async () => {
    const file = path.join(dir, 'hand.pb.gz')
    writeFileSync(file, renderStacksPprof(handMadeDump()))
    const profile = await readWithGo(file)
    assert.deepEqual(profile.sampleTypes, ['count/count', 'wait/nanoseconds'])
    assert.equal(profile.samples.length, 3)
    const [send, receive, mixed] = profile.samples as [RawSample, RawSample, RawSample]
    assert.deepEqual(send.labels.wait, ['unknown'])
    assert.deepEqual(receive.labels.wait, ['unknown'])
    assert.deepEqual(mixed.labels.wait, ['unknown for 1 of 3 tasks'])
    assert.deepEqual(mixed.values, [3, 3000 * 1e6])
    assert.deepEqual(send.labels.buffer, ["BoundedQueue 'changes'"])
    assert.deepEqual(send.labels.instance, ['streamer.queue (BoundedQueue @101)'])
    assert.deepEqual(receive.labels.instance, ['loader.queue (BoundedQueue @202)'])
    assert.deepEqual(send.labels.holder, ['BoundedQueue.notFull[]'])

    const at = (sample: RawSample) => sample.locations.map((id) => profile.locations.get(id))
    assert.deepEqual(at(send), [{functionName: 'Streamer.start', file: '/srv/app/streamer.mjs', line: 78}])
    assert.deepEqual(at(receive), [{functionName: 'Loader.start', file: '/srv/app/loaderé.mjs', line: 98}])
    assert.deepEqual(at(mixed), [
      {functionName: 'fetchAll', file: '/srv/app/fetch.cjs', line: 12},
      {functionName: 'Promise.all (index 1)', file: '', line: 0},
      {functionName: 'main', file: 'node:internal/main', line: 4},
    ])
  })

  const program = listWildPrograms().find((p) => p.file === 'linked-handoff.mjs')
  it('stacks --heap --format pprof on a wild split queue (ESM): both instances, class names, await lines', {timeout: testTimeoutMs(180_000)}, async (t) => {
    assert.ok(program, 'fixtures/wild/linked-handoff.mjs is missing')
    const started = await startWildProgram(program, {t})
    const file = path.join(dir, 'linked-handoff.pb.gz')
    const result = await runCli(['stacks', '--inspect', `127.0.0.1:${started.inspectPort}`, '--heap', '--yes', '--format', 'pprof', '--output', file], {
      timeoutMs: testTimeoutMs(150_000),
    })
    assert.equal(result.code, 0, result.stderr)
    const profile = await readWithGo(file)
    const instances = profile.samples.flatMap((sample) => sample.labels.instance ?? [])
    for (const wanted of program.instances) {
      assert.ok(instances.some((label) => label.split(/, | \(/).includes(wanted)), `no instance label for ${wanted}: ${JSON.stringify(instances)}`)
    }
    assert.equal(new Set(instances).size, 2, JSON.stringify(instances))
    const all = [...profile.locations.values()]
    assert.ok(all.every((location) => !location.file.startsWith('file:')), JSON.stringify(all))
    for (const site of program.stuckAt) {
      const hit = all.find((location) => location.file === site.path && location.line === site.line)
      assert.ok(hit, `no location at ${site.file}:${site.line}: ${JSON.stringify(all)}`)
      assert.match(hit.functionName, /^Handoff\.(put|take)$/)
    }
    for (const sample of profile.samples) assert.deepEqual(sample.labels.wait, ['unknown'], 'no agent: no wait is known')
  })
})
