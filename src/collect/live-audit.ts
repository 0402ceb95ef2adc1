// binlog audit's live route end to end: record what a running pipeline's zongji hands on during the
// window (src/collect/live-positions.ts), then audit that range against the source's binlog exactly as the
// positions route does, with the streamer's own filters as the rows subscription.

import {rowsSubscriptionOf} from '../analyze/binlog-audit.js'
import type {InspectorSession} from '../attach/session.js'
import {FerrydiagError} from '../errors.js'
import type {BinlogAuditReport, LiveRoute} from '../model/binlog-audit.js'
import {auditBinlog} from '../mysql/binlog-audit-read.js'
import {parseDsn} from '../mysql/dsn.js'
import {collectLivePositions, pickStream} from './live-positions.js'

export interface LiveAuditOptions {
  source: string
  windowMs: number
  signal: AbortSignal
  onProgress?: (elapsedMs: number, totalMs: number) => void
  verifyChecksums: boolean
  allTransactions: boolean
  listLimit: number
  /** Slots of the target's ring (tests shrink it to exercise an overflow). */
  capacity?: number
}

export async function auditLivePipeline(session: InspectorSession, options: LiveAuditOptions): Promise<BinlogAuditReport> {
  const parsed = parseDsn(options.source)
  const collection = await collectLivePositions(session, {windowMs: options.windowMs, signal: options.signal, onProgress: options.onProgress, capacity: options.capacity})
  const chosen = pickStream(collection, parsed)
  if (chosen === null) {
    const why =
      collection.endedBy === 'target-exited'
        ? 'the target exited before zongji handed on any event'
        : `zongji handed on no binlog event in ${Math.round(collection.windowMs)} ms${collection.endedBy === 'interrupted' ? ' (interrupted)' : ''}`
    throw new FerrydiagError(
      collection.endedBy === 'target-exited' ? 'targetExited' : 'noDeliveries',
      `Nothing to audit at ${session.address}: ${why}`,
      'Run again with a longer --window while the source is being written to (an idle or paused pipeline delivers nothing).',
    )
  }
  const delivered = chosen.delivered
  // Positions the ring could not keep leave a hole: judge only after the last one missed.
  const judgedFrom = collection.lastMissed ?? undefined
  const live: LiveRoute = {
    pid: session.target.pid,
    inspect: session.address,
    streamer: {instances: chosen.ids.length, host: chosen.description.host, port: chosen.description.port, subscription: rowsSubscriptionOf(chosen.description.filters)},
    otherStreamers: [...collection.streams.values()].filter((s) => s !== chosen && s.delivered.records > 0).length,
    windowMs: Math.round(collection.windowMs),
    endedBy: collection.endedBy,
    eventsSeen: collection.eventsSeen,
    records: delivered.records,
    first: delivered.first,
    last: delivered.last,
    missed: collection.missed,
    judgedFrom: judgedFrom ?? null,
  }
  const index = delivered.index(judgedFrom)
  const instances = chosen.ids.length === 1 ? 'zongji' : `${chosen.ids.length} zongji instances in turn`
  const endpoint = chosen.description.host === null ? instances : `${instances} from ${chosen.description.host}:${chosen.description.port ?? '-'}`
  return auditBinlog({
    acks: [],
    delivered: index,
    subscription: live.streamer.subscription,
    live,
    consumer: {kind: 'live-pipeline', name: `${live.pid === null ? live.inspect : `pid ${live.pid}`} (${endpoint})`, acks: delivered.records, gtidAcks: index.gtids.size},
    source: options.source,
    from: judgedFrom,
    verifyChecksums: options.verifyChecksums,
    allTransactions: options.allTransactions,
    listLimit: options.listLimit,
  })
}
