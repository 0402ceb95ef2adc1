// Human durations for dumps and finding summaries: "850 ms", "4.2 s", "1.5 min", "6019 min", "212 h".
// Minutes up to a week, as in Go's goroutine dump, because operators compare them with replication lag.

const SECOND_MS = 1000
const MINUTE_MS = 60 * SECOND_MS
const HOUR_MS = 60 * MINUTE_MS
const WEEK_MS = 7 * 24 * HOUR_MS

/**
 * Formats a duration in milliseconds. Values are truncated, never rounded up, so a wait of 59.97 s
 * reads "59 s" rather than a misleading "60 s".
 */
export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`Expected a duration in ms as a finite number >= 0, got \`${ms}\` (${typeof ms})`)
  }
  if (ms < SECOND_MS) return `${Math.floor(ms)} ms`
  if (ms < 10 * SECOND_MS) return `${Math.floor(ms / 100) / 10} s`
  if (ms < MINUTE_MS) return `${Math.floor(ms / SECOND_MS)} s`
  if (ms < 10 * MINUTE_MS) return `${Math.floor(ms / (MINUTE_MS / 10)) / 10} min`
  if (ms < WEEK_MS) return `${Math.floor(ms / MINUTE_MS)} min`
  return `${Math.floor(ms / HOUR_MS)} h`
}

/** "6019 min" when both ends read the same, else "2.1 s..6019 min". */
export function formatDurationRangeMs(minMs: number, maxMs: number): string {
  const low = formatDurationMs(minMs)
  const high = formatDurationMs(maxMs)
  return low === high ? low : `${low}..${high}`
}
