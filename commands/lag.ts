// `ferrydiag lag`: samples a running pipeline (agent snapshots and/or the source's binlog end) over a
// window and says whether it is stuck, falling behind, healthy or idle, with the figures behind it.

import {Flags} from '@oclif/core'

import {DEFAULT_STUCK_AFTER_MS} from '../src/analyze/stacks-findings.js'
import {nothingMoved, stuckAfterForWindow} from '../src/analyze/lag-stuck-waits.js'
import {attachTarget, isLoopbackHost, type InspectorSession} from '../src/attach/index.js'
import {createSourceMapper} from '../src/attach/source-maps.js'
import {FerrydiagCommand} from '../src/cli/base-command.js'
import {listenForInterrupt, receivedSignal, type Interrupt} from '../src/cli/interrupt.js'
import {durationFlag, targetFlags, targetOptionsFromFlags} from '../src/cli/flags.js'
import {heapCostFlags, heapGate, heapMaxBytesFromFlag} from '../src/cli/heap-route.js'
import {collectStuckWaits} from '../src/collect/lag-stuck-waits.js'
import {assessWindow, type LagResultContext} from '../src/collect/lag-result.js'
import {chooseAgentIntervalMs, sampleWindow, type SampledWindow} from '../src/collect/sample-window.js'
import {watchWindow} from '../src/collect/watch-window.js'
import {choosePipelineReader, removeProbes, type PipelineReader} from '../src/collect/probe-session.js'
import {EXIT} from '../src/errors.js'
import type {LagAssessment, LagResult} from '../src/model/lag-result.js'
import {parseDsn} from '../src/mysql/dsn.js'
import {wordLagResult} from '../src/render/lag-wording.js'
import {renderLagText} from '../src/render/lag-text.js'
import {createLagWatchScreen} from '../src/render/lag-watch.js'
import {createProgressLine} from '../src/render/progress.js'

export default class Lag extends FerrydiagCommand {
  static summary = 'Measure binlog lag over a window and say whether the pipeline is stuck, falling behind, healthy or idle.'

  static description = `Samples the agent inside the pipeline (about ten times per --duration, every 250–500 ms; every 1 s with --watch) and, with --source, the source's binlog end (every 1 s) and its row events (a binlog stream under a random high server id) for --duration, then reports: streamer lag (liveness and transaction) and how fast it grows, binlog bytes behind, events/s through each buffer and its fill, each stage's busy / idle / back-pressured ms per second, events at risk, a catch-up estimate, and a verdict with its evidence.

Without the agent's stages (the pipeline does not use ferrydiag/runtime), probes are installed for the window in zongji (binlog position, rows, event timestamps, paused connection) and mysql2 (write time, rows per write or per BEGIN..COMMIT) and removed at the end (--no-probes: off). When nothing reports the pipeline's progress the verdict is unknown, with what was missing and the flag or command that would measure it; with --source alone (no --inspect/--pid) nothing is attached and only the source is measured. A source the pipeline registers itself (e.g. the simulator's binlog) is used when --source is not given.

When the window ends with nothing moving (stuck, or no stage handled an item), stacks' analysis names the stuck waits with their await sites: from the agent's records when they name them, else from a heap snapshot, taken only with --heap (the estimate is printed; a terminal is asked, a script needs --yes; refused above --heap-max). The verdict is given either way. A healthy or idle pipeline never takes one.

Exit status: 0 after a full window (whatever the verdict; read it from --json), 130 when Ctrl-C ended the window early (what was measured is still printed), 17 when the target exited mid-window and 35 when the source was lost mid-window (both also print what was measured). In --watch, Ctrl-C is the normal end and exits 0.

--json prints one document (schema "ferrydiag.lag", version 2): every LagReport field, plus process, window (with endedBy and problems) and positions. With --watch --json, one such document per line, every second.`

  static examples = [
    '<%= config.bin %> lag --inspect 127.0.0.1:9229',
    '<%= config.bin %> lag --pid 4242 --source mysql://monitor:secret@10.0.0.5:3306 --duration 10s',
    '<%= config.bin %> lag --source mysql://monitor:secret@10.0.0.5:3306',
    '<%= config.bin %> lag --inspect 127.0.0.1:9229 --watch',
    '<%= config.bin %> lag --inspect 127.0.0.1:9229 --json',
    '<%= config.bin %> lag --pid 4242 --heap --yes',
  ]

  static flags = {
    ...targetFlags,
    source: Flags.string({
      summary: 'DSN of the source MySQL/MariaDB, to measure its binlog end and bytes behind.',
      description:
        'mysql://user:password@host:3306 (or Go\'s user:password@tcp(host:3306)/). The account needs REPLICATION CLIENT (BINLOG MONITOR on MariaDB 10.5+); with REPLICATION SLAVE too, the source\'s rows/s are counted from its binlog (otherwise reported as not measured).',
      helpValue: 'DSN',
    }),
    duration: durationFlag({
      name: 'duration',
      summary: 'How long to sample before the verdict (with --watch: the sliding window).',
      defaultMs: 5000,
    }),
    probes: Flags.boolean({
      summary: 'Probe zongji and mysql2 inside a pipeline that does not use ferrydiag/runtime (removed again at the end); --no-probes turns this off.',
      default: true,
      allowNo: true,
    }),
    watch: Flags.boolean({
      summary: 'Redraw a compact table every second over the last --duration of samples, until Ctrl-C.',
      default: false,
    }),
    heap: Flags.boolean({
      summary: "When the window ends with nothing moving, read a V8 heap snapshot to name the stuck waits (stops the target while it is written; the cost is estimated and confirmed first).",
      default: false,
    }),
    ...heapCostFlags,
  }

  async run(): Promise<LagResult | undefined> {
    const {flags} = await this.parse(Lag)
    // Check the DSN and the ceiling before touching the target, so a typo costs nothing.
    if (flags.source !== undefined) parseDsn(flags.source)
    const heapMaxBytes = heapMaxBytesFromFlag(flags['heap-max'])
    const attach = flags.inspect !== undefined || flags.pid !== undefined || flags.source === undefined
    const json = this.jsonEnabled()

    const interrupt = listenForInterrupt()
    let session: InspectorSession | undefined
    let reader: PipelineReader | undefined
    const progress = createProgressLine({json: json || flags.watch, label: 'sampling'})
    try {
      if (attach) {
        session = await attachTarget({...targetOptionsFromFlags(flags)})
        reader = await choosePipelineReader(session, {probes: flags.probes})
      }
      const context: LagResultContext = {
        probes: reader?.probes ?? null,
        requestedMs: flags.duration,
        inspect: session?.address ?? null,
        pid: session?.target.pid ?? null,
        attached: session !== undefined,
        attachedVia: session?.target.via ?? null,
      }
      if (flags.watch) {
        const screen = createLagWatchScreen({json})
        const window = await watchWindow({
          session,
          readSnapshot: reader?.readSnapshot,
          sourceDsn: flags.source,
          windowMs: flags.duration,
          context,
          signal: interrupt.signal,
          onResult: (result) => screen.draw(result),
        })
        this.setExitStatus(window, true, interrupt)
        return undefined
      }
      const window = await sampleWindow({
        session,
        readSnapshot: reader?.readSnapshot,
        sourceDsn: flags.source,
        durationMs: flags.duration,
        intervalMs: chooseAgentIntervalMs(flags.duration),
        signal: interrupt.signal,
        onProgress: (elapsedMs, totalMs) => progress.update(elapsedMs, totalMs),
      })
      progress.clear()
      let result = assessWindow(window, context)
      if (session && window.endedBy === 'duration' && nothingMoved(result)) {
        // The probes come out first: the target is read as it was, and they do not appear in its stacks.
        if (reader?.mustRemove) {
          await removeProbes(session)
          reader = {...reader, mustRemove: false}
        }
        result = {...result, stuckWaits: await this.readStuckWaits(session, reader, result, flags, heapMaxBytes)}
      }
      if (!json) this.log(renderLagText(result).trimEnd())
      this.setExitStatus(window, false, interrupt)
      return wordLagResult(result)
    } finally {
      progress.clear()
      interrupt.dispose()
      if (session && reader?.mustRemove) await removeProbes(session)
      await session?.detach()
    }
  }

  /**
   * The stuck waits behind a window in which nothing moved: the agent's records when the pipeline is built
   * on ferrydiag/runtime, else a heap snapshot under stacks' cost rules (--heap with --yes or a terminal's
   * "y"; without --heap, offered at a terminal only).
   */
  private async readStuckWaits(
    session: InspectorSession,
    reader: PipelineReader | undefined,
    result: LagAssessment,
    flags: {heap: boolean; yes: boolean; observe: number; 'heap-timeout'?: number; 'allow-remote': boolean},
    heapMaxBytes: number,
  ): Promise<NonNullable<LagAssessment['stuckWaits']>> {
    const gate = heapGate(session, {heapMaxBytes, yes: flags.yes})
    // Only a target on this machine has its files (and source maps) on our disk.
    const mapper = !flags['allow-remote'] && isLoopbackHost(session.target.host) ? createSourceMapper() : null
    // The window is the evidence: nothing moved for its whole length.
    const stillMs = result.window.durationMs
    return collectStuckWaits(session, {
      agentRecords: reader !== undefined && reader.readSnapshot === undefined,
      heap: flags.heap,
      confirmHeap: gate.confirmHeap,
      offerHeap: (estimate) => gate.offerHeap(estimate, 'Nothing moved in the window; a heap snapshot would name the stuck waits. '),
      stuckAfterMs: stuckAfterForWindow(DEFAULT_STUCK_AFTER_MS, stillMs),
      observeMs: flags.observe,
      heapTimeoutMs: flags['heap-timeout'],
      mapLocation: mapper ? (frame) => mapper.mapFrame(frame) : undefined,
    })
  }

  /** Exit status for a window that ended early; the report was already printed. */
  private setExitStatus(window: SampledWindow, watching: boolean, interrupt: Interrupt): void {
    const end = window.endedBy
    if (end === 'interrupted') {
      // In --watch, Ctrl-C is the normal end; SIGTERM, SIGHUP or a closed terminal still say so.
      process.exitCode = watching && receivedSignal() === 'SIGINT' ? 0 : interrupt.exitCode
      return
    }
    if (end === 'duration') return
    const code = end === 'target-exited' ? EXIT.targetExited : EXIT.mysqlLost
    process.exitCode = code
    const reason = window.problems[window.problems.length - 1] ?? end
    // One line on stderr so a script sees why the status is not 0 (stdout holds the report).
    if (!this.jsonEnabled()) this.logToStderr(`ferrydiag lag: window ended early (exit ${code}): ${reason}`)
  }
}
