// `ferrydiag tune-batch`: fits the batch cost model T = m·B + o from the writer's batch samples (or an
// active probe of the target), measures the source rate R, and recommends BinlogEventBatchSize.

import {Flags} from '@oclif/core'

import {
  analyzeTuneBatch,
  collectBatchSamples,
  findCurrentBatchSize,
  rateFromAgentSource,
  rateFromBinlogBuckets,
  rateFromStreamer,
  withObservedBatchSize,
  type CollectedSamples,
} from '../src/analyze/tune-batch.js'
import {attachTarget, type InspectorSession} from '../src/attach/index.js'
import {FerrydiagCommand} from '../src/cli/base-command.js'
import {listenForInterrupt, type Interrupt} from '../src/cli/interrupt.js'
import {checkOutputWritable, writeOutputFile} from '../src/cli/output-file.js'
import {durationFlag, targetFlags, targetOptionsFromFlags} from '../src/cli/flags.js'
import {choosePipelineReader, removeProbes, type PipelineReader} from '../src/collect/probe-session.js'
import {perturbBatchSize, type PerturbOutcome} from '../src/collect/perturb-batch-size.js'
import {sampleWindow, type SampledWindow} from '../src/collect/sample-window.js'
import {observeWriteShape, type ObservedWrites} from '../src/collect/write-shape.js'
import {waitWindow} from '../src/collect/sleep.js'
import {EXIT, FerrydiagError} from '../src/errors.js'
import type {AgentSnapshot, BatchSample} from '../src/model/snapshot.js'
import type {SampleMode, TuneBatchRate, TuneBatchResult} from '../src/model/tune-batch.js'
import {BinlogCounter} from '../src/mysql/binlog-counter.js'
import {describeEndpoint, parseDsn} from '../src/mysql/dsn.js'
import {parseQualifiedTable, probeTarget, type ProbeTargetResult, type ProbeWriteShape} from '../src/mysql/probe-target.js'
import {renderSvgPlot} from '../src/render/plot-svg.js'
import {createProgressLine} from '../src/render/progress.js'
import {renderTuneBatchText} from '../src/render/tune-batch-text.js'
import {formatDurationMs} from '../src/units.js'


export default class TuneBatch extends FerrydiagCommand {
  static summary = 'Fit the batch cost model T = m·B + o and recommend a batch size (BinlogEventBatchSize) that keeps up with the source.'

  static description = `Over --duration, reads the writer's batch samples (batch size B, write time T) from the agent inside the pipeline — the reservoir since the stage started plus every sample in the window — and fits T = m·B + o robustly (Theil–Sen, with OLS alongside). R, the source's event rate, comes from --source (rows on the binlog, per 1-s bucket, on a replication stream with a random high server id), else from a source the pipeline registered in the agent, else from the streamer (a lower bound when it is back-pressured). The peak (p95 of 1-s buckets) is what the recommendation must sustain.

It reports B* = o·R / (1 − m·R), below which lag grows; the B at which a full batch takes ρ (--target-utilization) of the time the source needs to fill it, o·R / (ρ − m·R) (a writer that drains whatever is buffered then runs batches of about B* and the buffer never fills: the 1 − ρ margin is headroom against bursts, not idle time), with a range from the 95% intervals; the buffer capacity to pair with it; the writer's utilisation and lag trend at the current batch size; and, when m·R ≥ ρ, that no batch size keeps up: the most the writer can move (1/m), the parallel writers needed and the rate to throttle to.

A saturated writer writes only full batches, so m and o cannot be separated from its samples. Then either --perturb (the pipeline exposes BinlogEventBatchSize as a writable setting: it is lowered step by step for the window, then restored, also on Ctrl-C) or --probe-target DSN --like DB.TABLE: batches of 1..500 rows, each size 5 times in random order, one transaction each, written the way the pipeline's probed writes are (over as many INSERTs per batch as it issues; one INSERT per row, up to its batch size and at most 50, 3 times each, for a row-by-row writer), written into a scratch table _ferrydiag_probe_<random> created LIKE DB.TABLE in the same database, and dropped afterwards (also on error and Ctrl-C). The probe writes nowhere else; its account needs CREATE, DROP and INSERT on that database.

Exit status: 0 with a verdict; 40 too few samples; 41 the fit gave negative or non-finite m or o (reported, no recommendation); 42 --like names no table; 32 the probe account lacks a privilege (named); 45 bad argument; 44 --plot not writable; 130 Ctrl-C (what was measured is still reported). --json prints one document (schema "ferrydiag.tune-batch", version 2).`

  static examples = [
    '<%= config.bin %> tune-batch --inspect 127.0.0.1:9229 --duration 15s',
    '<%= config.bin %> tune-batch --pid 4242 --source mysql://repl:secret@10.0.0.5:3306 --perturb',
    '<%= config.bin %> tune-batch --inspect 127.0.0.1:9229 --probe-target mysql://probe:secret@10.0.0.9:3306 --like shop.orders',
    '<%= config.bin %> tune-batch --inspect 127.0.0.1:9229 --plot cost.svg --json',
  ]

  static flags = {
    ...targetFlags,
    source: Flags.string({
      summary: 'DSN of the source, to count its binlog rows per second (R). Needs REPLICATION SLAVE and REPLICATION CLIENT.',
      helpValue: 'DSN',
    }),
    duration: durationFlag({name: 'duration', summary: 'How long to sample batches and the source rate.', defaultMs: 30_000}),
    'target-utilization': Flags.string({
      summary: 'Target utilisation ρ in (0, 1]: a full batch may take this share of the time the source needs to fill it.',
      default: '0.8',
      helpValue: 'RHO',
    }),
    'batch-size': Flags.integer({
      summary: 'The writer\'s current batch size, when the pipeline does not expose BinlogEventBatchSize.',
      min: 1,
    }),
    stage: Flags.string({summary: 'Stage whose batch samples to fit (default: the one with most samples).', helpValue: 'NAME'}),
    perturb: Flags.boolean({
      summary: 'Vary the pipeline\'s writable BinlogEventBatchSize setting during the window (down to 1), then restore it.',
      default: false,
      aliases: ['vary'],
      exclusive: ['probe-target'],
    }),
    'probe-target': Flags.string({
      summary: 'DSN of the target to probe actively (scratch table only; needs CREATE, DROP, INSERT).',
      helpValue: 'DSN',
      dependsOn: ['like'],
    }),
    like: Flags.string({
      summary: 'DB.TABLE on the probe target whose columns the scratch table copies (CREATE TABLE … LIKE).',
      helpValue: 'DB.TABLE',
      dependsOn: ['probe-target'],
    }),
    'probe-max-size': Flags.integer({summary: 'Largest probe batch, rows.', default: 500, min: 2}),
    probes: Flags.boolean({
      summary: 'Probe mysql2 writes (and zongji) in a pipeline without ferrydiag/runtime for the window, then remove the probes; --no-probes turns this off.',
      default: true,
      allowNo: true,
    }),
    plot: Flags.string({summary: 'Write an SVG plot of T against B with the fitted line to FILE.', helpValue: 'FILE.svg'}),
  }

  async run(): Promise<TuneBatchResult> {
    const {flags} = await this.parse(TuneBatch)
    const rho = parseUtilisation(flags['target-utilization'])
    if (flags.source !== undefined) parseDsn(flags.source)
    if (flags['probe-target'] !== undefined) {
      parseDsn(flags['probe-target'])
      parseQualifiedTable(flags.like!)
    }
    // Fail on an unwritable --plot before spending the window.
    if (flags.plot !== undefined) checkOutputWritable(flags.plot, '--plot')
    const mode: SampleMode = flags['probe-target'] !== undefined ? 'probe' : flags.perturb ? 'perturb' : 'passive'
    // The probe with --source and --batch-size needs nothing from the pipeline.
    const attach = !(mode === 'probe' && flags.source !== undefined && flags['batch-size'] !== undefined) || flags.inspect !== undefined || flags.pid !== undefined
    const json = this.jsonEnabled()

    const interrupt = listenForInterrupt()
    let session: InspectorSession | undefined
    let reader: PipelineReader | undefined
    let counter: BinlogCounter | undefined
    const progress = createProgressLine({json, label: mode === 'probe' ? 'probing' : 'sampling batches'})
    try {
      let first: AgentSnapshot | null = null
      if (attach) {
        session = await attachTarget(targetOptionsFromFlags(flags))
        reader = await choosePipelineReader(session, {probes: flags.probes && mode !== 'perturb'})
        if (reader.readSnapshot === undefined) {
          await session.ensureAgent({
            inject: false,
            declinedSuggestion: 'Start the target with `node --import ferrydiag/register app.js`, or let the probes read its zongji/mysql2 writes (drop --no-probes; --perturb needs the agent).',
          })
        }
        first = reader.readSnapshot ? await reader.readSnapshot(session, 5000) : await session.readSnapshot()
      }
      let current = findCurrentBatchSize(first, flags['batch-size'])
      if (mode === 'perturb' && !(current.from === 'setting' && current.writable)) {
        throw new FerrydiagError(
          'badArgument',
          `--perturb needs the pipeline to expose BinlogEventBatchSize as a writable setting; ${current.from === 'setting' ? 'it is read-only' : 'it exposes none'}`,
          'Use --probe-target DSN --like DB.TABLE instead, or register the setting with registerSetting(name, get, set).',
        )
      }
      if (mode === 'perturb' && (current.value ?? 0) < 2) {
        throw new FerrydiagError('badArgument', `--perturb needs a current batch size of at least 2, got ${current.value}`, 'Use --probe-target instead.')
      }
      if (flags.source !== undefined) counter = await BinlogCounter.start(flags.source)

      const signal = interrupt.signal
      const windowPromise: Promise<SampledWindow | null> = session
        ? sampleWindow({session, readSnapshot: reader?.readSnapshot, durationMs: flags.duration, signal, onProgress: (e, t) => progress.update(e, t)})
        : waitWindow(flags.duration, signal, (e, t) => progress.update(e, t)).then(() => null)
      let perturbPromise: Promise<PerturbOutcome> | undefined
      if (mode === 'perturb') {
        perturbPromise = perturbBatchSize({session: session!, originalBatchSize: current.value!, durationMs: flags.duration, signal})
      }
      let probePromise: Promise<ProbeTargetResult> | undefined
      if (mode === 'probe') {
        // Batches written the way the pipeline writes its own: a row-by-row writer's cost is per statement.
        // Waits for one whole batch of the pipeline's (up to the window): a slow row-by-row one takes seconds.
        const observed = reader?.readSnapshot && session ? await observeWriteShape(session, reader.readSnapshot, Math.min(10_000, flags.duration), signal) : null
        probePromise = probeTarget({dsn: flags['probe-target']!, like: flags.like!, signal, ...probePlanFor(observed, flags['probe-max-size'])})
        // A failed probe ends the window early: nothing else to wait for.
        probePromise.catch(() => interrupt.abort())
      }
      const [window, perturbed, probed] = await Promise.all([windowPromise, perturbPromise, probePromise])
      progress.clear()
      const counted = counter ? await counter.stop() : undefined
      counter = undefined
      if (counted?.error) throw counted.error

      const snapshots = (window?.samples ?? []).map((s) => s.snapshot).filter((s): s is AgentSnapshot => s !== null)
      const startedAtMs = window?.startedAtMs ?? Date.now() - flags.duration
      const endedAtMs = window?.endedAtMs ?? Date.now()
      let collected: CollectedSamples
      if (probed) {
        collected = {stageName: 'probe', samples: probed.samples, fromWindow: probed.samples.length, fromReservoir: 0, totalCount: probed.samples.length, otherStages: []}
      } else {
        collected = collectBatchSamples(snapshots, {startMs: startedAtMs, endMs: endedAtMs}, flags.stage)
      }
      // The pipeline's own batches name its current size when nothing else does (with --probe-target too).
      const own = probed ? collectBatchSamples(snapshots, {startMs: startedAtMs, endMs: endedAtMs}, flags.stage) : collected
      current = withObservedBatchSize(current, own.samples.filter((b) => b.atMs >= startedAtMs))
      let rate: TuneBatchRate | null = null
      if (counted) {
        rate = rateFromBinlogBuckets(counted.buckets, {startMs: counted.startedAtMs, endMs: counted.stoppedAtMs}, describeEndpoint(parseDsn(flags.source!)))
      }
      rate ??= rateFromAgentSource(snapshots)
      rate ??= rateFromStreamer(snapshots, collected.stageName === 'probe' ? null : collected.stageName)
      const problems = [...(window?.problems ?? [])]
      if (perturbed && !perturbed.restored) problems.push(`could not restore BinlogEventBatchSize to ${current.value}: ${perturbed.restoreError}`)
      if (probed && probed.swept.length > 0) this.logToStderr(`ferrydiag tune-batch: dropped ${probed.swept.length} scratch table(s) left by an earlier probe that was killed: ${probed.swept.join(', ')}`)
      if (probed && !probed.completed) problems.push(`the probe was interrupted after ${probed.samples.length} batch(es); its table was dropped`)
      const interrupted = signal.aborted
      const analyzed = analyzeTuneBatch({
        mode,
        samples: collected,
        rate,
        current,
        targetUtilisation: rho,
        window: {startedAtMs, endedAtMs, endedBy: interrupted ? 'interrupted' : (window?.endedBy ?? 'duration'), snapshots: snapshots.length},
        canPerturb: current.from === 'setting' && current.writable,
        problems,
      })
      const targetExited = window?.endedBy === 'target-exited'
      // A window cut short by the target's exit says nothing about a pipeline that keeps up: no verdict.
      const result: TuneBatchResult = targetExited
        ? {
            ...analyzed,
            verdict: 'insufficient-data',
            summary: `the target exited ${formatDurationMs(endedAtMs - startedAtMs)} into the ${formatDurationMs(flags.duration)} window: no verdict from a window cut short`,
          }
        : analyzed
      result.probes = reader?.probes ?? null
      if (flags.plot !== undefined) writePlot(flags.plot, result, collected.samples)
      if (!json) this.log(renderTuneBatchText(result, {samples: collected.samples}))
      this.setExitStatus(result, interrupted, interrupt, targetExited ? (window?.problems.at(-1) ?? 'the target exited') : null)
      return result
    } finally {
      progress.clear()
      interrupt.dispose()
      await counter?.stop()
      if (session && reader?.mustRemove) await removeProbes(session)
      await session?.detach()
    }
  }

  /** Too few samples and a bad model are reported in full, then exit with their own status. */
  private setExitStatus(result: TuneBatchResult, interrupted: boolean, interrupt: Interrupt, targetExited: string | null): void {
    const fit = result.fit
    let code: number | undefined
    let reason = ''
    if (targetExited !== null) {
      code = EXIT.targetExited
      reason = `${targetExited}; the report covers the part of the window before it`
    } else if (interrupted) {
      // Ctrl-C wins: the user stopped it, whatever the partial data allowed.
      code = interrupt.exitCode
      reason = `interrupted; the report covers what was measured${fit.status === 'too-few-samples' ? ` (${fit.sampleCount} sample(s), too few to fit)` : ''}`
    } else if (fit.status === 'too-few-samples') {
      code = EXIT.tooFewSamples
      reason = `${fit.sampleCount} usable batch sample(s), ${fit.samplesNeeded} more needed: sample longer (--duration) or use --probe-target`
    } else if (fit.status === 'bad-model') {
      code = EXIT.badModel
      reason = `no recommendation from an unusable fit: ${fit.problems.join('; ')}`
    }
    if (code === undefined) return
    process.exitCode = code
    if (!this.jsonEnabled()) this.logToStderr(`ferrydiag tune-batch: exit ${code}: ${reason}`)
  }
}

/**
 * The active probe's batches, shaped like the pipeline's: as many INSERTs per batch as its writes (one per
 * table, say), or one per row. One statement per row costs a round trip each, so
 * that probe stops at the pipeline's own batch size (at most 50 rows, 3 repeats): the slope is per
 * statement and shows from a few sizes, and 500-row batches of single INSERTs would take minutes.
 */
function probePlanFor(observed: ObservedWrites | null, maxSize: number): {shape: ProbeWriteShape; maxBatchSize: number; repeats?: number; statementsPerBatch?: number} {
  if (observed?.shape !== 'row-per-statement') return {shape: 'multi-row', maxBatchSize: maxSize, statementsPerBatch: observed?.statementsPerBatch ?? 1}
  return {shape: 'row-per-statement', maxBatchSize: Math.max(2, Math.min(maxSize, observed.batchSize ?? maxSize, 50)), repeats: 3}
}

function parseUtilisation(text: string): number {
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value) || !(value > 0 && value <= 1)) {
    throw new FerrydiagError(
      'badArgument',
      `Expected --target-utilization to be a number in (0, 1], got \`${text}\``,
      'Pass e.g. --target-utilization 0.8 (a full batch written in 80% of the time the source takes to fill it).',
    )
  }
  return value
}

function writePlot(file: string, result: TuneBatchResult, samples: readonly BatchSample[]): void {
  const fit = result.fit
  const line = fit.status === 'fitted' ? {slope: fit.model.mMsPerEvent, intercept: fit.model.oMs} : null
  const svg = renderSvgPlot(
    samples.filter((s) => s.ok).map((s) => ({x: s.events, y: s.ms})),
    line,
    {
      title: `Batch write time against batch size (${result.samples.used} batches, ${result.mode})`,
      stabilityBoundary: result.stabilityBoundary,
      recommendedBatchSize: result.recommendedBatchSize,
    },
  )
  writeOutputFile(file, svg, '--plot', 'the estimates were printed')
}
