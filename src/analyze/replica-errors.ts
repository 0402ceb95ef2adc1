// Replication error messages and error logs read as data: which table, key and GTID an applier error
// names, which errors merely follow an earlier one, and the replication errors of the last stop in a
// MariaDB/MySQL error log. Pure functions over text.

import type {ReplicaError, ReplicaSource} from '../model/replica.js'

/**
 * Errors that report an earlier failure rather than one of their own:
 * 1964 ER_PRIOR_COMMIT_FAILED (MariaDB: "Commit failed due to failure of an earlier commit on which this
 * one depends"); 1756 ER_MTS_INCONSISTENT_DATA (MySQL: the coordinator's summary after a worker failed).
 */
export const FOLLOW_ON_ERRNOS: ReadonlySet<number> = new Set([1964, 1756])

/** Key errors whose row can be looked up by primary key: duplicate key, row not found. */
export const KEY_ERRNOS: ReadonlySet<number> = new Set([1062, 1032, 1586])

export interface ParsedErrorMessage {
  table: string | null
  keyName: string | null
  keyValue: string | null
  gtid: string | null
  /** "the event's master log FILE, end_log_pos N": where the failing event ends on the primary. */
  primaryEventEnd: {file: string; pos: number} | null
}

/** Reads table, key, GTID and primary coordinate out of an applier error message. */
export function parseErrorMessage(message: string): ParsedErrorMessage {
  const table = /\bon table ([^\s;,]+)/.exec(message)?.[1] ?? /Can't find record in '([^']+)'/.exec(message)?.[1] ?? null
  const duplicate = /Duplicate entry '((?:[^']|'')*)' for key '([^']+)'/.exec(message)
  const gtid = /\bGtid (\d+-\d+-\d+)/.exec(message)?.[1] ?? /transaction '([^']+)'/.exec(message)?.[1] ?? null
  const end = /master log ([^\s,]+), end_log_pos (\d+)/.exec(message) ?? /source log ([^\s,]+), end_log_pos (\d+)/.exec(message)
  return {
    table,
    keyName: duplicate?.[2] ?? null,
    keyValue: duplicate?.[1]?.replace(/''/g, "'") ?? null,
    gtid,
    primaryEventEnd: end ? {file: end[1]!, pos: Number(end[2])} : null,
  }
}

/** Builds a ReplicaError from an errno and message, reading what the message names. */
export function toReplicaError(
  errno: number,
  message: string,
  source: ReplicaSource,
  extra: {gtid?: string | null; threadId?: number | null; atMs?: number | null} = {},
): ReplicaError {
  const parsed = parseErrorMessage(message)
  return {
    errno,
    message,
    source,
    gtid: extra.gtid ?? parsed.gtid,
    threadId: extra.threadId ?? null,
    atMs: extra.atMs ?? null,
    table: parsed.table,
    keyName: parsed.keyName,
    keyValue: parsed.keyValue,
  }
}

// "2026-11-27 16:23:40 8 [ERROR] Slave SQL: ..." (MariaDB) or
// "2026-11-27T16:23:40.123456Z 8 [ERROR] [MY-010584] [Repl] Replica SQL for channel '': ..." (MySQL 8).
// MariaDB pads the hour with a space, not a zero ('2026-11-28  0:17:28'); MySQL writes ISO 8601 with T and Z.
const LOG_LINE = /^(\d{4}-\d\d-\d\d(?:T|\s+)\d{1,2}:\d\d:\d\d(?:\.\d+)?Z?)\s+(\d+)\s+\[(\w+)\]\s+(?:\[[^\]]*\]\s+)*(.*)$/
const LOG_TIME = /^(\d{4}-\d\d-\d\d)(?:T|\s+)(\d{1,2}):(\d\d:\d\d(?:\.\d+)?Z?)$/

/** A log line's time in ms (local time unless the line says Z), NaN when it does not parse. */
function logTimeMs(stamp: string): number {
  const parts = LOG_TIME.exec(stamp)
  return parts ? Date.parse(`${parts[1]}T${parts[2]!.padStart(2, '0')}:${parts[3]}`) : Number.NaN
}
const MARIADB_CONNECTION = /^Master '((?:[^']|'')*)': /
const MYSQL_CHANNEL = / for channel '((?:[^']|'')*)'/

/** One replication error line of an error log. */
export interface ErrorLogEntry extends ReplicaError {
  connectionName: string
  /** 1-based line number in the log. */
  line: number
}

/** True when the log records the SQL thread of `connectionName` exiting after its last start. */
export function errorLogShowsStop(text: string, connectionName: string): boolean {
  let stopped = false
  for (const raw of text.split('\n')) {
    const match = LOG_LINE.exec(raw.trimEnd())
    if (!match) continue
    const named = MARIADB_CONNECTION.exec(match[4]!)
    const channel = MYSQL_CHANNEL.exec(match[4]!)
    const name = named ? named[1]!.replace(/''/g, "'") : channel ? channel[1]!.replace(/''/g, "'") : ''
    if (name !== connectionName) continue
    if (/(Slave|Replica) SQL thread initialized/.test(match[4]!)) stopped = false
    else if (/(Slave|Replica) SQL thread exiting/i.test(match[4]!)) stopped = true
  }
  return stopped
}

/**
 * The applier errors of the LAST stop of each connection in an error log: the lines after the last
 * "SQL thread initialized" of that connection. Follow-on errors (1964) are included; IO thread errors
 * (reconnects) are not. Ordered as logged, so the first entry is the earliest.
 */
export function parseErrorLog(text: string): ErrorLogEntry[] {
  const entries: ErrorLogEntry[] = []
  const lines = text.split('\n')
  for (const [index, raw] of lines.entries()) {
    const match = LOG_LINE.exec(raw.trimEnd())
    if (!match) continue
    let body = match[4]!
    const named = MARIADB_CONNECTION.exec(body)
    let connectionName = named ? named[1]!.replace(/''/g, "'") : ''
    if (named) body = body.slice(named[0].length)
    const channel = MYSQL_CHANNEL.exec(body)
    if (channel) connectionName = channel[1]!.replace(/''/g, "'")
    if (/(Slave|Replica) SQL thread initialized/.test(body)) {
      // A new start: forget what this connection logged before.
      for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.connectionName === connectionName) entries.splice(i, 1)
      continue
    }
    if (match[3] !== 'ERROR') continue
    const sql = /^(?:Slave|Replica) SQL(?: for channel '[^']*')?: (.*)$/.exec(body)
    const additional = /^(?:Slave|Replica) \(additional info\): (.*)$/.exec(body)
    const text = sql?.[1] ?? additional?.[1]
    if (text === undefined) continue
    const errno = Number(/(?:Internal MariaDB error code|Error_code|Error_code:)\s*:?\s*(?:MY-0*)?(\d+)\s*$/.exec(text)?.[1] ?? NaN)
    if (!Number.isFinite(errno)) continue
    const atMs = logTimeMs(match[1]!)
    entries.push({
      ...toReplicaError(errno, text, 'error-log', {threadId: Number(match[2]), atMs: Number.isFinite(atMs) ? atMs : null}),
      connectionName,
      line: index + 1,
    })
  }
  return entries
}
