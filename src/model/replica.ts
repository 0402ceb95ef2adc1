// The replica dump: what `ferrydiag replica` reads from a replica (and optionally its primary) and what it
// concludes. Plain data with units in the names; the same objects are the --json document
// (schema "ferrydiag.replica", version 1) and the input of the text renderer.

export const REPLICA_SCHEMA = 'ferrydiag.replica'
export const REPLICA_SCHEMA_VERSION = 1

/** Where a reading came from (one vocabulary for every field that can come from several places). */
export type ReplicaSource =
  | 'slave-status' // SHOW ALL SLAVES STATUS / SHOW REPLICA STATUS
  | 'processlist' // information_schema.PROCESSLIST
  | 'performance-schema' // performance_schema.replication_* tables
  | 'error-log' // the replica's error log (--error-log)
  | 'primary-binlog' // the primary's binlog (--primary)
  | 'inferred' // derived, e.g. the transaction after the executed GTID position

/** One replication error as some source reported it. */
export interface ReplicaError {
  errno: number
  message: string
  source: ReplicaSource
  /** GTID of the transaction the error is about, when the source names it. */
  gtid: string | null
  /** Processlist id of the thread that reported it, when known. */
  threadId: number | null
  /** Epoch ms (error log and P_S have 1-second resolution); null when unknown. */
  atMs: number | null
  /** Table (`schema.table`) and key named by the message, when it names them. */
  table: string | null
  keyName: string | null
  keyValue: string | null
}

/** A binlog coordinate on the primary: file + byte offset. */
export interface BinlogCoordinate {
  file: string
  pos: number
}

export type IoRunning = 'yes' | 'no' | 'connecting'

/** The receiving (IO) thread of one connection. */
export interface ReplicaIoThread {
  running: IoRunning
  state: string
  processlistId: number | null
  primaryHost: string
  primaryPort: number
  /** Master_Server_Id: the primary's server id (tells a multi-source connection's GTID domains apart). */
  primaryServerId: number | null
  /** Last event received from the primary (Master_Log_File / Read_Master_Log_Pos). */
  received: BinlogCoordinate
  /** GTID position received (MariaDB Gtid_IO_Pos; MySQL Retrieved_Gtid_Set). */
  receivedGtid: string
  /** Seconds_Behind_Master; null when the server reports NULL (SQL thread stopped or not connected). */
  secondsBehind: number | null
  lastError: ReplicaError | null
}

/** The SQL thread (the coordinator when parallel replication is on) of one connection. */
export interface ReplicaSqlThread {
  running: boolean
  state: string
  processlistId: number | null
  /** Primary coordinate of the last executed transaction (Relay_Master_Log_File / Exec_Master_Log_Pos). */
  executed: BinlogCoordinate
  /** GTID position executed (MariaDB: @@gtid_slave_pos restricted to this connection's domains when known). */
  executedGtid: string
  relayLog: BinlogCoordinate
  /** MASTER_DELAY and what is left of it, seconds. */
  delaySec: number
  remainingDelaySec: number | null
  retriedTransactions: number | null
  lastError: ReplicaError | null
}

/** One parallel applier (MariaDB slave worker / MySQL applier worker). */
export interface ReplicaWorker {
  /** 1-based position in performance_schema (or processlist order when P_S is off). */
  index: number
  /** Connection the worker serves when known (P_S CHANNEL_NAME); null: MariaDB's pool is shared. */
  connectionName: string | null
  processlistId: number | null
  /** Processlist STATE, e.g. "Waiting for prior transaction to commit"; null once the thread is gone. */
  state: string | null
  /** Processlist INFO (statement being applied), when any. */
  info: string | null
  /** Seconds in the current state (processlist TIME). */
  stateSec: number | null
  /** P_S LAST_SEEN_TRANSACTION (MariaDB) / APPLYING or LAST_APPLIED_TRANSACTION (MySQL). */
  lastSeenGtid: string | null
  applyingGtid: string | null
  /** Retries of its last transaction (optimistic mode), P_S LAST_TRANS_RETRY_COUNT. */
  retries: number | null
  lastError: ReplicaError | null
  /** Where this worker's fields came from. */
  sources: ReplicaSource[]
}

export interface ReplicaConnection {
  /** Connection name ('' for the default one; MySQL channel name). */
  name: string
  io: ReplicaIoThread
  sql: ReplicaSqlThread
  /** Parallel mode of the connection (MariaDB Parallel_Mode), '' when unknown. */
  parallelMode: string
  usingGtid: string
}

export interface ReplicaSettings {
  flavor: 'mariadb' | 'mysql'
  version: string
  serverId: number
  /** @@slave_parallel_threads (MariaDB) / @@replica_parallel_workers (MySQL). */
  parallelThreads: number
  parallelMode: string
  performanceSchema: boolean
  gtidSlavePos: string
  gtidCurrentPos: string
  /** Rows of mysql.gtid_slave_pos: the last applied GTID per domain (MariaDB). */
  gtidSlavePosTable: Array<{domainId: number; serverId: number; seqNo: number}>
  /** Slave_* global status counters (e.g. Slave_retried_transactions). */
  status: Record<string, string>
}

/** One reading of the replica at one instant. */
export interface ReplicaSnapshot {
  takenAtMs: number
  settings: ReplicaSettings
  connections: ReplicaConnection[]
  /** Every worker row seen (MariaDB workers are one pool shared by all connections). */
  workers: ReplicaWorker[]
  /** What could not be read, and why (missing privilege, P_S off, ...). */
  unavailable: Array<{what: string; reason: string}>
}

/** A row event of the failing transaction, read from the primary's binlog. */
export interface BinlogRowEvent {
  kind: 'write' | 'update' | 'delete'
  table: string
  /** Row images: after for write, before+after for update, before for delete. */
  rows: Array<{before?: Record<string, unknown>; after?: Record<string, unknown>}>
}

/** The failing transaction as the primary wrote it. */
export interface PrimaryTransaction {
  gtid: string
  coordinate: BinlogCoordinate | null
  events: BinlogRowEvent[]
  /** Event counts by type, including those without row images (e.g. Query for DDL). */
  eventTypes: string[]
}

/** A row read by primary key on each server. */
export interface KeyedRow {
  table: string
  key: Record<string, unknown>
  replica: Record<string, unknown> | null | 'unavailable'
  primary: Record<string, unknown> | null | 'unavailable'
}

export type PrimaryStatus =
  | {state: 'not-given'}
  | {state: 'read'; version: string; serverId: number; gtidBinlogPos: string}
  | {state: 'unreachable'; reason: string}

/** Threads' samples taken by --watch before the SQL thread stopped. */
export interface ReplicaWatch {
  intervalMs: number
  samples: number
  /** True when the SQL thread was seen stopping during the watch. */
  stopped: boolean
  /** The last snapshot taken while the SQL thread still ran (its workers vanish once it stops). */
  lastRunning: ReplicaSnapshot | null
}

/** One fact the analysis established. Closed: renderers word each code. */
export type ReplicaFinding =
  | {
      code: 'first-failure'
      connectionName: string
      error: ReplicaError
      /** How the GTID was established. */
      gtidSource: ReplicaSource | null
      /** The worker that failed, by index in snapshot.workers (1-based), when known. */
      workerIndex: number | null
      /** Follow-on errors (1964 and the like) caused by it. */
      followOn: ReplicaError[]
      transaction: PrimaryTransaction | null
      rows: KeyedRow[]
    }
  | {code: 'io-error'; connectionName: string; error: ReplicaError}
  | {code: 'stopped-no-error'; connectionName: string; thread: 'io' | 'sql'}
  | {
      code: 'lagging'
      connectionName: string
      secondsBehind: number | null
      /** Bytes of the primary's binlog received but not executed, when both are in the same file. */
      bytesBehind: number | null
      /** Transactions received but not executed, per GTID domain, summed. */
      transactionsBehind: number | null
      /** Growth between the first and last reading; positive = falling further behind. */
      transactionsBehindGrowth: number | null
      /** Transactions received and applied between the first and last reading (null: one reading). */
      receivedInWindow: number | null
      appliedInWindow: number | null
      /** Why it counts as lagging. */
      reason: 'seconds-behind' | 'apply-stalled' | 'apply-slower-than-arrival'
      /** Distinct states the workers/SQL thread were waiting in. */
      waits: string[]
    }
  | {code: 'healthy'; connectionName: string}

/** Positions of one connection, in the order they must hold: received >= worker last seen >= executed. */
export interface PositionLine {
  connectionName: string
  receivedGtid: string
  workerGtids: Array<{workerIndex: number; gtid: string}>
  executedGtid: string
  /** Transactions between executed and received, summed over domains; null when not comparable. */
  transactionsBehind: number | null
  bytesBehind: number | null
}

/** The whole `ferrydiag replica` result. */
export interface ReplicaReport {
  schema: typeof REPLICA_SCHEMA
  version: typeof REPLICA_SCHEMA_VERSION
  /** Masked DSNs. */
  replica: string
  primary: PrimaryStatus & {dsn: string | null}
  snapshot: ReplicaSnapshot
  watch: ReplicaWatch | null
  /** The error log read (--error-log), if any, and how many replication errors it held. */
  errorLog: {path: string; errors: number} | null
  positions: PositionLine[]
  findings: ReplicaFinding[]
}
