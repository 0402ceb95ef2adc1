// Attach-time probes for in-process queues (fastq, `async` queue/cargo, p-queue), installed right after the
// zongji/mysql2 probes (probes-core.cts) and reusing their package finders (api.find). installQueueProbes is
// ONE self-contained function (its source text is evaluated in the target). It counts puts by wrapping the
// library's put methods (p-queue: its prototype, whose emit() also makes a busy queue known; Node streams:
// Writable/Duplex.prototype.write and end, so a stream becomes known on its next write; fastq and async:
// each instance's own methods, once the CLI hands the instances over via adoptQueues after a
// Runtime.queryObjects, the only way to reach them: the program holds its own binding of the factory),
// derives takes from puts and the
// items still outstanding, and integrates fill and worker busy time on a 25 ms unref'd timer. Everything is
// undone by the 'probes-queues' entry of globalThis[Symbol.for('ferrydiag.undo')].

import type {ProbeLibrary} from '../model/probes.js'

/** The undo-map entry of the queue probes (removed with the 'probes' entry). */
export const QUEUE_PROBES_UNDO_NAME = 'probes-queues'

/** Installs the queue probes beside installed zongji/mysql2 probes; returns the libraries it looked at. */
export async function installQueueProbes(): Promise<ProbeLibrary[]> {
  'use strict'
  const g = globalThis as any
  const api = g[Symbol.for('ferrydiag.probes')]
  if (!api || !api.find || api.queues) return []
  const UNDO_KEY = Symbol.for('ferrydiag.undo')
  const {cachedModules, packageVersion, importedPackages, packageDir, importAgain, nowMs} = api.find
  const perf: {now(): number} = g.performance
  const path = g.process.getBuiltinModule('node:path')
  const libraries: ProbeLibrary[] = []
  const undo: Array<() => void> = []
  const records = new Map<number, any>()
  const recordOf = new WeakMap<object, any>()
  const prototypes: Record<string, object> = {}
  let nextId = 1
  const installedAtMs = nowMs()
  /** Put times kept per queue at most (older ones are dropped: the item's own put time is then unknown). */
  const MAX_PUT_TIMES = 100_000
  /** Sampling period of fill and busy time, ms (a fastq length() walks its list: keep it rare). */
  const TICK_MS = 25

  // ---- what each library's queue looks like -----------------------------------------------------------

  type Figures = {length: number; inFlight: number; running: number; concurrency: number}
  const isProxy = g.process.getBuiltinModule('node:util').types.isProxy
  /** Own data properties that are functions (no getter or proxy trap of the target's runs). */
  const ownFunctions = (o: any, names: string[]): boolean =>
    !isProxy(o) && names.every((n) => typeof Object.getOwnPropertyDescriptor(o, n)?.value === 'function')
  const net = g.process.getBuiltinModule('node:net')
  const fsm = g.process.getBuiltinModule('node:fs')
  const http = g.process.getBuiltinModule('node:http')
  /** Streams that are I/O endpoints, not the program's data path (sockets, files, stdio, HTTP messages). */
  const ioStream = (o: any): boolean =>
    o instanceof net.Socket || o instanceof fsm.WriteStream || o instanceof fsm.ReadStream || o instanceof http.OutgoingMessage ||
    o === g.process.stdout || o === g.process.stderr
  const readableFull = (o: any): boolean => {
    const rs = o._readableState
    return rs !== null && typeof rs === 'object' && typeof rs.length === 'number' && rs.length >= rs.highWaterMark
  }
  const adapters: Record<string, {matches(o: any): boolean; read(o: any): Figures; blocked?(o: any): boolean; held?(o: any): boolean; puts: string[]; waits: string[]}> = {
    // Node streams (Writable side: Writable, Duplex, Transform, PassThrough): chunks buffered and the one in _write.
    stream: {
      matches: (o) => {
        if (isProxy(o)) return false
        const ws = Object.getOwnPropertyDescriptor(o, '_writableState')?.value
        return ws !== null && typeof ws === 'object' && Array.isArray(ws.buffered) && typeof ws.bufferedIndex === 'number' && !ioStream(o)
      },
      read: (o) => {
        const ws = o._writableState
        const inFlight = ws.writing ? 1 : 0
        return {length: ws.buffered.length - ws.bufferedIndex, inFlight, running: inFlight && !readableFull(o) ? 1 : 0, concurrency: 1}
      },
      // A Transform whose readable side is full holds its chunk until downstream reads: back-pressure, not work.
      held: (o) => o._writableState.writing === true && readableFull(o),
      // write() returned false and 'drain' has not come yet: the code writing into it is back-pressured.
      blocked: (o) => o._writableState.needDrain === true && !o._writableState.destroyed,
      // Counted by the Writable/Duplex.prototype wrappers below, not per instance.
      puts: [],
      waits: [],
    },
    fastq: {
      matches: (o) => ownFunctions(o, ['push', 'running', 'getQueue', 'killAndDrain', 'length']),
      read: (o) => {
        const running = o.running()
        return {length: o.length(), inFlight: running, running, concurrency: o.concurrency}
      },
      puts: ['push', 'unshift'],
      waits: ['drained'],
    },
    async: {
      matches: (o) => ownFunctions(o, ['push', 'workersList', 'running', 'length', 'idle']),
      read: (o) => ({length: o.length(), inFlight: o.workersList().length, running: o.running(), concurrency: o.concurrency}),
      puts: ['push', 'unshift', 'pushAsync', 'unshiftAsync'],
      waits: [],
    },
    'p-queue': {
      matches: (o) => prototypes['p-queue'] !== undefined && !isProxy(o) && (prototypes['p-queue'] as any).isPrototypeOf(o),
      read: (o) => ({length: o.size, inFlight: o.pending, running: o.pending, concurrency: o.concurrency}),
      puts: [],
      waits: [],
    },
  }

  // ---- records ------------------------------------------------------------------------------------------

  const recordFor = (kind: string, queue: any, seenAtInstall: boolean): any => {
    let rec = recordOf.get(queue)
    if (rec !== undefined) return rec
    const now = nowMs()
    const f = adapters[kind].read(queue)
    const outstanding = f.length + f.inFlight
    const since = seenAtInstall ? installedAtMs : now
    rec = {
      id: nextId++, kind, ref: new WeakRef(queue), firstSeenAtMs: since, initialOutstanding: outstanding,
      puts: 0, completed: 0, lastPutAtMs: null, lastTakeAtMs: null, lastTakenPutAtMs: null,
      // Put times of outstanding items, oldest first (items there before the probe count from first sight).
      putTimes: new Array(outstanding).fill(since), head: 0,
      figures: f, blocked: false, held: false, heldMs: 0, rank: 0, lastMono: perf.now(), fillItemMs: 0, busyMs: 0, waiters: 0, waitSinceMono: -1, waitMs: 0, wrapped: [] as Array<[string, PropertyDescriptor]>,
    }
    recordOf.set(queue, rec)
    records.set(rec.id, rec)
    return rec
  }
  /** Epoch ms as of the last tick: puts are dated to the 25 ms timer's resolution (a clock read per put costs). */
  let clockMs = installedAtMs
  const notePut = (rec: any, count: number): void => {
    const now = clockMs
    rec.puts += count
    rec.lastPutAtMs = now
    for (let i = 0; i < count && rec.putTimes.length - rec.head < MAX_PUT_TIMES; i++) rec.putTimes.push(now)
  }
  /** Integrates fill and busy time up to now, and turns fewer outstanding items into takes. */
  const advance = (rec: any): void => {
    const queue = rec.ref.deref()
    if (queue === undefined) return
    const mono = perf.now()
    const dt = mono - rec.lastMono
    rec.lastMono = mono
    const prev = rec.figures
    rec.fillItemMs += prev.length * dt
    const share = Number.isFinite(prev.concurrency) && prev.concurrency > 0 ? Math.min(1, prev.running / prev.concurrency) : prev.running > 0 ? 1 : 0
    rec.busyMs += share * dt
    if (rec.blocked) rec.waitMs += dt
    if (rec.held) rec.heldMs += dt
    let f: Figures
    try {
      f = adapters[rec.kind].read(queue)
      rec.blocked = adapters[rec.kind].blocked?.(queue) ?? false
      rec.held = adapters[rec.kind].held?.(queue) ?? false
    } catch {
      return
    }
    rec.figures = f
    const completed = Math.max(rec.completed, rec.puts + rec.initialOutstanding - f.length - f.inFlight)
    if (completed > rec.completed) {
      const taken = completed - rec.completed
      rec.completed = completed
      rec.lastTakeAtMs = nowMs()
      const available = rec.putTimes.length - rec.head
      if (available > 0) {
        rec.head += Math.min(taken, available)
        rec.lastTakenPutAtMs = rec.putTimes[rec.head - 1]
        if (rec.head > 4096 && rec.head * 2 > rec.putTimes.length) {
          rec.putTimes = rec.putTimes.slice(rec.head)
          rec.head = 0
        }
      }
    }
  }
  const tick = (): void => {
    clockMs = nowMs()
    for (const rec of records.values()) advance(rec)
  }
  const timer = setInterval(tick, TICK_MS)
  timer.unref()
  undo.push(() => clearInterval(timer))

  // ---- wrapping put and wait methods --------------------------------------------------------------------

  const countOf = (kind: string, data: unknown): number => (kind === 'async' && Array.isArray(data) ? data.length : 1)
  /** A wrapper that counts a put, then calls the original. */
  const putWrapper = (kind: string, original: (...args: any[]) => any, fixed: any) =>
    function (this: any, data: unknown, ...rest: unknown[]) {
      // Counted only: the 25 ms timer turns fewer outstanding items into takes (reading a queue's length may walk it).
      const rec = fixed ?? recordFor(kind, this, false)
      notePut(rec, countOf(kind, data))
      return original.call(this, data, ...rest)
    }
  /** A wrapper that counts the time a returned promise is pending as the producer's wait on the queue. */
  const waitWrapper = (kind: string, original: (...args: any[]) => any, fixed: any) =>
    function (this: any) {
      const result = original.apply(this, arguments as any)
      if (result && typeof result.then === 'function') {
        const rec = fixed ?? recordFor(kind, this, false)
        if (rec.waiters++ === 0) rec.waitSinceMono = perf.now()
        const done = (): void => {
          if (--rec.waiters === 0) {
            rec.waitMs += perf.now() - rec.waitSinceMono
            rec.waitSinceMono = -1
          }
        }
        result.then(done, done)
      }
      return result
    }
  const wrapOwn = (rec: any, queue: any, names: string[], make: typeof putWrapper): void => {
    for (const name of names) {
      const desc = Object.getOwnPropertyDescriptor(queue, name)
      if (!desc || typeof desc.value !== 'function' || !desc.writable || !desc.configurable) continue
      rec.wrapped.push([name, desc])
      Object.defineProperty(queue, name, {...desc, value: make(rec.kind, desc.value, rec)})
    }
  }
  const unwrapOwn = (rec: any): void => {
    const queue = rec.ref.deref()
    if (queue !== undefined) {
      for (const [name, desc] of rec.wrapped) Object.defineProperty(queue, name, desc)
    }
    rec.wrapped = []
  }

  // ---- finding the libraries ----------------------------------------------------------------------------

  const recognise = (name: string, version: string | null, major: RegExp, where: string, shapeOk: boolean, why: string): boolean => {
    if (!major.test(version ?? '') || !shapeOk) {
      libraries.push({name, version, state: 'unrecognised', where, reason: why})
      return false
    }
    libraries.push({name, version, state: 'patched', where})
    return true
  }
  const plainKinds: string[] = []
  for (const m of cachedModules('/fastq/queue.js')) {
    const version = packageVersion(path.dirname(m.file))
    if (recognise('fastq', version, /^1\./, m.file, typeof m.exports === 'function' && typeof m.exports.promise === 'function', 'not a fastq 1.x module (fastq, fastq.promise)')) {
      if (!plainKinds.includes('fastq')) plainKinds.push('fastq')
    }
  }
  for (const m of [...cachedModules('/async/dist/async.js'), ...cachedModules('/async/queue.js'), ...cachedModules('/async/cargo.js')]) {
    const dir = path.resolve(path.dirname(m.file), m.file.endsWith('/dist/async.js') ? '..' : '.')
    const version = packageVersion(dir)
    if (libraries.some((l) => l.name === 'async' && l.where === dir)) continue
    if (recognise('async', version, /^3\./, dir, typeof (m.exports.queue ?? m.exports.default ?? m.exports) === 'function', 'not an async 3.x module (queue, cargo)')) {
      if (!plainKinds.includes('async')) plainKinds.push('async')
    }
  }
  const imported = await importedPackages()
  const pqueueDir = imported.has('p-queue') ? packageDir('p-queue') : null
  if (pqueueDir !== null) {
    const version = packageVersion(pqueueDir)
    let PQueue: any = null
    try {
      PQueue = (await importAgain(pqueueDir)).default
    } catch {
      // reported as unrecognised below
    }
    const proto = PQueue?.prototype
    const shapeOk = typeof PQueue === 'function' && typeof proto?.add === 'function' && typeof proto?.onSizeLessThan === 'function' &&
      ['size', 'pending', 'concurrency'].every((n) => typeof Object.getOwnPropertyDescriptor(proto, n)?.get === 'function')
    if (recognise('p-queue', version, /^(6|7|8|9)\./, pqueueDir, shapeOk, 'not a p-queue 6-9 class (add, onSizeLessThan, size/pending/concurrency)')) {
      prototypes['p-queue'] = proto
      const saved = ['add', 'onSizeLessThan', 'onEmpty', 'onIdle', 'emit'].map((n) => [n, Object.getOwnPropertyDescriptor(proto, n)] as const)
      for (const [name, desc] of saved) {
        if (name === 'emit') continue
        if (!desc || typeof desc.value !== 'function') continue
        const make = name === 'add' ? putWrapper : waitWrapper
        Object.defineProperty(proto, name, {...desc, value: make('p-queue', desc.value, null)})
      }
      // A queue already there at install emits 'active' / 'next' / 'completed' as its tasks run: it becomes
      // known on its next task, without a heap lookup (an own emit on the class shadows the inherited one).
      const emitDesc = saved.find(([n]) => n === 'emit')![1]
      const emitOriginal = emitDesc?.value ?? proto.emit
      if (typeof emitOriginal === 'function') {
        Object.defineProperty(proto, 'emit', {
          value: function (this: any) {
            if (!recordOf.has(this)) {
              try {
                recordFor('p-queue', this, false)
              } catch {
                // not readable yet (an emit from a constructor): known on a later call
              }
            }
            return emitOriginal.apply(this, arguments as any)
          },
          writable: true, configurable: true, enumerable: false,
        })
      }
      undo.push(() => {
        for (const [name, desc] of saved) {
          if (desc) Object.defineProperty(proto, name, desc)
          else if (name === 'emit') delete proto.emit
        }
      })
    }
  }
  // Node streams: write() and end() on Writable.prototype and on Duplex.prototype (which holds copies of
  // Writable's methods; Transform and PassThrough inherit them) register `this` on its next call, so a
  // data-path stream is known as soon as anything writes into it, without a heap lookup. A stream nobody
  // writes into after install (a producer parked on 'drain' for good) is found only by a lookup.
  const streams = g.process.getBuiltinModule('node:stream')
  /** Objects whose write() ran and that are not data-path streams (sockets, files, ...): looked at once. */
  const notStreams = new WeakSet<object>()
  const streamRecord = (o: any): any => {
    let rec = recordOf.get(o)
    if (rec !== undefined || notStreams.has(o)) return rec
    try {
      if (adapters.stream.matches(o)) rec = recordFor('stream', o, false)
      else notStreams.add(o)
    } catch {
      notStreams.add(o)
    }
    return rec
  }
  for (const proto of [streams.Writable.prototype, streams.Duplex.prototype]) {
    for (const name of ['write', 'end']) {
      const desc = Object.getOwnPropertyDescriptor(proto, name)
      if (!desc || typeof desc.value !== 'function' || !desc.writable || !desc.configurable) continue
      const original = desc.value
      const counts = name === 'write' ? () => true : (chunk: unknown) => chunk !== null && chunk !== undefined && typeof chunk !== 'function'
      Object.defineProperty(proto, name, {
        ...desc,
        value: function (this: any, chunk: unknown) {
          if (this !== null && typeof this === 'object') {
            const rec = streamRecord(this)
            if (rec !== undefined && counts(chunk)) notePut(rec, 1)
          }
          return original.apply(this, arguments as any)
        },
      })
      undo.push(() => Object.defineProperty(proto, name, desc))
    }
  }
  libraries.push({name: 'node:stream', version: g.process.version, state: 'patched', where: 'node:stream'})

  // ---- the API the CLI and the reader use ---------------------------------------------------------------

  /** Instances already counted by an earlier adoptQueues call (one lookup per prototype: they overlap). */
  const counted = new WeakSet<object>()
  /** Takes the instances a Runtime.queryObjects found; keeps those that look like a known queue. */
  const adoptQueues = (found: unknown[]): number => {
    let n = 0
    for (const o of found) {
      if (o === null || typeof o !== 'object') continue
      // Already watched: a p-queue whose add() (wrapped on the prototype at install) ran before this
      // lookup. Found and watched all the same, so it counts.
      if (recordOf.has(o)) {
        if (!counted.has(o)) n++
        counted.add(o)
        continue
      }
      const kind = ['p-queue', ...plainKinds, 'stream'].find((k) => (k !== 'p-queue' || prototypes['p-queue']) && adapters[k].matches(o))
      if (kind === undefined) continue
      counted.add(o)
      const rec = recordFor(kind, o, true)
      wrapOwn(rec, o, adapters[kind].puts, putWrapper)
      wrapOwn(rec, o, adapters[kind].waits, waitWrapper)
      n++
    }
    return n
  }
  /** Pipeline order of streams: a stream piped into another comes before it (rank = hops from a source). */
  const rankStreams = (): void => {
    for (let pass = 0; pass < 8; pass++) {
      let changed = false
      for (const rec of records.values()) {
        const pipes = rec.kind === 'stream' ? rec.ref.deref()?._readableState?.pipes : undefined
        if (!Array.isArray(pipes)) continue
        for (const dest of pipes) {
          const next = recordOf.get(dest)
          if (next !== undefined && next.rank < rec.rank + 1) {
            next.rank = rec.rank + 1
            changed = true
          }
        }
      }
      if (!changed) break
    }
  }
  const readQueues = (): string => {
    tick()
    rankStreams()
    const nowMono = perf.now()
    const out = []
    for (const rec of records.values()) {
      const f = rec.figures
      out.push({
        id: rec.id,
        library: rec.kind,
        alive: rec.ref.deref() !== undefined,
        length: f.length,
        inFlight: f.inFlight,
        running: f.running,
        concurrency: Number.isFinite(f.concurrency) ? f.concurrency : null,
        puts: rec.puts,
        takes: rec.completed,
        lastPutAtMs: rec.lastPutAtMs,
        lastTakeAtMs: rec.lastTakeAtMs,
        lastTakenPutAtMs: rec.lastTakenPutAtMs,
        fillItemMs: rec.fillItemMs,
        busyMs: rec.busyMs,
        waiters: rec.waiters + (rec.blocked ? 1 : 0),
        waitMs: rec.waitMs + (rec.waitSinceMono >= 0 ? nowMono - rec.waitSinceMono : 0),
        rank: rec.rank,
        heldMs: rec.heldMs,
        firstSeenAtMs: rec.firstSeenAtMs,
      })
    }
    return JSON.stringify(out)
  }
  let removed = false
  const uninstall = (): void => {
    if (removed) return
    removed = true
    for (const rec of records.values()) unwrapOwn(rec)
    for (let i = undo.length - 1; i >= 0; i--) {
      try {
        undo[i]()
      } catch {
        // keep restoring the others
      }
    }
    records.clear()
    delete api.queues
    const map = g[UNDO_KEY]
    if (map instanceof Map && map.get('probes-queues') === uninstall) map.delete('probes-queues')
  }
  /** The live queues, named as code names them: an async cargo (payload other than 1) is 'cargo'. */
  const heldObjects = (): Array<{kind: string; object: object}> => {
    const held: Array<{kind: string; object: object}> = []
    for (const rec of records.values()) {
      const object = rec.ref.deref()
      if (object === undefined) continue
      const payload = rec.kind === 'async' ? Object.getOwnPropertyDescriptor(object, 'payload')?.value : undefined
      held.push({kind: rec.kind === 'stream' ? 'stream' : typeof payload === 'number' && payload !== 1 ? 'cargo' : 'queue', object})
    }
    return held
  }
  /** What the CLI needs to decide on a heap lookup: the plain-object queue libraries loaded, and what is watched. */
  const watching = (): {plainKinds: string[]; pqueue: boolean; byKind: Record<string, number>} => {
    const byKind: Record<string, number> = {}
    for (const rec of records.values()) byKind[rec.kind] = (byKind[rec.kind] ?? 0) + 1
    return {plainKinds, pqueue: prototypes['p-queue'] !== undefined, byKind}
  }
  api.queues = {adoptQueues, readQueues, uninstall, prototypes, watching, heldObjects}
  g[UNDO_KEY] ??= new Map()
  g[UNDO_KEY].set('probes-queues', uninstall)
  return libraries
}
