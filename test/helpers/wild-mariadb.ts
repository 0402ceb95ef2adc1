// Runs a wild-corpus program that needs MariaDB the way its header says: a fresh database on a source
// and a target server, the tables the load writes created on the source, the target behind the latency
// proxy when the header has `target-latency-ms: N`, `source-load: N` row changes per second written to
// the source (the fixtures' LoadGenerator, steady), then the program itself (with the inspector on)
// until it prints its `ready` line. Everything is torn down on test end.

import type {TestContext} from 'node:test'
import type {Connection} from 'mysql2/promise'
import {startLatencyProxy, type LatencyProxy} from '../../fixtures/pipeline/latency-proxy.js'
import {LoadGenerator, MariaDbRowSink, createRandom} from '../../fixtures/pipeline/load-generator.js'
import {TABLES} from '../../fixtures/pipeline/schema.js'
import {freshDatabase, openConnection, startSourceAndTarget, type SourceAndTarget} from './mariadb.js'
import {startWildProgram, type WildProcess, type WildProgram} from './wild.js'

/** The header keys of fixtures/wild/README.md that only MariaDB programs have. */
export interface WildMariaDbSettings {
  /** Row changes per second the harness writes to the source (`source-load`), 0 when absent. */
  sourceLoadPerSec: number
  /** Delay the latency proxy adds to each chunk in each direction (`target-latency-ms`), 0 = no proxy. */
  targetLatencyMs: number
}

function nonNegative(program: WildProgram, key: string): number {
  const value = program.header[key]
  if (value === undefined) return 0
  const number = Number(value)
  if (value.trim() === '' || !Number.isFinite(number) || number < 0) {
    throw new Error(`fixtures/wild/${program.file}: "${key}: ${value}" is not a number >= 0`)
  }
  return number
}

export function readMariaDbSettings(program: WildProgram): WildMariaDbSettings {
  return {sourceLoadPerSec: nonNegative(program, 'source-load'), targetLatencyMs: nonNegative(program, 'target-latency-ms')}
}

export interface WildPipeline {
  /** The program's header, and its MariaDB keys. */
  header: WildProgram
  settings: WildMariaDbSettings
  program: WildProcess
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
  program: WildProgram,
  options: {t?: TestContext; servers?: SourceAndTarget; startTimeoutMs?: number; inspector?: boolean; extraArgs?: string[]},
): Promise<WildPipeline> {
  const settings = readMariaDbSettings(program)
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
    if (settings.targetLatencyMs > 0) {
      proxy = await startLatencyProxy({host: servers.target.host, port: servers.target.port}, settings.targetLatencyMs)
      cleanups.push(() => proxy!.close())
      const url = new URL(dsns.target)
      url.hostname = proxy.host
      url.port = String(proxy.port)
      programTargetDsn = url.toString()
    }

    // The load starts first: a program that gets stuck is stuck only once rows arrive.
    let load: LoadGenerator | null = null
    if (settings.sourceLoadPerSec > 0) {
      const loadConnection = await openConnection(dsns.source)
      cleanups.push(() => loadConnection.end())
      load = new LoadGenerator(new MariaDbRowSink(loadConnection), {eventsPerSec: settings.sourceLoadPerSec, shape: 'steady'}, createRandom(1))
      load.start()
      cleanups.push(() => load!.stop())
    }

    const child = await startWildProgram(program, {source: dsns.source, target: programTargetDsn, startTimeoutMs: options.startTimeoutMs, inspector: options.inspector, extraArgs: options.extraArgs})
    cleanups.push(() => child.stop())
    return {header: program, settings, program: child, sourceDsn: dsns.source, targetDsn: dsns.target, programTargetDsn, source, target, load, proxy, stop}
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
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string, program: WildProcess): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await check()) return Date.now() - started
    if (program.exit() !== null) throw new Error(`program exited before ${what}; stderr: ${program.stderr().trim().slice(-1000)}`)
    if (Date.now() - started > timeoutMs) {
      throw new Error(`no ${what} within ${timeoutMs} ms; program stdout: ${program.stdout().split('\n').slice(-5).join(' | ')}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
