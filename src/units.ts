// The one place that scales and labels quantities for people: durations, byte sizes, rates and growth.
// Every layer may import it (it has no imports itself). Rules, so two outputs never disagree:
// - Durations are truncated, never rounded up: a wait of 59.97 s reads "59 s", not a misleading "1 min".
//   Minutes are used up to a week, as in Go's goroutine dump, since operators compare them with lag.
// - Sizes are binary (1 KiB = 1024 B) and labelled so (KiB, MiB, GiB), as V8 and /proc report memory.
// - Rates keep one decimal below 100 per second and none above.

const SECOND_MS = 1000
const MINUTE_MS = 60 * SECOND_MS
const HOUR_MS = 60 * MINUTE_MS
const WEEK_MS = 7 * 24 * HOUR_MS

export const KIB = 1024
export const MIB = 1024 * KIB
export const GIB = 1024 * MIB

function assertFiniteNonNegative(value: number, what: string): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`Expected ${what} as a finite number >= 0, got \`${value}\` (${typeof value})`)
  }
}

/** "850 ms", "4.2 s", "42 s", "1.5 min", "6019 min", "212 h" (truncated). */
export function formatDurationMs(ms: number): string {
  assertFiniteNonNegative(ms, 'a duration in ms')
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

/** "512 B", "12.5 KiB", "308 MiB", "2.7 GiB": one decimal below 100 of a unit, none above. */
export function formatBytes(bytes: number): string {
  assertFiniteNonNegative(bytes, 'a size in bytes')
  const [unit, size] = bytes >= GIB ? ['GiB', GIB] : bytes >= MIB ? ['MiB', MIB] : bytes >= KIB ? ['KiB', KIB] : ['B', 1]
  if (size === 1) return `${Math.round(bytes)} B`
  const scaled = bytes / size
  return `${scaled < 100 ? Math.floor(scaled * 10) / 10 : Math.floor(scaled)} ${unit}`
}

/** A per-second rate of anything: "0.4", "87.5", "1250". */
export function formatRate(perSec: number): string {
  if (!Number.isFinite(perSec)) throw new RangeError(`Expected a finite rate, got \`${perSec}\``)
  return Math.abs(perSec) >= 100 ? String(Math.round(perSec)) : perSec.toFixed(1)
}

/** Growth of a lag in seconds per second, always signed: "+1.00 s/s", "-0.25 s/s", "+0.00 s/s". */
export function formatGrowthSecPerSec(secPerSec: number): string {
  const rounded = Math.round(secPerSec * 100) / 100
  return rounded === 0 ? '+0.00 s/s' : `${rounded > 0 ? '+' : ''}${rounded.toFixed(2)} s/s`
}

/** A plain number to `digits` significant figures (integers from 10^digits up): "0.0153", "412", "12840". */
export function formatNumber(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value)
  if (value === 0) return '0'
  const abs = Math.abs(value)
  if (abs >= 10 ** digits) return Math.round(value).toString()
  return Number(value.toPrecision(digits)).toString()
}
