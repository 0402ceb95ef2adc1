// The measuring part of `ferrydiag tune-batch`: attach (or not), choose how to read the pipeline, run the
// sampling window beside --perturb or the active probe and the binlog count, then undo everything
// (probes removed, inspector detached) whatever happened. Returns plain observations for the analysis.

import type {TuneBatchObservations} from '../analyze/tune-batch.js'
import {collectBatchSamples, findCurrentBatchSize, observedBatchSizes} from '../analyze/tune-batch.js'
import {attachTarget, type InspectorSession, type ResolveTargetOptions} from '../attach/index.js'
import {FerrydiagError} from '../errors.js'
import type {ProbesUse} from '../model/probes.js'
import type {AgentSnapshot} from '../model/snapshot.js'
import type {BatchKnob, SampleMode} from '../model/tune-batch.js'
import {findBatchKnob} from './batch-knob.js'
import {BinlogCounter, type BinlogCountSummary} from '../mysql/binlog-counter.js'
import {describeEndpoint, parseDsn} from '../mysql/dsn.js'
import {probeTarget, type ProbeTargetResult, type ProbeWriteShape} from '../mysql/probe-target.js'
import {perturbBatchSize, type PerturbOutcome} from './perturb-batch-size.js'
import {choosePipelineReader, removeProbes, type PipelineReader} from './probe-session.js'
import {sampleWindow, type SampledWindow} from './sample-window.js'
import {waitWindow} from './sleep.js'
import {observeWriteShape, type ObservedWrites} from './write-shape.js'

/** What the command asks for, from its flags (already validated). */
export interface TuneBatchPlan {
  mode: SampleMode
  target: ResolveTargetOptions
  /** False only for --probe-target with --source and --batch-size and no target named: nothing to attach to. */
  attach: boolean
  durationMs: number
  /** Attach-time probes allowed (--probes; never with --perturb, which needs the agent). */
  probes: boolean
  batchSizeFlag?: number
  /** --stage: whose batches to fit. */
  stage?: string
  /** --source DSN, for the binlog row count. */
  source?: string
  /** --probe-target DSN, --like DB.TABLE and --probe-max-size. */
  probeTarget?: {dsn: string; like: string; maxBatchSize: number}
}

export interface TuneBatchWindowHooks {
  /** Ended by Ctrl-C (or abort()); a failed probe aborts it too. */
  signal: AbortSignal
  abort(): void
  onProgress(elapsedMs: number, totalMs: number): void
}

/** The mode a plan's flags select. */
export function sampleModeFor(options: {probeTarget: boolean; perturb: boolean}): SampleMode {
  return options.probeTarget ? 'probe' : options.perturb ? 'perturb' : 'passive'
}

/** Runs the window and returns what it saw; the target is left as it was found, also on error. */
export async function observeTuneBatch(plan: TuneBatchPlan, hooks: TuneBatchWindowHooks): Promise<TuneBatchObservations> {
  let session: InspectorSession | undefined
  let reader: PipelineReader | undefined
  let counter: BinlogCounter | undefined
  try {
    let first: AgentSnapshot | null = null
    if (plan.attach) {
      session = await attachTarget(plan.target)
      reader = await openReader(session, plan)
      first = reader.readSnapshot ? await reader.readSnapshot(session, 5000) : await session.readSnapshot()
    }
    const current = findCurrentBatchSize(first, plan.batchSizeFlag)
    if (plan.mode === 'perturb') checkPerturbable(current)
    if (plan.source !== undefined) counter = await BinlogCounter.start(plan.source)

    const [window, perturbed, probed] = await Promise.all([
      runWindow(session, reader, plan, hooks),
      plan.mode === 'perturb'
        ? perturbBatchSize({session: session!, originalBatchSize: current.value!, durationMs: plan.durationMs, signal: hooks.signal})
        : undefined,
      plan.mode === 'probe' ? runProbe(session, reader, plan, hooks) : undefined,
    ])
    const counted = counter ? await counter.stop() : undefined
    counter = undefined
    if (counted?.error) throw counted.error
    const observations = toObservations(plan, {window, perturbed, probed, counted, current, probes: reader?.probes ?? null, interrupted: hooks.signal.aborted})
    // Nothing names the batch size: look for the pipeline's own property among the probes' objects.
    if (session && reader?.mustRemove && current.value === null) observations.knob = await lookForKnob(session, observations, plan)
    return observations
  } finally {
    await counter?.stop()
    if (session && reader?.mustRemove) await removeProbes(session)
    await session?.detach()
  }
}

/** The batch-size property of a probed pipeline whose value matches its writes in the window. */
async function lookForKnob(session: InspectorSession, observed: TuneBatchObservations, plan: TuneBatchPlan): Promise<BatchKnob | null> {
  const span = {startMs: observed.window.startedAtMs, endMs: observed.window.endedAtMs}
  const own = collectBatchSamples(observed.snapshots, span, plan.stage)
  const sizes = observedBatchSizes(own.samples.filter((b) => b.atMs >= span.startMs))
  return sizes === null ? null : findBatchKnob(session, {observed: sizes.median, maxRows: sizes.max})
}

/** The agent's stages, else the probes; without either, the agent is required (not injected). */
async function openReader(session: InspectorSession, plan: TuneBatchPlan): Promise<PipelineReader> {
  const reader = await choosePipelineReader(session, {probes: plan.probes && plan.mode !== 'perturb'})
  if (reader.readSnapshot === undefined) {
    await session.ensureAgent({
      inject: false,
      declinedSuggestion: 'Start the target with `node --import ferrydiag/register app.js`, or let the probes read its zongji/mysql2 writes (drop --no-probes; --perturb needs the agent).',
    })
  }
  return reader
}

function checkPerturbable(current: ReturnType<typeof findCurrentBatchSize>): void {
  if (!(current.from === 'setting' && current.writable)) {
    throw new FerrydiagError(
      'badArgument',
      `--perturb needs the pipeline to expose BinlogEventBatchSize as a writable setting; ${current.from === 'setting' ? 'it is read-only' : 'it exposes none'}`,
      'Use --probe-target DSN --like DB.TABLE instead, or register the setting with registerSetting(name, get, set).',
    )
  }
  if ((current.value ?? 0) < 2) {
    throw new FerrydiagError('badArgument', `--perturb needs a current batch size of at least 2, got ${current.value}`, 'Use --probe-target instead.')
  }
}

/** Snapshots of the pipeline over the window; without a session, just the wait (progress shown). */
async function runWindow(session: InspectorSession | undefined, reader: PipelineReader | undefined, plan: TuneBatchPlan, hooks: TuneBatchWindowHooks): Promise<SampledWindow | null> {
  if (!session) {
    await waitWindow(plan.durationMs, hooks.signal, hooks.onProgress)
    return null
  }
  return sampleWindow({session, readSnapshot: reader?.readSnapshot, durationMs: plan.durationMs, signal: hooks.signal, onProgress: hooks.onProgress})
}

/**
 * The active probe, its batches written the way the pipeline writes its own (a row-by-row writer's cost
 * is per statement). Waits for one whole batch of the pipeline's first (up to 10 s of the window: a slow
 * row-by-row one takes seconds). A failed probe ends the window early: nothing else to wait for.
 */
async function runProbe(session: InspectorSession | undefined, reader: PipelineReader | undefined, plan: TuneBatchPlan, hooks: TuneBatchWindowHooks): Promise<ProbeTargetResult> {
  const observed = reader?.readSnapshot && session ? await observeWriteShape(session, reader.readSnapshot, Math.min(10_000, plan.durationMs), hooks.signal) : null
  const target = plan.probeTarget!
  const probe = probeTarget({dsn: target.dsn, like: target.like, signal: hooks.signal, ...probePlanFor(observed, target.maxBatchSize)})
  probe.catch(() => hooks.abort())
  return probe
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

function toObservations(
  plan: TuneBatchPlan,
  parts: {
    window: SampledWindow | null
    perturbed: PerturbOutcome | undefined
    probed: ProbeTargetResult | undefined
    counted: BinlogCountSummary | undefined
    current: ReturnType<typeof findCurrentBatchSize>
    probes: ProbesUse | null
    interrupted: boolean
  },
): TuneBatchObservations {
  const {window, perturbed, probed, counted, current} = parts
  const problems = [...(window?.problems ?? [])]
  if (perturbed && !perturbed.restored) problems.push(`could not restore BinlogEventBatchSize to ${current.value}: ${perturbed.restoreError}`)
  if (probed && !probed.completed) problems.push(`the probe was interrupted after ${probed.samples.length} batch(es); its table was dropped`)
  const endedAtMs = window?.endedAtMs ?? Date.now()
  return {
    mode: plan.mode,
    snapshots: (window?.samples ?? []).map((s) => s.snapshot).filter((s): s is AgentSnapshot => s !== null),
    window: {
      startedAtMs: window?.startedAtMs ?? endedAtMs - plan.durationMs,
      endedAtMs,
      endedBy: parts.interrupted ? 'interrupted' : (window?.endedBy ?? 'duration'),
      requestedMs: plan.durationMs,
    },
    current,
    probeSamples: probed?.samples ?? null,
    sweptProbeTables: probed?.swept ?? [],
    binlog: counted ? {buckets: counted.buckets, startedAtMs: counted.startedAtMs, stoppedAtMs: counted.stoppedAtMs, where: describeEndpoint(parseDsn(plan.source!))} : null,
    probes: parts.probes,
    knob: null,
    problems,
    targetExited: window?.endedBy === 'target-exited' ? (window.problems.at(-1) ?? 'the target exited') : null,
  }
}
