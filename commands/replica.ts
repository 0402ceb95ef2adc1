// `ferrydiag replica`: a goroutine-style dump of a replica's replication threads (IO, SQL/coordinator,
// parallel workers) with their positions on one line, and the first failure named.

import {Flags} from '@oclif/core'

import {FerrydiagCommand} from '../src/cli/base-command.js'
import {durationFlag} from '../src/cli/flags.js'
import {listenForInterrupt} from '../src/cli/interrupt.js'
import {checkOutputWritable, writeOutputFile} from '../src/cli/output-file.js'
import {parseDsn} from '../src/mysql/dsn.js'
import {collectReplicaReport} from '../src/mysql/replica-collect.js'
import {createProgressLine} from '../src/render/progress.js'
import {renderReplicaJson} from '../src/render/replica-json.js'
import {renderReplicaText} from '../src/render/replica-text.js'

export default class Replica extends FerrydiagCommand {
  static summary = "Dump a replica's replication threads and name the first failure."

  static description = `Reads the replica (read-only, one connection): SHOW ALL SLAVES STATUS (MySQL: SHOW REPLICA STATUS), the replication threads in the process list, the GTID positions, the parallel settings and, when performance_schema is on, its replication_applier_* tables. Prints one block per thread (IO, SQL/coordinator, each parallel worker), the positions on one line (received >= each worker's last seen >= executed), then findings: the first failure (the earliest error; follow-on errors such as 1964 attached to it), lag with what the threads wait on, or healthy.

Without --watch the replica is read twice, --duration apart, to see whether the distance between positions grows. With --watch it is read every --interval until an SQL thread stops (at most --duration), and the dump is taken at that moment, with the workers as they were just before (they leave the process list when the SQL thread stops).

--primary adds the failing transaction as the primary wrote it (SHOW BINLOG EVENTS, and its row images from a short binlog stream: needs REPLICATION SLAVE there) and, for key errors (1062 duplicate key, 1032 row not found), the row on both servers by primary key. An unreachable primary is reported and the dump printed without its side. --error-log reads the replica's error log (a local file), where MariaDB records every worker's error and its GTID.

The replica account needs REPLICA MONITOR (alias SLAVE MONITOR; MySQL: REPLICATION CLIENT), PROCESS to see the worker threads, and SELECT on mysql.gtid_slave_pos and performance_schema.

Exit status: 0 when the dump was printed (read the findings from --json), 65 when the server is not a replica, 66 when --connection names no connection, 67 when --error-log cannot be read, 30-35 for the replica's connection and privileges.

--json prints one document (schema "ferrydiag.replica", version 1), described in the README.`

  static examples = [
    '<%= config.bin %> replica --replica mysql://monitor:secret@10.0.0.6:3306',
    '<%= config.bin %> replica --replica mysql://monitor:secret@10.0.0.6:3306 --primary mysql://repl:secret@10.0.0.5:3306',
    '<%= config.bin %> replica --replica mysql://monitor:secret@10.0.0.6:3306 --watch --output stop.txt',
    '<%= config.bin %> replica --replica mysql://monitor:secret@10.0.0.6:3306 --error-log /var/log/mysql/error.log --json',
  ]

  static flags = {
    replica: Flags.string({
      summary: 'DSN of the replica to dump.',
      description: "mysql://user:password@host:3306 (or Go's user:password@tcp(host:3306)/).",
      helpValue: 'DSN',
      required: true,
    }),
    primary: Flags.string({
      summary: "DSN of the primary, for the failing transaction's events and the rows on the primary.",
      helpValue: 'DSN',
    }),
    connection: Flags.string({
      summary: "Only this replication connection (multi-source; '' is the default one).",
      helpValue: 'NAME',
    }),
    watch: Flags.boolean({
      summary: 'Read the replica every --interval until an SQL thread stops (at most --duration), then dump.',
      default: false,
    }),
    interval: durationFlag({name: 'interval', summary: 'Time between readings with --watch.', defaultMs: 200}),
    duration: durationFlag({
      name: 'duration',
      summary: 'Without --watch: time between the two readings; with --watch: the longest watch (default 10m).',
    }),
    'lag-threshold': durationFlag({name: 'lag-threshold', summary: 'Seconds behind the primary from which a running replica is reported lagging.', defaultMs: 5000}),
    'error-log': Flags.string({
      summary: "The replica's error log file, for every worker's error and GTID (follow-on errors too).",
      helpValue: 'FILE',
    }),
    output: Flags.string({
      char: 'o',
      summary: 'Write the dump to FILE instead of stdout (checked before connecting).',
      helpValue: 'FILE',
    }),
  }

  // Prints its own JSON (plain JSON.stringify, also into --output) and so returns nothing for oclif to print.
  async run(): Promise<void> {
    const {flags} = await this.parse(Replica)
    // Every argument is checked before connecting anywhere, so a typo costs nothing.
    const replica = parseDsn(flags.replica)
    const primary = flags.primary === undefined ? null : parseDsn(flags.primary)
    if (flags.output !== undefined) checkOutputWritable(flags.output, '--output')
    const json = this.jsonEnabled()
    const durationMs = flags.duration ?? (flags.watch ? 600_000 : 1000)
    const interrupt = listenForInterrupt()
    const progress = createProgressLine({json: json || !flags.watch, label: 'watching'})
    try {
      const report = await collectReplicaReport({
        replica,
        primary,
        connectionName: flags.connection,
        watch: flags.watch,
        intervalMs: flags.interval,
        durationMs,
        errorLogPath: flags['error-log'],
        lagThresholdSec: flags['lag-threshold'] / 1000,
        signal: interrupt.signal,
        onSample: (samples, elapsedMs, sqlRunning) => {
          // One line when the watch is under way, so a script (or a test) can start the load then.
          if (samples === 1) {
            // process.stderr, not logToStderr: oclif silences that under --json, and this line is for scripts.
            process.stderr.write(
              sqlRunning
                ? `ferrydiag replica: watching ${replica.masked} every ${flags.interval} ms until an SQL thread stops\n`
                : `ferrydiag replica: an SQL thread of ${replica.masked} is already stopped; dumping now\n`,
            )
          }
          progress.update(elapsedMs, durationMs)
        },
      })
      progress.clear()
      const text = json ? renderReplicaJson(report) : renderReplicaText(report)
      if (flags.output !== undefined) {
        writeOutputFile(flags.output, text, '--output', 'the dump was taken')
        if (!json) this.logToStderr(`wrote the replica dump to ${flags.output}`)
      } else if (json) process.stdout.write(text)
      else this.log(text.trimEnd())
    } finally {
      progress.clear()
      interrupt.dispose()
    }
  }
}
