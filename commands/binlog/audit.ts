// `ferrydiag binlog audit`: proves a binlog consumer delivered every event between its first and last
// acknowledgement, above all across file rotations; names lost events, invalid resume points and
// checksum damage. Read-only on every server.

import {Flags} from '@oclif/core'

import {parseFilePosition} from '../../src/analyze/binlog-audit.js'
import {FerrydiagCommand} from '../../src/cli/base-command.js'
import {EXIT, FerrydiagError} from '../../src/errors.js'
import type {BinlogAuditReport, ConsumerAck, ConsumerDescription} from '../../src/model/binlog-audit.js'
import {auditBinlog} from '../../src/mysql/binlog-audit-read.js'
import {readCheckpointTable, readPositionsFile} from '../../src/mysql/binlog-positions.js'
import {maskDsn, parseDsn} from '../../src/mysql/dsn.js'
import {renderBinlogAuditJson} from '../../src/render/binlog-audit-json.js'
import {renderBinlogAuditText} from '../../src/render/binlog-audit-text.js'

const VERDICT_EXIT: Record<BinlogAuditReport['verdict'], number> = {
  complete: 0,
  lost: EXIT.auditLost,
  'invalid-resume-point': EXIT.auditInvalidResume,
  corrupt: EXIT.auditCorrupt,
}

export default class BinlogAudit extends FerrydiagCommand {
  static summary = 'Prove a binlog consumer lost no event, at file rotation above all.'

  static description = `Reads the source's binlog over its own replication connection (a random high server id, never a pipeline's; needs REPLICATION SLAVE, and BINLOG MONITOR / REPLICATION CLIENT for SHOW BINARY LOGS) or local binlog files (--binlog-file), and compares its transactions with the positions the consumer acknowledged (--positions FILE, or --checkpoint DSN --checkpoint-table db.table). A transaction that changes rows (any, with --all-transactions) counts as delivered when the consumer acknowledged a position inside it or at its end in its own file, or its GTID; between the first and the last delivery every other transaction is lost. Reports per binlog file: size, Rotate event end, last acknowledged position, transactions delivered/lost/pending; the gaps and every lost event (position, type, GTID, table); acknowledged positions that are no event boundary of their file (e.g. a Rotate's position paired with the new file's name) and what a restart from them would skip; with --verify-checksums, events whose CRC32 fails (corrupt) and files whose last event is cut short (torn tail).

Verdict (worst first): corrupt, invalid-resume-point, lost, complete. Exit status: 0 complete, 62 lost, 63 invalid-resume-point, 64 corrupt (the report is printed in every case); errors: 30-35 (source), 60 positions log does not parse, 61 binlog files purged.

--json prints one document (schema "ferrydiag.binlog-audit", version 1; see src/model/binlog-audit.ts).`

  static examples = [
    '<%= config.bin %> binlog audit --source mysql://repl:secret@10.0.0.5:3306 --positions consumer-positions.log',
    '<%= config.bin %> binlog audit --source mysql://repl:secret@10.0.0.5:3306 --checkpoint mysql://ro:secret@10.0.0.6:3306 --checkpoint-table app.binlog_checkpoint',
    '<%= config.bin %> binlog audit --source mysql://repl:secret@10.0.0.5:3306 --positions consumer-positions.log --verify-checksums',
    '<%= config.bin %> binlog audit --binlog-file /backup/binlog.000042 --verify-checksums',
  ]

  static flags = {
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
    if (this.jsonEnabled()) process.stdout.write(`${renderBinlogAuditJson(report)}\n`)
    else this.log(renderBinlogAuditText(report))
    process.exitCode = VERDICT_EXIT[report.verdict]
    return undefined
  }
}
