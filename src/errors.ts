// The one error type library code throws for a user-facing problem: a stable code, a distinct exit
// status and a suggestion. Commands turn it into oclif's one-line error; nothing here exits.

/** Exit statuses, documented in the README. 1 and 2 are oclif's own (failure, usage). */
export const EXIT = {
  usage: 2,
  connectRefused: 10, // nothing listening on the inspector port
  notInspector: 11, // something answers but it is not a Node inspector
  noSuchProcess: 12, // --pid names no process
  notNode: 13, // --pid is not a Node process
  signalDenied: 14, // no permission to signal the pid
  ownSigusr1: 15, // the process handles SIGUSR1 itself; the inspector never opened
  remoteRefused: 16, // non-loopback host without --allow-remote
  targetExited: 17, // the target went away while attached
  unknownSnapshot: 18, // agent snapshot of a version this CLI does not know
  evaluateTimeout: 19, // an evaluation exceeded its time budget
  noAgent: 20, // no agent in the target and injection impossible or declined
  badDuration: 21, // malformed, zero or negative duration
  mysqlUnreachable: 30,
  mysqlAuth: 31,
  mysqlGrant: 32, // missing privilege (named in the message)
  mysqlConfig: 33, // e.g. binlog not in ROW format
  badDsn: 34,
  mysqlLost: 35,
  tooFewSamples: 40,
  badModel: 41, // fitted values negative or non-finite
  noSuchTable: 42,
  heapDeclined: 43,
  outputUnwritable: 44,
  badArgument: 45,
  inspectorPortBusy: 46, // --pid: the port SIGUSR1 would open is held by another process
  sessionBusy: 47, // another ferrydiag session holds the target's lease
  heapTooLarge: 48, // --heap: estimate above the --heap-max ceiling, or more than the host's free memory
  heapTimeout: 49, // --heap: the snapshot outlasted --heap-timeout (ferrydiag still let it finish)
  probesPresent: 50, // probes of another ferrydiag session are installed in the target (never installed twice)
  badPositions: 60, // binlog audit: a positions log or checkpoint that does not parse (line named)
  binlogPurged: 61, // binlog audit / binlog diff: a binlog file the range needs is no longer on the server (named)
  auditLost: 62, // binlog audit verdict lost (the report is printed)
  auditInvalidResume: 63, // binlog audit verdict invalid-resume-point (the report is printed)
  auditCorrupt: 64, // binlog audit verdict corrupt (the report is printed)
  notReplica: 65, // replica: the server has no replication connection configured
  noSuchConnection: 66, // replica --connection names no connection on the replica
  unreadableErrorLog: 67, // replica --error-log: the file cannot be read
  badGtid: 70, // malformed GTID, GTID list or range
  noTransactions: 72, // the selection matched no transaction on any server
  binlogUnreadable: 73, // a server's binlog could not be decoded (e.g. a table's metadata is gone)
  binlogDiverged: 74, // binlog diff --exit-code: some GTID carries different content on different servers
  noZongji: 79, // binlog audit --pid/--inspect: the target has no zongji the probes recognise (nothing installed)
  noDeliveries: 80, // binlog audit --pid/--inspect: zongji handed on no event during the window (nothing to audit)
} as const

export type ExitName = keyof typeof EXIT

export class FerrydiagError extends Error {
  readonly code: ExitName
  readonly exit: number
  readonly suggestion: string

  constructor(code: ExitName, message: string, suggestion: string, options?: {cause?: unknown}) {
    super(message, options)
    this.name = 'FerrydiagError'
    this.code = code
    this.exit = EXIT[code]
    this.suggestion = suggestion
  }
}

export function isFerrydiagError(error: unknown): error is FerrydiagError {
  return error instanceof FerrydiagError
}
