// Everything `ferrydiag stacks` concludes from one snapshot: runs the stacks analyses in order of
// precedence and assembles the dump that the text, JSON and pprof renderers share.

import {DUMP_SCHEMA, DUMP_VERSION} from '../model/dump.js'
import type {DumpProcessInfo, DumpSource, StacksDump, StacksInput} from '../model/dump.js'
import type {Finding} from '../model/findings.js'
import type {StackFrame, TaskRecord} from '../model/snapshot.js'
import {findDeadlock} from './find-deadlock.js'
import {findLongWaits, resolveLongWaitMs} from './find-long-waits.js'
import {findNeverResumes, findOrphanChannels} from './find-orphan-channels.js'
import {groupStacks} from './group-stacks.js'

/** Default for stuckAfterMs (ms): long enough that no healthy hand-off between stages waits this long. */
export const DEFAULT_STUCK_AFTER_MS = 10_000

export interface StacksAnalysisOptions {
  /** --min-wait (ms): filters the groups shown and sets the long-wait threshold (see find-long-waits). */
  minWaitMs?: number
  /** Waits at least this long (ms) may be called stuck (deadlock, orphan buffer, unfilled slot). */
  stuckAfterMs?: number
}

/**
 * All stacks findings, errors first. Precedence, so that each task is explained once:
 * 1. uninitialized-channel-send (root cause of #331-like stalls) and never-resumes: errors;
 * 2. deadlock: an error, or 'info' when every task in it is already named by a step-1 error;
 * 3. long-wait: warnings for blocked tasks that no error above names.
 */
export function findStacksProblems(input: StacksInput, options: StacksAnalysisOptions = {}): Finding[] {
  const stuckAfterMs = checkMs('stuckAfterMs', options.stuckAfterMs ?? DEFAULT_STUCK_AFTER_MS)
  if (options.minWaitMs !== undefined) checkMs('minWaitMs', options.minWaitMs)

  const rootCauses = [...findOrphanChannels(input, {stuckAfterMs}), ...findNeverResumes(input)]
  const deadlock = findDeadlock(input, {stuckAfterMs, explainedBy: rootCauses})
  const errors = deadlock?.severity === 'error' ? [...rootCauses, deadlock] : rootCauses

  const covered = new Set<number>()
  for (const finding of errors) for (const id of finding.evidence.taskIds ?? []) covered.add(id)
  const warnings = findLongWaits(input, {minWaitMs: options.minWaitMs, coveredTaskIds: covered})

  const infos = deadlock?.severity === 'info' ? [deadlock] : []
  return [...errors, ...warnings, ...infos]
}

export interface BuildStacksDumpOptions extends StacksAnalysisOptions {
  source: DumpSource
  /** One group per task (`--debug=2`). */
  ungrouped?: boolean
  /**
   * Maps a frame to its original (e.g. TypeScript) location. Applied to every task before analysis, so
   * groups, finding evidence, JSON and pprof all show the mapped sites.
   */
  mapLocation?: (frame: StackFrame) => StackFrame
}

/** Builds the dump for one snapshot. Pure: the snapshot is not modified. */
export function buildStacksDump(
  snapshot: StacksInput & {process: DumpProcessInfo},
  options: BuildStacksDumpOptions,
): StacksDump {
  const mapLocation = options.mapLocation
  // Map each distinct stack array once (tasks at one site share theirs); mapped arrays are shared too.
  const mappedStacks = new Map<readonly StackFrame[], StackFrame[]>()
  const mapStack = (stack: StackFrame[]): StackFrame[] => {
    let mapped = mappedStacks.get(stack)
    if (mapped === undefined) {
      mapped = stack.map((frame) => mapLocation!({...frame}))
      mappedStacks.set(stack, mapped)
    }
    return mapped
  }
  const tasks: TaskRecord[] = mapLocation
    ? snapshot.tasks.map((task) => ({...task, stack: mapStack(task.stack)}))
    : [...snapshot.tasks]
  const input: StacksInput = {
    takenAtMs: snapshot.takenAtMs,
    tasks,
    channels: snapshot.channels,
    stages: snapshot.stages,
  }
  const findings = findStacksProblems(input, options)
  const groups = groupStacks(tasks, {minWaitMs: options.minWaitMs, ungrouped: options.ungrouped})
  const shownCount = groups.reduce((sum, group) => sum + group.count, 0)
  return {
    schema: DUMP_SCHEMA,
    version: DUMP_VERSION,
    takenAtMs: snapshot.takenAtMs,
    process: snapshot.process,
    source: options.source,
    grouped: !options.ungrouped,
    thresholds: {
      minWaitMs: options.minWaitMs ?? null,
      longWaitMs: resolveLongWaitMs(options),
      stuckAfterMs: options.stuckAfterMs ?? DEFAULT_STUCK_AFTER_MS,
    },
    taskCount: tasks.length,
    hiddenTaskCount: tasks.length - shownCount,
    groups,
    channels: [...snapshot.channels].sort((a, b) => a.id - b.id),
    stages: snapshot.stages,
    findings,
  }
}

function checkMs(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`Expected \`${name}\` to be a finite number of ms >= 0, got \`${value}\` (${typeof value})`)
  }
  return value
}
