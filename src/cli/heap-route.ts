// The heap route's cost gate, shared by `stacks --heap` and `lag --heap`: the flags that set its limits,
// the ceiling check, and the estimate printed to stderr and confirmed (--yes, or "y" at a terminal).

import {createInterface} from 'node:readline/promises'

import {Flags} from '@oclif/core'

import {checkHeapRouteAllowed, DEFAULT_HEAP_MAX_BYTES, readHostAvailableBytes} from '../attach/heap-snapshot.js'
import {DEFAULT_OBSERVE_MS} from '../attach/heap-tasks.js'
import {isLoopbackHost} from '../attach/index.js'
import type {InspectorSession} from '../attach/session.js'
import type {HeapEstimate} from '../collect/stacks-source.js'
import {parseDuration} from './duration.js'
import {durationFlag, fixedDefaultHelp} from './flags.js'
import {parseSize} from './size.js'
import {formatBytes, formatDurationMs} from '../units.js'

/** The heap route's limits, spread into a command's `static flags` next to its own --heap. */
export const heapCostFlags = {
  yes: Flags.boolean({
    char: 'y',
    summary: 'Accept the estimated cost of --heap without asking.',
    default: false,
  }),
  observe: Flags.custom<number>({
    summary: 'With --heap: how long to wait before a second look at what a finding rests on (0 turns it off).',
    helpValue: 'DURATION',
    default: DEFAULT_OBSERVE_MS,
    defaultHelp: fixedDefaultHelp(`${DEFAULT_OBSERVE_MS / 1000}s`),
    parse: async (input: string) => (/^0+(\.0*)?(ms|s)?$/.test(input.trim()) ? 0 : parseDuration(input, '--observe')),
  })(),
  'heap-max': Flags.string({
    summary: 'Largest memory growth the --heap snapshot may cost the target (high end of the estimate), e.g. 2GB (default 1GB).',
    helpValue: 'SIZE',
  }),
  'heap-timeout': durationFlag({name: 'heap-timeout', summary: 'How long to wait for the --heap snapshot (default: 3x the high estimate + 30 s).'}),
}

/** --heap-max in bytes (the default ceiling when absent). Throws FerrydiagError badArgument. */
export function heapMaxBytesFromFlag(value: string | undefined): number {
  return value === undefined ? DEFAULT_HEAP_MAX_BYTES : parseSize(value, '--heap-max')
}

export interface HeapGate {
  /** Asked before an asked-for heap snapshot: refuses above the ceiling (throws heapTooLarge), then confirms. */
  confirmHeap: (estimate: HeapEstimate) => Promise<boolean>
  /** Offers the heap route unasked: at a terminal only, within the same limits; false otherwise. */
  offerHeap: (estimate: HeapEstimate, why: string) => Promise<boolean>
}

/** The cost gate for one session: the ceiling (and, for a target on this host, its free memory) and --yes. */
export function heapGate(session: InspectorSession, options: {heapMaxBytes: number; yes: boolean}): HeapGate {
  const check = async (estimate: HeapEstimate): Promise<void> => {
    // Only a target on this host shares its memory with ours.
    const hostAvailableBytes = isLoopbackHost(session.target.host) ? await readHostAvailableBytes() : null
    checkHeapRouteAllowed(estimate, {heapMaxBytes: options.heapMaxBytes, hostAvailableBytes})
  }
  return {
    confirmHeap: async (estimate) => {
      await check(estimate)
      return confirmHeapRoute(estimate, options.yes)
    },
    offerHeap: async (estimate, why) => {
      try {
        await check(estimate)
      } catch {
        return false
      }
      return confirmHeapRoute(estimate, false, why)
    },
  }
}

/**
 * Prints what the heap snapshot will cost the target (to stderr, so --json stays parseable) and asks
 * to proceed: --yes, or "y" at a terminal. Anything else declines. An unasked offer (`why` given) is
 * made at a terminal only.
 */
async function confirmHeapRoute(estimate: HeapEstimate, yes: boolean, why = ''): Promise<boolean> {
  if (why !== '' && (process.stdin.isTTY !== true || process.stderr.isTTY !== true)) return false
  process.stderr.write(
    `${why}--heap: the target's JavaScript heap holds ${formatBytes(estimate.usedHeapBytes)}. A heap snapshot stops its JavaScript for about ` +
      `${formatDurationMs(estimate.stallMs)} (${formatDurationMs(estimate.stallMsLow)}–${formatDurationMs(estimate.stallMsHigh)}: the cost follows the number of objects, from large rows to tiny objects` +
      `${estimate.loadStretch > 1 ? `; the high ends allow for this host's CPU load, ×${estimate.loadStretch.toFixed(1)} on the stall` : ''}) and grows its memory by about ` +
      `${formatBytes(estimate.extraMemoryBytes)} (${formatBytes(estimate.extraMemoryBytesLow)}–${formatBytes(estimate.extraMemoryBytesHigh)}), much of it kept afterwards.\n`,
  )
  if (yes) return true
  if (process.stdin.isTTY !== true || process.stderr.isTTY !== true) return false
  const prompt = createInterface({input: process.stdin, output: process.stderr})
  try {
    const answer = await prompt.question('Take the heap snapshot? [y/N] ')
    return /^y(es)?$/i.test(answer.trim())
  } finally {
    prompt.close()
  }
}
