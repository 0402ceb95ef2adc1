// Takes a V8 heap snapshot of the target over CDP and parses it while the chunks arrive: the numeric
// node and edge arrays go straight into typed arrays, only the small header and the string table go
// through JSON.parse. Also reads the target's heap size and estimates what a snapshot will cost it.

import type CDP from 'chrome-remote-interface'
import {readFile} from 'node:fs/promises'
import {availableParallelism, loadavg} from 'node:os'

import type {HeapGraphData} from '../analyze/heap-graph.js'
import type {HeapCostFigures} from '../model/heap-cost.js'
import {FerrydiagError} from '../errors.js'
import {trace} from '../trace.js'
import {formatBytes, formatDurationMs, formatDurationRangeMs, GIB, MIB} from '../units.js'

/** The parts of a V8 .heapsnapshot that the heap route uses (the graph's fields, see HeapGraphData). */
export interface HeapSnapshotData extends HeapGraphData {
  /** Length of the snapshot text, in UTF-16 code units (≈ bytes for this mostly-ASCII format). */
  textLength: number
}

export interface HeapUsage {
  usedBytes: number
  totalBytes: number
  /**
   * Bytes in V8's large-object spaces (strings, arrays and code over ~128 KB): few objects per MB, so
   * cheap to snapshot. 0 when the target's v8 module cannot be reached.
   */
  largeObjectBytes: number
}

export interface HeapRouteCost extends HeapCostFigures {
  /** The high ends again, under the names older callers use. */
  stallMsWorst: number
  extraMemoryBytesWorst: number
  /** How long the CLI waits for the snapshot before giving up by default (3 × the high stall + 30 s), ms. */
  waitMs: number
  /** The factor the high ends were stretched by for the host's CPU load (1: an idle host; see hostLoadStretch). */
  loadStretch: number
}


/**
 * Cost per MB of small-object heap (objects under ~128 KB) for three densities, fitted on these 2-core
 * machines under load (test/bench/heap-estimate.bench.ts; figures in the README's Safety section).
 * What drives the cost is the number of objects, which no cheap reading gives: `low` is a heap of
 * ~1 KB rows (~3k objects per MB), `high` one of tiny row objects (~40k objects per MB, buffered row
 * events), `mid` their geometric mean. Large-object space (big strings, arrays, Buffers' JS side) costs
 * little per MB: it is a handful of nodes whatever its size.
 */
export const HEAP_COST_MODEL = {
  fixedStallMs: 60,
  stallMsPerSmallMb: {low: 19.5, mid: 58, high: 175},
  stallMsPerLargeMb: 2,
  fixedMemoryBytes: 16 * MIB,
  memoryPerSmallByte: {low: 1.2, mid: 4.1, high: 14},
  memoryPerLargeByte: 0.05,
} as const

/**
 * How much a loaded host stretches a snapshot, from the 1-minute load average per core (`loadPerCore`,
 * default: this host's now). The snapshot is CPU work on the target's main thread (and its GC threads):
 * with more runnable tasks than cores it gets a share of a core. test/bench/heap-estimate.bench.ts at
 * 6-15 runnable tasks per core measured stalls of 1.5-32× the idle band's high end (up to 2.1 × the load
 * per core: the 1-minute average lags a load that rises during a long stall), and peak memory up to 1.3×
 * its high end (the GC falls behind). So above one runnable task per core the stall's high end is
 * multiplied by 2.5 × the load per core, and the memory's high end by 1.5; at or below it, nothing changes.
 */
export function hostLoadStretch(loadPerCore = loadavg()[0]! / availableParallelism()): {stall: number; memory: number} {
  if (!(loadPerCore > 1)) return {stall: 1, memory: 1}
  return {stall: 2.5 * loadPerCore, memory: 1.5}
}

/**
 * Estimated cost of the heap route for a target whose used JS heap is usedHeapBytes, of which
 * largeObjectBytes are in large-object space; see HEAP_COST_MODEL. `stretch` widens the high ends for a
 * loaded host (hostLoadStretch; default none: an idle host).
 */
export function estimateHeapRouteCost(usedHeapBytes: number, largeObjectBytes = 0, stretch = {stall: 1, memory: 1}): HeapRouteCost {
  if (!Number.isFinite(usedHeapBytes) || usedHeapBytes < 0) {
    throw new RangeError(`Expected usedHeapBytes to be a finite number >= 0, got ${String(usedHeapBytes)}`)
  }
  const large = Math.min(Math.max(0, Number.isFinite(largeObjectBytes) ? largeObjectBytes : 0), usedHeapBytes)
  const small = usedHeapBytes - large
  const m = HEAP_COST_MODEL
  const stall = (perMb: number) => Math.round(m.fixedStallMs + perMb * (small / MIB) + m.stallMsPerLargeMb * (large / MIB))
  const memory = (perByte: number) => Math.round(m.fixedMemoryBytes + perByte * small + m.memoryPerLargeByte * large)
  const stallMsHigh = Math.round(stall(m.stallMsPerSmallMb.high) * Math.max(1, stretch.stall))
  const extraMemoryBytesHigh = Math.round(memory(m.memoryPerSmallByte.high) * Math.max(1, stretch.memory))
  return {
    stallMs: stall(m.stallMsPerSmallMb.mid),
    stallMsLow: stall(m.stallMsPerSmallMb.low),
    stallMsHigh,
    extraMemoryBytes: memory(m.memoryPerSmallByte.mid),
    extraMemoryBytesLow: memory(m.memoryPerSmallByte.low),
    extraMemoryBytesHigh,
    stallMsWorst: stallMsHigh,
    extraMemoryBytesWorst: extraMemoryBytesHigh,
    waitMs: 3 * stallMsHigh + 30_000,
    loadStretch: Math.max(1, stretch.stall),
  }
}

/**
 * Reads the target's JS heap size without stopping it (Runtime.getHeapUsage: no GC, no walk), and the
 * large-object spaces' share from v8.getHeapSpaceStatistics() evaluated in the target (a few µs).
 */
export async function readHeapUsage(client: CDP.Client): Promise<HeapUsage> {
  const usage = await client.send('Runtime.getHeapUsage')
  let largeObjectBytes = 0
  try {
    const answer = await client.send('Runtime.evaluate', {
      expression: `(() => { const v8 = process.getBuiltinModule?.('v8'); if (!v8) return 0;
        return v8.getHeapSpaceStatistics().filter((s) => /large_object/.test(s.space_name)).reduce((sum, s) => sum + s.space_used_size, 0) })()`,
      returnByValue: true,
      silent: true,
      timeout: 2000,
    })
    if (typeof answer.result.value === 'number') largeObjectBytes = answer.result.value
  } catch {
    // An old target without getBuiltinModule: estimate as if every byte were small objects.
  }
  return {usedBytes: usage.usedSize, totalBytes: usage.totalSize, largeObjectBytes}
}

/** Bytes of memory the host can still give without swapping (MemAvailable), or null when unknown. */
export async function readHostAvailableBytes(): Promise<number | null> {
  try {
    const meminfo = await readFile('/proc/meminfo', 'utf8')
    const kb = /^MemAvailable:\s+(\d+)\s+kB/m.exec(meminfo)?.[1]
    return kb === undefined ? null : Number(kb) * 1024
  } catch {
    return null
  }
}

/** Default --heap-max: the largest memory growth (high end of the band) the heap route accepts. */
export const DEFAULT_HEAP_MAX_BYTES = GIB

/**
 * Refuses the heap route (FerrydiagError heapTooLarge) when the high end of its memory estimate is above
 * `heapMaxBytes`, or, for a target on this host, above what the host has available.
 */
export function checkHeapRouteAllowed(
  estimate: HeapRouteCost & {usedHeapBytes: number},
  options: {heapMaxBytes: number; hostAvailableBytes: number | null; heapMaxFlag?: string},
): void {
  const band = `${formatBytes(estimate.extraMemoryBytesLow)}–${formatBytes(estimate.extraMemoryBytesHigh)}`
  if (estimate.extraMemoryBytesHigh > options.heapMaxBytes) {
    throw new FerrydiagError(
      'heapTooLarge',
      `Refusing the heap snapshot: the target's ${formatBytes(estimate.usedHeapBytes)} heap could grow its memory by ${band} (and stop it for ${formatDurationRangeMs(estimate.stallMsLow, estimate.stallMsHigh)}), above the ${formatBytes(options.heapMaxBytes)} ceiling.`,
      `Drop --heap (use the agent), or allow it with --heap-max ${Math.ceil(estimate.extraMemoryBytesHigh / (256 * MIB)) * 256}MiB if the target can afford that.`,
    )
  }
  if (options.hostAvailableBytes !== null && estimate.extraMemoryBytesHigh > options.hostAvailableBytes) {
    throw new FerrydiagError(
      'heapTooLarge',
      `Refusing the heap snapshot: it could grow the target's memory by ${band}, and this host has only ${formatBytes(options.hostAvailableBytes)} available (MemAvailable); the kernel would have to kill something.`,
      'Free memory on the host first, or drop --heap and use the agent (`node --import ferrydiag/register`).',
    )
  }
}

type ParseState = 'header' | 'nodes' | 'between' | 'edges' | 'tail'

/**
 * Incremental parser for the snapshot text. push() each chunk in order, then finish(). Numbers of the
 * node and edge arrays are decoded digit by digit into typed arrays sized from the header's counts.
 */
export class HeapSnapshotParser {
  private state: ParseState = 'header'
  private headerText = ''
  private betweenText = ''
  private tailParts: string[] = []
  private nodeFields: string[] = []
  private edgeFields: string[] = []
  private nodeTypeNames: string[] = []
  private edgeTypeNames: string[] = []
  private nodes = new Uint32Array(0)
  private edges = new Uint32Array(0)
  private target = new Uint32Array(0)
  private fill = 0
  private current = 0
  private inNumber = false
  private textLength = 0

  push(chunk: string): void {
    this.textLength += chunk.length
    this.consume(chunk)
  }

  private consume(chunk: string): void {
    let from = 0
    while (from < chunk.length) {
      switch (this.state) {
        case 'header':
          from = this.pushHeader(chunk, from)
          break
        case 'nodes':
        case 'edges':
          from = this.pushNumbers(chunk, from)
          break
        case 'between':
          from = this.pushBetween(chunk, from)
          break
        case 'tail':
          this.tailParts.push(from === 0 ? chunk : chunk.slice(from))
          from = chunk.length
          break
      }
    }
  }

  finish(): HeapSnapshotData {
    if (this.state !== 'tail') {
      throw new FerrydiagError(
        'targetExited',
        `Heap snapshot text ended early (parser state '${this.state}')`,
        'The target may have exited or run out of memory while writing the snapshot; check it and retry.',
      )
    }
    // The tail is `,"trace_function_infos":[...],...,"strings":[...]}`: make it an object of its own.
    const tailText = this.tailParts.join('')
    this.tailParts = []
    const tail = JSON.parse('{' + tailText.slice(tailText.indexOf(',') + 1)) as {
      locations?: number[]
      strings: string[]
    }
    return {
      nodeFields: this.nodeFields,
      edgeFields: this.edgeFields,
      nodeTypeNames: this.nodeTypeNames,
      edgeTypeNames: this.edgeTypeNames,
      nodes: this.nodes,
      edges: this.edges,
      locations: Uint32Array.from(tail.locations ?? []),
      strings: tail.strings,
      textLength: this.textLength,
    }
  }

  private pushHeader(chunk: string, from: number): number {
    this.headerText += from === 0 ? chunk : chunk.slice(from)
    const found = /"nodes"\s*:\s*\[/.exec(this.headerText)
    if (!found) return chunk.length
    const marker = found.index
    const headerJson = this.headerText.slice(0, marker).replace(/,\s*$/, '') + '}'
    const header = JSON.parse(headerJson) as {
      snapshot: {
        meta: {node_fields: string[]; edge_fields: string[]; node_types: unknown[]; edge_types: unknown[]}
        node_count: number
        edge_count: number
      }
    }
    const meta = header.snapshot.meta
    this.nodeFields = meta.node_fields
    this.edgeFields = meta.edge_fields
    this.nodeTypeNames = meta.node_types[0] as string[]
    this.edgeTypeNames = meta.edge_types[0] as string[]
    this.nodes = new Uint32Array(header.snapshot.node_count * this.nodeFields.length)
    this.edges = new Uint32Array(header.snapshot.edge_count * this.edgeFields.length)
    this.target = this.nodes
    this.fill = 0
    this.state = 'nodes'
    // Continue with whatever followed the '[' in the accumulated header text.
    const rest = this.headerText.slice(marker + found[0].length)
    this.headerText = ''
    if (rest.length > 0) this.consume(rest)
    return chunk.length
  }

  private pushNumbers(chunk: string, from: number): number {
    const target = this.target
    let fill = this.fill
    let current = this.current
    let inNumber = this.inNumber
    for (let i = from; i < chunk.length; i++) {
      const code = chunk.charCodeAt(i)
      if (code >= 48 && code <= 57) {
        current = current * 10 + (code - 48)
        inNumber = true
      } else if (code === 93) {
        // ']' closes the array
        if (inNumber) target[fill++] = current
        this.finishArray(fill)
        this.current = 0
        this.inNumber = false
        return i + 1
      } else if (inNumber) {
        target[fill++] = current
        current = 0
        inNumber = false
      }
    }
    this.fill = fill
    this.current = current
    this.inNumber = inNumber
    return chunk.length
  }

  private finishArray(fill: number): void {
    if (fill !== this.target.length) {
      throw new FerrydiagError(
        'targetExited',
        `Heap snapshot ${this.state} array has ${fill} values, header announced ${this.target.length}`,
        'Retry the heap route; if it repeats, the snapshot format of this Node version is not supported.',
      )
    }
    if (this.state === 'nodes') {
      this.state = 'between'
      this.betweenText = ''
    } else {
      this.state = 'tail'
    }
  }

  private pushBetween(chunk: string, from: number): number {
    const open = chunk.indexOf('[', from)
    if (open < 0) {
      this.betweenText += chunk.slice(from)
      return chunk.length
    }
    this.betweenText += chunk.slice(from, open)
    if (!this.betweenText.includes('"edges"')) {
      throw new FerrydiagError(
        'badArgument',
        `Unexpected heap snapshot layout after nodes: ${this.betweenText.slice(0, 40)}`,
        'This Node version writes a snapshot format ferrydiag does not know.',
      )
    }
    this.state = 'edges'
    this.target = this.edges
    this.fill = 0
    this.current = 0
    this.inNumber = false
    return open + 1
  }
}

/**
 * Snapshots being written per CDP client. Closing the socket while V8 writes a snapshot crashed targets
 * (SIGSEGV in 3 of 41 interrupted snapshots), so detach waits for this to settle before closing.
 */
const inFlight = new WeakMap<object, Promise<unknown>>()

/** The snapshot this client is waiting for, if any (settles when the target has sent it all). */
export function snapshotInFlight(client: object): Promise<unknown> | undefined {
  return inFlight.get(client)
}

export interface TakeHeapSnapshotOptions {
  /** Give up (and report) after this many ms of waiting for the snapshot; default 120000. */
  timeoutMs?: number
}

export interface TakenHeapSnapshot {
  data: HeapSnapshotData
  /** From the command until the last chunk arrived (the target's stall is most of it), ms. */
  snapshotMs: number
  /** Parsing time spent after the last chunk (most parsing overlaps with the transfer), ms. */
  parseMs: number
}

/**
 * Asks the target for a heap snapshot and parses it as it streams. The target runs a full GC and
 * stops its JavaScript while writing (see estimateHeapRouteCost).
 */
export async function takeHeapSnapshot(
  client: CDP.Client,
  options: TakeHeapSnapshotOptions = {},
): Promise<TakenHeapSnapshot> {
  const timeoutMs = options.timeoutMs ?? 120_000
  const parser = new HeapSnapshotParser()
  let parseError: unknown
  const onChunk = (params: {chunk: string}): void => {
    if (parseError !== undefined) return
    try {
      parser.push(params.chunk)
    } catch (error) {
      parseError = error
    }
  }
  const emitter = client as unknown as NodeJS.EventEmitter
  emitter.on('HeapProfiler.addHeapSnapshotChunk', onChunk)
  const startMs = performance.now()
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new FerrydiagError(
            'heapTimeout',
            `The heap snapshot took longer than ${formatDurationMs(timeoutMs)}; ferrydiag stopped waiting for it but let the target finish writing it before detaching (closing the connection mid-snapshot can crash the target).`,
            `Retry with a longer --heap-timeout (e.g. --heap-timeout ${Math.ceil((timeoutMs * 2) / 60_000)}m), or drop --heap and use the agent.`,
          ),
        )
      }, timeoutMs)
    })
    const request = client.send('HeapProfiler.takeHeapSnapshot', {reportProgress: false, captureNumericValue: false})
    const settled = request.then(
      () => undefined,
      () => undefined,
    )
    inFlight.set(client, settled)
    trace('heap-snapshot')
    void settled.then(() => {
      if (inFlight.get(client) === settled) inFlight.delete(client)
    })
    await Promise.race([request, timeout])
  } finally {
    if (timer !== undefined) clearTimeout(timer)
    emitter.removeListener('HeapProfiler.addHeapSnapshotChunk', onChunk)
  }
  const snapshotMs = performance.now() - startMs
  if (parseError !== undefined) throw parseError
  const parseStartMs = performance.now()
  const data = parser.finish()
  return {data, snapshotMs, parseMs: performance.now() - parseStartMs}
}
