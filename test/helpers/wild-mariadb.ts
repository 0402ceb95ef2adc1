// Runs a wild-corpus program that needs MariaDB the way its header says: a fresh database on a source
// and a target server, the tables the load writes created on the source, the target behind the latency
// proxy when the header has `target-latency-ms: N`, `source-load: N` row changes per second written to
// the source (the fixtures' LoadGenerator, steady), then the program itself (with the inspector on)
// until it prints its `ready` line. Everything is torn down on test end.

import {readFileSync} from 'node:fs'
import path from 'node:path'
import type {TestContext} from 'node:test'
import type {Connection} from 'mysql2/promise'
import {startLatencyProxy, type LatencyProxy} from '../../fixtures/pipeline/latency-proxy.js'
import {LoadGenerator, MariaDbRowSink, createRandom} from '../../fixtures/pipeline/load-generator.js'
import {TABLES} from '../../fixtures/pipeline/schema.js'
import {spawnTarget, type TargetProcess} from './child-process.js'
import {freshDatabase, openConnection, startSourceAndTarget, type SourceAndTarget} from './mariadb.js'

/** The repository root (this file runs from dist/test/helpers). */
export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..')
export const WILD_DIR = path.join(REPO_ROOT, 'fixtures', 'wild')

/** What this helper needs from a program's `ferrydiag-wild` header. */
export interface WildMariaDbProgram {
  /** Entry file, relative to fixtures/wild. */
  file: string
  ready: RegExp
  args: string[]
  /** Row changes per second the harness writes to the source (`source-load`), 0 when absent. */
  sourceLoadPerSec: number
  /** Delay the latency proxy adds to each chunk in each direction (`target-latency-ms`), 0 = no proxy. */
  targetLatencyMs: number
}

/** The header's `key: value` lines (the block comment opening with `ferrydiag-wild`). */
export function readHeaderFields(file: string): Map<string, string> {
  const text = readFileSync(path.join(WILD_DIR, file), 'utf8')
  const block = /^\s*\/\*\s*ferrydiag-wild\b([\s\S]*?)\*\//.exec(text)
  if (!block) throw new Error(`${file}: no ferrydiag-wild header`)
  const fields = new Map<string, string>()
  for (const line of block[1]!.split('\n')) {
    const match = /^\s*\*?\s*([a-z-]+):\s*(.*?)\s*$/.exec(line)
    if (match) fields.set(match[1]!, match[2]!)
  }
  return fields
}

function nonNegative(file: string, key: string, value: string | undefined): number {
  if (value === undefined) return 0
  const number = Number(value)
  if (!Number.isFinite(number) || number < 0) throw new Error(`${file}: ${key} must be a number >= 0, got '${value}'`)
  return number
}

export function readWildMariaDbProgram(file: string): WildMariaDbProgram {
  const fields = readHeaderFields(file)
  return {
    file,
    ready: new RegExp(fields.get('ready') ?? '^ready$'),
    args: (fields.get('args') ?? '').split(/\s+/).filter(Boolean),
    sourceLoadPerSec: nonNegative(file, 'source-load', fields.get('source-load')),
    targetLatencyMs: nonNegative(file, 'target-latency-ms', fields.get('target-latency-ms')),
  }
}

export interface WildPipeline {
  /** The header the pipeline was started from. */
  header: WildMariaDbProgram
  program: TargetProcess
  /** DSNs of the fresh database on each server (the target's is direct, not through the proxy). */
  sourceDsn: string
  targetDsn: string
  /** What the program was given as ${TARGET}: the proxy's DSN when there is one. */
  programTargetDsn: string
  /** Connections for the test's own measurements. */
  source: Connection
  target: Connection
  load: LoadGenerator | null
  proxy: LatencyProxy | null
  stop(): Promise<void>
}

let databaseCounter = 0

/**
 * Starts the program of `program` against `servers` (or a pair of its own), with the header's proxy
 * and load, and resolves once the program printed its ready line. Stopped on `t`'s end.
 */
export async function startWildPipeline(
  program: WildMariaDbProgram,
  options: {t?: TestContext; servers?: SourceAndTarget; startTimeoutMs?: number},
): Promise<WildPipeline> {
  const ownServers = options.servers === undefined
  const servers = options.servers ?? (await startSourceAndTarget())
  const cleanups: Array<() => Promise<unknown>> = []
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
  }
  options.t?.after(stop)
  try {
    if (ownServers) cleanups.push(() => servers.stop())
    const name = `wild_${process.pid}_${++databaseCounter}`
    const dsns = await freshDatabase(servers.source, servers.target, name)
    const source = await openConnection(dsns.source)
    cleanups.push(() => source.end())
    const target = await openConnection(dsns.target)
    cleanups.push(() => target.end())
    for (const table of TABLES) await source.query(table.ddl)

    let proxy: LatencyProxy | null = null
    let programTargetDsn = dsns.target
    if (program.targetLatencyMs > 0) {
      proxy = await startLatencyProxy({host: servers.target.host, port: servers.target.port}, program.targetLatencyMs)
      cleanups.push(() => proxy!.close())
      const url = new URL(dsns.target)
      url.hostname = proxy.host
      url.port = String(proxy.port)
      programTargetDsn = url.toString()
    }

    // The load starts first: a program that gets stuck is stuck only once rows arrive.
    let load: LoadGenerator | null = null
    if (program.sourceLoadPerSec > 0) {
      const loadConnection = await openConnection(dsns.source)
      cleanups.push(() => loadConnection.end())
      load = new LoadGenerator(new MariaDbRowSink(loadConnection), {eventsPerSec: program.sourceLoadPerSec, shape: 'steady'}, createRandom(1))
      load.start()
      cleanups.push(() => load!.stop())
    }

    const args = program.args.map((arg) => arg.replaceAll('${SOURCE}', dsns.source).replaceAll('${TARGET}', programTargetDsn))
    const child = await spawnTarget({
      file: path.join(WILD_DIR, program.file),
      execArgv: ['--inspect=127.0.0.1:0'],
      args,
      readyLine: program.ready,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
    })
    cleanups.push(() => child.kill())
    return {header: program, program: child, sourceDsn: dsns.source, targetDsn: dsns.target, programTargetDsn, source, target, load, proxy, stop}
  } catch (error) {
    await stop()
    throw error
  }
}

/** Highest primary key inserted so far into the load's tables (users + orders): grows with every insert. */
export async function insertHighWater(connection: Connection): Promise<number> {
  const [rows] = await connection.query(
    'SELECT (SELECT COALESCE(MAX(id), 0) FROM users) + (SELECT COALESCE(MAX(id), 0) FROM orders) AS hw',
  )
  return Number((rows as Array<{hw: number | string}>)[0]!.hw)
}

/**
 * Polls `check` every 50 ms until it holds; throws naming `what` after `timeoutMs`, or at once if the
 * program exited. Resolves with the time it took, ms.
 */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string, program: TargetProcess): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await check()) return Date.now() - started
    if (!program.isAlive()) throw new Error(`program exited before ${what}; stderr: ${program.stderrText.trim().slice(-1000)}`)
    if (Date.now() - started > timeoutMs) {
      throw new Error(`no ${what} within ${timeoutMs} ms; program stdout: ${program.stdoutLines.slice(-5).join(' | ')}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
