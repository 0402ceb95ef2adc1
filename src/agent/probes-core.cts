// Probes ferrydiag installs at attach time in a pipeline that never imported it: zongji streamers (binlog
// position, events and rows, event timestamps, paused connection, errors) and mysql2 writes (duration,
// rows, BEGIN..COMMIT on one connection as one batch, errors). installProbes is ONE self-contained
// function (no imports, no module-scope references): its source text is evaluated in the target over the
// inspector. It patches prototypes (existing instances are covered), keeps every original for exact
// restoration, and registers that restoration under 'probes' in globalThis[Symbol.for('ferrydiag.undo')].

import type {ProbeInstallStatus, ProbeReading} from '../model/probes.js'

/** The global key of the installed probes (the marker that prevents a second install). */
export const PROBES_GLOBAL_KEY = 'ferrydiag.probes'
/** The global key of the undo map shared with the watchdog (issue 10): name -> undo function. */
export const UNDO_GLOBAL_KEY = 'ferrydiag.undo'
/** This probe code's version (written into readings and status). */
export const PROBES_VERSION = 1

/** What installProbes leaves in globalThis[Symbol.for('ferrydiag.probes')]. */
export interface ProbesApi {
  version: number
  installedAtMs: number
  status: ProbeInstallStatus
  /** Current figures as a JSON string (ProbeReading). */
  read(): string
  /** Registers instances found by Runtime.queryObjects (zongji objects not yet seen emitting). */
  adopt(kind: 'zongji', instances: unknown[]): number
  /** Restores every patched method exactly and drops every reference; idempotent. */
  uninstall(): void
  /** Prototypes whose instances the CLI may look up with Runtime.queryObjects, by kind. */
  prototypes: Record<string, object>
  /** Package finders shared with the queue probes (src/agent/queue-probes-core.cts). */
  find: Record<string, unknown>
  /** The live objects the probes watch, named as the pipeline's code would ('zongji', 'cargo', 'queue', 'stream'): where tune-batch looks for the batch-size knob. */
  heldObjects(): Array<{kind: string; object: object}>
  /** Set by the queue probes once installed. */
  queues?: {heldObjects(): Array<{kind: string; object: object}>} & Record<string, unknown>
}

/**
 * Installs the probes in the calling process, unless a probe marker is already there (then returns the
 * present status with installed false). Async: finding ESM packages reads the entry's import graph.
 */
export async function installProbes(): Promise<ProbeInstallStatus> {
  'use strict'
  const g = globalThis as any
  const KEY = Symbol.for('ferrydiag.probes')
  const UNDO_KEY = Symbol.for('ferrydiag.undo')
  const VERSION = 1
  const RECENT = 512
  const RESERVOIR = 256
  const existing = g[KEY]
  if (existing !== undefined && existing !== null) {
    return {...existing.status, installed: false, alreadyPresent: true}
  }
  // Claim the marker before the first await, so two concurrent installs cannot both proceed.
  const placeholder: any = {version: VERSION, installing: true, status: {installed: false, alreadyPresent: true, libraries: [], installMs: 0, installedAtMs: null}}
  g[KEY] = placeholder
  const proc = g.process
  const perf: {now(): number; timeOrigin: number} = g.performance
  const startedMono = perf.now()
  // When the probes started recording; set once every patch is in (below).
  let installedAtMs = 0
  let installedMono = 0
  const getBuiltin = (name: string): any => proc.getBuiltinModule(name)
  const Module = getBuiltin('node:module')
  const fs = getBuiltin('node:fs')
  const path = getBuiltin('node:path')
  const url = getBuiltin('node:url')
  const vm = getBuiltin('node:vm')
  const libraries: ProbeInstallStatus['libraries'] = []
  const undo: Array<() => void> = []
  const nowMs = (): number => perf.timeOrigin + perf.now()

  // ---- finding packages ----------------------------------------------------------------------------

  /** CommonJS modules already loaded, whose path ends with the given tail (every copy). */
  const cachedModules = (tail: string): Array<{file: string; exports: any}> => {
    const out: Array<{file: string; exports: any}> = []
    const cache = Module._cache ?? {}
    for (const file of Object.keys(cache)) {
      if (file.split(path.sep).join('/').endsWith(tail)) out.push({file, exports: cache[file].exports})
    }
    return out
  }
  const packageVersion = (dir: string): string | null => {
    try {
      return String(JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version)
    } catch {
      return null
    }
  }
  /** Bare package names imported anywhere in the entry's static ESM/CJS graph (relative files followed). */
  const importedPackages = async (): Promise<Set<string>> => {
    const found = new Set<string>()
    const entry = proc.argv[1] ? path.resolve(proc.argv[1]) : null
    if (!entry) return found
    let queue: string[] = [entry]
    const seen = new Set<string>()
    const pattern = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g
    const scan = (file: string, text: string, next: string[]): void => {
      for (const match of text.matchAll(pattern)) {
        const spec = match[1]
        if (spec.startsWith('.') || spec.startsWith('/')) {
          const base = spec.startsWith('/') ? spec : path.resolve(path.dirname(file), spec)
          for (const candidate of [base, `${base}.js`, `${base}.mjs`, `${base}.cjs`, path.join(base, 'index.js')]) {
            try {
              if (fs.statSync(candidate).isFile()) {
                next.push(candidate)
                break
              }
            } catch {
              // not this one
            }
          }
        } else if (!spec.startsWith('node:')) {
          found.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0])
        }
      }
    }
    // The files of one level are read in parallel (on a busy target each await costs a turn of its event
    // loop); each is scanned as its read completes, so the synchronous part stays one file's worth.
    while (queue.length > 0 && seen.size < 200) {
      const batch = [...new Set(queue.filter((f) => !seen.has(f)))].slice(0, 200 - seen.size)
      for (const f of batch) seen.add(f)
      const next: string[] = []
      await Promise.all(batch.map(async (file) => {
        const text = await fs.promises.readFile(file, 'utf8').catch(() => null)
        if (text !== null) scan(file, text, next)
      }))
      queue = next
    }
    return found
  }
  /** The package directory as the entry would resolve it (walking up node_modules folders). */
  const packageDir = (name: string): string | null => {
    let dir = proc.argv[1] ? path.dirname(path.resolve(proc.argv[1])) : proc.cwd()
    for (;;) {
      const candidate = path.join(dir, 'node_modules', name)
      if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate
      const parent = path.dirname(dir)
      if (parent === dir) return null
      dir = parent
    }
  }
  /** The ESM namespace of an already imported package, reached again through the main loader (same URL, same instance). */
  const importAgain = async (dir: string): Promise<any> => {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
    const exp = pkg.exports?.['.'] ?? pkg.exports
    const rel = typeof exp === 'string' ? exp : (exp?.import ?? exp?.default ?? pkg.main ?? 'index.js')
    const target = url.pathToFileURL(path.join(dir, typeof rel === 'string' ? rel : 'index.js')).href
    const script = new vm.Script(`import(${JSON.stringify(target)})`, {importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER})
    return script.runInThisContext()
  }

  // ---- records ---------------------------------------------------------------------------------------

  type Sample = {atMs: number; events: number; ms: number; ok: boolean; statements: number}
  const makeSamples = () => ({recent: [] as Sample[], next: 0, reservoir: [] as Sample[], total: 0, failed: 0})
  const addSample = (store: ReturnType<typeof makeSamples>, sample: Sample): void => {
    if (store.recent.length < RECENT) store.recent.push(sample)
    else store.recent[store.next] = sample
    store.next = (store.next + 1) % RECENT
    store.total++
    if (!sample.ok) store.failed++
    if (store.reservoir.length < RESERVOIR) store.reservoir.push(sample)
    else {
      const j = Math.floor(Math.random() * store.total)
      if (j < RESERVOIR) store.reservoir[j] = sample
    }
  }

  let nextId = 1
  const streamers = new Map<number, any>()
  const streamerOf = new WeakMap<object, any>()
  const writers = new Map<string, any>()
  /** Per mysql2 connection: open transaction and paused time. */
  const connState = new WeakMap<object, any>()

  const streamerRecord = (instance: any, seenSinceInstall = false): any => {
    let rec = streamerOf.get(instance)
    if (rec === undefined) {
      rec = {
        id: nextId++, ref: new WeakRef(instance), library: 'zongji', events: 0, rows: 0, lastEventTimestampMs: null,
        // An instance found later (queryObjects) emitted nothing since the install: watched since then.
        lastEventAtMs: null, errors: 0, lastError: null, firstSeenAtMs: seenSinceInstall ? installedAtMs : nowMs(),
      }
      // A binlog connection already paused at install: back-pressured since then at least.
      const conn = instance?.connection
      if (conn && conn._paused === true) {
        const st = stateOf(conn)
        if (st.pausedSinceMono < 0) st.pausedSinceMono = seenSinceInstall ? installedMono : perf.now()
      }
      streamerOf.set(instance, rec)
      streamers.set(rec.id, rec)
    }
    return rec
  }
  const stateOf = (conn: any): any => {
    let s = connState.get(conn)
    if (s === undefined) {
      s = {pausedSinceMono: -1, pausedMs: 0, tx: null}
      connState.set(conn, s)
    }
    return s
  }

  // ---- zongji ------------------------------------------------------------------------------------------

  const patchZongji = (ZongJi: any, where: string, version: string | null, library: string): void => {
    const proto = ZongJi?.prototype
    const recognised =
      typeof ZongJi === 'function' && proto && typeof proto.start === 'function' && typeof proto.stop === 'function' &&
      typeof proto.emit === 'function' && /^0\.(5|6|7|8|9)\./.test(version ?? '')
    if (!recognised) {
      libraries.push({name: library, version, state: 'unrecognised', where, reason: 'not a zongji 0.5-0.9 class (start/stop/emit)'})
      return
    }
    if (proto.__ferrydiagPatched) {
      libraries.push({name: library, version, state: 'patched', where, reason: 'same class as another copy'})
      return
    }
    const own = Object.getOwnPropertyDescriptor(proto, 'emit')
    const original = proto.emit
    const wrapped = function (this: any, name: string, arg: any) {
      if (name === 'binlog' && arg) {
        const rec = streamerRecord(this)
        rec.events++
        if (Array.isArray(arg.rows)) rec.rows += arg.rows.length
        if (typeof arg.timestamp === 'number' && arg.timestamp > 0) rec.lastEventTimestampMs = arg.timestamp
        rec.lastEventAtMs = nowMs()
      } else if (name === 'error') {
        const rec = streamerRecord(this)
        rec.errors++
        rec.lastError = String(arg?.message ?? arg).split('\n')[0]
      }
      return original.apply(this, arguments as any)
    }
    Object.defineProperty(proto, 'emit', {value: wrapped, writable: true, configurable: true, enumerable: false})
    Object.defineProperty(proto, '__ferrydiagPatched', {value: true, configurable: true})
    undo.push(() => {
      if (own) Object.defineProperty(proto, 'emit', own)
      else delete proto.emit
      delete proto.__ferrydiagPatched
    })
    prototypes.zongji = proto
    libraries.push({name: library, version, state: 'patched', where})
  }

  // ---- mysql2 ------------------------------------------------------------------------------------------

  const WRITE = /^\s*(?:\/\*.*?\*\/\s*)*(insert|replace|update|delete)\b/i
  const BEGIN = /^\s*(?:start\s+transaction|begin)\b/i
  const COMMIT = /^\s*commit\b/i
  const ROLLBACK = /^\s*rollback\b/i
  /** INSERT/REPLACE ... SET col = v, ...: one row, whatever affectedRows says (ON DUPLICATE KEY UPDATE reports 2 for an update). */
  const SINGLE_ROW_SET = /^\s*(?:\/\*.*?\*\/\s*)*(?:insert|replace)\s+(?:(?:low_priority|delayed|high_priority|ignore)\s+)*(?:into\s+)?(?:`[^`]*`|[\w$]+)(?:\s*\.\s*(?:`[^`]*`|[\w$]+))?\s+set\b/i
  /** Row tuples of a multi-row INSERT/REPLACE ... VALUES (...), (...) [ON DUPLICATE KEY UPDATE ...]; 0 when not that shape. */
  const countTuples = (sql: string): number => {
    const m = /\bvalues?\s*\(/i.exec(sql)
    if (!m) return 0
    let depth = 0
    let tuples = 0
    let quote: string | null = null
    for (let i = m.index + m[0].length - 1; i < sql.length; i++) {
      const c = sql[i]
      if (quote) {
        if (c === '\\') i++
        else if (c === quote) quote = null
        continue
      }
      if (c === "'" || c === '"' || c === '`') quote = c
      else if (c === '(') {
        if (depth === 0) tuples++
        depth++
      } else if (c === ')') depth--
      else if (depth === 0 && c !== ',' && !/\s/.test(c)) break
    }
    return tuples
  }
  const writerFor = (conn: any): any => {
    const cfg = conn?.config ?? {}
    const key = `${cfg.host ?? 'localhost'}:${cfg.port ?? 3306}/${cfg.database ?? ''}`
    let w = writers.get(key)
    if (w === undefined) {
      w = {
        id: nextId++, key, writes: 0, rows: 0, statements: 0, busyDoneMs: 0, inFlight: 0, busySinceMono: -1, oldestStartMono: [] as number[],
        errors: 0, lastError: null, lastWriteEndAtMs: null, samples: makeSamples(), firstSeenAtMs: nowMs(), transactions: 0,
      }
      writers.set(key, w)
    }
    return w
  }
  const begin = (w: any, startMono: number): void => {
    if (w.inFlight === 0) w.busySinceMono = startMono
    w.inFlight++
    w.oldestStartMono.push(startMono)
  }
  const end = (w: any, startMono: number, endMono: number): void => {
    w.inFlight--
    const i = w.oldestStartMono.indexOf(startMono)
    if (i >= 0) w.oldestStartMono.splice(i, 1)
    if (w.inFlight === 0) {
      w.busyDoneMs += endMono - w.busySinceMono
      w.busySinceMono = -1
    }
  }

  const patchMysql2 = (base: {file: string; exports: any}, version: string | null): void => {
    const BaseConnection = base.exports
    const proto = BaseConnection?.prototype
    const recognised =
      typeof BaseConnection === 'function' && proto && typeof proto.addCommand === 'function' &&
      typeof proto.pause === 'function' && typeof proto.resume === 'function' && /^3\./.test(version ?? '')
    if (!recognised) {
      libraries.push({name: 'mysql2', version, state: 'unrecognised', where: base.file, reason: 'not a mysql2 3.x BaseConnection (addCommand/pause/resume)'})
      return
    }
    if (proto.__ferrydiagPatched) return
    const saved = ['addCommand', 'pause', 'resume'].map((name) => [name, Object.getOwnPropertyDescriptor(proto, name)] as const)
    const addCommand = proto.addCommand
    const pause = proto.pause
    const resume = proto.resume
    proto.addCommand = function (this: any, cmd: any) {
      const sql = typeof cmd?.sql === 'string' ? cmd.sql : null
      if (sql !== null && typeof cmd.once === 'function') {
        const isWrite = WRITE.test(sql)
        const isBegin = !isWrite && BEGIN.test(sql)
        const isCommit = !isWrite && !isBegin && COMMIT.test(sql)
        const isRollback = !isWrite && !isBegin && !isCommit && ROLLBACK.test(sql)
        if (isWrite || isBegin || isCommit || isRollback) {
          const conn = this
          const w = writerFor(conn)
          const st = stateOf(conn)
          const startMono = perf.now()
          const tuples = isWrite ? (SINGLE_ROW_SET.test(sql) ? 1 : countTuples(sql)) : 0
          let failed = false
          let affected = 0
          // SERVER_STATUS_IN_TRANS on a write's OK packet: it ran inside a transaction begun before the
          // probes were installed (no BEGIN seen); it is part of a batch whose start is unknown.
          let inUnseenTransaction = false
          if (isBegin) st.tx = {startMono, rows: 0, writes: 0, singleRowWrites: 0, failed: false, atMs: nowMs()}
          begin(w, startMono)
          cmd.once('error', () => {
            failed = true
          })
          if (typeof cmd.on === 'function') {
            cmd.on('result', (rs: any) => {
              if (rs && typeof rs.affectedRows === 'number') affected += rs.affectedRows
              if (rs && typeof rs.serverStatus === 'number' && (rs.serverStatus & 1) !== 0 && !st.tx) inUnseenTransaction = true
            })
          }
          // The callback form reports errors to onResult, not as 'error': wrap it when present.
          if (typeof cmd.onResult === 'function') {
            const onResult = cmd.onResult
            cmd.onResult = function (this: any, err: unknown) {
              if (err) failed = true
              return onResult.apply(this, arguments as any)
            }
          }
          cmd.once('end', () => {
            const endMono = perf.now()
            end(w, startMono, endMono)
            w.statements++
            if (failed) {
              w.errors++
              w.lastError = `${sql.slice(0, 60)} failed`
            }
            if (isWrite) {
              const rows = tuples > 0 ? tuples : affected
              w.writes++
              if (!failed) w.rows += rows
              w.lastWriteEndAtMs = nowMs()
              if (st.tx) {
                st.tx.rows += rows
                st.tx.writes++
                // One row by its statement's shape, or at most one affected: a row-by-row applier's change,
                // which costs its statement even when it matched nothing (a DELETE of a row never copied).
                if (tuples === 1 || (tuples === 0 && affected <= 1)) st.tx.singleRowWrites++
                if (failed) st.tx.failed = true
              } else if (inUnseenTransaction) {
                // Not a whole batch: counted in writes and rows, not as a (B, T) sample.
              } else {
                addSample(w.samples, {atMs: nowMs(), events: rows, ms: endMono - startMono, ok: !failed, statements: 1})
              }
            } else if ((isCommit || isRollback) && st.tx) {
              const tx = st.tx
              st.tx = null
              w.transactions++
              if (tx.writes > 0) {
                // Every statement a single-row change: the batch is its statements (row-by-row writer).
                const events = tx.singleRowWrites === tx.writes ? tx.writes : tx.rows
                addSample(w.samples, {atMs: nowMs(), events, ms: endMono - tx.startMono, ok: !failed && !tx.failed && isCommit, statements: tx.writes})
              }
            }
          })
        }
      }
      return addCommand.apply(this, arguments as any)
    }
    proto.pause = function (this: any) {
      const st = stateOf(this)
      if (st.pausedSinceMono < 0) st.pausedSinceMono = perf.now()
      return pause.apply(this, arguments as any)
    }
    proto.resume = function (this: any) {
      const st = stateOf(this)
      if (st.pausedSinceMono >= 0) {
        st.pausedMs += perf.now() - st.pausedSinceMono
        st.pausedSinceMono = -1
      }
      return resume.apply(this, arguments as any)
    }
    Object.defineProperty(proto, '__ferrydiagPatched', {value: true, configurable: true})
    undo.push(() => {
      for (const [name, desc] of saved) {
        if (desc) Object.defineProperty(proto, name, desc)
        else delete proto[name]
      }
      delete proto.__ferrydiagPatched
    })
    libraries.push({name: 'mysql2', version, state: 'patched', where: base.file})
  }

  // ---- install ---------------------------------------------------------------------------------------

  const prototypes: Record<string, object> = {}
  try {
    for (const base of cachedModules('/mysql2/lib/base/connection.js')) {
      patchMysql2(base, packageVersion(path.resolve(path.dirname(base.file), '../..')))
    }
    if (!libraries.some((l) => l.name === 'mysql2')) {
      // An older mysql2 (no lib/base/): present but not a shape these probes know.
      for (const old of cachedModules('/mysql2/lib/connection.js')) {
        const version = packageVersion(path.resolve(path.dirname(old.file), '..'))
        libraries.push({name: 'mysql2', version, state: 'unrecognised', where: old.file, reason: 'mysql2 without lib/base/connection.js (older than 3.x)'})
      }
    }
    // zongji (CommonJS) and @vlasky/zongji (ESM, reached again through the main loader).
    for (const cjs of cachedModules('/zongji/index.js')) {
      const dir = path.dirname(cjs.file)
      const ZongJi = typeof cjs.exports === 'function' ? cjs.exports : cjs.exports?.default
      patchZongji(ZongJi, cjs.file, packageVersion(dir), /@vlasky/.test(cjs.file) ? '@vlasky/zongji' : 'zongji')
    }
    const imported = await importedPackages()
    for (const name of ['@vlasky/zongji', 'zongji']) {
      if (!imported.has(name) || libraries.some((l) => l.name === name)) continue
      const dir = packageDir(name)
      if (dir === null) continue
      const version = packageVersion(dir)
      try {
        const ns = await importAgain(dir)
        patchZongji(ns?.default ?? ns, dir, version, name)
      } catch (error) {
        libraries.push({name, version, state: 'unrecognised', where: dir, reason: `could not reach the loaded module: ${String((error as Error)?.message ?? error).split('\n')[0]}`})
      }
    }
  } catch (error) {
    for (let i = undo.length - 1; i >= 0; i--) undo[i]()
    delete g[KEY]
    throw error
  }

  let removed = false
  const uninstall = (): void => {
    if (removed) return
    removed = true
    for (let i = undo.length - 1; i >= 0; i--) {
      try {
        undo[i]()
      } catch {
        // keep restoring the others
      }
    }
    undo.length = 0
    streamers.clear()
    writers.clear()
    if (g[KEY] === api) delete g[KEY]
    const map = g[UNDO_KEY]
    if (map instanceof Map && map.get('probes') === uninstall) map.delete('probes')
  }

  const read = (): string => {
    const nowMono = perf.now()
    const reading: ProbeReading = {
      version: VERSION,
      takenAtMs: nowMs(),
      monotonicMs: nowMono,
      installedAtMs: api.installedAtMs,
      pid: proc.pid,
      nodeVersion: proc.version,
      title: proc.title,
      argv: proc.argv.slice(),
      streamers: [],
      writers: [],
    }
    for (const rec of streamers.values()) {
      const inst = rec.ref.deref()
      const conn = inst?.connection
      const st = conn ? connState.get(conn) : undefined
      const pausedNow = conn ? conn._paused === true : false
      reading.streamers.push({
        id: rec.id,
        library: rec.library,
        alive: inst !== undefined,
        file: typeof inst?.options?.filename === 'string' ? inst.options.filename : null,
        position: typeof inst?.options?.position === 'number' ? inst.options.position : null,
        events: rec.events,
        rows: rec.rows,
        lastEventTimestampMs: rec.lastEventTimestampMs,
        lastEventAtMs: rec.lastEventAtMs,
        paused: pausedNow,
        pausedMs: (st?.pausedMs ?? 0) + (st && st.pausedSinceMono >= 0 ? nowMono - st.pausedSinceMono : 0),
        errors: rec.errors,
        lastError: rec.lastError,
        firstSeenAtMs: rec.firstSeenAtMs,
      })
    }
    for (const w of writers.values()) {
      const oldest = w.oldestStartMono.length > 0 ? Math.min(...w.oldestStartMono) : -1
      reading.writers.push({
        id: w.id,
        library: 'mysql2',
        endpoint: w.key,
        writes: w.writes,
        rows: w.rows,
        statements: w.statements,
        transactions: w.transactions,
        busyMs: w.busyDoneMs + (w.inFlight > 0 ? nowMono - w.busySinceMono : 0),
        inFlight: w.inFlight,
        oldestInFlightMs: oldest >= 0 ? nowMono - oldest : null,
        errors: w.errors,
        lastError: w.lastError,
        lastWriteEndAtMs: w.lastWriteEndAtMs,
        firstSeenAtMs: w.firstSeenAtMs,
        samples: {recent: w.samples.recent.slice(), reservoir: w.samples.reservoir.slice(), totalCount: w.samples.total, totalFailed: w.samples.failed},
      })
    }
    return JSON.stringify(reading)
  }

  const adopt = (kind: string, instances: unknown[]): number => {
    if (kind !== 'zongji' || !Array.isArray(instances)) return 0
    let n = 0
    for (const inst of instances) {
      if (inst && typeof inst === 'object' && !streamerOf.has(inst)) {
        streamerRecord(inst, true)
        n++
      }
    }
    return n
  }

  const status: ProbeInstallStatus = {
    installed: true,
    alreadyPresent: false,
    libraries,
    installMs: perf.now() - startedMono,
    installedAtMs: nowMs(),
  }
  installedAtMs = status.installedAtMs!
  installedMono = perf.now()
  // The package finders, for the queue probes installed next (queue-probes-core.cts).
  const find = {cachedModules, packageVersion, importedPackages, packageDir, importAgain, nowMs}
  const heldObjects = (): Array<{kind: string; object: object}> => {
    const held: Array<{kind: string; object: object}> = []
    for (const rec of streamers.values()) {
      const object = rec.ref.deref()
      if (object !== undefined) held.push({kind: 'zongji', object})
    }
    return [...held, ...(api.queues?.heldObjects() ?? [])]
  }
  const api: ProbesApi = {version: VERSION, installedAtMs: status.installedAtMs!, status, read, adopt, uninstall, prototypes, find, heldObjects}
  g[KEY] = api
  void placeholder
  g[UNDO_KEY] ??= new Map()
  g[UNDO_KEY].set('probes', uninstall)
  return status
}

// ---- binlog position tap (binlog audit's live route) ---------------------------------------------------
// Kept apart from installProbes: it is installed after it, over the zongji prototype the probes found, and
// removed on its own (undo entry 'binlog-positions'). installPositionTap is self-contained like
// installProbes (its source text is evaluated in the target).

/** The global key of the position tap. */
export const POSITION_TAP_GLOBAL_KEY = 'ferrydiag.binlog-positions'

/** How installPositionTap answers. */
export interface PositionTapStatus {
  installed: boolean
  /** Why not: 'no-probes' (installProbes found no zongji class), 'already-present'. */
  reason: string | null
  capacity: number
}

/** One zongji instance the tap saw hand on events: its source endpoint and its event filters. */
export interface PositionTapStreamer {
  id: number
  host: string | null
  port: number | null
  /** zongji's start() filters as given (includeEvents/excludeEvents: event names; include/excludeSchema: {db: true | [tables]}). */
  filters: {includeEvents?: string[]; excludeEvents?: string[]; includeSchema?: Record<string, true | string[]>; excludeSchema?: Record<string, true | string[]>}
}

/**
 * What one drain answers (JSON): the records since the previous drain, oldest first, as flat arrays
 * (streamer id, index into files, end position, GTID or null), at most `max` of them (more: true when
 * some remain). Records are one per transaction per streamer (the first event handed on in it), and one
 * per event outside a GTID group. missed: records the full ring could not keep since the last drain.
 */
export interface PositionTapDrain {
  files: string[]
  streamer: number[]
  file: number[]
  pos: number[]
  gtid: Array<string | null>
  more: boolean
  /** Events handed to the pipeline's listeners since install (every one, recorded or folded). */
  eventsSeen: number
  missed: {count: number; first: {file: string; pos: number}; last: {file: string; pos: number}} | null
  streamers: PositionTapStreamer[]
}

/**
 * Records, for every binlog event a zongji instance hands to the pipeline's 'binlog' listeners, its file
 * and end position (and GTID) in a bounded ring the CLI drains. The file is zongji's options.filename at
 * emit time (the file the event was read from; Rotate events, whose header position is the old file's,
 * are not recorded); events with end position 0 (artificial) are not recorded unless they carry a GTID.
 */
export function installPositionTap(capacity: number): PositionTapStatus {
  'use strict'
  const g = globalThis as any
  const KEY = Symbol.for('ferrydiag.binlog-positions')
  const PROBES_KEY = Symbol.for('ferrydiag.probes')
  const UNDO_KEY = Symbol.for('ferrydiag.undo')
  if (g[KEY] !== undefined && g[KEY] !== null) return {installed: false, reason: 'already-present', capacity}
  const proto = g[PROBES_KEY]?.prototypes?.zongji
  if (proto === undefined || proto === null || typeof proto.emit !== 'function') return {installed: false, reason: 'no-probes', capacity}

  const ringStreamer = new Int32Array(capacity)
  const ringFile = new Int32Array(capacity)
  const ringPos = new Float64Array(capacity)
  const ringGtid: Array<string | null> = new Array(capacity).fill(null)
  let head = 0 // next record to drain
  let count = 0
  let eventsSeen = 0
  const files: string[] = []
  const fileIndex = new Map<string, number>()
  let missed: PositionTapDrain['missed'] = null
  let nextId = 1
  const ids = new WeakMap<object, {id: number; lastGtid: string | null; lastFile: number}>()
  const streamers = new Map<number, PositionTapStreamer>()

  const describe = (instance: any, id: number): PositionTapStreamer => {
    const cfg = instance?.ctrlConnection?.config ?? instance?.connection?.config ?? instance?._dsn ?? {}
    const f = instance?.filters ?? {}
    const plain = (v: unknown): any => (v === undefined || v === null ? undefined : JSON.parse(JSON.stringify(v)))
    return {
      id,
      host: typeof cfg.host === 'string' ? cfg.host : null,
      port: typeof cfg.port === 'number' ? cfg.port : null,
      filters: {includeEvents: plain(f.includeEvents), excludeEvents: plain(f.excludeEvents), includeSchema: plain(f.includeSchema), excludeSchema: plain(f.excludeSchema)},
    }
  }
  const record = (instance: any, event: any): void => {
    eventsSeen++
    const name = typeof event.getEventName === 'function' ? event.getEventName() : ''
    if (name === 'rotate') return
    const file = instance?.options?.filename
    const pos = typeof event.nextPosition === 'number' ? event.nextPosition : 0
    const gtid = typeof event.gtid === 'string' ? event.gtid : null
    if (typeof file !== 'string' || (pos <= 0 && gtid === null)) return
    let s = ids.get(instance)
    if (s === undefined) {
      s = {id: nextId++, lastGtid: null, lastFile: -1}
      ids.set(instance, s)
      streamers.set(s.id, describe(instance, s.id))
    }
    let fi = fileIndex.get(file)
    if (fi === undefined) {
      fi = files.length
      files.push(file)
      fileIndex.set(file, fi)
    }
    // One record per transaction is enough to prove it was handed on; events outside a group all count.
    if (gtid !== null && gtid === s.lastGtid && fi === s.lastFile) return
    s.lastGtid = gtid
    s.lastFile = fi
    if (count === capacity) {
      // Full: keep what the CLI has not read yet, count what is missed (the CLI judges after it).
      if (missed === null) missed = {count: 0, first: {file, pos}, last: {file, pos}}
      missed.count++
      missed.last = {file, pos}
      return
    }
    const at = (head + count) % capacity
    ringStreamer[at] = s.id
    ringFile[at] = fi
    ringPos[at] = pos
    ringGtid[at] = gtid
    count++
  }

  const own = Object.getOwnPropertyDescriptor(proto, 'emit')
  const previous = proto.emit
  const wrapped = function (this: any, name: string, arg: any) {
    if (name === 'binlog' && arg) {
      try {
        record(this, arg)
      } catch {
        // never disturb the pipeline
      }
    }
    return previous.apply(this, arguments as any)
  }
  Object.defineProperty(proto, 'emit', {value: wrapped, writable: true, configurable: true, enumerable: false})

  const drain = (max: number): string => {
    const n = Math.min(count, max)
    const out: PositionTapDrain = {files: files.slice(), streamer: [], file: [], pos: [], gtid: [], more: count > n, eventsSeen, missed, streamers: [...streamers.values()]}
    for (let i = 0; i < n; i++) {
      const at = (head + i) % capacity
      out.streamer.push(ringStreamer[at]!)
      out.file.push(ringFile[at]!)
      out.pos.push(ringPos[at]!)
      out.gtid.push(ringGtid[at]!)
      ringGtid[at] = null
    }
    head = (head + n) % capacity
    count -= n
    missed = null
    return JSON.stringify(out)
  }
  let removed = false
  const uninstall = (): void => {
    if (removed) return
    removed = true
    // Restore only our own layer: when the probes were removed first, emit is already the original.
    if (proto.emit === wrapped) {
      if (own) Object.defineProperty(proto, 'emit', own)
      else delete proto.emit
    }
    if (g[KEY] === api) delete g[KEY]
    const map = g[UNDO_KEY]
    if (map instanceof Map && map.get('binlog-positions') === uninstall) map.delete('binlog-positions')
  }
  const api = {capacity, drain, uninstall}
  g[KEY] = api
  g[UNDO_KEY] ??= new Map()
  g[UNDO_KEY].set('binlog-positions', uninstall)
  return {installed: true, reason: null, capacity}
}
