// The --heap route end to end on real Node targets started with --inspect and no preparation: an init
// race onto a placeholder channel, a never-resolved deferred, a healthy pipeline that must show no
// never-resumes, wait ages read from the agent's await-times stamps (and their absence without it),
// plus the snapshot parser, the stamp arithmetic and the cost estimate on their own.

import assert from 'node:assert/strict'
import type {ChildProcess} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {after, before, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'

import CDP from 'chrome-remote-interface'

import {findOrphanedHeapChannels} from '../src/analyze/heap-orphan-channels.js'
import {describeHolder} from '../src/render/stacks-holder.js'
import {ageFromStamp, collectHeapTasks, type HeapTaskRecord, type HeapTasksResult} from '../src/attach/heap-tasks.js'
import {estimateHeapRouteCost, HeapSnapshotParser, readHeapUsage} from '../src/attach/heap-snapshot.js'
import {spawnTarget} from './helpers/child-process.js'

const TEST_TIMEOUT_MS = 120_000

interface Target {
  child: ChildProcess
  client: CDP.Client
  port: number
  stop(): Promise<void>
}

interface TargetOptions {
  /** Node flags after --inspect, e.g. ['--import', registerPath]. */
  nodeFlags?: string[]
  env?: NodeJS.ProcessEnv
}

/** Starts `node --inspect=127.0.0.1:0 entry`, waits for the port and for the script's 'ready' line. */
async function startTarget(entry: string, args: string[] = [], readyPattern = /^ready$/, options: TargetOptions = {}): Promise<Target> {
  const target = await spawnTarget({
    file: entry,
    execArgv: ['--inspect=127.0.0.1:0', ...(options.nodeFlags ?? [])],
    args,
    env: options.env,
    readyLine: readyPattern,
    startTimeoutMs: 60_000,
  })
  const port = target.inspectPort!
  const client = await CDP({host: '127.0.0.1', port})
  return {
    child: target.child,
    client,
    port,
    async stop() {
      await client.close().catch(() => undefined)
      await target.kill()
    },
  }
}

/** 1-based line of the first source line containing marker. */
function lineOf(source: string, marker: string): number {
  const index = source.split('\n').findIndex((line) => line.includes(marker))
  assert.ok(index >= 0, `marker ${marker} not in source`)
  return index + 1
}

const innermost = (t: HeapTaskRecord): string => t.stack[0]?.functionName ?? ''
const stackNames = (t: HeapTaskRecord): string[] => t.stack.map((f) => f.functionName)
const dump = (r: HeapTasksResult): string =>
  r.tasks
    .map((t) => `${t.id} ${t.kind} ${t.state} ${describeHolder(t.holder)} :: ${t.stack.map((f) => `${f.functionName}:${f.line}`).join(' <- ')}`)
    .join('\n')

// A plain-JS channel with wait queues, as a pipeline without ferrydiag would write it.
const CHANNEL_SOURCE = `
export class Channel {
  constructor(name, capacity) {
    this.name = name
    this.capacity = capacity
    this.items = []
    this.sendWaiters = []
    this.receiveWaiters = []
  }
  async send(item) {
    while (this.items.length >= this.capacity && this.receiveWaiters.length === 0) {
      await new Promise((resolve) => this.sendWaiters.push(resolve)) // AWAIT-SEND
    }
    this.items.push(item)
    this.receiveWaiters.shift()?.()
  }
  async receive() {
    while (this.items.length === 0) {
      this.sendWaiters.shift()?.()
      await new Promise((resolve) => this.receiveWaiters.push(resolve)) // AWAIT-RECEIVE
    }
    const item = this.items.shift()
    this.sendWaiters.shift()?.()
    return item
  }
}
`

// ghostferry #331 in Node: the writer creates its real buffer in run(); the streamer captured the
// placeholder the constructor left, and sends into it forever.
const INIT_RACE_SOURCE = `
import {Channel} from './channel.mjs'
class BinlogWriter {
  constructor() { this.buffer = new Channel('binlog-events', 0) } // placeholder
  async bufferBinlogEvents(events) {
    await this.eventBuffer.send(events) // AWAIT-BUFFER
  }
  async run() {
    this.buffer = new Channel('binlog-events', 100)
    for (;;) {
      const batch = await this.buffer.receive() // AWAIT-WRITER
      this.applied = (this.applied ?? 0) + batch.length
    }
  }
}
class BinlogStreamer {
  constructor(writer) { this.writer = writer; this.listener = writer }
  async handleRowsEvent(event) {
    await this.listener.bufferBinlogEvents([event]) // AWAIT-HANDLE
  }
  async run() {
    for (let i = 0; ; i++) await this.handleRowsEvent({table: 't', row: i}) // AWAIT-STREAMER
  }
}
class Ferry {
  constructor() {
    this.writer = new BinlogWriter()
    this.streamer = new BinlogStreamer(this.writer)
  }
  start() {
    this.writer.eventBuffer = this.writer.buffer // the race: read before run() replaces it
    this.streamer.run()
    setTimeout(() => this.writer.run(), 20)
  }
}
export const ferry = new Ferry()
ferry.start()
setInterval(() => {}, 1000)
setTimeout(() => console.log('ready'), 300)
`

// A streamer that waits on a readiness deferred nobody will ever resolve: the promise is published on
// a module-level object, the resolve function only lives in the waiting function's locals.
const DEFERRED_SOURCE = `
class Deferred {
  constructor() {
    this.promise = new Promise((resolve, reject) => { this.resolve = resolve; this.reject = reject })
  }
}
class BinlogStreamer {
  async waitUntilReady() {
    const started = new Deferred()
    this.ready = started.promise
    await started.promise // AWAIT-READY
  }
  async run() {
    await this.waitUntilReady() // AWAIT-RUN
    for (;;) await new Promise((r) => setTimeout(r, 100))
  }
}
class RowCopier {
  async run() {
    // Its executor drops resolve: the resolver is gone from the heap altogether.
    this.gate = new Promise(() => {})
    await this.gate // AWAIT-GATE
  }
}
export const streamer = new BinlogStreamer()
export const copier = new RowCopier()
streamer.run()
copier.run()
setInterval(() => {}, 1000)
setTimeout(() => console.log('ready'), 300)
`

// Healthy: everything pending is pending by design and must not be reported as never-resuming.
const TLA_SOURCE = `
import {EventEmitter, once} from 'node:events'
export const shutdown = new EventEmitter()
// Top-level await for the life of the app: the ESM loader job stays pending.
await once(shutdown, 'stop') // AWAIT-TLA
`
const HEALTHY_SOURCE = `
import http from 'node:http'
import {EventEmitter, once, on} from 'node:events'
import {setTimeout as sleep} from 'node:timers/promises'
import {Channel} from './channel.mjs'

const events = new Channel('binlog-events', 4)
async function produce() {
  for (let i = 0; ; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500)) // AWAIT-PRODUCER
    await events.send({i})
  }
}
async function consume() {
  for (;;) {
    const item = await events.receive() // AWAIT-CONSUMER
    globalThis.lastItem = item
  }
}
const control = new EventEmitter()
globalThis.control = control
async function waitForCutover() {
  await once(control, 'cutover') // AWAIT-ONCE
}
const server = http.createServer()
server.listen(0, '127.0.0.1')
async function acceptLoop() {
  for await (const [req, res] of on(server, 'request')) res.end('ok')
}
async function sleeper() {
  await sleep(1_000_000) // AWAIT-SLEEP
}
// The resolver lives only in the locals of a task that is itself waiting on a timer: alive.
class Deferred {
  constructor() { this.promise = new Promise((resolve) => { this.resolve = resolve }) }
}
async function keeper(d) {
  await new Promise((r) => setTimeout(r, 1_000_000))
  d.resolve()
}
async function waitOnKeeper() {
  const d = new Deferred()
  keeper(d)
  await d.promise // AWAIT-KEEPER
}
produce()
consume()
waitForCutover()
acceptLoop()
sleeper()
waitOnKeeper()
setTimeout(() => console.log('ready'), 300)
await import('./tla.mjs')
`

// Wait ages: the deferred is created at load, the stuck await begins 1.5 s later and 'ready' comes 2 s
// after that, so an age read from the deferred's own creation would be ~1.5 s too old. The consumer
// waits on a channel fed every 200 ms: its current wait is always young.
const AGES_SOURCE = `
import {Channel} from './channel.mjs'
class Deferred {
  constructor() { this.promise = new Promise((resolve) => { this.resolve = resolve }) }
}
async function waitForSchema(ready) {
  globalThis.awaitBeganAt = performance.now()
  await ready.promise // AWAIT-SCHEMA
}
async function startStreamer() {
  // The promise is published (so the tasks stay in the heap); the resolver only in the waiting
  // tasks' locals: never-resumes once the timer is done.
  const ready = new Deferred()
  globalThis.schemaReady = ready.promise
  globalThis.deferredCreatedAt = performance.now()
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await waitForSchema(ready) // AWAIT-START
}
const events = new Channel('row-events', 1)
async function consume() {
  for (;;) globalThis.last = await events.receive() // AWAIT-ROWS
}
startStreamer()
consume()
// One item 2.5 s in: the consumer's current wait then starts ~1 s before 'ready', well after the stuck one.
setTimeout(() => { globalThis.lastSendAt = performance.now(); events.send(1) }, 2500)
setInterval(() => {}, 1000)
setTimeout(() => console.log('ready'), 3500)
`

const REGISTER_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/agent/register.js')

describe('heap route (--heap) on targets with no preparation', {timeout: TEST_TIMEOUT_MS * 4}, () => {
  let dir = ''
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ferrydiag-heap-'))
    await writeFile(path.join(dir, 'channel.mjs'), CHANNEL_SOURCE)
    await writeFile(path.join(dir, 'init-race.mjs'), INIT_RACE_SOURCE)
    await writeFile(path.join(dir, 'deferred.mjs'), DEFERRED_SOURCE)
    await writeFile(path.join(dir, 'tla.mjs'), TLA_SOURCE)
    await writeFile(path.join(dir, 'healthy.mjs'), HEALTHY_SOURCE)
    await writeFile(path.join(dir, 'ages.mjs'), AGES_SOURCE)
  })
  after(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('shows the init race: a sender parked on a placeholder channel, the writer on its twin', {timeout: TEST_TIMEOUT_MS}, async () => {
    const target = await startTarget(path.join(dir, 'init-race.mjs'))
    try {
      let estimated = false
      const result = await collectHeapTasks(target.client, {onEstimate: () => void (estimated = true)})
      assert.ok(estimated, 'onEstimate is called before the snapshot')
      const sender = result.tasks.find((t) => t.kind === 'channel-send')
      const receiver = result.tasks.find((t) => t.kind === 'channel-receive')
      assert.ok(sender, `a channel-send task\n${dump(result)}`)
      assert.ok(receiver, `a channel-receive task\n${dump(result)}`)
      assert.equal(sender.channelName, 'binlog-events')
      assert.equal(receiver.channelName, 'binlog-events')
      assert.equal(sender.state, 'blocked', 'the placeholder is still referenced: not provably dead')
      assert.match(describeHolder(sender.holder), /wait list 'sendWaiters' of Channel 'binlog-events'/)
      // names as V8 prints them in a stack trace: the receiver's class and the method
      assert.deepEqual(stackNames(sender), ['Channel.send', 'BinlogWriter.bufferBinlogEvents', 'BinlogStreamer.handleRowsEvent', 'BinlogStreamer.run'])
      assert.deepEqual(stackNames(receiver), ['Channel.receive', 'BinlogWriter.run'])
      // Exact await lines from [[GeneratorLocation]], innermost first.
      const channelUrl = sender.stack[0].url
      assert.ok(channelUrl.endsWith('/channel.mjs'), channelUrl)
      assert.equal(sender.stack[0].line, lineOf(CHANNEL_SOURCE, 'AWAIT-SEND'))
      assert.equal(sender.stack[1].line, lineOf(INIT_RACE_SOURCE, 'AWAIT-BUFFER'))
      assert.equal(sender.stack[2].line, lineOf(INIT_RACE_SOURCE, 'AWAIT-HANDLE'))
      assert.equal(sender.stack[3].line, lineOf(INIT_RACE_SOURCE, 'AWAIT-STREAMER'))
      assert.equal(receiver.stack[1].line, lineOf(INIT_RACE_SOURCE, 'AWAIT-WRITER'))
      // read from V8, or from a function with a single await of its own (which needs no lookup)
      assert.ok(sender.frames.every((f) => f.siteSource === 'generator-location' || f.siteSource === 'only-await'), JSON.stringify(sender.frames))
      // Two distinct objects with the same name: the orphaned-channel shape.
      assert.ok(sender.channelObjectHeapId !== undefined && receiver.channelObjectHeapId !== undefined)
      assert.notEqual(sender.channelObjectHeapId, receiver.channelObjectHeapId)
      const findings = findOrphanedHeapChannels(result.tasks)
      assert.equal(findings.length, 1, JSON.stringify(findings))
      assert.equal(findings[0].kind, 'uninitialized-channel-send')
      assert.equal(findings[0].evidence.sendObjectHeapId, sender.channelObjectHeapId)
      assert.equal(findings[0].evidence.receiveObjectHeapId, receiver.channelObjectHeapId)
      assert.ok(result.stats.generators >= 6 && result.stats.nodes > 1000, JSON.stringify(result.stats))
      assert.equal(result.tasks.filter((t) => t.state === 'never-resumes').length, 0, dump(result))
      // No agent: no ages, and every task says so rather than passing 0 off as a measurement.
      assert.equal(result.waitAges.awaitTimes, false)
      assert.ok(result.tasks.every((t) => !t.waitKnown && t.waitMs === 0 && t.sinceMs === result.takenAtMs))
      assert.equal(result.waitAges.stampedPromises, 0)
    } finally {
      await target.stop()
    }
  })

  it('says never-resumes for a deferred whose resolver only the waiting task holds', {timeout: TEST_TIMEOUT_MS}, async () => {
    const target = await startTarget(path.join(dir, 'deferred.mjs'))
    try {
      const result = await collectHeapTasks(target.client)
      const stuck = result.tasks.find((t) => innermost(t) === 'BinlogStreamer.waitUntilReady')
      assert.ok(stuck, dump(result))
      assert.equal(stuck.state, 'never-resumes', dump(result))
      assert.equal(stuck.reason, 'no-resolver')
      assert.equal(stuck.holderInfo.kind, 'waiting-task-only')
      assert.match(describeHolder(stuck.holder), /locals of waitUntilReady/)
      assert.deepEqual(stackNames(stuck), ['BinlogStreamer.waitUntilReady', 'BinlogStreamer.run'])
      assert.equal(stuck.stack[0].line, lineOf(DEFERRED_SOURCE, 'AWAIT-READY'))
      assert.equal(stuck.stack[1].line, lineOf(DEFERRED_SOURCE, 'AWAIT-RUN'))
      // The resolver is gone from the heap and no native handle owns the promise (only a property
      // stores it): made by new Promise with an executor that dropped resolve, it can never settle.
      const gate = result.tasks.find((t) => t.stack.some((f) => f.line === lineOf(DEFERRED_SOURCE, 'AWAIT-GATE')))
      assert.ok(gate, dump(result))
      assert.equal(gate.state, 'never-resumes', dump(result))
      assert.equal(gate.reason, 'resolver-gone')
      assert.equal(gate.holderInfo.kind, 'no-resolver')
      assert.equal(gate.holderInfo.objectClass, 'RowCopier')
    } finally {
      await target.stop()
    }
  })

  it('reports no never-resumes on a healthy pipeline full of by-design waits', {timeout: TEST_TIMEOUT_MS}, async () => {
    const target = await startTarget(path.join(dir, 'healthy.mjs'))
    try {
      const result = await collectHeapTasks(target.client, {maxLookups: 30, lookupBudgetMs: 60_000})
      const never = result.tasks.filter((t) => t.state === 'never-resumes')
      assert.deepEqual(never, [], dump(result))
      const byLine = (marker: string, source = HEALTHY_SOURCE): HeapTaskRecord | undefined =>
        result.tasks.find((t) => t.stack[0]?.line === lineOf(source, marker) && t.stack[0].url.endsWith(source === TLA_SOURCE ? '/tla.mjs' : '/healthy.mjs'))
      const producer = byLine('AWAIT-PRODUCER')
      assert.ok(producer, dump(result))
      assert.equal(producer.holderInfo.kind, 'timer')
      const consumer = result.tasks.find((t) => t.kind === 'channel-receive')
      assert.ok(consumer, dump(result))
      assert.deepEqual(stackNames(consumer), ['Channel.receive', 'consume'])
      assert.equal(byLine('AWAIT-ONCE')?.holderInfo.kind, 'event-listener', dump(result))
      assert.ok(byLine('AWAIT-SLEEP'), dump(result))
      assert.equal(byLine('AWAIT-KEEPER')?.state, 'blocked', dump(result))
      assert.equal(byLine('AWAIT-TLA', TLA_SOURCE)?.holderInfo.kind, 'event-listener', dump(result))
      assert.ok(result.tasks.some((t) => innermost(t) === 'acceptLoop'), dump(result))
    } finally {
      await target.stop()
    }
  })

  it('reads wait ages from await-times stamps on a target preloaded with the agent', {timeout: TEST_TIMEOUT_MS}, async () => {
    const target = await startTarget(path.join(dir, 'ages.mjs'), [], /^ready$/, {
      nodeFlags: ['--import', REGISTER_PATH],
      env: {...process.env, FERRYDIAG_AGENT_MODE: 'await-times'},
    })
    try {
      const result = await collectHeapTasks(target.client)
      const after = (await target.client.send('Runtime.evaluate', {
        expression:
          '({awaitAgeMs: performance.now() - awaitBeganAt, deferredAgeMs: performance.now() - deferredCreatedAt, sendAgeMs: performance.now() - lastSendAt})',
        returnByValue: true,
      })).result.value as {awaitAgeMs: number; deferredAgeMs: number; sendAgeMs: number}
      assert.equal(result.waitAges.awaitTimes, true, JSON.stringify(result.waitAges))
      assert.equal(result.waitAges.error, undefined)
      assert.ok(result.waitAges.stampedPromises > 0 && result.waitAges.tasksWithAge >= 2, JSON.stringify(result.waitAges))
      const stuck = result.tasks.find((t) => innermost(t) === 'waitForSchema')
      assert.ok(stuck, dump(result))
      assert.deepEqual(stackNames(stuck), ['waitForSchema', 'startStreamer'])
      assert.equal(stuck.stack[0].line, lineOf(AGES_SOURCE, 'AWAIT-SCHEMA'))
      // The hook's objects and ferrydiag's own index must not change the verdict.
      assert.equal(stuck.state, 'never-resumes', dump(result))
      assert.equal(stuck.waitKnown, true)
      assert.ok(stuck.awaitStartPromiseHeapId !== undefined)
      assert.ok(stuck.waitMs >= 1500, `stuck waitMs ${stuck.waitMs}`)
      // Since the await began, not since the (1.5 s older) deferred was created.
      assert.ok(stuck.waitMs <= after.awaitAgeMs + 5, `waitMs ${stuck.waitMs} vs await age ${after.awaitAgeMs}`)
      assert.ok(after.deferredAgeMs - after.awaitAgeMs >= 1400, JSON.stringify(after))
      assert.ok(Math.abs(stuck.sinceMs + stuck.waitMs - result.takenAtMs) < 1000, `${stuck.sinceMs} + ${stuck.waitMs} vs ${result.takenAtMs}`)
      const consumer = result.tasks.find((t) => t.kind === 'channel-receive' && t.channelName === 'row-events')
      assert.ok(consumer, dump(result))
      assert.equal(consumer.waitKnown, true)
      assert.ok(consumer.waitMs < stuck.waitMs && consumer.waitMs <= after.sendAgeMs + 5, `consumer waitMs ${consumer.waitMs}; ${JSON.stringify(after)}`)
      assert.equal(consumer.state, 'blocked')
      // The index is gone from the target afterwards.
      const left = (await target.client.send('Runtime.evaluate', {
        expression: `Object.getOwnPropertySymbols(globalThis).map(String).filter((s) => s.includes('heapAgeIndex')).length`,
        returnByValue: true,
      })).result.value
      assert.equal(left, 0)
    } finally {
      await target.stop()
    }
  })

  it('leaves wait ages unknown when the agent runs without await-times', {timeout: TEST_TIMEOUT_MS}, async () => {
    const target = await startTarget(path.join(dir, 'ages.mjs'), [], /^ready$/, {
      nodeFlags: ['--import', REGISTER_PATH],
      env: {...process.env, FERRYDIAG_AGENT_MODE: 'channels'},
    })
    try {
      const result = await collectHeapTasks(target.client)
      assert.equal(result.waitAges.awaitTimes, false)
      const stuck = result.tasks.find((t) => innermost(t) === 'waitForSchema')
      assert.ok(stuck, dump(result))
      assert.equal(stuck.state, 'never-resumes', dump(result))
      assert.ok(result.tasks.length >= 2 && result.tasks.every((t) => !t.waitKnown && t.waitMs === 0), dump(result))
    } finally {
      await target.stop()
    }
  })

  it('reports no never-resumes on the healthy pipeline with await-times on', {timeout: TEST_TIMEOUT_MS}, async () => {
    const target = await startTarget(path.join(dir, 'healthy.mjs'), [], /^ready$/, {
      nodeFlags: ['--import', REGISTER_PATH],
      env: {...process.env, FERRYDIAG_AGENT_MODE: 'await-times'},
    })
    try {
      const result = await collectHeapTasks(target.client, {maxLookups: 30, lookupBudgetMs: 60_000})
      assert.deepEqual(result.tasks.filter((t) => t.state === 'never-resumes'), [], dump(result))
      const consumer = result.tasks.find((t) => t.kind === 'channel-receive')
      assert.ok(consumer?.waitKnown, dump(result))
      assert.ok(result.waitAges.tasksWithAge >= 5, JSON.stringify(result.waitAges))
    } finally {
      await target.stop()
    }
  })

  it('reads the heap size cheaply and estimates the cost from it', {timeout: TEST_TIMEOUT_MS}, async () => {
    const target = await startTarget(path.join(dir, 'deferred.mjs'))
    try {
      const usage = await readHeapUsage(target.client)
      assert.ok(usage.usedBytes > 1e6 && usage.usedBytes <= usage.totalBytes, JSON.stringify(usage))
    } finally {
      await target.stop()
    }
    const small = estimateHeapRouteCost(10 * 1024 * 1024)
    const large = estimateHeapRouteCost(100 * 1024 * 1024)
    assert.ok(small.stallMs < large.stallMs && small.extraMemoryBytes < large.extraMemoryBytes)
    // The band's low end is the measured sparse heap (~2 s, ~+120 MB at 100 MB), its high end above it.
    assert.ok(large.stallMsLow > 1000 && large.stallMsLow < 4000 && large.stallMsHigh > large.stallMs, JSON.stringify(large))
    assert.ok(large.extraMemoryBytesLow > 100e6 && large.extraMemoryBytesLow < 200e6, JSON.stringify(large))
    assert.ok(large.stallMsWorst > large.stallMs && large.extraMemoryBytesWorst > large.extraMemoryBytes)
    assert.throws(() => estimateHeapRouteCost(-1), RangeError)
  })

  it('tries the reference pipeline fixture when it is built', {timeout: TEST_TIMEOUT_MS}, async (t) => {
    const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/pipeline/main.js')
    if (!existsSync(main)) {
      // `npm test` builds first, so under CI a missing fixture is a broken build, not a reason to skip.
      if (process.env.CI) assert.fail(`${main} not built`)
      t.skip('dist/fixtures/pipeline/main.js not built')
      return
    }
    const target = await startTarget(main, ['--scenario=init-race', '--simulate'], /^ferrydiag-pipeline /)
    try {
      // The fixture's init race uses ferrydiag's own Channel (private #senders/#receivers queues): the
      // heap route must find the streamer parked on the placeholder and the writer on the real one.
      // Snapshots are taken until the race has happened (a loaded machine may take seconds), not after a
      // fixed delay.
      const deadline = performance.now() + 60_000
      let result = await collectHeapTasks(target.client)
      let findings = findOrphanedHeapChannels(result.tasks)
      while (findings.length === 0 && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 500))
        result = await collectHeapTasks(target.client)
        findings = findOrphanedHeapChannels(result.tasks)
      }
      t.diagnostic(dump(result))
      t.diagnostic(JSON.stringify(findings))
      assert.equal(findings.length, 1, dump(result))
      assert.equal(result.tasks.filter((x) => x.state === 'never-resumes').length, 0, dump(result))
    } finally {
      await target.stop()
    }
  })
})

describe('ageFromStamp', () => {
  it('turns a stamp into a start time and an age on the agent clock', () => {
    assert.deepEqual(ageFromStamp(1000, 3500.4, 1_700_000_000_000), {sinceMs: 1_700_000_000_000 + 1000, waitMs: 2500})
    // Rounding may put "now" a fraction of a ms before a just-made stamp: no negative ages, no wrap.
    assert.deepEqual(ageFromStamp(3500, 3499.6, 0), {sinceMs: 3500, waitMs: 0})
  })

  it('undoes the 30-bit wrap of stamps after ~12.4 days', () => {
    const wrap = 2 ** 30
    // Now is 1000 ms past the first wrap; the wait began 3000 ms earlier, before the wrap.
    assert.deepEqual(ageFromStamp(wrap - 2000, wrap + 1000, 0), {sinceMs: wrap - 2000, waitMs: 3000})
    // Two wraps in, a stamp taken after the second wrap.
    assert.deepEqual(ageFromStamp(10, 2 * wrap + 60, 5), {sinceMs: 5 + 2 * wrap + 10, waitMs: 50})
    assert.throws(() => ageFromStamp(wrap, 0, 0), RangeError)
    assert.throws(() => ageFromStamp(1.5, 0, 0), RangeError)
  })
})

describe('HeapSnapshotParser', () => {
  it('decodes nodes, edges and strings the same as JSON.parse, whatever the chunk boundaries', () => {
    const snapshot = {
      snapshot: {
        meta: {
          node_fields: ['type', 'name', 'id', 'self_size', 'edge_count', 'trace_node_id', 'detachedness'],
          node_types: [['hidden', 'object'], 'string', 'number', 'number', 'number', 'number', 'number'],
          edge_fields: ['type', 'name_or_index', 'to_node'],
          edge_types: [['context', 'property'], 'string_or_number', 'node'],
          location_fields: ['object_index', 'script_id', 'line', 'column'],
        },
        node_count: 3,
        edge_count: 2,
        trace_function_count: 0,
      },
      nodes: [1, 0, 1, 0, 2, 0, 0, 1, 1, 3, 4294967295, 0, 0, 0, 1, 2, 5, 12, 0, 0, 0],
      edges: [1, 3, 7, 1, 4, 14],
      trace_function_infos: [],
      trace_tree: [],
      samples: [],
      locations: [7, 42, 10, 3],
      strings: ['', 'Channel', 'Promise', 'x', 'y "quoted" ]['],
    }
    const text = JSON.stringify(snapshot, null, 1)
    for (const size of [1, 2, 3, 7, 50, text.length]) {
      const parser = new HeapSnapshotParser()
      for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size))
      const data = parser.finish()
      assert.deepEqual([...data.nodes], snapshot.nodes, `chunk size ${size}`)
      assert.deepEqual([...data.edges], snapshot.edges)
      assert.deepEqual([...data.locations], snapshot.locations)
      assert.deepEqual(data.strings, snapshot.strings)
      assert.deepEqual(data.nodeTypeNames, ['hidden', 'object'])
    }
  })

  it('refuses a truncated snapshot', () => {
    const parser = new HeapSnapshotParser()
    parser.push('{"snapshot":{"meta":{"node_fields":["a"],"edge_fields":["b"],"node_types":[[]],"edge_types":[[]]},"node_count":2,"edge_count":0},"nodes":[1,')
    assert.throws(() => parser.finish(), /ended early/)
  })
})
