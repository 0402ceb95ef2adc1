// What a replica dump shows: the first failure of each connection (with the errors that merely follow it,
// the failing worker and how its GTID was established), lag with its waits, a stop without an error, or
// health; and the positions of each connection on one line. Pure functions over snapshots.

import type {
  PositionLine,
  ReplicaConnection,
  ReplicaError,
  ReplicaFinding,
  ReplicaSnapshot,
  ReplicaSource,
  ReplicaWorker,
} from '../model/replica.js'
import {FOLLOW_ON_ERRNOS, type ErrorLogEntry} from './replica-errors.js'

/** Thread states that mean "nothing to do", not a wait worth reporting. */
const IDLE_STATES = [
  /^Waiting for work from SQL thread$/,
  /has read all relay log; waiting for more updates$/,
  /^Waiting for (master|source) to send event$/,
  /^Waiting for an event from Coordinator$/,
  /^Replica has read all relay log/,
]

export function isIdleState(state: string | null): boolean {
  return state === null || state === '' || IDLE_STATES.some((re) => re.test(state))
}

/** "0-1-5,1-2-9" (MariaDB) to domain -> {serverId, seqNo}; MySQL sets give an empty map. */
export function parseMariaDbGtidList(list: string): Map<number, {serverId: number; seqNo: number}> {
  const out = new Map<number, {serverId: number; seqNo: number}>()
  for (const part of list.split(',')) {
    const match = /^\s*(\d+)-(\d+)-(\d+)\s*$/.exec(part)
    if (match) out.set(Number(match[1]), {serverId: Number(match[2]), seqNo: Number(match[3])})
  }
  return out
}

/** Transactions in a MySQL GTID set ("uuid:1-5:7,uuid2:1-3"). */
function countMySqlGtidSet(set: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const part of set.split(',')) {
    const [uuid, ...ranges] = part.trim().split(':')
    if (!uuid || ranges.length === 0) continue
    let n = 0
    for (const range of ranges) {
      const match = /^(\d+)(?:-(\d+))?$/.exec(range)
      if (match) n += (match[2] === undefined ? 1 : Number(match[2]) - Number(match[1]) + 1)
    }
    out.set(uuid, (out.get(uuid) ?? 0) + n)
  }
  return out
}

/**
 * The GTID domains a connection serves: MariaDB's positions list every domain the replica knows (its own
 * and the other primaries'), so keep those whose received GTID came from this connection's primary;
 * null (all) when that tells nothing.
 */
function connectionDomains(connection: ReplicaConnection): Set<number> | null {
  const received = parseMariaDbGtidList(connection.io.receivedGtid)
  if (received.size === 0) return null
  const own = [...received].filter(([, gtid]) => gtid.serverId === connection.io.primaryServerId).map(([domain]) => domain)
  return new Set(own.length > 0 ? own : received.keys())
}

function restrictToDomains(list: string, domains: Set<number> | null): string {
  if (domains === null) return list
  return list
    .split(',')
    .filter((gtid) => domains.has(Number(gtid.split('-')[0])))
    .join(',')
}

/** The executed position restricted to the domains the connection serves (MariaDB's position is global). */
export function executedForConnection(connection: ReplicaConnection): string {
  return restrictToDomains(connection.sql.executedGtid, connectionDomains(connection))
}

/** The received position restricted to the domains the connection serves. */
export function receivedForConnection(connection: ReplicaConnection): string {
  return restrictToDomains(connection.io.receivedGtid, connectionDomains(connection))
}

/** Transactions received but not executed, summed over domains (MariaDB) or source UUIDs (MySQL). */
export function transactionsBetween(executed: string, received: string): number | null {
  const r = parseMariaDbGtidList(received)
  if (r.size > 0) {
    const e = parseMariaDbGtidList(executed)
    let sum = 0
    for (const [domain, gtid] of r) sum += Math.max(0, gtid.seqNo - (e.get(domain)?.seqNo ?? 0))
    return sum
  }
  const rs = countMySqlGtidSet(received)
  if (rs.size === 0) return null
  const es = countMySqlGtidSet(executed)
  let sum = 0
  for (const [uuid, n] of rs) sum += Math.max(0, n - (es.get(uuid) ?? 0))
  return sum
}

/** Workers serving a connection: those P_S names it for, or the shared pool when there is one connection. */
export function workersOf(snapshot: ReplicaSnapshot, connection: ReplicaConnection): ReplicaWorker[] {
  const single = snapshot.connections.length === 1
  return snapshot.workers.filter((w) => (w.connectionName === null ? single : w.connectionName === connection.name))
}

/** Positions on one line: received >= each worker's last seen >= executed. */
export function alignPositions(snapshot: ReplicaSnapshot): PositionLine[] {
  return snapshot.connections.map((connection) => {
    const executedGtid = executedForConnection(connection)
    const receivedGtid = receivedForConnection(connection)
    const sameFile = connection.io.received.file !== '' && connection.io.received.file === connection.sql.executed.file
    return {
      connectionName: connection.name,
      receivedGtid,
      workerGtids: workersOf(snapshot, connection)
        .filter((w) => (w.applyingGtid ?? w.lastSeenGtid) !== null)
        .map((w) => ({workerIndex: w.index, gtid: (w.applyingGtid ?? w.lastSeenGtid)!})),
      executedGtid,
      transactionsBehind: transactionsBetween(executedGtid, receivedGtid),
      bytesBehind: sameFile ? Math.max(0, connection.io.received.pos - connection.sql.executed.pos) : null,
    }
  })
}

/** What the analysis of a failure needs besides the snapshot. */
export interface FailureEvidence {
  /** The last snapshot taken while the SQL thread still ran (--watch), for worker identities. */
  lastRunning: ReplicaSnapshot | null
  /** Replication errors of the last stop, from the replica's error log (--error-log). */
  errorLog: ErrorLogEntry[]
}

function sameError(a: ReplicaError, b: ReplicaError): boolean {
  return a.errno === b.errno && (a.message === b.message || a.message.includes(b.message) || b.message.includes(a.message))
}

/** The first failure of a stopped SQL thread, or null when it stopped without an error (or runs). */
export function findFirstFailure(
  snapshot: ReplicaSnapshot,
  connection: ReplicaConnection,
  evidence: FailureEvidence,
): Extract<ReplicaFinding, {code: 'first-failure'}> | null {
  const workers = workersOf(snapshot, connection)
  const logged = evidence.errorLog.filter((e) => e.connectionName === connection.name)
  const candidates: ReplicaError[] = [
    ...logged,
    ...workers.map((w) => w.lastError).filter((e): e is ReplicaError => e !== null),
    ...(connection.sql.lastError ? [connection.sql.lastError] : []),
  ]
  if (candidates.length === 0) return null
  // The earliest error that is not a consequence of another; follow-ons only when nothing else is known.
  const causes = candidates.filter((e) => !FOLLOW_ON_ERRNOS.has(e.errno))
  const pool = causes.length > 0 ? causes : candidates
  // Error log entries are in logged order and precede the other sources' copies of the same error.
  const first = {...pool[0]!}
  const copies = candidates.filter((e) => sameError(e, first))
  first.gtid = copies.find((e) => e.gtid !== null)?.gtid ?? null
  const followOn: ReplicaError[] = []
  for (const e of candidates) {
    if (copies.includes(e)) continue
    if (followOn.some((f) => sameError(f, e) && f.threadId === e.threadId)) continue
    followOn.push(e)
  }

  // The failing worker: by the error log's thread id (matched in the last running snapshot or now),
  // else the worker whose P_S row carries the error.
  let workerIndex: number | null = null
  const threadId = copies.find((e) => e.threadId !== null)?.threadId ?? null
  if (threadId !== null) {
    for (const snap of [snapshot, evidence.lastRunning]) {
      const match = snap?.workers.find((w) => w.processlistId === threadId)
      if (match) {
        workerIndex = match.index
        break
      }
    }
    first.threadId = threadId
  }
  if (workerIndex === null) workerIndex = workers.find((w) => w.lastError !== null && sameError(w.lastError, first))?.index ?? null

  let gtidSource: ReplicaSource | null = copies.find((e) => e.gtid !== null)?.source ?? null
  if (first.gtid === null) {
    // Transactions commit in order, so the failing one is the next in its domain after the executed
    // position (exact only when the domain's sequence numbers are consecutive; --primary confirms it).
    const executed = parseMariaDbGtidList(executedForConnection(connection))
    const received = parseMariaDbGtidList(receivedForConnection(connection))
    for (const [domain, gtid] of executed) {
      const got = received.get(domain)
      if (got !== undefined && got.seqNo > gtid.seqNo) {
        first.gtid = `${domain}-${got.serverId}-${gtid.seqNo + 1}`
        gtidSource = 'inferred'
        break
      }
    }
  }
  return {code: 'first-failure', connectionName: connection.name, error: first, gtidSource, workerIndex, followOn, transaction: null, rows: []}
}

export interface LagOptions {
  /** Seconds_Behind_Master at or above which a running replica is lagging. */
  lagThresholdSec: number
}

/**
 * Applying at under half the arrival rate, by more than this many transactions, is lagging; below it a
 * replica under load that is a few transactions behind at one reading and a few more at the next is not.
 */
const MIN_GROWTH_TRANSACTIONS = 10

/** What happened between two readings of one connection's positions. */
function compareReadings(before: PositionLine, after: PositionLine): {received: number; applied: number; growth: number} | null {
  const received = transactionsBetween(before.receivedGtid, after.receivedGtid)
  const applied = transactionsBetween(before.executedGtid, after.executedGtid)
  if (received === null || applied === null || before.transactionsBehind === null || after.transactionsBehind === null) return null
  return {received, applied, growth: after.transactionsBehind - before.transactionsBehind}
}

function lagReason(
  secondsBehind: number | null,
  window: {received: number; applied: number; growth: number} | null,
  behind: number | null,
  options: LagOptions,
): Extract<ReplicaFinding, {code: 'lagging'}>['reason'] | null {
  // The most specific reason first: what the readings showed, then the server's own estimate.
  if (window !== null && (behind ?? 0) > 0) {
    if (window.applied === 0 && window.received > 0) return 'apply-stalled'
    if (window.growth > MIN_GROWTH_TRANSACTIONS && window.applied * 2 < window.received) return 'apply-slower-than-arrival'
  }
  if (secondsBehind !== null && secondsBehind >= options.lagThresholdSec) return 'seconds-behind'
  return null
}

/** Findings for every connection, first failures without the primary's side (see the command). */
export function analyzeReplica(
  snapshot: ReplicaSnapshot,
  evidence: FailureEvidence & {earlier: ReplicaSnapshot | null},
  options: LagOptions,
): {positions: PositionLine[]; findings: ReplicaFinding[]} {
  const positions = alignPositions(snapshot)
  const earlierPositions = evidence.earlier ? alignPositions(evidence.earlier) : []
  const findings: ReplicaFinding[] = []
  for (const [i, connection] of snapshot.connections.entries()) {
    const name = connection.name
    if (connection.io.lastError) findings.push({code: 'io-error', connectionName: name, error: connection.io.lastError})
    if (!connection.sql.running) {
      const failure = findFirstFailure(snapshot, connection, evidence)
      findings.push(failure ?? {code: 'stopped-no-error', connectionName: name, thread: 'sql'})
      continue
    }
    if (connection.io.running === 'no' && !connection.io.lastError) findings.push({code: 'stopped-no-error', connectionName: name, thread: 'io'})
    const position = positions[i]!
    const before = earlierPositions.find((p) => p.connectionName === name)
    const window = before === undefined ? null : compareReadings(before, position)
    const secondsBehind = connection.io.secondsBehind
    const reason = lagReason(secondsBehind, window, position.transactionsBehind, options)
    if (reason === null) {
      findings.push({code: 'healthy', connectionName: name})
      continue
    }
    const states = [connection.sql.state, ...workersOf(snapshot, connection).map((w) => w.state)]
    const waits = [...new Set(states.filter((s): s is string => !isIdleState(s)))]
    findings.push({
      code: 'lagging',
      connectionName: name,
      reason,
      secondsBehind,
      bytesBehind: position.bytesBehind,
      transactionsBehind: position.transactionsBehind,
      transactionsBehindGrowth: window?.growth ?? null,
      receivedInWindow: window?.received ?? null,
      appliedInWindow: window?.applied ?? null,
      waits,
    })
  }
  return {positions, findings}
}
