// Runs the reference pipeline (dist/fixtures/pipeline/main.js) as a child process for tests: parses its
// start line, reads the agent snapshot over its inspector, measures lag from snapshots, and stops it.
import {spawn, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'
import type {AgentSnapshot, StageRecord} from '../../src/model/snapshot.js'
import {runNode, testTimeoutMs} from './run-node.js'
import {attachTarget, type InspectorSession} from '../../src/attach/index.js'

export const PIPELINE_MAIN = fileURLToPath(new URL('../../fixtures/pipeline/main.js', import.meta.url))

export interface ExitResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunningPipeline {
  pid: number
  /** key=value fields of the start line (pid, inspect, scenario, mode, batch-size, ...). */
  fields: Record<string, string>
  startLine: string
  child: ChildProcess
  /** Reads the agent's snapshot over the inspector (one session, reused). */
  snapshot(): Promise<AgentSnapshot>
  alive(): boolean
  /** Sends the signal (default SIGTERM) and waits for exit, at most timeoutMs. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitResult>
}

/** Parses `ferrydiag-pipeline k=v k=v ...`. */
export function parseStartLine(line: string): Record<string, string> {
  if (!line.startsWith('ferrydiag-pipeline ')) throw new Error(`unexpected start line: ${line}`)
  return Object.fromEntries(
    line
      .slice('ferrydiag-pipeline '.length)
      .trim()
      .split(/\s+/)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  )
}

/** How long a pipeline may take to print its start line: 120 s (scaled), since a loaded machine took over 30 s. */
export const PIPELINE_START_TIMEOUT_MS = testTimeoutMs(120_000)
/** Budget for attaching to the pipeline's inspector and for one snapshot read, each. */
const INSPECTOR_TIMEOUT_MS = testTimeoutMs(30_000)

/**
 * Starts the pipeline with --inspect on a free port and waits for its start line. nodeArgs go to node
 * before the script (e.g. `--import <register.js>` to preload the agent).
 */
export async function startPipeline(
  args: readonly string[],
  options: {startTimeoutMs?: number; nodeArgs?: readonly string[]} = {},
): Promise<RunningPipeline> {
  const nodeArgs = ['--enable-source-maps', ...(options.nodeArgs ?? []), PIPELINE_MAIN, ...args, '--inspect=127.0.0.1:0']
  const child = spawn(process.execPath, nodeArgs, {stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>
  const lines = createInterface({input: child.stdout!})
  const firstLine = new Promise<string>((resolve) => {
    lines.on('line', (line) => {
      if (stdout === '') resolve(line)
      stdout += `${line}\n`
    })
  })
  const timeoutMs = options.startTimeoutMs ?? PIPELINE_START_TIMEOUT_MS
  let timer: NodeJS.Timeout | undefined
  const startLine = await Promise.race([
    firstLine,
    exited.then(([code]) => {
      throw new Error(`pipeline exited (code ${code}) before its start line; stderr: ${stderr.trim()}`)
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no start line within ${timeoutMs} ms; stderr: ${stderr.trim()}`)), timeoutMs)
    }),
  ]).catch((error) => {
    child.kill('SIGKILL')
    throw error
  })
  clearTimeout(timer)
  const fields = parseStartLine(startLine)
  let session: InspectorSession | undefined
  let exit: ExitResult | undefined
  const finished = exited.then(([code, signal]) => (exit = {code, signal, stdout, stderr}))
  return {
    pid: Number(fields.pid),
    fields,
    startLine,
    child,
    async snapshot() {
      // A read-only observer beside the CLI under test: it must not hold the target's lease.
      session ??= await attachTarget({inspect: fields.inspect, connectTimeoutMs: INSPECTOR_TIMEOUT_MS, lease: false})
      const snapshot = await session.readSnapshot({budgetMs: INSPECTOR_TIMEOUT_MS})
      if (!snapshot) throw new Error(`no ferrydiag agent in the pipeline at ${fields.inspect}`)
      return snapshot
    },
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop(signal = 'SIGTERM', stopTimeoutMs = testTimeoutMs(30_000)) {
      await session?.detach()
      session = undefined
      if (exit) return exit
      child.kill(signal)
      const killer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs)
      await finished
      clearTimeout(killer)
      return exit!
    },
  }
}

/** Runs the pipeline to completion (for bad-input cases) and returns its exit status and output. */
export async function runPipelineToExit(args: readonly string[], timeoutMs = PIPELINE_START_TIMEOUT_MS): Promise<ExitResult> {
  const {code, signal, stdout, stderr} = await runNode(PIPELINE_MAIN, args, {timeoutMs})
  return {code, signal, stdout, stderr}
}

export function stageNamed(snapshot: AgentSnapshot, name: string): StageRecord {
  const stage = snapshot.stages.find((s) => s.name === name)
  if (!stage) throw new Error(`no stage '${name}' in snapshot (stages: ${snapshot.stages.map((s) => s.name).join(', ')})`)
  return stage
}

export interface Lag {
  /** The writer has applied everything up to the source's end position. */
  caughtUp: boolean
  /** 0 when caught up; else now − source time of the newest applied event (or of the writer's start). */
  lagMs: number
  eventsApplied: number
  /** Simulator only: events produced minus applied. */
  backlogEvents: number | undefined
}

/**
 * Replication lag as ghostferry reports it, from one snapshot: how far behind the source's newest
 * event the writer's newest applied event is, in source time; zero once positions match.
 */
export function lagOf(snapshot: AgentSnapshot): Lag {
  const writer = stageNamed(snapshot, 'binlog-writer')
  const source = snapshot.sources[0]
  if (!source) throw new Error('no source registered in snapshot')
  const applied = snapshot.counters.eventsApplied ?? 0
  const pos = writer.position
  // The writer starts at the source's start position, so equal positions mean nothing is outstanding.
  const caughtUp = pos !== null && pos.file === source.end.file && pos.offset >= source.end.offset
  const since = writer.lastItemTimestampMs ?? writer.createdAtMs
  return {
    caughtUp,
    lagMs: caughtUp ? 0 : Math.max(0, snapshot.takenAtMs - since),
    eventsApplied: applied,
    backlogEvents: source.eventsProduced === undefined ? undefined : source.eventsProduced - applied,
  }
}

/** Polls until predicate(snapshot) holds; returns that snapshot. Throws with the last one on timeout (default 90 s, scaled). */
export async function waitForSnapshot(
  pipeline: RunningPipeline,
  predicate: (s: AgentSnapshot) => boolean,
  options: {timeoutMs?: number; intervalMs?: number; what?: string} = {},
): Promise<AgentSnapshot> {
  const deadline = Date.now() + (options.timeoutMs ?? testTimeoutMs(90_000))
  let last: AgentSnapshot | undefined
  for (;;) {
    last = await pipeline.snapshot()
    if (predicate(last)) return last
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${options.what ?? 'condition'}; last lag ${JSON.stringify(lagOf(last))}, counters ${JSON.stringify(last.counters)}`)
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250))
  }
}

/** Sleeps; tests use it only between two measurements of a rate, never as an assertion. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
