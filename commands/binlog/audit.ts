// `ferrydiag binlog audit`: proves a binlog consumer delivered every event between its first and last
// acknowledgement, above all across file rotations; names lost events, invalid resume points and
// checksum damage. Read-only on every server.

import {Flags} from '@oclif/core'

import {parseFilePosition} from '../../src/analyze/binlog-audit.js'
import {attachTarget, type InspectorSession} from '../../src/attach/index.js'
import {FerrydiagCommand} from '../../src/cli/base-command.js'
import {durationFlag, targetFlags, targetOptionsFromFlags} from '../../src/cli/flags.js'
import {listenForInterrupt} from '../../src/cli/interrupt.js'
import {auditLivePipeline} from '../../src/collect/live-audit.js'
import {EXIT, FerrydiagError} from '../../src/errors.js'
import type {BinlogAuditReport, ConsumerAck, ConsumerDescription} from '../../src/model/binlog-audit.js'
import {auditBinlog} from '../../src/mysql/binlog-audit-read.js'
import {readCheckpointTable, readPositionsFile} from '../../src/mysql/binlog-positions.js'
import {maskDsn, parseDsn} from '../../src/mysql/dsn.js'
import {renderBinlogAuditJson} from '../../src/render/binlog-audit-json.js'
import {renderBinlogAuditText} from '../../src/render/binlog-audit-text.js'
import {createProgressLine} from '../../src/render/progress.js'

/** Flags that give the consumer's positions from a file or table, refused with --pid/--inspect. */
const RECORDED = ['positions', 'checkpoint', 'checkpoint-table', 'binlog-file']

const VERDICT_EXIT: Record<BinlogAuditReport['verdict'], number> = {
  complete: 0,
  lost: EXIT.auditLost,
  'invalid-resume-point': EXIT.auditInvalidResume,
  corrupt: EXIT.auditCorrupt,
}

export default class BinlogAudit extends FerrydiagCommand {
  static summary = 'Prove a binlog consumer lost no event, at file rotation above all.'

  static description = `Consumer positions come from one of: a running Node pipeline (--pid/--inspect with --source: for --window, the position of every binlog event its zongji hands to the pipeline's listeners, through probes installed for the window and removed at its end), a positions log (--positions) or a checkpoint table (--checkpoint/--checkpoint-table). With a running pipeline the range judged is from the first position seen to the last one delivered when the window ends; events after it (still in zongji, the connection or not yet read) are reported as not yet delivered, never as lost.

Reads the source's binlog over its own replication connection (a random high server id, never a pipeline's; needs REPLICATION SLAVE, and BINLOG MONITOR / REPLICATION CLIENT for SHOW BINARY LOGS) or local binlog files (--binlog-file), and compares its transactions with the positions the consumer acknowledged (--positions FILE, or --checkpoint DSN --checkpoint-table db.table). A transaction that changes rows (any, with --all-transactions) counts as delivered when the consumer acknowledged a position inside it or at its end in its own file, or its GTID; between the first and the last delivery every other transaction is lost. Reports per binlog file: size, Rotate event end, last acknowledged position, transactions delivered/lost/pending; the gaps and every lost event (position, type, GTID, table); acknowledged positions that are no event boundary of their file (e.g. a Rotate's position paired with the new file's name) and what a restart from them would skip; with --verify-checksums, events whose CRC32 fails (corrupt) and files whose last event is cut short (torn tail).

Verdict (worst first): corrupt, invalid-resume-point, lost, complete. Exit status: 0 complete, 62 lost, 63 invalid-resume-point, 64 corrupt (the report is printed in every case); errors: 30-35 (source), 60 positions log does not parse, 61 binlog files purged, 79 the target has no zongji, 80 zongji handed on no event during the window, 130/143/129 when a signal ended the window early and 17 when the pipeline exited during it (both print the audit of what was delivered until then; read the verdict from it).

--json prints one document (schema "ferrydiag.binlog-audit", version 2: v2 added consumer kind "live-pipeline" and the "live" object; see src/model/binlog-audit.ts).`

  static examples = [
    '<%= config.bin %> binlog audit --source mysql://repl:secret@10.0.0.5:3306 --positions consumer-positions.log',
    '<%= config.bin %> binlog audit --source mysql://repl:secret@10.0.0.5:3306 --checkpoint mysql://ro:secret@10.0.0.6:3306 --checkpoint-table app.binlog_checkpoint',
    '<%= config.bin %> binlog audit --source mysql://repl:secret@10.0.0.5:3306 --positions consumer-positions.log --verify-checksums',
    '<%= config.bin %> binlog audit --binlog-file /backup/binlog.000042 --verify-checksums',
    '<%= config.bin %> binlog audit --source mysql://repl:secret@10.0.0.5:3306 --pid 4242 --window 30s',
  ]

  static flags = {
    ...targetFlags,
    window: durationFlag({
      name: 'window',
      summary: 'With --pid/--inspect: how long to record the positions the pipeline\'s zongji hands on.',
      defaultMs: 10_000,
    }),
    source: Flags.string({
      summary: 'DSN of the source whose binlog the consumer follows (read over replication).',
      helpValue: 'DSN',
      exclusive: ['binlog-file'],
    }),
    'binlog-file': Flags.string({
      summary: 'Read this local binlog file (or copy) instead of a server; repeat for several, given in any order.',
      description: 'For copies the server would not serve (a backup, a truncated or damaged copy). Files are read in name order.',
      helpValue: 'PATH',
      multiple: true,
      exclusive: ['source'],
    }),
    positions: Flags.string({
      summary: 'Positions log of the consumer: one file:end_pos and/or GTID per line.',
      helpValue: 'FILE',
      exclusive: ['checkpoint'],
    }),
    checkpoint: Flags.string({
      summary: 'DSN of the server holding the consumer\'s checkpoint table (read with one SELECT).',
      helpValue: 'DSN',
      dependsOn: ['checkpoint-table'],
      exclusive: ['positions'],
    }),
    'checkpoint-table': Flags.string({
      summary: 'The checkpoint table, db.table: columns named like binlog_file + binlog_pos, and/or gtid.',
      helpValue: 'DB.TABLE',
      dependsOn: ['checkpoint'],
    }),
    from: Flags.string({
      summary: 'Judge from this position (FILE:POS) instead of the consumer\'s first delivery.',
      helpValue: 'FILE:POS',
    }),
    'verify-checksums': Flags.boolean({
      summary: 'Check every event\'s CRC32 and tell corrupt events from a torn tail.',
      default: false,
    }),
    'all-transactions': Flags.boolean({
      summary: 'Also judge transactions without row events (DDL, statement format); by default only row changes are.',
      default: false,
    }),
    'list-limit': Flags.integer({
      summary: 'List at most this many lost events, gaps and skipped events (totals are always complete).',
      default: 1000,
      min: 1,
    }),
  }

  async run(): Promise<undefined> {
    const {flags} = await this.parse(BinlogAudit)
    if (flags.source === undefined && (flags['binlog-file'] ?? []).length === 0) {
      throw new FerrydiagError('badArgument', 'Nothing to read: give --source DSN or --binlog-file PATH', 'Point --source at the server the consumer follows, or --binlog-file at binlog copies.')
    }
    if (flags.source !== undefined) parseDsn(flags.source)
    if (flags.pid !== undefined || flags.inspect !== undefined) {
      const recorded = RECORDED.filter((name) => flags[name as keyof typeof flags] !== undefined)
      if (recorded.length > 0) {
        throw new FerrydiagError(
          'badArgument',
          `--${flags.pid === undefined ? 'inspect' : 'pid'} cannot be used with --${recorded.join(', --')}: the positions come from the running pipeline or from what the consumer recorded, not both`,
          'Audit the running pipeline (--pid/--inspect with --source) or the recorded positions (--positions/--checkpoint), in two runs.',
        )
      }
      return this.runLive(flags)
    }
    const from = flags.from === undefined ? undefined : parseFilePosition(flags.from)
    if (flags.from !== undefined && from === undefined) {
      throw new FerrydiagError('badArgument', `--from expects FILE:POS, got \`${flags.from}\``, 'e.g. --from binlog.000042:4')
    }
    let acks: ConsumerAck[] = []
    let consumer: ConsumerDescription = {kind: 'none', name: '-', acks: 0, gtidAcks: 0}
    if (flags.positions !== undefined) {
      acks = await readPositionsFile(flags.positions)
      consumer = {kind: 'positions-file', name: flags.positions, acks: acks.length, gtidAcks: acks.filter((a) => a.gtid !== null).length}
    } else if (flags.checkpoint !== undefined) {
      acks = await readCheckpointTable(flags.checkpoint, flags['checkpoint-table']!)
      consumer = {kind: 'checkpoint-table', name: `${flags['checkpoint-table']} on ${maskDsn(flags.checkpoint)}`, acks: acks.length, gtidAcks: acks.filter((a) => a.gtid !== null).length}
    }
    const report = await auditBinlog({
      acks,
      consumer,
      source: flags.source,
      binlogFiles: flags['binlog-file'],
      from,
      verifyChecksums: flags['verify-checksums'],
      allTransactions: flags['all-transactions'],
      listLimit: flags['list-limit'],
    })
    this.print(report)
    return undefined
  }

  private print(report: BinlogAuditReport): void {
    if (this.jsonEnabled()) process.stdout.write(`${renderBinlogAuditJson(report)}\n`)
    else this.log(renderBinlogAuditText(report))
    process.exitCode = VERDICT_EXIT[report.verdict]
  }

  /** The live route: record what a running pipeline's zongji hands on for --window, then audit that range. */
  private async runLive(flags: {source?: string; inspect?: string; pid?: number; 'allow-remote': boolean; window: number; 'verify-checksums': boolean; 'all-transactions': boolean; 'list-limit': number; from?: string}): Promise<undefined> {
    if (flags.source === undefined) {
      throw new FerrydiagError('badArgument', '--pid/--inspect needs --source DSN: the server whose binlog the pipeline streams', 'Add --source mysql://user:password@host:3306 (an account with REPLICATION SLAVE and BINLOG MONITOR).')
    }
    if (flags.from !== undefined) {
      throw new FerrydiagError('badArgument', '--from is for recorded positions; with --pid/--inspect the range starts at the first position seen', 'Drop --from, or audit a positions log with --positions FILE --from FILE:POS.')
    }
    const interrupt = listenForInterrupt()
    const progress = createProgressLine({json: this.jsonEnabled(), label: 'recording'})
    let session: InspectorSession | undefined
    try {
      session = await attachTarget(targetOptionsFromFlags(flags))
      const report = await auditLivePipeline(session, {
        source: flags.source,
        windowMs: flags.window,
        signal: interrupt.signal,
        onProgress: (elapsedMs, totalMs) => progress.update(elapsedMs, totalMs),
        verifyChecksums: flags['verify-checksums'],
        allTransactions: flags['all-transactions'],
        listLimit: flags['list-limit'],
      })
      progress.clear()
      this.print(report)
      // Ctrl-C/SIGTERM/SIGHUP ended the window early: the report of what was seen is printed, the status says so.
      if (report.live?.endedBy === 'interrupted') process.exitCode = interrupt.exitCode
      // The pipeline went away mid-window (as lag does: 17): what it delivered until then was audited.
      if (report.live?.endedBy === 'target-exited') {
        process.exitCode = EXIT.targetExited
        if (!this.jsonEnabled()) this.logToStderr(`ferrydiag binlog audit: the pipeline exited during the window (exit ${EXIT.targetExited}); the report covers what it delivered until then (verdict ${report.verdict})`)
      }
      return undefined
    } finally {
      progress.clear()
      interrupt.dispose()
      await session?.detach()
    }
  }
}
