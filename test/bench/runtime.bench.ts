// Runtime overhead figures, printed side by side: (a) the headline, instrumented Channel vs a bare
// channel with the same algorithm paced at 50k items/s (the target: within 3 % CPU), then
// unpaced; (b) agent modes on await-heavy code; (c) snapshot cost with 1k/10k/100k blocked waiters,
// snapshotJson() vs the sliced snapshotJsonAsync(). Run: node dist/test/bench/runtime.bench.js
// (prints, asserts nothing).
import {monitorEventLoopDelay} from 'node:perf_hooks'
import {execFileSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import Table from 'cli-table3'
import {installAgent, type AgentApi} from '../../src/agent/agent-core.cjs'
import {Channel} from '../../src/runtime/index.js'

// ---- A bare channel: the same ring buffer + FIFO waiter queues + direct hand-off, with no records. ----
class Ring<T> {
  items: Array<T | undefined> = new Array(16)
  head = 0
  size = 0
  push(item: T): void {
    if (this.size === this.items.length) {
      const next = new Array<T | undefined>(this.items.length * 2)
      for (let i = 0; i < this.size; i++) next[i] = this.items[(this.head + i) & (this.items.length - 1)]
      this.items = next
      this.head = 0
    }
    this.items[(this.head + this.size) & (this.items.length - 1)] = item
    this.size++
  }
  shift(): T | undefined {
    if (this.size === 0) return undefined
    const item = this.items[this.head]
    this.items[this.head] = undefined
    this.head = (this.head + 1) & (this.items.length - 1)
    this.size--
    return item
  }
}

type Result<T> = {ok: true; value: T} | {ok: false; value: undefined}
const RESOLVED = Promise.resolve()

class BareChannel<T> {
  buffer = new Ring<T>()
  senders = new Ring<{value: T; resolve: () => void}>()
  receivers = new Ring<(r: Result<T>) => void>()
  constructor(readonly capacity: number) {}
  send(value: T): Promise<void> {
    const receiver = this.receivers.shift()
    if (receiver !== undefined) {
      receiver({ok: true, value})
      return RESOLVED
    }
    if (this.buffer.size < this.capacity) {
      this.buffer.push(value)
      return RESOLVED
    }
    return new Promise((resolve) => this.senders.push({value, resolve}))
  }
  receive(): Promise<Result<T>> {
    if (this.buffer.size > 0) {
      const value = this.buffer.shift() as T
      const sender = this.senders.shift()
      if (sender !== undefined) {
        this.buffer.push(sender.value)
        sender.resolve()
      }
      return Promise.resolve({ok: true, value})
    }
    const sender = this.senders.shift()
    if (sender !== undefined) {
      sender.resolve()
      return Promise.resolve({ok: true, value: sender.value})
    }
    return new Promise((resolve) => this.receivers.push(resolve))
  }
}

interface AnyChannel {
  send(v: number): Promise<void>
  receive(): Promise<Result<number>>
}

const makers: Record<string, (capacity: number) => AnyChannel> = {
  bare: (capacity) => new BareChannel<number>(capacity),
  instrumented: (capacity) => new Channel<number>('bench', capacity) as AnyChannel,
}

/** Producer and consumer as fast as possible; items per second. */
async function unpaced(make: (capacity: number) => AnyChannel, capacity: number, items: number): Promise<number> {
  const ch = make(capacity)
  const t0 = performance.now()
  const consumer = (async () => {
    let sum = 0
    for (let i = 0; i < items; i++) sum += (await ch.receive()).value ?? 0
    return sum
  })()
  for (let i = 0; i < items; i++) await ch.send(i)
  await consumer
  return items / ((performance.now() - t0) / 1000)
}

/** A producer paced at ratePerSec (batches on a 1 ms timer), a consumer that keeps up. */
async function paced(make: (capacity: number) => AnyChannel, ratePerSec: number, seconds: number): Promise<{cpuMsPerSec: number; achieved: number; lagMs: number}> {
  const ch = make(64)
  let received = 0
  let lagSum = 0
  const stamps: number[] = []
  const consumer = (async () => {
    for (;;) {
      const r = await ch.receive()
      if (r.value === -1) return
      lagSum += performance.now() - stamps[r.value as number]
      received++
    }
  })()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let sent = 0
  while (performance.now() - t0 < seconds * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * ratePerSec)
    while (sent < due) {
      stamps[sent] = performance.now()
      await ch.send(sent++)
    }
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await ch.send(-1)
  await consumer
  const wallSec = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  return {cpuMsPerSec: (cpu.user + cpu.system) / 1000 / wallSec, achieved: received / wallSec, lagMs: lagSum / Math.max(received, 1)}
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

async function benchChannels(): Promise<void> {
  // Headline first: paced at a realistic pipeline rate, bare and instrumented interleaved.
  const rounds = 5
  const pacedRuns: Record<string, Array<{cpuMsPerSec: number; achieved: number; lagMs: number}>> = {bare: [], instrumented: []}
  for (let round = 0; round < rounds; round++) {
    for (const kind of ['bare', 'instrumented']) pacedRuns[kind].push(await paced(makers[kind], 50_000, 1.5))
  }
  const pick = (kind: string, key: 'cpuMsPerSec' | 'achieved' | 'lagUs'): number =>
    median(pacedRuns[kind].map((r) => (key === 'lagUs' ? r.lagMs * 1000 : r[key])))
  const headline = new Table({head: [`paced at 50k items/s, capacity 64 (median of ${rounds} x 1.5 s)`, 'bare', 'instrumented', 'instrumented / bare']})
  for (const [label, key, digits] of [
    ['achieved items/s', 'achieved', 0],
    ['CPU ms per wall second (process, all threads)', 'cpuMsPerSec', 1],
    ['mean send->receive µs', 'lagUs', 1],
  ] as const) {
    const bare = pick('bare', key)
    const inst = pick('instrumented', key)
    headline.push([label, bare.toFixed(digits), inst.toFixed(digits), (inst / bare).toFixed(3)])
  }
  const cpuRatio = pick('instrumented', 'cpuMsPerSec') / pick('bare', 'cpuMsPerSec')
  const extraMs = pick('instrumented', 'cpuMsPerSec') - pick('bare', 'cpuMsPerSec')
  const perItemNs = (extraMs * 1e6) / pick('instrumented', 'achieved')
  console.log('(a) Channel overhead at 50k items/s: the consumer keeps up, so it blocks on every item (a recorded wait each)')
  console.log(headline.toString())
  console.log(
    `    target: instrumented CPU within 3 % of bare -> ratio ${cpuRatio.toFixed(3)} (${((cpuRatio - 1) * 100).toFixed(1)} %): ` +
      `${cpuRatio <= 1.03 ? 'MET' : 'NOT MET'}; extra ${extraMs.toFixed(1)} ms CPU per s = ${(extraMs / 10).toFixed(2)} % of one core, ~${perItemNs.toFixed(0)} ns per item`,
  )
  const table = new Table({head: ['unpaced workload', 'bare', 'instrumented', 'instrumented / bare']})
  for (const capacity of [64, 0]) {
    const runs: Record<string, number[]> = {bare: [], instrumented: []}
    for (let round = 0; round < 5; round++) {
      for (const kind of ['bare', 'instrumented']) runs[kind].push(await unpaced(makers[kind], capacity, 200_000))
    }
    const bare = median(runs.bare)
    const inst = median(runs.instrumented)
    table.push([`unpaced, capacity ${capacity} (items/s, median of 5)`, bare.toFixed(0), inst.toFixed(0), (inst / bare).toFixed(3)])
  }
  console.log(table.toString())
}

// ---- (b) await-heavy micro-benchmark in child processes, one per agent mode. ----
async function leaf(x: number): Promise<number> {
  await undefined
  return x + 1
}
async function middle(x: number): Promise<number> {
  return await leaf(x)
}
async function upper(x: number): Promise<number> {
  const y = await middle(x)
  await undefined
  return y
}
/** One op = 4 async calls (op, upper, middle, leaf) and 5 awaits. */
async function op(x: number): Promise<number> {
  return await upper(x)
}

async function awaitChild(mode: string): Promise<void> {
  if (mode !== 'none') installAgent({loadedBy: 'preload', mode: mode as 'channels' | 'await-times'})
  let x = 0
  for (let i = 0; i < 20_000; i++) x = await op(x)
  const t0 = performance.now()
  let ops = 0
  while (performance.now() - t0 < 800) {
    for (let i = 0; i < 1000; i++) x = await op(x)
    ops += 1000
  }
  process.stdout.write(JSON.stringify({opsPerSec: ops / ((performance.now() - t0) / 1000)}))
}

function benchAgentModes(): void {
  const self = fileURLToPath(import.meta.url)
  const runs: Record<string, number[]> = {none: [], channels: [], 'await-times': []}
  for (let round = 0; round < 3; round++) {
    for (const mode of Object.keys(runs)) {
      const out = execFileSync(process.execPath, [self, `--await-child=${mode}`], {encoding: 'utf8'})
      runs[mode].push((JSON.parse(out) as {opsPerSec: number}).opsPerSec)
    }
  }
  const none = median(runs.none)
  const table = new Table({head: ['agent mode', 'ops/s (median of 3)', 'vs none']})
  for (const mode of Object.keys(runs)) table.push([mode, median(runs[mode]).toFixed(0), (median(runs[mode]) / none).toFixed(3)])
  console.log('(b) Agent modes, await-heavy code (1 op = 4 async calls + 5 awaits)')
  console.log(table.toString())
}

// ---- (c) snapshot cost with many blocked waiters (in-process). ----
/** Longest event-loop block while fn's promise is pending, and its total wall time. */
async function measureBlock(fn: () => Promise<unknown>): Promise<{maxBlockMs: number; totalMs: number}> {
  const histogram = monitorEventLoopDelay({resolution: 1})
  // Turn gaps measured directly too: monitorEventLoopDelay samples on a 1 ms timer.
  let maxGapMs = 0
  let last = performance.now()
  let running = true
  const tick = (): void => {
    const now = performance.now()
    maxGapMs = Math.max(maxGapMs, now - last)
    last = now
    if (running) setImmediate(tick)
  }
  histogram.enable()
  setImmediate(tick)
  const t0 = performance.now()
  last = t0
  await fn()
  const totalMs = performance.now() - t0
  running = false
  await new Promise((resolve) => setImmediate(resolve))
  histogram.disable()
  return {maxBlockMs: Math.max(maxGapMs, histogram.max / 1e6), totalMs}
}

async function benchSnapshots(): Promise<void> {
  const agent = (globalThis as Record<symbol, AgentApi>)[Symbol.for('ferrydiag.agent')]
  const table = new Table({
    head: ['blocked waiters', 'snapshot() ms', 'snapshotJson(): longest block ms (= total)', 'snapshotJsonAsync(): longest block ms', 'snapshotJsonAsync(): total ms', 'JSON MB'],
  })
  async function parked(ch: Channel<number>): Promise<unknown> {
    return ch.receive()
  }
  for (const n of [1_000, 10_000, 100_000]) {
    const channels = Array.from({length: 100}, (_, i) => new Channel<number>(`snap-${n}-${i}`, 0))
    const pending: Array<Promise<unknown>> = []
    for (let i = 0; i < n; i++) pending.push(parked(channels[i % 100]))
    agent.snapshotJson() // first call parses the distinct stacks
    const builds: number[] = []
    const syncBlocks: number[] = []
    const asyncBlocks: number[] = []
    const asyncTotals: number[] = []
    let size = 0
    for (let k = 0; k < 5; k++) {
      const t = performance.now()
      agent.snapshot()
      builds.push(performance.now() - t)
      const sync = await measureBlock(async () => {
        size = agent.snapshotJson().length
      })
      syncBlocks.push(sync.maxBlockMs)
      const sliced = await measureBlock(() => agent.snapshotJsonAsync({sliceMs: 8}))
      asyncBlocks.push(sliced.maxBlockMs)
      asyncTotals.push(sliced.totalMs)
    }
    table.push([n, median(builds).toFixed(1), median(syncBlocks).toFixed(1), median(asyncBlocks).toFixed(1), median(asyncTotals).toFixed(1), (size / 1e6).toFixed(1)])
    for (const ch of channels) ch.close()
    await Promise.all(pending)
  }
  console.log('(c) Snapshot cost, in-process (median of 5; longest block = longest gap between event-loop turns while it ran)')
  console.log(table.toString())
  console.log('    JSON = the wire document (each distinct stack once, tasks refer to it); the CLI streams it piece by piece')
  console.log('    (streamSnapshot / nextSnapshotPiece), so the inspector never serialises it in one turn')
}

const childArg = process.argv.find((a) => a.startsWith('--await-child='))
if (childArg !== undefined) {
  await awaitChild(childArg.slice('--await-child='.length))
} else {
  const t0 = performance.now()
  await benchChannels()
  benchAgentModes()
  await benchSnapshots()
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s on ${process.version}`)
}
