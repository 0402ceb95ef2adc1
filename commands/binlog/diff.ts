// `ferrydiag binlog diff`: finds transactions that carry the same GTID but different content on
// different servers, by fingerprinting each selected transaction on every server's binlog.

import {Flags} from '@oclif/core'

import {FerrydiagCommand} from '../../src/cli/base-command.js'
import {parseDuration} from '../../src/cli/duration.js'
import {EXIT, FerrydiagError} from '../../src/errors.js'
import type {BinlogDiffReport} from '../../src/model/binlog-diff.js'
import {parseGtidSelection} from '../../src/model/gtid.js'
import {runBinlogDiff, type BinlogDiffRequestSelection} from '../../src/mysql/binlog-diff-run.js'
import {createBinlogDiffProgress} from '../../src/render/binlog-diff-progress.js'
import {renderBinlogDiffText} from '../../src/render/binlog-diff-text.js'

/** --since: an ISO 8601 time (2026-11-27T16:00:00Z) or a duration back from now (90s, 15m, 2h). */
export function parseSince(text: string, nowMs: number): number {
  if (/^\d{4}-\d{2}-\d{2}/.test(text.trim())) {
    const ms = Date.parse(text.trim())
    if (Number.isNaN(ms)) {
      throw new FerrydiagError('badArgument', `Expected --since as an ISO time like 2026-11-27T16:00:00Z or a duration like 15m, got \`${text}\``, 'Pass e.g. --since 15m or --since 2026-11-27T16:00:00Z.')
    }
    return ms
  }
  return nowMs - parseDuration(text, '--since')
}

export default class BinlogDiff extends FerrydiagCommand {
  static summary = 'Find transactions that carry the same GTID but different content on different servers.'

  static description = `Reads the selected transactions from every server's binlog (MariaDB), folds each into a fingerprint as it streams (statements, and per row event its kind, table and row images before and after, hashed), and compares them GTID by GTID. Reports each GTID whose content differs with the tables, the position of the transaction on each server and the first differing row, and a summary: compared, same, different, and GTIDs missing from some servers (listed, not an error).

Select with exactly one of --gtid (GTIDs, lists, ranges: 0-1-100, 0-1-100..0-1-200, 0-1-100..200; a range covers its domain's sequence numbers whatever the server id), --last N (the last N sequence numbers of each domain) or --since (ISO time or a duration back from now). Reading starts at the binlog file whose Gtid_list precedes the selection and stops at each server's binlog end as of the start. Read-only: the accounts need REPLICATION SLAVE, REPLICATION CLIENT (BINLOG MONITOR) and SELECT.

Exit status: 0 with the report (whatever it found), 74 with --exit-code when some GTID differs; 70 malformed GTID, 71 purged binlog, 72 nothing selected on any server, 73 undecodable binlog, 30-35 connection, grant and configuration problems (see the README).

--json prints one document (schema "ferrydiag.binlog-diff", version 1).`

  static examples = [
    '<%= config.bin %> binlog diff --servers mysql://repl:secret@db1:3306,mysql://repl:secret@db2:3306 --last 1000',
    '<%= config.bin %> binlog diff --servers mysql://repl:secret@db1:3306,mysql://repl:secret@db2:3306 --gtid 0-1-295533',
    '<%= config.bin %> binlog diff --servers mysql://repl:secret@db1:3306,mysql://repl:secret@db2:3306 --gtid 0-1-1000..2000 --json',
    '<%= config.bin %> binlog diff --servers mysql://repl:secret@db1:3306,mysql://repl:secret@db2:3306 --since 15m --exit-code',
  ]

  static flags = {
    servers: Flags.string({
      summary: 'Two or more server DSNs, comma-separated (or the flag repeated).',
      helpValue: 'DSN,DSN[,DSN...]',
      required: true,
      multiple: true,
      delimiter: ',',
    }),
    gtid: Flags.string({summary: 'GTIDs, lists or ranges to compare: 0-1-100, 0-1-100,0-2-7, 0-1-100..0-1-200 or 0-1-100..200.', helpValue: 'GTIDS', exclusive: ['last', 'since']}),
    last: Flags.integer({summary: 'Compare the last N transactions of each GTID domain.', helpValue: 'N', min: 1, exclusive: ['gtid', 'since']}),
    since: Flags.string({summary: 'Compare transactions logged since this time: ISO 8601 or a duration back from now (15m, 2h).', helpValue: 'TIME', exclusive: ['gtid', 'last']}),
    details: Flags.integer({summary: 'Divergent GTIDs read again in full to show their first differing row.', default: 20, min: 0, helpValue: 'N'}),
    'exit-code': Flags.boolean({summary: 'Exit 74 when some GTID carries different content (like git diff --exit-code).', default: false}),
  }

  async run(): Promise<BinlogDiffReport> {
    const {flags} = await this.parse(BinlogDiff)
    let selection: BinlogDiffRequestSelection
    if (flags.gtid !== undefined) selection = {mode: 'gtid', selection: parseGtidSelection(flags.gtid)}
    else if (flags.last !== undefined) selection = {mode: 'last', transactions: flags.last}
    else if (flags.since !== undefined) selection = {mode: 'since', sinceMs: parseSince(flags.since, Date.now()), text: flags.since}
    else throw new FerrydiagError('badArgument', 'binlog diff needs one of --gtid, --last or --since', 'Pass e.g. --last 1000 or --gtid 0-1-100..0-1-200.')

    const progress = createBinlogDiffProgress({servers: flags.servers.length, json: this.jsonEnabled()})
    let report: BinlogDiffReport
    try {
      report = await runBinlogDiff({
        dsns: flags.servers,
        selection,
        details: flags.details,
        onProgress: (server, transactionsRead, at) => progress.update(server, {transactionsRead, at}),
      })
    } finally {
      progress.clear()
    }
    if (!this.jsonEnabled()) this.log(renderBinlogDiffText(report))
    if (flags['exit-code'] && report.summary.different > 0) process.exitCode = EXIT.binlogDiverged
    return report
  }
}
