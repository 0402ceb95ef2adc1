// Takes a V8 heap snapshot of the target over CDP and parses it while the chunks arrive: the numeric
// node and edge arrays go straight into typed arrays, only the small header and the string table go
// through JSON.parse. Also reads the target's heap size and estimates what a snapshot will cost it.

import type CDP from 'chrome-remote-interface'

import {FerrydiagError} from '../errors.js'
import {trace} from '../trace.js'

/** The parts of a V8 .heapsnapshot that the heap route uses. */
export interface HeapSnapshotData {
  nodeFields: string[]
  edgeFields: string[]
  nodeTypeNames: string[]
  edgeTypeNames: string[]
  /** node_count × nodeFields.length values (type, name, id, self_size, edge_count, …). */
  nodes: Uint32Array
  /** edge_count × edgeFields.length values (type, name_or_index, to_node as an index into nodes). */
  edges: Uint32Array
  /** (object_index, script_id, line, column) quadruples; line and column are 0-based. */
  locations: Uint32Array
  strings: string[]
  /** Length of the snapshot text, in UTF-16 code units (≈ bytes for this mostly-ASCII format). */
  textLength: number
}

export interface HeapUsage {
  usedBytes: number
  totalBytes: number
}

export interface HeapRouteCost {
  /** Time the target's JavaScript is stopped while V8 writes the snapshot, typical heap, ms. */
  stallMs: number
  /** Extra memory the target's process grows by (much of it kept afterwards), typical heap, bytes. */
  extraMemoryBytes: number
  /** The same for a heap of millions of small objects (buffered row events): far more nodes per MB. */
  stallMsWorst: number
  extraMemoryBytesWorst: number
}

const MB = 1024 * 1024

/**
 * Estimated cost of the heap route for a target whose used JS heap is usedHeapBytes. The cost follows
 * the number of heap objects, which getHeapUsage cannot tell, so this gives a typical figure and a
 * worst case. Fits of measurements on these 2-core machines (shared/inspector-notes.md and
 * test/bench/heap.bench.ts): typical ~0.25 s at 10 MB and ~2 s at 100 MB of stall, ~+120 MB at
 * 100 MB; dense small objects (~25k objects per MB) ~1.8 s at 23 MB and ~29 s and +2.4 GB at 170 MB
 * (a loaded machine; V8's own writeHeapSnapshot in-process took 24 s on the same heap).
 */
export function estimateHeapRouteCost(usedHeapBytes: number): HeapRouteCost {
  if (!Number.isFinite(usedHeapBytes) || usedHeapBytes < 0) {
    throw new RangeError(`Expected usedHeapBytes to be a finite number >= 0, got ${String(usedHeapBytes)}`)
  }
  const usedMb = usedHeapBytes / MB
  return {
    // 60 ms fixed (GC, serialiser start) plus ~19.5 ms per MB.
    stallMs: Math.round(60 + 19.5 * usedMb),
    // The generator's per-object entries plus the JSON in flight: ~1.2× the heap, 8 MB floor.
    extraMemoryBytes: Math.round(8 * MB + 1.2 * usedHeapBytes),
    // ~175 ms per MB and ~14× the heap in V8's UTF-16 message buffers when objects are tiny.
    stallMsWorst: Math.round(200 + 175 * usedMb),
    extraMemoryBytesWorst: Math.round(16 * MB + 14 * usedHeapBytes),
  }
}

/** Reads the target's JS heap size without stopping it (Runtime.getHeapUsage: no GC, no walk). */
export async function readHeapUsage(client: CDP.Client): Promise<HeapUsage> {
  const usage = await client.send('Runtime.getHeapUsage')
  return {usedBytes: usage.usedSize, totalBytes: usage.totalSize}
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
            'evaluateTimeout',
            `Heap snapshot took longer than ${timeoutMs} ms`,
            'The target heap may be very large; retry with a longer --timeout or use the agent route.',
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
