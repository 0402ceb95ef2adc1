// Duration strings for flags such as --timeout and --window: '500ms', '5s', '2m', '1h', or a bare
// number of seconds ('30'). Returns milliseconds; anything else is a FerrydiagError badDuration.

import {FerrydiagError} from '../errors.js'

/** Milliseconds per unit. A bare number is seconds, the unit people type for timeouts. */
const MS_PER_UNIT: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000}

/**
 * Parses a positive duration into whole milliseconds (rounded). `flagName` only shapes the message.
 * Throws FerrydiagError badDuration for malformed, zero, negative or sub-millisecond values.
 */
export function parseDuration(text: string, flagName = 'duration'): number {
  const match = /^\s*(-?\d+(?:\.\d+)?|-?\.\d+)\s*(ms|s|m|h)?\s*$/i.exec(text)
  const bad = (why: string): FerrydiagError =>
    new FerrydiagError(
      'badDuration',
      `Expected ${flagName} as a positive duration like 500ms, 5s, 2m, 1h or 30 (seconds), got \`${text}\` (${why}).`,
      `Pass e.g. --${flagName.replace(/^--/, '')} 5s.`,
    )
  if (!match) throw bad('not a number with an optional unit ms, s, m or h')
  const value = Number(match[1])
  if (value < 0) throw bad('negative')
  if (value === 0) throw bad('zero')
  const ms = Math.round(value * MS_PER_UNIT[(match[2] ?? 's').toLowerCase()])
  if (ms < 1) throw bad('shorter than 1 ms')
  if (!Number.isSafeInteger(ms)) throw bad('too large')
  return ms
}

/** Formats milliseconds back into the shortest exact form parseDuration accepts ('1500ms', '2m'). */
export function formatDuration(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    const size = MS_PER_UNIT[unit]
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}
